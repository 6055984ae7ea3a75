//! Network faults between cairn and a real server: a proxy on loopback answers 500/503,
//! resets connections before, during and after transfers, and stalls; the server itself is
//! stopped and restarted in the middle of a backup, or stays down. cairn must retry and
//! finish, or stop with one clear error; either way `restic check --read-data` passes on
//! the result, every snapshot restores, and nothing half-written is taken for data.

mod common;

use cairn_testsupport::proxy::{Fault, FaultProxy};
use common::{
    compare_dirs, make_corpus, only_symlinks_differ, restored, CompareOptions, RcloneRest, TempDir,
    Tool, Watched, PATIENCE,
};
use std::path::Path;
use std::time::{Duration, Instant};

fn assert_same(src: &Path, target: &Path, what: &str) {
    let d = compare_dirs(src, &restored(target, src), CompareOptions::default());
    assert!(only_symlinks_differ(&d), "{what}: restore differs: {d:?}");
}

/// Every fault the proxy knows; stalls outlast the client's idle timeout (`rest.timeout=2s`).
fn all_faults() -> Vec<Fault> {
    vec![
        Fault::Status(500),
        Fault::Status(503),
        Fault::ResetBeforeForward,
        Fault::ResetMidResponse,
        Fault::ResetMidUpload,
        Fault::Stall(Duration::from_secs(3)),
    ]
}

#[test]
fn backup_restore_check_and_prune_survive_a_faulty_network() {
    require_restic!();
    let Some(server) = RcloneRest::start() else {
        return;
    };
    let proxy = FaultProxy::start(server.port);
    let t = TempDir::new("faults-rest");
    let (src1, src2) = (t.join("src1"), t.join("src2"));
    make_corpus(&src1, 6, 11);
    make_corpus(&src2, 6, 12);
    let loc = format!("rest:http://127.0.0.1:{}/repo/", proxy.port);
    let cairn = Tool::cairn(Path::new(&loc), "pw");
    fn args<'a>(a: &[&'a str]) -> Vec<&'a str> {
        let mut v = a.to_vec();
        v.extend(["-o", "rest.timeout=2s"]);
        v
    }
    cairn.run(&args(&["init"])).ok();
    cairn
        .run(&args(&[
            "backup",
            "-q",
            "--tag",
            "first",
            src1.to_str().unwrap(),
        ]))
        .ok();

    proxy.inject(&all_faults(), 0.15);
    proxy.fail_next(1); // so that "retrying" does not depend on the dice
    let r = cairn.run(&args(&[
        "backup",
        "-q",
        "--tag",
        "second",
        src2.to_str().unwrap(),
    ]));
    let (after_backup, _) = proxy.counts();
    assert_eq!(r.code, Some(0), "backup under faults: {}", r.stderr_str());
    assert!(after_backup > 0, "no fault was injected during the backup");
    assert!(r.stderr_str().contains("retrying"), "{}", r.stderr_str());

    let out = t.join("restored");
    let r = cairn.run(&args(&[
        "restore",
        "latest",
        "--tag",
        "second",
        "--target",
        out.to_str().unwrap(),
    ]));
    assert_eq!(r.code, Some(0), "restore under faults: {}", r.stderr_str());
    assert_same(&src2, &out, "restore under faults");

    let r = cairn.run(&args(&["check", "--read-data"]));
    assert_eq!(r.code, Some(0), "check under faults: {}", r.stderr_str());

    proxy.heal();
    let first = cairn
        .run(&args(&["snapshots", "--json", "--tag", "first"]))
        .ok()
        .json();
    let id = first[0]["id"].as_str().unwrap().to_string();
    proxy.inject(&all_faults(), 0.15);
    let r = cairn.run(&args(&["forget", "--prune", id.as_str()]));
    assert_eq!(
        r.code,
        Some(0),
        "forget --prune under faults: {}",
        r.stderr_str()
    );
    let (total, forwarded) = proxy.counts();
    eprintln!("faults injected: {total}, requests forwarded: {forwarded}");

    // The repository, read directly on the server, is valid and holds exactly the second
    // snapshot, which restores.
    proxy.heal();
    let direct = server.location("repo");
    let restic = Tool::restic(Path::new(&direct), "pw");
    restic.run(&["check", "--read-data"]).ok();
    let snaps = restic.run(&["snapshots", "--json"]).ok().json();
    assert_eq!(snaps.as_array().unwrap().len(), 1, "{snaps}");
    let out2 = t.join("restic-restored");
    restic
        .run(&["restore", "latest", "--target", out2.to_str().unwrap()])
        .ok();
    assert_same(&src2, &out2, "restic's restore after faults");
}

#[test]
fn a_server_restarted_mid_backup_is_waited_for() {
    require_restic!();
    let Some(mut server) = RcloneRest::start() else {
        return;
    };
    let t = TempDir::new("faults-restart");
    let (src1, src2) = (t.join("src1"), t.join("src2"));
    make_corpus(&src1, 4, 21);
    make_corpus(&src2, 48, 22);
    let loc = server.location("repo");
    let cairn = Tool::cairn(Path::new(&loc), "pw");
    cairn.run(&["init"]).ok();
    cairn.run(&["backup", "-q", src1.to_str().unwrap()]).ok();
    let packs_before = count_files(&server.dir().join("repo/data"));

    let mut child = cairn.spawn(&[], &["backup", "-q", src2.to_str().unwrap()]);
    // Stop the server once the new backup has stored its first pack.
    let start = Instant::now();
    while count_files(&server.dir().join("repo/data")) == packs_before {
        assert!(start.elapsed() < PATIENCE, "backup stored nothing");
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    server.stop();
    std::thread::sleep(Duration::from_secs(3));
    server.restart();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "backup across a restart failed: {err}"
    );
    assert!(
        err.contains("retrying"),
        "the stop did not land mid-backup: {err}"
    );

    let restic = Tool::restic(Path::new(&loc), "pw");
    restic.run(&["check", "--read-data"]).ok();
    let r = t.join("restored");
    cairn
        .run(&["restore", "latest", "--target", r.to_str().unwrap()])
        .ok();
    assert_same(&src2, &r, "backup across a restart");
}

#[test]
fn a_server_that_stays_down_stops_the_backup_with_one_error_and_loses_nothing() {
    require_restic!();
    let Some(mut server) = RcloneRest::start() else {
        return;
    };
    let t = TempDir::new("faults-down");
    let (src1, src2) = (t.join("src1"), t.join("src2"));
    make_corpus(&src1, 4, 31);
    make_corpus(&src2, 48, 32);
    let loc = server.location("repo");
    let cairn = Tool::cairn(Path::new(&loc), "pw");
    cairn.run(&["init"]).ok();
    cairn.run(&["backup", "-q", src1.to_str().unwrap()]).ok();
    let packs_before = count_files(&server.dir().join("repo/data"));

    let child = cairn.spawn(
        &[],
        &[
            "backup",
            "-q",
            "-o",
            "retry.max-elapsed=4s",
            src2.to_str().unwrap(),
        ],
    );
    let start = Instant::now();
    while count_files(&server.dir().join("repo/data")) == packs_before {
        assert!(start.elapsed() < PATIENCE, "backup stored nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.stop();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let fatal: Vec<&str> = err.lines().filter(|l| l.starts_with("Fatal:")).collect();
    assert_eq!(fatal.len(), 1, "{err}");
    assert!(fatal[0].contains("gave up after"), "{err}");

    // Back up: the repository is valid and the earlier snapshot restores; the lock the
    // failed run could not remove is stale (its process is gone) and goes with `unlock`.
    server.restart();
    let restic = Tool::restic(Path::new(&loc), "pw");
    restic.run(&["unlock"]).ok();
    restic.run(&["check", "--read-data"]).ok();
    let snaps = restic.run(&["snapshots", "--json"]).ok().json();
    assert_eq!(snaps.as_array().unwrap().len(), 1, "{snaps}");
    let r = t.join("restored");
    cairn
        .run(&["restore", "latest", "--target", r.to_str().unwrap()])
        .ok();
    assert_same(&src1, &r, "the earlier snapshot");
    // And the next backup completes.
    cairn.run(&["backup", "-q", src2.to_str().unwrap()]).ok();
    restic.run(&["check"]).ok();
}

fn count_files(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                count_files(&p)
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn s3_backup_restore_and_check_survive_a_faulty_network() {
    require_restic!();
    let Some(garage) = cairn_testsupport::garage::Garage::start() else {
        return;
    };
    let proxy = FaultProxy::start(garage.port());
    let t = TempDir::new("faults-s3");
    let src = t.join("src");
    make_corpus(&src, 6, 51);
    let env: Vec<(&str, String)> = garage.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let loc = format!(
        "s3:http://127.0.0.1:{}/{}/faulty",
        proxy.port,
        garage.bucket()
    );
    let cairn = Tool::cairn(Path::new(&loc), "pw");
    let run = |args: &[&str]| {
        let mut v = args.to_vec();
        v.extend(["-o", "s3.timeout=2s"]);
        cairn.run_env(None, &env, &v)
    };
    assert_eq!(run(&["init"]).code, Some(0));

    proxy.inject(&all_faults(), 0.15);
    // The backup's first request fails for sure: at this rate a small backup could
    // otherwise, rarely, see no fault at all and have nothing to retry.
    proxy.fail_next(1);
    let r = run(&["backup", "-q", src.to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "backup under faults: {}", r.stderr_str());
    assert!(r.stderr_str().contains("retrying"), "{}", r.stderr_str());
    let out = t.join("restored");
    let r = run(&["restore", "latest", "--target", out.to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "restore under faults: {}", r.stderr_str());
    assert_same(&src, &out, "S3 restore under faults");
    let r = run(&["check", "--read-data"]);
    assert_eq!(r.code, Some(0), "check under faults: {}", r.stderr_str());
    let (injected, forwarded) = proxy.counts();
    eprintln!("faults injected: {injected}, requests forwarded: {forwarded}");
    assert!(injected > 0);

    proxy.heal();
    let direct = garage.location("faulty");
    let restic = Tool::restic(Path::new(&direct), "pw");
    let r = restic.run_env(None, &env, &["check", "--read-data"]);
    assert_eq!(r.code, Some(0), "restic check: {}", r.stderr_str());
}

#[test]
fn ctrl_c_during_retries_ends_the_command_promptly() {
    // Nothing listens: the first contact is retried for up to 20 s, unless interrupted.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let loc = format!("rest:http://127.0.0.1:{port}/repo/");
    let cairn = Tool::cairn(Path::new(&loc), "pw");
    let mut child = cairn.spawn(&[], &["snapshots"]);
    // Signalled once it is retrying, however long a busy machine takes to get there.
    let stderr = Watched::stderr_of(&mut child);
    stderr.wait_for("retrying");
    let t = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let elapsed = t.elapsed();
    let err = stderr.all();
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}: {err}");
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("retrying"), "{err}");
}
