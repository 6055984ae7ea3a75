//! `cairn schedule install|status|remove` and `cairn run-schedule`: units checked by
//! systemd's own `systemd-analyze verify`, crontab files, bad schedules refused before
//! anything is written, and the schedule lock held by a real other process.

mod common;

use common::{cairn_bin, run_cmd, Run, TempDir};
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn cairn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, OsStr::new(*v))).collect();
    run_cmd(cairn_bin().as_os_str(), &args, &env, Some(dir))
}

fn write_config(dir: &Path, text: &str) -> String {
    let p = dir.join("profiles.json");
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

const CONFIG: &str = r#"{
  "version": "1",
  "global": {"nice": 10},
  "groups": {"nightly": ["home", "srv"]},
  "home": {
    "repository": "/tmp/repo",
    "backup": {"source": ["/home"], "schedule": ["Mon..Fri 02:00", "Sat,Sun 04:30"],
               "schedule-permission": "user_logged_on", "schedule-priority": "background",
               "schedule-after-network-online": true},
    "check": {"schedule": "weekly"}
  },
  "srv": {
    "repository": "/tmp/repo2",
    "forget": {"keep-daily": 7, "schedule": "daily"},
    "prune": {"schedule": "sun 3:30"}
  }
}"#;

fn systemd_analyze() -> bool {
    let ok = common::run_cmd(
        OsStr::new("systemd-analyze"),
        &[OsStr::new("--version")],
        &[],
        None,
    )
    .code
        == Some(0);
    if !ok {
        assert!(
            std::env::var_os("CAIRN_REQUIRE_SERVERS").is_none(),
            "systemd-analyze is required (Debian package systemd)"
        );
        eprintln!("skipped: no systemd-analyze");
    }
    ok
}

#[test]
fn units_pass_systemd_analyze_verify_and_are_removed() {
    if !systemd_analyze() {
        return;
    }
    let dir = TempDir::new("sched-units");
    let cfg = write_config(dir.path(), CONFIG);
    let units = dir.join("units");
    let units_s = units.to_str().unwrap();
    // A group selects its profiles.
    let out = cairn(
        dir.path(),
        &[
            "schedule",
            "install",
            "--config",
            &cfg,
            "-P",
            "nightly",
            "--unit-dir",
            units_s,
        ],
        &[],
    )
    .ok();
    let mut names: Vec<String> = std::fs::read_dir(&units)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "cairn-backup@profile-home.service",
            "cairn-backup@profile-home.timer",
            "cairn-check@profile-home.service",
            "cairn-check@profile-home.timer",
            "cairn-forget@profile-srv.service",
            "cairn-forget@profile-srv.timer",
            "cairn-prune@profile-srv.service",
            "cairn-prune@profile-srv.timer",
        ],
        "{}",
        out.stdout_str()
    );
    let service = std::fs::read_to_string(units.join("cairn-backup@profile-home.service")).unwrap();
    let exec = format!(
        "ExecStart={} run-schedule backup@home --config {cfg}\n",
        cairn_bin().display()
    );
    assert!(service.contains(&exec), "{service}");
    assert!(
        service.contains("Nice=10\n") && service.contains("CPUSchedulingPolicy=idle\n"),
        "{service}"
    );
    let timer = std::fs::read_to_string(units.join("cairn-backup@profile-home.timer")).unwrap();
    assert!(
        timer.contains("OnCalendar=Mon..Fri 02:00\nOnCalendar=Sat,Sun 04:30\n"),
        "{timer}"
    );

    // systemd's own checker: every unit, the timers find their services.
    let files: Vec<String> = names
        .iter()
        .map(|n| units.join(n).to_string_lossy().into_owned())
        .collect();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&files)
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{err}"
    );
    let complaints: Vec<&str> = err.lines().filter(|l| l.contains("cairn-")).collect();
    assert!(complaints.is_empty(), "{complaints:?}");

    // status names each timer; with no systemd the next run is computed from the schedule.
    let st = cairn(
        dir.path(),
        &[
            "schedule",
            "status",
            "--config",
            &cfg,
            "--all",
            "--unit-dir",
            units_s,
        ],
        &[],
    )
    .ok();
    let text = st.stdout_str();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.contains("home backup: ") && text.contains("srv prune: "),
        "{text}"
    );

    cairn(
        dir.path(),
        &[
            "schedule",
            "remove",
            "--config",
            &cfg,
            "-P",
            "home",
            "--unit-dir",
            units_s,
        ],
        &[],
    )
    .ok();
    let left = std::fs::read_dir(&units).unwrap().count();
    assert_eq!(left, 4, "srv's units stay");
    cairn(
        dir.path(),
        &[
            "schedule",
            "remove",
            "--config",
            &cfg,
            "--all",
            "--unit-dir",
            units_s,
        ],
        &[],
    )
    .ok();
    assert_eq!(std::fs::read_dir(&units).unwrap().count(), 0);
}

#[test]
fn bad_schedule_is_one_line_and_writes_nothing() {
    let dir = TempDir::new("sched-bad");
    let cfg = write_config(
        dir.path(),
        r#"{"home": {"backup": {"schedule": ["daily", "Mon..Fri 25:00"]}}, "srv": {"backup": {"schedule": "daily"}}}"#,
    );
    let units = dir.join("units");
    let r = cairn(
        dir.path(),
        &[
            "schedule",
            "install",
            "--config",
            &cfg,
            "--all",
            "--unit-dir",
            units.to_str().unwrap(),
        ],
        &[],
    )
    .expect_code(1);
    let err = r.stderr_str();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains(&cfg) && err.contains("profile home") && err.contains("'Mon..Fri 25:00'"),
        "{err}"
    );
    assert!(!units.exists(), "nothing is written");
    // A profile that does not exist.
    let r = cairn(
        dir.path(),
        &["schedule", "install", "--config", &cfg, "-P", "nope"],
        &[],
    )
    .expect_code(1);
    assert!(
        r.stderr_str()
            .contains("no profile or group named \"nope\""),
        "{}",
        r.stderr_str()
    );
}

#[test]
fn crontab_file_scheduler() {
    let dir = TempDir::new("sched-cron");
    let tab = dir.join("cairn.cron");
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"{{"global": {{"scheduler": "crontab:-:{}"}}, "home": {{"backup": {{"schedule": ["*:0/15"]}}, "prune": {{"schedule": "Sat 05:00"}}}}}}"#,
            tab.display()
        ),
    );
    cairn(
        dir.path(),
        &["schedule", "install", "--config", &cfg, "-P", "home"],
        &[],
    )
    .ok();
    let text = std::fs::read_to_string(&tab).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("0,15,30,45 * * * *\tcd "), "{text}");
    assert!(lines[0].contains(&format!(
        "{} run-schedule backup@home --config {cfg}",
        cairn_bin().display()
    )));
    assert!(lines[1].starts_with("0 5 * * 6\t"), "{text}");
    let st = cairn(
        dir.path(),
        &["schedule", "status", "--config", &cfg, "-P", "home"],
        &[],
    )
    .ok();
    assert_eq!(st.stdout_str().lines().count(), 2, "{}", st.stdout_str());
    cairn(
        dir.path(),
        &["schedule", "remove", "--config", &cfg, "-P", "home"],
        &[],
    )
    .ok();
    assert_eq!(std::fs::read_to_string(&tab).unwrap().trim(), "");
}

#[test]
fn run_schedule_respects_the_profile_lock() {
    if Command::new("flock").arg("--version").output().is_err() {
        eprintln!("skipped: no flock(1)");
        return;
    }
    let dir = TempDir::new("sched-lock");
    let cfg = write_config(
        dir.path(),
        r#"{"home": {"backup": {"schedule": "daily", "schedule-lock-mode": "fail"}},
            "srv": {"backup": {"schedule": "daily", "schedule-lock-wait": "2s"}}}"#,
    );
    let runtime = dir.join("run");
    std::fs::create_dir_all(runtime.join("cairn")).unwrap();
    let env = [("XDG_RUNTIME_DIR", runtime.to_str().unwrap())];
    // Another process holds the profiles' locks (as a running scheduled job would).
    let mut holders = Vec::new();
    for p in ["home", "srv"] {
        let lock = runtime.join("cairn").join(format!("profile-{p}.lock"));
        holders.push(
            Command::new("flock")
                .arg("-o")
                .arg(&lock)
                .args(["sleep", "20"])
                .spawn()
                .unwrap(),
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let r = cairn(
        dir.path(),
        &["run-schedule", "backup@home", "--config", &cfg],
        &env,
    )
    .expect_code(11);
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(
        r.stderr_str().contains("profile home is already running"),
        "{}",
        r.stderr_str()
    );
    let t = Instant::now();
    let r = cairn(
        dir.path(),
        &["run-schedule", "backup@srv", "--config", &cfg],
        &env,
    )
    .expect_code(11);
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "waits schedule-lock-wait"
    );
    assert!(
        r.stderr_str().contains("after waiting 2s"),
        "{}",
        r.stderr_str()
    );
    for mut h in holders {
        h.kill().unwrap();
        h.wait().unwrap();
    }
    let r = cairn(
        dir.path(),
        &["run-schedule", "restore@home", "--config", &cfg],
        &env,
    )
    .expect_code(1);
    assert!(
        r.stderr_str().contains("COMMAND@PROFILE"),
        "{}",
        r.stderr_str()
    );
}

/// A version 2 group's `schedules`: `-P GROUP` writes one timer per scheduled command that
/// runs the whole group (checked by `systemd-analyze verify`), and `run-schedule` of that
/// job backs up every profile of the group.
#[test]
fn group_schedules_write_units_that_run_the_group() {
    let dir = TempDir::new("sched-group");
    std::fs::write(dir.join("pw"), "group-pw\n").unwrap();
    for p in ["a", "b"] {
        std::fs::create_dir_all(dir.join(format!("src-{p}"))).unwrap();
        std::fs::write(dir.join(format!("src-{p}/f")), p).unwrap();
    }
    let text = r#"
version = "2"
[profiles.a]
repository = "repo-a"
password-file = "pw"
initialize = true
[profiles.a.backup]
source = ["src-a"]
[profiles.b]
inherit = "a"
repository = "repo-b"
[profiles.b.backup]
source = ["src-b"]
[groups.nightly]
profiles = ["a", "b"]
[groups.nightly.schedules.backup]
at = ["*-*-* 02:30", "Sat 12:00"]
after-network-online = true
lock-wait = "1m"
"#;
    let cfg = dir.join("profiles.toml");
    std::fs::write(&cfg, text).unwrap();
    let cfg = cfg.to_string_lossy().into_owned();
    let units = dir.join("units");
    let units_s = units.to_str().unwrap();
    let sched = |action: &str, profile: &str| {
        cairn(
            dir.path(),
            &[
                "schedule",
                action,
                "--config",
                &cfg,
                "-P",
                profile,
                "--unit-dir",
                units_s,
            ],
            &[],
        )
    };
    sched("install", "nightly").ok();
    let mut names: Vec<String> = std::fs::read_dir(&units)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "cairn-backup@profile-nightly.service",
            "cairn-backup@profile-nightly.timer"
        ]
    );
    let service =
        std::fs::read_to_string(units.join("cairn-backup@profile-nightly.service")).unwrap();
    let exec = format!(
        "ExecStart={} run-schedule backup@nightly --config {cfg}\n",
        cairn_bin().display()
    );
    assert!(service.contains(&exec), "{service}");
    assert!(
        service.contains("After=network-online.target") && service.contains("group nightly"),
        "{service}"
    );
    let timer = std::fs::read_to_string(units.join("cairn-backup@profile-nightly.timer")).unwrap();
    assert!(
        timer.contains("OnCalendar=*-*-* 02:30\nOnCalendar=Sat 12:00\n"),
        "{timer}"
    );
    if systemd_analyze() {
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .args(names.iter().map(|n| units.join(n)))
            .env("SYSTEMD_LOG_LEVEL", "notice")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "systemd-analyze verify failed:\n{err}"
        );
        let complaints: Vec<&str> = err.lines().filter(|l| l.contains("cairn-")).collect();
        assert!(complaints.is_empty(), "{complaints:?}");
    }

    // What the timer runs: the group, each profile in turn.
    let runtime = dir.join("run");
    let home = dir.join("home");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let r = cairn(
        dir.path(),
        &["run-schedule", "backup@nightly", "--config", &cfg],
        &[
            ("XDG_RUNTIME_DIR", runtime.to_str().unwrap()),
            ("HOME", home.to_str().unwrap()),
            ("XDG_CACHE_HOME", home.join(".cache").to_str().unwrap()),
            ("CAIRN_TEST_KDF", "fast"),
        ],
    )
    .ok();
    let err = r.stderr_str();
    for p in ["a", "b"] {
        assert!(
            err.contains(&format!("group 'nightly': profile '{p}': backup succeeded")),
            "{err}"
        );
        let snaps =
            common::Tool::cairn(&dir.join(format!("repo-{p}")), "group-pw").snapshots_json();
        assert_eq!(snaps.len(), 1, "{snaps:?}");
    }

    sched("remove", "nightly").ok();
    assert_eq!(std::fs::read_dir(&units).unwrap().count(), 0);

    // A command that cannot be scheduled: one line, nothing written.
    std::fs::write(
        &cfg,
        text.replace("schedules.backup]", "schedules.restore]"),
    )
    .unwrap();
    let r = sched("install", "nightly").expect_code(1);
    let err = r.stderr_str();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("group nightly") && err.contains("\"restore\""),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&units).unwrap().count(), 0);
}

/// A scheduled run applies `schedule-lock-mode` and `schedule-lock-wait` to the profile's
/// `lock` file too, as resticprofile does: it waits for a manual run holding it (here another
/// process holding the file), fails at once with `fail`, and takes no lock with `ignore`.
#[test]
fn scheduled_runs_wait_for_the_profile_lock_file_as_configured() {
    if Command::new("flock").arg("--version").output().is_err() {
        eprintln!("skipped: no flock(1)");
        return;
    }
    let dir = TempDir::new("sched-profile-lock");
    std::fs::write(dir.join("pw"), "lock-pw\n").unwrap();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/f"), "x").unwrap();
    let config = |mode: &str| {
        write_config(
            dir.path(),
            &format!(
                r#"{{"p": {{"repository": "repo", "password-file": "pw", "initialize": true,
                    "lock": "p.lock",
                    "backup": {{"source": ["src"], "schedule": "daily",
                                "schedule-lock-mode": "{mode}", "schedule-lock-wait": "20s"}}}}}}"#
            ),
        )
    };
    let runtime = dir.join("run");
    let home = dir.join("home");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let cache = home.join(".cache");
    let env = [
        ("XDG_RUNTIME_DIR", runtime.to_str().unwrap()),
        ("HOME", home.to_str().unwrap()),
        ("XDG_CACHE_HOME", cache.to_str().unwrap()),
        ("CAIRN_TEST_KDF", "fast"),
    ];
    let hold = |secs: &str| {
        let h = Command::new("flock")
            .arg("-o")
            .arg(dir.join("p.lock"))
            .args(["sleep", secs])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        h
    };

    let cfg = config("fail");
    let mut h = hold("20");
    let t = Instant::now();
    let r = cairn(
        dir.path(),
        &["run-schedule", "backup@p", "--config", &cfg],
        &env,
    )
    .expect_code(1);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(
        r.stderr_str()
            .contains("another process is already running this profile"),
        "{}",
        r.stderr_str()
    );
    // ignore: no lock file taken, the run goes ahead.
    let cfg = config("ignore");
    cairn(
        dir.path(),
        &["run-schedule", "backup@p", "--config", &cfg],
        &env,
    )
    .ok();
    h.kill().unwrap();
    h.wait().unwrap();

    // default: waits up to schedule-lock-wait for the holder to finish.
    let cfg = config("default");
    let mut h = hold("3");
    let t = Instant::now();
    cairn(
        dir.path(),
        &["run-schedule", "backup@p", "--config", &cfg],
        &env,
    )
    .ok();
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "waited for the holder"
    );
    h.wait().unwrap();
    let snaps = common::Tool::cairn(&dir.join("repo"), "lock-pw").snapshots_json();
    assert_eq!(snaps.len(), 2, "{snaps:?}");
}
