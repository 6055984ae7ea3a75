//! How every operation of the core talks to whoever runs it: one [`Observer`] trait that
//! receives [`Event`]s (messages, warnings, per-item errors, per-file progress, lock waits)
//! and answers whether the user asked to stop.
//!
//! The core never prints. A front end implements `Observer` once per way of printing — the
//! CLI has a text printer and a `--json` printer — and hands the same observer to backup,
//! restore, prune, copy, the repairs and locking alike; a mount, a server or a scheduler can
//! implement it to log, count or stay silent ([`Quiet`]).

use crate::lock::{LockError, LockInfo};
use crate::Id;
use std::path::Path;
use std::time::Duration;

/// Something an operation reports while it runs.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A progress message restic prints at normal verbosity ("loading indexes...").
    Info(&'a str),
    /// A message only `-v` shows.
    Verbose(&'a str),
    /// Something was left out or looks wrong; the operation goes on and can still succeed.
    Warning {
        path: Option<&'a Path>,
        message: &'a str,
    },
    /// One item (a file, a directory) failed; the operation goes on but ends with errors.
    Error {
        path: &'a Path,
        error: &'a anyhow::Error,
    },
    /// Backup: a file was read; `added` counts the plaintext bytes of blobs that were new.
    FileSaved {
        path: &'a Path,
        bytes: u64,
        added: u64,
    },
    /// Backup: a file was unchanged since the parent snapshot and was not read.
    FileUnchanged { path: &'a Path, bytes: u64 },
    /// Restore: what became of one entry (restic's `verbose_status` actions). `path` is the
    /// entry's path in the snapshot, or in the target for deletions.
    Restored {
        path: &'a Path,
        action: RestoreAction,
        size: u64,
    },
    /// Locking: the lock of a process on this host that no longer exists was removed.
    LockRemovedDead { id: &'a Id, info: &'a LockInfo },
    /// Locking: the repository is locked by someone else; waiting up to `left`.
    LockWaiting {
        error: &'a LockError,
        left: Duration,
    },
    /// Restore: what the restore will write, once it is planned: files, directories and other
    /// entries, and the bytes of the files.
    RestorePlanned { entries: u64, bytes: u64 },
    /// Restore: file content written (one blob's bytes), as it happens.
    RestoreBytes { bytes: u64 },
    /// Locking: a lock file could not be read and is ignored (or, by unlock, removed).
    LockUnreadable {
        id: &'a Id,
        error: &'a anyhow::Error,
    },
    /// Check: a finding or a step of [`crate::checker::run`].
    Check(CheckEvent<'a>),
}

/// What a check reports besides plain messages.
#[derive(Debug, Clone, Copy)]
pub enum CheckEvent<'a> {
    /// Damage found (the check will fail).
    Problem(&'a crate::checker::Problem),
    /// Something worth knowing that is not an error.
    Hint(&'a crate::checker::Hint),
    /// Advice after hints ("non-critical, ... prune removes them").
    Note(&'a str),
    /// A pack about to be read (`-vv` lists them).
    ReadingPack(&'a Id),
    /// Packs read so far since `start`; `start: None` says the phase ended (clear the line).
    Progress {
        done: u64,
        total: u64,
        start: Option<std::time::Instant>,
    },
}

/// What a restore did with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreAction {
    /// A file that was not in the target was written.
    FileRestored,
    /// A file in the target with other content was rewritten.
    FileUpdated,
    /// A file was left as it was: its content matched, or `--overwrite` kept it.
    FileUnchanged,
    DirRestored,
    /// A symlink, fifo, device or hard link.
    OtherRestored,
    /// `--delete` removed something the snapshot does not have.
    Deleted,
}

impl RestoreAction {
    /// restic's word for it in `verbose_status` messages.
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreAction::FileRestored
            | RestoreAction::DirRestored
            | RestoreAction::OtherRestored => "restored",
            RestoreAction::FileUpdated => "updated",
            RestoreAction::FileUnchanged => "unchanged",
            RestoreAction::Deleted => "deleted",
        }
    }
}

/// The receiver of an operation's events. Only [`Observer::event`] must be written; the
/// other methods are shorthands the core calls.
pub trait Observer: Sync {
    fn event(&self, event: Event<'_>);

    /// Has the user asked to stop (Ctrl-C)? Long loops check this between steps and then
    /// fail with [`crate::Error::Interrupted`].
    fn cancelled(&self) -> bool {
        false
    }

    fn info(&self, msg: &str) {
        self.event(Event::Info(msg));
    }
    fn verbose(&self, msg: &str) {
        self.event(Event::Verbose(msg));
    }
    /// A warning that concerns no single path.
    fn warn(&self, msg: &str) {
        self.event(Event::Warning {
            path: None,
            message: msg,
        });
    }
    fn warn_at(&self, path: &Path, msg: &str) {
        self.event(Event::Warning {
            path: Some(path),
            message: msg,
        });
    }
    fn error(&self, path: &Path, error: &anyhow::Error) {
        self.event(Event::Error { path, error });
    }
}

/// Hears nothing and never cancels.
pub struct Quiet;

impl Observer for Quiet {
    fn event(&self, _: Event<'_>) {}
}

/// Fails with [`crate::Error::Interrupted`] when the user asked to stop.
pub fn check_cancel(observer: &dyn Observer) -> crate::Result<()> {
    if observer.cancelled() {
        return Err(crate::Error::Interrupted);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records what it hears, as a test front end would.
    struct Recorder(Mutex<Vec<String>>);

    impl Observer for Recorder {
        fn event(&self, e: Event<'_>) {
            let line = match e {
                Event::Info(m) => format!("info {m}"),
                Event::Verbose(m) => format!("verbose {m}"),
                Event::Warning { path, message } => {
                    format!(
                        "warning {:?} {message}",
                        path.map(|p| p.display().to_string())
                    )
                }
                Event::Error { path, error } => format!("error {} {error}", path.display()),
                other => format!("{other:?}"),
            };
            self.0.lock().unwrap().push(line);
        }
    }

    #[test]
    fn shorthands_arrive_as_events() {
        let r = Recorder(Mutex::new(Vec::new()));
        r.info("a");
        r.verbose("b");
        r.warn("c");
        r.warn_at(Path::new("/x"), "d");
        r.error(Path::new("/y"), &anyhow::anyhow!("e"));
        assert_eq!(
            *r.0.lock().unwrap(),
            [
                "info a",
                "verbose b",
                "warning None c",
                "warning Some(\"/x\") d",
                "error /y e"
            ]
        );
        assert!(check_cancel(&r).is_ok());
    }

    #[test]
    fn cancelling_observer_interrupts() {
        struct Stop;
        impl Observer for Stop {
            fn event(&self, _: Event<'_>) {}
            fn cancelled(&self) -> bool {
                true
            }
        }
        let e = check_cancel(&Stop).unwrap_err();
        assert!(matches!(e, crate::Error::Interrupted));
    }
}
