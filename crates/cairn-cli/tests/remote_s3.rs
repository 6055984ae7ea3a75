//! Repositories on a real S3 store, Garage, started on loopback by the tests: backups both
//! ways with restic 0.14 over `s3:`, and how cairn reports a store it may not use.

mod common;

use common::{compare_dirs, make_corpus, CompareOptions, Garage, Run, TempDir, Tool};
use std::path::Path;

fn restored(target: &Path, src: &Path) -> std::path::PathBuf {
    target.join(src.strip_prefix("/").unwrap())
}

/// Runs a tool with the store's credentials in its environment.
fn run(g: &Garage, tool: &Tool, args: &[&str]) -> Run {
    let env = g.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    tool.run_env(None, &env, args)
}

fn only_symlinks_differ(d: &[impl std::fmt::Debug]) -> bool {
    d.iter().all(|x| format!("{x:?}").contains("symlink"))
}

#[test]
fn restic_backup_on_s3_restores_identically_with_cairn() {
    require_restic!();
    let Some(g) = Garage::start() else {
        return;
    };
    let t = TempDir::new("s3-by-restic");
    let src = t.join("src");
    make_corpus(&src, 8, 5);
    let src_s = src.to_str().unwrap();
    let loc = g.location("by-restic");
    let cairn = Tool::cairn(Path::new(&loc), "pw");
    let restic = Tool::restic(Path::new(&loc), "pw");
    run(&g, &restic, &["init"]).ok();
    run(&g, &restic, &["backup", "-q", src_s]).ok();

    // cairn lists what restic wrote, snapshot and files.
    let snaps = run(&g, &cairn, &["snapshots", "--json"]).ok().json();
    assert_eq!(snaps.as_array().map(Vec::len), Some(1), "{snaps}");
    let ls = run(&g, &cairn, &["ls", "latest"]).ok().stdout_str();
    assert!(ls.lines().count() > 5, "{ls}");
    let out = t.join("cairn-restored");
    run(
        &g,
        &cairn,
        &["restore", "latest", "--target", out.to_str().unwrap()],
    )
    .ok();
    let d = compare_dirs(&src, &restored(&out, &src), CompareOptions::default());
    assert!(
        only_symlinks_differ(&d),
        "cairn's restore of restic's S3 backup differs: {d:?}"
    );
    run(&g, &cairn, &["check", "--read-data"]).ok();

    // cairn adds to restic's repository on S3; restic accepts the result.
    run(&g, &cairn, &["backup", "-q", src_s]).ok();
    run(&g, &restic, &["check", "--read-data"]).ok();
    let snaps = run(&g, &restic, &["snapshots", "--json"]).ok().json();
    assert_eq!(snaps.as_array().map(Vec::len), Some(2), "{snaps}");
}

#[test]
fn cairn_backup_on_s3_restores_identically_with_restic() {
    require_restic!();
    let Some(g) = Garage::start() else {
        return;
    };
    let t = TempDir::new("s3-by-cairn");
    let src = t.join("src");
    make_corpus(&src, 8, 6);
    let src_s = src.to_str().unwrap();
    let loc = g.location("by-cairn");
    let cairn = Tool::cairn(Path::new(&loc), "pw");
    let restic = Tool::restic(Path::new(&loc), "pw");
    run(&g, &cairn, &["init"]).ok();
    run(&g, &cairn, &["backup", "-q", src_s]).ok();
    run(&g, &restic, &["check", "--read-data"]).ok();
    let out = t.join("restic-restored");
    run(
        &g,
        &restic,
        &["restore", "latest", "--target", out.to_str().unwrap()],
    )
    .ok();
    let d = compare_dirs(&src, &restored(&out, &src), CompareOptions::default());
    assert!(
        only_symlinks_differ(&d),
        "restic's restore of cairn's S3 backup differs: {d:?}"
    );
    // A second backup uses its parent and stores no new data.
    let r = run(&g, &cairn, &["backup", "--json", src_s]).ok();
    let s = r.summary();
    assert_eq!(s["files_new"], 0, "{s}");
    assert_eq!(s["files_changed"], 0, "{s}");
    assert_eq!(s["data_blobs"], 0, "{s}");
    run(&g, &restic, &["check"]).ok();
}

#[test]
fn refused_credentials_are_one_clear_error() {
    let Some(g) = Garage::start() else {
        return;
    };
    let loc = g.location("repo");
    let cairn = Tool::cairn(Path::new(&loc), "pw");
    // A wrong secret: permission denied is not retried, and is one line naming the variables.
    let env = [
        ("AWS_ACCESS_KEY_ID", g.access_key_id()),
        ("AWS_SECRET_ACCESS_KEY", "wrong"),
        ("AWS_DEFAULT_REGION", "garage"),
    ];
    let t = std::time::Instant::now();
    let r = cairn.run_env(None, &env, &["snapshots"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr_str());
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    let err = r.stderr_str();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("Fatal:") && err.contains("403") && err.contains("AWS_SECRET_ACCESS_KEY"),
        "{err}"
    );
    // No credentials at all (empty counts as unset, whatever the caller's environment has).
    let r = cairn.run_env(
        None,
        &[("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", "")],
        &["snapshots"],
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr_str());
    let err = r.stderr_str();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
}
