//! Crash safety: a backup killed with SIGKILL at any moment, or stopped with Ctrl-C, leaves a
//! repository that restic's own `check` accepts, that keeps every earlier snapshot, and that
//! cairn can back up into again.

mod common;

use common::{busy_tree, cairn, cpu_of_run, kill_at_cpu, ok, restic_check, restored, snapshots};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// `restic check` after a killed cairn.
fn restic_check_after_kill(repo: &Path) {
    // A killed cairn leaves its (shared) lock behind. The next cairn command would clear it by
    // itself (same host, process gone), but restic 0.14's check locks exclusively and refuses
    // until `unlock` has removed it, as after a killed restic.
    ok(cairn(repo).arg("unlock"));
    restic_check(repo);
}

/// A tree big enough that a backup takes a while: many small files and some large ones.
fn make_tree(root: &Path, seed: u32) {
    busy_tree(root, seed, 20, 4, 6_000_000);
}

fn snapshot_ids(repo: &Path) -> Vec<String> {
    snapshots(repo)
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

fn same_files(a: &Path, b: &Path) {
    let mut stack = vec![std::path::PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(a.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                stack.push(r);
            } else {
                assert_eq!(
                    std::fs::read(a.join(&r)).unwrap(),
                    std::fs::read(b.join(&r)).unwrap(),
                    "{}",
                    r.display()
                );
            }
        }
    }
}

/// A pseudo-random fraction in [0, 1) that differs between runs (time-seeded).
fn rand_fraction(i: u32) -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let x = (nanos ^ i.wrapping_mul(0x9E37_79B9)).wrapping_mul(2_654_435_761);
    f64::from(x) / f64::from(u32::MAX)
}

#[test]
fn sigkill_during_backup_at_many_points() {
    require_restic!();
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let src = t.path().join("src");
    make_tree(&src, 1);
    ok(cairn(&repo).arg("init"));
    // A first, complete snapshot that must survive everything below.
    let first = t.path().join("first");
    std::fs::create_dir_all(&first).unwrap();
    std::fs::write(first.join("keep.txt"), b"keep me").unwrap();
    ok(cairn(&repo).arg("backup").arg(&first));
    let before = snapshot_ids(&repo);
    // Measure the CPU time a full backup takes, then kill others at fractions of that.
    let probe = t.path().join("probe-repo");
    ok(cairn(&probe).arg("init"));
    let full = cpu_of_run(
        cairn(&probe)
            .arg("backup")
            .arg(&src)
            .arg("-q")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut killed_midway = 0;
    // 24 kills: evenly spread over a full backup's CPU time, each jittered a little so that
    // runs differ in where exactly they land.
    for i in 0..24u32 {
        let jitter = rand_fraction(i) * 0.03;
        let delay = full.mul_f64(0.03 + 0.04 * i as f64 + jitter);
        let mut child = cairn(&repo)
            .arg("backup")
            .arg(&src)
            .arg("-q")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if kill_at_cpu(&mut child, delay) {
            killed_midway += 1;
        }
        child.wait().unwrap();
        restic_check_after_kill(&repo);
        let now = snapshot_ids(&repo);
        assert!(
            before.iter().all(|id| now.contains(id)),
            "an earlier snapshot vanished"
        );
    }
    // Later runs are quicker than the probe (they resume, and find earlier runs' packs), so
    // the kills late in the schedule land after they finished; a third must hit mid-run.
    assert!(
        killed_midway >= 8,
        "only {killed_midway} kills hit a running backup (full backup took {full:?})"
    );
    // The repository takes a complete backup afterwards, and it restores exactly.
    ok(cairn(&repo).arg("backup").arg(&src).arg("-q"));
    restic_check_after_kill(&repo);
    let leftovers = std::fs::read_dir(repo.join("tmp"))
        .map(|rd| rd.count())
        .unwrap_or(0);
    assert_eq!(
        leftovers, 0,
        "staged files of killed runs are cleaned up by the next backup"
    );
    let mut hidden = Vec::new();
    let mut stack = vec![repo.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else if e.file_name().to_string_lossy().starts_with('.') {
                hidden.push(e.path());
            }
        }
    }
    assert!(
        hidden.is_empty(),
        "half-written files of killed runs are cleaned up by the next backup: {hidden:?}"
    );
    let out = t.path().join("out");
    ok(cairn(&repo)
        .arg("restore")
        .arg("latest")
        .arg("--target")
        .arg(&out)
        .arg("--path")
        .arg(src.to_str().unwrap()));
    same_files(&src, &restored(&out, &src));
    let out1 = t.path().join("out1");
    ok(cairn(&repo)
        .arg("restore")
        .arg(&before[0])
        .arg("--target")
        .arg(&out1));
    assert_eq!(
        std::fs::read(restored(&out1, &first).join("keep.txt")).unwrap(),
        b"keep me"
    );
}

#[test]
fn ctrl_c_stops_cleanly_with_130() {
    require_restic!();
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let src = t.path().join("src");
    make_tree(&src, 2);
    ok(cairn(&repo).arg("init"));
    let mut child = cairn(&repo)
        .arg("backup")
        .arg(&src)
        .arg("-q")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Into the backup: 150 ms of CPU, not of wall time, which on a busy machine may end
    // before cairn has even set up its Ctrl-C handler.
    let finished_early = !common::wait_for_cpu(&mut child, Duration::from_millis(150));
    // SAFETY: sending a signal to our own child process.
    unsafe { libc_kill(child.id() as i32, 2) };
    let out = child.wait_with_output().unwrap();
    if finished_early {
        eprintln!("backup finished before the signal; nothing to check");
        return;
    }
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        snapshot_ids(&repo).is_empty(),
        "an interrupted backup must not leave a snapshot"
    );
    restic_check_after_kill(&repo);
    ok(cairn(&repo).arg("backup").arg(&src).arg("-q"));
    assert_eq!(snapshot_ids(&repo).len(), 1);
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

fn summary_of(out: &str) -> serde_json::Value {
    let line = out
        .lines()
        .rev()
        .find(|l| l.contains("\"summary\""))
        .expect("summary");
    serde_json::from_str(line).unwrap()
}

/// restic re-reads everything after an interrupted first backup (its #2280, #2960); cairn
/// resumes from its last checkpoint: the re-run does not read the files stored before.
#[test]
fn killed_backup_resumes_without_rereading() {
    require_restic!();
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let cache = t.path().join("cache");
    let src = t.path().join("src");
    make_tree(&src, 3);
    // More data, read by one reader, so that the backup runs long enough for checkpoints.
    let mut x = 0x2545f4914f6cdd1du64;
    for b in 0..12 {
        let data: Vec<u8> = (0..4_000_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(src.join(format!("extra{b:02}")), data).unwrap();
    }
    let resumable = |repo: &Path| {
        let mut c = cairn(repo);
        c.env("CAIRN_CHECKPOINT_SECS", "0.05")
            .env("RESTIC_READ_CONCURRENCY", "1")
            .arg("--cache-dir")
            .arg(&cache);
        c
    };
    ok(cairn(&repo).arg("init"));
    let probe = t.path().join("probe");
    ok(cairn(&probe).arg("init"));
    let full = cpu_of_run(
        resumable(&probe)
            .arg("backup")
            .arg(&src)
            .arg("-q")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let total_files = 20 * 40 + 4 + 12;
    // Kill late enough that several checkpoints happened.
    let mut resumed = 0;
    for fraction in [0.6, 0.75, 0.9] {
        let repo = t.path().join(format!("repo-{fraction}"));
        ok(cairn(&repo).arg("init"));
        let mut child = resumable(&repo)
            .arg("backup")
            .arg(&src)
            .arg("-q")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        if !kill_at_cpu(&mut child, full.mul_f64(fraction)) {
            child.wait().unwrap();
            continue; // finished before the kill: try a later fraction
        }
        child.wait().unwrap();
        assert!(snapshot_ids(&repo).is_empty());
        restic_check_after_kill(&repo);
        let out = ok(resumable(&repo)
            .arg("backup")
            .arg(&src)
            .arg("--json")
            .arg("-vv"));
        let s = summary_of(&out);
        resumed = s["files_resumed"].as_u64().unwrap();
        let read = out
            .lines()
            .filter(|l| l.contains("\"action\":\"new\""))
            .count() as u64;
        assert_eq!(s["files_new"].as_u64().unwrap(), total_files, "{s}");
        assert_eq!(
            read + resumed,
            total_files,
            "every file was either read or resumed: {s}"
        );
        eprintln!("killed at {fraction} of {full:?}: re-run resumed {resumed} of {total_files} files, read {read}");
        if resumed == 0 {
            continue;
        }
        restic_check_after_kill(&repo);
        let target = t.path().join(format!("out-{fraction}"));
        ok(cairn(&repo)
            .arg("restore")
            .arg("latest")
            .arg("--target")
            .arg(&target));
        same_files(&src, &restored(&target, &src));
        // The log is gone once the snapshot exists: a third run uses the snapshot as parent.
        let logs: usize = std::fs::read_dir(&cache)
            .unwrap()
            .flatten()
            .map(|d| {
                std::fs::read_dir(d.path().join("cairn-resume"))
                    .map(|r| r.count())
                    .unwrap_or(0)
            })
            .sum();
        assert_eq!(logs, 0, "resume log removed after the snapshot was saved");
        break;
    }
    assert!(
        resumed > 0,
        "no kill landed after a checkpoint (full backup took {full:?})"
    );
}
