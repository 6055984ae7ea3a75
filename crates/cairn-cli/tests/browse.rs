//! `diff` and `find` against restic: restic makes two snapshots of a tree that changes in
//! every way `diff` reports (added, removed, modified, type changed, chmod'ed, fifo, a
//! multi-chunk file), then cairn and restic answer the same questions about that repository.
//!
//! restic 0.14 prints `find`'s snapshots in no fixed order (cairn: oldest first), so `find`
//! output is compared per snapshot; everything else is compared line for line. Both programs
//! run in the same non-UTC time zone (when the zone database has one), so local times in the
//! output are compared too.

mod common;

use common::{noise, CAIRN};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Is restic there? Without it (and without `CAIRN_REQUIRE_RESTIC=1`) the tests skip.
fn have_restic() -> bool {
    let found = common::restic_available();
    if !found {
        assert!(
            std::env::var("CAIRN_REQUIRE_RESTIC").is_err(),
            "restic is required (CAIRN_REQUIRE_RESTIC is set)"
        );
        common::loud("SKIP: restic not installed");
    }
    found
}

struct Fixture {
    root: PathBuf,
    repo: PathBuf,
    /// Full ids of the first and the second snapshot.
    s1: String,
    s2: String,
    /// The path restic recorded for the backup.
    src: String,
}

static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();

extern "C" fn remove_fixture() {
    if let Some(Some(f)) = FIXTURE.get() {
        let _ = std::fs::remove_dir_all(&f.root);
    }
}

/// The shared repository, built once (restic is slow to start; every test reads only).
fn fixture() -> Option<&'static Fixture> {
    FIXTURE
        .get_or_init(|| have_restic().then(build_fixture))
        .as_ref()
}

fn tool(bin: &str, f: &Fixture) -> Command {
    let mut c = common::tool(bin, &f.repo);
    c.current_dir(&f.root);
    if Path::new("/usr/share/zoneinfo/Asia/Kolkata").exists() {
        c.env("TZ", "Asia/Kolkata");
    }
    c
}

fn run(bin: &str, f: &Fixture, args: &[&str]) -> Output {
    tool(bin, f).args(args).output().expect("run")
}

fn run_ok(bin: &str, f: &Fixture, args: &[&str]) -> String {
    let out = run(bin, f, args);
    assert!(
        out.status.success(),
        "{bin} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Both programs' stdout for the same arguments.
fn both(f: &Fixture, args: &[&str]) -> (String, String) {
    (run_ok("restic", f, args), run_ok(CAIRN, f, args))
}

fn write(p: &Path, data: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

fn build_fixture() -> Fixture {
    let root = tempfile::Builder::new()
        .prefix("cairn-browse")
        .tempdir()
        .unwrap()
        .keep();
    // SAFETY: registers a plain function; it only removes the fixture directory at exit.
    unsafe { libc::atexit(remove_fixture) };
    let s = root.join("src");
    let w = |p: &str, d: &[u8]| write(&s.join(p), d);
    w("keep.txt", b"keep me\n");
    w("mod.txt", b"version one\n");
    w("gone.txt", b"gone soon\n");
    w("Report.PDF", b"%PDF\n");
    w("chm.txt", b"mode changes\n");
    w("t_file", b"a file, then a directory\n");
    w("t_dir/inner.txt", b"a directory, then a link\n");
    w("dir_gone/a.txt", b"in a removed dir\n");
    w("dir_gone/same.txt", b"shared content\n");
    w("dir_gone/sub/b.log", b"log\n");
    w("dup/copy.txt", b"shared content\n");
    w("deep/a/b/c/leaf.txt", b"leaf\n");
    w("twin1/x", b"twin\n");
    std::fs::create_dir_all(s.join("twin2")).unwrap();
    // Hard links: twin1 and twin2 hold identical trees (same inode, same metadata).
    std::fs::hard_link(s.join("twin1/x"), s.join("twin2/x")).unwrap();
    let big = noise(7, 3 << 20);
    w("big.bin", &big);
    std::os::unix::fs::symlink("keep.txt", s.join("link")).unwrap();

    let repo = root.join("repo");
    let f = Fixture {
        root: root.clone(),
        repo,
        s1: String::new(),
        s2: String::new(),
        src: String::new(),
    };
    // A fast key, so that every restic run below starts quickly.
    run_ok(CAIRN, &f, &["init"]);
    run_ok("restic", &f, &["backup", "src"]);

    w("mod.txt", b"version two, longer\n");
    std::fs::remove_file(s.join("gone.txt")).unwrap();
    std::fs::remove_dir_all(s.join("dir_gone")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(s.join("chm.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_file(s.join("t_file")).unwrap();
    w("t_file/in.txt", b"now inside\n");
    std::fs::remove_dir_all(s.join("t_dir")).unwrap();
    std::os::unix::fs::symlink("keep.txt", s.join("t_dir")).unwrap();
    w("new/n1.txt", b"new one\n");
    w("new/deeper/n2.log", b"new two\n");
    w("deep/x.jpg", b"jpeg\n");
    let fifo = std::ffi::CString::new(s.join("pipe").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let mut big2 = big;
    big2.extend(noise(11, 300_000));
    w("big.bin", &big2);
    run_ok("restic", &f, &["backup", "src"]);

    let snaps: Value = serde_json::from_str(&run_ok("restic", &f, &["snapshots", "--json"]))
        .expect("snapshots JSON");
    let mut snaps = snaps.as_array().unwrap().clone();
    snaps.sort_by_key(|s| s["time"].as_str().unwrap().to_string());
    assert_eq!(snaps.len(), 2);
    Fixture {
        s1: snaps[0]["id"].as_str().unwrap().to_string(),
        s2: snaps[1]["id"].as_str().unwrap().to_string(),
        src: snaps[0]["paths"][0].as_str().unwrap().to_string(),
        ..f
    }
}

// ---------------------------------------------------------------------------------------------
// diff

#[test]
fn diff_text_matches_restic() {
    let Some(f) = fixture() else { return };
    let (s1, s2) = (f.s1.as_str(), f.s2.as_str());
    let pairs = [(s1, s2), (s2, s1), (&s1[..8], &s2[..10]), (s1, s1)];
    for (a, b) in pairs {
        for flags in [&[][..], &["--metadata"], &["-q"], &["-q", "--metadata"]] {
            let mut args = vec!["diff"];
            args.extend_from_slice(flags);
            args.extend([a, b]);
            let (want, got) = both(f, &args);
            assert_eq!(got, want, "{args:?}");
        }
    }
    // The comparison above must have covered every kind of change.
    let got = run_ok(CAIRN, f, &["diff", "--metadata", s1, s2]);
    for line in [
        &format!("comparing snapshot {} to {}:", &s1[..8], &s2[..8]),
        "M    /src/mod.txt",
        "M    /src/big.bin",
        "-    /src/gone.txt",
        "-    /src/dir_gone/",
        "-    /src/dir_gone/sub/b.log",
        "+    /src/new/deeper/n2.log",
        "+    /src/pipe",
        "TU   /src/t_file/",
        "TU   /src/t_dir",
        "U    /src/chm.txt",
        "U    /src/",
        "Others:          1 new,     0 removed",
    ] {
        assert!(got.lines().any(|l| l == line), "missing {line:?} in\n{got}");
    }
    assert!(
        !got.contains("/src/dup/"),
        "unchanged directory listed:\n{got}"
    );
    let plain = run_ok(CAIRN, f, &["diff", s1, s2]);
    assert!(
        !plain.contains("U    "),
        "metadata changes without --metadata"
    );
}

/// Parses JSON lines.
fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn diff_json_matches_restic() {
    let Some(f) = fixture() else { return };
    let (s1, s2) = (f.s1.as_str(), f.s2.as_str());
    for args in [
        vec!["--json", "diff", s1, s2],
        vec!["--json", "diff", "--metadata", &s2[..8], s1],
        vec!["--json", "-q", "diff", s1, s2],
    ] {
        let (want, got) = both(f, &args);
        assert_eq!(json_lines(&got), json_lines(&want), "{args:?}");
        // Byte for byte too: Go's field order and escaping.
        assert_eq!(got, want, "{args:?}");
    }
    let got = json_lines(&run_ok(CAIRN, f, &["--json", "diff", s1, s2]));
    let stats = got.last().unwrap();
    assert_eq!(stats["message_type"], "statistics");
    assert_eq!(stats["source_snapshot"], s1);
    assert_eq!(stats["changed_files"], 2);
    assert!(stats["added"]["data_blobs"].as_u64().unwrap() >= 5);
    assert!(got
        .iter()
        .any(|v| v["modifier"] == "T" && v["path"] == "/src/t_file/"));
}

#[test]
fn diff_accepts_latest_and_subfolders() {
    let Some(f) = fixture() else { return };
    let want = run_ok("restic", f, &["diff", &f.s1, &f.s2]);
    assert_eq!(run_ok(CAIRN, f, &["diff", &f.s1, "latest"]), want);
    let sub = run_ok(
        CAIRN,
        f,
        &["diff", &format!("{}:src/deep", f.s1), "latest:/src/deep"],
    );
    assert!(sub.lines().any(|l| l == "+    /x.jpg"), "{sub}");
    assert!(!sub.contains("/src/"), "{sub}");
    let out = run(CAIRN, f, &["diff", &f.s1]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("specify two snapshot IDs"));
}

// ---------------------------------------------------------------------------------------------
// find by pattern

/// Text output grouped by its "Found matching entries in snapshot ..." header.
fn groups(out: &str) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cur = String::new();
    for line in out.lines() {
        if line.starts_with("Found matching entries in snapshot ") {
            cur = line.to_string();
            assert!(!m.contains_key(&cur), "snapshot printed twice:\n{out}");
            m.insert(cur.clone(), Vec::new());
        } else if !line.is_empty() {
            m.entry(cur.clone()).or_default().push(line.to_string());
        }
    }
    m
}

#[test]
fn find_text_matches_restic() {
    let Some(f) = fixture() else { return };
    let (s1, s2) = (f.s1.as_str(), f.s2.as_str());
    let cases: Vec<(Vec<&str>, usize)> = vec![
        // (arguments, how many snapshots must have matches)
        (vec!["keep.txt"], 2),
        (vec!["*.txt"], 2),
        (vec!["-i", "report.pdf"], 2),
        (vec!["--ignore-case", "*.PDF", "KEEP*"], 2),
        (vec!["report.pdf"], 0),
        (vec!["-l", "*.txt", "link", "pipe", "t_*"], 2),
        (vec!["--long", "big.bin", "chm.txt"], 2),
        (vec!["dir_gone"], 1),
        (vec!["/src/deep/*"], 2),
        (vec!["/src/t_file"], 2),
        (vec!["**/c/*"], 2),
        (vec!["new/*"], 1),
        (vec!["[a-m]*.txt", "?.jpg"], 2),
        (vec!["-s", &s1[..8], "*.log"], 1),
        (vec!["--snapshot", s2, "-s", s1, "x"], 2),
        (vec!["nomatch"], 0),
        (vec!["--path", &f.src, "mod.txt"], 2),
        (vec!["--host", "no-such-host", "mod.txt"], 0),
        (
            vec!["-O", "2000-01-01", "-N", "2100-01-01 00:00:00", "*.jpg"],
            1,
        ),
        (vec!["--newest", "2000-01-01 12:00", "*.txt"], 0),
        (vec!["--oldest", "01.01.2100", "*"], 0),
    ];
    for (args, snapshots) in cases {
        let mut a = vec!["find"];
        a.extend(&args);
        let (want, got) = both(f, &a);
        let (gw, gg) = (groups(&want), groups(&got));
        assert_eq!(gg, gw, "{args:?}\nrestic:\n{want}\ncairn:\n{got}");
        assert_eq!(gg.len(), snapshots, "{args:?}\n{got}");
        // One blank line between snapshots, none elsewhere.
        let blanks = |s: &str| s.lines().filter(|l| l.is_empty()).count();
        assert_eq!(blanks(&got), snapshots.saturating_sub(1), "{args:?}\n{got}");
        assert_eq!(blanks(&got), blanks(&want), "{args:?}");
    }
    // Quiet: just the paths.
    let (want, got) = both(f, &["-q", "find", "*.log", "keep*"]);
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.lines().map(String::from).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&got), sorted(&want));
    assert!(
        !got.contains("Found") && got.contains("/src/keep.txt\n"),
        "{got}"
    );
}

#[test]
fn find_json_matches_restic() {
    let Some(f) = fixture() else { return };
    let cases: Vec<Vec<&str>> = vec![
        vec!["*.txt"],
        vec!["-i", "REPORT.pdf"],
        vec!["link", "pipe", "t_*", "big.bin"],
        vec!["--long", "deep"],
        vec!["nomatch"],
        vec!["-s", &f.s1, "mod.txt"],
    ];
    for args in cases {
        let mut a = vec!["--json", "find"];
        a.extend(&args);
        let (want, got) = both(f, &a);
        assert!(got.ends_with("]\n") && got.lines().count() == 1, "{got}");
        let by_snapshot = |s: &str| -> BTreeMap<String, Value> {
            let mut v: Value = serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"));
            // cairn writes restic 0.18's `inode`, which 0.14 leaves out.
            without_inodes(&mut v);
            v.as_array()
                .unwrap()
                .iter()
                .map(|g| {
                    assert_eq!(
                        g["hits"].as_u64().unwrap() as usize,
                        g["matches"].as_array().unwrap().len()
                    );
                    (g["snapshot"].as_str().unwrap().to_string(), g.clone())
                })
                .collect()
        };
        let (w, g) = (by_snapshot(&want), by_snapshot(&got));
        assert_eq!(
            g.keys().collect::<Vec<_>>(),
            w.keys().collect::<Vec<_>>(),
            "{args:?}"
        );
        for (sid, group) in &g {
            let (gm, wm) = (&group["matches"], &w[sid]["matches"]);
            assert_eq!(gm.as_array().unwrap().len(), wm.as_array().unwrap().len());
            for (x, y) in gm.as_array().unwrap().iter().zip(wm.as_array().unwrap()) {
                assert_eq!(
                    x.as_object().unwrap().keys().collect::<Vec<_>>(),
                    y.as_object().unwrap().keys().collect::<Vec<_>>(),
                    "{args:?}: fields of {}",
                    y["path"]
                );
                assert_eq!(x, y, "{args:?}");
            }
        }
        if args == ["*.txt"] {
            assert_eq!(g.len(), 2);
            let m = &g[&f.s1]["matches"][0];
            for k in [
                "path",
                "permissions",
                "type",
                "mode",
                "mtime",
                "atime",
                "ctime",
            ] {
                assert!(m.get(k).is_some(), "{k} missing: {m}");
            }
            for k in ["name", "inode", "content", "subtree"] {
                assert!(m.get(k).is_none(), "{k} present: {m}");
            }
        }
    }
}

/// restic 0.14 skips a directory whose tree it has seen before without a match (so `twin2`,
/// identical to `twin1`, is never reported — restic 0.17 fixed this). cairn reports it in
/// every snapshot, and everything restic reports.
#[test]
fn find_reports_identical_directories_every_time() {
    let Some(f) = fixture() else { return };
    let (want, got) = both(f, &["find", "twin2"]);
    let g = groups(&got);
    assert_eq!(g.len(), 2, "{got}");
    for lines in g.values() {
        assert_eq!(lines, &["/src/twin2", "/src/twin2/x"], "{got}");
    }
    for (head, lines) in groups(&want) {
        for l in lines {
            assert!(g[&head].contains(&l), "{l} missing from\n{got}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// find by id

/// The parsed JSON of a tree blob.
fn cat_tree(f: &Fixture, id: &str) -> Value {
    serde_json::from_str(&run_ok("restic", f, &["cat", "blob", id])).unwrap()
}

fn node<'a>(tree: &'a Value, name: &str) -> &'a Value {
    tree["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {tree}"))
}

/// The `src` tree of a snapshot, read with restic.
fn src_tree(f: &Fixture, snap: &str) -> Value {
    let sn: Value = serde_json::from_str(&run_ok("restic", f, &["cat", "snapshot", snap])).unwrap();
    let root = cat_tree(f, sn["tree"].as_str().unwrap());
    cat_tree(f, node(&root, "src")["subtree"].as_str().unwrap())
}

/// Object reports ("Found blob ..." with the lines that follow), sorted, and the other lines.
fn objects(out: &str) -> (Vec<String>, Vec<String>) {
    let mut blocks: Vec<String> = Vec::new();
    let mut rest = Vec::new();
    let mut in_block = false;
    for l in out.lines() {
        if l.starts_with("Found ") {
            blocks.push(format!("{l}\n"));
            in_block = true;
        } else if in_block && (l.starts_with(" ... ") || l.starts_with("     (tree ")) {
            blocks.last_mut().unwrap().push_str(&format!("{l}\n"));
        } else {
            in_block = false;
            rest.push(l.to_string());
        }
    }
    blocks.sort();
    (blocks, rest)
}

#[test]
fn find_ids_match_restic() {
    let Some(f) = fixture() else { return };
    let t1 = src_tree(f, &f.s1);
    let keep = node(&t1, "keep.txt")["content"][0]
        .as_str()
        .unwrap()
        .to_string();
    let old_mod = node(&t1, "mod.txt")["content"][0]
        .as_str()
        .unwrap()
        .to_string();
    let deep = cat_tree(f, node(&t1, "deep")["subtree"].as_str().unwrap());
    let deep_a = node(&deep, "a")["subtree"].as_str().unwrap().to_string();
    let dup = node(&t1, "dup")["subtree"].as_str().unwrap().to_string();
    // The pack holding keep.txt's data, as restic reports it.
    let packs = run_ok("restic", f, &["find", "--show-pack-id", "--blob", &keep]);
    let pack = packs
        .lines()
        .find_map(|l| l.strip_prefix("Object belongs to pack "))
        .unwrap_or_else(|| panic!("no pack in {packs}"))
        .to_string();

    let cases: Vec<(Vec<&str>, usize)> = vec![
        // (arguments, how many objects must be found)
        (vec!["--blob", &keep], 2),
        (vec!["--blob", &keep[..8]], 2),
        (vec!["--blob", &old_mod, &keep], 3),
        (vec!["--tree", &deep_a], 2),
        (vec!["--tree", &dup[..8]], 2),
        (vec!["-s", &f.s2, "--tree", &dup], 1),
        (vec!["--show-pack-id", "--blob", &keep], 2),
        (vec!["--show-pack-id", "--tree", &deep_a], 2),
        (vec!["--show-pack-id", "--blob", &keep, "0123abcd"], 2),
        (vec!["--pack", &pack], 3),
        (vec!["--pack", &pack[..8], "--show-pack-id"], 3),
        (vec!["--blob", "0123abcd"], 0),
    ];
    for (args, min) in cases {
        let mut a = vec!["find"];
        a.extend(&args);
        let (want, got) = both(f, &a);
        let (gb, gr) = objects(&got);
        let (wb, wr) = objects(&want);
        assert_eq!(gb, wb, "{args:?}\nrestic:\n{want}\ncairn:\n{got}");
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(
            sorted(gr),
            sorted(wr),
            "{args:?}\nrestic:\n{want}\ncairn:\n{got}"
        );
        assert!(gb.len() >= min, "{args:?}: found {}\n{got}", gb.len());
    }

    for args in [
        vec!["--json", "find", "--blob", &keep],
        vec!["--json", "find", "--tree", &deep_a],
        vec!["--json", "find", "--blob", "0123abcd"],
    ] {
        let (want, got) = both(f, &args);
        let sorted = |s: &str| {
            let v: Value = serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"));
            let mut v = v.as_array().unwrap().clone();
            v.sort_by_key(|o| o.to_string());
            v
        };
        assert_eq!(sorted(&got), sorted(&want), "{args:?}");
        assert!(got.ends_with("]\n"));
    }
    let got: Value =
        serde_json::from_str(&run_ok(CAIRN, f, &["--json", "find", "--blob", &keep])).unwrap();
    let o = &got[0];
    assert_eq!(o["object_type"], "blob");
    assert_eq!(o["id"], keep.as_str());
    assert_eq!(o["path"], "/src/keep.txt");
    assert!(o["parent_tree"].is_string() && o["time"].is_string());
}

#[test]
fn find_errors_like_restic() {
    let Some(f) = fixture() else { return };
    for (args, msg) in [
        (vec!["find"], "wrong number of arguments"),
        (
            vec!["find", "--blob", "--tree", "x"],
            "cannot have several ID types",
        ),
        (
            vec!["find", "-O", "yesterday", "x"],
            "unable to parse time: \"yesterday\"",
        ),
        (vec!["find", "["], "syntax error in pattern"),
        (
            vec!["find", "--pack", "0123abcd"],
            "unable to find pack(s): [0123abcd]",
        ),
    ] {
        let r = run("restic", f, &args);
        let c = run(CAIRN, f, &args);
        assert!(!r.status.success(), "restic {args:?} succeeded");
        assert_eq!(c.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&c.stderr);
        assert!(err.contains(msg), "{args:?}: {err}");
        assert!(
            String::from_utf8_lossy(&r.stderr).contains(msg),
            "restic {args:?}"
        );
    }
    // An unknown snapshot is skipped with a warning, as restic does.
    let args = ["find", "-s", "ffffffff", "keep.txt"];
    let (r, c) = (run("restic", f, &args), run(CAIRN, f, &args));
    assert!(r.status.success() && c.status.success());
    assert_eq!(c.stdout, r.stdout);
    assert_eq!(
        String::from_utf8_lossy(&c.stderr).trim(),
        String::from_utf8_lossy(&r.stderr).trim()
    );
}

/// Removes `inode` from every match of a `find --json` answer (restic 0.18 has it, 0.14 not).
fn without_inodes(v: &mut Value) {
    for g in v.as_array_mut().into_iter().flatten() {
        for m in g["matches"].as_array_mut().into_iter().flatten() {
            // Rebuilt rather than removed from, to keep the order of the other fields.
            if let Some(o) = m.as_object() {
                *m = Value::Object(
                    o.iter()
                        .filter(|(k, _)| *k != "inode")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                );
            }
        }
    }
}
