//! `repair index` / `rebuild-index`, `repair snapshots` and `repair packs`, judged by restic's
//! own `check`: restic's damaged fixtures come out clean, and nothing that was intact is lost.

mod common;

use common::{extract_fixture, files_in, flip, restored, TempDir, Tool};
use std::path::{Path, PathBuf};

const PW: &str = "geheim";

/// A fresh copy of a fixture repository, and cairn and restic pointed at it.
fn fixture(tarball: &str) -> (TempDir, Tool, Tool) {
    let t = TempDir::new("cairn-repair");
    extract_fixture(tarball, t.path());
    let repo = t.join("repo");
    let c = Tool::cairn(&repo, PW);
    let r = Tool::restic(&repo, PW);
    (t, c, r)
}

fn index_files(repo: &Path) -> Vec<PathBuf> {
    files_in(&repo.join("index"))
}

/// Flips one bit of a (read-only) repository file.
#[test]
fn repair_index_fixes_restics_index_missing_fixtures() {
    require_restic!();
    for (fx, snaps) in [
        ("cmd_restic--repo-index-missing.tar.gz", 2),
        ("cmd_restic--repo-index-missing-blob.tar.gz", 1),
    ] {
        let (t, c, r) = fixture(fx);
        r.run(&["check"]).expect_code(1);
        let out = c.run(&["repair", "index"]).ok();
        let text = out.stdout_str();
        for line in [
            "loading indexes...",
            "getting pack files to read...",
            "reading pack files",
            "rebuilding index",
            "deleting obsolete index files",
            "done",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{fx}: no {line:?} in\n{text}"
            );
        }
        assert!(
            out.stderr_str().contains("adding pack file to index"),
            "{fx}: {}",
            out.stderr_str()
        );
        r.run(&["check", "--read-data"]).ok();
        assert_eq!(r.snapshot_ids().len(), snaps, "{fx}");
        assert_eq!(index_files(&t.join("repo")).len(), 1, "{fx}");
        // Every snapshot restores through restic: the file `test` holds its 5 bytes.
        for (id, _) in r.snapshot_ids() {
            let dst = t.join(format!("restore-{id}"));
            r.run(&["restore", &id, "--target", dst.to_str().unwrap()])
                .ok();
            let test = files_in(&dst)
                .into_iter()
                .find(|p| p.file_name().unwrap() == "test")
                .unwrap_or_else(|| panic!("{fx}: no file test restored from {id}"));
            assert_eq!(std::fs::metadata(&test).unwrap().len(), 5);
        }
    }
}

#[test]
fn rebuild_index_merges_index_files_and_drops_damaged_ones() {
    require_restic!();
    // Two identical index files: merged into one, the hint gone.
    let (t, c, r) = fixture("cmd_restic--repo-obsolete-index.tar.gz");
    assert_eq!(index_files(&t.join("repo")).len(), 2);
    c.run(&["rebuild-index"]).ok();
    assert_eq!(index_files(&t.join("repo")).len(), 1);
    let chk = r.run(&["check", "--read-data"]).ok();
    assert!(
        !chk.stdout_str().contains("several indexes"),
        "{}",
        chk.stdout_str()
    );

    // One index file damaged: it is removed, the other one covers the packs.
    let (t, c, r) = fixture("cmd_restic--repo-obsolete-index.tar.gz");
    let idx = index_files(&t.join("repo"));
    flip(&idx[0], 40, 0x10);
    r.run(&["check"]).expect_code(1);
    let out = c.run(&["repair", "index"]).ok();
    assert!(
        out.stderr_str().contains("removing invalid index"),
        "{}",
        out.stderr_str()
    );
    r.run(&["check", "--read-data"]).ok();
    assert_eq!(index_files(&t.join("repo")).len(), 1);
}

/// restic's TestRebuildIndex: 6 overlapping index files become one, and a quiet check then
/// prints nothing; with --read-all-packs every pack is read.
#[test]
fn rebuild_index_of_duplicate_packs_fixture() {
    require_restic!();
    for flags in [&[][..], &["--read-all-packs"][..]] {
        let (t, c, r) = fixture("internal_checker--duplicate-packs-in-index-test-repo.tar.gz");
        let mut args = vec!["repair", "index"];
        args.extend_from_slice(flags);
        c.run(&args).ok();
        assert_eq!(index_files(&t.join("repo")).len(), 1);
        let chk = r.run(&["-q", "check", "--read-data"]).ok();
        assert_eq!(chk.stdout_str().trim(), "", "{flags:?}");
        let packs = r.run(&["list", "packs"]).ok().stdout_str();
        assert_eq!(packs.lines().count(), 20);
    }
}

#[test]
fn repair_snapshots_drops_missing_data_and_forget_removes_the_original() {
    require_restic!();
    let (_t, c, r) = fixture("cmd_restic--repo-data-missing.tar.gz");
    let before = r.snapshot_ids();
    assert_eq!(before.len(), 1);
    c.run(&["repair", "index"]).ok();
    // Dry run: says what it would do, changes nothing.
    let dry = c.run(&["repair", "snapshots", "--dry-run"]).ok();
    let text = dry.stdout_str();
    assert!(
        text.contains("file \"/home/thinkpad/data/test\": removed missing content"),
        "{text}"
    );
    assert!(text.contains("would modify 1 snapshots"), "{text}");
    assert_eq!(r.snapshot_ids(), before);

    let out = c.run(&["repair", "snapshots", "--forget"]).ok();
    let text = out.stdout_str();
    assert!(text.contains("saved new snapshot"), "{text}");
    assert!(text.contains("removed old snapshot"), "{text}");
    assert!(text.contains("modified 1 snapshots"), "{text}");
    r.run(&["check", "--read-data"]).ok();
    let snaps = r.snapshots_json();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0]["original"], before[0].0.as_str());
    // --forget: no "repaired" tag.
    assert!(snaps[0].get("tags").is_none(), "{}", snaps[0]);
    let id = snaps[0]["id"].as_str().unwrap();
    let nodes = r.ls_nodes(id);
    let test = &nodes["/home/thinkpad/data/test"];
    assert_eq!(test["size"], 0, "{test}");

    // Nothing left to repair.
    let again = c.run(&["repair", "snapshots"]).ok();
    assert!(
        again.stdout_str().contains("no snapshots were modified"),
        "{}",
        again.stdout_str()
    );
}

#[test]
fn repair_snapshots_keeps_the_original_without_forget() {
    require_restic!();
    let (_t, c, r) = fixture("cmd_restic--repo-data-missing.tar.gz");
    c.run(&["repair", "index"]).ok();
    c.run(&["repair", "snapshots"]).ok();
    let snaps = r.snapshots_json();
    assert_eq!(snaps.len(), 2);
    let repaired: Vec<_> = snaps
        .iter()
        .filter(|s| {
            s["tags"]
                .as_array()
                .is_some_and(|t| t.contains(&"repaired".into()))
        })
        .collect();
    assert_eq!(repaired.len(), 1);
    // The original still names the missing data; the repaired one does not.
    c.run(&["check"]).expect_code(1);
}

/// A data pack with one damaged blob: `repair packs` keeps a copy, stores the readable blobs
/// again and removes the pack; `repair snapshots --forget` then drops the lost file content,
/// and restic's check passes; every other file restores intact.
#[test]
fn repair_packs_salvages_the_readable_blobs() {
    require_restic!();
    let t = TempDir::new("cairn-repair-packs");
    let src = t.join("src");
    std::fs::create_dir_all(&src).unwrap();
    extract_fixture("cmd_restic--backup-data.tar.gz", &src);
    let repo = t.join("repo");
    let c = Tool::cairn(&repo, PW);
    let r = Tool::restic(&repo, PW);
    c.run(&["init", "--repository-version", "1"]).ok();
    c.run(&["backup", "-q", src.to_str().unwrap()]).ok();
    // The largest pack holds the file data; damage a byte in its middle.
    let mut packs = files_in(&repo.join("data"));
    packs.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    let damaged = packs.last().unwrap().clone();
    let id = damaged.file_name().unwrap().to_str().unwrap().to_string();
    let len = std::fs::metadata(&damaged).unwrap().len();
    flip(&damaged, len / 2, 0x10);
    r.run(&["check", "--read-data"]).expect_code(1);

    let work = t.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let out = c.run_in(Some(&work), &["repair", "packs", &id]).ok();
    let text = out.stdout_str();
    assert!(
        text.contains("saving backup copies of pack files"),
        "{text}"
    );
    assert!(text.contains("removing salvaged pack files"), "{text}");
    assert!(
        out.stderr_str().contains("failed to load blob"),
        "{}",
        out.stderr_str()
    );
    assert!(
        out.stderr_str().contains("cairn repair snapshots --forget"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(
        std::fs::read(work.join(format!("pack-{id}")))
            .unwrap()
            .len() as u64,
        len,
        "the backup copy holds the whole pack"
    );
    assert!(!damaged.exists());

    let fix = c.run(&["repair", "snapshots", "--forget"]).ok();
    let removed: Vec<&str> = fix
        .stdout_str()
        .leak()
        .lines()
        .filter(|l| l.contains("removed missing content"))
        .collect();
    assert_eq!(removed.len(), 1, "{removed:?}");
    r.run(&["check", "--read-data"]).ok();

    // Everything but the one file comes back as it was.
    let out = t.join("out");
    r.run(&["restore", "latest", "--target", out.to_str().unwrap()])
        .ok();
    let restored = restored(&out, &src);
    let diffs = common::compare_dirs(&src, &restored, common::CompareOptions::default());
    let bad: Vec<_> = diffs.iter().filter(|d| d.what != "mtime").collect();
    assert!(
        bad.len() == 1 && bad[0].what == "size",
        "exactly one file loses its content: {diffs:?}"
    );
}

#[test]
fn repair_packs_needs_ids() {
    let t = TempDir::new("cairn-repair-noid");
    let c = Tool::cairn(&t.join("repo"), PW);
    c.run(&["init"]).ok();
    let out = c.run(&["repair", "packs"]).expect_code(1);
    assert!(out.stderr_str().contains("no ids specified"));
    let out = c.run(&["repair", "packs", "abc"]).expect_code(1);
    assert!(out.stderr_str().contains("invalid pack id"));
}
