//! The one tree walker: every command that reads a snapshot's trees (restore planning, ls,
//! find, dump, stats, diff, check, copy, rewrite, prune's marking) walks them through here.
//!
//! Trees come from the repository and are untrusted. The walk is iterative (an explicit stack,
//! never recursion), so a chain of a million nested trees cannot overflow the stack; it keeps
//! one path buffer for the whole walk (memory grows with the depth and the width of the trees
//! on the current path, not with the number of paths); it refuses nesting deeper than
//! [`MAX_DEPTH`] and snapshots that name far more directories than they hold distinct trees
//! (a "DAG bomb": one subtree under two names per level names 2^levels paths); and it stops
//! within one node of an interrupt.

use crate::format::pack::BlobType;
use crate::format::tree::{Node, NodeType, Tree};
use crate::repository::IndexedRepository;
use crate::{Error, Id};
use anyhow::Context;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

/// Deepest nesting a walk follows. Linux paths reach at most 4096 bytes through path-based
/// calls, so no real filesystem backed up by a path-based tool is anywhere near this.
pub const MAX_DEPTH: usize = 4096;
/// Bytes of tree blobs a walk keeps decoded-from-the-repository copies of, so that a tree
/// named many times (identical subtrees; a DAG bomb until it is refused) is read once.
const TREE_CACHE_BYTES: usize = 16 << 20;
/// A walk that enters more directories than this ...
pub const DAG_MIN_VISITS: u64 = 1_000_000;
/// ... and more than this many times the number of distinct trees it saw, is refused.
pub const DAG_MAX_REPEAT: u64 = 64;

/// Trees nested deeper than the walk's limit (given to [`Visitor::tree_error`]; visitors that
/// skip unreadable trees should still end the walk with this one).
#[derive(Debug, thiserror::Error)]
#[error("{path}: trees nested deeper than {max} levels (damaged or forged repository)")]
pub struct TooDeep {
    pub path: String,
    pub max: usize,
}

/// What to do after a directory node was visited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visit {
    /// Walk into it (ignored for nodes that are not directories).
    Descend,
    /// Go on with its next sibling.
    Skip,
    /// End the whole walk successfully.
    Stop,
}

/// Receives a walk's nodes in depth-first pre-order (siblings in tree order), with
/// `leave` after a directory's children.
pub trait Visitor {
    /// A node at `path` (the snapshot path: the root's path followed by `/name` per level).
    fn node(&mut self, path: &[u8], node: &Node, depth: usize) -> anyhow::Result<Visit>;

    /// After every child of a directory that was descended into.
    fn leave(&mut self, _path: &[u8], _node: &Node, _depth: usize) -> anyhow::Result<()> {
        Ok(())
    }

    /// A tree was loaded (before its nodes are visited); `path` is where it sits.
    fn tree(&mut self, _path: &[u8], _id: &Id, _tree: &Tree) -> anyhow::Result<()> {
        Ok(())
    }

    /// A tree could not be loaded or parsed, or lies deeper than `max_depth`. Returning `Ok`
    /// skips that directory and goes on (as `check` does); the default ends the walk with the
    /// error.
    fn tree_error(&mut self, _path: &[u8], _id: &Id, err: anyhow::Error) -> anyhow::Result<()> {
        Err(err)
    }
}

/// How a walk is bounded.
#[derive(Clone, Copy)]
pub struct WalkOptions<'a> {
    /// Checked before every node; when set, the walk ends with [`Error::Interrupted`].
    pub interrupted: Option<&'a AtomicBool>,
    pub max_depth: usize,
    /// Refuse DAG bombs (see the module documentation). On by default; commands that load
    /// every tree only once anyway (check, prune) may turn it off.
    pub refuse_dag_bombs: bool,
    /// Visit each tree's nodes in name order even where a (damaged or forged) tree stores
    /// them unsorted, as restic's walker does (`find`, `dump`); `Visitor::tree` then sees
    /// the sorted tree.
    pub sorted: bool,
}

impl Default for WalkOptions<'_> {
    fn default() -> Self {
        WalkOptions {
            interrupted: None,
            max_depth: MAX_DEPTH,
            refuse_dag_bombs: true,
            sorted: false,
        }
    }
}

impl<'a> WalkOptions<'a> {
    pub fn interruptible(flag: &'a AtomicBool) -> Self {
        WalkOptions {
            interrupted: Some(flag),
            ..Default::default()
        }
    }
}

struct Frame {
    nodes: std::vec::IntoIter<Node>,
    /// Length of the path buffer that names this tree's directory.
    prefix: usize,
    /// The directory node this frame lists (None for the root tree).
    dir: Option<Node>,
}

/// Where a walk gets its trees: the repository, or a caller's own loader (`check` reads
/// every indexed copy of a tree until one parses; `copy` keeps the stored bytes).
pub trait TreeSource {
    fn load_tree(&self, id: &Id) -> anyhow::Result<Tree>;
}

impl TreeSource for IndexedRepository {
    fn load_tree(&self, id: &Id) -> anyhow::Result<Tree> {
        Ok(IndexedRepository::load_tree(self, id)?)
    }
}

/// Walks the tree `root`, whose own path is `root_path` (empty for a snapshot's root, so
/// that top-level nodes are `/name`).
pub fn walk(
    repo: &IndexedRepository,
    root: Id,
    root_path: &[u8],
    opts: &WalkOptions,
    v: &mut dyn Visitor,
) -> crate::Result<()> {
    walk_from(&CachedSource::new(repo), root, root_path, opts, v)
}

/// [`walk`] with trees from `src`.
pub fn walk_from(
    src: &dyn TreeSource,
    root: Id,
    root_path: &[u8],
    opts: &WalkOptions,
    v: &mut dyn Visitor,
) -> crate::Result<()> {
    let sort = opts.sorted;
    let mut path = root_path.to_vec();
    let mut stack: Vec<Frame> = Vec::new();
    let mut distinct: HashSet<Id> = HashSet::new();
    let mut visits = 0u64;
    let mut enter = |path: &[u8],
                     id: Id,
                     dir: Option<Node>,
                     stack: &mut Vec<Frame>,
                     v: &mut dyn Visitor|
     -> anyhow::Result<()> {
        if stack.len() >= opts.max_depth {
            // Through `tree_error`, so that `check` can report it and go on.
            let e = anyhow::Error::new(TooDeep {
                path: lossy_path(path),
                max: opts.max_depth,
            });
            return v.tree_error(path, &id, e);
        }
        visits += 1;
        if opts.refuse_dag_bombs {
            distinct.insert(id);
            if visits > DAG_MIN_VISITS && visits > DAG_MAX_REPEAT * distinct.len() as u64 {
                anyhow::bail!(
                    "{}: the snapshot names {visits} directories but holds only {} distinct \
                     trees; refusing to expand it further (forged repository?)",
                    lossy_path(path),
                    distinct.len()
                );
            }
        }
        match src.load_tree(&id) {
            Ok(mut tree) => {
                if sort && !tree.nodes.windows(2).all(|w| w[0].name <= w[1].name) {
                    tree.nodes.sort_by(|a, b| a.name.cmp(&b.name));
                }
                v.tree(path, &id, &tree)?;
                stack.push(Frame {
                    nodes: tree.nodes.into_iter(),
                    prefix: path.len(),
                    dir,
                });
                Ok(())
            }
            Err(e) => {
                let e = e.context(format!("directory {}", lossy_path(path)));
                v.tree_error(path, &id, e)
            }
        }
    };
    enter(&path, root, None, &mut stack, v)?;
    while let Some(top) = stack.last_mut() {
        let Some(node) = top.nodes.next() else {
            let done = stack.pop().expect("non-empty stack");
            path.truncate(done.prefix);
            if let Some(dir) = done.dir {
                v.leave(&path, &dir, stack.len())?;
            }
            continue;
        };
        if opts.interrupted.is_some_and(|f| f.load(Ordering::Relaxed)) {
            return Err(Error::Interrupted);
        }
        let prefix = top.prefix;
        path.truncate(prefix);
        path.push(b'/');
        path.extend_from_slice(&node.name);
        let depth = stack.len() - 1;
        match v.node(&path, &node, depth)? {
            Visit::Stop => return Ok(()),
            Visit::Descend if node.kind == NodeType::Dir => match node.subtree {
                Some(sub) => enter(&path, sub, Some(node), &mut stack, v)?,
                None => {
                    let e = anyhow::anyhow!("directory {} has no subtree", lossy_path(&path));
                    v.tree_error(&path, &Id::default(), e)?;
                }
            },
            _ => {}
        }
    }
    Ok(())
}

/// The plaintext of recently loaded tree blobs, at most `TREE_CACHE_BYTES` of them
/// (emptied when full): a repeat costs a parse, not a read and a decryption. Every walk has
/// one; commands that walk trees their own way (diff's side-by-side walk) may use one too.
#[derive(Default)]
pub struct TreeCache {
    blobs: HashMap<Id, Vec<u8>>,
    bytes: usize,
}

impl TreeCache {
    /// [`IndexedRepository::load_tree`], from the cache when the blob is in it.
    pub fn load(&mut self, repo: &IndexedRepository, id: &Id) -> crate::Result<Tree> {
        if let Some(json) = self.blobs.get(id) {
            return Tree::parse(json)
                .with_context(|| format!("tree {id}: invalid tree"))
                .map_err(crate::Error::loading(crate::Object::Tree(*id)));
        }
        let json = repo.load_blob(BlobType::Tree, id)?;
        let tree = Tree::parse(&json)
            .with_context(|| format!("tree {id}: invalid tree"))
            .map_err(crate::Error::loading(crate::Object::Tree(*id)))?;
        if json.len() <= TREE_CACHE_BYTES / 8 {
            if self.bytes + json.len() > TREE_CACHE_BYTES {
                self.blobs.clear();
                self.bytes = 0;
            }
            self.bytes += json.len();
            self.blobs.insert(*id, json);
        }
        Ok(tree)
    }
}

/// Loads the tree of the directory at `subpath` (`a/b/c`, relative to `root`) without
/// following anything but directories. Errors name the missing or non-directory component.
pub fn subtree_at(repo: &IndexedRepository, root: Id, subpath: &str) -> crate::Result<Id> {
    let mut tree = root;
    let mut so_far = String::new();
    for comp in subpath.split('/').filter(|c| !c.is_empty()) {
        so_far.push('/');
        so_far.push_str(comp);
        let t = repo.load_tree(&tree)?;
        let n = t
            .find(comp.as_bytes())
            .ok_or_else(|| anyhow::anyhow!("path {so_far:?} not found"))?;
        if n.kind != NodeType::Dir {
            crate::error::bail!("path {so_far:?} is not a directory");
        }
        tree = n
            .subtree
            .ok_or_else(|| anyhow::anyhow!("directory {so_far:?} has no subtree"))?;
    }
    Ok(tree)
}

pub fn lossy_path(p: &[u8]) -> String {
    if p.is_empty() {
        "/".into()
    } else {
        String::from_utf8_lossy(p).into_owned()
    }
}

/// A visitor from a closure over every node, descending into every directory.
pub struct EachNode<F: FnMut(&[u8], &Node) -> anyhow::Result<()>>(pub F);

impl<F: FnMut(&[u8], &Node) -> anyhow::Result<()>> Visitor for EachNode<F> {
    fn node(&mut self, path: &[u8], node: &Node, _depth: usize) -> anyhow::Result<Visit> {
        (self.0)(path, node)?;
        Ok(Visit::Descend)
    }
}

/// A [`TreeSource`] that keeps the trees it loaded, up to a budget (cleared when full), for
/// walks that meet the same trees under many paths (a path-dependent `rewrite` of a
/// DAG-shaped snapshot reloads each shared tree per path otherwise).
pub struct CachedSource<'a> {
    inner: &'a dyn TreeSource,
    cache: std::cell::RefCell<(usize, std::collections::HashMap<Id, Tree>)>,
}

/// What [`CachedSource`] may hold: nodes plus blob ids of file contents (a few MB at most).
const CACHE_BUDGET: usize = 1 << 16;

impl<'a> CachedSource<'a> {
    pub fn new(inner: &'a dyn TreeSource) -> Self {
        CachedSource {
            inner,
            cache: Default::default(),
        }
    }
}

impl TreeSource for CachedSource<'_> {
    fn load_tree(&self, id: &Id) -> anyhow::Result<Tree> {
        if let Some(t) = self.cache.borrow().1.get(id) {
            return Ok(t.clone());
        }
        let tree = self.inner.load_tree(id)?;
        let weight: usize = 1 + tree
            .nodes
            .iter()
            .map(|n| 1 + n.content.as_ref().map_or(0, |c| c.len()))
            .sum::<usize>();
        if weight <= CACHE_BUDGET / 16 {
            let mut c = self.cache.borrow_mut();
            if c.0 + weight > CACHE_BUDGET {
                c.1.clear();
                c.0 = 0;
            }
            c.0 += weight;
            c.1.insert(*id, tree.clone());
        }
        Ok(tree)
    }
}

#[cfg(test)]
mod source_tests {
    use super::*;
    use std::cell::Cell;

    /// Tree `n` (for n > 0) holds directories `a` and `b`, both tree `n - 1`: a DAG bomb
    /// generated on the fly; tree 0 is empty. Counts loads.
    struct Bomb(Cell<u64>);

    fn id(n: u8) -> Id {
        Id([n; 32])
    }

    impl TreeSource for Bomb {
        fn load_tree(&self, t: &Id) -> anyhow::Result<Tree> {
            self.0.set(self.0.get() + 1);
            let n = t.0[0];
            let mut nodes = Vec::new();
            if n > 0 {
                for name in [b"a", b"b"] {
                    let mut d = Node::new(name.to_vec(), NodeType::Dir);
                    d.subtree = Some(id(n - 1));
                    nodes.push(d);
                }
            }
            Ok(Tree { nodes })
        }
    }

    struct Count {
        dirs: u64,
        errors: Vec<String>,
    }

    impl Visitor for Count {
        fn node(&mut self, _: &[u8], _: &Node, _: usize) -> anyhow::Result<Visit> {
            self.dirs += 1;
            Ok(Visit::Descend)
        }
        fn tree_error(&mut self, _: &[u8], _: &Id, err: anyhow::Error) -> anyhow::Result<()> {
            self.errors.push(format!("{err:#}"));
            Ok(())
        }
    }

    #[test]
    fn cached_source_loads_each_shared_tree_once() {
        let bomb = Bomb(Cell::new(0));
        let cached = CachedSource::new(&bomb);
        let mut v = Count {
            dirs: 0,
            errors: vec![],
        };
        walk_from(&cached, id(10), b"", &WalkOptions::default(), &mut v).unwrap();
        assert_eq!(v.dirs, (1 << 11) - 2);
        assert_eq!(bomb.0.get(), 11);
    }

    #[test]
    fn too_deep_goes_through_tree_error() {
        let bomb = Bomb(Cell::new(0));
        let opts = WalkOptions {
            max_depth: 3,
            ..Default::default()
        };
        let mut v = Count {
            dirs: 0,
            errors: vec![],
        };
        walk_from(&bomb, id(5), b"", &opts, &mut v).unwrap();
        assert_eq!(v.errors.len(), 8, "{:?}", v.errors);
        assert!(v.errors[0].contains("/a/a/a: trees nested deeper than 3 levels"));
    }
}
