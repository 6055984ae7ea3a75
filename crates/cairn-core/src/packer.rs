//! Packing blobs: compress, encrypt, append to an open pack; full packs go to an uploader
//! thread, which stores them and then records them in index files.
//!
//! Ordering is what keeps a repository valid through a crash: a pack is durable before any
//! index names it, and (in the archiver) every index is durable before the snapshot.

use crate::crypto::Key;
use crate::format::indexfile::{IndexBlob, IndexFile, IndexPack};
use crate::format::pack::{self, BlobType, PackedBlob};
use crate::format::unpacked;
use crate::index::MasterIndex;
use crate::Id;
use cairn_backend::{Backend, FileType, Handle, Staged};
use crossbeam_channel::{bounded, Sender};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// restic's `--compression` levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    Off,
    Fastest,
    #[default]
    Auto,
    Better,
    Max,
}

impl Compression {
    pub fn parse(s: &str) -> crate::Result<Compression> {
        Ok(match s {
            "off" => Compression::Off,
            "fastest" => Compression::Fastest,
            "auto" => Compression::Auto,
            "better" => Compression::Better,
            "max" => Compression::Max,
            o => crate::error::invalid!(
                "invalid compression mode {o:?} (off, fastest, auto, better, max)"
            ),
        })
    }

    /// zstd level for data blobs; `None` stores them as they are.
    fn data_level(self) -> Option<i32> {
        match self {
            Compression::Off => None,
            Compression::Fastest => Some(1),
            Compression::Auto => Some(3),
            Compression::Better => Some(7),
            Compression::Max => Some(11),
        }
    }
}

/// Default target pack size, as restic's.
pub const PACK_SIZE: usize = 16 * 1024 * 1024;
/// Start a new index file after this many blobs (restic's limit).
const INDEX_MAX_BLOBS: usize = 50_000;
/// Packs written at the same time; fsync dominates a local save, so overlapping them pays.
const UPLOADERS: usize = 3;

/// State the uploader threads share: where to store, and the index being collected.
struct UploadShared {
    backend: Arc<dyn Backend>,
    key: Key,
    version: u32,
    pending: Mutex<IndexFile>,
    /// The first storage error, so that every later refusal can name the real cause.
    cause: Mutex<Option<String>>,
    /// Packs closed but not yet stored and recorded for the index, by sequence number.
    in_flight: Mutex<std::collections::BTreeSet<u64>>,
    stored: std::sync::Condvar,
    packs: AtomicU64,
    index_files: AtomicU64,
    /// Data blobs in packs stored so far (indexed or not): a killed run's successor adopts
    /// those packs, so a file whose blobs are all here may go to the resume log already.
    durable: Mutex<HashSet<Id>>,
    /// Packs stored since the resume log last asked (see [`BlobWriter::take_stored_packs`]).
    stored_packs: Mutex<Vec<Id>>,
}

impl UploadShared {
    /// Stores a pack durably, then records it for the next index file.
    fn store(&self, p: FinishedPack) -> anyhow::Result<()> {
        let seq = p.seq;
        let res = self.store_pack(p);
        // Done with this pack either way: a checkpoint waiting for it must wake up (and will
        // see the failure).
        lock(&self.in_flight).remove(&seq);
        self.stored.notify_all();
        res
    }

    fn store_pack(&self, p: FinishedPack) -> anyhow::Result<()> {
        let id = p.id;
        let h = Handle::new(FileType::Data, id.to_hex());
        // Packs of trees are what browsing and the next backup read: worth a local copy.
        if p.blobs.iter().all(|b| b.ty == BlobType::Tree) {
            self.backend.save_cacheable(&h, p.staged)?;
        } else {
            self.backend.save_staged(&h, p.staged)?;
        }
        self.packs.fetch_add(1, Ordering::Relaxed);
        {
            let mut durable = lock(&self.durable);
            durable.extend(
                p.blobs
                    .iter()
                    .filter(|b| b.ty == BlobType::Data)
                    .map(|b| b.id),
            );
        }
        lock(&self.stored_packs).push(id);
        let full = {
            let mut pending = lock(&self.pending);
            pending.packs.push(IndexPack {
                id,
                blobs: p.blobs.iter().map(IndexBlob::from_packed).collect(),
            });
            if pending.blob_count() >= INDEX_MAX_BLOBS {
                Some(std::mem::take(&mut *pending))
            } else {
                None
            }
        };
        match full {
            Some(f) => self.write_index(&f),
            None => Ok(()),
        }
    }

    fn note_failure(&self, e: &anyhow::Error) {
        lock(&self.cause).get_or_insert_with(|| format!("{e:#}"));
    }

    fn failure(&self) -> anyhow::Error {
        match lock(&self.cause).as_deref() {
            Some(c) => anyhow::anyhow!("{c}"),
            None => anyhow::anyhow!("saving packs failed"),
        }
    }

    fn write_index(&self, f: &IndexFile) -> anyhow::Result<()> {
        if f.packs.is_empty() {
            return Ok(());
        }
        let sealed = unpacked::encode(self.version, &self.key, &f.to_json())?;
        let id = Id::hash(&sealed);
        self.backend
            .save(&Handle::new(FileType::Index, id.to_hex()), &sealed)?;
        self.index_files.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn flush_index(&self) -> anyhow::Result<()> {
        let f = std::mem::take(&mut *lock(&self.pending));
        self.write_index(&f)
    }
}

/// A pack being filled. Its bytes go straight to the backend's staging area (a file, for local
/// repositories) and into the hash that will name it, so no pack is ever held in memory.
struct OpenPack {
    staged: Option<Staged>,
    hasher: Sha256,
    len: u64,
    blobs: Vec<PackedBlob>,
}

impl OpenPack {
    fn new() -> OpenPack {
        OpenPack {
            staged: None,
            hasher: Sha256::new(),
            len: 0,
            blobs: Vec::new(),
        }
    }

    fn append(&mut self, backend: &dyn Backend, data: &[u8]) -> anyhow::Result<()> {
        if self.staged.is_none() {
            self.staged = Some(backend.stage(FileType::Data)?);
        }
        self.staged.as_mut().expect("staged above").append(data)?;
        self.hasher.update(data);
        self.len += data.len() as u64;
        Ok(())
    }
}

struct FinishedPack {
    /// Order in which packs were closed, for checkpoints.
    seq: u64,
    id: Id,
    staged: Staged,
    blobs: Vec<PackedBlob>,
}

/// Counters reported in the snapshot summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriterStats {
    pub data_blobs: u64,
    pub tree_blobs: u64,
    /// Plaintext bytes of new blobs.
    pub data_added: u64,
    /// Bytes of new blobs as stored (compressed and encrypted).
    pub data_added_packed: u64,
    pub packs: u64,
    pub index_files: u64,
}

#[derive(Default)]
struct Counters {
    data_blobs: AtomicU64,
    tree_blobs: AtomicU64,
    data_added: AtomicU64,
    data_added_packed: AtomicU64,
}

/// A concurrent blob sink for one backup (or any writer): call [`BlobWriter::save`] from many
/// threads, then [`BlobWriter::finish`] once.
pub struct BlobWriter<'a> {
    key: Key,
    version: u32,
    compression: Compression,
    pack_size: usize,
    /// Decrypt (and decompress) every blob again before it is stored (restic 0.17's check
    /// against memory errors and bugs; `--no-extra-verify` turns it off).
    extra_verify: bool,
    /// Count what would be stored, store nothing (`--dry-run`).
    dry_run: bool,
    known: &'a MasterIndex,
    seen: [Mutex<HashSet<Id>>; 2],
    open: [Mutex<OpenPack>; 2],
    tx: Option<Sender<FinishedPack>>,
    next_seq: AtomicU64,
    uploaders: Vec<JoinHandle<anyhow::Result<()>>>,
    shared: Arc<UploadShared>,
    failed: Arc<AtomicBool>,
    counters: Counters,
}

fn slot(ty: BlobType) -> usize {
    match ty {
        BlobType::Data => 0,
        BlobType::Tree => 1,
    }
}

impl<'a> BlobWriter<'a> {
    /// A writer into `repo`'s storage with its key and format version, deduplicating against
    /// `known`.
    pub fn for_repo(
        repo: &crate::repository::Repository,
        compression: Compression,
        known: &'a MasterIndex,
    ) -> BlobWriter<'a> {
        let mut w = BlobWriter::new(
            repo.backend().clone(),
            repo.key().clone(),
            repo.version(),
            compression,
            known,
        );
        w.pack_size = repo.pack_size();
        w.extra_verify = repo.extra_verify();
        w
    }

    pub fn new(
        backend: Arc<dyn Backend>,
        key: Key,
        version: u32,
        compression: Compression,
        known: &'a MasterIndex,
    ) -> BlobWriter<'a> {
        // Finished packs wait here for an uploader. For staged files this costs no memory;
        // for buffering backends it bounds memory to a few pack sizes.
        let (tx, rx) = bounded::<FinishedPack>(2);
        let failed = Arc::new(AtomicBool::new(false));
        let connections = backend.connections();
        let shared = Arc::new(UploadShared {
            backend,
            key: key.clone(),
            version,
            pending: Mutex::new(IndexFile::default()),
            cause: Mutex::new(None),
            in_flight: Mutex::new(std::collections::BTreeSet::new()),
            stored: std::sync::Condvar::new(),
            packs: AtomicU64::new(0),
            index_files: AtomicU64::new(0),
            durable: Mutex::new(HashSet::new()),
            stored_packs: Mutex::new(Vec::new()),
        });
        // As many uploads at once as the backend takes (`-o *.connections`).
        let uploaders = (0..UPLOADERS.max(connections))
            .map(|i| {
                let rx = rx.clone();
                let shared = shared.clone();
                let failed = failed.clone();
                std::thread::Builder::new()
                    .name(format!("cairn-upload-{i}"))
                    .spawn(move || -> anyhow::Result<()> {
                        let res = rx.iter().try_for_each(|p| shared.store(p));
                        if let Err(e) = &res {
                            shared.note_failure(e);
                            failed.store(true, Ordering::SeqCst);
                            // Drain so that senders never block on a dead uploader.
                            for _ in rx.iter() {}
                        }
                        res
                    })
                    .expect("spawn uploader thread")
            })
            .collect();
        BlobWriter {
            key,
            version,
            compression,
            pack_size: PACK_SIZE,
            extra_verify: true,
            dry_run: false,
            known,
            seen: [Mutex::new(HashSet::new()), Mutex::new(HashSet::new())],
            open: [Mutex::new(OpenPack::new()), Mutex::new(OpenPack::new())],
            tx: Some(tx),
            next_seq: AtomicU64::new(0),
            uploaders,
            shared,
            failed,
            counters: Counters::default(),
        }
    }

    /// Makes this writer count blobs without compressing, encrypting or storing anything.
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }

    /// Is this blob already stored, or being stored by this writer?
    pub fn is_known(&self, ty: BlobType, id: &Id) -> bool {
        self.known.has(ty, id) || lock(&self.seen[slot(ty)]).contains(id)
    }

    /// Is every one of these data blobs in the index or in a pack this writer has stored
    /// (so that a re-run has it, adopting the pack if no index names it yet)?
    pub fn all_stored(&self, ids: &[Id]) -> bool {
        let durable = lock(&self.shared.durable);
        ids.iter()
            .all(|id| durable.contains(id) || self.known.has(BlobType::Data, id))
    }

    /// The packs stored (durably) since the last call.
    pub fn take_stored_packs(&self) -> Vec<Id> {
        std::mem::take(&mut *lock(&self.shared.stored_packs))
    }

    /// Stores a blob unless it is known. Returns whether it was new.
    pub fn save(&self, ty: BlobType, id: Id, plain: &[u8]) -> crate::Result<bool> {
        if self.failed.load(Ordering::Relaxed) {
            return Err(self.shared.failure().into());
        }
        if self.known.has(ty, &id) || !lock(&self.seen[slot(ty)]).insert(id) {
            return Ok(false);
        }
        if self.dry_run {
            let counter = match ty {
                BlobType::Data => &self.counters.data_blobs,
                BlobType::Tree => &self.counters.tree_blobs,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            self.counters
                .data_added
                .fetch_add(plain.len() as u64, Ordering::Relaxed);
            return Ok(true);
        }
        // Compress and encrypt outside any lock: this is where the CPU time goes.
        let level = match (self.version, ty) {
            (1, _) => None,
            (_, BlobType::Tree) => Some(3),
            (_, BlobType::Data) => self.compression.data_level(),
        };
        // Keep whichever form is smaller; both are valid for readers.
        let compressed = level
            .and_then(|l| compress(plain, l))
            .filter(|z| z.len() < plain.len());
        let (payload, ulen) = match &compressed {
            Some(z) => (z.as_slice(), plain.len() as u32),
            None => (plain, 0),
        };
        let sealed = self.key.seal(payload);
        if self.extra_verify {
            verify_sealed(&self.key, &sealed, plain, compressed.is_some())
                .map_err(|e| e.context(format!("{ty:?} blob {id}: not stored")))?;
        }
        let slen = sealed.len() as u64;
        let full = {
            let mut op = lock(&self.open[slot(ty)]);
            let offset = op.len as u32;
            if let Err(e) = op.append(&*self.shared.backend, &sealed) {
                // A partly written blob would corrupt this pack: drop it (its staged file goes
                // with it) and refuse further work; the snapshot will not be written.
                *op = OpenPack::new();
                self.shared.note_failure(&e);
                self.failed.store(true, Ordering::SeqCst);
                return Err(e.into());
            }
            op.blobs.push(PackedBlob {
                ty,
                id,
                offset,
                length: sealed.len() as u32,
                uncompressed_length: ulen,
            });
            if op.len >= self.pack_size as u64 {
                Some(self.take(&mut op))
            } else {
                None
            }
        };
        match ty {
            BlobType::Data => self.counters.data_blobs.fetch_add(1, Ordering::Relaxed),
            BlobType::Tree => self.counters.tree_blobs.fetch_add(1, Ordering::Relaxed),
        };
        self.counters
            .data_added
            .fetch_add(plain.len() as u64, Ordering::Relaxed);
        self.counters
            .data_added_packed
            .fetch_add(slen, Ordering::Relaxed);
        if let Some(op) = full {
            self.send(op)?;
        }
        Ok(true)
    }

    /// Takes an open pack out (call with its lock held) and registers it as in flight, so that
    /// a checkpoint from then on waits for it.
    fn take(&self, op: &mut OpenPack) -> (OpenPack, u64) {
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        if !op.blobs.is_empty() {
            lock(&self.shared.in_flight).insert(seq);
        }
        (std::mem::replace(op, OpenPack::new()), seq)
    }

    /// Closes a taken pack and queues it; returns its sequence number.
    fn send(&self, (mut op, seq): (OpenPack, u64)) -> anyhow::Result<Option<u64>> {
        if op.blobs.is_empty() {
            return Ok(None);
        }
        let res = self.close_and_queue(&mut op, seq);
        if res.is_err() {
            lock(&self.shared.in_flight).remove(&seq);
            self.shared.stored.notify_all();
        }
        res.map(|_| Some(seq))
    }

    fn close_and_queue(&self, op: &mut OpenPack, seq: u64) -> anyhow::Result<()> {
        let mut trailer = Vec::new();
        pack::finish(&mut trailer, &self.key, &op.blobs);
        op.append(&*self.shared.backend, &trailer)?;
        let id = Id(std::mem::take(&mut op.hasher).finalize().into());
        let staged = op.staged.take().expect("a pack with blobs is staged");
        let tx = self.tx.as_ref().expect("writer not finished");
        tx.send(FinishedPack {
            seq,
            id,
            staged,
            blobs: std::mem::take(&mut op.blobs),
        })
        .map_err(|_| self.shared.failure())
    }

    /// A durable point: every blob saved before this call is, when it returns, in a stored
    /// pack named by a stored index file. Open packs are closed early for it (a few small
    /// packs, which prune can merge later); a crash after a checkpoint loses nothing saved
    /// before it.
    pub fn checkpoint(&self) -> crate::Result<()> {
        if self.dry_run {
            return Ok(());
        }
        let mut last = None;
        for i in 0..2 {
            let taken = self.take(&mut lock(&self.open[i]));
            if let Some(seq) = self.send(taken)? {
                last = Some(seq);
            }
        }
        // Every pack closed up to now (by us or by a writer thread) must be stored.
        let target = last.unwrap_or_else(|| self.next_seq.load(Ordering::SeqCst));
        let mut inflight = lock(&self.shared.in_flight);
        while inflight.first().is_some_and(|first| *first <= target) {
            if self.failed.load(Ordering::Relaxed) {
                return Err(self.shared.failure().into());
            }
            inflight = self
                .shared
                .stored
                .wait_timeout(inflight, std::time::Duration::from_millis(200))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(inflight);
        if self.failed.load(Ordering::Relaxed) {
            return Err(self.shared.failure().into());
        }
        Ok(self.shared.flush_index()?)
    }

    /// Stores the open packs, waits for all uploads and their index files.
    pub fn finish(mut self) -> crate::Result<WriterStats> {
        let mut first_err = None;
        for i in 0..2 {
            let taken = self.take(&mut lock(&self.open[i]));
            if let Err(e) = self.send(taken) {
                first_err.get_or_insert(e);
            }
        }
        drop(self.tx.take());
        for h in std::mem::take(&mut self.uploaders) {
            let r = h
                .join()
                .map_err(|_| anyhow::anyhow!("uploader thread panicked"))
                .and_then(|r| r);
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        // Whatever was stored gets indexed, even when the backup was interrupted or failed:
        // a re-run then finds those blobs and does not upload them again.
        let flushed = self.shared.flush_index();
        if let Some(e) = first_err {
            return Err(e.into());
        }
        flushed?;
        let packs = self.shared.packs.load(Ordering::Relaxed);
        let index_files = self.shared.index_files.load(Ordering::Relaxed);
        Ok(WriterStats {
            data_blobs: self.counters.data_blobs.load(Ordering::Relaxed),
            tree_blobs: self.counters.tree_blobs.load(Ordering::Relaxed),
            data_added: self.counters.data_added.load(Ordering::Relaxed),
            data_added_packed: self.counters.data_added_packed.load(Ordering::Relaxed),
            packs,
            index_files,
        })
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        drop(self.tx.take());
        for h in std::mem::take(&mut self.uploaders) {
            let _ = h.join();
        }
        let _ = self.shared.flush_index();
    }
}

thread_local! {
    /// One zstd context per thread and level: creating a context per blob costs more than
    /// compressing a small blob.
    static ZSTD: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

fn compress(plain: &[u8], level: i32) -> Option<Vec<u8>> {
    ZSTD.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().map(|(l, _)| *l) != Some(level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level).ok()?));
        }
        let (_, c) = slot.as_mut()?;
        c.compress(plain).ok()
    })
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens a blob just sealed and compares it with what went in: the encryption (its MAC) and
/// the compression must both give back the plaintext, byte for byte.
fn verify_sealed(
    key: &crate::crypto::Key,
    sealed: &[u8],
    plain: &[u8],
    compressed: bool,
) -> anyhow::Result<()> {
    let payload = key
        .open(sealed)
        .map_err(|e| anyhow::anyhow!("extra verification: decryption failed: {e}"))?;
    let same = if compressed {
        crate::format::limits::decompress_exact(&payload, plain.len())
            .map(|back| back == plain)
            .unwrap_or(false)
    } else {
        payload == plain
    };
    if !same {
        anyhow::bail!("extra verification: the sealed blob does not give back its data");
    }
    Ok(())
}

#[cfg(test)]
mod verify_tests {
    use super::verify_sealed;

    #[test]
    fn sealed_blobs_are_checked_against_their_data() {
        let key = crate::crypto::Key::random();
        let plain =
            b"some data that compresses: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec();
        let z = zstd::bulk::compress(&plain, 3).unwrap();
        let sealed = key.seal(&z);
        verify_sealed(&key, &sealed, &plain, true).unwrap();
        // A bit flipped after sealing, a compressor that lost data, the wrong plaintext.
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert!(verify_sealed(&key, &bad, &plain, true).is_err());
        let lossy = key.seal(&zstd::bulk::compress(&plain[1..], 3).unwrap());
        assert!(verify_sealed(&key, &lossy, &plain, true).is_err());
        let raw = key.seal(&plain);
        verify_sealed(&key, &raw, &plain, false).unwrap();
        assert!(verify_sealed(&key, &raw, b"other", false).is_err());
    }
}
