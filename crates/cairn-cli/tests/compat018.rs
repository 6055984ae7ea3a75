//! restic 0.18 compatibility: the same command lines through restic 0.18 and cairn, on one
//! shared repository, with their normalized output compared.

mod common;

use common::{TempDir, Tool};
use serde_json::Value;
use std::collections::BTreeSet;

/// A small tree with a file, a directory, a symlink and an empty file.
fn source(t: &TempDir) -> std::path::PathBuf {
    let src = t.join("src");
    std::fs::create_dir_all(src.join("d/e")).unwrap();
    std::fs::write(src.join("d/a.txt"), b"hello\n").unwrap();
    std::fs::write(src.join("d/e/empty"), b"").unwrap();
    std::os::unix::fs::symlink("a.txt", src.join("d/link")).unwrap();
    src
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn backup_json_summary_has_every_field_restic_018_prints() {
    let t = TempDir::new("compat-summary");
    let repo = t.join("repo");
    let Some(restic) = Tool::restic018(&repo, "pw") else {
        return;
    };
    let cairn = Tool::cairn(&repo, "pw");
    let src = source(&t);
    restic.run(&["init"]).ok();
    let theirs = restic
        .run(&["backup", "--json", src.to_str().unwrap()])
        .ok()
        .summary();
    let ours = cairn
        .run(&["backup", "--json", "--force", src.to_str().unwrap()])
        .ok()
        .summary();
    let missing: Vec<_> = keys(&theirs).difference(&keys(&ours)).cloned().collect();
    assert!(
        missing.is_empty(),
        "cairn's summary lacks {missing:?}\nrestic: {theirs}\ncairn: {ours}"
    );
    // Both name the whole snapshot id, which both list.
    let listed: Vec<String> = cairn.snapshot_ids().into_iter().map(|(id, _)| id).collect();
    for s in [&theirs, &ours] {
        let id = s["snapshot_id"].as_str().expect("snapshot_id");
        assert_eq!(id.len(), 64, "not a whole id: {id}");
        assert!(listed.iter().any(|l| l == id), "{id} not in {listed:?}");
    }
    // Same counts for the same tree (the second run read it all again: --force).
    for k in ["total_files_processed", "total_bytes_processed", "dirs_new"] {
        assert_eq!(theirs[k], ours[k], "{k}");
    }
}

#[test]
fn ls_json_lines_equal_restic_018s() {
    let t = TempDir::new("compat-ls");
    let repo = t.join("repo");
    let Some(restic) = Tool::restic018(&repo, "pw") else {
        return;
    };
    let cairn = Tool::cairn(&repo, "pw");
    let src = source(&t);
    restic.run(&["init"]).ok();
    restic.run(&["backup", "-q", src.to_str().unwrap()]).ok();
    let theirs = restic.run(&["ls", "--json", "latest"]).ok().json_lines();
    let ours = cairn.run(&["ls", "--json", "latest"]).ok().json_lines();
    assert_eq!(theirs.len(), ours.len(), "line counts differ");
    // The snapshot line: the same fields with the same values.
    assert_eq!(theirs[0], ours[0], "snapshot line");
    // Node lines: identical, field order aside.
    for (a, b) in theirs.iter().zip(&ours).skip(1) {
        assert_eq!(a, b, "node line");
    }
}

#[test]
fn json_errors_end_in_restic_018s_exit_error() {
    let t = TempDir::new("compat-exit");
    let repo = t.join("no-repo-here");
    let Some(restic) = Tool::restic018(&repo, "pw") else {
        return;
    };
    let cairn = Tool::cairn(&repo, "pw");
    let last = |tool: &Tool| -> Value {
        let r = tool.run(&["--json", "snapshots"]).expect_code(10);
        let err = r.stderr_str();
        let line = err.lines().last().expect("stderr line").to_string();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    };
    let (a, b) = (last(&restic), last(&cairn));
    assert_eq!(keys(&a), keys(&b));
    assert_eq!(a["message_type"], "exit_error");
    assert_eq!(a["code"], b["code"]);
}

#[test]
fn verbose_levels_features_options_and_generate_are_accepted() {
    let t = TempDir::new("compat-misc");
    let repo = t.join("repo");
    let cairn = Tool::cairn(&repo, "pw");
    cairn.run(&["init"]).ok();
    let src = source(&t);
    // --verbose=2 is -vv: per-file lines.
    let out = cairn
        .run(&["backup", "--verbose=2", src.to_str().unwrap()])
        .ok()
        .stdout_str();
    assert!(out.contains("new       "), "no per-file lines: {out}");
    let f = cairn.run(&["features"]).ok().stdout_str();
    assert!(f.contains("safe-forget-keep-tags"), "{f}");
    let o = cairn.run(&["options"]).ok().stdout_str();
    assert!(o.contains("s3.region") && o.contains("sftp.command"), "{o}");
    let bash = cairn
        .run(&["generate", "--bash-completion", "-"])
        .ok()
        .stdout_str();
    assert!(
        bash.contains("_cairn()") && bash.contains("restore"),
        "bash completion"
    );
    let man = t.join("man");
    cairn
        .run(&["generate", "--man", man.to_str().unwrap()])
        .ok();
    let page = std::fs::read_to_string(man.join("cairn-backup.1")).expect("man page");
    assert!(
        page.starts_with(".ie") || page.contains(".TH"),
        "not a man page"
    );
    cairn.run(&["generate"]).expect_code(1);
}
