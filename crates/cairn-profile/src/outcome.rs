//! What one step of a profile run produced: the shared currency between the runner, the status
//! file, the metrics and the notifications.

use std::time::Duration;

/// Counts from a backup's summary (restic's `summary` message), for status and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupCounts {
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub dirs_new: u64,
    pub dirs_changed: u64,
    pub dirs_unmodified: u64,
    pub total_files_processed: u64,
    pub total_bytes_processed: u64,
    pub data_added: u64,
    /// restic 0.18's `data_added_packed` (after compression); 0 when unknown.
    pub data_added_packed: u64,
    pub snapshot_id: Option<String>,
}

/// One command of one profile, after it ran (or failed to start). Build it with
/// `..Default::default()` so that fields added later need no change at every construction.
#[derive(Debug, Clone, Default)]
pub struct RunOutcome {
    pub profile: String,
    /// The command as resticprofile names it: "backup", "check", "forget", "prune", "copy", …
    pub command: String,
    pub success: bool,
    /// restic's exit code (0 ok, 1 fatal, 3 incomplete, 10 no repository, 11 lock, 12 password, 130).
    pub exit_code: i32,
    pub started: chrono::DateTime<chrono::Local>,
    pub duration: Duration,
    /// The one-line error, when the step (or a hook before it) failed.
    pub error: Option<String>,
    /// What the command wrote to stderr, when the profile asks for it (`stream-error`, status).
    pub stderr: Option<String>,
    /// Set for backups that got as far as a summary.
    pub backup: Option<BackupCounts>,
    /// The command line that failed (a hook's or cairn's own), for `send-after-fail`'s
    /// `ERROR_COMMANDLINE`.
    pub command_line: Option<String>,
    /// The group this run belongs to, when the profile runs as part of a group (a label of
    /// the Prometheus metrics, as in resticprofile).
    pub group: Option<String>,
}
