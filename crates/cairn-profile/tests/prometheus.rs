//! Prometheus metrics: the textfile for node_exporter's collector (resticprofile's exact
//! names), and a push to a real Pushgateway started on loopback here.

use cairn_profile::metrics::{export, BACKUP_METRICS};
use cairn_profile::outcome::{BackupCounts, RunOutcome};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn backup(profile: &str) -> RunOutcome {
    RunOutcome {
        profile: profile.into(),
        command: "backup".into(),
        success: true,
        duration: Duration::from_millis(2500),
        backup: Some(BackupCounts {
            files_new: 7,
            files_changed: 3,
            files_unmodified: 11,
            dirs_new: 2,
            dirs_unmodified: 5,
            total_files_processed: 21,
            total_bytes_processed: 4096,
            data_added: 1500,
            data_added_packed: 700,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// name{labels} value lines of a text exposition.
fn samples(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            (
                name.to_string(),
                labels.trim_end_matches('}').to_string(),
                value.to_string(),
            )
        })
        .collect()
}

#[test]
fn textfile_has_resticprofile_names_labels_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("home.prom");
    let profile = json!({
        "prometheus-save-to-file": file.to_str().unwrap(),
        "prometheus-labels": [{"host": "web1"}, {"env": "prod"}]
    });
    let mut o = backup("home");
    o.group = Some("nightly".into());
    let w = export(&profile, &json!({}), &o);
    assert!(w.is_empty(), "{w:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    let s = samples(&text);
    let mut names: Vec<&str> = s.iter().map(|(n, _, _)| n.as_str()).collect();
    names.sort();
    let mut want: Vec<&str> = BACKUP_METRICS.iter().map(|(n, _)| *n).collect();
    want.extend(["restic_build_info", "resticprofile_build_info"]);
    want.sort();
    assert_eq!(names, want);
    // resticprofile's names, spelled out (dashboards query these).
    for n in [
        "resticprofile_backup_added_bytes",
        "resticprofile_backup_dir_new",
        "resticprofile_backup_duration_seconds",
        "resticprofile_backup_files_processed",
        "resticprofile_backup_processed_bytes",
        "resticprofile_backup_status",
        "resticprofile_backup_time_seconds",
    ] {
        assert!(text.contains(&format!("# TYPE {n} gauge\n")), "{n}");
    }
    let get = |n: &str| s.iter().find(|(name, _, _)| name == n).unwrap().clone();
    assert_eq!(get("resticprofile_backup_files_new").2, "7");
    assert_eq!(get("resticprofile_backup_files_processed").2, "21");
    assert_eq!(get("resticprofile_backup_added_bytes").2, "1500");
    assert_eq!(get("resticprofile_backup_added_bytes_packed").2, "700");
    assert_eq!(get("resticprofile_backup_processed_bytes").2, "4096");
    assert_eq!(get("resticprofile_backup_duration_seconds").2, "2.5");
    assert_eq!(get("resticprofile_backup_status").2, "2");
    let now = chrono::Utc::now().timestamp();
    let t: i64 = get("resticprofile_backup_time_seconds").2.parse().unwrap();
    assert!((now - t).abs() < 60);
    assert_eq!(
        get("resticprofile_backup_files_new").1,
        r#"env="prod",group="nightly",host="web1",profile="home""#
    );
    assert!(get("resticprofile_build_info").1.contains("version=\""));

    // A failed backup: status 0; a warning (exit 3): status 1.
    let mut f = backup("home");
    f.success = false;
    f.exit_code = 1;
    export(&profile, &json!({}), &f);
    let s = samples(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(
        s.iter()
            .find(|x| x.0 == "resticprofile_backup_status")
            .unwrap()
            .2,
        "0"
    );
    f.exit_code = 3;
    export(&profile, &json!({}), &f);
    let s = samples(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(
        s.iter()
            .find(|x| x.0 == "resticprofile_backup_status")
            .unwrap()
            .2,
        "1"
    );
}

#[test]
fn only_backups_report_and_bad_targets_only_warn() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.prom");
    let profile = json!({"prometheus-save-to-file": file.to_str().unwrap()});
    let mut o = backup("p");
    o.command = "check".into();
    assert!(export(&profile, &json!({}), &o).is_empty());
    assert!(!file.exists());
    let profile = json!({
        "prometheus-save-to-file": dir.path().join("no/such/dir/x.prom").to_str().unwrap(),
        "prometheus-push": "http://127.0.0.1:1/"
    });
    let w = export(&profile, &json!({"send-timeout": "2s"}), &backup("p"));
    assert_eq!(w.len(), 2, "{w:?}");
}

struct Gateway(Child);
impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pushgateway() -> Option<(Gateway, String)> {
    let bin = ["/usr/bin/prometheus-pushgateway", "/usr/bin/pushgateway"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(bin) = bin else {
        assert!(
            std::env::var_os("CAIRN_REQUIRE_SERVERS").is_none(),
            "prometheus-pushgateway is required (Debian package prometheus-pushgateway)"
        );
        eprintln!("skipped: no prometheus-pushgateway");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(bin)
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let gw = Gateway(child);
    let url = format!("http://{addr}");
    for _ in 0..100 {
        if ureq::get(&format!("{url}/-/ready")).call().is_ok() {
            return Some((gw, url));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the Pushgateway did not start");
}

#[test]
fn pushgateway_receives_metrics_labelled_by_profile() {
    let Some((_gw, url)) = pushgateway() else {
        return;
    };
    let home = json!({"prometheus-push": format!("{url}/")});
    assert!(export(&home, &json!({}), &backup("home")).is_empty());
    let mut srv = backup("srv");
    srv.backup.as_mut().unwrap().files_new = 42;
    let custom = json!({"prometheus-push": url, "prometheus-push-job": "cairn/$command", "prometheus-labels": {"host": "db"}});
    let w = export(&custom, &json!({}), &srv);
    assert!(w.is_empty(), "{w:?}");
    let text = ureq::get(&format!("{url}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let s = samples(&text);
    let files_new: Vec<_> = s
        .iter()
        .filter(|x| x.0 == "resticprofile_backup_files_new")
        .collect();
    assert_eq!(files_new.len(), 2, "{files_new:?}");
    let h = files_new
        .iter()
        .find(|x| x.1.contains("profile=\"home\""))
        .unwrap();
    assert!(h.1.contains("job=\"home.backup\""), "{h:?}");
    assert_eq!(h.2, "7");
    let d = files_new
        .iter()
        .find(|x| x.1.contains("profile=\"srv\""))
        .unwrap();
    assert!(
        d.1.contains("job=\"cairn/backup\"") && d.1.contains("host=\"db\""),
        "{d:?}"
    );
    assert_eq!(d.2, "42");
}
