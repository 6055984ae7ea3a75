//! Locking with restic's protocol: cairn and restic processes run side by side in one
//! repository, each respecting the other's locks. Processes are held mid-command by keeping
//! their standard input open (a `backup --stdin` holds a shared lock, `key passwd` waiting
//! for the new password holds an exclusive one).

mod common;

use common::{TempDir, Tool, Watched, PATIENCE};
use std::io::Write;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

fn lock_files(repo: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo.join("locks"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                // A file being written (cairn: `.<id>-tmp-…`, restic: `<id>-tmp-…`, renamed
                // into place when complete) is not a lock yet.
                .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Waits until the repository holds exactly `n` lock files.
fn wait_for_locks(repo: &Path, n: usize, holders: &mut [&mut Child]) {
    let start = Instant::now();
    while lock_files(repo).len() != n {
        for c in holders.iter_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = c.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("a lock holder exited early ({st}): {err}");
            }
        }
        assert!(
            start.elapsed() < PATIENCE,
            "expected {n} lock files, have {:?}",
            lock_files(repo)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lets a held `backup --stdin` finish: writes its input and closes it.
fn finish_stdin(mut c: Child, data: &[u8]) -> std::process::Output {
    if let Some(mut i) = c.stdin.take() {
        i.write_all(data).expect("write to held process");
    }
    c.wait_with_output().expect("wait for held process")
}

fn kill(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// Copies the repository `repo` to `dest` (which must not exist) until a copy holds a lock
/// file, and returns the lock files of that copy. A copy taken as a lock was being replaced
/// may miss it, or fail on it.
fn copy_with_locks(repo: &Path, dest: &Path) -> Vec<String> {
    let start = Instant::now();
    loop {
        let _ = std::fs::remove_dir_all(dest);
        let copied = std::process::Command::new("cp")
            .arg("-a")
            .arg(repo)
            .arg(dest)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if copied && !lock_files(dest).is_empty() {
            return lock_files(dest);
        }
        assert!(
            start.elapsed() < PATIENCE,
            "no copy of {repo:?} with a lock"
        );
    }
}

fn setup() -> (TempDir, Tool) {
    let t = TempDir::new("locks");
    let src = t.join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/f"), b"some content\n").unwrap();
    let cairn = Tool::cairn(&t.join("repo"), "pw");
    cairn.run(&["init"]).ok();
    (t, cairn)
}

#[test]
fn commands_leave_no_lock_behind() {
    let (t, cairn) = setup();
    let src = t.join("src");
    let src = src.to_str().unwrap();
    cairn.run(&["backup", "-q", src]).ok();
    assert_eq!(lock_files(&cairn.repo), Vec::<String>::new());
    for args in [
        vec!["snapshots"],
        vec!["ls", "latest"],
        vec!["stats"],
        vec!["list", "snapshots"],
    ] {
        cairn.run(&args).ok();
        assert_eq!(lock_files(&cairn.repo), Vec::<String>::new(), "{args:?}");
    }
    // A failing command releases its lock too.
    cairn
        .run(&["cat", "snapshot", "nonexistent"])
        .expect_code(1);
    assert_eq!(lock_files(&cairn.repo), Vec::<String>::new());
}

#[test]
fn an_exclusive_restic_lock_stops_cairn_until_released() {
    require_restic!();
    let (t, cairn) = setup();
    let restic = Tool::restic(&cairn.repo, "pw");
    let src = t.join("src");
    let src = src.to_str().unwrap();
    // restic takes its exclusive lock, then waits for the new password on stdin.
    let mut holder = restic.spawn(&[], &["key", "passwd"]);
    wait_for_locks(&cairn.repo, 1, &mut [&mut holder]);

    let r = cairn.run(&["backup", "-q", src]).expect_code(11);
    let err = r.stderr_str();
    assert!(
        err.contains("locked exclusively") && err.contains(&format!("PID {}", holder.id())),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    // Readers conflict with an exclusive lock too, unless told not to lock.
    cairn.run(&["snapshots"]).expect_code(11);
    cairn.run(&["--no-lock", "snapshots"]).ok();
    assert_eq!(lock_files(&cairn.repo).len(), 1, "cairn left a lock behind");

    // With --retry-lock, cairn waits for the lock and then backs up.
    let mut waiter = cairn.spawn(&[], &["backup", "--retry-lock", "20s", src]);
    // Released only once cairn says it waits, however long a busy machine takes to get there.
    let stderr = Watched::stderr_of(&mut waiter);
    stderr.wait_for("waiting up to");
    // restic gives up on an unreadable new password and removes its lock.
    drop(holder.stdin.take());
    let _ = holder.wait();
    let out = waiter.wait_with_output().unwrap();
    let err = stderr.all();
    assert!(out.status.success(), "{err}");
    assert!(err.contains("waiting up to"), "{err}");
    assert_eq!(cairn.snapshot_ids().len(), 1);
    assert_eq!(lock_files(&cairn.repo), Vec::<String>::new());
}

#[test]
fn two_cairn_backups_and_a_restic_backup_share_the_repository() {
    require_restic!();
    let (t, cairn) = setup();
    let restic = Tool::restic(&cairn.repo, "pw");
    let src = t.join("src");
    let src = src.to_str().unwrap();
    let mut a = cairn.spawn(&[], &["backup", "--stdin", "--stdin-filename", "a.txt"]);
    let mut r = restic.spawn(&[], &["backup", "--stdin", "--stdin-filename", "r.txt"]);
    wait_for_locks(&cairn.repo, 2, &mut [&mut a, &mut r]);
    // A second cairn backup runs to completion beside them.
    cairn.run(&["backup", "-q", src]).ok();

    // Operations that need the repository alone refuse, with who holds it.
    let p = restic.run(&["prune"]);
    assert_ne!(p.code, Some(0), "restic prune ran beside backups");
    assert!(
        p.stderr_str().contains("already locked"),
        "{}",
        p.stderr_str()
    );
    let k = cairn.run(&["key", "passwd"]).expect_code(11);
    assert!(
        k.stderr_str().contains("already locked"),
        "{}",
        k.stderr_str()
    );

    let out = finish_stdin(a, b"cairn's stdin\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = finish_stdin(r, b"restic's stdin\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lock_files(&cairn.repo), Vec::<String>::new());
    assert_eq!(cairn.snapshot_ids().len(), 3);
    restic.run(&["check", "--read-data"]).ok();
    let snaps = cairn.snapshots_json();
    let from_restic = snaps
        .iter()
        .find(|s| s["paths"][0].as_str().is_some_and(|p| p.ends_with("r.txt")))
        .expect("restic's snapshot listed by cairn");
    let id = from_restic["id"].as_str().unwrap();
    let dump = cairn.run(&["dump", id, "/r.txt"]).ok();
    assert_eq!(dump.stdout, b"restic's stdin\n");
}

#[test]
fn a_dead_process_lock_is_cleared_by_cairn_but_blocks_restic_0_14() {
    require_restic!();
    let (t, cairn) = setup();
    let restic = Tool::restic(&cairn.repo, "pw");
    let src = t.join("src");
    let src = src.to_str().unwrap();
    // cairn takes its exclusive lock, then blocks opening a fifo for the new password.
    let fifo = t.join("new-password");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    let mut holder = cairn.spawn(
        &[],
        &[
            "key",
            "passwd",
            "--new-password-file",
            fifo.to_str().unwrap(),
        ],
    );
    wait_for_locks(&cairn.repo, 1, &mut [&mut holder]);
    kill(holder); // SIGKILL: no chance to clean up
    assert_eq!(lock_files(&cairn.repo).len(), 1);

    // restic refuses until someone runs unlock ...
    let r = restic.run(&["backup", src]);
    assert_ne!(r.code, Some(0));
    assert!(
        r.stderr_str().contains("locked exclusively"),
        "{}",
        r.stderr_str()
    );
    // ... cairn sees the process is gone (same host, PID not running) and goes on.
    let c = cairn.run(&["backup", "-q", src]).ok();
    assert!(
        c.stderr_str().contains("no longer exists"),
        "{}",
        c.stderr_str()
    );
    assert_eq!(lock_files(&cairn.repo), Vec::<String>::new());
    restic.run(&["backup", src]).ok();
}

#[test]
fn unlock_removes_stale_locks_and_remove_all_removes_every_lock() {
    require_restic!();
    let (_t, cairn) = setup();
    let restic = Tool::restic(&cairn.repo, "pw");
    let mut live = restic.spawn(&[], &["backup", "--stdin", "--stdin-filename", "x"]);
    wait_for_locks(&cairn.repo, 1, &mut [&mut live]);
    let live_lock = lock_files(&cairn.repo);
    let mut dead = cairn.spawn(&[], &["backup", "--stdin", "--stdin-filename", "y"]);
    wait_for_locks(&cairn.repo, 2, &mut [&mut live, &mut dead]);
    kill(dead);

    cairn.run(&["unlock"]).ok();
    assert_eq!(
        lock_files(&cairn.repo),
        live_lock,
        "unlock must keep a live lock"
    );
    let out = finish_stdin(live, b"x\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lock_files(&cairn.repo), Vec::<String>::new());

    // --remove-all removes live locks too; the held backup still finishes (its lock is gone,
    // its data is not). (A cairn holder: restic 0.14 retries removing its vanished lock
    // for a minute and a half.)
    let mut held = cairn.spawn(&[], &["backup", "--stdin", "--stdin-filename", "w"]);
    wait_for_locks(&cairn.repo, 1, &mut [&mut held]);
    cairn.run(&["unlock", "--remove-all"]).ok();
    assert_eq!(lock_files(&cairn.repo), Vec::<String>::new());
    let out = finish_stdin(held, b"w\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(cairn.snapshot_ids().len(), 2);
    restic.run(&["check"]).ok();
}

#[test]
fn a_held_lock_is_refreshed_and_restic_can_read_it() {
    require_restic!();
    let (t, cairn) = setup();
    let mut held = cairn.spawn(
        &[("CAIRN_LOCK_REFRESH_SECS", "0.3")],
        &["backup", "--stdin", "--stdin-filename", "z"],
    );
    wait_for_locks(&cairn.repo, 1, &mut [&mut held]);
    // restic decodes cairn's lock file, in a copy of the repository: the lock is replaced
    // every 0.3 s, sooner than a busy machine may start restic.
    let frozen = t.join("frozen");
    let first = copy_with_locks(&cairn.repo, &frozen);
    let cat = Tool::restic(&frozen, "pw")
        .run(&["cat", "lock", &first[0]])
        .ok()
        .json();
    assert_eq!(cat["exclusive"], false);
    assert_eq!(cat["pid"].as_u64(), Some(held.id() as u64));
    let t0 = cat["time"].as_str().unwrap().to_string();

    let start = Instant::now();
    let mut seen = first.clone();
    while start.elapsed() < PATIENCE && seen.len() < 3 {
        for l in lock_files(&cairn.repo) {
            if !seen.contains(&l) {
                seen.push(l);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(seen.len() >= 3, "lock not refreshed: {seen:?}");
    let now = lock_files(&cairn.repo);
    assert!(!now.is_empty() && now.len() <= 2, "{now:?}");
    let frozen = t.join("frozen-later");
    let newest = copy_with_locks(&cairn.repo, &frozen);
    let newest = Tool::restic(&frozen, "pw")
        .run(&["cat", "lock", &newest[0]])
        .ok()
        .json();
    assert!(newest["time"].as_str().unwrap() > t0.as_str(), "{newest}");
    let out = finish_stdin(held, b"z\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lock_files(&cairn.repo), Vec::<String>::new());
}
