//! restic 0.18's `recover`: trees that neither a snapshot nor another tree refers to (the
//! roots of snapshots whose files were lost) become the directories of one new snapshot,
//! `/recover`, tagged `recovered`, so that their files can be restored again.

use crate::format::pack::BlobType;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeType, Tree};
use crate::observe::{check_cancel, Observer};
use crate::packer::Compression;
use crate::repair::{repair_index, RepairIndexOptions};
use crate::repository::Repository;
use crate::Id;
use cairn_backend::FileType;
use std::collections::{BTreeMap, BTreeSet};

/// What `recover` found and wrote.
#[derive(Debug, Default)]
pub struct RecoverStats {
    /// Trees nothing refers to, sorted.
    pub roots: Vec<Id>,
    /// The new snapshot (none when there was nothing to recover).
    pub snapshot: Option<Id>,
}

/// Makes the index complete (as `repair index` does), then finds the unreferenced trees and
/// stores a snapshot whose root directory holds each of them under its short id.
/// `hostname` names the new snapshot's host. Trees that cannot be loaded are reported and
/// treated as referring to nothing.
pub fn recover(
    repo: Repository,
    hostname: &str,
    compression: Compression,
    obs: &dyn Observer,
) -> crate::Result<RecoverStats> {
    obs.info("ensuring index is complete");
    repair_index(&repo, RepairIndexOptions::default(), obs)?;
    obs.info("load index files");
    let repo = repo.load_index()?;
    let index = repo.index();
    // Tree id -> referred to by another tree or a snapshot?
    let mut trees: BTreeMap<Id, bool> = (0..index.blob_count(BlobType::Tree))
        .map(|pos| (index.entry(BlobType::Tree, pos).1.id, false))
        .collect();
    obs.info(&format!("load {} trees", trees.len()));
    let ids: Vec<Id> = trees.keys().copied().collect();
    for id in ids {
        check_cancel(obs)?;
        let tree = match repo.load_tree(&id) {
            Ok(t) => t,
            Err(e) => {
                obs.warn(&format!("unable to load tree {}: {e:#}", id.short()));
                continue;
            }
        };
        for n in &tree.nodes {
            if let (NodeType::Dir, Some(sub)) = (&n.kind, n.subtree) {
                trees.insert(sub, true);
            }
        }
    }
    obs.info("load snapshots");
    for sid in repo.list_ids(FileType::Snapshot)? {
        match repo.load_snapshot(&sid) {
            Ok(s) => {
                trees.insert(s.tree, true);
            }
            Err(e) => obs.warn(&format!("unable to load snapshot {}: {e:#}", sid.short())),
        }
    }
    obs.info("done");
    let roots: BTreeSet<Id> = trees
        .iter()
        .filter(|(_, seen)| !**seen)
        .map(|(id, _)| *id)
        .collect();
    for r in &roots {
        obs.verbose(&format!("found root tree {}", r.short()));
    }
    obs.info(&format!("\nfound {} unreferenced roots", roots.len()));
    let mut stats = RecoverStats {
        roots: roots.iter().copied().collect(),
        snapshot: None,
    };
    if roots.is_empty() {
        obs.info("no snapshot to write.");
        return Ok(stats);
    }

    let now = chrono::Local::now().fixed_offset();
    let mut tree = Tree::default();
    for r in &roots {
        // As restic: permission bits only, no directory bit in the mode.
        let mut n = Node::new(r.short().into_bytes(), NodeType::Dir);
        n.mode = 0o755;
        n.subtree = Some(*r);
        n.mtime = now;
        n.atime = now;
        n.ctime = now;
        tree.nodes.push(n);
    }
    tree.sort()?;
    let json = tree.to_json();
    let tree_id = Id::hash(&json);
    let writer = repo.blob_writer(compression);
    writer.save(BlobType::Tree, tree_id, &json)?;
    writer.finish()?;

    let (uid, gid) = crate::util::host::current_uid_gid();
    let snap = Snapshot {
        time: now,
        parent: None,
        tree: tree_id,
        paths: vec!["/recover".into()],
        hostname: hostname.to_string(),
        username: crate::util::host::username(),
        uid,
        gid,
        excludes: vec![],
        tags: vec!["recovered".into()],
        original: None,
        program_version: String::new(),
        summary: None,
    };
    let id = repo.save_unpacked(FileType::Snapshot, &snap.to_json())?;
    obs.info(&format!("saved new snapshot {}", id.short()));
    stats.snapshot = Some(id);
    Ok(stats)
}
