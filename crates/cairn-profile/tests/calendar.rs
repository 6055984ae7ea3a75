//! Calendar expressions against systemd's own parser (`systemd-analyze calendar`), and their
//! crontab translations.

use cairn_profile::schedule::CalendarEvent;
use chrono::NaiveDateTime;
use std::process::Command;

fn systemd_analyze() -> Option<()> {
    let ok = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CAIRN_REQUIRE_SERVERS").is_none(),
            "systemd-analyze is required (Debian package systemd)"
        );
        eprintln!("skipped: no systemd-analyze");
        return None;
    }
    Some(())
}

/// systemd's next `n` elapses after now, in UTC, and the UTC time just before it was asked.
fn systemd_next(expr: &str, n: usize) -> Option<(NaiveDateTime, Vec<NaiveDateTime>)> {
    let before = chrono::Utc::now().naive_utc();
    let out = Command::new("systemd-analyze")
        .env("TZ", "UTC")
        .args(["calendar", &format!("--iterations={n}"), expr])
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let times = text
        .lines()
        .filter(|l| l.contains("Next elapse:") || l.contains("Iter. #"))
        .map(|l| {
            // "    Next elapse: Sat 2020-04-18 00:00:00 UTC" / "       Iter. #2: Sun …"
            let words: Vec<&str> = l.split_whitespace().collect();
            let n = words.len();
            let s = format!("{} {}", words[n - 3], words[n - 2]);
            NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S").unwrap()
        })
        .collect();
    Some((before, times))
}

const ACCEPTED: &[&str] = &[
    "minutely",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "yearly",
    "annually",
    "quarterly",
    "semiannually",
    "*:0/15",
    "*:00,30",
    "Mon..Fri 10:00",
    "Sat,Sun 0,12:00",
    "Mon..Fri *:00,15,30,45",
    "sun 3:30",
    "Wed, 17:48",
    "Wed *-1",
    "Sat,Thu,Mon..Wed,Sat..Sun",
    "Mon,Sun 2031-*-* 2,1:23",
    "12,14,13,12:20,10,30",
    "12..14:10,20,30",
    "03-05 08:05",
    "*-*-1/2 04:00",
    "*-*-* 02:45:30",
    "2030-02..04-05",
    "monday *-12-* 17:00",
    "10:00,14:00",
    "*-*-15 02:45",
];

const REFUSED: &[&str] = &[
    "Mon 25:00",
    "*:*/15",
    "Fri..Mon",
    "*-13-01",
    "*-02-32",
    "Funday",
    "10:61",
    "every day",
    "",
];

#[test]
fn accepts_what_systemd_accepts_and_refuses_what_it_refuses() {
    if systemd_analyze().is_none() {
        return;
    }
    for e in ACCEPTED {
        assert!(
            CalendarEvent::parse(e).is_ok(),
            "{e}: {:?}",
            CalendarEvent::parse(e)
        );
        assert!(systemd_next(e, 1).is_some(), "systemd refuses {e}");
    }
    for e in REFUSED {
        assert!(CalendarEvent::parse(e).is_err(), "{e} should be refused");
        assert!(
            e.is_empty() || systemd_next(e, 1).is_none(),
            "systemd accepts {e}"
        );
    }
}

#[test]
fn next_elapses_agree_with_systemd() {
    if systemd_analyze().is_none() {
        return;
    }
    for e in ACCEPTED {
        let ev = CalendarEvent::parse(e).unwrap();
        // A second boundary may pass between the two clocks: one retry.
        let mut ok = false;
        for _ in 0..2 {
            let (before, theirs) = systemd_next(e, 5).unwrap();
            let mut ours = Vec::new();
            let mut t = before;
            for _ in 0..theirs.len() {
                match ev.next_after(t) {
                    Some(n) => {
                        ours.push(n);
                        t = n;
                    }
                    None => break,
                }
            }
            if ours == theirs {
                ok = true;
                break;
            }
            eprintln!("{e}: ours {ours:?} systemd {theirs:?}");
        }
        assert!(ok, "{e}: next elapses differ from systemd's");
    }
}

#[test]
fn crontab_fields_for_shorthands_and_expressions() {
    let cases = [
        ("daily", "0 0 * * *"),
        ("hourly", "0 * * * *"),
        ("weekly", "0 0 * * 1"),
        ("monthly", "0 0 1 * *"),
        ("yearly", "0 0 1 1 *"),
        ("quarterly", "0 0 1 1,4,7,10 *"),
        ("minutely", "* * * * *"),
        ("Mon..Fri 10:00", "0 10 * * 1-5"),
        ("*:0/15", "0,15,30,45 * * * *"),
        ("Sat,Sun 0,12:00", "0 0,12 * * 0,6"),
        ("sun 3:30", "30 3 * * 0"),
        ("*-*-15 02:45", "45 2 15 * *"),
        ("12..14:10,20,30", "10,20,30 12-14 * * *"),
    ];
    for (expr, want) in cases {
        let got = CalendarEvent::parse(expr).unwrap().to_cron().unwrap();
        assert_eq!(got, want, "{expr}");
    }
    for expr in ["*-*-* 10:00:30", "2030-01-01", "Mon *-*-1"] {
        let err = CalendarEvent::parse(expr)
            .unwrap()
            .to_cron()
            .unwrap_err()
            .to_string();
        assert!(err.contains(expr) && err.contains("crontab"), "{err}");
    }
}
