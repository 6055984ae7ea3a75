//! `rewrite --exclude` with restic ≥ 0.15's semantics: new snapshots without the excluded
//! paths, tagged `rewrite` and naming the old one in `original`; `--forget` removes the old
//! ones instead; nothing changes what does not match. restic's check and restore judge.

mod common;

use common::{compare_dirs, extract_fixture, restored, CompareOptions, Diff, TempDir, Tool};
use std::path::Path;

const PW: &str = "geheim";

fn setup(name: &str) -> (TempDir, std::path::PathBuf, Tool, Tool) {
    let t = TempDir::new(name);
    let data = t.join("data");
    std::fs::create_dir_all(&data).unwrap();
    extract_fixture("cmd_restic--backup-data.tar.gz", &data);
    let repo = t.join("repo");
    let c = Tool::cairn(&repo, PW);
    let r = Tool::restic(&repo, PW);
    c.run(&["init"]).ok();
    c.run(&["backup", "-q", data.to_str().unwrap()]).ok();
    (t, data, c, r)
}

fn restore(r: &Tool, snap: &str, data: &Path, out: &Path) -> std::path::PathBuf {
    r.run(&["restore", snap, "--target", out.to_str().unwrap()])
        .ok();
    restored(out, data)
}

#[test]
fn rewrite_excludes_paths_into_a_new_snapshot() {
    require_restic!();
    let (t, data, c, r) = setup("cairn-rewrite");
    let old = r.snapshots_json();
    let old_id = old[0]["id"].as_str().unwrap().to_string();

    // A dry run changes nothing.
    let dry = c.run(&["rewrite", "--exclude", "*.py", "--dry-run"]).ok();
    assert!(
        dry.stdout_str().contains("would save new snapshot"),
        "{}",
        dry.stdout_str()
    );
    assert_eq!(r.snapshot_ids().len(), 1);

    let abs_dir = format!("{}/0/0/9", data.display());
    let out = c
        .run(&["rewrite", "--exclude", "*.py", "--exclude", &abs_dir])
        .ok();
    let text = out.stdout_str();
    assert!(text.contains("saved new snapshot"), "{text}");
    assert!(text.contains("modified 1 snapshots"), "{text}");
    assert!(
        text.contains(&format!(
            "excluding {}/0/for_cmd_ls/python.py",
            data.display()
        )),
        "{text}"
    );
    r.run(&["check", "--read-data"]).ok();
    let snaps = r.snapshots_json();
    assert_eq!(snaps.len(), 2);
    let new = snaps.iter().find(|s| s["id"] != old_id.as_str()).unwrap();
    assert_eq!(new["original"], old_id.as_str());
    assert_eq!(new["tags"], serde_json::json!(["rewrite"]));
    assert_eq!(new["time"], old[0]["time"]);
    assert_eq!(new["paths"], old[0]["paths"]);
    let sum = &new["summary"];
    if !sum.is_null() {
        // 75 files less the 69 under 0/0/9 and python.py.
        assert_eq!(sum["total_files_processed"], 5, "{sum}");
    }

    // The new snapshot restores as the source without the excluded parts; the old one whole.
    let got = restore(&r, new["id"].as_str().unwrap(), &data, &t.join("new"));
    let diffs = compare_dirs(&data, &got, CompareOptions::default());
    let missing: Vec<&Diff> = diffs.iter().filter(|d| d.what == "presence").collect();
    assert_eq!(missing.len(), 71, "{diffs:?}");
    assert!(diffs.iter().all(|d| d.what == "presence"
        || (d.what == "mtime" && (d.path == b"0/0" || d.path == b"0/for_cmd_ls"))));
    let got = restore(&r, &old_id, &data, &t.join("old"));
    assert!(compare_dirs(&data, &got, CompareOptions::default()).is_empty());

    // The rewritten snapshot matches nothing any more.
    let again = c
        .run(&["rewrite", "--exclude", "*.py", new["id"].as_str().unwrap()])
        .ok();
    assert!(
        again.stdout_str().contains("no snapshots were modified"),
        "{}",
        again.stdout_str()
    );
}

#[test]
fn rewrite_forget_replaces_the_snapshot() {
    require_restic!();
    let (_t, _data, c, r) = setup("cairn-rewrite-forget");
    let old = r.snapshot_ids();
    let out = c
        .run(&["rewrite", "--forget", "--iexclude", "*/TESTS"])
        .ok();
    assert!(
        out.stdout_str().contains("removed old snapshot"),
        "{}",
        out.stdout_str()
    );
    let snaps = r.snapshots_json();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0]["original"], old[0].0.as_str());
    assert!(snaps[0].get("tags").is_none(), "no tag with --forget");
    r.run(&["check", "--read-data"]).ok();
    let nodes = r.ls_nodes(snaps[0]["id"].as_str().unwrap());
    assert!(nodes.keys().all(|p| !p.contains("/0/tests")));
    assert!(nodes.keys().any(|p| p.ends_with("/0/for_cmd_ls/file1.txt")));
}

#[test]
fn rewrite_of_nothing_matching_changes_nothing() {
    require_restic!();
    let (_t, _data, c, r) = setup("cairn-rewrite-noop");
    let before = r.snapshot_ids();
    let out = c.run(&["rewrite", "--exclude", "no-such-file"]).ok();
    assert!(
        out.stdout_str().contains("no snapshots were modified"),
        "{}",
        out.stdout_str()
    );
    assert_eq!(r.snapshot_ids(), before);
    let out = c.run(&["rewrite"]).expect_code(1);
    assert!(
        out.stderr_str().contains("Nothing to do"),
        "{}",
        out.stderr_str()
    );
}

#[test]
fn rewrite_new_host_changes_metadata_only() {
    require_restic!();
    let (_t, _data, c, r) = setup("cairn-rewrite-host");
    let old = r.snapshots_json();
    c.run(&["rewrite", "--forget", "--new-host", "elsewhere"])
        .ok();
    let snaps = r.snapshots_json();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0]["hostname"], "elsewhere");
    assert_eq!(snaps[0]["tree"], old[0]["tree"]);
    r.run(&["check"]).ok();
}

/// A tree whose JSON does not survive a decode/encode cycle cannot be rewritten without
/// losing information: restic refuses, and so does cairn, changing nothing. A tree that
/// does not change is kept as it is.
#[test]
fn rewrite_refuses_unstable_trees_and_keeps_unchanged_ones() {
    require_restic!();
    let t = TempDir::new("cairn-rewrite-json");
    extract_fixture("cmd_restic--copy-unstable-json.tar.gz", t.path());
    let repo = t.join("repo");
    let c = Tool::cairn(&repo, PW);
    let r = Tool::restic(&repo, PW);
    let before = r.snapshot_ids();
    let out = c.run(&["rewrite", "--exclude", "nothing-matches"]).ok();
    assert!(out.stdout_str().contains("no snapshots were modified"));
    let out = c.run(&["rewrite", "--exclude", "/test/*"]).expect_code(1);
    assert!(
        out.stderr_str().contains("without losing information"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(r.snapshot_ids(), before);
    r.run(&["check", "--read-data"]).ok();
}
