//! restic's `diff`: two trees compared side by side, what changed reported path by path to a
//! [`DiffOutput`], and what was added and removed counted.

use crate::format::pack::BlobType;
use crate::format::tree::{Node, NodeType, Tree};
use crate::repository::IndexedRepository;
use crate::util::gopath::join_bytes as go_path_join;
use crate::walk;
use crate::Id;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

/// Where the changes go.
pub trait DiffOutput {
    /// `path` changed: `+` added, `-` removed, `M` content, `T` type, `U` metadata (or a
    /// combination).
    fn change(&mut self, path: &[u8], modifier: &str) -> anyhow::Result<()>;
    /// Something could not be read and was skipped (restic goes on).
    fn warn(&mut self, msg: &str);
}

/// The counts of a diff.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiffResult {
    pub added: DiffStat,
    pub removed: DiffStat,
    /// Files whose content differs.
    pub changed_files: u64,
}

/// Compares the trees `tree1` and `tree2` (both must load); with `metadata`, nodes whose
/// metadata differ are reported too (`U`). Ctrl-C (`interrupted`) ends it at the next node.
pub fn diff_trees(
    repo: &IndexedRepository,
    tree1: &Id,
    tree2: &Id,
    metadata: bool,
    interrupted: Option<&AtomicBool>,
    out: &mut dyn DiffOutput,
) -> crate::Result<DiffResult> {
    let mut c = Comparer {
        repo,
        metadata,
        interrupted,
        out,
        before: HashSet::new(),
        after: HashSet::new(),
        common_roots: Vec::new(),
        added: DiffStat::default(),
        removed: DiffStat::default(),
        changed_files: 0,
    };
    c.before.insert((BlobType::Tree, *tree1));
    c.after.insert((BlobType::Tree, *tree2));
    c.diff_tree(b"/", tree1, tree2)?;
    Ok(c.finish()?)
}

/// A snapshot argument of `diff` (`ID`, `latest`, or either with `:sub/folder`) → (snapshot
/// id, the tree to compare).
pub fn resolve(repo: &IndexedRepository, spec: &str) -> crate::Result<(Id, Id)> {
    let (snap, sub) = match spec.split_once(':') {
        Some((s, p)) => (s, Some(p)),
        None => (spec, None),
    };
    let (id, sn) = if snap == "latest" {
        crate::snapshots::SnapshotFilter::default().find(repo, snap)?
    } else {
        crate::snapshots::find_by_id(repo, snap)?
    };
    let mut tree = sn.tree;
    if let Some(sub) = sub {
        for comp in sub.split('/').filter(|c| !c.is_empty() && *c != ".") {
            let t = repo.load_tree(&tree)?;
            let n = t.find(comp.as_bytes()).ok_or_else(|| {
                anyhow::anyhow!("path {sub:?} not found in snapshot {}", id.short())
            })?;
            if n.kind != NodeType::Dir {
                crate::error::bail!("path {sub:?} in snapshot {} is not a directory", id.short());
            }
            tree = n
                .subtree
                .ok_or_else(|| anyhow::anyhow!("directory {comp:?} has no subtree"))?;
        }
    }
    Ok((id, tree))
}

/// What one side of a diff holds that the other does not.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiffStat {
    pub files: u64,
    pub dirs: u64,
    pub others: u64,
    pub data_blobs: u64,
    pub tree_blobs: u64,
    /// Plain size of the blobs.
    pub bytes: u64,
}

impl DiffStat {
    fn add(&mut self, n: &Node) {
        match n.kind {
            NodeType::File => self.files += 1,
            NodeType::Dir => self.dirs += 1,
            _ => self.others += 1,
        }
    }
}

type BlobSet = HashSet<(BlobType, Id)>;

/// The blobs a node refers to directly: a file's content, a directory's tree.
fn add_blobs(set: &mut BlobSet, n: &Node) {
    match n.kind {
        NodeType::File => {
            for id in n.content.iter().flatten() {
                set.insert((BlobType::Data, *id));
            }
        }
        NodeType::Dir => {
            if let Some(st) = n.subtree {
                set.insert((BlobType::Tree, st));
            }
        }
        _ => {}
    }
}

/// restic's `Node.Equals`: every stored attribute, times compared as instants.
fn node_equal(a: &Node, b: &Node) -> bool {
    a.name == b.name
        && a.kind == b.kind
        && a.mode == b.mode
        && a.mtime == b.mtime
        && a.atime == b.atime
        && a.ctime == b.ctime
        && a.uid == b.uid
        && a.gid == b.gid
        && a.user == b.user
        && a.group == b.group
        && a.inode == b.inode
        && a.device_id == b.device_id
        && a.size == b.size
        && a.links == b.links
        && a.linktarget == b.linktarget
        && a.device == b.device
        && a.content == b.content
        && same_xattrs(a, b)
        && a.generic_attributes == b.generic_attributes
        && a.subtree == b.subtree
        && a.error == b.error
}

/// Same extended attributes, in any order (restic compares them as a map).
fn same_xattrs(a: &Node, b: &Node) -> bool {
    if a.extended_attributes.len() != b.extended_attributes.len() {
        return false;
    }
    let mut m: HashMap<&[u8], (&[u8], bool)> = HashMap::new();
    for x in &a.extended_attributes {
        m.insert(&x.name, (&x.value, false));
    }
    for x in &b.extended_attributes {
        match m.get_mut(x.name.as_slice()) {
            Some((v, present)) if *v == x.value.as_slice() => *present = true,
            _ => return false,
        }
    }
    m.values().all(|(_, present)| *present)
}

struct Comparer<'a> {
    repo: &'a IndexedRepository,
    metadata: bool,
    interrupted: Option<&'a AtomicBool>,
    out: &'a mut dyn DiffOutput,
    /// Blobs referenced from the first / second snapshot along the walked parts.
    before: BlobSet,
    after: BlobSet,
    /// Subtrees identical in both; their content counts as neither added nor removed.
    common_roots: Vec<Id>,
    added: DiffStat,
    removed: DiffStat,
    changed_files: u64,
}

/// A tree's nodes by name; a repeated name keeps the last node, as restic's map does.
fn by_name(t: Tree) -> BTreeMap<Vec<u8>, Node> {
    t.nodes.into_iter().map(|n| (n.name.clone(), n)).collect()
}

/// A directory being walked: a pair being compared (its names in order, each with the node
/// on either side), or a directory on one side only whose nodes are all printed.
enum Frame {
    Diff {
        items: std::vec::IntoIter<(Vec<u8>, Option<Node>, Option<Node>)>,
        prefix: Vec<u8>,
    },
    Print {
        modifier: &'static str,
        nodes: std::vec::IntoIter<Node>,
        prefix: Vec<u8>,
    },
}

// One step lives at a time, on the stack: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Step {
    Diff(Vec<u8>, Option<Node>, Option<Node>),
    Print(&'static str, Vec<u8>, Node),
}

/// The explicit stack of a diff, with the walker's limits.
#[derive(Default)]
struct Walk {
    stack: Vec<Frame>,
    /// Directories opened, and the distinct trees among them (DAG-bomb refusal).
    visits: u64,
    distinct: HashSet<Id>,
    cache: walk::TreeCache,
}

impl Walk {
    fn count(&mut self, ids: &[&Id]) {
        self.visits += 1;
        for id in ids {
            self.distinct.insert(**id);
        }
    }

    /// Pushes a directory's frame (if it could be read), within the depth and DAG limits.
    fn enter(&mut self, path: &[u8], frame: Option<Frame>) -> anyhow::Result<()> {
        let Some(frame) = frame else {
            return Ok(());
        };
        if self.stack.len() >= walk::MAX_DEPTH {
            anyhow::bail!(
                "{}: trees nested deeper than {} levels (damaged or forged repository)",
                walk::lossy_path(path),
                walk::MAX_DEPTH
            );
        }
        if self.visits > walk::DAG_MIN_VISITS
            && self.visits > walk::DAG_MAX_REPEAT * self.distinct.len() as u64
        {
            anyhow::bail!(
                "{}: the snapshots name {} directories but hold only {} distinct trees; \
                 refusing to expand them further (forged repository?)",
                walk::lossy_path(path),
                self.visits,
                self.distinct.len()
            );
        }
        self.stack.push(frame);
        Ok(())
    }

    fn diff_frame(
        &mut self,
        repo: &IndexedRepository,
        prefix: &[u8],
        id1: &Id,
        id2: &Id,
    ) -> anyhow::Result<Frame> {
        self.count(&[id1, id2]);
        let t1 = self.cache.load(repo, id1)?;
        let t2 = self.cache.load(repo, id2)?;
        let (mut m1, mut m2) = (by_name(t1), by_name(t2));
        let mut names: Vec<Vec<u8>> = m1.keys().chain(m2.keys()).cloned().collect();
        names.sort_unstable();
        names.dedup();
        let items: Vec<_> = names
            .into_iter()
            .map(|name| {
                let (n1, n2) = (m1.remove(&name), m2.remove(&name));
                (name, n1, n2)
            })
            .collect();
        Ok(Frame::Diff {
            items: items.into_iter(),
            prefix: prefix.to_vec(),
        })
    }

    fn print_frame(
        &mut self,
        repo: &IndexedRepository,
        modifier: &'static str,
        prefix: &[u8],
        id: &Id,
    ) -> anyhow::Result<Frame> {
        self.count(&[id]);
        let t = self.cache.load(repo, id)?;
        Ok(Frame::Print {
            modifier,
            nodes: t.nodes.into_iter(),
            prefix: prefix.to_vec(),
        })
    }
}

fn subtree_of(n: &Node) -> anyhow::Result<Id> {
    n.subtree
        .ok_or_else(|| anyhow::anyhow!("directory {:?} has no subtree", n.name_lossy()))
}

impl Comparer<'_> {
    fn check_interrupted(&self) -> anyhow::Result<()> {
        if self.interrupted.is_some_and(|f| f.load(Ordering::Relaxed)) {
            return Err(crate::Error::Interrupted.into());
        }
        Ok(())
    }

    fn warn(&mut self, e: &anyhow::Error) {
        self.out.warn(&format!("error: {e:#}"));
    }

    fn change(&mut self, path: &[u8], modifier: &str) -> anyhow::Result<()> {
        self.out.change(path, modifier)
    }

    /// Compares the trees `id1` and `id2` at `prefix` side by side, depth first in name
    /// order, with an explicit stack of directory pairs (no recursion: a forged chain of
    /// nested trees cannot overflow the stack). The depth is limited to the walker's
    /// [`walk::MAX_DEPTH`], a snapshot that names far more directories than it holds trees
    /// is refused as the walker refuses it, and Ctrl-C ends the walk at the next node.
    fn diff_tree(&mut self, prefix: &[u8], id1: &Id, id2: &Id) -> anyhow::Result<()> {
        let mut walk = Walk::default();
        // The top trees must load; below, trees that cannot be read are warned about.
        let first = walk.diff_frame(self.repo, prefix, id1, id2)?;
        walk.stack.push(first);
        loop {
            let Some(top) = walk.stack.last_mut() else {
                return Ok(());
            };
            let step = match top {
                Frame::Diff { items, prefix } => items
                    .next()
                    .map(|(name, n1, n2)| Step::Diff(go_path_join(prefix, &name), n1, n2)),
                Frame::Print {
                    modifier,
                    nodes,
                    prefix,
                } => nodes
                    .next()
                    .map(|n| Step::Print(modifier, go_path_join(prefix, &n.name), n)),
            };
            let Some(step) = step else {
                walk.stack.pop();
                continue;
            };
            self.check_interrupted()?;
            match step {
                Step::Diff(path, n1, n2) => self.diff_node(&mut walk, path, n1, n2)?,
                Step::Print(modifier, path, n) => self.print_node(&mut walk, modifier, path, n)?,
            }
        }
    }

    /// One name of a compared pair of directories.
    fn diff_node(
        &mut self,
        walk: &mut Walk,
        mut path: Vec<u8>,
        n1: Option<Node>,
        n2: Option<Node>,
    ) -> anyhow::Result<()> {
        if let Some(n) = &n1 {
            add_blobs(&mut self.before, n);
        }
        if let Some(n) = &n2 {
            add_blobs(&mut self.after, n);
        }
        match (n1, n2) {
            (Some(n1), Some(n2)) => {
                let mut m = String::new();
                if n1.kind != n2.kind {
                    m.push('T');
                }
                if n2.kind == NodeType::Dir {
                    path.push(b'/');
                }
                if n1.kind == NodeType::File
                    && n2.kind == NodeType::File
                    && n1.content != n2.content
                {
                    m.push('M');
                    self.changed_files += 1;
                } else if self.metadata && !node_equal(&n1, &n2) {
                    m.push('U');
                }
                if !m.is_empty() {
                    self.change(&path, &m)?;
                }
                if n1.kind == NodeType::Dir && n2.kind == NodeType::Dir {
                    let res = subtree_of(&n1).and_then(|s1| {
                        let s2 = subtree_of(&n2)?;
                        if s1 == s2 {
                            self.common_roots.push(s1);
                            Ok(None)
                        } else {
                            walk.diff_frame(self.repo, &path, &s1, &s2).map(Some)
                        }
                    });
                    walk.enter(&path, self.nested(res)?)?;
                }
            }
            (Some(n1), None) => self.one_side(walk, "-", path, n1)?,
            (None, Some(n2)) => self.one_side(walk, "+", path, n2)?,
            (None, None) => {}
        }
        Ok(())
    }

    /// A node on one side only: printed, and everything below it if it is a directory.
    fn one_side(
        &mut self,
        walk: &mut Walk,
        modifier: &'static str,
        mut path: Vec<u8>,
        n: Node,
    ) -> anyhow::Result<()> {
        if n.kind == NodeType::Dir {
            path.push(b'/');
        }
        self.change(&path, modifier)?;
        if modifier == "+" {
            self.added.add(&n);
        } else {
            self.removed.add(&n);
        }
        if n.kind == NodeType::Dir {
            let res = subtree_of(&n)
                .and_then(|s| walk.print_frame(self.repo, modifier, &path, &s).map(Some));
            walk.enter(&path, self.nested(res)?)?;
        }
        Ok(())
    }

    /// A node below an added ("+") or removed ("-") directory.
    fn print_node(
        &mut self,
        walk: &mut Walk,
        modifier: &'static str,
        mut path: Vec<u8>,
        n: Node,
    ) -> anyhow::Result<()> {
        if n.kind == NodeType::Dir {
            path.push(b'/');
        }
        self.change(&path, modifier)?;
        let (stats, blobs) = if modifier == "+" {
            (&mut self.added, &mut self.after)
        } else {
            (&mut self.removed, &mut self.before)
        };
        stats.add(&n);
        add_blobs(blobs, &n);
        if n.kind == NodeType::Dir {
            let res = subtree_of(&n)
                .and_then(|s| walk.print_frame(self.repo, modifier, &path, &s).map(Some));
            walk.enter(&path, self.nested(res)?)?;
        }
        Ok(())
    }

    /// restic only warns about trees below the top that cannot be read, and goes on —
    /// but an interruption or a failing stdout ends the command.
    fn nested<T>(&mut self, res: anyhow::Result<Option<T>>) -> anyhow::Result<Option<T>> {
        match res {
            Ok(v) => Ok(v),
            Err(e) => {
                let fatal = e.chain().any(|c| {
                    c.downcast_ref::<std::io::Error>().is_some()
                        || matches!(
                            c.downcast_ref::<crate::Error>(),
                            Some(crate::Error::Interrupted | crate::Error::Io { .. })
                        )
                });
                if fatal {
                    return Err(e);
                }
                self.warn(&e);
                Ok(None)
            }
        }
    }

    /// Counts the added and removed blobs: referenced on one side only, and not inside a
    /// subtree both snapshots share (restic's BlobsBefore/After minus both minus common).
    fn finish(mut self) -> anyhow::Result<DiffResult> {
        let mut gone: BlobSet = self.before.difference(&self.after).copied().collect();
        let mut new: BlobSet = self.after.difference(&self.before).copied().collect();
        // Only blobs that are candidates need looking for in the shared subtrees, and each
        // shared tree needs reading once.
        let mut seen = HashSet::new();
        let mut stack = std::mem::take(&mut self.common_roots);
        while let Some(id) = stack.pop() {
            if gone.is_empty() && new.is_empty() {
                break;
            }
            if !seen.insert(id) {
                continue;
            }
            self.check_interrupted()?;
            let t = match self.repo.load_tree(&id) {
                Ok(t) => t,
                Err(e) => {
                    self.warn(&e.into());
                    continue;
                }
            };
            let mut here = BlobSet::new();
            for n in &t.nodes {
                add_blobs(&mut here, n);
                if n.kind == NodeType::Dir {
                    if let Some(s) = n.subtree {
                        stack.push(s);
                    }
                }
            }
            gone.retain(|b| !here.contains(b));
            new.retain(|b| !here.contains(b));
        }
        let repo = self.repo;
        let out = &mut *self.out;
        let mut count = |set: &BlobSet, st: &mut DiffStat| {
            for (ty, id) in set {
                match ty {
                    BlobType::Data => st.data_blobs += 1,
                    BlobType::Tree => st.tree_blobs += 1,
                }
                match repo.index().plain_size(*ty, id) {
                    Some(n) => st.bytes += n,
                    None => out.warn(&format!(
                        "unable to find blob size for <{ty}/{}>",
                        id.short()
                    )),
                }
            }
        };
        count(&gone, &mut self.removed);
        count(&new, &mut self.added);
        Ok(DiffResult {
            added: self.added,
            removed: self.removed,
            changed_files: self.changed_files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xattrs_compare_as_sets() {
        use crate::format::tree::ExtendedAttribute;
        let x = |n: &str, v: &str| ExtendedAttribute {
            name: n.as_bytes().to_vec(),
            value: v.as_bytes().to_vec(),
        };
        let mut a = Node::new(b"f".to_vec(), NodeType::File);
        let mut b = a.clone();
        a.extended_attributes = vec![x("user.a", "1"), x("user.b", "2")];
        b.extended_attributes = vec![x("user.b", "2"), x("user.a", "1")];
        assert!(node_equal(&a, &b));
        b.extended_attributes[0].value = b"3".to_vec();
        assert!(!node_equal(&a, &b));
        b.extended_attributes = vec![x("user.a", "1"), x("user.a", "1")];
        assert!(!node_equal(&a, &b));
    }

    #[test]
    fn node_equality_covers_times_and_content() {
        let a = Node::new(b"f".to_vec(), NodeType::File);
        let mut b = a.clone();
        assert!(node_equal(&a, &b));
        b.content = Some(vec![Id::hash(b"x")]);
        assert!(!node_equal(&a, &b));
        let mut c = a.clone();
        c.mtime = crate::format::gotime::parse_rfc3339("2020-01-01T00:00:00Z").expect("time");
        assert!(!node_equal(&a, &c));
    }

    #[derive(Default)]
    struct Recorder {
        changes: Vec<(String, String)>,
        warnings: Vec<String>,
    }

    impl DiffOutput for Recorder {
        fn change(&mut self, path: &[u8], modifier: &str) -> anyhow::Result<()> {
            self.changes.push((
                String::from_utf8_lossy(path).into_owned(),
                modifier.to_string(),
            ));
            Ok(())
        }
        fn warn(&mut self, msg: &str) {
            self.warnings.push(msg.to_string());
        }
    }

    #[test]
    fn trees_are_compared_as_restic_does() {
        use crate::testing::{dir, file, new_repo, Blobs};
        let (_d, mut repo) = new_repo();
        let (t1, t2) = {
            let b = Blobs::new(&repo);
            let (x, x2, y, z) = (b.data(b"x"), b.data(b"x2"), b.data(b"y"), b.data(b"zz"));
            let d1 = b.tree(vec![file("b", vec![y], 1)]);
            let d2 = b.tree(vec![file("b", vec![y], 1), file("c", vec![z], 2)]);
            let mut link = Node::new(b"e".to_vec(), NodeType::Symlink);
            link.linktarget = b"a".to_vec();
            let t1 = b.tree(vec![file("a", vec![x], 1), dir("d", d1)]);
            let t2 = b.tree(vec![file("a", vec![x2], 2), dir("d", d2), link]);
            b.finish();
            (t1, t2)
        };
        repo.reload_index().expect("index");
        let mut r = Recorder::default();
        let res = diff_trees(&repo, &t1, &t2, false, None, &mut r).expect("diff");
        let c = |p: &str, m: &str| (p.to_string(), m.to_string());
        assert_eq!(r.changes, vec![c("/a", "M"), c("/d/c", "+"), c("/e", "+")]);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert_eq!(res.changed_files, 1);
        assert_eq!((res.added.files, res.added.others), (1, 1));
        assert_eq!((res.added.data_blobs, res.added.tree_blobs), (2, 2));
        assert_eq!((res.removed.data_blobs, res.removed.tree_blobs), (1, 2));
        assert_eq!(
            res.added.bytes,
            2 + 2 + tree_size(&repo, &t2) + subtree_size(&repo, &t2)
        );
        let stop = AtomicBool::new(true);
        let e = diff_trees(
            &repo,
            &t1,
            &t2,
            false,
            Some(&stop),
            &mut Recorder::default(),
        )
        .expect_err("interrupted");
        assert!(e.is_interrupted(), "{e:#}");
    }

    fn tree_size(repo: &IndexedRepository, id: &Id) -> u64 {
        repo.index()
            .plain_size(BlobType::Tree, id)
            .expect("tree indexed")
    }

    fn subtree_size(repo: &IndexedRepository, root: &Id) -> u64 {
        let t = repo.load_tree(root).expect("tree");
        let d = t.find(b"d").and_then(|n| n.subtree).expect("d");
        tree_size(repo, &d)
    }
}
