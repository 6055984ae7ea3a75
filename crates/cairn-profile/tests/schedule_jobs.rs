//! Schedules from resticprofile-shaped profiles: jobs, settings, errors, unit texts and
//! crontab files.

use cairn_profile::schedlock::LockMode;
use cairn_profile::schedule::{jobs, Installer, Permission, Priority, Scheduler};
use serde_json::json;
use std::time::Duration;

fn installer(dir: &std::path::Path, scheduler: Scheduler) -> Installer {
    let config = dir.join("profiles.json");
    std::fs::write(&config, "{}").unwrap();
    let mut i = Installer::new(&config, &json!({})).unwrap();
    i.scheduler = scheduler;
    i
}

#[test]
fn jobs_and_settings_from_sections() {
    let profile = json!({
        "backup": {
            "source": ["/srv"],
            "schedule": ["Mon..Fri *:00,30", "Sat,Sun 0,12:00"],
            "schedule-permission": "user",
            "schedule-priority": "background",
            "schedule-lock-mode": "fail",
            "schedule-lock-wait": "15m30s",
            "schedule-log": "/var/log/cairn-home.log",
            "schedule-after-network-online": true
        },
        "prune": {"schedule": {"at": "sun 3:30", "lock-wait": "1h", "permission": "system"}},
        "retention": {"schedule": "daily"},
        "check": {"read-data": true}
    });
    let global = json!({"schedule-defaults": {"lock-wait": "2m", "log": "/tmp/default.log"}});
    let j = jobs("home", &profile, &global).unwrap();
    let commands: Vec<&str> = j.iter().map(|j| j.command.as_str()).collect();
    assert_eq!(commands, ["backup", "forget", "prune"]);
    let b = &j[0];
    assert_eq!(b.events.len(), 2);
    assert_eq!(b.events[1].expression, "Sat,Sun 0,12:00");
    assert_eq!(b.settings.permission, Some(Permission::User));
    assert_eq!(b.settings.priority, Priority::Background);
    assert_eq!(b.settings.lock_mode, LockMode::Fail);
    assert_eq!(b.settings.lock_wait, Some(Duration::from_secs(930)));
    assert_eq!(b.settings.log.as_deref(), Some("/var/log/cairn-home.log"));
    assert!(b.settings.after_network_online);
    let f = &j[1];
    assert_eq!(
        f.settings.lock_wait,
        Some(Duration::from_secs(120)),
        "global schedule-defaults"
    );
    assert_eq!(f.settings.log.as_deref(), Some("/tmp/default.log"));
    assert_eq!(f.settings.permission, None);
    let p = &j[2];
    assert_eq!(p.settings.lock_wait, Some(Duration::from_secs(3600)));
    assert_eq!(p.settings.permission, Some(Permission::System));
}

#[test]
fn bad_schedules_are_one_line_naming_profile_and_expression() {
    let cases = [
        (json!({"backup": {"schedule": "Mon 25:00"}}), "Mon 25:00"),
        (
            json!({"check": {"schedule": ["daily", "every tuesday"]}}),
            "every tuesday",
        ),
        (json!({"prune": {"schedule": "*-*~1"}}), "*-*~1"),
    ];
    for (profile, expr) in cases {
        let err = format!("{:#}", jobs("srv", &profile, &json!({})).unwrap_err());
        assert!(
            err.contains("profile srv") && err.contains(&format!("'{expr}'")),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
    }
    let err = format!(
        "{:#}",
        jobs(
            "srv",
            &json!({"backup": {"schedule": "daily", "schedule-lock-mode": "maybe"}}),
            &json!({})
        )
        .unwrap_err()
    );
    assert!(
        err.contains("schedule-lock-mode 'maybe'") && err.contains("profile srv"),
        "{err}"
    );
}

#[test]
fn systemd_units_name_and_run_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    let dropin = dir.path().join("delay.conf");
    std::fs::write(&dropin, "[Timer]\nRandomizedDelaySec=15m\n").unwrap();
    let env = dir.path().join("env.conf");
    std::fs::write(
        &env,
        "[Service]\nEnvironment=RCLONE_CONFIG=/etc/rclone.conf\n",
    )
    .unwrap();
    let profile = json!({
        "systemd-drop-in-files": ["delay.conf", env.to_str().unwrap()],
        "backup": {"schedule": ["daily", "Sat 12:00"], "schedule-priority": "background", "schedule-after-network-online": true}
    });
    let j = jobs("my home", &profile, &json!({})).unwrap();
    let mut i = installer(dir.path(), Scheduler::Systemd);
    let units = dir.path().join("units");
    i.unit_dir = Some(units.clone());
    let (service, timer) = i.systemd_units(&j[0]).unwrap();
    let exe = std::env::current_exe().unwrap();
    assert!(
        service.contains(&format!(
            "ExecStart={} run-schedule \"backup@my home\" --config {}\n",
            exe.display(),
            dir.path().join("profiles.json").display()
        )),
        "{service}"
    );
    assert!(service.contains(&format!("WorkingDirectory={}\n", dir.path().display())));
    assert!(
        service.contains("CPUSchedulingPolicy=idle\n")
            && service.contains("IOSchedulingClass=idle\n")
    );
    assert!(service.contains("After=network-online.target\n"));
    assert!(
        timer.contains("OnCalendar=daily\nOnCalendar=Sat 12:00\n"),
        "{timer}"
    );
    assert!(timer.contains("Persistent=true\n"));
    assert!(
        timer.contains("Unit=cairn-backup@profile-my\\x20home.service\n"),
        "{timer}"
    );
    let out = i.install(&j).unwrap();
    assert_eq!(out.len(), 2, "{out:?}");
    let base = units.join("cairn-backup@profile-my\\x20home");
    assert!(base.with_extension("timer").exists());
    assert_eq!(
        std::fs::read_to_string(units.join("cairn-backup@profile-my\\x20home.timer.d/delay.conf"))
            .unwrap(),
        "[Timer]\nRandomizedDelaySec=15m\n"
    );
    assert!(units
        .join("cairn-backup@profile-my\\x20home.service.d/env.conf")
        .exists());
    let status = i.status(&["my home".into()], &j).unwrap();
    assert_eq!(status.len(), 1, "{status:?}");
    assert!(status[0].contains("from the schedule"), "{status:?}");
    let removed = i.remove(&["my home".into()]).unwrap();
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert_eq!(std::fs::read_dir(&units).unwrap().count(), 0);
}

#[test]
fn crontab_file_entries_are_added_replaced_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let tab = dir.path().join("crontab");
    std::fs::write(&tab, "# keep me\n5 4 * * * /usr/bin/other-job\n").unwrap();
    let mut i = installer(
        dir.path(),
        Scheduler::CrontabFile {
            path: tab.clone(),
            user: Some("root".into()),
        },
    );
    let global = json!({});
    let home = jobs("home", &json!({"backup": {"schedule": ["Mon..Fri 10:00", "*:0/15"]}, "check": {"schedule": "weekly"}}), &global).unwrap();
    let srv = jobs("srv", &json!({"backup": {"schedule": "daily"}}), &global).unwrap();
    i.install(&home).unwrap();
    i.install(&srv).unwrap();
    let text = std::fs::read_to_string(&tab).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[..2], ["# keep me", "5 4 * * * /usr/bin/other-job"]);
    assert_eq!(lines.len(), 6, "{text}");
    let exe = std::env::current_exe().unwrap();
    let cfg = dir.path().join("profiles.json");
    assert_eq!(
        lines[2],
        format!(
            "0 10 * * 1-5\troot\tcd {} && {} run-schedule backup@home --config {} # cairn:home:backup",
            dir.path().display(),
            exe.display(),
            cfg.display()
        )
    );
    assert!(
        lines[3].starts_with("0,15,30,45 * * * *\troot\t"),
        "{}",
        lines[3]
    );
    assert!(lines[4].starts_with("0 0 * * 1\troot\t") && lines[4].ends_with("# cairn:home:check"));
    assert!(lines[5].starts_with("0 0 * * *\troot\t") && lines[5].ends_with("# cairn:srv:backup"));
    // Installing again replaces the profile's lines instead of adding more.
    let fewer = jobs("home", &json!({"backup": {"schedule": "hourly"}}), &global).unwrap();
    i.install(&fewer).unwrap();
    let text = std::fs::read_to_string(&tab).unwrap();
    assert_eq!(text.lines().count(), 4, "{text}");
    let status = i.status(&["home".into(), "srv".into()], &fewer).unwrap();
    assert_eq!(status.len(), 2, "{status:?}");
    assert!(
        status
            .iter()
            .any(|l| l.starts_with("home backup: crontab `0 * * * *")),
        "{status:?}"
    );
    assert!(
        status
            .iter()
            .any(|l| l.starts_with("srv backup: crontab `0 0 * * *")),
        "{status:?}"
    );
    i.remove(&["home".into()]).unwrap();
    let text = std::fs::read_to_string(&tab).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text.contains("# cairn:srv:backup") && text.contains("/usr/bin/other-job"));
    // Without a user column.
    i.scheduler = Scheduler::CrontabFile {
        path: tab.clone(),
        user: None,
    };
    i.install(&fewer).unwrap();
    let text = std::fs::read_to_string(&tab).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("0 * * * *\tcd ")),
        "{text}"
    );
    // An expression cron cannot express is refused, naming it, and nothing changes.
    let sec = jobs(
        "home",
        &json!({"backup": {"schedule": "*-*-* 10:00:30"}}),
        &global,
    )
    .unwrap();
    let err = format!("{:#}", i.install(&sec).unwrap_err());
    assert!(
        err.contains("'*-*-* 10:00:30'") && err.contains("profile home"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&tab).unwrap(), text);
}

#[test]
fn scheduler_names() {
    use cairn_profile::schedule::scheduler;
    assert_eq!(
        scheduler(&json!({"scheduler": "systemd"})).unwrap(),
        Scheduler::Systemd
    );
    assert_eq!(
        scheduler(&json!({"scheduler": "crond:/usr/bin/crontab"})).unwrap(),
        Scheduler::Crond {
            crontab: "/usr/bin/crontab".into()
        }
    );
    assert_eq!(
        scheduler(&json!({"scheduler": "crontab:-:/etc/cron.d/x"})).unwrap(),
        Scheduler::CrontabFile {
            path: "/etc/cron.d/x".into(),
            user: None
        }
    );
    assert_eq!(
        scheduler(&json!({"scheduler": "crontab:backup:/etc/cron.d/x"})).unwrap(),
        Scheduler::CrontabFile {
            path: "/etc/cron.d/x".into(),
            user: Some("backup".into())
        }
    );
    assert!(scheduler(&json!({"scheduler": "launchd"})).is_err());
}
