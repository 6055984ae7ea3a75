//! Snapshot filters against restic 0.14 on one repository: `--host`/`-H`, `--path` and `--tag`,
//! `latest`, explicit ids, `--latest N` and `--group-by`, on every command restic gives them
//! to (ls, dump, restore narrow `latest`; find, stats, tag and snapshots filter the set when no
//! id is named). Each case runs restic and cairn with the same arguments and compares what they
//! chose. Plus `dump --archive zip`: restic's and cairn's archives of the same snapshot, read
//! back with Python's zipfile and compared entry by entry.

mod common;

use common::{Run, TempDir, Tool};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const PW: &str = "filters-pw";

/// (label, made by restic?, host, --tag values, sources, time). Two hosts, tags in several
/// combinations (none, one, several, one with blanks to trim), one and two paths, snapshots
/// made by both programs, and distinct times so that `latest` is always well defined.
#[allow(clippy::type_complexity)]
const PLAN: &[(&str, bool, &str, &[&str], &[&str], &str)] = &[
    ("r1", true, "h1", &["a,b"], &["src1"], "2021-01-01 10:00:00"),
    ("r2", true, "h2", &["a"], &["src1"], "2021-01-02 10:00:00"),
    ("c3", false, "h1", &[], &["src2"], "2021-01-03 10:00:00"),
    (
        "r4",
        true,
        "h2",
        &["c, d"],
        &["src1", "src2"],
        "2021-01-04 10:00:00",
    ),
    (
        "c5",
        false,
        "h1",
        &["x,a,y"],
        &["src2"],
        "2021-01-05 10:00:00",
    ),
    ("r6", true, "h1", &["a,b"], &["src1"], "2021-01-06 10:00:00"),
    ("c7", false, "h2", &["a"], &["src1"], "2021-01-07 10:00:00"),
];

struct Fixture {
    dir: TempDir,
    restic: Tool,
    cairn: Tool,
    /// label → full snapshot id
    ids: BTreeMap<&'static str, String>,
}

impl Fixture {
    fn root(&self) -> &Path {
        self.dir.path()
    }
    fn src(&self, name: &str) -> String {
        self.root().join(name).display().to_string()
    }
    fn id(&self, label: &str) -> &str {
        &self.ids[label]
    }
    fn label(&self, id: &str) -> String {
        self.ids
            .iter()
            .find(|(_, v)| v.as_str() == id)
            .map(|(k, _)| k.to_string())
            .unwrap_or_else(|| format!("unknown snapshot {id}"))
    }
    /// Both programs on the same repository (or on `repo`), in `self.root()`.
    fn both(&self, repo: Option<&Path>, args: &[String]) -> (Run, Run) {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let (mut r, mut c) = (self.restic.clone(), self.cairn.clone());
        if let Some(p) = repo {
            r.repo = p.to_path_buf();
            c.repo = p.to_path_buf();
        }
        (
            r.run_in(Some(self.root()), &a),
            c.run_in(Some(self.root()), &a),
        )
    }
}

fn fixture() -> Fixture {
    let dir = TempDir::new("cairn-filters-");
    let repo = dir.join("repo");
    let restic = Tool::restic(&repo, PW);
    let cairn = Tool::cairn(&repo, PW);
    cairn.run(&["init"]).ok();
    let mut ids = BTreeMap::new();
    let mut known: BTreeSet<String> = BTreeSet::new();
    for (label, by_restic, host, tags, srcs, time) in PLAN {
        // Each snapshot's files say which snapshot they are in.
        for s in ["src1", "src2"] {
            std::fs::create_dir_all(dir.join(s)).expect("create source");
            std::fs::write(dir.join(s).join("marker"), label).expect("write marker");
        }
        let mut args: Vec<String> = vec!["backup".into(), "--host".into(), host.to_string()];
        args.extend(["--time".to_string(), time.to_string()]);
        for t in *tags {
            args.extend(["--tag".to_string(), t.to_string()]);
        }
        for s in *srcs {
            args.push(dir.join(s).display().to_string());
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let tool = if *by_restic { &restic } else { &cairn };
        tool.run_in(Some(dir.path()), &a).ok();
        let now: BTreeSet<String> = restic
            .snapshot_ids()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let new: Vec<&String> = now.difference(&known).collect();
        assert_eq!(new.len(), 1, "backup {label} made {new:?}");
        ids.insert(*label, new[0].clone());
        known = now;
    }
    Fixture {
        dir,
        restic,
        cairn,
        ids,
    }
}

/// The filter flag sets every command is tried with (`{src1}`/`{src2}` are absolute paths).
/// Relative and uncleaned `--path`s are included on purpose: restic makes them absolute for
/// `latest` only.
fn filter_sets(f: &Fixture) -> Vec<Vec<String>> {
    let (s1, s2) = (f.src("src1"), f.src("src2"));
    let sets: Vec<Vec<&str>> = vec![
        vec![],
        vec!["-H", "h1"],
        vec!["--host", "h2"],
        vec!["-H", "h1", "-H", "h2"],
        vec!["-H", "nope"],
        vec!["--tag", "a"],
        vec!["--tag", "a,b"],
        vec!["--tag", " a , b "],
        vec!["--tag", "c", "--tag", "x"],
        vec!["--tag", "y,x"],
        vec!["--tag", ""],
        vec!["--tag", "a,"],
        vec!["--path", &s1],
        vec!["--path", &s1, "--path", &s2],
        vec!["--path", "src2"],
        vec!["--path", "./src1/../src2/"],
        vec!["-H", "h1", "--tag", "a", "--path", &s1],
        vec!["-H", "h2", "--path", &s2],
        vec!["--tag", "a", "--path", "/nonexistent"],
    ];
    let sets: Vec<Vec<String>> = sets
        .into_iter()
        .map(|s| s.into_iter().map(String::from).collect())
        .collect();
    // The set must be able to tell snapshots apart: check that it does.
    assert!(sets.len() > 10);
    sets
}

fn args(parts: &[&[String]]) -> Vec<String> {
    parts.iter().flat_map(|p| p.iter().cloned()).collect()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Snapshot JSON without the fields restic 0.14 does not know: it neither shows nor keeps the
/// `program_version` and `summary` of snapshots cairn made (restic 0.17 does both).
fn known_to_restic_014(mut v: serde_json::Value) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            serde_json::Value::Object(o) => {
                if o.contains_key("tree") && o.contains_key("time") {
                    o.remove("program_version");
                    o.remove("summary");
                } else {
                    o.values_mut().for_each(strip);
                }
            }
            _ => {}
        }
    }
    strip(&mut v);
    v
}

/// restic's warnings about the snapshots it could not use ("Ignoring ..."), in order.
fn ignoring(r: &Run) -> Vec<String> {
    r.stderr_str()
        .lines()
        .filter(|l| l.starts_with("Ignoring"))
        .map(String::from)
        .collect()
}

/// The snapshot a `ls --json` run listed, if any.
fn ls_snapshot(r: &Run) -> Option<String> {
    r.json_lines()
        .into_iter()
        .find(|v| v["struct_type"] == "snapshot")
        .and_then(|v| v["id"].as_str().map(String::from))
}

/// The `marker` files under a restore target: relative path → content.
fn markers(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, d: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if e.file_name() == "marker" {
                let rel = p.strip_prefix(base).unwrap_or(&p).display().to_string();
                out.insert(rel, std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn latest_with_filters_is_restics_for_ls_dump_and_restore() {
    require_restic!();
    let f = fixture();
    let marker1 = format!("{}/marker", f.src("src1"));
    let mut chosen = BTreeSet::new();
    for (i, fl) in filter_sets(&f).iter().enumerate() {
        // ls: `latest` narrowed by the filters; nothing matching is only a warning.
        let (r, c) = f.both(
            None,
            &args(&[&strs(&["ls", "--json"]), fl, &strs(&["latest"])]),
        );
        assert_eq!(c.code, r.code, "ls {fl:?}: exit code\n{}", c.stderr_str());
        assert_eq!(
            ls_snapshot(&c).map(|id| f.label(&id)),
            ls_snapshot(&r).map(|id| f.label(&id)),
            "ls {fl:?} latest: another snapshot"
        );
        assert_eq!(ignoring(&c), ignoring(&r), "ls {fl:?} latest: warnings");
        if let Some(id) = ls_snapshot(&r) {
            chosen.insert(f.label(&id));
        }
        // An explicit id ignores the filters (with a warning when there are any).
        let id = f.id("r2").to_string();
        let (r, c) = f.both(None, &args(&[&strs(&["ls", "--json"]), fl, &[id]]));
        assert_eq!(ls_snapshot(&c), ls_snapshot(&r), "ls {fl:?} r2");
        assert_eq!(ls_snapshot(&r).as_deref(), Some(f.id("r2")));
        assert_eq!(ignoring(&c), ignoring(&r), "ls {fl:?} r2: warnings");

        // dump: the same snapshot's file, or the same failure.
        let (r, c) = f.both(
            None,
            &args(&[&strs(&["dump"]), fl, &strs(&["latest", &marker1])]),
        );
        assert_eq!(c.code, r.code, "dump {fl:?}: exit code\n{}", c.stderr_str());
        assert_eq!(c.stdout_str(), r.stdout_str(), "dump {fl:?}: content");
        if r.code == Some(1) {
            assert!(
                r.stderr_str()
                    .contains("latest snapshot for criteria not found")
                    && c.stderr_str()
                        .contains("latest snapshot for criteria not found"),
                "dump {fl:?}: {} / {}",
                r.stderr_str(),
                c.stderr_str()
            );
        }

        // restore: the same snapshot's files.
        let (tr, tc) = (
            f.root().join(format!("restore-restic-{i}")),
            f.root().join(format!("restore-cairn-{i}")),
        );
        let (tr_s, tc_s) = (tr.display().to_string(), tc.display().to_string());
        let r = f.restic.run_in(
            Some(f.root()),
            &args(&[
                &strs(&["restore", "--target", &tr_s]),
                fl,
                &strs(&["latest"]),
            ])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        );
        let c = f.cairn.run_in(
            Some(f.root()),
            &args(&[
                &strs(&["restore", "--target", &tc_s]),
                fl,
                &strs(&["latest"]),
            ])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        );
        assert_eq!(
            c.code,
            r.code,
            "restore {fl:?}: exit code\n{}",
            c.stderr_str()
        );
        assert_eq!(markers(&tc), markers(&tr), "restore {fl:?}: files");
    }
    // The filter sets reached several snapshots, and "nothing" too (a test that could not fail
    // would not).
    assert!(chosen.len() >= 4, "latest chose only {chosen:?}");
}

/// `find`, `stats` and `snapshots`: with no id every snapshot passing the filters, with ids
/// those (only `latest` filtered); unknown ids are warned about and skipped.
#[test]
fn filtered_sets_are_restics_for_find_stats_and_snapshots() {
    require_restic!();
    let f = fixture();
    let r2 = f.id("r2").to_string();
    let mut id_lists: Vec<Vec<String>> = vec![vec![]];
    id_lists.push(strs(&["latest"]));
    id_lists.push(vec![r2[..8].to_string(), "deadbeef".into(), r2.clone()]);
    id_lists.push(vec!["latest".into(), f.id("c3").to_string()]);
    let mut sizes = BTreeSet::new();
    for (i, fl) in filter_sets(&f).iter().enumerate() {
        // Every filter set without ids; the id lists with a few of them.
        let lists = if i % 4 == 0 {
            &id_lists[..]
        } else {
            &id_lists[..1]
        };
        for ids in lists {
            // snapshots --json: the whole listing, oldest first.
            let (r, c) = f.both(None, &args(&[&strs(&["snapshots", "--json"]), fl, ids]));
            c.code.filter(|_| r.code == c.code).unwrap_or_else(|| {
                panic!("snapshots {fl:?} {ids:?}: {:?} vs {:?}", r.code, c.code)
            });
            assert_eq!(
                known_to_restic_014(c.json()),
                r.json(),
                "snapshots {fl:?} {ids:?}"
            );
            assert_eq!(ignoring(&c), ignoring(&r), "snapshots {fl:?} {ids:?}");
            sizes.insert(r.json().as_array().map(Vec::len).unwrap_or(0));

            // stats: the counts of the chosen set.
            let (r, c) = f.both(None, &args(&[&strs(&["stats", "--json"]), fl, ids]));
            assert_eq!(c.code, r.code, "stats {fl:?} {ids:?}");
            assert_eq!(c.json(), r.json(), "stats {fl:?} {ids:?}");
            assert_eq!(ignoring(&c), ignoring(&r), "stats {fl:?} {ids:?}");

            // find: which snapshots have a match (restic 0.14's order is unspecified).
            let mut fa = strs(&["find", "--json"]);
            fa.extend(fl.iter().cloned());
            for id in ids {
                fa.extend(["-s".to_string(), id.clone()]);
            }
            fa.push("marker".into());
            let (r, c) = f.both(None, &fa);
            assert_eq!(c.code, r.code, "find {fl:?} {ids:?}");
            let by_snapshot = |run: &Run| -> BTreeMap<String, serde_json::Value> {
                run.json()
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|mut v| {
                        // restic 0.18's `inode` (which cairn writes) is not in 0.14's answer.
                        for m in v["matches"].as_array_mut().into_iter().flatten() {
                            if let Some(o) = m.as_object() {
                                *m = serde_json::Value::Object(
                                    o.iter()
                                        .filter(|(k, _)| *k != "inode")
                                        .map(|(k, v)| (k.clone(), v.clone()))
                                        .collect(),
                                );
                            }
                        }
                        (f.label(v["snapshot"].as_str().unwrap_or("")), v)
                    })
                    .collect()
            };
            assert_eq!(by_snapshot(&c), by_snapshot(&r), "find {fl:?} {ids:?}");
            assert_eq!(ignoring(&c), ignoring(&r), "find {fl:?} {ids:?}");
        }
    }
    assert!(
        sizes.len() >= 4,
        "the filters chose too few distinct sets: {sizes:?}"
    );
}

/// `snapshots --group-by` (every spelling restic accepts) and `--latest N` (per group, per host
/// and path set), in JSON; and the text table where restic's output is deterministic.
#[test]
fn snapshots_grouping_and_latest_are_restics() {
    require_restic!();
    let f = fixture();
    // Go's map order makes restic's group order random: compare groups by key.
    let norm = |run: &Run| -> serde_json::Value {
        let v = known_to_restic_014(run.json());
        match v.as_array() {
            Some(a) if a.first().is_some_and(|g| g.get("group_key").is_some()) => {
                let mut a = a.clone();
                a.sort_by_key(|g| g["group_key"].to_string());
                serde_json::Value::Array(a)
            }
            _ => v,
        }
    };
    let mut group_counts = BTreeSet::new();
    for group in [
        "",
        "host",
        "hosts",
        "path",
        "paths",
        "tag",
        "tags",
        "host,paths",
        "host,tags",
        "tags,paths",
        ",host,",
        "host,path,tag",
    ] {
        for latest in [&[][..], &["--latest", "1"], &["--latest", "2"], &["--last"]] {
            // Every grouping without filters; filters with two of them.
            let filters: &[&[&str]] = if matches!(group, "tags" | "host,path,tag") {
                &[&[], &["-H", "h1"], &["--tag", "a"]]
            } else {
                &[&[]]
            };
            for fl in filters {
                let a = args(&[
                    &strs(&["snapshots", "--json", "--group-by", group]),
                    &strs(latest),
                    &strs(fl),
                ]);
                let (r, c) = f.both(None, &a);
                assert_eq!(c.code, r.code, "{a:?}: {}", c.stderr_str());
                assert_eq!(norm(&c), norm(&r), "{a:?}");
                if !group.trim_matches(',').is_empty() {
                    group_counts.insert(r.json().as_array().map(Vec::len).unwrap_or(0));
                }
            }
        }
    }
    assert!(group_counts.len() >= 3, "{group_counts:?}");
    // --latest 0 and below mean no limit.
    for n in ["0", "-1"] {
        let (r, c) = f.both(None, &strs(&["snapshots", "--json", "--latest", n]));
        assert_eq!(known_to_restic_014(c.json()), r.json(), "--latest {n}");
    }
    // Text, where it is deterministic (one group, no snapshot with several paths).
    for a in [
        vec!["snapshots", "-H", "h1"],
        vec!["snapshots", "-H", "h1", "--latest", "1"],
        vec!["snapshots", "-H", "h1", "-g", "host"],
        vec![
            "snapshots",
            "-H",
            "h1",
            "--path",
            &f.src("src2"),
            "-g",
            "paths,host",
        ],
        vec!["snapshots", "-H", "h1", "--tag", "a,b", "-g", "tags"],
        vec!["snapshots", "-H", "nope"],
        vec!["snapshots", "-c"],
        vec!["snapshots"],
        vec!["snapshots", "--tag", "c", "-g", "tags"],
        vec!["snapshots", "--compact", "--tag", "a", "--latest", "1"],
    ] {
        // Against restic 0.18, whose tables (like cairn's) have a Size column for snapshots
        // with a summary; restic 0.14's have none.
        let Some(r18) = Tool::restic018(&f.restic.repo, &f.restic.password) else {
            break;
        };
        let c = f.cairn.run_in(Some(f.root()), &a);
        let r = r18.run_in(Some(f.root()), &a);
        assert_eq!(c.code, r.code, "{a:?}");
        assert_eq!(c.stdout_str(), r.stdout_str(), "{a:?}");
    }
    let (r, c) = f.both(None, &strs(&["snapshots", "-g", "colour"]));
    assert!(r.code != Some(0) && c.code != Some(0));
    for run in [&r, &c] {
        assert!(
            run.stderr_str()
                .contains("unknown grouping option: 'colour'"),
            "{}",
            run.stderr_str()
        );
    }
}

/// `tag` on copies of the same repository: the same snapshots changed, to the same tags.
#[test]
fn tag_filters_and_changes_are_restics() {
    require_restic!();
    let f = fixture();
    let s2 = f.src("src2");
    let cases: Vec<Vec<String>> = vec![
        strs(&["--add", "new", "-H", "h1"]),
        strs(&["--add", "n1,n2", "--add", " n3 ", "--tag", "a"]),
        strs(&["--remove", "x", "--tag", "y"]),
        strs(&["--remove", "a,zz", "--add", "a2", "--host", "h2"]),
        strs(&["--set", "", "-H", "h2"]),
        strs(&["--set", "s1,s2", "--tag", ""]),
        strs(&["--set", "a,b", "--tag", "a,b"]),
        strs(&["--add", "z", "--path", "src2", "latest"]),
        strs(&["--add", "z", "--path", &s2]),
        strs(&["--add", "z", "-H", "h1", f.id("r2")]),
        strs(&["--add", "z", "deadbeef"]),
        strs(&["--remove", "nothing-like-it"]),
    ];
    // Snapshots without their ids (a changed snapshot's new id depends on its JSON bytes),
    // sorted.
    let state = |t: &Tool| -> Vec<String> {
        let mut v: Vec<String> = t
            .snapshots_json()
            .into_iter()
            .map(|s| {
                let mut s = known_to_restic_014(s);
                if let Some(o) = s.as_object_mut() {
                    o.remove("id");
                    o.remove("short_id");
                }
                s.to_string()
            })
            .collect();
        v.sort();
        v
    };
    let said = |r: &Run| -> Vec<String> {
        r.stdout_str()
            .lines()
            .filter(|l| l.starts_with("modified tags") || l.starts_with("no snapshots"))
            .map(String::from)
            .collect()
    };
    let before = state(&f.restic);
    let mut changed_any = false;
    for (i, case) in cases.iter().enumerate() {
        let (rr, rc) = (
            f.root().join(format!("tag-restic-{i}")),
            f.root().join(format!("tag-cairn-{i}")),
        );
        for dst in [&rr, &rc] {
            let ok = std::process::Command::new("cp")
                .arg("-a")
                .arg(&f.restic.repo)
                .arg(dst)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "cp -a {} {}", f.restic.repo.display(), dst.display());
        }
        let mut a = strs(&["tag"]);
        a.extend(case.iter().cloned());
        let av: Vec<&str> = a.iter().map(String::as_str).collect();
        let mut rt = f.restic.clone();
        rt.repo = rr.clone();
        let mut ct = f.cairn.clone();
        ct.repo = rc.clone();
        let r = rt.run_in(Some(f.root()), &av);
        let c = ct.run_in(Some(f.root()), &av);
        assert_eq!(c.code, r.code, "tag {case:?}: {}", c.stderr_str());
        assert_eq!(said(&c), said(&r), "tag {case:?}: report");
        assert_eq!(ignoring(&c), ignoring(&r), "tag {case:?}: warnings");
        let after = state(&rt);
        assert_eq!(state(&ct), after, "tag {case:?}: snapshots");
        changed_any |= after != before;
    }
    assert!(changed_any);
}

/// restic 0.14 has no snapshot filters on `diff` and `cat`; neither has cairn.
#[test]
fn diff_and_cat_take_no_filters() {
    require_restic!();
    let f = fixture();
    let (a, b) = (f.id("r1").to_string(), f.id("r2").to_string());
    for cmd in [
        strs(&["diff", "-H", "h1", &a, &b]),
        strs(&["diff", "--tag", "a", &a, &b]),
        strs(&["cat", "--path", "/x", "snapshot", &a]),
    ] {
        let (r, c) = f.both(None, &cmd);
        assert!(r.code != Some(0), "restic accepted {cmd:?}");
        assert!(c.code != Some(0), "cairn accepted {cmd:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// dump --archive zip

/// Lists a zip archive with Python's zipfile: per entry (in archive order) the raw name, flags,
/// method, system, external attributes, DOS time, extra fields (central directory), size and
/// content digest; plus zipfile's CRC check of every entry.
const ZIP_LIST: &str = r#"
import hashlib, json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
bad = z.testzip()
for i in z.infolist():
    raw = i.orig_filename.encode("utf-8" if i.flag_bits & 0x800 else "cp437")
    print(json.dumps({
        "name": raw.hex(), "shown": i.filename, "flags": i.flag_bits, "method": i.compress_type,
        "system": i.create_system, "attrs": oct(i.external_attr), "date_time": i.date_time,
        "extra": i.extra.hex(), "size": i.file_size,
        "sha256": hashlib.sha256(z.read(i)).hexdigest(),
    }))
print(json.dumps({"crc_check": bad}))
"#;

fn zip_listing(dir: &Path, name: &str, bytes: &[u8]) -> Vec<serde_json::Value> {
    let zip = dir.join(format!("{name}.zip"));
    std::fs::write(&zip, bytes).expect("write zip");
    let script = dir.join("ziplist.py");
    std::fs::write(&script, ZIP_LIST).expect("write script");
    let r = common::run_cmd(
        std::ffi::OsStr::new("python3"),
        &[script.as_os_str(), zip.as_os_str()],
        &[],
        None,
    )
    .ok();
    let lines = r.json_lines();
    assert_eq!(
        lines.last().map(|v| v["crc_check"].clone()),
        Some(serde_json::Value::Null),
        "{name}: zipfile's check failed: {}",
        r.stdout_str()
    );
    lines[..lines.len() - 1].to_vec()
}

fn cpath(p: &Path) -> std::ffi::CString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

/// Sets a path's atime and mtime (of a symlink itself, not its target).
fn set_mtime(p: &Path, secs: i64) {
    let ts = libc::timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let times = [ts, ts];
    let c = cpath(p);
    // SAFETY: a valid NUL-terminated path and two timespecs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(rc, 0, "utimensat {}", p.display());
}

fn make_fifo(p: &Path) {
    let c = cpath(p);
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o644) },
        0,
        "mkfifo {}",
        p.display()
    );
}

/// A tree with what a zip dump has to get right: permission bits including setuid, setgid and
/// sticky, read-only files, empty files and directories, a file of several chunks, symlinks,
/// names in UTF-8 and not, mtimes before 1980 and after 2107 (MS-DOS times wrap), and fifos at
/// the top (an empty entry) and deeper down (left out).
fn zip_tree(src: &Path) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let mk = |p: &str| std::fs::create_dir_all(src.join(p)).expect("mkdir");
    let put = |p: &str, data: &[u8], mode: u32| {
        let path = src.join(p);
        std::fs::write(&path, data).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    for d in ["sub/deeper", "sticky", "setgid", "emptydir"] {
        mk(d);
    }
    put("a.txt", b"hello\n", 0o644);
    put("exec", b"#!/bin/sh\necho hi\n", 0o755);
    put("suid", b"s", 0o4755);
    put("readonly", b"r", 0o444);
    put("empty", b"", 0o600);
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    put("sub/deeper/big", &big, 0o640);
    put("sub/deeper/small", b"small", 0o644);
    put("sticky/inside", b"in", 0o644);
    put("ünïcödé €.txt", b"utf-8 name", 0o644);
    std::fs::write(
        src.join(std::ffi::OsStr::from_bytes(b"latin1-\xe9t\xe9")),
        b"l",
    )
    .expect("write non-UTF-8 name");
    std::os::unix::fs::symlink("a.txt", src.join("link")).expect("symlink");
    std::os::unix::fs::symlink("/etc/passwd", src.join("sub/abs")).expect("symlink");
    std::os::unix::fs::symlink("nowhere", src.join("sub/dangling")).expect("symlink");
    make_fifo(&src.join("fifo"));
    make_fifo(&src.join("sub/fifo-deeper"));
    for (p, mode) in [("sticky", 0o1777), ("setgid", 0o2750), ("emptydir", 0o700)] {
        std::fs::set_permissions(src.join(p), std::fs::Permissions::from_mode(mode))
            .expect("chmod dir");
    }
    set_mtime(&src.join("a.txt"), 165_000_000); // 1975
    set_mtime(&src.join("exec"), 0); // 1970-01-01
    set_mtime(&src.join("readonly"), 4_400_000_000); // 2109
    set_mtime(&src.join("link"), 1_000_000_000);
    set_mtime(&src.join("sub/deeper"), 300_000_000);
    set_mtime(&src.join("emptydir"), 1_234_567_890);
}

#[test]
fn dump_zip_matches_restic() {
    require_restic!();
    let t = TempDir::new("cairn-dump-zip-");
    let src = t.join("src");
    zip_tree(&src);
    let repo = t.join("repo");
    let restic = Tool::restic(&repo, PW);
    let cairn = Tool::cairn(&repo, PW);
    cairn.run(&["init"]).ok();
    let srcs = src.display().to_string();
    restic.run(&["backup", "--host", "by-restic", &srcs]).ok();
    cairn.run(&["backup", "--host", "by-cairn", &srcs]).ok();
    let mut compared = 0;
    for host in ["by-restic", "by-cairn"] {
        for path in [
            srcs.clone(),
            format!("{srcs}/sub"),
            format!("{srcs}/sub/"),
            "/".to_string(),
        ] {
            let a = ["dump", "--archive", "zip", "-H", host, "latest", &path];
            // Both write to a pipe (not seekable): the zip is streamed.
            let r = restic.run(&a).ok();
            let c = cairn.run(&a).ok();
            let want = zip_listing(t.path(), "restic", &r.stdout);
            let got = zip_listing(t.path(), "cairn", &c.stdout);
            let names = |l: &[serde_json::Value]| -> Vec<String> {
                l.iter()
                    .map(|e| e["shown"].as_str().unwrap_or("?").to_string())
                    .collect()
            };
            assert_eq!(names(&got), names(&want), "{host} {path}: entries");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g, w, "{host} {path}: entry");
            }
            compared += want.len();
            if path == srcs {
                // Not vacuous: the entries that matter are there (and the deeper fifo is not).
                let shown = names(&want);
                for p in ["src/sub/deeper/big", "src/fifo", "src/sticky/", "src/link"] {
                    assert!(
                        shown.iter().any(|n| n.ends_with(p)),
                        "{p} missing in {shown:?}"
                    );
                }
                assert!(
                    !shown.iter().any(|n| n.contains("fifo-deeper")),
                    "{shown:?}"
                );
            }
            // The same directory as tar: the same listing too.
            let ta = ["dump", "-H", host, "latest", &path];
            let (rt, ct) = (restic.run(&ta).ok(), cairn.run(&ta).ok());
            assert_eq!(
                tar_listing(&ct.stdout),
                tar_listing(&rt.stdout),
                "{host} {path}: tar"
            );
        }
        // A file is written as it is, whatever the archive format.
        let file = format!("{srcs}/sub/deeper/big");
        let a = ["dump", "-a", "zip", "-H", host, "latest", &file];
        let (r, c) = (restic.run(&a).ok(), cairn.run(&a).ok());
        assert_eq!(c.stdout, r.stdout);
        assert_eq!(c.stdout.len(), 3_000_000);
    }
    assert!(compared > 40, "{compared} entries compared");
}

/// `tar tv` of an archive.
fn tar_listing(archive: &[u8]) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("tar")
        .args(["tvf", "-"])
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run tar");
    {
        let mut stdin = child.stdin.take().expect("tar stdin");
        stdin.write_all(archive).expect("feed tar");
    }
    let out = child.wait_with_output().expect("tar output");
    assert!(out.status.success(), "tar tvf failed");
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!s.is_empty());
    s
}

/// Where restic 0.14 exits with an error, cairn does too, with the same code.
#[test]
fn dump_failures_are_restics() {
    require_restic!();
    let f = fixture();
    let s1 = f.src("src1");
    let cases: Vec<Vec<String>> = vec![
        strs(&["dump", "latest", &format!("{s1}/nothing-here")]),
        strs(&["dump", "latest", &format!("{s1}/marker/below")]),
        strs(&["dump", "-a", "rar", "latest", &s1]),
        strs(&["dump", "deadbeef", &s1]),
        strs(&["dump", "-H", "nope", "latest", &s1]),
        strs(&["dump", "-a", "zip", "latest", "."]),
    ];
    for a in cases {
        let (r, c) = f.both(None, &a);
        assert!(r.code != Some(0), "restic accepted {a:?}");
        assert_eq!(
            c.code,
            r.code,
            "{a:?}: {} / {}",
            r.stderr_str(),
            c.stderr_str()
        );
    }
    // An explicit id wins over the filters, silently (restic's dump does not warn).
    let (r, c) = f.both(
        None,
        &strs(&["dump", "-H", "nope", f.id("r1"), &format!("{s1}/marker")]),
    );
    assert_eq!(r.stdout_str(), "r1");
    assert_eq!(c.stdout_str(), r.stdout_str());
}
