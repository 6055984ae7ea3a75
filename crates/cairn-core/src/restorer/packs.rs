//! File contents, restored pack by pack: every blob the files need is looked up, the blobs
//! of each pack are sorted by position and read in a few ranged requests (neighbours merged
//! across small gaps), and each blob is written wherever it occurs. Over a network this turns
//! one request per blob into a handful per pack; a blob used by many files (or many times in
//! one) is read and decrypted once.

use super::fsops::{Dirs, Place};
use super::FileTask;
use crate::format::pack::BlobType;
use crate::index::BlobLocation;
use crate::repository::IndexedRepository;
use crate::Id;
use anyhow::Context;
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Neighbouring blobs closer than this are read in one request (the gap is read and dropped).
const MAX_GAP: u64 = 256 * 1024;
/// No single read is larger than this, to bound memory per reader.
const MAX_RANGE: u64 = 4 * 1024 * 1024;

/// A blob to restore and everywhere it goes: (file index, offset in the file).
struct BlobUse {
    loc: BlobLocation,
    targets: Vec<(usize, u64)>,
}

/// One ranged read of a pack and the blobs in it.
struct Read {
    pack: Id,
    start: u64,
    len: u64,
    blobs: Vec<BlobUse>,
}

/// The plaintext size of a blob, from the index.
fn plain_len(loc: &BlobLocation) -> u64 {
    let b = &loc.blob;
    if b.uncompressed_length != 0 {
        b.uncompressed_length as u64
    } else {
        // Stored as nonce + ciphertext + MAC.
        (b.length as u64).saturating_sub(32)
    }
}

/// What became of each file's content.
pub(super) struct Written {
    pub bytes: u64,
    /// Every blob of the file was written.
    pub complete: Vec<bool>,
    /// Its metadata was applied too (right after its last blob, through the open descriptor).
    pub finished: Vec<bool>,
}

/// How contents are written.
#[derive(Clone, Copy)]
pub(super) struct Writing<'a> {
    pub threads: usize,
    /// Zero blobs become holes.
    pub sparse: bool,
    /// Told the bytes of each blob as it is written (for progress).
    pub wrote: &'a (dyn Fn(u64) + Sync),
}

/// Writes the content of every file; a file whose last blob is written gets its metadata at
/// once, through the descriptor it was written with (errors go to `report`).
pub(super) fn write_contents(
    repo: &IndexedRepository,
    dirs: &Dirs,
    files: &[FileTask],
    dir_ok: &[bool],
    how: Writing<'_>,
    interrupted: &AtomicBool,
    report: &(dyn Fn(&Path, anyhow::Error) + Sync),
) -> Written {
    // Files in a directory that could not be created are skipped (that error is reported).
    let failed: Vec<AtomicBool> = files
        .iter()
        .map(|f| AtomicBool::new(!dir_ok[f.place.dir as usize]))
        .collect();
    let fail = |i: usize, e: anyhow::Error| {
        if !failed[i].swap(true, Ordering::Relaxed) {
            report(&dirs.display_place(&files[i].place), e);
        }
    };
    // Where every blob goes, and each file's size.
    let mut uses: HashMap<(Id, Id), BlobUse> = HashMap::new();
    let mut sizes = vec![0u64; files.len()];
    let mut counts = vec![0u32; files.len()];
    for (i, f) in files.iter().enumerate() {
        let mut offset = 0u64;
        for id in f.node.content.as_deref().unwrap_or(&[]) {
            let Some(loc) = repo.index().lookup(BlobType::Data, id) else {
                fail(
                    i,
                    anyhow::Error::new(crate::Error::not_found(
                        crate::Object::Blob(*id),
                        format!("blob {id} not found in index"),
                    ))
                    .context(format!("file {}", dirs.display_place(&f.place).display())),
                );
                break;
            };
            let len = plain_len(&loc);
            uses.entry((loc.pack, *id))
                .or_insert_with(|| BlobUse {
                    loc,
                    targets: Vec::new(),
                })
                .targets
                .push((i, offset));
            offset += len;
            counts[i] += 1;
        }
        sizes[i] = offset;
    }
    // Each file is created (at its full size, so that zero runs stay holes) by the first
    // reader that has a blob for it; readers with blobs for the same file wait for that.
    let created: Vec<OnceLock<Result<(), String>>> =
        files.iter().map(|_| OnceLock::new()).collect();
    let remaining: Vec<AtomicU32> = counts.into_iter().map(AtomicU32::new).collect();
    let finished: Vec<AtomicBool> = files.iter().map(|_| AtomicBool::new(false)).collect();
    let progress = Progress {
        remaining: &remaining,
        finished: &finished,
        created: &created,
        sizes: &sizes,
        sparse: how.sparse,
        wrote: how.wrote,
    };
    let reads = plan_reads(uses.into_values().collect());
    let next = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..how.threads.max(1) {
            s.spawn(|| {
                let mut open = OpenFiles::default();
                loop {
                    if interrupted.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(r) = reads.get(i) else { break };
                    restore_read(
                        repo, dirs, files, r, &failed, &fail, &bytes, &mut open, &progress,
                    );
                }
            });
        }
    });
    Written {
        bytes: bytes.load(Ordering::Relaxed),
        complete: failed.iter().map(|f| !f.load(Ordering::Relaxed)).collect(),
        finished: finished.iter().map(|f| f.load(Ordering::Relaxed)).collect(),
    }
}

/// Blob uses still to be written per file, and which files got their metadata.
struct Progress<'a> {
    /// Zero blobs are left as holes (the file is created at its full size).
    sparse: bool,
    wrote: &'a (dyn Fn(u64) + Sync),
    remaining: &'a [AtomicU32],
    finished: &'a [AtomicBool],
    created: &'a [OnceLock<Result<(), String>>],
    sizes: &'a [u64],
}

/// Groups blobs by pack, in pack order, into ranged reads.
fn plan_reads(mut uses: Vec<BlobUse>) -> Vec<Read> {
    uses.sort_by_key(|u| (u.loc.pack, u.loc.blob.offset));
    let mut reads: Vec<Read> = Vec::new();
    for u in uses {
        let (start, len) = (u.loc.blob.offset as u64, u.loc.blob.length as u64);
        if let Some(r) = reads.last_mut() {
            let end = r.start + r.len;
            if r.pack == u.loc.pack
                && start >= end
                && start - end <= MAX_GAP
                && start + len - r.start <= MAX_RANGE
            {
                r.len = start + len - r.start;
                r.blobs.push(u);
                continue;
            }
        }
        reads.push(Read {
            pack: u.loc.pack,
            start,
            len,
            blobs: vec![u],
        });
    }
    // Large reads first, so that the last reader to finish is not stuck with a big one.
    reads.sort_by_key(|r| std::cmp::Reverse(r.len));
    reads
}

/// A reader's open files, so that a file written blob by blob is not reopened for each.
#[derive(Default)]
struct OpenFiles {
    files: HashMap<usize, std::fs::File>,
}

impl OpenFiles {
    /// Few enough that many readers stay far below the descriptor limit.
    const MAX: usize = 64;

    fn get(
        &mut self,
        i: usize,
        dirs: &Dirs,
        place: &Place,
        progress: &Progress,
    ) -> std::io::Result<&std::fs::File> {
        if !self.files.contains_key(&i) {
            if self.files.len() >= OpenFiles::MAX {
                self.files.clear();
            }
            let mut mine = None;
            let made = progress.created[i].get_or_init(|| {
                let f = dirs.create_file(place).and_then(|f| {
                    f.set_len(progress.sizes[i])?;
                    Ok(f)
                });
                match f {
                    Ok(f) => {
                        mine = Some(f);
                        Ok(())
                    }
                    Err(e) => Err(format!("create: {e}")),
                }
            });
            if let Err(e) = made {
                return Err(std::io::Error::other(e.clone()));
            }
            let f = match mine {
                Some(f) => f,
                None => dirs.open_file(place, true)?,
            };
            self.files.insert(i, f);
        }
        Ok(&self.files[&i])
    }
}

#[allow(clippy::too_many_arguments)]
fn restore_read(
    repo: &IndexedRepository,
    dirs: &Dirs,
    files: &[FileTask],
    r: &Read,
    failed: &[AtomicBool],
    fail: &(dyn Fn(usize, anyhow::Error) + Sync),
    bytes: &AtomicU64,
    open: &mut OpenFiles,
    progress: &Progress,
) {
    let h = cairn_backend::Handle::new(cairn_backend::FileType::Data, r.pack.to_hex());
    // One request for the whole range; if that fails, each blob on its own (which also tries
    // other copies of it).
    // A blob declaring a length beyond its ceiling is not read at all: load_blob below
    // reports it, naming pack and blob.
    let sane = r
        .blobs
        .iter()
        .all(|u| crate::format::limits::check_blob(&u.loc.blob).is_ok());
    let range = if sane {
        repo.backend().load(&h, r.start, r.len).ok()
    } else {
        None
    };
    for u in &r.blobs {
        let live: Vec<&(usize, u64)> = u
            .targets
            .iter()
            .filter(|(i, _)| !failed[*i].load(Ordering::Relaxed))
            .collect();
        if live.is_empty() {
            continue;
        }
        let from_range = range.as_ref().and_then(|data| {
            let off = (u.loc.blob.offset as u64 - r.start) as usize;
            let sealed = data.get(off..off + u.loc.blob.length as usize)?;
            repo.open_blob(&u.loc, sealed).ok()
        });
        let plain = match from_range {
            Some(p) => Ok(p),
            None => repo.load_blob(BlobType::Data, &u.loc.blob.id),
        };
        let plain = match plain {
            Ok(p) => p,
            Err(e) => {
                for (i, _) in live {
                    fail(
                        *i,
                        anyhow::anyhow!("{e:#}").context(format!(
                            "file {}",
                            dirs.display_place(&files[*i].place).display()
                        )),
                    );
                }
                continue;
            }
        };
        let zero = progress.sparse && super::is_zero(&plain);
        for &&(i, offset) in &live {
            if !zero {
                let place = &files[i].place;
                let res = open
                    .get(i, dirs, place, progress)
                    .and_then(|f| f.write_all_at(&plain, offset))
                    .with_context(|| format!("write {}", dirs.display_place(place).display()));
                if let Err(e) = res {
                    fail(i, e);
                    continue;
                }
            }
            bytes.fetch_add(plain.len() as u64, Ordering::Relaxed);
            (progress.wrote)(plain.len() as u64);
            if progress.remaining[i].fetch_sub(1, Ordering::AcqRel) == 1
                && !failed[i].load(Ordering::Relaxed)
            {
                // The last blob of this file: its metadata now, while it is open.
                let place = &files[i].place;
                let res = open
                    .get(i, dirs, place, progress)
                    .map_err(crate::Error::from)
                    .and_then(|f| super::fsops::apply_fd(f.as_raw_fd(), &files[i].node));
                open.files.remove(&i);
                match res {
                    Ok(()) => progress.finished[i].store(true, Ordering::Relaxed),
                    Err(e) => fail(
                        i,
                        anyhow::Error::from(e).context(format!(
                            "metadata of {}",
                            dirs.display_place(place).display()
                        )),
                    ),
                }
            }
        }
    }
}
