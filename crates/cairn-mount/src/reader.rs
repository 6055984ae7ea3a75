//! File contents: the blob cache, open files, and the threads that serve reads and read ahead.

use cairn_core::blobcache::BoundedCache;
use cairn_core::format::pack::BlobType;
use cairn_core::{Id, IndexedRepository};
use crossbeam_channel::{Receiver, Sender};
use fuser::ReplyData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// How many blobs past the one being read are fetched ahead, and at most how many bytes.
const AHEAD_BLOBS: usize = 4;
const AHEAD_BYTES: u64 = 16 << 20;

/// What the session thread and the reader threads share.
pub struct Shared {
    repo: RwLock<IndexedRepository>,
    pub blobs: BoundedCache<Arc<[u8]>>,
    pub log: Box<dyn Fn(&str) + Send + Sync>,
}

impl Shared {
    pub fn new(
        repo: IndexedRepository,
        cache_bytes: usize,
        log: Box<dyn Fn(&str) + Send + Sync>,
    ) -> Shared {
        Shared {
            repo: RwLock::new(repo),
            blobs: BoundedCache::new(cache_bytes),
            log,
        }
    }

    pub fn repo(&self) -> RwLockReadGuard<'_, IndexedRepository> {
        self.repo.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Only to swap in a reloaded index.
    pub fn repo_mut(&self) -> RwLockWriteGuard<'_, IndexedRepository> {
        self.repo.write().unwrap_or_else(|e| e.into_inner())
    }

    /// A data blob, from the cache or the repository (loaded once however many ask at once).
    pub fn blob(&self, id: &Id) -> cairn_core::Result<Arc<[u8]>> {
        self.blobs.get_or_load(
            id,
            |b: &Arc<[u8]>| b.len(),
            || Ok(Arc::from(self.repo().load_blob(BlobType::Data, id)?)),
        )
    }
}

/// An open file: its blobs and where each ends in the file.
pub struct Handle {
    content: Arc<[Id]>,
    /// End offset of each blob, by the plaintext sizes the index gives.
    ends: Vec<u64>,
    size: u64,
    /// Blobs up to this index have been scheduled for read-ahead.
    ahead: AtomicUsize,
}

impl Handle {
    pub fn new(repo: &IndexedRepository, content: Arc<[Id]>, size: u64) -> anyhow::Result<Handle> {
        let mut ends = Vec::with_capacity(content.len());
        let mut end = 0u64;
        for id in content.iter() {
            let n = repo
                .index()
                .plain_size(BlobType::Data, id)
                .ok_or_else(|| anyhow::anyhow!("data blob {} is not in the index", id.short()))?;
            end = end.saturating_add(n);
            ends.push(end);
        }
        Ok(Handle {
            content,
            ends,
            size,
            ahead: AtomicUsize::new(0),
        })
    }

    fn start_of(&self, i: usize) -> u64 {
        if i == 0 {
            0
        } else {
            self.ends[i - 1]
        }
    }

    /// Bytes `offset..offset + len` (fewer at the end of the file, or where the blobs hold
    /// less than the file's size says); the index of the last blob touched.
    fn read(&self, shared: &Shared, offset: u64, len: u32) -> anyhow::Result<(Vec<u8>, usize)> {
        let end = offset.saturating_add(u64::from(len)).min(self.size);
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let mut i = self.ends.partition_point(|e| *e <= offset);
        let mut pos = offset;
        let mut last = i;
        while pos < end && i < self.content.len() {
            let blob = shared.blob(&self.content[i])?;
            let start = self.start_of(i);
            let from = (pos - start) as usize;
            let to = ((end - start).min(blob.len() as u64)) as usize;
            if from >= to {
                break;
            }
            out.extend_from_slice(&blob[from..to]);
            pos = start + to as u64;
            last = i;
            i += 1;
        }
        Ok((out, last))
    }

    /// Blobs after `last` to fetch ahead, each at most once per open file.
    fn ahead_of(&self, last: usize) -> Vec<Id> {
        let n = self.content.len();
        // `last` may be past the end when the file claims more bytes than its blobs hold.
        let from = (last + 1).min(n);
        let mut until = from;
        let mut bytes = 0;
        while until < n && until - from < AHEAD_BLOBS && bytes < AHEAD_BYTES {
            bytes += self.ends[until] - self.start_of(until);
            until += 1;
        }
        let before = self.ahead.fetch_max(until, Ordering::Relaxed);
        if before >= until {
            return Vec::new();
        }
        self.content[from.max(before)..until].to_vec()
    }
}

enum Job {
    Read(Arc<Handle>, u64, u32, ReplyData),
    Fetch(Id),
}

/// Reader threads for requests, and fewer for read-ahead, so that fetching ahead never
/// keeps a request waiting for a thread.
pub struct Pool {
    reads: Sender<Job>,
    fetches: Sender<Job>,
    shared: Arc<Shared>,
}

impl Pool {
    pub fn new(shared: Arc<Shared>, threads: usize) -> Pool {
        let (reads, read_rx) = crossbeam_channel::unbounded();
        // Bounded: read-ahead beyond what the threads can do soon is dropped, not queued.
        let (fetches, fetch_rx) = crossbeam_channel::bounded(64);
        let threads = threads.max(1);
        // Reader threads hold a sender for read-ahead: once the pool is dropped they end,
        // and with them the read-ahead threads.
        for n in 0..threads {
            let (rx, s, ahead) = (read_rx.clone(), shared.clone(), fetches.clone());
            let _ = std::thread::Builder::new()
                .name(format!("mount-read-{n}"))
                .spawn(move || serve(&s, &rx, Some(&ahead)));
        }
        for n in 0..threads.div_ceil(2) {
            let (rx, s) = (fetch_rx.clone(), shared.clone());
            let _ = std::thread::Builder::new()
                .name(format!("mount-ahead-{n}"))
                .spawn(move || serve(&s, &rx, None));
        }
        Pool {
            reads,
            fetches,
            shared,
        }
    }

    pub fn read(&self, h: Arc<Handle>, offset: u64, len: u32, reply: ReplyData) {
        if let Err(e) = self.reads.send(Job::Read(h, offset, len, reply)) {
            if let Job::Read(.., reply) = e.into_inner() {
                reply.error(libc::EIO);
            }
        }
    }

    pub fn prefetch(&self, ids: Vec<Id>) {
        for id in ids {
            if self.shared.blobs.has_or_loading(&id) {
                continue;
            }
            if self.fetches.try_send(Job::Fetch(id)).is_err() {
                break;
            }
        }
    }
}

fn serve(shared: &Shared, rx: &Receiver<Job>, ahead: Option<&Sender<Job>>) {
    for job in rx.iter() {
        // A bug must cost one request (its reply, dropped unsent, becomes EIO), not a
        // thread of the pool.
        let run = std::panic::AssertUnwindSafe(|| serve_one(shared, job, ahead));
        if std::panic::catch_unwind(run).is_err() {
            (shared.log)("internal error while reading (answered with EIO)");
        }
    }
}

fn serve_one(shared: &Shared, job: Job, ahead: Option<&Sender<Job>>) {
    {
        match job {
            Job::Read(h, offset, len, reply) => match h.read(shared, offset, len) {
                Ok((data, last)) => {
                    reply.data(&data);
                    if let Some(ahead) = ahead {
                        for id in h.ahead_of(last) {
                            if !shared.blobs.has_or_loading(&id) {
                                let _ = ahead.try_send(Job::Fetch(id));
                            }
                        }
                    }
                }
                Err(e) => {
                    (shared.log)(&format!("read: {e:#}"));
                    reply.error(libc::EIO);
                }
            },
            Job::Fetch(id) => {
                if let Err(e) = shared.blob(&id) {
                    (shared.log)(&format!("read-ahead: {e:#}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_ahead_stays_within_the_file_and_schedules_each_blob_once() {
        let ids: Vec<Id> = (0..6u8).map(|n| Id::hash(&[n])).collect();
        let h = Handle {
            content: ids.clone().into(),
            ends: vec![10, 20, 30, 40, 50, 60],
            // A forged size beyond what the blobs hold.
            size: 1 << 40,
            ahead: AtomicUsize::new(0),
        };
        assert_eq!(h.ahead_of(0), ids[1..5]);
        assert_eq!(h.ahead_of(1), ids[5..6]);
        assert!(h.ahead_of(1).is_empty());
        assert!(h.ahead_of(5).is_empty());
        assert!(h.ahead_of(99).is_empty());
    }
}
