//! Prometheus metrics of a backup, with resticprofile's metric names and labels so that
//! existing dashboards and alerts keep working.
//!
//! How the runner plugs this in: after each command of a profile, call
//! [`export`]`(profile, global, &outcome)`. It does nothing unless the command is `backup`
//! (resticprofile reports backups only) and the profile sets `prometheus-save-to-file` or
//! `prometheus-push`; it returns warnings to print, never an error: metrics must not fail a
//! backup.
//!
//! Metrics (gauges; labels `profile`, `group` when run from a group, and the profile's
//! `prometheus-labels`): `resticprofile_build_info` (plus `version`), `restic_build_info`
//! (plus `version`), and `resticprofile_backup_` + `duration_seconds`, `files_new`,
//! `files_changed`, `files_unmodified`, `dir_new`, `dir_changed`, `dir_unmodified`,
//! `files_processed`, `added_bytes`, `added_bytes_packed`, `processed_bytes`, `status`
//! (0 fail, 1 warning, 2 success), `time_seconds` (end of the run, Unix time).
//! `prometheus-save-to-file` gets the text exposition format, replaced atomically (what
//! node_exporter's textfile collector wants); `prometheus-push` gets the same text POSTed to
//! `URL/metrics/job/JOB` (the Pushgateway's "add" semantics, as resticprofile's client does),
//! JOB being `prometheus-push-job` (`$command` replaced) or `PROFILE.COMMAND`.

use crate::outcome::RunOutcome;
use crate::schedule::values;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

/// The metric names with their help texts, in the order they are written (sorted, as
/// Prometheus' own client writes them). Public for the README and the tests.
pub const BACKUP_METRICS: [(&str, &str); 13] = [
    (
        "resticprofile_backup_added_bytes",
        "Total number of bytes added to the repository.",
    ),
    (
        "resticprofile_backup_added_bytes_packed",
        "Total number of bytes added to the repository after compression.",
    ),
    (
        "resticprofile_backup_dir_changed",
        "Number of directories with changes.",
    ),
    (
        "resticprofile_backup_dir_new",
        "Number of new directories added to the backup.",
    ),
    (
        "resticprofile_backup_dir_unmodified",
        "Number of directories unmodified since last backup.",
    ),
    (
        "resticprofile_backup_duration_seconds",
        "The backup duration (in seconds).",
    ),
    (
        "resticprofile_backup_files_changed",
        "Number of files with changes.",
    ),
    (
        "resticprofile_backup_files_new",
        "Number of new files added to the backup.",
    ),
    (
        "resticprofile_backup_files_processed",
        "Total number of files scanned by the backup for changes.",
    ),
    (
        "resticprofile_backup_files_unmodified",
        "Number of files unmodified since last backup.",
    ),
    (
        "resticprofile_backup_processed_bytes",
        "Total number of bytes scanned for changes.",
    ),
    (
        "resticprofile_backup_status",
        "Backup status: 0=fail, 1=warning, 2=success.",
    ),
    (
        "resticprofile_backup_time_seconds",
        "Last backup run (unixtime).",
    ),
];

/// Writes and pushes the backup's metrics as the profile asks; returns warnings.
pub fn export(profile: &Value, global: &Value, outcome: &RunOutcome) -> Vec<String> {
    let save_to = values::string(profile, "prometheus-save-to-file");
    let push_to = values::string(profile, "prometheus-push");
    if outcome.command != "backup" || (save_to.is_none() && push_to.is_none()) {
        return Vec::new();
    }
    let mut warnings = Vec::new();
    let labels = labels(profile, outcome, &mut warnings);
    let text = render(&labels, outcome, chrono::Utc::now().timestamp());
    if let Some(file) = save_to {
        if let Err(e) = save(Path::new(&file), &text) {
            warnings.push(format!("saving Prometheus metrics to {file}: {e}"));
        }
    }
    if let Some(url) = push_to {
        let job = values::string(profile, "prometheus-push-job")
            .map(|j| expand_command(&j, &outcome.command))
            .unwrap_or_else(|| format!("{}.{}", outcome.profile, outcome.command));
        if let Some(f) = values::string(profile, "prometheus-push-format") {
            if f != "text" {
                warnings.push(format!(
                    "prometheus-push-format '{f}' is not supported; pushing the text format"
                ));
            }
        }
        let timeout = values::duration(global, "send-timeout")
            .ok()
            .flatten()
            .unwrap_or(Duration::from_secs(30));
        if let Err(e) = push(&url, &job, &text, timeout) {
            warnings.push(format!("pushing Prometheus metrics to {url}: {e}"));
        }
    }
    warnings
}

/// `profile`, `group` and the profile's `prometheus-labels` (a table, or a list of tables
/// as resticprofile's documentation writes them in TOML).
fn labels(
    profile: &Value,
    outcome: &RunOutcome,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert("profile".to_string(), outcome.profile.clone());
    if let Some(g) = outcome.group.as_ref().filter(|g| !g.is_empty()) {
        labels.insert("group".to_string(), g.clone());
    }
    let mut add = |m: &serde_json::Map<String, Value>| {
        for (k, v) in m {
            let valid = k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !k.starts_with("__");
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    warnings.push(format!(
                        "prometheus-labels: '{k}' is not a string; left out"
                    ));
                    continue;
                }
            };
            if !valid {
                warnings.push(format!(
                    "prometheus-labels: '{k}' is not a label name; left out"
                ));
                continue;
            }
            labels.insert(k.clone(), v);
        }
    };
    match profile.get("prometheus-labels") {
        Some(Value::Object(m)) => add(m),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_object).for_each(&mut add),
        _ => {}
    }
    labels
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn label_text(labels: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// The text exposition format of one backup's metrics; `now` is the Unix time of
/// `resticprofile_backup_time_seconds`.
pub fn render(labels: &BTreeMap<String, String>, outcome: &RunOutcome, now: i64) -> String {
    let c = outcome.backup.clone().unwrap_or_default();
    // restic's exit code 3 (some files unreadable) is a warning even when the profile's
    // no-error-on-warning made the run a success.
    let status = if outcome.exit_code == 3 {
        1
    } else if outcome.success {
        2
    } else {
        0
    };
    let value = |name: &str| -> String {
        match name {
            "resticprofile_backup_added_bytes" => c.data_added.to_string(),
            "resticprofile_backup_added_bytes_packed" => c.data_added_packed.to_string(),
            "resticprofile_backup_dir_changed" => c.dirs_changed.to_string(),
            "resticprofile_backup_dir_new" => c.dirs_new.to_string(),
            "resticprofile_backup_dir_unmodified" => c.dirs_unmodified.to_string(),
            "resticprofile_backup_duration_seconds" => outcome.duration.as_secs_f64().to_string(),
            "resticprofile_backup_files_changed" => c.files_changed.to_string(),
            "resticprofile_backup_files_new" => c.files_new.to_string(),
            "resticprofile_backup_files_processed" => c.total_files_processed.to_string(),
            "resticprofile_backup_files_unmodified" => c.files_unmodified.to_string(),
            "resticprofile_backup_processed_bytes" => c.total_bytes_processed.to_string(),
            "resticprofile_backup_status" => status.to_string(),
            _ => now.to_string(),
        }
    };
    let version = env!("CARGO_PKG_VERSION");
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, labels: &BTreeMap<String, String>, v: &str| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{} {v}\n",
            label_text(labels)
        );
    };
    let mut with_version = labels.clone();
    with_version.insert("version".into(), version.into());
    // cairn is its own restic: both build infos carry cairn's version.
    gauge(
        "restic_build_info",
        "restic build information.",
        &with_version,
        "1",
    );
    for (name, help) in BACKUP_METRICS {
        gauge(name, help, labels, &value(name));
    }
    gauge(
        "resticprofile_build_info",
        "resticprofile build information.",
        &with_version,
        "1",
    );
    out
}

fn save(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("no file name"))?
        .to_string_lossy();
    crate::status::write_atomically(dir, &name, text.as_bytes())
}

/// `$command` / `${command}` (any case) become the command's name, `$$` a dollar sign.
fn expand_command(job: &str, command: &str) -> String {
    let mut out = String::new();
    let mut rest = job;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        let (name, used) = if let Some(t) = tail.strip_prefix('{') {
            match t.find('}') {
                Some(j) => (&t[..j], j + 2),
                None => ("", 0),
            }
        } else if tail.starts_with('$') {
            ("$", 1)
        } else {
            let n = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            (&tail[..n], n)
        };
        if name == "$" {
            out.push('$');
        } else if name.eq_ignore_ascii_case("command") {
            out.push_str(command);
        } else if used == 0 {
            out.push('$');
        }
        rest = &tail[used..];
    }
    out.push_str(rest);
    out
}

/// The Pushgateway path of a job: plain when it is a safe path segment, else the gateway's
/// base64 form (`job@base64/...`), which any byte survives.
pub fn job_path(job: &str) -> String {
    use base64::Engine;
    let plain = !job.is_empty()
        && job
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-~".contains(&b));
    if plain {
        format!("job/{job}")
    } else {
        let enc = base64::engine::general_purpose::URL_SAFE.encode(job);
        format!(
            "job@base64/{}",
            if enc.is_empty() { "=".into() } else { enc }
        )
    }
}

fn push(url: &str, job: &str, text: &str, timeout: Duration) -> anyhow::Result<()> {
    let target = format!("{}/metrics/{}", url.trim_end_matches('/'), job_path(job));
    let agent = ureq::AgentBuilder::new().timeout(timeout).build();
    agent
        .post(&target)
        .set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        .send_string(text)
        .map_err(|e| match e {
            ureq::Error::Status(code, r) => {
                let mut body = String::new();
                let _ = std::io::Read::take(r.into_reader(), 512).read_to_string(&mut body);
                anyhow::anyhow!("HTTP {code}: {}", body.trim())
            }
            other => anyhow::anyhow!("{other}"),
        })?;
    Ok(())
}
