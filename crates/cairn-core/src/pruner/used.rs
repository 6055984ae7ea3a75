//! Which blobs the snapshots still need: every tree reachable from a snapshot, and every data
//! blob those trees' files list.
//!
//! Marks are one bit per index entry (the index keeps its entries in sorted arrays), set with
//! an atomic OR so that several threads can walk trees at once without a lock and without a
//! hash set: a million blobs cost 250 KB here, where a set of ids would cost 50 MB or more.

use crate::format::pack::BlobType;
use crate::format::tree::{Node, NodeType, Tree};
use crate::index::MasterIndex;
use crate::repository::IndexedRepository;
use crate::walk::{walk, Visit, Visitor, WalkOptions, MAX_DEPTH};
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
/// copies). Each root is walked by [`walk`] (iterative, depth-limited); threads take roots in
/// turn and skip trees already marked, so every distinct tree is read once (DAG-shaped
/// snapshots cost no more than their distinct trees). Returns the blobs that are referenced
/// but not in the index; a tree that cannot be read, or trees nested deeper than
/// [`MAX_DEPTH`], are an error (the contents are unknown, so nothing may be deleted).
pub fn mark_used(
    repo: &IndexedRepository,
    roots: &[Id],
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
    cancelled: &(dyn Fn() -> bool + Sync),
) -> crate::Result<(Marks, Vec<Missing>)> {
    let idx = repo.index();
    let marks = Marks::new(idx);
    let missing = Mutex::new(Vec::new());
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let failed = AtomicBool::new(false);
    let trees_done = AtomicU64::new(0);
    let next = AtomicUsize::new(0);
    let opts = WalkOptions {
        interrupted: Some(&failed),
        max_depth: MAX_DEPTH,
        refuse_dag_bombs: false,
        ..Default::default()
    };
    std::thread::scope(|s| {
        for _ in 0..threads.max(1).min(roots.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(root) = roots.get(i) else { break };
                if failed.load(Ordering::Relaxed) {
                    break;
                }
                let mut v = MarkVisitor {
                    idx,
                    marks: &marks,
                    missing: &missing,
                    trees_done: &trees_done,
                    progress,
                    cancelled,
                };
                if !v.enter(*root, None) {
                    continue;
                }
                if let Err(e) = walk(repo, *root, b"", &opts, &mut v) {
                    // Another walk's failure stops this one as "interrupted": keep the first.
                    lock(&failure).get_or_insert(e.into());
                    failed.store(true, Ordering::SeqCst);
                    break;
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e.into());
    }
    Ok((marks, missing.into_inner().unwrap_or_default()))
}

struct MarkVisitor<'a> {
    idx: &'a MasterIndex,
    marks: &'a Marks,
    missing: &'a Mutex<Vec<Missing>>,
    trees_done: &'a AtomicU64,
    progress: &'a (dyn Fn(u64) + Sync),
    cancelled: &'a (dyn Fn() -> bool + Sync),
}

impl MarkVisitor<'_> {
    /// Marks tree `id`; true if this walk is the first to reach it and must read it.
    fn enter(&self, id: Id, parent: Option<Id>) -> bool {
        let copies = self.idx.copies(BlobType::Tree, &id);
        if copies.is_empty() {
            lock(self.missing).push(Missing {
                ty: BlobType::Tree,
                id,
                parent,
            });
            return false;
        }
        self.marks.set(BlobType::Tree, copies.start)
    }
}

impl Visitor for MarkVisitor<'_> {
    fn node(&mut self, _path: &[u8], node: &Node, _depth: usize) -> anyhow::Result<Visit> {
        if (self.cancelled)() {
            return Err(crate::Error::Interrupted.into());
        }
        // Missing subtrees were recorded in `tree`, with their parent.
        Ok(match node.subtree {
            Some(sub) if node.kind == NodeType::Dir => {
                let copies = self.idx.copies(BlobType::Tree, &sub);
                if !copies.is_empty() && self.marks.set(BlobType::Tree, copies.start) {
                    Visit::Descend
                } else {
                    Visit::Skip
                }
            }
            _ => Visit::Skip,
        })
    }

    fn tree(&mut self, _path: &[u8], id: &Id, tree: &Tree) -> anyhow::Result<()> {
        for node in &tree.nodes {
            for c in node.content.iter().flatten() {
                let copies = self.idx.copies(BlobType::Data, c);
                if copies.is_empty() {
                    lock(self.missing).push(Missing {
                        ty: BlobType::Data,
                        id: *c,
                        parent: Some(*id),
                    });
                } else {
                    self.marks.set(BlobType::Data, copies.start);
                }
            }
            if let Some(sub) = node.subtree {
                if self.idx.copies(BlobType::Tree, &sub).is_empty() {
                    lock(self.missing).push(Missing {
                        ty: BlobType::Tree,
                        id: sub,
                        parent: Some(*id),
                    });
                }
            }
        }
        (self.progress)(self.trees_done.fetch_add(1, Ordering::Relaxed) + 1);
        Ok(())
    }

    fn tree_error(&mut self, _path: &[u8], id: &Id, err: anyhow::Error) -> anyhow::Result<()> {
        Err(err.context(format!("reading tree {id}")))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
