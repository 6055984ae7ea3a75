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
use crate::repository::Repository;
use crate::Id;
use anyhow::Context;
use std::collections::HashMap;

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
    repo: &'r Repository,
    writer: &'w BlobWriter<'r>,
    /// Accept trees whose serialization changes on a round trip (repair), or refuse them.
    allow_unstable: bool,
    /// Trees already rewritten (only for path-independent rules).
    done: HashMap<Id, Option<Id>>,
}

impl<'r, 'w> TreeRewriter<'r, 'w> {
    pub fn new(
        repo: &'r Repository,
        writer: &'w BlobWriter<'r>,
        allow_unstable: bool,
    ) -> TreeRewriter<'r, 'w> {
        TreeRewriter {
            repo,
            writer,
            allow_unstable,
            done: HashMap::new(),
        }
    }

    /// Rewrites the tree `id` found at `path`; returns the new id, or `None` when the tree
    /// is to be removed.
    pub fn rewrite(
        &mut self,
        rules: &mut dyn RewriteRules,
        path: &[u8],
        id: Option<Id>,
    ) -> anyhow::Result<Option<Id>> {
        let cache = rules.path_independent();
        if let (true, Some(id)) = (cache, id) {
            if let Some(done) = self.done.get(&id) {
                return Ok(*done);
            }
        }
        let loaded = match id {
            Some(id) => self.repo.load_blob(BlobType::Tree, &id).and_then(|raw| {
                let tree = Tree::parse(&raw).with_context(|| format!("tree {id}: invalid tree"))?;
                Ok((raw, tree))
            }),
            None => Err(anyhow::anyhow!("directory has no subtree")),
        };
        let (raw, tree) = match loaded {
            Ok(x) => x,
            Err(e) => {
                let out = match rules.failed_tree(id, path, e)? {
                    Some(t) => Some(self.store(&t)?),
                    None => None,
                };
                return Ok(out);
            }
        };

        let mut changed = false;
        let mut nodes = Vec::with_capacity(tree.nodes.len());
        for node in &tree.nodes {
            let mut child = path.to_vec();
            if child.last() != Some(&b'/') {
                child.push(b'/');
            }
            child.extend_from_slice(&node.name);
            let mut node = match rules.node(node, &child) {
                NodeAction::Keep => node.clone(),
                NodeAction::Remove => {
                    changed = true;
                    continue;
                }
                NodeAction::Replace(n) => {
                    changed = true;
                    *n
                }
            };
            if node.kind == NodeType::Dir {
                match self.rewrite(rules, &child, node.subtree)? {
                    None => {
                        changed = true;
                        continue;
                    }
                    Some(sub) => {
                        if node.subtree != Some(sub) {
                            changed = true;
                            node.subtree = Some(sub);
                        }
                    }
                }
            }
            nodes.push(node);
        }

        let out = match (changed, id) {
            (false, Some(id)) => id,
            _ => {
                if !self.allow_unstable && tree.to_json() != raw {
                    anyhow::bail!(
                        "cannot encode tree at {:?} without losing information",
                        String::from_utf8_lossy(path)
                    );
                }
                self.store(&Tree { nodes })?
            }
        };
        if let (true, Some(id)) = (cache, id) {
            self.done.insert(id, Some(out));
        }
        Ok(Some(out))
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
