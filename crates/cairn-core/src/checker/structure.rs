//! Snapshots → trees → blobs: everything a snapshot reaches must be indexed and readable.
//!
//! Trees are walked on several threads from a shared stack; each tree is checked once (a mark
//! bit in the index), however many snapshots or directories share it.

use super::read::load_blob;
use super::{Checker, Finding, Place, Problem};
use crate::format::pack::BlobType;
use crate::format::tree::{NodeType, Tree};
use crate::{Error, Id};
use cairn_backend::FileType;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

/// Counts from a structure check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StructureStats {
    pub snapshots: u64,
    pub trees: u64,
}

struct Job {
    tree: Id,
    at: Place,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    busy: usize,
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
    pub fn check_structure(
        &self,
        report: &(dyn Fn(Finding) + Sync),
    ) -> anyhow::Result<StructureStats> {
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
        // Deterministic order: the first snapshot (by id) to reach a tree names it.
        roots.sort();
        let snapshots = ids.len() as u64;
        let queue = Mutex::new(Queue {
            jobs: roots
                .into_iter()
                .rev()
                .map(|(snapshot, tree)| Job {
                    tree,
                    at: Place {
                        snapshot,
                        path: "/".to_string(),
                    },
                })
                .collect(),
            busy: 0,
        });
        let wake = Condvar::new();
        let missing: Mutex<HashSet<Id>> = Mutex::new(HashSet::new());
        let trees = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..self.opts.threads.max(1) {
                s.spawn(|| loop {
                    let job = {
                        let mut q = lock(&queue);
                        loop {
                            if self.stopped() {
                                wake.notify_all();
                                return;
                            }
                            if let Some(j) = q.jobs.pop() {
                                q.busy += 1;
                                break j;
                            }
                            if q.busy == 0 {
                                wake.notify_all();
                                return;
                            }
                            q = wake.wait(q).unwrap_or_else(|e| e.into_inner());
                        }
                    };
                    let children = self.check_tree(&job, &missing, &trees, report);
                    let mut q = lock(&queue);
                    q.busy -= 1;
                    let woke = !children.is_empty() || q.busy == 0;
                    q.jobs.extend(children.into_iter().rev());
                    drop(q);
                    if woke {
                        wake.notify_all();
                    }
                });
            }
        });
        if self.stopped() {
            return Err(Error::Interrupted.into());
        }
        Ok(StructureStats {
            snapshots,
            trees: trees.load(Ordering::Relaxed),
        })
    }

    /// Checks one tree (unless already done) and returns the subtrees to visit.
    fn check_tree(
        &self,
        job: &Job,
        missing: &Mutex<HashSet<Id>>,
        trees: &AtomicU64,
        report: &(dyn Fn(Finding) + Sync),
    ) -> Vec<Job> {
        let found = self.index.find(BlobType::Tree, &job.tree);
        if found.is_empty() {
            if lock(missing).insert(job.tree) {
                report(Finding::Error(Problem::TreeMissing {
                    tree: job.tree,
                    at: job.at.clone(),
                }));
            }
            return Vec::new();
        }
        if self.index.mark(BlobType::Tree, found.start) {
            return Vec::new();
        }
        trees.fetch_add(1, Ordering::Relaxed);
        let tree = match self.load_tree(&job.tree, found) {
            Ok(t) => t,
            Err(reason) => {
                report(Finding::Error(Problem::TreeUnreadable {
                    tree: job.tree,
                    at: job.at.clone(),
                    reason,
                }));
                return Vec::new();
            }
        };
        let mut children = Vec::new();
        let invalid = |reason: String| {
            report(Finding::Error(Problem::NodeInvalid {
                tree: job.tree,
                reason,
                at: job.at.clone(),
            }))
        };
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
                            let r = self.index.find(BlobType::Data, blob);
                            if r.is_empty() {
                                report(Finding::Error(Problem::BlobMissing {
                                    tree: job.tree,
                                    file: name.clone(),
                                    blob: *blob,
                                    at: Place {
                                        snapshot: job.at.snapshot,
                                        path: join(&job.at.path, &name),
                                    },
                                }));
                            } else {
                                self.index.mark(BlobType::Data, r.start);
                            }
                        }
                    }
                },
                NodeType::Dir => match node.subtree {
                    None => invalid(format!("dir node {name:?} has no subtree")),
                    Some(st) if st.is_zero() => {
                        invalid(format!("dir node {name:?} subtree id is null"))
                    }
                    Some(st) => children.push(Job {
                        tree: st,
                        at: Place {
                            snapshot: job.at.snapshot,
                            path: join(&job.at.path, &name),
                        },
                    }),
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
            }
        }
        children
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
            match load_blob(&*self.repo.backend, &self.repo.key, &pack, &b) {
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
