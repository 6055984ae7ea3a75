//! `forget` against restic 0.14: hundreds of snapshots with times spread over years (bursts in
//! one hour or day, DST changes, year and ISO-week boundaries, foreign UTC offsets, one in
//! the future), several hosts, tags and path sets. For each policy, grouping and filter both
//! programs decide in a dry run (`--json`, compared in full: keep, remove, reasons, counters),
//! then each forgets for real in its own copy of the repository and the snapshot files left
//! must be the same.
//!
//! A few snapshots come from real backups (cairn's and restic's `backup --time --host --tag`);
//! the bulk is written with cairn-core as encrypted snapshot files referring to the tree of a
//! real backup, which is what a backup writes last.

mod common;

use cairn_backend::FileType;
use cairn_core::format::gotime::format_rfc3339_nano;
use cairn_core::repository::Repository;
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc, Weekday};
use common::{run_cmd, TempDir, Tool};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PW: &str = "forget-test";
const BERLIN: &str = "Europe/Berlin";

/// A repository with many snapshots, made once per test.
struct Fixture {
    _dir: TempDir,
    dir: PathBuf,
    repo: PathBuf,
    /// The real backups' source directory (its absolute path is their only path).
    src: PathBuf,
}

/// A small deterministic generator (64-bit LCG; the high bits are good enough here).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }
}

/// The instant of the last Sunday of a month at 01:00 UTC (when EU clocks change).
fn eu_switch(year: i32, month: u32) -> i64 {
    let mut d = NaiveDate::from_ymd_opt(year, month, 31).expect("valid date");
    while d.weekday() != Weekday::Sun {
        d = d.pred_opt().expect("valid date");
    }
    d.and_hms_opt(1, 0, 0)
        .expect("valid time")
        .and_utc()
        .timestamp()
}

/// Europe/Berlin's offset at a Unix time (EU rules, valid since 1996).
fn berlin_offset(secs: i64) -> i32 {
    let year = DateTime::from_timestamp(secs, 0).expect("in range").year();
    if secs >= eu_switch(year, 3) && secs < eu_switch(year, 10) {
        7200
    } else {
        3600
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, mo, d)
        .and_then(|d| d.and_hms_opt(h, mi, 0))
        .expect("valid time")
        .and_utc()
        .timestamp()
}

/// A time as restic writes it, at the given offset.
fn rfc3339(secs: i64, nanos: u32, offset: i32) -> String {
    let t = DateTime::<Utc>::from_timestamp(secs, nanos)
        .expect("in range")
        .with_timezone(&FixedOffset::east_opt(offset).expect("valid offset"));
    format_rfc3339_nano(&t)
}

impl Fixture {
    fn new() -> Fixture {
        let dir = TempDir::new("cairn-forget-");
        let root = dir.path().to_path_buf();
        let repo = root.join("repo");
        let src = root.join("src");
        std::fs::create_dir_all(src.join("sub")).expect("mkdir");
        std::fs::write(src.join("a.txt"), b"forget me not\n").expect("write");
        std::fs::write(src.join("sub/b.txt"), b"bbb\n").expect("write");
        let cairn = Tool::cairn(&repo, PW);
        let restic = Tool::restic(&repo, PW);
        cairn.run(&["init"]).ok();
        let s = src.to_str().expect("utf-8 path");
        let tz = [("TZ", BERLIN)];
        // Real backups, by both programs, at local times (not in a DST gap or fold, where
        // cairn's and restic's --time differ; forget itself is compared there below).
        for (time, host, tags) in [
            ("2018-06-10 10:00:00", "alpha", "real,x"),
            ("2021-12-31 23:59:00", "alpha", "daily"),
            ("2020-10-25 01:30:00", "beta", "real"),
        ] {
            cairn
                .run_env(
                    None,
                    &tz,
                    &[
                        "backup", "-q", "--time", time, "--host", host, "--tag", tags, s,
                    ],
                )
                .ok();
        }
        for (time, host, tags) in [
            ("2019-03-31 03:30:00", "beta", "real"),
            ("2020-10-25 02:30:00", "beta", "real,r"),
            ("2024-01-01 00:00:30", "alpha", "daily"),
        ] {
            restic
                .run_env(
                    None,
                    &tz,
                    &[
                        "backup", "-q", "--time", time, "--host", host, "--tag", tags, s,
                    ],
                )
                .ok();
        }
        let fx = Fixture {
            _dir: dir,
            dir: root,
            repo,
            src,
        };
        fx.write_bulk();
        fx
    }

    /// Writes the bulk of the snapshots straight into the repository.
    fn write_bulk(&self) {
        let backend = cairn_backend::open(self.repo.to_str().expect("utf-8 path"))
            .unwrap_or_else(|e| panic!("open backend: {e}"));
        let repo = Repository::open(Arc::from(backend), PW.as_bytes(), None)
            .unwrap_or_else(|e| panic!("open repository: {e:#}"));
        let any = repo.list_snapshots().expect("list snapshots");
        let tree = any.first().expect("a real snapshot").1.tree.to_hex();

        let mut rng = Rng(0x5eed_f07e_e77e_u64);
        let mut instants: Vec<i64> = Vec::new();
        let start = utc(2016, 1, 1, 0, 0);
        let end = utc(2024, 6, 30, 0, 0);
        // Spread out over eight and a half years.
        for _ in 0..150 {
            instants.push(start + rng.below((end - start) as u64) as i64);
        }
        // Bursts: several within hours of each other (same hour, same day).
        for _ in 0..25 {
            let t = start + rng.below((end - start) as u64) as i64;
            for _ in 0..2 + rng.below(6) {
                instants.push(t + rng.below(3 * 3600) as i64);
            }
        }
        // Around the DST changes: the spring gap and the autumn fold (02:xx twice).
        for year in 2017..=2023 {
            for month in [3, 10] {
                let sw = eu_switch(year, month);
                for k in -4i64..=5 {
                    instants.push(sw + k * 17 * 60 + rng.below(60) as i64);
                }
            }
        }
        // Around New Year (local) and so around ISO week-year changes.
        for year in 2016..=2024 {
            let ny = utc(year, 1, 1, 0, 0) - 3600;
            for k in -3i64..=3 {
                instants.push(ny + k * 23 * 60 + rng.below(60) as i64);
            }
        }
        let hosts = ["alpha", "alpha", "beta", "beta", "gamma"];
        let tag_sets: [&[&str]; 7] = [
            &[],
            &[],
            &["daily"],
            &["weekly", "x"],
            &["x", "daily"],
            &["keep"],
            &["daily", "x"],
        ];
        let path_sets: [&[&str]; 5] = [
            &["/data"],
            &["/data"],
            &["/data", "/etc"],
            &["/etc", "/data"],
            &["/home"],
        ];
        let mut seen: HashSet<(i64, u32)> = HashSet::new();
        let mut docs: Vec<Value> = Vec::new();
        let mut add =
            |secs: i64, nanos: u32, offset: i32, host: &str, tags: &[&str], paths: &[&str]| {
                // No two snapshots at one instant: restic orders those by chance.
                if !seen.insert((secs, nanos)) {
                    return;
                }
                let mut doc = json!({
                    "time": rfc3339(secs, nanos, offset),
                    "tree": tree,
                    "paths": paths,
                    "hostname": host,
                    "username": "tester",
                });
                if !tags.is_empty() {
                    doc["tags"] = json!(tags);
                }
                docs.push(doc);
            };
        for t in instants {
            let nanos = if rng.below(3) == 0 {
                0
            } else {
                rng.below(1_000_000_000) as u32
            };
            let host = rng.pick(&hosts);
            // gamma's snapshots carry foreign offsets (parsed as fixed zones, not local).
            let offset = if host == "gamma" {
                rng.pick(&[19_800, -25_200, 0, 3600])
            } else {
                berlin_offset(t)
            };
            let tags: &[&str] = rng.pick(&tag_sets);
            let paths: &[&str] = rng.pick(&path_sets);
            add(t, nanos, offset, host, tags, paths);
        }
        // In the future: never "the newest snapshot" keep-within counts back from.
        add(
            utc(2091, 1, 1, 12, 0),
            0,
            3600,
            "alpha",
            &["daily"],
            &["/data"],
        );
        add(utc(2091, 2, 1, 12, 0), 0, 3600, "gamma", &[], &["/home"]);
        // delta: the newest snapshot is in winter, five months back is summer. In Berlin
        // time Go counts back to 2022-08-15 12:00+02:00 (10:00Z), not 11:00Z.
        for (t, off) in [
            ("2022-08-15T09:59:00Z", 7200),
            ("2022-08-15T10:30:00Z", 7200),
            ("2022-08-15T11:30:00Z", 7200),
            ("2022-09-01T10:00:00Z", 7200),
            ("2022-12-24T10:00:00Z", 3600),
            ("2023-01-15T11:00:00Z", 3600),
        ] {
            let t = DateTime::parse_from_rfc3339(t).expect("valid time");
            add(t.timestamp(), 0, off, "delta", &[], &["/data"]);
        }
        assert!(docs.len() >= 400, "only {} snapshots", docs.len());
        for d in &docs {
            repo.save_unpacked(FileType::Snapshot, d.to_string().as_bytes())
                .expect("save snapshot");
        }
    }

    /// A fresh copy of the repository.
    fn copy(&self, name: &str) -> PathBuf {
        let dst = self.dir.join(name);
        run_cmd(
            OsStr::new("cp"),
            &[OsStr::new("-a"), self.repo.as_os_str(), dst.as_os_str()],
            &[],
            None,
        )
        .ok();
        dst
    }
}

fn snapshot_files(repo: &Path) -> BTreeSet<String> {
    std::fs::read_dir(repo.join("snapshots"))
        .expect("read snapshots/")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Drops what restic 0.14 does not know (and so does not print) from a snapshot object.
fn strip(s: &mut Value) {
    if let Some(o) = s.as_object_mut() {
        o.remove("program_version");
        o.remove("summary");
    }
}

/// forget's JSON with restic's random group order replaced by a sorted one.
fn normalize(stdout: &[u8], who: &str) -> Value {
    if stdout.is_empty() {
        return Value::Null;
    }
    let mut v: Value = serde_json::from_slice(stdout)
        .unwrap_or_else(|e| panic!("{who}: not JSON ({e}): {}", String::from_utf8_lossy(stdout)));
    let groups = v
        .as_array_mut()
        .unwrap_or_else(|| panic!("{who}: not a JSON array"));
    for g in groups.iter_mut() {
        for k in ["keep", "remove"] {
            if let Some(a) = g[k].as_array_mut() {
                a.iter_mut().for_each(strip);
            }
        }
        if let Some(a) = g["reasons"].as_array_mut() {
            for r in a {
                strip(&mut r["snapshot"]);
            }
        }
    }
    groups.sort_by_key(|g| json!([g["host"], g["tags"], g["paths"]]).to_string());
    v
}

/// Per group (by key): the short ids kept and removed.
fn decisions(v: &Value) -> BTreeMap<String, [BTreeSet<String>; 2]> {
    let ids = |l: &Value| -> BTreeSet<String> {
        l.as_array()
            .into_iter()
            .flatten()
            .map(|s| s["short_id"].as_str().unwrap_or("?").to_string())
            .collect()
    };
    v.as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            (
                format!("{} {} {}", g["host"], g["tags"], g["paths"]),
                [ids(&g["keep"]), ids(&g["remove"])],
            )
        })
        .collect()
}

/// Where two JSON outputs decide differently, one line per group; empty when they agree.
fn differences(restic: &Value, cairn: &Value) -> String {
    let (r, c) = (decisions(restic), decisions(cairn));
    let keys: BTreeSet<&String> = r.keys().chain(c.keys()).collect();
    let mut out = String::new();
    for k in keys {
        match (r.get(k), c.get(k)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => {
                let only = |x: &BTreeSet<String>, y: &BTreeSet<String>| {
                    x.difference(y).cloned().collect::<Vec<_>>().join(" ")
                };
                out.push_str(&format!(
                    "group {k}: kept by restic only [{}], kept by cairn only [{}]\n",
                    only(&a[0], &b[0]),
                    only(&b[0], &a[0])
                ));
            }
            (a, _) => out.push_str(&format!(
                "group {k}: only {} has it\n",
                if a.is_some() { "restic" } else { "cairn" }
            )),
        }
    }
    out
}

fn kept_count(v: &Value) -> usize {
    decisions(v).values().map(|[k, _]| k.len()).sum()
}

fn removed_ids(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["remove"].as_array().cloned().unwrap_or_default())
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect()
}

/// Text output with restic's random group order sorted away: the parts before each
/// "snapshots for (" header, sorted, and what follows the last group.
fn text_parts(s: &str) -> (Vec<String>, String) {
    let cut = s
        .find("Would have removed the following snapshots:")
        .or_else(|| {
            s.find("] 100.00%")
                .and_then(|i| s[..i].rfind('\n').map(|n| n + 1))
        })
        .unwrap_or(s.len());
    let (body, tail) = s.split_at(cut);
    let mut parts: Vec<String> = body.split("snapshots for (").map(String::from).collect();
    parts.sort();
    // The progress line's elapsed time may differ.
    let tail = tail
        .lines()
        .map(|l| match (l.starts_with('['), l.find(']')) {
            (true, Some(i)) => format!("[t{}", &l[i..]),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    (parts, tail)
}

struct Outcome {
    json: Value,
    removed: usize,
    kept: usize,
}

/// cairn's tables as restic 0.14 prints them: without the Size column that restic 0.18 (and
/// so cairn) adds when a snapshot has a summary (`compat018_more.rs` compares cairn's tables
/// with 0.18's, Size column included).
fn without_size_column(out: &str) -> String {
    let mut col: Option<usize> = None;
    let mut lines = Vec::new();
    for line in out.lines() {
        if line.starts_with("ID  ") {
            col = line
                .rfind("  Size")
                .filter(|i| line[i + 2..].trim_end() == "Size")
                .map(|i| i + 2);
        }
        let mut l = line.to_string();
        if let Some(c) = col {
            if !l.is_empty() && l.bytes().all(|b| b == b'-') {
                l.truncate(c - 2);
            } else if l.len() > c {
                l.truncate(c);
                l.truncate(l.trim_end().len());
            }
        }
        if line.ends_with(" snapshots") && !line.starts_with(' ') && line.split(' ').count() == 2 {
            col = None;
        }
        lines.push(l);
    }
    let mut s = lines.join("\n");
    if out.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// Runs `forget ARGS` with both programs: a dry run with --json on the shared repository, then
/// for real in a copy each; everything must agree. With `text`, the text output of the real
/// run (with -v, so groups have headers) is compared too.
fn check(fx: &Fixture, tz: &str, args: &[&str], text: bool) -> Outcome {
    let env = [("TZ", tz)];
    let dry: Vec<&str> = [&["forget", "--dry-run", "--json"], args].concat();
    let r = Tool::restic(&fx.repo, PW).run_env(None, &env, &dry).ok();
    let c = Tool::cairn(&fx.repo, PW).run_env(None, &env, &dry).ok();
    let want = normalize(&r.stdout, "restic");
    let got = normalize(&c.stdout, "cairn");
    if want != got {
        let diff = differences(&want, &got);
        assert!(
            diff.is_empty(),
            "forget {args:?} (TZ={tz}): cairn and restic decide differently:\n{diff}"
        );
        let (wp, gp) = (
            serde_json::to_string_pretty(&want).unwrap_or_default(),
            serde_json::to_string_pretty(&got).unwrap_or_default(),
        );
        let line = wp
            .lines()
            .zip(gp.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "forget {args:?} (TZ={tz}): same decisions, different JSON at line {line}:\nrestic: {}\ncairn:  {}",
            wp.lines().nth(line).unwrap_or(""),
            gp.lines().nth(line).unwrap_or("")
        );
    }
    let removed = removed_ids(&want);

    let n = fx.dir.read_dir().map(|d| d.count()).unwrap_or(0);
    let (rrepo, crepo) = (fx.copy(&format!("r{n}")), fx.copy(&format!("c{n}")));
    let before = snapshot_files(&fx.repo);
    let mut real: Vec<&str> = vec!["forget"];
    if text {
        real.push("-v");
    }
    real.extend(args);
    let r = Tool::restic(&rrepo, PW).run_env(None, &env, &real).ok();
    let c = Tool::cairn(&crepo, PW).run_env(None, &env, &real).ok();
    let (rleft, cleft) = (snapshot_files(&rrepo), snapshot_files(&crepo));
    assert_eq!(cleft, rleft, "forget {args:?}: different snapshots left");
    // (Explicit ids print no JSON.)
    if !want.is_null() {
        let expect: BTreeSet<String> = before.difference(&removed).cloned().collect();
        assert_eq!(
            cleft, expect,
            "forget {args:?}: the dry run's remove list is not what went"
        );
    }
    if text {
        assert_eq!(
            text_parts(&without_size_column(&c.stdout_str())),
            text_parts(&r.stdout_str()),
            "forget {args:?}: text output differs\n--- cairn ---\n{}\n--- restic ---\n{}",
            c.stdout_str(),
            r.stdout_str()
        );
    }
    for dir in [rrepo, crepo] {
        let _ = std::fs::remove_dir_all(dir);
    }
    Outcome {
        json: want,
        removed: before.len() - rleft.len(),
        kept: rleft.len(),
    }
}

#[test]
fn each_keep_policy_and_combinations_match_restic() {
    require_restic!();
    let fx = Fixture::new();
    for args in [
        vec!["--keep-last", "7"],
        vec!["--keep-hourly", "40"],
        vec!["--keep-daily", "30"],
        vec!["--keep-weekly", "25"],
        vec!["--keep-monthly", "20"],
        vec!["--keep-yearly", "4"],
        vec![
            "-l", "2", "-H", "5", "-d", "7", "-w", "4", "-m", "6", "-y", "3",
        ],
        vec!["--keep-daily", "1000", "--keep-hourly", "1000"],
        // Alone, --keep-tag daily would empty the groups without that tag: restic 0.14 then
        // removes them whole, restic 0.18 (and cairn) refuse; compat018.rs checks that.
        vec!["--keep-tag", "daily", "--keep-last", "1"],
        vec![
            "--keep-tag",
            "weekly,x",
            "--keep-tag",
            "keep",
            "--keep-last",
            "1",
        ],
        vec!["--keep-tag", "", "--keep-last", "1"],
    ] {
        let o = check(&fx, BERLIN, &args, true);
        assert!(
            o.removed > 0 && o.kept > 0,
            "{args:?}: {} kept, {} removed",
            o.kept,
            o.removed
        );
    }
}

#[test]
fn keep_within_policies_match_restic() {
    require_restic!();
    let fx = Fixture::new();
    for args in [
        vec!["--keep-within", "1y2m"],
        vec!["--keep-within", "40d12h"],
        vec!["--keep-within", "5m", "--host", "delta"],
        vec!["--keep-within-hourly", "3d"],
        vec!["--keep-within-daily", "2m"],
        vec!["--keep-within-weekly", "6m"],
        vec!["--keep-within-monthly", "2y"],
        vec!["--keep-within-yearly", "5y"],
        vec![
            "--keep-within-hourly",
            "1d",
            "--keep-within-daily",
            "1m",
            "--keep-within-weekly",
            "3m",
            "--keep-within-monthly",
            "1y",
            "--keep-within-yearly",
            "4y",
            "--keep-last",
            "3",
        ],
    ] {
        let o = check(&fx, BERLIN, &args, true);
        assert!(
            o.removed > 0 && o.kept > 0,
            "{args:?}: {} kept, {} removed",
            o.kept,
            o.removed
        );
    }
    // Counting back runs in the local zone: across DST in Berlin, a fixed offset in UTC
    // and New York (where delta's offsets are foreign).
    let delta = ["--keep-within", "5m", "--host", "delta"];
    let kept = |tz: &str| kept_count(&check(&fx, tz, &delta, false).json);
    assert_eq!(kept(BERLIN), 5, "Berlin: 10:30Z is within");
    assert_eq!(kept("UTC"), 4, "UTC: the fixed +01:00 puts 10:30Z out");
    assert_eq!(kept("America/New_York"), 4);
}

#[test]
fn groupings_and_filters_match_restic() {
    require_restic!();
    let fx = Fixture::new();
    let src = fx.src.to_str().expect("utf-8 path").to_string();
    let policy = ["-d", "5", "-w", "3", "-m", "4", "--keep-within", "20d"];
    for (extra, text) in [
        (vec!["--group-by", "host"], true),
        (vec!["--group-by", "paths"], true),
        (vec!["--group-by", "tags"], false),
        (vec!["--group-by", ""], true),
        (vec!["-g", "host,tags,paths"], false),
        (vec!["-g", "hosts,path"], true),
        (vec!["--host", "alpha"], true),
        (vec!["--host", "beta", "--host", "gamma", "-g", ""], true),
        (vec!["--tag", "daily"], true),
        (
            vec!["--tag", "x,daily", "--tag", "keep", "-g", "tags"],
            false,
        ),
        (vec!["--path", "/data"], true),
        (
            vec!["--path", "/etc", "--path", "/data", "-g", "host"],
            true,
        ),
        (vec!["--path", src.as_str(), "--tag", "real"], true),
        (vec!["--host", "nobody"], true),
    ] {
        let args: Vec<&str> = policy.iter().copied().chain(extra).collect();
        check(&fx, BERLIN, &args, text);
    }
    // An unknown grouping is refused by both, before anything happens.
    for tool in [Tool::restic(&fx.repo, PW), Tool::cairn(&fx.repo, PW)] {
        let r = tool.run(&["forget", "-l", "1", "-g", "host,colour"]);
        assert_ne!(r.code, Some(0), "{}", r.desc);
        assert!(
            r.stderr_str().contains("unknown grouping option: 'colour'"),
            "{}: {}",
            r.desc,
            r.stderr_str()
        );
    }
}

#[test]
fn text_output_matches_restic() {
    require_restic!();
    let fx = Fixture::new();
    let env = [("TZ", BERLIN)];
    for args in [
        vec![
            "forget",
            "--dry-run",
            "-l",
            "3",
            "-d",
            "4",
            "--keep-tag",
            "keep",
        ],
        vec![
            "forget",
            "--dry-run",
            "-v",
            "-m",
            "2",
            "--keep-within-weekly",
            "1m",
        ],
        vec!["forget", "--dry-run", "-c", "-w", "2", "-g", ""],
        vec!["forget", "--dry-run", "-q", "-y", "1", "--host", "beta"],
        // (`forget` without a policy is an error in restic 0.18 and cairn, a message in
        // 0.14: compat018.rs checks it.)
        vec!["forget", "--dry-run", "--host", "nobody", "-l", "1"],
    ] {
        let r = Tool::restic(&fx.repo, PW).run_env(None, &env, &args).ok();
        let c = Tool::cairn(&fx.repo, PW).run_env(None, &env, &args).ok();
        let (rs, cs) = (r.stdout_str(), without_size_column(&c.stdout_str()));
        if args.contains(&"-v") || args.contains(&"") || !rs.contains("keep ") {
            assert_eq!(
                text_parts(&cs),
                text_parts(&rs),
                "{args:?}\n{cs}\n---\n{rs}"
            );
        } else {
            // Several groups without headers: compare the lines as a multiset.
            let mut rl: Vec<&str> = rs.lines().collect();
            let mut cl: Vec<&str> = cs.lines().collect();
            rl.sort_unstable();
            cl.sort_unstable();
            assert_eq!(cl, rl, "{args:?}\n{cs}\n---\n{rs}");
        }
    }
}

#[test]
fn explicit_ids_match_restic() {
    require_restic!();
    let fx = Fixture::new();
    let ids: Vec<String> = snapshot_files(&fx.repo).into_iter().collect();
    let ambiguous = ids[0][..1].to_string();
    let cases: Vec<Vec<String>> = vec![
        vec![
            ids[3].clone(),
            ids[10][..8].to_string(),
            ids[3][..12].to_string(),
        ],
        vec!["latest".into(), "--host".into(), "beta".into()],
        vec![
            "latest".into(),
            "--path".into(),
            "/etc".into(),
            "--tag".into(),
            "x".into(),
        ],
        vec![
            ids[20].clone(),
            "--host".into(),
            "alpha".into(),
            "zzzz".into(),
            ambiguous,
        ],
        vec!["latest".into(), "--host".into(), "nobody".into()],
    ];
    let env = [("TZ", BERLIN)];
    for case in cases {
        let args: Vec<&str> = case.iter().map(String::as_str).collect();
        let dry: Vec<&str> = [&["forget", "--dry-run"], &args[..]].concat();
        let r = Tool::restic(&fx.repo, PW).run_env(None, &env, &dry).ok();
        let c = Tool::cairn(&fx.repo, PW).run_env(None, &env, &dry).ok();
        assert_eq!(c.stdout_str(), r.stdout_str(), "{dry:?}");
        let warnings = |s: String| -> Vec<String> {
            s.lines()
                .filter(|l| l.starts_with("Ignoring"))
                .map(String::from)
                .collect()
        };
        assert_eq!(
            warnings(c.stderr_str()),
            warnings(r.stderr_str()),
            "{dry:?}"
        );
        // --json prints nothing for explicit ids.
        let json: Vec<&str> = [&["forget", "--dry-run", "--json"], &args[..]].concat();
        let c = Tool::cairn(&fx.repo, PW).run_env(None, &env, &json).ok();
        assert_eq!(c.stdout_str(), "", "{json:?}");
        check(&fx, BERLIN, &args, false);
    }
}

#[test]
fn bad_prune_options_and_negative_values_are_refused_before_anything_is_removed() {
    require_restic!();
    let fx = Fixture::new();
    let before = snapshot_files(&fx.repo);
    let cairn = Tool::cairn(&fx.repo, PW);
    for args in [
        vec![
            "forget",
            "--keep-last",
            "1",
            "--prune",
            "--max-unused",
            "150%",
        ],
        vec![
            "forget",
            "--keep-last",
            "1",
            "--prune",
            "--max-unused",
            "zzz",
        ],
        vec!["forget", "--keep-last", "-1"],
        vec!["forget", "--keep-daily=-3", "--keep-last", "2"],
        vec!["forget", "--keep-within", "-1y"],
        vec!["forget", "--keep-within", "1w"],
        vec!["forget", "--no-lock", "--keep-last", "1"],
    ] {
        let r = cairn.run(&args);
        assert_ne!(r.code, Some(0), "{}", r.desc);
        let err = r.stderr_str();
        if args.contains(&"--prune") {
            assert!(err.contains("--max-unused"), "{err}");
        }
        assert_eq!(snapshot_files(&fx.repo), before, "{}", r.desc);
    }
    // What restic 0.14 does with a negative count, and why cairn refuses it: every snapshot
    // goes.
    let r = Tool::restic(&fx.repo, PW)
        .run(&["forget", "--dry-run", "--json", "--keep-last", "-1"])
        .ok();
    let v = normalize(&r.stdout, "restic");
    assert_eq!(removed_ids(&v).len(), before.len());
}
