//! Rewriting snapshot trees node by node (restic's `walker.TreeRewriter`), and replacing the
//! snapshots that name them: restic's `rewrite` ([`rewrite_snapshots`]) here, `repair
//! snapshots` in [`crate::repair`].
//!
//! A tree none of whose nodes change keeps its id and its stored bytes, so that rewriting
//! never disturbs what it does not touch. A changed tree is serialized again; when the
//! original bytes are not what serializing their parse gives (restic's "unstable" trees, e.g.
//! invalid UTF-8 written as escapes), `rewrite` refuses as restic does, `repair snapshots`
//! accepts the loss.

use crate::archiver::select::Selection;
use crate::format::gotime::{go_string, GoTime};
use crate::format::pack::BlobType;
use crate::format::snapshot::{Snapshot, SnapshotSummary};
use crate::format::tree::{Node, NodeType, Tree};
use crate::observe::{check_cancel, Observer};
use crate::packer::{BlobWriter, Compression};
use crate::repository::IndexedRepository;
use crate::snapshots::{describe, Selected};
use crate::walk::{lossy_path, walk_from, CachedSource, Visit, Visitor, WalkOptions, MAX_DEPTH};
use crate::Id;
use anyhow::Context;
use cairn_backend::{FileType, Handle};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// What to do with one node.
pub enum NodeAction {
    Keep,
    Remove,
    Replace(Box<Node>),
}

/// The decisions of one kind of rewrite.
pub trait RewriteRules {
    /// Decides about a node at `path` (`/` + names joined by `/`); directories are then
    /// rewritten below unless removed.
    fn node(&mut self, node: &Node, path: &[u8]) -> NodeAction;

    /// A tree that could not be loaded (`id` is `None` for a directory without subtree):
    /// `Ok(Some(tree))` stores that tree instead, `Ok(None)` removes the directory, an error
    /// fails the rewrite (the default).
    fn failed_tree(
        &mut self,
        id: Option<Id>,
        path: &[u8],
        err: anyhow::Error,
    ) -> anyhow::Result<Option<Tree>> {
        let _ = path;
        Err(err.context(match id {
            Some(id) => format!("loading tree {id}"),
            None => "directory without subtree".to_string(),
        }))
    }

    /// Do the decisions depend on the path only through messages? Then a tree met again under
    /// another path is rewritten once.
    fn path_independent(&self) -> bool {
        false
    }
}

pub struct TreeRewriter<'r, 'w> {
    repo: &'r IndexedRepository,
    writer: &'w BlobWriter<'r>,
    /// Accept trees whose serialization changes on a round trip (repair), or refuse them.
    allow_unstable: bool,
    /// Trees already rewritten (only for path-independent rules).
    done: HashMap<Id, Option<Id>>,
    interrupted: Option<&'r AtomicBool>,
}

impl<'r, 'w> TreeRewriter<'r, 'w> {
    pub fn new(
        repo: &'r IndexedRepository,
        writer: &'w BlobWriter<'r>,
        allow_unstable: bool,
    ) -> TreeRewriter<'r, 'w> {
        TreeRewriter {
            repo,
            writer,
            allow_unstable,
            done: HashMap::new(),
            interrupted: None,
        }
    }

    /// Stops a rewrite with [`crate::Error::Interrupted`] when `flag` is set.
    pub fn interruptible(mut self, flag: &'r AtomicBool) -> Self {
        self.interrupted = Some(flag);
        self
    }

    /// Rewrites the tree `id` found at `path`; returns the new id, or `None` when the tree
    /// is to be removed.
    ///
    /// The trees are read by [`crate::walk`] (iterative, depth-limited) and built bottom-up on an
    /// explicit stack: a directory's new tree is stored when the walk leaves it.
    pub fn rewrite(
        &mut self,
        rules: &mut dyn RewriteRules,
        path: &[u8],
        id: Option<Id>,
    ) -> crate::Result<Option<Id>> {
        let cache = rules.path_independent();
        let Some(root) = id else {
            let err = anyhow::anyhow!("directory has no subtree");
            return match rules.failed_tree(None, path, err)? {
                Some(t) => Ok(Some(self.store(&t)?)),
                None => Ok(None),
            };
        };
        if cache {
            if let Some(done) = self.done.get(&root) {
                return Ok(*done);
            }
        }
        let repo = self.repo;
        let opts = WalkOptions {
            interrupted: self.interrupted,
            max_depth: MAX_DEPTH,
            // With path-independent rules a tree met again is not walked again.
            refuse_dag_bombs: !cache,
            ..Default::default()
        };
        // Children are `path/name`, as the walk joins them.
        let root_path = if path == b"/" { &b""[..] } else { path };
        let mut v = Rewriting {
            rw: self,
            rules,
            cache,
            frames: vec![Building::new(None, false, root)],
            result: None,
        };
        // Path-dependent rules meet shared trees once per path: keep them at hand.
        let cached = CachedSource::new(repo);
        walk_from(&cached, root, root_path, &opts, &mut v)?;
        if let Some(frame) = v.frames.pop() {
            v.finish(frame, root_path)?;
        }
        Ok(v.result.flatten())
    }

    /// Serializes and stores a tree (unless the repository or this writer has it).
    fn store(&self, tree: &Tree) -> anyhow::Result<Id> {
        let json = tree.to_json();
        let id = Id::hash(&json);
        self.writer
            .save(BlobType::Tree, id, &json)
            .with_context(|| format!("saving tree {id}"))?;
        Ok(id)
    }
}

/// A directory being rewritten: its new nodes so far.
struct Building {
    /// The directory's (kept or replacing) node; None for the tree rewritten.
    node: Option<Node>,
    /// The rules replaced the node (its parent changes).
    replaced: bool,
    orig: Id,
    nodes: Vec<Node>,
    changed: bool,
    /// The stored tree is what serializing its parse gives.
    stable: bool,
}

impl Building {
    fn new(node: Option<Node>, replaced: bool, orig: Id) -> Building {
        Building {
            node,
            replaced,
            orig,
            nodes: Vec::new(),
            changed: false,
            stable: true,
        }
    }
}

struct Rewriting<'x, 'r, 'w> {
    rw: &'x mut TreeRewriter<'r, 'w>,
    rules: &'x mut dyn RewriteRules,
    cache: bool,
    /// One per directory on the walk's current path (the rewritten tree at the bottom).
    frames: Vec<Building>,
    /// The rewritten tree's new id (inner None: removed), once done.
    result: Option<Option<Id>>,
}

fn shown(path: &[u8]) -> &[u8] {
    if path.is_empty() {
        b"/"
    } else {
        path
    }
}

impl Rewriting<'_, '_, '_> {
    fn top(&mut self) -> &mut Building {
        self.frames.last_mut().expect("a directory being rewritten")
    }

    /// Puts a finished directory into its parent (or makes it the result).
    fn attach(&mut self, node: Option<Node>, replaced: bool, out: Option<Id>) {
        let Some(mut node) = node else {
            self.result = Some(out);
            return;
        };
        let parent = self.top();
        match out {
            None => parent.changed = true,
            Some(sub) => {
                if node.subtree != Some(sub) || replaced {
                    parent.changed = true;
                    node.subtree = Some(sub);
                }
                parent.nodes.push(node);
            }
        }
    }

    fn finish(&mut self, frame: Building, path: &[u8]) -> anyhow::Result<()> {
        let out = if frame.changed {
            if !frame.stable {
                anyhow::bail!(
                    "cannot encode tree at {:?} without losing information",
                    String::from_utf8_lossy(shown(path))
                );
            }
            self.rw.store(&Tree { nodes: frame.nodes })?
        } else {
            frame.orig
        };
        if self.cache {
            self.rw.done.insert(frame.orig, Some(out));
        }
        self.attach(frame.node, frame.replaced, Some(out));
        Ok(())
    }

    /// A tree that could not be read: the rules decide.
    fn failed(
        &mut self,
        node: Option<Node>,
        replaced: bool,
        id: Option<Id>,
        path: &[u8],
        err: anyhow::Error,
    ) -> anyhow::Result<()> {
        let out = match self.rules.failed_tree(id, shown(path), err)? {
            Some(t) => Some(self.rw.store(&t)?),
            None => None,
        };
        self.attach(node, replaced, out);
        Ok(())
    }
}

impl Visitor for Rewriting<'_, '_, '_> {
    fn node(&mut self, path: &[u8], node: &Node, _depth: usize) -> anyhow::Result<Visit> {
        let (n, replaced) = match self.rules.node(node, path) {
            NodeAction::Keep => (node.clone(), false),
            NodeAction::Remove => {
                self.top().changed = true;
                return Ok(Visit::Skip);
            }
            NodeAction::Replace(n) => (*n, true),
        };
        if n.kind != NodeType::Dir {
            let top = self.top();
            top.changed |= replaced;
            top.nodes.push(n);
            return Ok(Visit::Skip);
        }
        if node.kind != NodeType::Dir || n.subtree != node.subtree {
            anyhow::bail!(
                "{}: rewrite rules may not change which tree a directory holds",
                lossy_path(path)
            );
        }
        let Some(sub) = n.subtree else {
            let err = anyhow::anyhow!("directory has no subtree");
            self.failed(Some(n), replaced, None, path, err)?;
            return Ok(Visit::Skip);
        };
        if self.cache {
            if let Some(&done) = self.rw.done.get(&sub) {
                self.attach(Some(n), replaced, done);
                return Ok(Visit::Skip);
            }
        }
        self.frames.push(Building::new(Some(n), replaced, sub));
        Ok(Visit::Descend)
    }

    fn tree(&mut self, _path: &[u8], id: &Id, tree: &Tree) -> anyhow::Result<()> {
        // The stored bytes hash to the id (checked on load), so comparing ids compares them.
        let stable = self.rw.allow_unstable || Id::hash(&tree.to_json()) == *id;
        let top = self.top();
        top.stable = stable;
        top.nodes.reserve(tree.nodes.len());
        Ok(())
    }

    fn leave(&mut self, path: &[u8], _node: &Node, _depth: usize) -> anyhow::Result<()> {
        let frame = self.frames.pop().expect("a directory being rewritten");
        self.finish(frame, path)
    }

    fn tree_error(&mut self, path: &[u8], id: &Id, err: anyhow::Error) -> anyhow::Result<()> {
        if matches!(
            err.downcast_ref::<crate::Error>(),
            Some(crate::Error::Interrupted)
        ) {
            return Err(err);
        }
        let frame = self.frames.pop().expect("a directory being rewritten");
        self.failed(frame.node, frame.replaced, Some(*id), path, err)
    }
}

// ---------------------------------------------------------------------------------------------
// Replacing snapshots: what `rewrite` and `repair snapshots` share

/// How rewritten snapshots replace the old ones.
pub struct Replace<'a> {
    /// Print what would be done; store and remove nothing.
    pub dry_run: bool,
    /// Remove each old snapshot once its replacement is stored.
    pub forget: bool,
    /// Tag for the new snapshot when the old one stays (`rewrite` / `repaired`).
    pub tag: &'a str,
    pub new_host: Option<&'a str>,
    pub new_time: Option<GoTime>,
    pub compression: Compression,
    /// Stops the run with [`crate::Error::Interrupted`] when set (Ctrl-C).
    pub interrupted: Option<&'a AtomicBool>,
    /// Give a snapshot without a summary one (restic 0.18's `--snapshot-summary`).
    pub create_summary: bool,
}

/// What `rewrite` changes besides the metadata in [`Replace`].
pub struct RewriteOptions<'a> {
    /// Paths to drop (`--exclude` and friends); `None` when only metadata changes.
    pub excludes: Option<&'a Selection>,
    /// Recount the files and bytes of the summary even when no path is excluded (restic
    /// 0.18's `--snapshot-summary`; with `replace.create_summary` a missing one is created).
    pub snapshot_summary: bool,
    pub replace: Replace<'a>,
}

/// restic's `rewrite`: every chosen snapshot without the excluded paths and with the new
/// host and time, stored as a new snapshot naming the old one in `original`. Unreadable
/// snapshots are warned about and skipped. Progress goes to `report`, as restic words it;
/// returns how many snapshots were (or, in a dry run, would be) changed.
pub fn rewrite_snapshots(
    repo: &IndexedRepository,
    selected: Vec<Selected>,
    opts: &RewriteOptions,
    report: &dyn Observer,
) -> crate::Result<usize> {
    let how = &opts.replace;
    let writer = new_writer(repo, how);
    let mut changed = 0;
    for s in selected {
        check_cancel(report)?;
        let snap = match s.snap {
            Ok(snap) => snap,
            Err(e) => {
                report.warn(&format!(
                    "Ignoring {:?}, could not load snapshot: {e:#}",
                    s.id.to_hex()
                ));
                continue;
            }
        };
        report.info(&format!("\n{}", describe(&s.id, &snap)));
        let recount = opts.excludes.is_some() || opts.snapshot_summary;
        let (tree, summary) = match opts.excludes {
            sel if recount => {
                let mut rules = ExcludeRules {
                    sel,
                    report,
                    files: 0,
                    bytes: 0,
                };
                let mut rw = TreeRewriter::new(repo, &writer, false);
                if let Some(flag) = how.interrupted {
                    rw = rw.interruptible(flag);
                }
                let t = rw
                    .rewrite(&mut rules, b"/", Some(snap.tree))
                    .map_err(|e| rewrite_failed(&s.id, e))?;
                (t, Some((rules.files, rules.bytes)))
            }
            _ => (Some(snap.tree), None),
        };
        if replace_snapshot(repo, &writer, s.id, snap, tree, summary, how, report)
            .map_err(|e| rewrite_failed(&s.id, e))?
        {
            changed += 1;
        }
    }
    writer.finish()?;
    summary_line(report, changed, how.dry_run);
    Ok(changed)
}

/// The writer for new trees (writing nothing in a dry run).
pub(crate) fn new_writer<'r>(repo: &'r IndexedRepository, how: &Replace) -> BlobWriter<'r> {
    let writer = repo.blob_writer(how.compression);
    if how.dry_run {
        writer.dry_run()
    } else {
        writer
    }
}

/// restic's `filterAndReplaceSnapshot`: nothing when neither tree nor metadata changed; a
/// snapshot whose tree is gone entirely is removed; otherwise the new snapshot is stored
/// (after the trees it names are durable) and, with `forget`, the old one removed. Returns
/// whether anything changed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn replace_snapshot(
    repo: &IndexedRepository,
    writer: &BlobWriter,
    id: Id,
    mut snap: Snapshot,
    new_tree: Option<Id>,
    summary: Option<(u64, u64)>,
    how: &Replace,
    report: &dyn Observer,
) -> anyhow::Result<bool> {
    let Some(tree) = new_tree else {
        if how.dry_run {
            report.info("would delete empty snapshot");
        } else {
            remove_snapshot(repo, &id)?;
            report.info(&format!("removed empty snapshot {}", id.short()));
        }
        return Ok(true);
    };
    // restic 0.18: the recounted summary is the old one (or, with `--snapshot-summary`, an
    // empty one) with the new counts; a snapshot whose summary would change is rewritten.
    // Unlike 0.18, excluding paths alone does not add a summary to a snapshot without one.
    let base = match (&snap.summary, how.create_summary) {
        (Some(s), _) => Some(s.clone()),
        (None, true) => Some(empty_summary()),
        (None, false) => None,
    };
    let new_summary = summary.zip(base).map(|((files, bytes), mut s)| {
        s.total_files_processed = files;
        s.total_bytes_processed = bytes;
        s
    });
    let same_summary = match (&new_summary, &snap.summary) {
        (None, _) => true,
        (Some(n), Some(o)) => {
            (n.total_files_processed, n.total_bytes_processed)
                == (o.total_files_processed, o.total_bytes_processed)
        }
        (Some(_), None) => false,
    };
    if tree == snap.tree && how.new_host.is_none() && how.new_time.is_none() && same_summary {
        return Ok(false);
    }
    if how.dry_run {
        report.info("would save new snapshot");
        if how.forget {
            report.info("would remove old snapshot");
        }
        if let Some(t) = &how.new_time {
            report.info(&format!("would set time to {}", go_string(t)));
        }
        if let Some(h) = how.new_host {
            report.info(&format!("would set hostname to {h}"));
        }
        return Ok(true);
    }
    // The new snapshot names the one it replaces (always: it is a new snapshot).
    snap.original = Some(id);
    snap.tree = tree;
    if new_summary.is_some() {
        snap.summary = new_summary;
    }
    if !how.forget && !snap.has_tag(how.tag) {
        snap.tags.push(how.tag.to_string());
    }
    if let Some(t) = how.new_time {
        report.info(&format!("setting time to {}", go_string(&t)));
        snap.time = t;
    }
    if let Some(h) = how.new_host {
        report.info(&format!("setting host to {h}"));
        snap.hostname = h.to_string();
    }
    // Trees first: the snapshot must never name a tree that is not stored and indexed.
    writer.checkpoint()?;
    let new_id = repo
        .save_unpacked(FileType::Snapshot, &snap.to_json())
        .with_context(|| format!("saving the new snapshot for {}", id.short()))?;
    report.info(&format!("saved new snapshot {}", new_id.short()));
    if how.forget {
        remove_snapshot(repo, &id)?;
        report.info(&format!("removed old snapshot {}", id.short()));
    }
    Ok(true)
}

/// A summary with Go's zero times and zero counts, as restic starts one for a snapshot
/// that has none.
fn empty_summary() -> SnapshotSummary {
    let zero = crate::format::gotime::parse_rfc3339("0001-01-01T00:00:00Z")
        .unwrap_or_else(|_| crate::format::gotime::from_unix_local(0, 0));
    SnapshotSummary {
        backup_start: zero,
        backup_end: zero,
        ..Default::default()
    }
}

pub(crate) fn remove_snapshot(repo: &IndexedRepository, id: &Id) -> anyhow::Result<()> {
    let h = Handle::new(FileType::Snapshot, id.to_hex());
    repo.backend()
        .remove(&h)
        .map_err(|e| anyhow::Error::new(e).context(format!("removing snapshot {}", id.short())))
}

/// restic's closing line of `rewrite` and `repair snapshots`.
pub(crate) fn summary_line(report: &dyn Observer, changed: usize, dry_run: bool) {
    report.info("");
    report.info(&match (changed, dry_run) {
        (0, false) => "no snapshots were modified".to_string(),
        (0, true) => "no snapshots would be modified".to_string(),
        (n, false) => format!("modified {n} snapshots"),
        (n, true) => format!("would modify {n} snapshots"),
    });
}

pub(crate) fn rewrite_failed(id: &Id, e: impl Into<anyhow::Error>) -> anyhow::Error {
    e.into()
        .context(format!("unable to rewrite snapshot ID {:?}", id.short()))
}

/// `rewrite --exclude`: drops every node whose path matches; counts what stays.
struct ExcludeRules<'a> {
    sel: Option<&'a Selection>,
    report: &'a dyn Observer,
    files: u64,
    bytes: u64,
}

impl RewriteRules for ExcludeRules<'_> {
    fn node(&mut self, node: &Node, path: &[u8]) -> NodeAction {
        let excluded = self
            .sel
            .is_some_and(|sel| sel.excluded_path(Path::new(OsStr::from_bytes(path))));
        if excluded {
            // At normal verbosity, as restic's documentation shows it.
            self.report
                .info(&format!("excluding {}", String::from_utf8_lossy(path)));
            return NodeAction::Remove;
        }
        if node.kind == NodeType::File {
            self.files += 1;
            self.bytes += node.size;
        }
        NodeAction::Keep
    }
}

/// restic's `repair snapshots`: file content that is not in the index is dropped (the size
/// follows), trees that cannot be loaded become empty directories, nodes of invalid type go;
/// a snapshot whose root tree cannot be loaded is removed. An unreadable snapshot file named
/// on the command line is removed with `forget`; any other unreadable one fails the run.
/// Returns how many snapshots were (or would be) changed.
pub fn repair_snapshots(
    repo: &IndexedRepository,
    selected: Vec<Selected>,
    how: &Replace,
    report: &dyn Observer,
) -> crate::Result<usize> {
    let writer = new_writer(repo, how);
    let mut changed = 0;
    let mut rw = TreeRewriter::new(repo, &writer, true);
    if let Some(flag) = how.interrupted {
        rw = rw.interruptible(flag);
    }
    for s in selected {
        check_cancel(report)?;
        let snap = match s.snap {
            Ok(snap) => snap,
            Err(e) => {
                // Only a snapshot named on the command line is removed when unreadable.
                if how.forget && s.arg.is_some() {
                    if how.dry_run {
                        report.info(&format!("would remove unreadable snapshot {}", s.id));
                    } else {
                        remove_snapshot(repo, &s.id)
                            .map_err(|e| e.context("unable to remove unreadable snapshot file"))?;
                        report.info(&format!("removed unreadable snapshot {}", s.id));
                    }
                    changed += 1;
                    continue;
                }
                crate::error::bail!(
                    "snapshot file {id} is unreadable, use `cairn repair snapshots --forget {id}` to remove it. Original error: {e:#}",
                    id = s.id
                );
            }
        };
        report.info(&format!("\n{}", describe(&s.id, &snap)));
        let mut rules = RepairRules { repo, report };
        let tree = rw
            .rewrite(&mut rules, b"/", Some(snap.tree))
            .map_err(|e| rewrite_failed(&s.id, e))?;
        if replace_snapshot(repo, &writer, s.id, snap, tree, None, how, report)
            .map_err(|e| rewrite_failed(&s.id, e))?
        {
            changed += 1;
        }
    }
    drop(rw);
    writer.finish()?;
    summary_line(report, changed, how.dry_run);
    Ok(changed)
}

/// The decisions of `repair snapshots`.
struct RepairRules<'a> {
    repo: &'a IndexedRepository,
    report: &'a dyn Observer,
}

impl RewriteRules for RepairRules<'_> {
    fn node(&mut self, node: &Node, path: &[u8]) -> NodeAction {
        let shown = String::from_utf8_lossy(path);
        match &node.kind {
            NodeType::Other(t) if t.is_empty() || t == "irregular" => {
                self.report.info(&format!(
                    "  file {shown:?}: removed node with invalid type {t:?}"
                ));
                return NodeAction::Remove;
            }
            NodeType::File => {}
            _ => return NodeAction::Keep,
        }
        let index = self.repo.index();
        let mut content = Vec::new();
        let mut size = 0u64;
        let mut missing = false;
        for id in node.content.iter().flatten() {
            match index.plain_size(BlobType::Data, id) {
                Some(n) => {
                    content.push(*id);
                    size += n;
                }
                None => missing = true,
            }
        }
        if missing {
            self.report
                .info(&format!("  file {shown:?}: removed missing content"));
        } else if size != node.size {
            self.report
                .info(&format!("  file {shown:?}: fixed incorrect size"));
        } else {
            return NodeAction::Keep;
        }
        let mut n = node.clone();
        n.content = Some(content);
        n.size = size;
        NodeAction::Replace(Box::new(n))
    }

    fn failed_tree(
        &mut self,
        _id: Option<Id>,
        path: &[u8],
        _err: anyhow::Error,
    ) -> anyhow::Result<Option<Tree>> {
        let shown = String::from_utf8_lossy(path);
        if path == b"/" {
            self.report.info(&format!("  dir {shown:?}: not readable"));
            return Ok(None);
        }
        self.report
            .info(&format!("  dir {shown:?}: replaced with empty directory"));
        Ok(Some(Tree::default()))
    }

    fn path_independent(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tree::NodeType;

    #[test]
    fn default_failed_tree_is_an_error() {
        struct Keep;
        impl RewriteRules for Keep {
            fn node(&mut self, _: &Node, _: &[u8]) -> NodeAction {
                NodeAction::Keep
            }
        }
        let e = Keep
            .failed_tree(None, b"/x", anyhow::anyhow!("boom"))
            .unwrap_err();
        assert!(format!("{e:#}").contains("boom"));
        let n = Node::new(b"a".to_vec(), NodeType::File);
        assert!(matches!(Keep.node(&n, b"/a"), NodeAction::Keep));
    }
}
