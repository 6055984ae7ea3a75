//! The schedule lock: two scheduled runs of one profile never overlap.
//!
//! How the runner plugs this in: `cairn run-schedule COMMAND@PROFILE` (what the generated
//! units and crontab entries run) calls [`acquire`] with the command section's
//! `schedule-lock-mode` and `schedule-lock-wait` ([`crate::schedule::ScheduleSettings`])
//! before anything else, keeps the returned [`ScheduleLock`] alive for the whole run, and
//! lets it drop at the end. A manual `cairn -P NAME backup` takes no schedule lock (as in
//! resticprofile), only the repository's own lock.
//!
//! One lock file per profile (all commands of a profile share it, so a scheduled prune
//! never runs under a scheduled backup of the same profile) in [`default_lock_dir`]. The file
//! is locked with `flock(2)`, not merely created: the kernel drops a flock when the last
//! descriptor of its holder closes, including when the process is killed, so a lock whose
//! process is gone is never in the way and nothing has to guess from a PID whether it is
//! stale (a PID may have been reused). The PID and start time written into the file are for
//! the message a waiting run prints.

use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `schedule-lock-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockMode {
    /// Wait up to `schedule-lock-wait` (not at all when unset), then fail.
    #[default]
    Default,
    /// Fail at once when another run holds the lock.
    Fail,
    /// Take no lock at all.
    Ignore,
}

impl LockMode {
    pub fn parse(s: &str) -> Result<LockMode> {
        Ok(match s {
            "" | "default" => LockMode::Default,
            "fail" => LockMode::Fail,
            "ignore" => LockMode::Ignore,
            other => bail!("schedule-lock-mode '{other}' is not one of default, fail, ignore"),
        })
    }
}

/// A held schedule lock; released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct ScheduleLock {
    file: File,
    path: PathBuf,
}

impl ScheduleLock {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lets child processes inherit the lock, so that it is held until the last of them
    /// ends even if this process is killed first (`run-schedule` runs the profile in a child).
    pub fn keep_across_exec(&self) -> Result<()> {
        let fd = self.file.as_raw_fd();
        // SAFETY: fcntl on a descriptor this struct owns; only the close-on-exec flag changes.
        let rc = unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags < 0 {
                flags
            } else {
                libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC)
            }
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("schedule lock {}", self.path.display()));
        }
        Ok(())
    }
}

/// Where schedule locks live: `$XDG_RUNTIME_DIR/cairn`, `/run/cairn` for root, else the
/// user's cache directory (`~/.cache/cairn/locks`), else `/tmp/cairn-UID`.
pub fn default_lock_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("cairn");
    }
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        return PathBuf::from("/run/cairn");
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("cairn").join("locks");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(h).join(".cache").join("cairn").join("locks");
    }
    PathBuf::from(format!("/tmp/cairn-{uid}"))
}

/// The lock file of a profile: its name with anything but `[A-Za-z0-9._-]` percent-escaped.
pub fn lock_file(dir: &Path, profile: &str) -> PathBuf {
    let mut name = String::from("profile-");
    for b in profile.bytes() {
        if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    name.push_str(".lock");
    dir.join(name)
}

/// Takes the profile's schedule lock as `mode` and `wait` say: Ok(None) for
/// [`LockMode::Ignore`], an error naming the holder when it cannot be had in time.
pub fn acquire(
    dir: &Path,
    profile: &str,
    mode: LockMode,
    wait: Option<Duration>,
) -> Result<Option<ScheduleLock>> {
    if mode == LockMode::Ignore {
        return Ok(None);
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating the lock directory {}", dir.display()))?;
    let path = lock_file(dir, profile);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening the schedule lock {}", path.display()))?;
    let wait = match mode {
        LockMode::Default => wait.unwrap_or(Duration::ZERO),
        _ => Duration::ZERO,
    };
    let deadline = Instant::now() + wait;
    loop {
        if try_flock(&file).with_context(|| format!("locking {}", path.display()))? {
            break;
        }
        if Instant::now() >= deadline {
            let mut holder = String::new();
            let _ = (&file).take(512).read_to_string(&mut holder);
            let holder = holder.split_whitespace().collect::<Vec<_>>().join(" ");
            let waited = if wait.is_zero() {
                String::new()
            } else {
                format!(" after waiting {}s", wait.as_secs())
            };
            bail!(
                "profile {profile} is already running{waited} ({}; lock {})",
                if holder.is_empty() {
                    "holder unknown"
                } else {
                    &holder
                },
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200).min(deadline - Instant::now()));
    }
    let note = format!(
        "pid {} started {}\n",
        std::process::id(),
        chrono::Local::now().format("%Y-%m-%dT%H:%M:%S%:z")
    );
    file.set_len(0)
        .and_then(|_| file.write_all_at(note.as_bytes(), 0))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Some(ScheduleLock { file, path }))
}

/// Takes an exclusive flock on `file` without waiting: Ok(false) when another descriptor
/// holds it (in this process or another). Shared with the profile-level `lock`.
pub(crate) fn try_flock(file: &File) -> std::io::Result<bool> {
    // SAFETY: flock on a descriptor `file` owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}
