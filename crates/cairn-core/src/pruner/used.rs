//! Which blobs the snapshots still need: every tree reachable from a snapshot, and every data
//! blob those trees' files list.
//!
//! Marks are one bit per index entry (the index keeps its entries in sorted arrays), set with
//! an atomic OR so that several threads can walk trees at once without a lock and without a
//! hash set: a million blobs cost 250 KB here, where a set of ids would cost 50 MB or more.

use crate::format::pack::BlobType;
use crate::index::MasterIndex;
use crate::repository::Repository;
use crate::Id;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// One bit per index entry of each blob type.
pub struct Marks {
    data: Vec<AtomicU64>,
    tree: Vec<AtomicU64>,
}

impl Marks {
    pub fn new(idx: &MasterIndex) -> Marks {
        let words = |n: usize| (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        Marks {
            data: words(idx.blob_count(BlobType::Data)),
            tree: words(idx.blob_count(BlobType::Tree)),
        }
    }

    fn words(&self, ty: BlobType) -> &[AtomicU64] {
        match ty {
            BlobType::Data => &self.data,
            BlobType::Tree => &self.tree,
        }
    }

    /// Sets the bit; true if it was not set before.
    pub fn set(&self, ty: BlobType, pos: usize) -> bool {
        let bit = 1u64 << (pos % 64);
        self.words(ty)[pos / 64].fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    pub fn get(&self, ty: BlobType, pos: usize) -> bool {
        self.words(ty)[pos / 64].load(Ordering::Relaxed) & (1u64 << (pos % 64)) != 0
    }
}

/// A blob that a snapshot needs and the index does not have.
#[derive(Debug, Clone)]
pub struct Missing {
    pub ty: BlobType,
    pub id: Id,
    /// The tree that refers to it (None for a snapshot's root tree).
    pub parent: Option<Id>,
}

/// Marks every blob reachable from `roots` (a blob's first index entry stands for all its
/// copies). Trees are read on `threads` threads. Returns the blobs that are referenced but not
/// in the index; a tree that cannot be read is an error (its contents are unknown, so nothing
/// may be deleted).
pub fn mark_used(
    repo: &Repository,
    roots: &[Id],
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<(Marks, Vec<Missing>)> {
    let idx = repo.index();
    let marks = Marks::new(idx);
    let missing = Mutex::new(Vec::new());
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let failed = AtomicBool::new(false);
    let trees_done = AtomicU64::new(0);
    // Trees queued or being read; the walk is over when it drops to zero.
    let pending = AtomicUsize::new(0);
    let (tx, rx) = crossbeam_channel::unbounded::<Option<(Id, Option<Id>)>>();
    let threads = threads.max(1);

    let enqueue = |id: Id, parent: Option<Id>| {
        let copies = idx.copies(BlobType::Tree, &id);
        if copies.is_empty() {
            lock(&missing).push(Missing {
                ty: BlobType::Tree,
                id,
                parent,
            });
            return;
        }
        if marks.set(BlobType::Tree, copies.start) {
            pending.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(Some((id, parent)));
        }
    };
    for r in roots {
        enqueue(*r, None);
    }
    if pending.load(Ordering::SeqCst) == 0 {
        return Ok((marks, missing.into_inner().unwrap_or_default()));
    }
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while let Ok(Some((id, _parent))) = rx.recv() {
                    if !failed.load(Ordering::Relaxed) {
                        match repo.load_tree(&id) {
                            Ok(tree) => {
                                for node in &tree.nodes {
                                    for c in node.content.iter().flatten() {
                                        let copies = idx.copies(BlobType::Data, c);
                                        if copies.is_empty() {
                                            lock(&missing).push(Missing {
                                                ty: BlobType::Data,
                                                id: *c,
                                                parent: Some(id),
                                            });
                                        } else {
                                            marks.set(BlobType::Data, copies.start);
                                        }
                                    }
                                    if let Some(sub) = node.subtree {
                                        enqueue(sub, Some(id));
                                    }
                                }
                                progress(trees_done.fetch_add(1, Ordering::Relaxed) + 1);
                            }
                            Err(e) => {
                                lock(&failure)
                                    .get_or_insert(e.context(format!("reading tree {id}")));
                                failed.store(true, Ordering::SeqCst);
                            }
                        }
                    }
                    if pending.fetch_sub(1, Ordering::SeqCst) == 1 {
                        // The last tree is done: release every walker.
                        for _ in 0..threads {
                            let _ = tx.send(None);
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    Ok((marks, missing.into_inner().unwrap_or_default()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
