//! Copying snapshots' blobs between repositories (restic's `copy`).
//!
//! The two repositories have different keys, so every blob is decrypted (and verified against
//! its id) on the way out and compressed and encrypted again on the way in. Tree blobs travel
//! as the exact bytes the source stores: parsing and serializing them again could change their
//! ids (restic's `copy-unstable-json` case) and leave parents naming trees that do not exist.
//! Blobs the destination already has are not copied; with the same chunker parameters
//! (`init --copy-chunker-params`) that includes the data of files backed up into both.

use crate::format::pack::BlobType;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeType, Tree};
use crate::observe::{check_cancel, Observer};
use crate::packer::{BlobWriter, Compression, WriterStats};
use crate::repository::IndexedRepository;
use crate::walk::{walk_from, TreeSource, Visit, Visitor, WalkOptions};
use crate::Id;
use anyhow::Context;
use cairn_backend::FileType;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// restic's `similarSnapshots`: everything but `parent` and `original` agrees (paths and tags
/// as sets, excludes in order).
pub fn similar_snapshots(a: &Snapshot, b: &Snapshot) -> bool {
    if a.time != b.time
        || a.tree != b.tree
        || a.hostname != b.hostname
        || a.username != b.username
        || a.uid != b.uid
        || a.gid != b.gid
        || a.paths.len() != b.paths.len()
        || a.excludes.len() != b.excludes.len()
        || a.tags.len() != b.tags.len()
    {
        return false;
    }
    b.paths.iter().all(|p| a.paths.contains(p))
        && b.tags.iter().all(|t| a.tags.contains(t))
        && a.excludes == b.excludes
}

/// What copying one snapshot's tree added to the destination.
#[derive(Clone, Copy, Debug, Default)]
pub struct TreeCopyStats {
    pub trees: u64,
    pub data_blobs: u64,
    /// Plaintext bytes of the copied blobs.
    pub bytes: u64,
}

/// Copies blobs from `src` into `dst` through one writer; call [`Copier::checkpoint`] before
/// saving a snapshot that needs them, and [`Copier::finish`] at the end.
pub struct Copier<'s, 'd> {
    src: &'s IndexedRepository,
    writer: BlobWriter<'d>,
    /// Trees already walked in this run (shared by all snapshots).
    visited: HashSet<Id>,
    threads: usize,
}

impl<'s, 'd> Copier<'s, 'd> {
    /// Both repositories must have their index loaded.
    pub fn new(
        src: &'s IndexedRepository,
        dst: &'d IndexedRepository,
        compression: Compression,
    ) -> Self {
        Copier {
            src,
            writer: dst.blob_writer(compression),
            visited: HashSet::new(),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(2, 8),
        }
    }

    /// Copies every tree and data blob reachable from `root` that the destination lacks.
    pub fn copy_tree(&mut self, root: Id, report: &dyn Observer) -> crate::Result<TreeCopyStats> {
        let mut stats = TreeCopyStats::default();
        let mut wanted: Vec<Id> = Vec::new();
        if self.visited.insert(root) {
            let src = CopySource {
                repo: self.src,
                writer: &self.writer,
                stats: std::cell::Cell::new((0, 0)),
            };
            let mut v = CopyVisitor {
                visited: &mut self.visited,
                writer: &self.writer,
                wanted: &mut wanted,
                wanted_set: HashSet::new(),
                report,
            };
            // Each distinct tree once: a DAG is no bigger than its trees.
            let opts = WalkOptions {
                refuse_dag_bombs: false,
                ..Default::default()
            };
            walk_from(&src, root, b"", &opts, &mut v)?;
            (stats.trees, stats.bytes) = src.stats.get();
        }

        // Read in pack order so that each source pack is read front to back.
        let index = self.src.index();
        let mut located: Vec<(Option<(Id, u32)>, Id)> = wanted
            .into_iter()
            .map(|id| {
                let at = index
                    .lookup(BlobType::Data, &id)
                    .map(|l| (l.pack, l.blob.offset));
                (at, id)
            })
            .collect();
        located.sort();
        if let Some((None, id)) = located.first() {
            crate::error::bail!("data blob {id} not found in the source repository's index");
        }

        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let first_err: Mutex<Option<anyhow::Error>> = Mutex::new(None);
        let copied = AtomicUsize::new(0);
        let bytes = std::sync::atomic::AtomicU64::new(0);
        let src = self.src;
        let writer = &self.writer;
        std::thread::scope(|s| {
            for _ in 0..self.threads.min(located.len()) {
                s.spawn(|| loop {
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((_, id)) = located.get(i) else {
                        break;
                    };
                    let res = check_cancel(report)
                        .and_then(|_| {
                            src.load_blob(BlobType::Data, id)
                                .with_context(|| format!("loading data blob {id} from the source"))
                                .map_err(crate::Error::from)
                        })
                        .and_then(|plain| {
                            let n = plain.len() as u64;
                            writer
                                .save(BlobType::Data, *id, &plain)
                                .with_context(|| format!("saving data blob {id}"))
                                .map(|new| (new, n))
                                .map_err(crate::Error::from)
                        });
                    match res {
                        Ok((new, n)) => {
                            if new {
                                copied.fetch_add(1, Ordering::Relaxed);
                                bytes.fetch_add(n, Ordering::Relaxed);
                            }
                        }
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            first_err
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert(e.into());
                            break;
                        }
                    }
                });
            }
        });
        if let Some(e) = first_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e.into());
        }
        stats.data_blobs = copied.load(Ordering::Relaxed) as u64;
        stats.bytes += bytes.load(Ordering::Relaxed);
        Ok(stats)
    }

    /// Makes every blob copied so far durable and indexed.
    pub fn checkpoint(&self) -> crate::Result<()> {
        self.writer.checkpoint()
    }

    pub fn finish(self) -> crate::Result<WriterStats> {
        self.writer.finish()
    }
}

/// Reads trees for [`Copier::copy_tree`]'s walk and stores each in the destination as the
/// exact bytes the source has: their hash is the id the parent names.
struct CopySource<'a, 's, 'd> {
    repo: &'s IndexedRepository,
    writer: &'a BlobWriter<'d>,
    /// Trees saved and their bytes.
    stats: std::cell::Cell<(u64, u64)>,
}

impl TreeSource for CopySource<'_, '_, '_> {
    fn load_tree(&self, id: &Id) -> anyhow::Result<Tree> {
        let raw = self
            .repo
            .load_blob(BlobType::Tree, id)
            .with_context(|| format!("LoadTree({}) returned error", id.short()))?;
        let tree = Tree::parse(&raw)
            .with_context(|| format!("LoadTree({}) returned error: invalid tree", id.short()))?;
        if self
            .writer
            .save(BlobType::Tree, *id, &raw)
            .with_context(|| format!("saving tree {id}"))?
        {
            let (n, b) = self.stats.get();
            self.stats.set((n + 1, b + raw.len() as u64));
        }
        Ok(tree)
    }
}

/// Collects the data blobs the destination lacks and descends into each tree once per run.
struct CopyVisitor<'a, 'd> {
    visited: &'a mut HashSet<Id>,
    writer: &'a BlobWriter<'d>,
    wanted: &'a mut Vec<Id>,
    wanted_set: HashSet<Id>,
    report: &'a dyn Observer,
}

impl Visitor for CopyVisitor<'_, '_> {
    fn node(&mut self, _path: &[u8], node: &Node, _depth: usize) -> anyhow::Result<Visit> {
        check_cancel(self.report)?;
        for b in node.content.iter().flatten() {
            if !self.writer.is_known(BlobType::Data, b) && self.wanted_set.insert(*b) {
                self.wanted.push(*b);
            }
        }
        Ok(match node.subtree {
            Some(sub) if node.kind == NodeType::Dir && self.visited.insert(sub) => Visit::Descend,
            _ => Visit::Skip,
        })
    }

    fn tree_error(&mut self, _path: &[u8], _id: &Id, err: anyhow::Error) -> anyhow::Result<()> {
        Err(err)
    }
}

/// Saves a copied snapshot in the destination: no parent (it means nothing there), and
/// `original` kept or set to the source snapshot's id, which makes it a persistent id.
pub fn save_copied_snapshot(
    dst: &IndexedRepository,
    src_id: Id,
    snap: &Snapshot,
) -> crate::Result<Id> {
    let mut s = snap.clone();
    s.parent = None;
    if s.original.is_none() {
        s.original = Some(src_id);
    }
    Ok(dst
        .save_unpacked(FileType::Snapshot, &s.to_json())
        .with_context(|| format!("saving copy of snapshot {}", src_id.short()))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(json: &str) -> Snapshot {
        Snapshot::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn similarity_is_restics() {
        let t = "0000000000000000000000000000000000000000000000000000000000000001";
        let a = snap(&format!(
            r#"{{"time":"2021-01-01T00:00:00Z","tree":"{t}","paths":["/a","/b"],"hostname":"h","tags":["x","y"]}}"#
        ));
        let mut b = a.clone();
        b.paths.reverse();
        b.tags.reverse();
        b.parent = Some(Id([7; 32]));
        b.original = Some(Id([8; 32]));
        assert!(similar_snapshots(&a, &b));
        b.hostname = "other".into();
        assert!(!similar_snapshots(&a, &b));
        // As in restic, the tags of the second must be among the first's.
        let mut c = a.clone();
        c.tags = vec!["x".into(), "x".into()];
        assert!(similar_snapshots(&a, &c));
        c.tags = vec!["x".into(), "z".into()];
        assert!(!similar_snapshots(&a, &c));
    }
}
