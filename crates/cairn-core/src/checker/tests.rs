//! Unit tests of the checker on small repositories built by hand, damaged on purpose.

use super::*;
use crate::crypto::Key;
use crate::format::indexfile::{IndexBlob, IndexFile, IndexPack};
use crate::format::pack::{self, PackedBlob};
use crate::format::tree::{Node, NodeType, Tree};
use cairn_backend::Handle;
use std::sync::Mutex;

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    repo: Repository,
    data_pack: Id,
    data_blobs: Vec<PackedBlob>,
    tree_pack: Id,
    tree_blobs: Vec<PackedBlob>,
    index_id: Id,
    root_tree: Id,
    snapshot: Id,
}

fn seal_blob(
    key: &Key,
    ty: BlobType,
    plain: &[u8],
    compress: bool,
    out: &mut Vec<u8>,
) -> PackedBlob {
    let offset = out.len() as u32;
    let (payload, ulen) = if compress {
        (zstd::bulk::compress(plain, 3).unwrap(), plain.len() as u32)
    } else {
        (plain.to_vec(), 0)
    };
    key.seal_into(&payload, out);
    PackedBlob {
        ty,
        id: Id::hash(plain),
        offset,
        length: out.len() as u32 - offset,
        uncompressed_length: ulen,
    }
}

fn save_pack(repo: &Repository, blobs: &[(BlobType, Vec<u8>, bool)]) -> (Id, Vec<PackedBlob>) {
    let mut bytes = Vec::new();
    let packed: Vec<PackedBlob> = blobs
        .iter()
        .map(|(ty, p, c)| seal_blob(repo.key(), *ty, p, *c, &mut bytes))
        .collect();
    pack::finish(&mut bytes, repo.key(), &packed);
    let id = Id::hash(&bytes);
    repo.backend()
        .save(&Handle::new(FileType::Data, id.to_hex()), &bytes)
        .unwrap();
    (id, packed)
}

fn index_file(packs: &[(Id, &[PackedBlob])]) -> IndexFile {
    IndexFile {
        supersedes: vec![],
        packs: packs
            .iter()
            .map(|(id, blobs)| IndexPack {
                id: *id,
                blobs: blobs.iter().map(IndexBlob::from_packed).collect(),
            })
            .collect(),
    }
}

fn file_node(name: &str, content: Vec<Id>) -> Node {
    let mut n = Node::new(name.as_bytes().to_vec(), NodeType::File);
    n.content = Some(content);
    n
}

fn dir_node(name: &str, subtree: Id) -> Node {
    let mut n = Node::new(name.as_bytes().to_vec(), NodeType::Dir);
    n.subtree = Some(subtree);
    n
}

fn save_snapshot(repo: &Repository, tree: Id) -> Id {
    let json = serde_json::json!({
        "time": "2024-01-02T03:04:05.123456789+01:00",
        "tree": tree,
        "paths": ["/src"],
    });
    repo.save_unpacked(FileType::Snapshot, json.to_string().as_bytes())
        .unwrap()
}

/// A v2 repository: one data pack (three blobs, one compressed), one tree pack (root with a
/// directory `src` holding files `a` and `b`), one index file and one snapshot.
fn fixture() -> Fixture {
    // A v2 repository in `dir/repo`, as the engine's test helper makes them.
    let (dir, repo) = crate::testing::new_repo();
    let repo = repo.into_repository();
    let root = dir.path().join("repo");
    let chunks: Vec<Vec<u8>> = vec![
        (0..5000u32).map(|i| (i * 7) as u8).collect(),
        vec![b'z'; 3000],
        b"small".to_vec(),
    ];
    let (data_pack, data_blobs) = save_pack(
        &repo,
        &[
            (BlobType::Data, chunks[0].clone(), false),
            (BlobType::Data, chunks[1].clone(), true),
            (BlobType::Data, chunks[2].clone(), false),
        ],
    );
    let ids: Vec<Id> = chunks.iter().map(|c| Id::hash(c)).collect();
    let sub = Tree {
        nodes: vec![
            file_node("a", vec![ids[0], ids[1]]),
            file_node("b", vec![ids[2]]),
        ],
    }
    .to_json();
    let sub_id = Id::hash(&sub);
    let top = Tree {
        nodes: vec![dir_node("src", sub_id)],
    }
    .to_json();
    let root_tree = Id::hash(&top);
    let (tree_pack, tree_blobs) = save_pack(
        &repo,
        &[(BlobType::Tree, sub, true), (BlobType::Tree, top, false)],
    );
    let idx = index_file(&[(data_pack, &data_blobs), (tree_pack, &tree_blobs)]);
    let index_id = repo.save_unpacked(FileType::Index, &idx.to_json()).unwrap();
    let snapshot = save_snapshot(&repo, root_tree);
    Fixture {
        _dir: dir,
        root,
        repo,
        data_pack,
        data_blobs,
        tree_pack,
        tree_blobs,
        index_id,
        root_tree,
        snapshot,
    }
}

fn pack_path(f: &Fixture, id: &Id) -> std::path::PathBuf {
    let hex = id.to_hex();
    f.root.join("data").join(&hex[..2]).join(hex)
}

/// Rewrites a stored file in place (files are read-only).
fn rewrite(path: &std::path::Path, edit: impl FnOnce(&mut Vec<u8>)) {
    use std::os::unix::fs::PermissionsExt;
    let mut b = std::fs::read(path).unwrap();
    edit(&mut b);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(path, b).unwrap();
}

/// Replaces the fixture's index file by `idx`.
fn replace_index(f: &Fixture, idx: &IndexFile) {
    f.repo
        .backend()
        .remove(&Handle::new(FileType::Index, f.index_id.to_hex()))
        .unwrap();
    f.repo
        .save_unpacked(FileType::Index, &idx.to_json())
        .unwrap();
}

/// Every finding of a full check (structure and, if asked, all data).
fn run(f: &Fixture, read: bool) -> (Vec<Problem>, Vec<Hint>) {
    let (mut c, found) = Checker::load_index(&f.repo, Options::default()).unwrap();
    let all = Mutex::new(found);
    let report = |x: Finding| all.lock().unwrap().push(x);
    if !all
        .lock()
        .unwrap()
        .iter()
        .any(|x| matches!(x, Finding::Error(_)))
    {
        all.lock().unwrap().extend(c.check_packs().unwrap());
        c.check_structure(&report).unwrap();
        if read {
            let sel = c.select_packs(None).unwrap();
            c.read_packs(&sel, &report, &|_, _, _| {}).unwrap();
        }
        all.lock()
            .unwrap()
            .extend(c.blob_hints().into_iter().map(Finding::Hint));
    }
    let mut errors = Vec::new();
    let mut hints = Vec::new();
    for x in all.into_inner().unwrap() {
        match x {
            Finding::Error(p) => errors.push(p),
            Finding::Hint(h) => hints.push(h),
        }
    }
    (errors, hints)
}

#[test]
fn a_sound_repository_has_no_errors_and_no_hints() {
    let f = fixture();
    let (errors, hints) = run(&f, true);
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(hints.is_empty(), "{hints:#?}");
    let (c, _) = Checker::load_index(&f.repo, Options::default()).unwrap();
    assert_eq!(c.pack_count(), 2);
    assert_eq!(c.blob_count(), 5);
    let stats = c.check_structure(&|_| {}).unwrap();
    assert_eq!(
        stats,
        StructureStats {
            snapshots: 1,
            trees: 2
        }
    );
}

#[test]
fn a_missing_pack_is_named() {
    let f = fixture();
    std::fs::remove_file(pack_path(&f, &f.data_pack)).unwrap();
    let (errors, _) = run(&f, true);
    assert_eq!(
        errors,
        vec![Problem::PackMissing { pack: f.data_pack }],
        "read-data skips the pack already reported"
    );
}

#[test]
fn a_truncated_pack_is_named_and_its_intact_blobs_still_read() {
    let f = fixture();
    let path = pack_path(&f, &f.data_pack);
    let full = std::fs::metadata(&path).unwrap().len();
    let cut = f.data_blobs[2].offset as u64 + 3;
    rewrite(&path, |b| b.truncate(cut as usize));
    let (errors, _) = run(&f, true);
    assert!(errors.contains(&Problem::PackSize {
        pack: f.data_pack,
        actual: cut,
        expected: full
    }));
    assert!(errors.contains(&Problem::PackTruncated {
        pack: f.data_pack,
        size: cut,
        blobs: 1,
        first: f.data_blobs[2].id
    }));
    // The first two blobs are intact and not reported; the lost header and the hash are
    // consequences of the size error, which names the pack already.
    assert_eq!(errors.len(), 2, "{errors:#?}");
}

#[test]
fn a_flipped_bit_in_a_blob_names_pack_and_blob() {
    let f = fixture();
    let b = f.data_blobs[1];
    rewrite(&pack_path(&f, &f.data_pack), |d| {
        d[b.offset as usize + 20] ^= 0x04
    });
    // Invisible without reading data.
    let (errors, _) = run(&f, false);
    assert!(errors.is_empty(), "{errors:?}");
    let (errors, _) = run(&f, true);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors.contains(&Problem::BlobDamaged {
        pack: f.data_pack,
        ty: BlobType::Data,
        blob: b.id,
        offset: b.offset,
        fault: BlobFault::Decrypt
    }));
    assert!(errors
        .iter()
        .any(|p| matches!(p, Problem::PackHash { pack, .. } if *pack == f.data_pack)));
}

#[test]
fn a_flipped_bit_in_a_header_still_reads_the_blobs() {
    let f = fixture();
    let path = pack_path(&f, &f.tree_pack);
    rewrite(&path, |d| {
        let n = d.len();
        d[n - 12] ^= 0x80
    });
    let (errors, _) = run(&f, true);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors.iter().any(|p| matches!(p,
        Problem::PackHeader { pack, reason } if *pack == f.tree_pack && reason.contains("ciphertext"))));
    assert!(errors
        .iter()
        .any(|p| matches!(p, Problem::PackHash { pack, .. } if *pack == f.tree_pack)));
}

#[test]
fn an_index_entry_at_the_wrong_offset_is_caught_with_and_without_reading() {
    let f = fixture();
    let mut wrong = f.data_blobs.clone();
    wrong[1].offset += 1;
    replace_index(
        &f,
        &index_file(&[(f.data_pack, &wrong), (f.tree_pack, &f.tree_blobs)]),
    );
    let (errors, _) = run(&f, false);
    assert_eq!(
        errors,
        vec![Problem::PackIndexLayout {
            pack: f.data_pack,
            ty: BlobType::Data,
            blob: wrong[1].id,
            offset: wrong[1].offset,
            expected: f.data_blobs[1].offset
        }]
    );
    let (errors, _) = run(&f, true);
    let b = f.data_blobs[1];
    assert!(errors.contains(&Problem::BlobNotIndexed {
        pack: f.data_pack,
        ty: BlobType::Data,
        blob: b.id,
        offset: b.offset,
        length: b.length
    }));
    assert!(errors.contains(&Problem::BlobNotInPack {
        pack: f.data_pack,
        ty: BlobType::Data,
        blob: b.id,
        offset: b.offset + 1,
        length: b.length
    }));
    // The blob itself is fine where the header puts it.
    assert!(!errors
        .iter()
        .any(|p| matches!(p, Problem::BlobDamaged { .. })));
}

#[test]
fn a_wrong_length_in_the_index_changes_the_expected_size() {
    let f = fixture();
    let mut wrong = f.data_blobs.clone();
    wrong[2].length += 5;
    replace_index(
        &f,
        &index_file(&[(f.data_pack, &wrong), (f.tree_pack, &f.tree_blobs)]),
    );
    let (errors, _) = run(&f, false);
    assert!(errors
        .iter()
        .any(|p| matches!(p, Problem::PackSize { pack, .. } if *pack == f.data_pack)));
}

#[test]
fn missing_trees_and_blobs_name_snapshot_tree_and_file() {
    let f = fixture();
    // Index without the sub tree and without blob 2 (file "b").
    let trees = [f.tree_blobs[1]];
    let data = [f.data_blobs[0], f.data_blobs[1]];
    replace_index(
        &f,
        &index_file(&[(f.data_pack, &data), (f.tree_pack, &trees)]),
    );
    let (errors, _) = run(&f, false);
    let sub = f.tree_blobs[0].id;
    assert!(errors.contains(&Problem::TreeMissing {
        tree: sub,
        at: Place {
            snapshot: f.snapshot,
            path: "/src".into()
        }
    }));
    // The pack sizes no longer fit their (shorter) index entries either.
    assert!(errors.iter().any(|p| matches!(p, Problem::PackSize { .. })));

    // Now the data blob only: the file that needs it is named.
    let data = [f.data_blobs[0], f.data_blobs[1]];
    let f2 = fixture();
    replace_index(
        &f2,
        &index_file(&[(f2.data_pack, &data[..0]), (f2.tree_pack, &f2.tree_blobs)]),
    );
    let (errors, _) = run(&f2, false);
    let missing: Vec<&Problem> = errors
        .iter()
        .filter(|p| matches!(p, Problem::BlobMissing { .. }))
        .collect();
    assert_eq!(missing.len(), 3, "{errors:#?}");
    assert!(errors.contains(&Problem::BlobMissing {
        tree: f2.tree_blobs[0].id,
        file: "b".into(),
        blob: f2.data_blobs[2].id,
        at: Place {
            snapshot: f2.snapshot,
            path: "/src/b".into()
        }
    }));
    // The data pack is now in no index: a hint, not an error.
    let (_, hints) = run(&f2, false);
    assert!(hints.contains(&Hint::UnreferencedPack {
        pack: f2.data_pack,
        size: std::fs::metadata(pack_path(&f2, &f2.data_pack))
            .unwrap()
            .len()
    }));
    let _ = data;
}

#[test]
fn a_snapshot_pointing_nowhere_is_named() {
    let f = fixture();
    let nowhere = Id::hash(b"no such tree");
    let snap = save_snapshot(&f.repo, nowhere);
    let (errors, _) = run(&f, false);
    assert_eq!(
        errors,
        vec![Problem::TreeMissing {
            tree: nowhere,
            at: Place {
                snapshot: snap,
                path: "/".into()
            }
        }]
    );
}

#[test]
fn a_damaged_snapshot_or_index_file_is_named() {
    let f = fixture();
    let hex = f.snapshot.to_hex();
    rewrite(&f.root.join("snapshots").join(&hex), |d| d[30] ^= 1);
    let (errors, _) = run(&f, false);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        matches!(&errors[0], Problem::SnapshotUnreadable { snapshot, .. } if *snapshot == f.snapshot)
    );

    let hex = f.index_id.to_hex();
    rewrite(&f.root.join("index").join(&hex), |d| d[30] ^= 1);
    let (errors, _) = run(&f, false);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(matches!(&errors[0], Problem::IndexFile { index, .. } if *index == f.index_id));
}

#[test]
fn invalid_nodes_are_reported() {
    let f = fixture();
    let mut nil = Node::new(b"nil".to_vec(), NodeType::File);
    nil.content = None;
    let mut odd = Node::new(b"odd".to_vec(), NodeType::Other("weird".into()));
    odd.content = None;
    let nosub = Node::new(b"sub".to_vec(), NodeType::Dir);
    let zero = file_node("zero", vec![Id::default()]);
    let t = Tree {
        nodes: vec![nil, odd, nosub, zero],
    }
    .to_json();
    let tid = Id::hash(&t);
    let (p, blobs) = save_pack(&f.repo, &[(BlobType::Tree, t, false)]);
    f.repo
        .save_unpacked(FileType::Index, &index_file(&[(p, &blobs)]).to_json())
        .unwrap();
    save_snapshot(&f.repo, tid);
    let (errors, _) = run(&f, true);
    let reasons: Vec<String> = errors
        .iter()
        .map(|e| match e {
            Problem::NodeInvalid { tree, reason, .. } if *tree == tid => reason.clone(),
            other => panic!("unexpected {other}"),
        })
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(reasons
        .iter()
        .any(|r| r.contains("\"nil\" has nil blob list")));
    assert!(reasons.iter().any(|r| r.contains("invalid type \"weird\"")));
    assert!(reasons.iter().any(|r| r.contains("\"sub\" has no subtree")));
    assert!(reasons.iter().any(|r| r.contains("blob 0 has null ID")));
}

#[test]
fn hints_for_duplicates_mixed_packs_and_unused_blobs() {
    let f = fixture();
    // The same index content a second time (as an obsolete index), plus a mixed pack holding
    // an unused blob and a second copy of a used one.
    f.repo
        .save_unpacked(
            FileType::Index,
            &index_file(&[(f.data_pack, &f.data_blobs)]).to_json(),
        )
        .unwrap();
    let (mixed, blobs) = save_pack(
        &f.repo,
        &[
            (BlobType::Tree, b"{\"nodes\":[]}\n".to_vec(), false),
            (BlobType::Data, b"small".to_vec(), false),
        ],
    );
    f.repo
        .save_unpacked(FileType::Index, &index_file(&[(mixed, &blobs)]).to_json())
        .unwrap();
    let (errors, hints) = run(&f, true);
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(hints.iter().any(|h| matches!(h,
        Hint::DuplicatePack { pack, indexes } if *pack == f.data_pack && indexes.len() == 2)));
    assert!(hints.contains(&Hint::MixedPack { pack: mixed }));
    assert!(hints.contains(&Hint::UnusedBlob {
        ty: BlobType::Tree,
        blob: blobs[0].id
    }));
    assert!(hints.iter().any(|h| matches!(h,
        Hint::DuplicateBlob { blob, packs, .. } if *blob == blobs[1].id && packs.len() == 2)));
    assert_eq!(
        hints
            .iter()
            .filter(|h| matches!(h, Hint::UnusedBlob { .. }))
            .count(),
        1
    );
}

#[test]
fn conflicting_index_files_are_an_error() {
    let f = fixture();
    let mut other = f.data_blobs.clone();
    other[2].length += 1;
    f.repo
        .save_unpacked(
            FileType::Index,
            &index_file(&[(f.data_pack, &other)]).to_json(),
        )
        .unwrap();
    let (errors, _) = run(&f, false);
    assert!(errors.iter().any(|p| matches!(p,
        Problem::PackIndexConflict { pack, indexes } if *pack == f.data_pack && indexes.len() == 2)));
}

#[test]
fn subsets_select_by_first_byte_or_at_random() {
    let f = fixture();
    let (c, _) = Checker::load_index(&f.repo, Options::default()).unwrap();
    let all = c.select_packs(None).unwrap();
    assert_eq!(all.len(), 2);
    for t in 1..=4u32 {
        let mut seen = Vec::new();
        for n in 1..=t {
            let sel = c.select_packs(Some(&Subset::Bucket { n, t })).unwrap();
            for id in c.selected_ids(&sel) {
                assert_eq!(id.0[0] as u32 % t, n - 1);
                seen.push(id);
            }
        }
        seen.sort();
        let mut want = vec![f.data_pack, f.tree_pack];
        want.sort();
        assert_eq!(seen, want, "groups of {t} cover every pack once");
    }
    assert_eq!(
        c.select_packs(Some(&Subset::Percent(50.0))).unwrap().len(),
        1
    );
    assert_eq!(
        c.select_packs(Some(&Subset::Percent(1.0))).unwrap().len(),
        1
    );
    assert_eq!(
        c.select_packs(Some(&Subset::Percent(100.0))).unwrap().len(),
        2
    );
    assert_eq!(c.select_packs(Some(&Subset::Size(1))).unwrap().len(), 1);
    assert_eq!(
        c.select_packs(Some(&Subset::Size(1 << 40))).unwrap().len(),
        2
    );
}

#[test]
fn a_v1_style_uncompressed_blob_with_a_wrong_id_is_a_hash_fault() {
    let f = fixture();
    // A pack whose header claims an id the content does not have.
    let key = &f.repo.key();
    let mut bytes = Vec::new();
    let mut b = seal_blob(key, BlobType::Data, b"content", false, &mut bytes);
    b.id = Id::hash(b"other content");
    pack::finish(&mut bytes, key, &[b]);
    let id = Id::hash(&bytes);
    f.repo
        .backend()
        .save(&Handle::new(FileType::Data, id.to_hex()), &bytes)
        .unwrap();
    f.repo
        .save_unpacked(FileType::Index, &index_file(&[(id, &[b])]).to_json())
        .unwrap();
    let (errors, _) = run(&f, true);
    assert_eq!(
        errors,
        vec![Problem::BlobDamaged {
            pack: id,
            ty: BlobType::Data,
            blob: b.id,
            offset: 0,
            fault: BlobFault::Hash(Id::hash(b"content"))
        }]
    );
    let _ = f.root_tree;
}
