//! Snapshots → trees → blobs: everything a snapshot reaches must be indexed and readable.
//!
//! Snapshots are walked with [`crate::walk`] on several threads; each tree is checked once (a
//! mark bit in the index), however many snapshots or directories share it.

use super::read::load_blob;
use super::{Checker, Finding, Place, Problem};
use crate::format::pack::BlobType;
use crate::format::tree::{name_problem, Node, NodeType, Tree};
use crate::walk::{lossy_path, walk_from, TreeSource, Visit, Visitor, WalkOptions, MAX_DEPTH};
use crate::{Error, Id};
use cairn_backend::FileType;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Counts from a structure check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StructureStats {
    pub snapshots: u64,
    pub trees: u64,
}

/// Loads trees as `check` does (see [`Checker::load_tree`]).
struct CheckSource<'c, 'r>(&'c Checker<'r>);

impl TreeSource for CheckSource<'_, '_> {
    fn load_tree(&self, id: &Id) -> anyhow::Result<Tree> {
        let found = self.0.index.find(BlobType::Tree, id);
        self.0.load_tree(id, found).map_err(|r| anyhow::anyhow!(r))
    }
}

/// One snapshot's walk: checks each tree once (the first walk to reach it) and every node in
/// it; every problem names the tree, the snapshot and the path.
struct CheckVisitor<'a, 'r> {
    checker: &'a Checker<'r>,
    snapshot: Id,
    missing: &'a Mutex<HashSet<Id>>,
    /// Trees with an error, for [`Checker::snapshots_reaching`].
    damaged: &'a Mutex<HashSet<Id>>,
    trees: &'a AtomicU64,
    report: &'a (dyn Fn(Finding) + Sync),
}

impl CheckVisitor<'_, '_> {
    fn place(&self, path: &[u8]) -> Place {
        Place {
            snapshot: self.snapshot,
            path: lossy_path(path),
        }
    }

    /// Should the walk read tree `id` (at `path`)? Not when it is missing from the index
    /// (reported once) or when another walk already checks it.
    fn enter(&mut self, path: &[u8], id: Id) -> bool {
        let found = self.checker.index.find(BlobType::Tree, &id);
        if found.is_empty() {
            if lock(self.missing).insert(id) {
                lock(self.damaged).insert(id);
                (self.report)(Finding::Error(Problem::TreeMissing {
                    tree: id,
                    at: self.place(path),
                }));
            }
            return false;
        }
        if self.checker.index.mark(BlobType::Tree, found.start) {
            return false;
        }
        self.trees.fetch_add(1, Ordering::Relaxed);
        true
    }
}

impl Visitor for CheckVisitor<'_, '_> {
    fn node(&mut self, path: &[u8], node: &Node, _depth: usize) -> anyhow::Result<Visit> {
        // Only directories that are well-formed (see `tree`) and not yet checked.
        match (&node.kind, node.subtree) {
            (NodeType::Dir, Some(st)) if !st.is_zero() && self.enter(path, st) => {
                Ok(Visit::Descend)
            }
            _ => Ok(Visit::Skip),
        }
    }

    fn tree(&mut self, path: &[u8], id: &Id, tree: &Tree) -> anyhow::Result<()> {
        let at = || self.place(path);
        let invalid = |reason: String| {
            lock(self.damaged).insert(*id);
            (self.report)(Finding::Error(Problem::NodeInvalid {
                tree: *id,
                reason,
                at: at(),
            }))
        };
        for problem in tree.order_problems() {
            invalid(problem);
        }
        for node in &tree.nodes {
            let name = node.name_lossy();
            match &node.kind {
                NodeType::File => match &node.content {
                    None => invalid(format!("file {name:?} has nil blob list")),
                    Some(content) => {
                        for (i, blob) in content.iter().enumerate() {
                            if blob.is_zero() {
                                invalid(format!("file {name:?} blob {i} has null ID"));
                                continue;
                            }
                            let r = self.checker.index.find(BlobType::Data, blob);
                            if r.is_empty() {
                                lock(self.damaged).insert(*id);
                                (self.report)(Finding::Error(Problem::BlobMissing {
                                    tree: *id,
                                    file: name.clone(),
                                    blob: *blob,
                                    at: Place {
                                        snapshot: self.snapshot,
                                        path: join(&lossy_path(path), &name),
                                    },
                                }));
                            } else {
                                self.checker.index.mark(BlobType::Data, r.start);
                            }
                        }
                    }
                },
                NodeType::Dir => match node.subtree {
                    None => invalid(format!("dir node {name:?} has no subtree")),
                    Some(st) if st.is_zero() => {
                        invalid(format!("dir node {name:?} subtree id is null"))
                    }
                    Some(_) => {}
                },
                NodeType::Symlink
                | NodeType::Socket
                | NodeType::Chardev
                | NodeType::Dev
                | NodeType::Fifo => {}
                NodeType::Other(t) => invalid(format!("node {name:?} with invalid type {t:?}")),
            }
            if node.name.is_empty() {
                invalid("node with empty name".to_string());
            } else if let Some(why) = name_problem(&node.name) {
                // restic accepts these; restoring them would write outside the target.
                invalid(format!("node {name:?} has an unsafe name ({why})"));
            }
        }
        Ok(())
    }

    fn tree_error(&mut self, path: &[u8], id: &Id, err: anyhow::Error) -> anyhow::Result<()> {
        if err
            .downcast_ref::<Error>()
            .is_some_and(|e| matches!(e, Error::Interrupted))
        {
            return Err(err);
        }
        lock(self.damaged).insert(*id);
        (self.report)(Finding::Error(Problem::TreeUnreadable {
            tree: *id,
            at: self.place(path),
            reason: err.root_cause().to_string(),
        }));
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

impl Checker<'_> {
    /// Loads every snapshot and walks every tree it reaches, reporting problems as they are
    /// found. Marks the blobs reached, for [`Checker::blob_hints`].
    ///
    /// Each snapshot is walked by [`crate::walk`] (iterative, depth-limited); threads take
    /// snapshots in turn, and a tree another walk already checked is skipped (a mark bit in
    /// the index), so every distinct tree is read once and DAG-shaped snapshots cost no more
    /// than their distinct trees.
    pub fn check_structure(
        &self,
        report: &(dyn Fn(Finding) + Sync),
    ) -> crate::Result<StructureStats> {
        let ids = self.repo.list_ids(FileType::Snapshot)?;
        let next = AtomicUsize::new(0);
        let roots: Mutex<Vec<(Id, Id)>> = Mutex::new(Vec::new());
        let workers = self.opts.threads.max(1).min(ids.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(id) = ids.get(i) else { break };
                    if self.stopped() {
                        break;
                    }
                    match self.repo.load_snapshot(id) {
                        Ok(sn) => lock(&roots).push((*id, sn.tree)),
                        Err(e) => report(Finding::Error(Problem::SnapshotUnreadable {
                            snapshot: *id,
                            reason: format!("{e:#}"),
                        })),
                    }
                });
            }
        });
        self.check_stop()?;
        let mut roots = roots.into_inner().unwrap_or_else(|e| e.into_inner());
        // The first snapshot (by id) to reach a tree names it, as far as the threads allow.
        roots.sort();
        let snapshots = ids.len() as u64;
        let missing: Mutex<HashSet<Id>> = Mutex::new(HashSet::new());
        let damaged: Mutex<HashSet<Id>> = Mutex::new(HashSet::new());
        let trees = AtomicU64::new(0);
        let next = AtomicUsize::new(0);
        let failed: Mutex<Option<anyhow::Error>> = Mutex::new(None);
        let workers = self.opts.threads.max(1).min(roots.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(snapshot, root)) = roots.get(i) else {
                        break;
                    };
                    if self.stopped() {
                        break;
                    }
                    let mut v = CheckVisitor {
                        checker: self,
                        snapshot,
                        missing: &missing,
                        damaged: &damaged,
                        trees: &trees,
                        report,
                    };
                    if !v.enter(b"", root) {
                        continue;
                    }
                    let opts = WalkOptions {
                        interrupted: self.opts.stop,
                        max_depth: MAX_DEPTH,
                        refuse_dag_bombs: false,
                        ..Default::default()
                    };
                    let src = CheckSource(self);
                    if let Err(e) = walk_from(&src, root, b"", &opts, &mut v) {
                        lock(&failed).get_or_insert(e.into());
                        break;
                    }
                });
            }
        });
        if self.stopped() {
            return Err(Error::Interrupted);
        }
        if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e.into());
        }
        let damaged = damaged.into_inner().unwrap_or_else(|e| e.into_inner());
        if !damaged.is_empty() {
            let snapshots = self.snapshots_reaching(&roots, &damaged)?;
            report(Finding::Hint(super::Hint::DamagedSnapshots { snapshots }));
        }
        Ok(StructureStats {
            snapshots,
            trees: trees.load(Ordering::Relaxed),
        })
    }

    /// The snapshots (of `roots`: snapshot, root tree) whose trees reach any of `damaged`.
    ///
    /// Runs only when check found damage: it reads every distinct tree once more, recording
    /// which trees hold each subtree, then climbs from each damaged tree to the roots. Memory
    /// is one entry per distinct tree edge; the walk is iterative, so depth costs nothing.
    fn snapshots_reaching(
        &self,
        roots: &[(Id, Id)],
        damaged: &HashSet<Id>,
    ) -> anyhow::Result<Vec<Id>> {
        let src = CheckSource(self);
        let mut holders: HashMap<Id, Vec<Id>> = HashMap::new();
        let mut seen: HashSet<Id> = roots.iter().map(|&(_, root)| root).collect();
        let mut stack: Vec<Id> = seen.iter().copied().collect();
        while let Some(parent) = stack.pop() {
            self.check_stop()?;
            // Missing and unreadable trees were reported; they hold nothing we can see.
            let Ok(tree) = src.load_tree(&parent) else {
                continue;
            };
            for node in &tree.nodes {
                let Some(child) = node.subtree.filter(|_| node.kind == NodeType::Dir) else {
                    continue;
                };
                let list = holders.entry(child).or_default();
                if list.last() != Some(&parent) {
                    list.push(parent);
                }
                if seen.insert(child) {
                    stack.push(child);
                }
            }
        }
        let mut reached: HashSet<Id> = damaged.clone();
        let mut climb: Vec<Id> = damaged.iter().copied().collect();
        while let Some(t) = climb.pop() {
            for &p in holders.get(&t).into_iter().flatten() {
                if reached.insert(p) {
                    climb.push(p);
                }
            }
        }
        let mut out: Vec<Id> = roots
            .iter()
            .filter(|(_, root)| reached.contains(root))
            .map(|&(snapshot, _)| snapshot)
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Loads a tree from the first copy that reads and parses.
    fn load_tree(&self, id: &Id, found: std::ops::Range<usize>) -> Result<Tree, String> {
        let mut reasons = Vec::new();
        for i in found {
            let e = self.index.entry(BlobType::Tree, i);
            let pack = self.index.packs[e.pack as usize].id;
            if let Some(listed) = &self.listed {
                if listed[e.pack as usize].is_none() {
                    reasons.push(format!("pack {} does not exist", pack.short()));
                    continue;
                }
            }
            let b = e.to_packed(BlobType::Tree);
            match load_blob(&**self.repo.backend(), self.repo.key(), &pack, &b) {
                Ok(json) => match Tree::parse(&json) {
                    Ok(t) => return Ok(t),
                    Err(err) => reasons.push(format!("invalid tree: {err:#}")),
                },
                Err(r) => reasons.push(r),
            }
        }
        if reasons.is_empty() {
            reasons.push(format!("tree {} has no index entry", id.short()));
        }
        Err(reasons.join("; "))
    }
}
