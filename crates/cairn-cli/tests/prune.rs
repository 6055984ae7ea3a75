//! prune: decides as restic does (the plan's numbers are compared with restic's own dry run
//! on the same repository), never loses a needed blob (restic check --read-data and full
//! restores after every prune), handles restic's edge-case fixtures as restic does, and
//! survives being killed at any moment.

mod common;

use common::{
    compare_dirs, cpu_of_run, extract_fixture, kill_at_cpu, restored, CompareOptions, TempDir, Tool,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

const PW: &str = "pw";

fn files(repo: &Path, dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    let root = repo.join(dir);
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let n = e.file_name().to_string_lossy().into_owned();
                if !n.starts_with('.') {
                    out.push(n);
                }
            }
        }
    }
    out.sort();
    out
}

/// The plan lines restic and cairn both print ("to repack: ...", "remaining: ...").
fn plan_lines(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| {
            [
                "to repack:",
                "this removes:",
                "to delete:",
                "total prune:",
                "remaining:",
                "unused size after prune:",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// Writes `n` files of random (incompressible) data and some text under `dir`.
fn write_files(dir: &Path, seed: u64, n: usize, size: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in 0..n {
        let mut data = Vec::with_capacity(size);
        while data.len() < size {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.extend_from_slice(&x.to_le_bytes());
        }
        data.truncate(size);
        std::fs::write(dir.join(format!("f{seed}-{i}.bin")), &data).unwrap();
        std::fs::write(
            dir.join(format!("t{seed}-{i}.txt")),
            format!("text {seed} {i}\n").repeat(200),
        )
        .unwrap();
    }
}

/// A repository with six snapshots of a tree that changes between them (files added and
/// deleted), so that forgetting some leaves packs unused, partly used and fully used.
fn history(t: &TempDir, tool: &Tool) -> PathBuf {
    let src = t.join("src");
    for round in 0..6u64 {
        write_files(&src.join(format!("r{round}")), round, 6, 300_000);
        if round >= 2 {
            let _ = std::fs::remove_dir_all(src.join(format!("r{}", round - 2)));
        }
        let time = format!("2024-01-0{} 10:00:00", round + 1);
        tool.run(&["backup", "-q", "--time", &time, src.to_str().unwrap()])
            .ok();
    }
    src
}

fn copy_dir(from: &Path, to: &Path) {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Restores every snapshot into `dir/<short id>`.
fn restore_all(tool: &Tool, dir: &Path) -> Vec<String> {
    let ids: Vec<String> = tool.snapshot_ids().into_iter().map(|(id, _)| id).collect();
    for id in &ids {
        tool.run(&[
            "restore",
            id,
            "--target",
            dir.join(&id[..8]).to_str().unwrap(),
        ])
        .ok();
    }
    ids
}

/// Compares two restores of each snapshot below the backed-up directory `src` (the restore
/// targets themselves were made at different times).
fn assert_same_restores(a: &Path, b: &Path, ids: &[String], src: &Path) {
    let rel = src.strip_prefix("/").unwrap();
    for id in ids {
        let d = compare_dirs(
            &a.join(&id[..8]).join(rel),
            &b.join(&id[..8]).join(rel),
            CompareOptions::default(),
        );
        assert!(d.is_empty(), "snapshot {id} restores differently: {d:?}");
    }
}

#[test]
fn plans_match_restic_and_pruned_repositories_stay_whole() {
    require_restic!();
    let t = TempDir::new("prune-plan");
    let base = t.join("base");
    let cairn = Tool::cairn(&base, PW);
    cairn.run(&["init"]).ok();
    history(&t, &cairn);
    // Forget the two oldest: their files are gone from the tree, their data unused.
    cairn.run(&["forget", "--keep-last", "4"]).ok();
    let before = t.join("before");
    let ids = restore_all(&cairn, &before);

    for (i, opts) in [
        vec![],
        vec!["--max-unused", "0"],
        vec!["--max-unused", "unlimited"],
        vec!["--max-unused", "50%"],
        vec!["--repack-small"],
        vec!["--repack-uncompressed"],
        vec!["--max-repack-size", "1M", "--max-unused", "0"],
        vec!["--repack-cacheable-only", "--max-unused", "0"],
    ]
    .into_iter()
    .enumerate()
    {
        let repo = t.join(format!("repo{i}"));
        copy_dir(&base, &repo);
        let c = Tool::cairn(&repo, PW);
        let r = Tool::restic(&repo, PW);
        let mut args = vec!["prune", "--dry-run"];
        args.extend(&opts);
        let want = plan_lines(&r.run(&args).ok().stdout_str());
        let got = plan_lines(&c.run(&args).ok().stdout_str());
        assert_eq!(got, want, "plan for {opts:?}");
        assert_eq!(want.len(), 6, "restic's plan not found for {opts:?}");

        let mut args = vec!["prune"];
        args.extend(&opts);
        c.run(&args).ok();
        r.run(&["check", "--read-data"]).ok();
        let after = t.join(format!("after{i}"));
        assert_eq!(restore_all(&c, &after), ids);
        assert_same_restores(&before, &after, &ids, &t.join("src"));
        // Nothing left to do that restic would do either.
        let again = plan_lines(&r.run(&["prune", "--dry-run"]).ok().stdout_str());
        let ours = plan_lines(&c.run(&["prune", "--dry-run"]).ok().stdout_str());
        assert_eq!(ours, again, "second plan after {opts:?}");
    }
}

#[test]
fn forget_prune_frees_space_and_keeps_what_remains() {
    require_restic!();
    let t = TempDir::new("prune-forget");
    let repo = t.join("repo");
    let cairn = Tool::cairn(&repo, PW);
    cairn.run(&["init"]).ok();
    history(&t, &cairn);
    let size_before = common::du_sb(&repo.join("data"));
    let r = cairn.run(&["forget", "--keep-last", "1", "--prune"]).ok();
    assert!(
        r.stdout_str().contains("running prune"),
        "{}",
        r.stdout_str()
    );
    let size_after = common::du_sb(&repo.join("data"));
    assert!(
        size_after * 2 < size_before,
        "prune freed too little: {size_before} -> {size_after}"
    );
    let restic = Tool::restic(&repo, PW);
    restic.run(&["check", "--read-data"]).ok();
    let out = t.join("out");
    cairn
        .run(&["restore", "latest", "--target", out.to_str().unwrap()])
        .ok();
    let d = compare_dirs(
        &t.join("src"),
        &restored(&out, &t.join("src")),
        CompareOptions::default(),
    );
    assert!(d.is_empty(), "{d:?}");
}

#[test]
fn prune_of_a_restic_repository_keeps_every_snapshot_restorable_by_restic() {
    require_restic!();
    let t = TempDir::new("prune-restic");
    let repo = t.join("repo");
    let restic = Tool::restic(&repo, PW);
    restic.run(&["init"]).ok();
    history(&t, &restic);
    restic.run(&["forget", "--keep-last", "3"]).ok();
    let before = t.join("before");
    let ids = restore_all(&restic, &before);
    let cairn = Tool::cairn(&repo, PW);
    cairn.run(&["prune", "--max-unused", "0"]).ok();
    restic.run(&["check", "--read-data"]).ok();
    let after = t.join("after");
    assert_eq!(restore_all(&restic, &after), ids);
    assert_same_restores(&before, &after, &ids, &t.join("src"));
}

/// restic's edge-case repositories: (fixture, prune succeeds?).
const FIXTURES: &[(&str, bool)] = &[
    ("repo-index-missing", false),
    ("repo-index-missing-blob", false),
    ("repo-data-missing", false),
    ("repo-unused-data-missing", true),
    ("repo-unreferenced-data", true),
    ("repo-obsolete-index", true),
    ("repo-mixed", true),
    ("repo-duplicates", true),
];

#[test]
fn restic_edge_case_fixtures_prune_as_restic_does() {
    require_restic!();
    for (name, ok) in FIXTURES {
        let t = TempDir::new("prune-fixture");
        extract_fixture(&format!("cmd_restic--{name}.tar.gz"), t.path());
        let repo = t.join("repo");
        let _ = std::process::Command::new("chmod")
            .args(["-R", "u+w"])
            .arg(&repo)
            .status();
        let cairn = Tool::cairn(&repo, "geheim");
        let packs_before = files(&repo, "data");
        let index_before = files(&repo, "index");
        let r = cairn.run(&["prune"]);
        if !ok {
            assert_eq!(r.code, Some(1), "{name}: {}", r.stderr_str());
            assert_eq!(r.stderr_str().trim().lines().count(), 1, "{name}: one line");
            assert_eq!(
                files(&repo, "data"),
                packs_before,
                "{name}: nothing deleted"
            );
            assert_eq!(
                files(&repo, "index"),
                index_before,
                "{name}: index untouched"
            );
            continue;
        }
        assert_eq!(r.code, Some(0), "{name}: {}", r.stderr_str());
        Tool::restic(&repo, "geheim")
            .run(&["check", "--read-data"])
            .ok();
        let packs = files(&repo, "data");
        let index = files(&repo, "index");
        match *name {
            "repo-unreferenced-data" => {
                let gone: Vec<_> = packs_before.iter().filter(|p| !packs.contains(p)).collect();
                assert_eq!(gone.len(), 1, "{name}");
                assert!(gone[0].starts_with("f885cf59"), "{name}: {gone:?}");
            }
            "repo-obsolete-index" => {
                assert_eq!(packs, packs_before, "{name}");
                assert_eq!(index, index_before, "{name}: both index files stay");
            }
            "repo-mixed" => {
                assert_eq!(packs.len(), 2, "{name}: split into a tree and a data pack");
                assert!(!packs.iter().any(|p| p.starts_with("d9de8b05")), "{name}");
            }
            "repo-duplicates" => {
                assert_eq!(index.len(), 1, "{name}");
                assert_eq!(packs.len(), packs_before.len() - 2, "{name}");
            }
            "repo-unused-data-missing" => {
                assert_eq!(index.len(), 1, "{name}: {index:?}");
                assert_eq!(packs.len(), packs_before.len() - 1, "{name}");
            }
            _ => {}
        }
        // A second prune has nothing to do.
        let again = cairn.run(&["prune"]).ok();
        assert_eq!(
            files(&repo, "data"),
            packs,
            "{name}: second prune changed packs"
        );
        assert!(again.stdout_str().contains("done"));
    }
}

#[test]
fn a_prune_killed_at_any_moment_loses_nothing() {
    require_restic!();
    let t = TempDir::new("prune-kill");
    let base = t.join("base");
    let cairn = Tool::cairn(&base, PW);
    cairn.run(&["init"]).ok();
    history(&t, &cairn);
    cairn.run(&["forget", "--keep-last", "3"]).ok();
    let before = t.join("before");
    let ids = restore_all(&cairn, &before);
    let restic = Tool::restic(&base, PW);
    // Measure a prune's CPU time (the smaller of two), then kill others at moments spread over
    // the first four fifths of that: CPU time, unlike wall time, does not stretch when the
    // machine gets busier between the measurement and the kills.
    let mut full = Duration::MAX;
    for p in 0..2 {
        let probe = t.join(format!("probe{p}"));
        copy_dir(&base, &probe);
        let mut child = Tool::cairn(&probe, PW).spawn(&[], &["prune", "--max-unused", "0"]);
        drop(child.stdin.take());
        full = full.min(cpu_of_run(child));
    }
    let mut killed_midway = 0;
    for i in 0..16u32 {
        let ms = (full.as_millis() as u64 * (u64::from(i) + 1) / 20).max(1);
        let repo = t.join(format!("k{i}"));
        copy_dir(&base, &repo);
        let c = Tool::cairn(&repo, PW);
        let mut child = c.spawn(&[], &["prune", "--max-unused", "0"]);
        drop(child.stdin.take());
        if kill_at_cpu(&mut child, Duration::from_millis(ms)) {
            killed_midway += 1;
        }
        let _ = child.wait();
        let r = Tool::restic(&repo, PW);
        // A killed prune leaves its lock; restic 0.14 needs it removed first.
        c.run(&["unlock"]).ok();
        r.run(&["check"]).ok();
        assert_eq!(
            c.snapshot_ids(),
            cairn.snapshot_ids(),
            "kill after {ms} ms of CPU"
        );
        // ... and the next prune finishes the job.
        c.run(&["prune", "--max-unused", "0"]).ok();
        r.run(&["check", "--read-data"]).ok();
        if i % 4 == 0 {
            let after = t.join(format!("after{i}"));
            restore_all(&c, &after);
            assert_same_restores(&before, &after, &ids, &t.join("src"));
        }
    }
    // Run times vary from run to run; most kills, not all, land mid-run.
    assert!(
        killed_midway >= 6,
        "only {killed_midway} kills hit a running prune (a full one took {full:?})"
    );
    restic.run(&["check"]).ok();
}

#[test]
fn a_forget_killed_at_any_moment_keeps_every_snapshot_it_should_keep() {
    require_restic!();
    let t = TempDir::new("forget-kill");
    let base = t.join("base");
    let cairn = Tool::cairn(&base, PW);
    cairn.run(&["init"]).ok();
    history(&t, &cairn);
    // Many snapshots, so that removing them takes a moment.
    let src = t.join("src");
    for day in 10..40 {
        let time = format!("2024-02-{:02} 10:00:00", day % 28 + 1);
        cairn
            .run(&["backup", "-q", "--time", &time, src.to_str().unwrap()])
            .ok();
    }
    let all = cairn.snapshot_ids();
    let probe = t.join("probe");
    copy_dir(&base, &probe);
    Tool::cairn(&probe, PW)
        .run(&["forget", "--keep-last", "5"])
        .ok();
    let kept = Tool::cairn(&probe, PW).snapshot_ids();
    for (i, ms) in [1u64, 3, 6, 10, 15, 22, 30, 45, 60, 90, 120, 200]
        .iter()
        .enumerate()
    {
        let repo = t.join(format!("k{i}"));
        copy_dir(&base, &repo);
        let c = Tool::cairn(&repo, PW);
        let mut child = c.spawn(&[], &["forget", "--keep-last", "5", "--prune"]);
        std::thread::sleep(Duration::from_millis(*ms));
        let _ = child.kill();
        let _ = child.wait();
        c.run(&["unlock"]).ok();
        Tool::restic(&repo, PW).run(&["check"]).ok();
        let now = c.snapshot_ids();
        assert!(
            kept.iter().all(|k| now.contains(k)),
            "a snapshot the policy keeps vanished (kill after {ms} ms)"
        );
        assert!(now.iter().all(|n| all.contains(n)));
        // Running it again completes it.
        c.run(&["forget", "--keep-last", "5", "--prune"]).ok();
        assert_eq!(c.snapshot_ids(), kept);
        Tool::restic(&repo, PW).run(&["check", "--read-data"]).ok();
    }
}
