//! restic 0.18 compatibility, continued: ls's sorting and ncdu export, find's order, check's
//! JSON, and the other flags of issue #13 — each the same command line through restic 0.18
//! and cairn on one shared repository, their output compared.

mod common;

use common::{TempDir, Tool};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// restic 0.18 and cairn on one repository (`DIR/repo`, not yet created); None (after a loud
/// skip) when restic 0.18 is not installed.
fn twins(name: &str) -> Option<(TempDir, Tool, Tool)> {
    let t = TempDir::new(name);
    let repo = t.join("repo");
    let restic = Tool::restic018(&repo, "pw")?;
    let cairn = Tool::cairn(&repo, "pw");
    Some((t, restic, cairn))
}

/// Files of distinct sizes, extensions and modification times (so every sort order has
/// something to do), a symlink, an empty directory, and a name with a `<` (escaped in JSON).
fn sortable_tree(t: &TempDir) -> PathBuf {
    let src = t.join("src");
    std::fs::create_dir_all(src.join("d/e")).unwrap();
    std::fs::create_dir_all(src.join("empty-dir")).unwrap();
    let base = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for (i, (name, len)) in [
        ("d/a.txt", 6),
        ("d/b.bin", 3000),
        ("d/e/z.txt", 0),
        ("big.tar.gz", 2_000_000),
        ("c<d.md", 1500),
        (".hidden", 70),
    ]
    .iter()
    .enumerate()
    {
        let p = src.join(name);
        std::fs::write(&p, common::noise(i as u64, *len)).unwrap();
        // Times in an order unrelated to names and sizes.
        let when = base + Duration::from_secs(((i * 7919) % 13) as u64 * 3600);
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_times(
                std::fs::FileTimes::new()
                    .set_modified(when)
                    .set_accessed(when),
            )
            .unwrap();
    }
    std::os::unix::fs::symlink("a.txt", src.join("d/link")).unwrap();
    src
}

/// Runs `args` through both; both must exit `code`; returns (restic's, cairn's) stdout.
fn both(restic: &Tool, cairn: &Tool, cwd: &Path, args: &[&str], code: i32) -> (String, String) {
    let a = restic.run_in(Some(cwd), args).expect_code(code);
    let b = cairn.run_in(Some(cwd), args).expect_code(code);
    (a.stdout_str(), b.stdout_str())
}

#[test]
fn ls_sorts_filters_and_formats_as_restic_018() {
    let Some((t, restic, cairn)) = twins("compat-ls-sort") else {
        return;
    };
    sortable_tree(&t);
    restic.run(&["init"]).ok();
    restic.run_in(Some(t.path()), &["backup", "-q", "src"]).ok();
    let mut cases: Vec<Vec<&str>> = vec![
        vec![],
        vec!["-l"],
        vec!["-l", "--human-readable"],
        vec!["/src/d"],
        vec!["/src/d", "--recursive"],
        vec!["/src/d/e", "/src/empty-dir", "-l"],
        vec!["--reverse"],
        vec!["--json", "--sort", "size", "--reverse"],
        vec!["-q", "/src/d"],
    ];
    for mode in [
        "name",
        "size",
        "time",
        "mtime",
        "atime",
        "ctime",
        "extension",
    ] {
        cases.push(vec!["--sort", mode, "-l"]);
        cases.push(vec!["--sort", mode, "--reverse"]);
    }
    // restic 0.18's ID:SUBFOLDER.
    for (snap, extra) in [("latest:/src/d", &[][..]), ("latest:src", &["--json"][..])] {
        let mut args = vec!["ls", snap];
        args.extend_from_slice(extra);
        let (theirs, ours) = both(&restic, &cairn, t.path(), &args, 0);
        assert!(theirs.contains("/a.txt"), "{args:?}: {theirs}");
        assert_eq!(theirs, ours, "{args:?}");
    }
    for extra in &cases {
        let mut args = vec!["ls", "latest"];
        args.extend_from_slice(extra);
        let (theirs, ours) = both(&restic, &cairn, t.path(), &args, 0);
        assert!(theirs.lines().count() > 1, "{args:?}: {theirs}");
        assert_eq!(theirs, ours, "ls {extra:?}");
    }
    // Refused by both, with the same exit code.
    for bad in [
        &["ls", "latest", "--sort", "colour"][..],
        &["ls", "latest", "--ncdu", "--sort", "size"],
        &["ls", "latest", "--ncdu", "--reverse"],
        &["ls", "--json", "latest", "--ncdu"],
        &["ls", "latest", "src"],
    ] {
        both(&restic, &cairn, t.path(), bad, 1);
    }
}

#[test]
fn ls_ncdu_export_is_restic_018s_and_ncdu_reads_it() {
    let Some((t, restic, cairn)) = twins("compat-ncdu") else {
        return;
    };
    sortable_tree(&t);
    restic.run(&["init"]).ok();
    restic.run_in(Some(t.path()), &["backup", "-q", "src"]).ok();
    for extra in [&[][..], &["/src/d"], &["/src/d", "--recursive"]] {
        let mut args = vec!["ls", "latest", "--ncdu"];
        args.extend_from_slice(extra);
        let (theirs, ours) = both(&restic, &cairn, t.path(), &args, 0);
        // The same JSON, and the same layout line by line (ncdu reads it as a stream).
        let a: serde_json::Value = serde_json::from_str(&theirs).expect("restic's is JSON");
        let b: serde_json::Value =
            serde_json::from_str(&ours).unwrap_or_else(|e| panic!("{e}: {ours}"));
        assert_eq!(a, b, "ncdu {extra:?}");
        // Past the header (the snapshot, whose key order is serde's), byte for byte.
        let tail = |s: &str| s.lines().skip(1).map(String::from).collect::<Vec<_>>();
        assert_eq!(tail(&theirs), tail(&ours), "ncdu {extra:?}");
    }
    // ncdu itself imports the export and writes it back with every name in it.
    if !cairn_testsupport::tool_works("ncdu", "-v") {
        common::loud("SKIP: ncdu is not installed: the export is not fed to ncdu");
        return;
    }
    let export = t.join("export.json");
    let r = cairn.run(&["ls", "latest", "--ncdu"]).ok();
    std::fs::write(&export, &r.stdout).unwrap();
    let back = t.join("back.json");
    let out = std::process::Command::new("ncdu")
        .arg("-f")
        .arg(&export)
        .arg("-o")
        .arg(&back)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    // ncdu 1.18 exits 0 even on a malformed import; it says what is wrong on stderr
    // ("Line L byte B: ...") and writes no export.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !err.contains("Line") && !err.contains("rror"),
        "ncdu: {:?} {err}",
        out.status
    );
    let again = std::fs::read_to_string(&back).expect("ncdu wrote its export");
    for name in [
        "big.tar.gz",
        "a.txt",
        "z.txt",
        "empty-dir",
        "link",
        ".hidden",
    ] {
        assert!(
            again.contains(&format!("\"{name}\"")),
            "ncdu lost {name}: {again}"
        );
    }
}

#[test]
fn find_orders_newest_first_like_restic_018() {
    let Some((t, restic, cairn)) = twins("compat-find") else {
        return;
    };
    let src = sortable_tree(&t);
    restic.run(&["init"]).ok();
    for (i, time) in [
        "2024-01-01 10:00:00",
        "2025-06-01 10:00:00",
        "2023-03-03 10:00:00",
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(src.join(format!("d/a{i}.txt")), format!("{i}")).unwrap();
        restic
            .run_in(Some(t.path()), &["backup", "-q", "--time", time, "src"])
            .ok();
    }
    for extra in [
        &[][..],
        &["--reverse"],
        &["-R", "-l", "--human-readable"],
        &["-l"],
        &["--json"],
        &["--json", "--reverse"],
    ] {
        let mut args = vec!["find", "*.txt"];
        args.extend_from_slice(extra);
        let (theirs, ours) = both(&restic, &cairn, t.path(), &args, 0);
        assert!(theirs.contains("a.txt"), "{args:?}: {theirs}");
        if extra.contains(&"--json") {
            let a: serde_json::Value = serde_json::from_str(&theirs).unwrap();
            let b: serde_json::Value = serde_json::from_str(&ours).unwrap();
            assert_eq!(a, b, "find {extra:?}");
        } else {
            assert_eq!(theirs, ours, "find {extra:?}");
        }
    }
}

/// Copies a repository directory (for damaging one copy per case).
fn copy_repo(from: &Path, to: &Path) {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

/// `check --json ARGS` by both on `repo`: (exit code, summary, error messages) each.
fn check_json(repo: &Path, args: &[&str]) -> Vec<(Option<i32>, serde_json::Value, usize)> {
    let restic = Tool::restic018(repo, "pw").expect("restic 0.18");
    let cairn = Tool::cairn(repo, "pw");
    let mut all = vec!["check", "--json"];
    all.extend_from_slice(args);
    [restic, cairn]
        .iter()
        .map(|tool| {
            let r = tool.run(&all);
            // stdout: the summary alone.
            let lines = r.json_lines();
            assert_eq!(lines.len(), 1, "{}: {}", r.desc, r.stdout_str());
            let summary = lines[0].clone();
            // stderr: JSON messages only, errors and the exit error.
            let mut errors = 0;
            for l in r.stderr_str().lines().filter(|l| l.starts_with('{')) {
                let m: serde_json::Value = serde_json::from_str(l).unwrap();
                match m["message_type"].as_str() {
                    Some("error") => {
                        assert!(m["message"].as_str().is_some_and(|s| s.ends_with('\n')));
                        errors += 1;
                    }
                    Some("exit_error") => assert_eq!(m["code"], 1),
                    other => panic!("{}: unexpected message {other:?}: {l}", r.desc),
                }
            }
            (r.code, summary, errors)
        })
        .collect()
}

/// A repository, check's extra arguments, the exit code both give, the broken packs named.
type CheckCase<'a> = (&'a Path, &'a [&'a str], i32, Option<Vec<&'a str>>);

#[test]
fn check_json_summary_matches_restic_018() {
    let Some((t, restic, cairn)) = twins("compat-check") else {
        return;
    };
    let src = sortable_tree(&t);
    let repo = t.join("repo");
    restic.run(&["init"]).ok();
    restic.run_in(Some(t.path()), &["backup", "-q", "src"]).ok();
    let base = t.join("base");
    copy_repo(&repo, &base);
    // More data in new packs, which become packs no index lists in a copy of `base`.
    std::fs::write(src.join("more"), common::noise(99, 50_000)).unwrap();
    cairn.run_in(Some(t.path()), &["backup", "-q", "src"]).ok();
    let orphaned = t.join("orphaned");
    copy_repo(&base, &orphaned);
    let base_packs: Vec<String> = common::files_in(&base.join("data"))
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for p in common::files_in(&repo.join("data")) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !base_packs.contains(&name) {
            let to = orphaned.join("data").join(&name[..2]).join(&name);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&p, &to).unwrap();
        }
    }
    // The largest pack (file data) damaged in one copy, cut short in another, gone in a third.
    let largest = |r: &Path| -> PathBuf {
        common::files_in(&r.join("data"))
            .into_iter()
            .max_by_key(|p| std::fs::metadata(p).unwrap().len())
            .unwrap()
    };
    let (flipped, truncated, missing) = (t.join("flipped"), t.join("truncated"), t.join("missing"));
    for r in [&flipped, &truncated, &missing] {
        copy_repo(&base, r);
    }
    common::flip(&largest(&flipped), 1000, 0x40);
    let cut = largest(&truncated);
    let len = std::fs::metadata(&cut).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&cut)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let gone = largest(&missing);
    let cut_id = cut.file_name().unwrap().to_string_lossy().into_owned();
    let flipped_id = largest(&flipped)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    std::fs::remove_file(&gone).unwrap();

    // (repository, extra args, exit code, broken packs)
    let cases: Vec<CheckCase> = vec![
        (&base, &[], 0, None),
        (&base, &["--read-data"], 0, None),
        (&orphaned, &[], 0, None),
        (&flipped, &[], 0, None),
        (&flipped, &["--read-data"], 1, Some(vec![&flipped_id])),
        (&truncated, &[], 1, Some(vec![&cut_id])),
        (&missing, &[], 1, None),
    ];
    for (r, args, code, broken) in cases {
        let got = check_json(r, args);
        let what = format!("{} {args:?}", r.file_name().unwrap().to_string_lossy());
        let (theirs, ours) = (&got[0], &got[1]);
        assert_eq!(theirs.0, Some(code), "restic on {what}");
        assert_eq!(ours.0, Some(code), "cairn on {what}");
        let want_broken = broken
            .map(|v| serde_json::json!(v))
            .unwrap_or(serde_json::Value::Null);
        assert_eq!(theirs.1["broken_packs"], want_broken, "restic on {what}");
        // Same keys, same advice, same broken packs; errors counted by both (restic counts
        // some damage once per blob, cairn once per finding).
        for k in [
            "message_type",
            "broken_packs",
            "suggest_repair_index",
            "suggest_prune",
        ] {
            assert_eq!(
                theirs.1[k], ours.1[k],
                "{k} on {what}: {} vs {}",
                theirs.1, ours.1
            );
        }
        let keys =
            |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&theirs.1), keys(&ours.1));
        let (a, b) = (
            theirs.1["num_errors"].as_u64(),
            ours.1["num_errors"].as_u64(),
        );
        assert_eq!(
            a == Some(0),
            b == Some(0),
            "num_errors on {what}: {a:?} vs {b:?}"
        );
        assert_eq!(theirs.2 == 0, ours.2 == 0, "error messages on {what}");
    }
    assert_eq!(
        check_json(&orphaned, &[])[1].1["suggest_prune"],
        true,
        "packs no index lists: prune"
    );
}

#[test]
fn snapshots_table_has_restic_018s_size_column() {
    let Some((t, restic, cairn)) = twins("compat-snapshots") else {
        return;
    };
    let src = sortable_tree(&t);
    restic.run(&["init"]).ok();
    restic
        .run(&["backup", "-q", "--tag", "a,b", src.to_str().unwrap()])
        .ok();
    cairn.run(&["backup", "-q", src.to_str().unwrap()]).ok();
    for args in [
        &["snapshots"][..],
        &["snapshots", "--compact"],
        &["snapshots", "-c", "--group-by", "host"],
        &["snapshots", "--tag", "a"],
    ] {
        let (theirs, ours) = both(&restic, &cairn, t.path(), args, 0);
        assert!(theirs.contains("Size"), "{theirs}");
        assert_eq!(theirs, ours, "{args:?}");
    }
}

/// restic 0.18's `stats --mode debug` writes to stderr; the lock section describes each
/// program's own lock file, whose size differs.
fn debug_stats(tool: &Tool) -> String {
    let r = tool.run(&["stats", "--mode", "debug"]).ok();
    assert!(r.stdout.is_empty(), "{}", r.stdout_str());
    let err = r.stderr_str();
    let mut out = Vec::new();
    let mut in_lock = false;
    for l in err.lines() {
        if l.starts_with("File Type:") || l.starts_with("Blob Type:") {
            in_lock = l == "File Type: lock";
        }
        if in_lock && (l.starts_with("Total Size:") || l.contains(" Byte ")) {
            out.push("(lock file size masked)".to_string());
            continue;
        }
        out.push(l.to_string());
    }
    out.join("\n")
}

#[test]
fn stats_debug_histograms_match_restic_018() {
    let Some((t, restic, cairn)) = twins("compat-stats-debug") else {
        return;
    };
    sortable_tree(&t);
    restic.run(&["init"]).ok();
    restic.run_in(Some(t.path()), &["backup", "-q", "src"]).ok();
    let (theirs, ours) = (debug_stats(&restic), debug_stats(&cairn));
    assert!(theirs.contains("Blob Type: tree"), "{theirs}");
    assert_eq!(theirs, ours);
}

#[test]
fn rewrite_snapshot_summary_recounts_as_restic_018() {
    let Some((t, restic, cairn)) = twins("compat-rewrite-summary") else {
        return;
    };
    let src = sortable_tree(&t);
    // restic 0.14 writes snapshots without a summary.
    let old = Tool::restic(&t.join("repo"), "pw");
    if !common::restic_available() {
        common::loud("SKIP: restic 0.14 not installed");
        return;
    }
    old.run(&["init"]).ok();
    old.run(&["backup", "-q", src.to_str().unwrap()]).ok();
    let repo2 = t.join("repo2");
    copy_repo(&t.join("repo"), &repo2);
    let restic2 = Tool::restic018(&repo2, "pw").unwrap();
    let theirs = restic
        .run(&["rewrite", "--snapshot-summary", "--forget"])
        .ok();
    let ours = Tool::cairn(&repo2, "pw")
        .run(&["rewrite", "--snapshot-summary", "--forget"])
        .ok();
    assert!(
        theirs.stdout_str().contains("modified 1 snapshots"),
        "{}",
        theirs.stdout_str()
    );
    assert!(
        ours.stdout_str().contains("modified 1 snapshots"),
        "{}",
        ours.stdout_str()
    );
    let summary = |tool: &Tool| {
        let v = tool.snapshots_json();
        assert_eq!(v.len(), 1);
        v[0]["summary"].clone()
    };
    let (a, b) = (summary(&restic), summary(&restic2));
    assert_eq!(a, b, "restic 0.18 reads the same summary from both");
    assert_eq!(a["total_files_processed"], 6);
    assert_eq!(a["backup_start"], "0001-01-01T00:00:00Z");
    // Nothing left to do: both leave the snapshot alone.
    for tool in [&restic, &cairn] {
        let r = tool.run(&["rewrite", "-s"]).ok();
        assert!(
            r.stdout_str().contains("no snapshots were modified"),
            "{}",
            r.stdout_str()
        );
    }
}

#[test]
fn backup_group_by_no_scan_and_cloud_files_as_restic_018() {
    let Some((t, restic, cairn)) = twins("compat-backup-group") else {
        return;
    };
    let src = sortable_tree(&t);
    let s = src.to_str().unwrap();
    restic.run(&["init"]).ok();
    restic.run(&["backup", "-q", "--tag", "a", s]).ok();
    // (args, is a parent used?)
    for (extra, parent) in [
        (&["--tag", "b"][..], true),
        (&["--tag", "b", "--group-by", "host,paths,tags"], false),
        (&["--tag", "a", "--group-by", "tags"], true),
        (&["--host", "other"], false),
        (&["--host", "other", "--group-by", "paths"], true),
        (&["--host", "other", "--group-by", ""], true),
    ] {
        let mut outs = Vec::new();
        for tool in [&restic, &cairn] {
            let mut args = vec!["backup", "--json", "--no-scan", "--dry-run", s];
            args.extend_from_slice(extra);
            let r = tool.run(&args).ok();
            // A parent: files unmodified; none: all new.
            let sum = r.summary();
            outs.push((sum["files_unmodified"].clone(), sum["files_new"].clone()));
        }
        assert_eq!(outs[0], outs[1], "{extra:?}");
        assert_eq!(outs[0].0 != 0, parent, "{extra:?}: {outs:?}");
    }
    let r = cairn
        .run(&["backup", "--exclude-cloud-files", s])
        .expect_code(1);
    assert!(r.stderr_str().contains("only supported on Windows"));
}

/// Data packs of a repository.
fn pack_count(repo: &Path) -> usize {
    common::files_in(&repo.join("data")).len()
}

#[test]
fn prune_repack_smaller_than_and_unsafe_recovery_as_restic_018() {
    let Some((t, restic, _cairn)) = twins("compat-prune") else {
        return;
    };
    let repo = t.join("repo");
    restic.run(&["init"]).ok();
    // Twelve backups of 20 kB each: twelve small data packs and twelve tiny tree packs.
    let src = t.join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..12 {
        std::fs::write(src.join(format!("f{i}")), common::noise(100 + i, 20_000)).unwrap();
        restic.run(&["backup", "-q", src.to_str().unwrap()]).ok();
    }
    assert_eq!(pack_count(&repo), 24);
    let id =
        serde_json::from_slice::<serde_json::Value>(&restic.run(&["cat", "config"]).ok().stdout)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
    // (args, exit code)
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["prune", "--repack-smaller-than", "5k"], 0),
        (vec!["prune"], 0),
        (vec!["prune", "--repack-smaller-than", "100M"], 1),
        (vec!["prune", "--repack-smaller-than", "lots"], 1),
        (
            vec!["prune", "--unsafe-recover-no-free-space", "not-the-id"],
            1,
        ),
        (
            vec![
                "forget",
                "--keep-last",
                "6",
                "--prune",
                "--repack-smaller-than",
                "5k",
            ],
            0,
        ),
    ];
    for (n, (args, code)) in cases.iter().enumerate() {
        let mut counts = Vec::new();
        for who in ["restic", "cairn"] {
            let r = t.join(format!("p{n}-{who}"));
            copy_repo(&repo, &r);
            let tool = if who == "restic" {
                Tool::restic018(&r, "pw").unwrap()
            } else {
                Tool::cairn(&r, "pw")
            };
            tool.run(args).expect_code(*code);
            counts.push(pack_count(&r));
            if *code == 0 && common::restic_available() {
                Tool::restic(&r, "pw").run(&["check", "--read-data"]).ok();
            }
        }
        assert_eq!(counts[0], counts[1], "{args:?}: packs left (restic, cairn)");
        if n == 0 {
            assert_eq!(counts[0], 13, "only the tree packs are repacked");
        }
    }
    // With the repository's id: unused packs go, nothing is repacked, the index is new.
    let mut counts = Vec::new();
    for who in ["restic", "cairn"] {
        let r = t.join(format!("unsafe-{who}"));
        copy_repo(&repo, &r);
        let tool = if who == "restic" {
            Tool::restic018(&r, "pw").unwrap()
        } else {
            Tool::cairn(&r, "pw")
        };
        tool.run(&["forget", "--keep-last", "6"]).ok();
        tool.run(&["prune", "--unsafe-recover-no-free-space", &id])
            .ok();
        counts.push((pack_count(&r), common::files_in(&r.join("index")).len()));
        if common::restic_available() {
            Tool::restic(&r, "pw").run(&["check", "--read-data"]).ok();
        }
    }
    assert_eq!(
        counts[0], counts[1],
        "(packs, index files) after unsafe recovery"
    );
    assert!(counts[0].0 < 24, "{counts:?}");
}

/// `name=value` of every extended attribute of `p` (through getfattr), sorted.
fn xattrs_of(p: &Path) -> Vec<String> {
    let out = std::process::Command::new("getfattr")
        .args(["--absolute-names", "-d", "-m", "-"])
        .arg(p)
        .output()
        .unwrap();
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(String::from)
        .collect();
    v.sort();
    v
}

#[test]
fn restore_xattr_filters_match_restic_018() {
    let Some((t, restic, cairn)) = twins("compat-xattr") else {
        return;
    };
    if !common::getfattr_available() {
        return;
    }
    let src = t.join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/f"), b"x").unwrap();
    for p in [src.join("d/f"), src.join("d")] {
        for (k, v) in [
            ("user.alpha", "1"),
            ("user.beta", "2"),
            ("user.keep.me", "3"),
        ] {
            let st = std::process::Command::new("setfattr")
                .args(["-n", k, "-v", v])
                .arg(&p)
                .status()
                .unwrap();
            assert!(st.success(), "setfattr");
        }
    }
    restic.run(&["init"]).ok();
    restic.run_in(Some(t.path()), &["backup", "-q", "src"]).ok();
    let cases: &[&[&str]] = &[
        &[],
        &["--exclude-xattr", "user.a*"],
        &["--exclude-xattr", "user.alpha", "--exclude-xattr", "*.beta"],
        &["--include-xattr", "user.keep.*"],
        &["--include-xattr", "nothing"],
    ];
    for (n, extra) in cases.iter().enumerate() {
        let mut got = Vec::new();
        for tool in [&restic, &cairn] {
            let target = t.join(format!("x{n}-{}", tool.is_restic));
            let tt = target.to_str().unwrap();
            let mut args = vec!["restore", "latest", "--target", tt];
            args.extend_from_slice(extra);
            tool.run(&args).ok();
            got.push((
                xattrs_of(&target.join("src/d")),
                xattrs_of(&target.join("src/d/f")),
            ));
        }
        assert_eq!(got[0], got[1], "restore {extra:?}");
        if n == 0 {
            assert_eq!(got[0].0.len(), 3, "{got:?}");
        }
    }
    for tool in [&restic, &cairn] {
        let tt = t.join("both");
        tool.run(&[
            "restore",
            "latest",
            "--target",
            tt.to_str().unwrap(),
            "--include-xattr",
            "a",
            "--exclude-xattr",
            "b",
        ])
        .expect_code(1);
    }
}

#[test]
fn restore_json_status_messages_are_restic_018s() {
    let Some((t, restic, cairn)) = twins("compat-restore-status") else {
        return;
    };
    let src = t.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("big"), common::noise(5, 48 << 20)).unwrap();
    std::fs::write(src.join("small"), b"small").unwrap();
    restic.run(&["init"]).ok();
    restic.run_in(Some(t.path()), &["backup", "-q", "src"]).ok();
    let allowed = [
        "message_type",
        "seconds_elapsed",
        "percent_done",
        "total_files",
        "files_restored",
        "files_skipped",
        "files_deleted",
        "total_bytes",
        "bytes_restored",
        "bytes_skipped",
    ];
    for tool in [&restic, &cairn] {
        let target = t.join(format!("status-{}", tool.is_restic));
        let r = tool
            .run_env(
                None,
                &[("RESTIC_PROGRESS_FPS", "60")],
                &[
                    "restore",
                    "latest",
                    "--json",
                    "--target",
                    target.to_str().unwrap(),
                ],
            )
            .ok();
        let msgs = r.json_lines();
        let status: Vec<_> = msgs
            .iter()
            .filter(|m| m["message_type"] == "status")
            .collect();
        assert!(!status.is_empty(), "{}: no status messages", r.desc);
        for m in &status {
            for k in m.as_object().unwrap().keys() {
                assert!(allowed.contains(&k.as_str()), "{}: {k} in {m}", r.desc);
            }
            let p = m["percent_done"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&p), "{m}");
        }
        assert_eq!(
            msgs.last().unwrap()["message_type"],
            "summary",
            "{}",
            r.desc
        );
        // Quiet: no status at all.
        let q = tool
            .run(&[
                "restore",
                "latest",
                "--json",
                "-q",
                "--target",
                t.join(format!("quiet-{}", tool.is_restic))
                    .to_str()
                    .unwrap(),
            ])
            .ok();
        assert!(
            q.json_lines().iter().all(|m| m["message_type"] != "status"),
            "{}",
            q.desc
        );
    }
}

#[test]
fn recover_finds_the_roots_restic_018_finds() {
    let Some((t, restic, _cairn)) = twins("compat-recover") else {
        return;
    };
    let src = sortable_tree(&t);
    let repo = t.join("repo");
    restic.run(&["init"]).ok();
    restic.run(&["backup", "-q", src.to_str().unwrap()]).ok();
    std::fs::write(src.join("d/later"), b"a file of the second snapshot").unwrap();
    restic.run(&["backup", "-q", src.to_str().unwrap()]).ok();
    // Nothing lost yet: both find nothing to recover.
    let intact = t.join("intact");
    copy_repo(&repo, &intact);
    let c = Tool::cairn(&intact, "pw");
    let out = c.run(&["recover"]).ok().stdout_str();
    assert!(
        out.contains("found 0 unreferenced roots") && out.contains("no snapshot to write."),
        "{out}"
    );
    let out = Tool::restic018(&intact, "pw")
        .unwrap()
        .run(&["recover"])
        .ok()
        .stdout_str();
    assert!(out.contains("found 0 unreferenced roots"), "{out}");

    // The first snapshot's file is lost; its tree is still there.
    let first = common::files_in(&repo.join("snapshots"))
        .into_iter()
        .min_by_key(|p| {
            let id = p.file_name().unwrap().to_string_lossy().into_owned();
            restic
                .snapshots_json()
                .iter()
                .find(|s| s["id"] == id.as_str())
                .map(|s| s["time"].as_str().unwrap().to_string())
                .unwrap()
        })
        .unwrap();
    std::fs::remove_file(&first).unwrap();
    let mut listings = Vec::new();
    for who in ["restic", "cairn"] {
        let r = t.join(format!("lost-{who}"));
        copy_repo(&repo, &r);
        let tool = if who == "restic" {
            Tool::restic018(&r, "pw").unwrap()
        } else {
            Tool::cairn(&r, "pw")
        };
        let out = tool.run(&["recover"]).ok().stdout_str();
        assert!(out.contains("found 1 unreferenced roots"), "{who}: {out}");
        assert!(out.contains("saved new snapshot"), "{who}: {out}");
        // Read back by restic 0.18: the recovered snapshot and what it holds.
        let r18 = Tool::restic018(&r, "pw").unwrap();
        let snaps = r18
            .run(&["snapshots", "--json", "--tag", "recovered"])
            .ok()
            .json();
        let s = &snaps.as_array().unwrap()[0];
        assert_eq!(s["paths"], serde_json::json!(["/recover"]), "{who}");
        let ls = r18
            .run(&["ls", "latest", "--tag", "recovered"])
            .ok()
            .stdout_str();
        // The recovered root holds the first snapshot's tree: no `later` file.
        let paths: Vec<String> = ls.lines().skip(1).map(String::from).collect();
        assert!(paths.iter().any(|p| p.ends_with("/d/a.txt")), "{who}: {ls}");
        assert!(!paths.iter().any(|p| p.ends_with("/later")), "{who}: {ls}");
        listings.push(paths);
        r18.run(&["check", "--read-data"]).ok();
        if common::restic_available() {
            Tool::restic(&r, "pw").run(&["check", "--read-data"]).ok();
        }
    }
    assert_eq!(listings[0], listings[1]);
}

#[test]
fn aws_profiles_from_a_shared_credentials_file_as_restic_018() {
    let Some(g) = common::Garage::start() else {
        return;
    };
    let t = TempDir::new("compat-aws-profile");
    let loc = g.location("profiled");
    let Some(restic) = Tool::restic018(Path::new(&loc), "pw") else {
        return;
    };
    let cairn = Tool::cairn(Path::new(&loc), "pw");
    let creds = t.join("credentials");
    std::fs::write(
        &creds,
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = wrong\n\n\
             # the one that works\n[cairn]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            g.access_key_id(),
            g.access_key_id(),
            g.secret_access_key()
        ),
    )
    .unwrap();
    let file = creds.to_str().unwrap();
    let env = |profile: &'static str| {
        vec![
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", ""),
            ("AWS_SESSION_TOKEN", ""),
            ("AWS_DEFAULT_REGION", "garage"),
            ("AWS_SHARED_CREDENTIALS_FILE", file),
            ("AWS_PROFILE", profile),
        ]
    };
    let src = sortable_tree(&t);
    restic.run_env(None, &env("cairn"), &["init"]).ok();
    restic
        .run_env(
            None,
            &env("cairn"),
            &["backup", "-q", src.to_str().unwrap()],
        )
        .ok();
    cairn
        .run_env(
            None,
            &env("cairn"),
            &["backup", "-q", src.to_str().unwrap()],
        )
        .ok();
    for tool in [&restic, &cairn] {
        let v = tool
            .run_env(None, &env("cairn"), &["snapshots", "--json"])
            .ok()
            .json();
        assert_eq!(v.as_array().map(|a| a.len()), Some(2), "{v}");
    }
    // The default profile's secret is wrong (not tried with restic, which may retry a
    // refused signature for minutes).
    let r = cairn.run_env(None, &env("default"), &["snapshots"]);
    assert_ne!(r.code, Some(0), "{} with the default profile", r.desc);
    // A profile the file lacks gives cairn no keys (restic would go on to ask a cloud
    // metadata service, which is not here).
    let r = cairn
        .run_env(None, &env("nosuch"), &["snapshots"])
        .expect_code(1);
    assert!(r.stderr_str().contains("AWS_PROFILE"), "{}", r.stderr_str());
}

/// The progress lines a command drew on a terminal (run under `script`, which gives it one).
fn terminal_lines(tool: &Tool, args: &[&str]) -> Option<Vec<String>> {
    if !cairn_testsupport::tool_works("script", "--version") {
        common::loud("SKIP: script (util-linux) is not installed: no terminal for the test");
        return None;
    }
    let mut cmd = format!("{} -r {}", tool.prog.display(), tool.repo.display());
    if tool.is_restic {
        cmd.push_str(" --no-cache");
    }
    for a in args {
        cmd.push(' ');
        cmd.push_str(a);
    }
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("RESTIC_PASSWORD", &tool.password)
        .env("CAIRN_TEST_KDF", "fast")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .split(['\r', '\n'])
            .map(|l| l.trim_start_matches("\x1b[2K"))
            // Progress lines only, not the closing "Summary: Restored N files/dirs ...".
            .filter(|l| l.starts_with('[') && l.contains("files/dirs"))
            .map(String::from)
            .collect(),
    )
}

#[test]
fn restore_progress_line_on_a_terminal_is_restic_018s() {
    let Some((t, restic, cairn)) = twins("compat-restore-tty") else {
        return;
    };
    let src = t.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("big"), common::noise(9, 64 << 20)).unwrap();
    restic.run(&["init"]).ok();
    restic.run_in(Some(t.path()), &["backup", "-q", "src"]).ok();
    let mut shapes = Vec::new();
    for tool in [&restic, &cairn] {
        let target = t.join(format!("tty-{}", tool.is_restic));
        let Some(lines) = terminal_lines(
            tool,
            &["restore", "latest", "--target", target.to_str().unwrap()],
        ) else {
            return;
        };
        assert!(
            !lines.is_empty(),
            "{}: no progress line",
            tool.prog.display()
        );
        // "[0:01] 12.34%  0 files/dirs 7.890 MiB, total 3 files/dirs 64.000 MiB"
        for l in &lines {
            let (head, total) = l.split_once(", total ").unwrap_or_else(|| panic!("{l:?}"));
            let (time, rest) = head.split_once("] ").unwrap_or_else(|| panic!("{l:?}"));
            assert!(time.starts_with('[') && time.contains(':'), "{l:?}");
            let (pct, done) = rest.split_once("%  ").unwrap_or_else(|| panic!("{l:?}"));
            assert!(
                pct.parse::<f64>().is_ok_and(|p| (0.0..=100.0).contains(&p)),
                "{l:?}"
            );
            assert!(done.contains(" files/dirs "), "{l:?}");
            shapes.push((tool.is_restic, total.to_string()));
        }
    }
    // The same totals: every file and directory, and the bytes of the files.
    let totals = |r: bool| -> BTreeSet<String> {
        shapes
            .iter()
            .filter(|s| s.0 == r)
            .map(|s| s.1.clone())
            .collect()
    };
    assert_eq!(totals(true), totals(false));
}
