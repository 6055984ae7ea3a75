//! Rewriting snapshot trees node by node (restic's `walker.TreeRewriter`), for `rewrite` and
//! `repair snapshots`.
//!
//! A tree none of whose nodes change keeps its id and its stored bytes, so that rewriting
//! never disturbs what it does not touch. A changed tree is serialized again; when the
//! original bytes are not what serializing their parse gives (restic's "unstable" trees, e.g.
//! invalid UTF-8 written as escapes), `rewrite` refuses as restic does, `repair snapshots`
//! accepts the loss.

use crate::format::pack::BlobType;
use crate::format::tree::{Node, NodeType, Tree};
use crate::packer::BlobWriter;
use crate::repository::IndexedRepository;
use crate::walk::{lossy_path, walk_from, CachedSource, Visit, Visitor, WalkOptions, MAX_DEPTH};
use crate::Id;
use anyhow::Context;
use std::collections::HashMap;
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
    ) -> anyhow::Result<Option<Id>> {
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
