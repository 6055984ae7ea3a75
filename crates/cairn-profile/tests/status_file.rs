//! The status file: resticprofile's shape, merged across profiles and commands.

use cairn_profile::outcome::{BackupCounts, RunOutcome};
use serde_json::{json, Value};
use std::time::Duration;

fn outcome(profile: &str, command: &str, success: bool) -> RunOutcome {
    RunOutcome {
        profile: profile.into(),
        command: command.into(),
        success,
        exit_code: if success { 0 } else { 1 },
        started: chrono::Local::now(),
        duration: Duration::from_millis(1500),
        error: (!success).then(|| "unable to open repository".to_string()),
        stderr: (!success).then(|| "Fatal: unable to open repository\n".to_string()),
        backup: (command == "backup").then(|| BackupCounts {
            files_new: 7,
            files_changed: 2,
            total_files_processed: 9,
            total_bytes_processed: 1234,
            data_added: 999,
            data_added_packed: 500,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn read(path: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn entries_merge_across_profiles_and_commands() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("status.json");
    // Something another tool (or a newer cairn) keeps in the file survives.
    std::fs::write(
        &file,
        r#"{"profiles": {"old": {"check": {"success": true}}}, "extra": 1}"#,
    )
    .unwrap();
    let profile = |name: &str| json!({"status-file": file.to_str().unwrap(), "name": name});

    cairn_profile::status::record(&profile("home"), &outcome("home", "backup", true)).unwrap();
    cairn_profile::status::record(&profile("home"), &outcome("home", "forget", true)).unwrap();
    cairn_profile::status::record(&profile("srv"), &outcome("srv", "backup", false)).unwrap();
    cairn_profile::status::record(&profile("srv"), &outcome("srv", "check", true)).unwrap();

    let v = read(&file);
    assert_eq!(v["extra"], 1);
    assert_eq!(v["profiles"]["old"]["check"]["success"], true);
    let b = &v["profiles"]["home"]["backup"];
    assert_eq!(b["success"], true);
    assert_eq!(b["error"], "");
    assert_eq!(b["duration"], 2, "seconds, rounded up");
    assert_eq!(b["files_new"], 7);
    assert_eq!(b["files_changed"], 2);
    assert_eq!(b["files_total"], 9);
    assert_eq!(b["bytes_added"], 999);
    assert_eq!(b["bytes_added_packed"], 500);
    assert_eq!(b["bytes_total"], 1234);
    for key in [
        "files_unmodified",
        "dirs_new",
        "dirs_changed",
        "dirs_unmodified",
    ] {
        assert_eq!(b[key], 0, "{key}");
    }
    assert!(chrono::DateTime::parse_from_rfc3339(b["time"].as_str().unwrap()).is_ok());
    // forget is resticprofile's "retention".
    assert_eq!(v["profiles"]["home"]["retention"]["success"], true);
    assert!(v["profiles"]["home"].get("forget").is_none());
    let f = &v["profiles"]["srv"]["backup"];
    assert_eq!(f["success"], false);
    assert_eq!(f["error"], "unable to open repository");
    assert_eq!(f["stderr"], "Fatal: unable to open repository\n");
    assert_eq!(f["files_new"], 0, "a failed backup's counts are zero");
    assert_eq!(v["profiles"]["srv"]["check"]["success"], true);
    // A later run replaces only its own entry.
    cairn_profile::status::record(&profile("srv"), &outcome("srv", "backup", true)).unwrap();
    let v = read(&file);
    assert_eq!(v["profiles"]["srv"]["backup"]["success"], true);
    assert_eq!(v["profiles"]["srv"]["check"]["success"], true);
    assert_eq!(v["profiles"]["home"]["backup"]["files_new"], 7);
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn warning_counts_as_success_only_with_no_error_on_warning() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.json");
    let mut o = outcome("p", "backup", false);
    o.exit_code = 3;
    o.error = None;
    let p = json!({"status-file": file.to_str().unwrap()});
    cairn_profile::status::record(&p, &o).unwrap();
    assert_eq!(read(&file)["profiles"]["p"]["backup"]["success"], false);
    assert_eq!(
        read(&file)["profiles"]["p"]["backup"]["error"],
        "exit status 3"
    );
    let p = json!({"status-file": file.to_str().unwrap(), "backup": {"no-error-on-warning": true}});
    cairn_profile::status::record(&p, &o).unwrap();
    assert_eq!(read(&file)["profiles"]["p"]["backup"]["success"], true);
}

#[test]
fn no_status_file_no_write_and_garbage_is_replaced() {
    assert!(
        cairn_profile::status::record(&json!({}), &outcome("p", "backup", true))
            .unwrap()
            .is_none()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.json");
    std::fs::write(&file, b"not json at all").unwrap();
    cairn_profile::status::record(
        &json!({"status-file": file.to_str().unwrap()}),
        &outcome("p", "check", true),
    )
    .unwrap();
    assert_eq!(read(&file)["profiles"]["p"]["check"]["success"], true);
}
