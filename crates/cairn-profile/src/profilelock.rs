//! resticprofile's profile-level `lock = "/path/file"`: the profile holds that file for its
//! whole run (hooks included), so two runs of it never overlap; a second run fails at once
//! with "another process is already running this profile", exit 1, and runs nothing (not
//! even `run-after-fail`, as in resticprofile) — or, started by `run-schedule`, first waits
//! as the schedule's `schedule-lock-mode`/`schedule-lock-wait` say ([`Scheduled`]).
//!
//! The file is held with `flock(2)`, as the schedule lock is ([`crate::schedlock`]): a run
//! that still holds it is told apart from a file left behind without guessing from PIDs.
//! The file is also what resticprofile writes (`USER on TIME from HOST`, then the PID) and
//! is removed when the run ends, so resticprofile and cairn respect each other's locks. A file
//! that is there but held by nobody was left by a run that died (or by resticprofile, which
//! does not flock): if a PID it names still runs, the profile is busy; otherwise it is stale,
//! and taken over only with `force-inactive-lock = true` — resticprofile's rule.

use crate::schedlock::try_flock;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A held profile lock; the file is removed, then released, when this drops.
#[derive(Debug)]
pub struct ProfileLock {
    /// Holds the flock until dropped.
    _file: File,
    path: PathBuf,
}

impl Drop for ProfileLock {
    fn drop(&mut self) {
        // Removed while still held: a run that opened the file meanwhile finds, once it has
        // the flock, that the path no longer names its file, and starts over.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Set by `run-schedule` for the run it starts: the command section's `schedule-lock-mode`
/// and `schedule-lock-wait` applied to the profile's `lock` file too, as resticprofile
/// applies them to it (`ignore`: no lock file; `fail`: no waiting; `wait=SECONDS`).
pub const SCHEDULED_ENV: &str = "CAIRN_SCHEDULED_LOCK";

/// How a run started by `run-schedule` treats the profile's `lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduled {
    Ignore,
    Wait(Duration),
}

impl Scheduled {
    /// The value of [`SCHEDULED_ENV`] for a schedule's lock settings.
    pub fn env_value(mode: crate::schedlock::LockMode, wait: Option<Duration>) -> String {
        use crate::schedlock::LockMode;
        match mode {
            LockMode::Ignore => "ignore".into(),
            LockMode::Fail => "wait=0".into(),
            LockMode::Default => format!("wait={}", wait.unwrap_or_default().as_secs()),
        }
    }

    /// Reads [`SCHEDULED_ENV`] and removes it, so that cairn runs started by hooks do not
    /// inherit it. None when unset or not understood.
    pub fn take_from_env() -> Option<Scheduled> {
        let v = std::env::var(SCHEDULED_ENV).ok()?;
        std::env::remove_var(SCHEDULED_ENV);
        match v.as_str() {
            "ignore" => Some(Scheduled::Ignore),
            w => w
                .strip_prefix("wait=")
                .and_then(|s| s.parse().ok())
                .map(|s| Scheduled::Wait(Duration::from_secs(s))),
        }
    }
}

/// How often a waiting run tries again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Takes the lock at `path`, trying again for up to `wait` while another run holds it (a
/// scheduled run's `schedule-lock-wait`, as resticprofile waits). `Ok(None)` when its
/// directory cannot be made (resticprofile then runs without a lock, with a warning); `Err`
/// with the message when the profile is running elsewhere or the file is stale and `force`
/// is off.
pub fn acquire(path: &Path, force: bool, wait: Duration) -> Result<Option<ProfileLock>, String> {
    let deadline = Instant::now() + wait;
    loop {
        match try_acquire(path, force) {
            Err(Attempt::Busy(_)) if Instant::now() < deadline => {
                std::thread::sleep(RETRY_EVERY.min(deadline - Instant::now()));
            }
            Err(Attempt::Busy(msg)) if !wait.is_zero() => {
                return Err(format!("{msg}, after waiting {}s", wait.as_secs()))
            }
            Err(Attempt::Busy(msg) | Attempt::Failed(msg)) => return Err(msg),
            Ok(l) => return Ok(l),
        }
    }
}

/// Why one attempt did not get the lock.
enum Attempt {
    /// Held by a run (or left stale without `force`): worth waiting for.
    Busy(String),
    Failed(String),
}

fn try_acquire(path: &Path, force: bool) -> Result<Option<ProfileLock>, Attempt> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!(
                "warning: the profile will run without a lock file: {}: {e}",
                dir.display()
            );
            return Ok(None);
        }
    }
    // A few rounds: each lost one means another run removed the file just then.
    for _ in 0..8 {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map_err(|e| Attempt::Failed(format!("lock file {}: {e}", path.display())))?;
        match try_flock(&file) {
            Ok(true) => {}
            Ok(false) => {
                return Err(Attempt::Busy(format!(
                    "another process is already running this profile: {} (lock {})",
                    who(&file),
                    path.display()
                )))
            }
            Err(e) => return Err(Attempt::Failed(format!("locking {}: {e}", path.display()))),
        }
        let same = match (std::fs::metadata(path), file.metadata()) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        if !same {
            continue;
        }
        let left = contents(&file);
        if !left.trim().is_empty() {
            let who = left.lines().next().unwrap_or("").trim().to_string();
            let pids: Vec<i32> = left
                .lines()
                .skip(1)
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            // No PID to check: resticprofile cannot tell either and refuses.
            if pids.is_empty() || pids.iter().any(|&p| alive(p)) || !force {
                let hint = if pids.is_empty() || pids.iter().any(|&p| alive(p)) {
                    String::new()
                } else {
                    "; its process is gone: force-inactive-lock = true takes it over".to_string()
                };
                return Err(Attempt::Busy(format!(
                    "another process is already running this profile: {who} (lock {}{hint})",
                    path.display()
                )));
            }
            eprintln!(
                "warning: previous run of the profile started by {who} hasn't finished properly"
            );
        }
        let note = format!(
            "{} on {} from {}\n{}\n",
            user(),
            chrono::Local::now().format("%A, %d-%b-%y %H:%M:%S %Z"),
            crate::resolve::hostname(),
            std::process::id()
        );
        let written = file
            .set_len(0)
            .and_then(|_| (&file).write_all(note.as_bytes()));
        if let Err(e) = written {
            return Err(Attempt::Failed(format!("writing {}: {e}", path.display())));
        }
        return Ok(Some(ProfileLock {
            _file: file,
            path: path.to_path_buf(),
        }));
    }
    Err(Attempt::Busy(format!(
        "lock file {}: removed and recreated by other runs again and again",
        path.display()
    )))
}

/// The file's text (its first 4 KiB: it holds a line and PIDs).
fn contents(file: &File) -> String {
    let mut s = String::new();
    let _ = file
        .try_clone()
        .map(|f| f.take(4096).read_to_string(&mut s));
    s
}

fn who(file: &File) -> String {
    let c = contents(file);
    let first = c.lines().next().unwrap_or("").trim();
    if first.is_empty() {
        "holder unknown".into()
    } else {
        first.to_string()
    }
}

/// Whether a process with this PID exists (EPERM: it does, owned by someone else).
fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn user() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| {
            // SAFETY: geteuid has no preconditions.
            format!("uid {}", unsafe { libc::geteuid() })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_busy_and_released_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/p.lock");
        let held = acquire(&path, false, Duration::ZERO).unwrap().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.ends_with(&format!("\n{}\n", std::process::id())),
            "{text}"
        );
        // flock conflicts between descriptors of one process too.
        let err = acquire(&path, true, Duration::ZERO).unwrap_err();
        assert!(err.contains("already running this profile"), "{err}");
        drop(held);
        assert!(!path.exists(), "removed at the end");
        drop(acquire(&path, false, Duration::ZERO).unwrap().unwrap());
    }

    #[test]
    fn a_stale_file_needs_force_and_a_live_pid_is_respected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.lock");
        // A PID that is gone: a child that has been waited for.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        std::fs::write(&path, format!("someone on a day from host\n{gone}\n")).unwrap();
        let err = acquire(&path, false, Duration::ZERO).unwrap_err();
        assert!(err.contains("force-inactive-lock"), "{err}");
        drop(acquire(&path, true, Duration::ZERO).unwrap().unwrap());

        // resticprofile's own lock, of a process that runs (this one): never taken.
        let me = std::process::id();
        std::fs::write(&path, format!("someone on a day from host\n{me}\n")).unwrap();
        let err = acquire(&path, true, Duration::ZERO).unwrap_err();
        assert!(err.contains("someone on a day from host"), "{err}");
        assert!(!err.contains("force-inactive-lock"), "{err}");
    }
}
