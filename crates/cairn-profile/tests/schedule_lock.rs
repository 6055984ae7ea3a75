//! The schedule lock: held by another process it fails or waits; a dead holder is no
//! obstacle. The other process is util-linux's flock(1), a real separate holder.

use cairn_profile::schedlock::{acquire, lock_file, LockMode};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Starts flock(1) holding `path` for `secs` and waits until it has the lock. `-o`: the
/// lock is flock(1)'s own, not inherited by its `sleep`, so killing flock(1) ends it.
fn hold(path: &std::path::Path, secs: u32) -> Child {
    let mut child = Command::new("flock")
        .arg("-o")
        .arg(path)
        .args(["sleep", &secs.to_string()])
        .spawn()
        .unwrap();
    for _ in 0..250 {
        let f = std::fs::File::open(path).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: a probe on a descriptor this test owns; closing it drops any lock it got.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return child;
        }
        drop(f);
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("flock(1) did not take the lock");
}

fn have_flock() -> bool {
    Command::new("flock")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn held_lock_fails_at_once_or_after_waiting() {
    if !have_flock() {
        eprintln!("skipped: no flock(1)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = lock_file(dir.path(), "home");
    std::fs::write(&path, "").unwrap();
    let mut holder = hold(&path, 30);

    let t = Instant::now();
    let err = acquire(
        dir.path(),
        "home",
        LockMode::Fail,
        Some(Duration::from_secs(5)),
    )
    .unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "fail mode must not wait"
    );
    assert!(
        err.to_string().contains("profile home is already running"),
        "{err}"
    );

    let t = Instant::now();
    let err = acquire(
        dir.path(),
        "home",
        LockMode::Default,
        Some(Duration::from_millis(700)),
    )
    .unwrap_err();
    assert!(
        t.elapsed() >= Duration::from_millis(700),
        "{:?}",
        t.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(err.to_string().contains("already running"), "{err}");

    // Ignore takes no lock at all.
    assert!(acquire(dir.path(), "home", LockMode::Ignore, None)
        .unwrap()
        .is_none());
    // Another profile has its own lock.
    assert!(acquire(dir.path(), "other", LockMode::Fail, None)
        .unwrap()
        .is_some());

    // The holder dies while we wait: the kernel dropped its lock, we get it.
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        holder.kill().unwrap();
        holder.wait().unwrap();
    });
    let t = Instant::now();
    let lock = acquire(
        dir.path(),
        "home",
        LockMode::Default,
        Some(Duration::from_secs(10)),
    )
    .unwrap()
    .unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    killer.join().unwrap();
    let text = std::fs::read_to_string(lock.path()).unwrap();
    assert!(
        text.starts_with(&format!("pid {} ", std::process::id())),
        "{text}"
    );
    // While we hold it, a second taker (another open file description) fails, naming us.
    let err = acquire(dir.path(), "home", LockMode::Fail, None).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    drop(lock);
    assert!(acquire(dir.path(), "home", LockMode::Fail, None)
        .unwrap()
        .is_some());
}

#[test]
fn lock_file_of_a_dead_process_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    // A lock file left by a process that is gone (it held no flock any more).
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let path = lock_file(dir.path(), "srv");
    std::fs::write(
        &path,
        format!("pid {dead} started 2020-01-01T00:00:00+00:00\n"),
    )
    .unwrap();
    let lock = acquire(dir.path(), "srv", LockMode::Fail, None)
        .unwrap()
        .unwrap();
    let text = std::fs::read_to_string(lock.path()).unwrap();
    assert!(
        text.starts_with(&format!("pid {} ", std::process::id())),
        "{text}"
    );
    assert!(!text.contains(&format!("pid {dead} ")));
}

#[test]
fn lock_mode_names() {
    assert_eq!(LockMode::parse("default").unwrap(), LockMode::Default);
    assert_eq!(LockMode::parse("fail").unwrap(), LockMode::Fail);
    assert_eq!(LockMode::parse("ignore").unwrap(), LockMode::Ignore);
    assert!(LockMode::parse("sometimes")
        .unwrap_err()
        .to_string()
        .contains("sometimes"));
}
