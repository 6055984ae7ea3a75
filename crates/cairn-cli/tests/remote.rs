//! Repositories on real servers, started on loopback by the tests: the REST protocol through
//! `rclone serve restic`, both ways with restic.

mod common;

use common::{compare_dirs, make_corpus, CompareOptions, RcloneRest, TempDir, Tool};
use std::path::Path;

fn restored(target: &Path, src: &Path) -> std::path::PathBuf {
    target.join(src.strip_prefix("/").unwrap())
}

#[test]
fn backups_over_rest_restore_identically_both_ways_with_restic() {
    require_restic!();
    let Some(server) = RcloneRest::start() else {
        return;
    };
    let t = TempDir::new("remote-rest");
    let src = t.join("src");
    make_corpus(&src, 8, 3);
    let src_s = src.to_str().unwrap();

    // cairn writes, restic checks and restores.
    let loc = server.location("by-cairn");
    let cairn = Tool::cairn(Path::new(&loc), "pw");
    let restic = Tool::restic(Path::new(&loc), "pw");
    cairn.run(&["init"]).ok();
    cairn.run(&["backup", "-q", src_s]).ok();
    restic.run(&["check", "--read-data"]).ok();
    let out = t.join("restic-restored");
    restic
        .run(&["restore", "latest", "--target", out.to_str().unwrap()])
        .ok();
    let d = compare_dirs(&src, &restored(&out, &src), CompareOptions::default());
    assert!(
        d.iter().all(|x| format!("{x:?}").contains("symlink")),
        "restic's restore of cairn's REST backup differs: {d:?}"
    );
    // A second cairn backup over REST uses its parent and stores no new data (only the trees
    // of the test's own folder, whose mtime the restore above changed).
    let r = cairn.run(&["backup", "--json", src_s]).ok();
    let s = r.summary();
    assert_eq!(s["files_new"], 0, "{s}");
    assert_eq!(s["files_changed"], 0, "{s}");
    assert_eq!(s["data_blobs"], 0, "{s}");

    // restic writes, cairn restores.
    let loc = server.location("by-restic");
    let cairn = Tool::cairn(Path::new(&loc), "pw");
    let restic = Tool::restic(Path::new(&loc), "pw");
    restic.run(&["init"]).ok();
    restic.run(&["backup", "-q", src_s]).ok();
    let out = t.join("cairn-restored");
    cairn
        .run(&["restore", "latest", "--target", out.to_str().unwrap()])
        .ok();
    let d = compare_dirs(&src, &restored(&out, &src), CompareOptions::default());
    assert!(
        d.iter().all(|x| format!("{x:?}").contains("symlink")),
        "cairn's restore of restic's REST backup differs: {d:?}"
    );
    // cairn adds to restic's REST repository; restic accepts the result.
    cairn.run(&["backup", "-q", src_s]).ok();
    cairn.run(&["check"]).ok();
    restic.run(&["check", "--read-data"]).ok();
}

#[test]
fn a_rest_server_that_is_not_there_is_one_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let loc = format!("rest:http://127.0.0.1:{port}/repo/");
    // Without retries: one line.
    let r = Tool::cairn(Path::new(&loc), "pw").run(&["snapshots", "-o", "retry.max-elapsed=0"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr_str());
    let err = r.stderr_str();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("Fatal:") && err.contains("config"), "{err}");
    // With a short retry budget: a notice per retry, then the same one-line error, which
    // says how long it tried.
    let t = std::time::Instant::now();
    let r = Tool::cairn(Path::new(&loc), "pw").run(&["snapshots", "-o", "retry.max-elapsed=3s"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr_str());
    assert!(t.elapsed() < std::time::Duration::from_secs(15));
    let err = r.stderr_str();
    let lines: Vec<&str> = err.trim().lines().collect();
    assert!(lines.len() >= 2, "{err}");
    let (last, notices) = lines.split_last().unwrap();
    assert!(
        last.starts_with("Fatal:") && last.contains("gave up after"),
        "{err}"
    );
    assert!(notices.iter().all(|l| l.contains("retrying in")), "{err}");
}
