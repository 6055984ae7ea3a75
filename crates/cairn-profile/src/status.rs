//! The status file (`status-file`): the last result of each command of each profile, in
//! resticprofile's JSON shape, so that monitoring already reading resticprofile's file keeps
//! working.
//!
//! How the runner plugs this in: after each command of a profile (success or failure,
//! including a failure before the command started, such as a failing `run-before`), call
//! [`record`] with the resolved profile and the step's [`RunOutcome`]. It does nothing when
//! the profile has no `status-file`; an error from it should be printed as a warning, never
//! change the run's exit code (resticprofile does the same).
//!
//! Shape (resticprofile's key names): `{"profiles": {NAME: {"backup": {...}, "retention":
//! {...}, "check": {...}}}}`, each entry `success`, `time` (RFC 3339), `error`, `stderr`,
//! `duration` (whole seconds, rounded up), and for backups `files_new`, `files_changed`,
//! `files_unmodified`, `dirs_new`, `dirs_changed`, `dirs_unmodified`, `files_total`,
//! `bytes_added`, `bytes_added_packed`, `bytes_total`. `forget` is recorded as "retention",
//! as resticprofile does; cairn also records `prune` and `copy` under their own names, which
//! resticprofile leaves out. The file is merged, not overwritten: other profiles' entries,
//! other commands' entries and keys cairn does not know are kept. It is replaced atomically
//! (temporary file, fsync, rename) under a lock beside it, so two profiles finishing at once
//! do not lose each other's entry.

use crate::outcome::RunOutcome;
use crate::schedule::values;
use anyhow::{Context, Result};
use serde_json::{json, Map, Value};
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// A status file larger than this is not merged but started afresh (it is not cairn's).
const MAX_STATUS_FILE: u64 = 16 << 20;

/// The entry name resticprofile uses for a command.
pub fn entry_name(command: &str) -> &str {
    match command {
        "forget" => "retention",
        other => other,
    }
}

/// Records `outcome` in the profile's `status-file`, if it has one; returns the file written.
/// Relative paths are taken from the current directory (the resolver makes them absolute
/// the way resticprofile does before this is called).
pub fn record(profile: &Value, outcome: &RunOutcome) -> Result<Option<PathBuf>> {
    let Some(path) = values::string(profile, "status-file") else {
        return Ok(None);
    };
    let no_error_on_warning = profile
        .get("backup")
        .map(|b| values::boolean(b, "no-error-on-warning"))
        .transpose()?
        .flatten()
        .unwrap_or(false);
    let path = PathBuf::from(path);
    record_to(&path, outcome, no_error_on_warning)?;
    Ok(Some(path))
}

/// The JSON entry for one outcome.
pub fn entry(outcome: &RunOutcome, no_error_on_warning: bool) -> Value {
    // restic's exit code 3 (some files could not be read) counts as success for a backup
    // only when the profile says so, as in resticprofile.
    let success = outcome.success
        || (outcome.exit_code == 3 && outcome.command == "backup" && no_error_on_warning);
    let error = if success {
        String::new()
    } else {
        outcome
            .error
            .clone()
            .unwrap_or_else(|| format!("exit status {}", outcome.exit_code))
    };
    let duration = outcome.duration.as_secs() + u64::from(outcome.duration.subsec_nanos() > 0);
    let mut e = json!({
        "success": success,
        "time": outcome.started.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "error": error,
        "stderr": outcome.stderr.clone().unwrap_or_default(),
        "duration": duration,
    });
    if outcome.command == "backup" {
        // resticprofile zeroes the counts of a failed backup; so does cairn.
        let c = outcome
            .backup
            .clone()
            .filter(|_| success)
            .unwrap_or_default();
        let counts = json!({
            "files_new": c.files_new,
            "files_changed": c.files_changed,
            "files_unmodified": c.files_unmodified,
            "dirs_new": c.dirs_new,
            "dirs_changed": c.dirs_changed,
            "dirs_unmodified": c.dirs_unmodified,
            "files_total": c.total_files_processed,
            "bytes_added": c.data_added,
            "bytes_added_packed": c.data_added_packed,
            "bytes_total": c.total_bytes_processed,
        });
        if let (Some(e), Value::Object(c)) = (e.as_object_mut(), counts) {
            e.extend(c);
        }
    }
    e
}

/// Merges the outcome into the status file at `path`.
pub fn record_to(path: &Path, outcome: &RunOutcome, no_error_on_warning: bool) -> Result<()> {
    let ctx = || format!("status file {}", path.display());
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .with_context(ctx)?
        .to_string_lossy()
        .to_string();
    // Serialises read-modify-write between processes; the status file itself is replaced
    // by rename, so it cannot carry the lock.
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!(".{name}.lock")))
        .with_context(ctx)?;
    // SAFETY: flock on a descriptor `lock` owns; released when it is closed below.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(ctx);
    }
    let mut root = read_existing(path);
    let profiles = root
        .entry("profiles")
        .or_insert_with(|| Value::Object(Map::new()));
    if !profiles.is_object() {
        *profiles = Value::Object(Map::new());
    }
    let profile = profiles
        .as_object_mut()
        .with_context(ctx)?
        .entry(outcome.profile.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    if !profile.is_object() {
        *profile = Value::Object(Map::new());
    }
    profile.as_object_mut().with_context(ctx)?.insert(
        entry_name(&outcome.command).to_string(),
        entry(outcome, no_error_on_warning),
    );
    let mut text = serde_json::to_vec_pretty(&Value::Object(root)).with_context(ctx)?;
    text.push(b'\n');
    write_atomically(&dir, &name, &text).with_context(ctx)?;
    drop(lock);
    Ok(())
}

/// The existing file's top-level object, or an empty one when it is absent, unreadable, too
/// large or not a JSON object (resticprofile starts afresh in those cases too).
fn read_existing(path: &Path) -> Map<String, Value> {
    let Ok(f) = std::fs::File::open(path) else {
        return Map::new();
    };
    let mut buf = Vec::new();
    if f.take(MAX_STATUS_FILE + 1).read_to_end(&mut buf).is_err()
        || buf.len() as u64 > MAX_STATUS_FILE
    {
        return Map::new();
    }
    match serde_json::from_slice(&buf) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Writes `data` as `dir/name` so that readers see either the old or the new file, whole.
pub(crate) fn write_atomically(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
