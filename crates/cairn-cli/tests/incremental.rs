//! Incremental backups: the parent snapshot's unchanged files are not read again, unchanged
//! directories give the same tree blobs, and the counts match restic's summary fields.

mod common;

use common::{cairn, ok, restored, snapshots};
use std::path::Path;

/// Runs `backup --json` and returns the summary message.
fn backup(repo: &Path, args: &[&str], src: &Path) -> serde_json::Value {
    let out = ok(cairn(repo).arg("backup").arg("--json").args(args).arg(src));
    let line = out
        .lines()
        .rev()
        .find(|l| l.contains("\"summary\""))
        .expect("summary line");
    serde_json::from_str(line).unwrap()
}

fn make_tree(root: &Path) {
    for d in 0..3 {
        let dir = root.join(format!("d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..5 {
            std::fs::write(
                dir.join(format!("f{f}")),
                format!("content {d} {f}\n").repeat(100 * (f + 1)),
            )
            .unwrap();
        }
    }
    std::fs::write(root.join("top"), b"top level").unwrap();
}

fn restored_file(target: &Path, src: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(restored(target, src).join(rel)).unwrap()
}

#[test]
fn unchanged_tree_reads_nothing_and_stores_nothing() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let src = t.path().join("src");
    make_tree(&src);
    ok(cairn(&repo).arg("init"));
    let first = backup(&repo, &[], &src);
    assert_eq!(first["files_new"], 16);
    let second = backup(&repo, &[], &src);
    assert_eq!(second["files_new"], 0, "{second}");
    assert_eq!(second["files_changed"], 0, "{second}");
    assert_eq!(second["files_unmodified"], 16, "{second}");
    assert_eq!(second["dirs_changed"], 0, "{second}");
    assert_eq!(second["data_blobs"], 0);
    assert_eq!(
        second["tree_blobs"], 0,
        "an unchanged tree gives the same tree blobs"
    );
    assert_eq!(second["total_files_processed"], 16);
    let snaps = snapshots(&repo);
    assert_eq!(snaps.len(), 2);
    assert_eq!(snaps[1]["parent"], snaps[0]["id"]);
    assert_eq!(snaps[1]["tree"], snaps[0]["tree"]);
}

#[test]
fn changed_new_and_touched_files_are_read() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let src = t.path().join("src");
    make_tree(&src);
    ok(cairn(&repo).arg("init"));
    backup(&repo, &[], &src);
    std::fs::write(src.join("d0/f0"), b"changed content").unwrap();
    std::fs::write(src.join("d1/new"), b"a new file").unwrap();
    // Same content, new mtime: counts as changed, is read, adds nothing.
    let f = std::fs::File::options()
        .write(true)
        .open(src.join("d2/f1"))
        .unwrap();
    f.set_modified(
        std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000),
    )
    .unwrap();
    drop(f);
    let s = backup(&repo, &[], &src);
    assert_eq!(s["files_new"], 1, "{s}");
    assert_eq!(s["files_changed"], 2, "{s}");
    assert_eq!(s["files_unmodified"], 14, "{s}");
    assert!(s["dirs_changed"].as_u64().unwrap() >= 3, "{s}");
    assert_eq!(
        s["data_blobs"], 2,
        "only the changed and the new content: {s}"
    );
    let target = t.path().join("out");
    ok(cairn(&repo)
        .arg("restore")
        .arg("latest")
        .arg("--target")
        .arg(&target)
        .arg("--verify"));
    assert_eq!(restored_file(&target, &src, "d0/f0"), b"changed content");
    assert_eq!(restored_file(&target, &src, "d1/new"), b"a new file");
    assert_eq!(
        restored_file(&target, &src, "d1/f3"),
        std::fs::read(src.join("d1/f3")).unwrap()
    );
}

/// Proof that an unchanged file is not read: its content is replaced behind cairn's back with
/// the same size, mtime and inode; with --ignore-ctime the snapshot keeps the old content,
/// and --force reads the new one.
#[test]
fn unchanged_files_are_not_read_and_force_rereads() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let src = t.path().join("src");
    make_tree(&src);
    ok(cairn(&repo).arg("init"));
    backup(&repo, &[], &src);
    let p = src.join("top");
    let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
    std::fs::write(&p, b"TOP LEVEL").unwrap(); // same length, same inode
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let s = backup(&repo, &["--ignore-ctime"], &src);
    assert_eq!(s["files_unmodified"], 16, "{s}");
    let target = t.path().join("o1");
    ok(cairn(&repo)
        .arg("restore")
        .arg("latest")
        .arg("--target")
        .arg(&target));
    assert_eq!(
        restored_file(&target, &src, "top"),
        b"top level",
        "the file was not read"
    );
    // Without --ignore-ctime the changed ctime makes cairn read it. (The snapshot just made
    // recorded the new ctime, so compare against the first one.)
    let first = snapshots(&repo)[0]["id"].as_str().unwrap().to_string();
    let s = backup(&repo, &["--parent", &first], &src);
    assert_eq!(s["files_changed"], 1, "{s}");
    let target = t.path().join("o2");
    ok(cairn(&repo)
        .arg("restore")
        .arg("latest")
        .arg("--target")
        .arg(&target));
    assert_eq!(restored_file(&target, &src, "top"), b"TOP LEVEL");
    // --force reads everything and uses no parent.
    let s = backup(&repo, &["--force"], &src);
    assert_eq!(s["files_new"], 16, "{s}");
    let snaps = snapshots(&repo);
    assert!(
        snaps.last().unwrap().get("parent").is_none(),
        "--force records no parent"
    );
}

#[test]
fn parent_is_chosen_by_host_and_paths_or_given() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let src = t.path().join("src");
    let other = t.path().join("other");
    make_tree(&src);
    make_tree(&other);
    ok(cairn(&repo).arg("init"));
    backup(&repo, &[], &src);
    // Different paths, different host: no parent.
    let s = backup(&repo, &[], &other);
    assert_eq!(s["files_new"], 16, "{s}");
    let s = backup(&repo, &["--host", "elsewhere"], &src);
    assert_eq!(s["files_new"], 16, "{s}");
    // --parent picks one explicitly, even across hosts.
    let first = snapshots(&repo)[0]["id"].as_str().unwrap().to_string();
    let s = backup(
        &repo,
        &["--host", "elsewhere2", "--parent", &first[..8]],
        &src,
    );
    assert_eq!(s["files_unmodified"], 16, "{s}");
    assert_eq!(snapshots(&repo).last().unwrap()["parent"], first.as_str());
}
