//! Reading pack data (`--read-data`, `--read-data-subset`).
//!
//! Each pack is read once, front to back, in segments of whole blobs (about [`SEGMENT`]
//! bytes, or one blob if it is bigger), by a few readers at a time. Before that, its header
//! is read from the tail: when it decrypts, the blobs are verified where the header puts them
//! and the header is compared with the index entry by entry; when it does not, the index
//! entries are used instead. Every byte of the file goes through SHA-256 on the way, which
//! must give the pack's name.

use super::index::Entry;
use super::subset::{self, Subset};
use super::{BlobFault, Checker, Finding, Problem};
use crate::crypto::{Key, OVERHEAD};
use crate::format::pack::{self, BlobType, PackedBlob};
use crate::{Error, Id};
use cairn_backend::{Backend, BackendError, FileType, Handle};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Bytes read from a pack at once (rounded up to whole blobs).
pub const SEGMENT: u64 = 4 << 20;

/// The packs a `--read-data[-subset]` run reads.
#[derive(Clone, Debug)]
pub struct PackSelection {
    packs: Vec<usize>,
    /// Packs the index knows, and bytes they take.
    pub total_packs: usize,
    pub total_bytes: u64,
}

impl PackSelection {
    pub fn len(&self) -> usize {
        self.packs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packs.is_empty()
    }
}

/// Per-reader state reused from pack to pack.
struct Scratch {
    unzstd: Option<zstd::bulk::Decompressor<'static>>,
    plain: Vec<u8>,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            unzstd: None,
            plain: Vec::new(),
        }
    }
}

/// Decrypts, decompresses and hashes one blob's stored bytes. The plaintext is left in
/// `scratch.plain` for compressed blobs; otherwise it is returned.
fn verify(
    key: &Key,
    b: &PackedBlob,
    sealed: &[u8],
    scratch: &mut Scratch,
) -> Result<Option<Vec<u8>>, BlobFault> {
    if sealed.len() < OVERHEAD {
        return Err(BlobFault::TooShort(sealed.len() as u32));
    }
    // Before allocating what the header or index declares.
    crate::format::limits::check_blob(b).map_err(|e| BlobFault::TooLarge(e.to_string()))?;
    let plain = key.open(sealed).map_err(|_| BlobFault::Decrypt)?;
    if b.uncompressed_length == 0 {
        let h = Id::hash(&plain);
        if h != b.id {
            return Err(BlobFault::Hash(h));
        }
        return Ok(Some(plain));
    }
    let want = b.uncompressed_length as usize;
    if scratch.unzstd.is_none() {
        scratch.unzstd = Some(
            zstd::bulk::Decompressor::new().map_err(|e| BlobFault::Decompress(e.to_string()))?,
        );
    }
    let dec = scratch.unzstd.as_mut().expect("set above");
    scratch.plain.clear();
    // One byte of room beyond the expected length, so that a frame that decompresses to
    // more is noticed instead of silently filling the buffer exactly.
    scratch.plain.reserve(want + 1);
    dec.decompress_to_buffer(&plain, &mut scratch.plain)
        .map_err(|e| BlobFault::Decompress(e.to_string()))?;
    if scratch.plain.len() != want {
        return Err(BlobFault::Length {
            got: scratch.plain.len(),
            want: b.uncompressed_length,
        });
    }
    let h = Id::hash(&scratch.plain);
    if h != b.id {
        return Err(BlobFault::Hash(h));
    }
    Ok(None)
}

/// Loads and checks one blob (for trees), returning its plaintext.
pub(super) fn load_blob(
    backend: &dyn Backend,
    key: &Key,
    pack: &Id,
    b: &PackedBlob,
) -> Result<Vec<u8>, String> {
    crate::format::limits::check_blob(b)
        .map_err(|e| format!("pack {}: {} blob {}: {e}", pack.short(), b.ty, b.id))?;
    let h = Handle::new(FileType::Data, pack.to_hex());
    let sealed = load_exact(backend, &h, b.offset as u64, b.length as u64)
        .map_err(|e| format!("pack {}: {e}", pack.short()))?;
    let mut scratch = Scratch::new();
    match verify(key, b, &sealed, &mut scratch) {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Ok(std::mem::take(&mut scratch.plain)),
        Err(f) => Err(format!("pack {}: {} blob: {f}", pack.short(), b.ty)),
    }
}

enum HeaderError {
    /// The file could not be read.
    Io(String),
    /// It was read, but the header is not valid.
    Invalid(String),
}

fn io_reason(e: BackendError) -> String {
    match e {
        BackendError::NotFound(_) => "does not exist".to_string(),
        e => e.to_string(),
    }
}

/// Hashes a pack's bytes from `*pos` up to `stop`, a segment at a time, advancing `*pos`; on a
/// read error, where it stopped and why.
fn hash_span(
    backend: &dyn Backend,
    h: &Handle,
    hasher: &mut Sha256,
    pos: &mut u64,
    stop: u64,
) -> Result<(), (u64, String)> {
    while *pos < stop {
        let n = (stop - *pos).min(SEGMENT);
        let d = load_exact(backend, h, *pos, n).map_err(|reason| (*pos, reason))?;
        hasher.update(&d);
        *pos += n;
    }
    Ok(())
}

/// Loads exactly `length` bytes (a backend that returns fewer is treated as a read error).
fn load_exact(
    backend: &dyn Backend,
    h: &Handle,
    offset: u64,
    length: u64,
) -> Result<Vec<u8>, String> {
    let data = backend.load(h, offset, length).map_err(io_reason)?;
    if data.len() as u64 != length {
        return Err(format!(
            "short read: {} of {length} bytes at offset {offset}",
            data.len()
        ));
    }
    Ok(data)
}

/// Reads and decrypts a pack's header from its tail.
fn read_header(
    backend: &dyn Backend,
    key: &Key,
    h: &Handle,
    size: u64,
) -> Result<Vec<PackedBlob>, HeaderError> {
    if size < 4 {
        return Err(HeaderError::Invalid(format!(
            "file of {size} bytes is too short to hold a header"
        )));
    }
    let probe = size.min(pack::HEADER_PROBE);
    let mut tail = load_exact(backend, h, size - probe, probe).map_err(HeaderError::Io)?;
    let mut len_field = [0u8; 4];
    len_field.copy_from_slice(&tail[tail.len() - 4..]);
    let hlen = u32::from_le_bytes(len_field) as u64;
    if hlen < OVERHEAD as u64 || hlen > size - 4 || hlen + 4 > pack::MAX_HEADER_SIZE {
        return Err(HeaderError::Invalid(format!(
            "header length {hlen} is invalid for a file of {size} bytes"
        )));
    }
    if (tail.len() as u64) < hlen + 4 {
        tail = load_exact(backend, h, size - hlen - 4, hlen + 4).map_err(HeaderError::Io)?;
    }
    let enc = &tail[tail.len() - 4 - hlen as usize..tail.len() - 4];
    let plain = key.open(enc).map_err(|_| {
        HeaderError::Invalid("ciphertext verification failed (damaged header)".to_string())
    })?;
    let blobs =
        pack::parse_header_plain(&plain).map_err(|e| HeaderError::Invalid(e.to_string()))?;
    let data_len: u64 = blobs.iter().map(|b| b.length as u64).sum();
    if data_len + hlen + 4 != size {
        return Err(HeaderError::Invalid(format!(
            "the header's blobs take {data_len} bytes, but the file has {} bytes before the \
             header",
            size - hlen - 4
        )));
    }
    Ok(blobs)
}

/// Sort key for comparing header and index entries.
fn blob_key(b: &PackedBlob) -> (u32, u32, BlobType, Id, u32) {
    (b.offset, b.length, b.ty, b.id, b.uncompressed_length)
}

impl Checker<'_> {
    /// Chooses the packs to read: all of them, or a subset with restic's rules.
    pub fn select_packs(&self, subset: Option<&Subset>) -> crate::Result<PackSelection> {
        let packs = &self.index.packs;
        let total_bytes = packs.iter().map(|p| p.size).sum();
        let chosen: Vec<usize> = match subset {
            None => (0..packs.len()).collect(),
            Some(Subset::Bucket { n, t }) => (0..packs.len())
                .filter(|&i| subset::in_bucket(&packs[i].id, *n, *t))
                .collect(),
            Some(Subset::Percent(p)) => {
                subset::random_choice(packs.len(), subset::count_for_percent(packs.len(), *p))
            }
            Some(Subset::Size(s)) => {
                if total_bytes == 0 {
                    crate::error::bail!("Cannot read from a repository having size 0");
                }
                let p = subset::percent_for_size(*s, total_bytes);
                subset::random_choice(packs.len(), subset::count_for_percent(packs.len(), p))
            }
        };
        Ok(PackSelection {
            packs: chosen,
            total_packs: packs.len(),
            total_bytes,
        })
    }

    /// The ids of the selected packs, sorted.
    pub fn selected_ids(&self, sel: &PackSelection) -> Vec<Id> {
        sel.packs.iter().map(|&i| self.index.packs[i].id).collect()
    }

    /// Reads the selected packs, `opts.readers` at a time, reporting problems as they are
    /// found and progress after each pack (`done`, `total`, bytes read).
    pub fn read_packs(
        &self,
        sel: &PackSelection,
        report: &(dyn Fn(Finding) + Sync),
        progress: &(dyn Fn(u64, u64, u64) + Sync),
    ) -> crate::Result<()> {
        let next = AtomicUsize::new(0);
        let done = AtomicU64::new(0);
        let bytes = AtomicU64::new(0);
        let total = sel.packs.len() as u64;
        let readers = self.opts.readers.max(1).min(sel.packs.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..readers {
                s.spawn(|| {
                    let mut scratch = Scratch::new();
                    loop {
                        if self.stopped() {
                            break;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&no) = sel.packs.get(i) else { break };
                        let n = self.check_pack(no, &mut scratch, report);
                        let b = bytes.fetch_add(n, Ordering::Relaxed) + n;
                        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                        progress(d, total, b);
                    }
                });
            }
        });
        if self.stopped() {
            return Err(Error::Interrupted);
        }
        Ok(())
    }

    /// Checks one pack; returns the bytes read.
    fn check_pack(
        &self,
        no: usize,
        scratch: &mut Scratch,
        report: &(dyn Fn(Finding) + Sync),
    ) -> u64 {
        let meta = &self.index.packs[no];
        let id = meta.id;
        let backend = &**self.repo.backend();
        let key = &self.repo.key();
        let err = |p: Problem| report(Finding::Error(p));
        let h = Handle::new(FileType::Data, id.to_hex());
        // A pack whose size is known to be wrong (reported already): its header and hash
        // cannot be right either, so only what its blobs show is reported.
        let size_known_bad =
            matches!(self.listed.as_ref().map(|l| l[no]), Some(Some(s)) if s != meta.size);
        let size = match self.listed.as_ref().map(|l| l[no]) {
            // Missing: check_packs reported it already.
            Some(None) => return 0,
            Some(Some(s)) => s,
            None => match backend.stat(&h) {
                Ok(s) => s,
                Err(e) => {
                    err(Problem::PackUnreadable {
                        pack: id,
                        reason: io_reason(e),
                    });
                    return 0;
                }
            },
        };
        let indexed: Vec<PackedBlob> = self
            .index
            .pack_entries(no)
            .map(|(ty, e): (BlobType, &Entry)| e.to_packed(ty))
            .collect();
        let layout = match read_header(backend, key, &h, size) {
            Ok(header) => {
                self.compare_header(&id, &header, &indexed, report);
                header
            }
            Err(HeaderError::Io(reason)) => {
                err(Problem::PackUnreadable { pack: id, reason });
                return 0;
            }
            Err(HeaderError::Invalid(reason)) => {
                if !size_known_bad {
                    err(Problem::PackHeader { pack: id, reason });
                }
                indexed
            }
        };

        // Stream the file: groups of whole blobs, every byte hashed in order.
        let mut hasher = Sha256::new();
        let mut pos = 0u64;
        let mut beyond: Option<(usize, Id)> = None;
        let mut i = 0;
        while i < layout.len() {
            if self.stopped() {
                return pos;
            }
            // The next group: blobs that start at or after `pos` and end inside the file.
            let mut group = Vec::new();
            let mut end = pos;
            while i < layout.len() {
                let b = &layout[i];
                let (start, stop) = (b.offset as u64, b.offset as u64 + b.length as u64);
                if start < pos || (start < end && !group.is_empty()) {
                    // Overlaps what was read (only with a broken index, reported already).
                    i += 1;
                    continue;
                }
                if stop > size {
                    let e = beyond.get_or_insert((0, b.id));
                    e.0 += 1;
                    i += 1;
                    continue;
                }
                if !group.is_empty() && stop - pos > SEGMENT {
                    break;
                }
                if let Err(e) = crate::format::limits::check_blob(b) {
                    if !group.is_empty() {
                        break;
                    }
                    // Too big to hold: reported, and hashed through a segment at a time.
                    err(Problem::BlobDamaged {
                        pack: id,
                        ty: b.ty,
                        blob: b.id,
                        offset: b.offset,
                        fault: BlobFault::TooLarge(e.to_string()),
                    });
                    if let Err((at, reason)) = hash_span(backend, &h, &mut hasher, &mut pos, stop) {
                        err(Problem::PackUnreadable { pack: id, reason });
                        return at;
                    }
                    end = pos;
                    i += 1;
                    continue;
                }
                group.push(*b);
                end = stop;
                i += 1;
            }
            if group.is_empty() {
                continue;
            }
            let data = match load_exact(backend, &h, pos, end - pos) {
                Ok(d) => d,
                Err(reason) => {
                    err(Problem::PackUnreadable { pack: id, reason });
                    return pos;
                }
            };
            hasher.update(&data);
            for b in &group {
                let at = (b.offset as u64 - pos) as usize;
                let sealed = &data[at..at + b.length as usize];
                if let Err(fault) = verify(key, b, sealed, scratch) {
                    err(Problem::BlobDamaged {
                        pack: id,
                        ty: b.ty,
                        blob: b.id,
                        offset: b.offset,
                        fault,
                    });
                }
            }
            pos = end;
        }
        if let Some((blobs, first)) = beyond {
            err(Problem::PackTruncated {
                pack: id,
                size,
                blobs,
                first,
            });
        }
        // The rest: the header (and anything the blobs did not cover).
        if let Err((at, reason)) = hash_span(backend, &h, &mut hasher, &mut pos, size) {
            err(Problem::PackUnreadable { pack: id, reason });
            return at;
        }
        let actual = Id(hasher.finalize().into());
        if actual != id && !size_known_bad {
            err(Problem::PackHash { pack: id, actual });
        }
        size
    }

    /// Every header entry needs an identical index entry for this pack, and the reverse.
    fn compare_header(
        &self,
        pack: &Id,
        header: &[PackedBlob],
        indexed: &[PackedBlob],
        report: &(dyn Fn(Finding) + Sync),
    ) {
        let mut hk: Vec<&PackedBlob> = header.iter().collect();
        let mut ik: Vec<&PackedBlob> = indexed.iter().collect();
        hk.sort_by_key(|b| blob_key(b));
        ik.sort_by_key(|b| blob_key(b));
        let (mut a, mut b) = (0, 0);
        while a < hk.len() || b < ik.len() {
            let ord = match (hk.get(a), ik.get(b)) {
                (Some(x), Some(y)) => blob_key(x).cmp(&blob_key(y)),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match ord {
                std::cmp::Ordering::Equal => {
                    a += 1;
                    b += 1;
                }
                std::cmp::Ordering::Less => {
                    let x = hk[a];
                    report(Finding::Error(Problem::BlobNotIndexed {
                        pack: *pack,
                        ty: x.ty,
                        blob: x.id,
                        offset: x.offset,
                        length: x.length,
                    }));
                    a += 1;
                }
                std::cmp::Ordering::Greater => {
                    let y = ik[b];
                    report(Finding::Error(Problem::BlobNotInPack {
                        pack: *pack,
                        ty: y.ty,
                        blob: y.id,
                        offset: y.offset,
                        length: y.length,
                    }));
                    b += 1;
                }
            }
        }
    }
}
