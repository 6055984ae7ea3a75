//! Which keys a profile may hold (resticprofile's `config/profile.go`), and the check that
//! refuses every other key.

use super::FlagSpec;
use serde_json::{Map, Value};

/// resticprofile's own keys at the profile level (not restic flags).
pub const PROFILE_KEYS: &[&str] = &[
    "description",
    "base-dir",
    "initialize",
    "inherit",
    "lock",
    "force-inactive-lock",
    "stream-error",
    "status-file",
    "prometheus-save-to-file",
    "prometheus-push",
    "prometheus-push-job",
    "prometheus-push-format",
    "prometheus-labels",
    "systemd-drop-in-files",
    "env",
    "env-file",
    "run-before",
    "run-after",
    "run-after-fail",
    "run-finally",
];

/// Hooks and webhooks, in any command's section.
pub const HOOK_KEYS: &[&str] = &[
    "run-before",
    "run-after",
    "run-after-fail",
    "run-finally",
    "send-before",
    "send-after",
    "send-after-fail",
    "send-finally",
];

/// Schedule settings, in the sections of commands that can be scheduled.
pub const SCHEDULE_KEYS: &[&str] = &[
    "schedule",
    "schedule-permission",
    "schedule-run-level",
    "schedule-log",
    "schedule-priority",
    "schedule-lock-mode",
    "schedule-lock-wait",
    "schedule-capture-environment",
    "schedule-ignore-on-battery",
    "schedule-ignore-on-battery-less-than",
    "schedule-after-network-online",
    "schedule-hide-window",
    "schedule-start-when-available",
];

const SCHEDULABLE: &[&str] = &["backup", "check", "prune", "forget", "copy", "retention"];

/// A section's own keys besides hooks and schedules.
pub const SECTION_KEYS: &[&str] = &[];
pub const BACKUP_KEYS: &[&str] = &[
    "check-before",
    "check-after",
    "source",
    "source-base",
    "extended-status",
    "no-error-on-warning",
    "stdin-command",
    "source-relative",
];
pub const COPY_KEYS: &[&str] = &[
    "initialize",
    "initialize-copy-chunker-params",
    "snapshot",
    "repository",
    "repository-file",
    "password-file",
    "password-command",
    "key-hint",
];
pub const INIT_KEYS: &[&str] = &["from-repository"];
pub const RETENTION_KEYS: &[&str] = &["before-backup", "after-backup"];

/// Hooks, webhooks and schedule settings: never flags.
pub fn is_section_key(k: &str) -> bool {
    HOOK_KEYS.contains(&k) || SCHEDULE_KEYS.contains(&k)
}

fn own_keys(section: &str) -> &'static [&'static str] {
    match section {
        "backup" => BACKUP_KEYS,
        "copy" => COPY_KEYS,
        "init" => INIT_KEYS,
        "retention" => RETENTION_KEYS,
        _ => SECTION_KEYS,
    }
}

/// Every key of the profile is resticprofile's or a flag cairn takes there.
pub fn check(profile: &Map<String, Value>, spec: &FlagSpec) -> Result<(), String> {
    for (k, v) in profile {
        if PROFILE_KEYS.contains(&k.as_str()) {
            continue;
        }
        if let Value::Object(section) = v {
            let command = if k == "retention" {
                "forget"
            } else {
                k.as_str()
            };
            if !spec.commands.contains_key(command) {
                return Err(format!(
                    "unknown section {k:?} (neither a resticprofile setting nor a cairn command)"
                ));
            }
            check_section(k, command, section, spec)?;
            continue;
        }
        let flag = if k == "repository" {
            "repo"
        } else {
            k.as_str()
        };
        if !spec.any_command_accepts(flag) {
            return Err(format!(
                "unknown key {k:?} (neither a resticprofile setting nor a cairn flag)"
            ));
        }
    }
    Ok(())
}

fn check_section(
    name: &str,
    command: &str,
    section: &Map<String, Value>,
    spec: &FlagSpec,
) -> Result<(), String> {
    for k in section.keys() {
        let ok = own_keys(name).contains(&k.as_str())
            || (name != "retention" && HOOK_KEYS.contains(&k.as_str()))
            || (SCHEDULABLE.contains(&name) && SCHEDULE_KEYS.contains(&k.as_str()))
            || spec.accepts(command, super::rename_in_section(command, k));
        if !ok {
            return Err(format!(
                "{name}: unknown key {k:?} (neither a resticprofile setting nor a flag of cairn {command})"
            ));
        }
    }
    Ok(())
}
