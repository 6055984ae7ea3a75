//! Crash safety of `copy` and `repair index`: SIGKILL at many moments (spread over the run,
//! plus pseudo-random ones whose seed is printed). After every kill restic's `check` accepts
//! the repository, every snapshot that existed before is still there and restores, and cairn
//! can back up into it again; a re-run then finishes the job.

mod common;

use common::{busy_tree, compare_dirs, restored, CompareOptions, TempDir, Tool};
use std::path::Path;
use std::time::{Duration, Instant};

const PW: &str = "crash-pw";

/// Many small files and a few large ones, so that a copy takes a noticeable time.
fn make_tree(root: &Path, seed: u32) {
    busy_tree(root, seed, 10, 6, 8_000_000);
}

/// A small pseudo-random generator for kill times; the seed is printed for reruns.
struct Rng(u64);

impl Rng {
    fn from_env_or_time() -> Rng {
        let seed = std::env::var("CAIRN_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("kill-time seed: CAIRN_CRASH_SEED={seed}");
        Rng(seed | 1)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Kill times: evenly spread fractions of `full`, then random ones. `full` is wall time here,
/// not CPU time as in crash.rs: `repair index` uses about 10 ms of CPU, below what the kernel
/// accounts per tick, so CPU-timed kills all landed at 0 (tried, and reverted).
fn kill_times(full: Duration, spread: u32, random: u32, rng: &mut Rng) -> Vec<Duration> {
    let mut v: Vec<Duration> = (0..spread)
        .map(|i| full.mul_f64((i as f64 + 0.5) / spread as f64))
        .collect();
    v.extend((0..random).map(|_| full.mul_f64(rng.unit())));
    v
}

/// Starts `tool ARGS` with extra environment, kills it (SIGKILL) after `delay`; returns
/// whether it was still running then.
fn kill_after(tool: &Tool, env: &[(&str, &str)], args: &[&str], delay: Duration) -> bool {
    let mut child = tool.spawn(env, args);
    drop(child.stdin.take());
    let start = Instant::now();
    let mut running = true;
    while start.elapsed() < delay {
        if child.try_wait().unwrap().is_some() {
            running = false;
            break;
        }
        std::thread::sleep(Duration::from_millis(2).min(delay));
    }
    child.kill().unwrap(); // SIGKILL
    let out = child.wait_with_output().unwrap();
    if !running && !out.status.success() {
        panic!(
            "{args:?} failed on its own: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    running
}

/// What a user does after a crash before running restic: `unlock` (cairn's removes the lock of
/// the killed process, which is gone on this host). No lock may stay behind.
fn unlock(c: &Tool, repo: &Path) {
    c.run(&["unlock"]).ok();
    // Half-written files of the killed process (hidden temporary names) are no locks.
    let left: Vec<String> = std::fs::read_dir(repo.join("locks"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "locks left after unlock: {left:?}");
}

/// The snapshots (id, tree) a repository holds, as restic lists them.
fn snapshots(r: &Tool) -> Vec<(String, String)> {
    r.snapshot_ids()
}

#[test]
fn sigkill_during_copy_loses_nothing() {
    require_restic!();
    let t = TempDir::new("cairn-crash-copy");
    let data = t.join("data");
    make_tree(&data, 7);
    let src_repo = t.join("src");
    let dst_repo = t.join("dst");
    let cs = Tool::cairn(&src_repo, PW);
    let cd = Tool::cairn(&dst_repo, PW);
    let rd = Tool::restic(&dst_repo, PW);
    cs.run(&["init"]).ok();
    cs.run(&["backup", "-q", data.to_str().unwrap()]).ok();
    std::fs::write(data.join("later"), b"a second snapshot").unwrap();
    cs.run(&["backup", "-q", data.to_str().unwrap()]).ok();
    let env = [
        ("RESTIC_FROM_REPOSITORY", src_repo.to_str().unwrap()),
        ("RESTIC_FROM_PASSWORD", PW),
    ];
    cd.run_env(None, &env, &["init", "--copy-chunker-params"])
        .ok();
    // A snapshot of the destination's own that must survive every kill.
    let keep = t.join("keep");
    std::fs::create_dir_all(&keep).unwrap();
    std::fs::write(keep.join("keep.txt"), b"keep me").unwrap();
    cd.run(&["backup", "-q", keep.to_str().unwrap()]).ok();
    let before = snapshots(&rd);

    // How long a whole copy takes, on a scratch destination.
    let probe = Tool::cairn(&t.join("probe"), PW);
    probe
        .run_env(None, &env, &["init", "--copy-chunker-params"])
        .ok();
    let start = Instant::now();
    probe.run_env(None, &env, &["copy", "-q"]).ok();
    let full = start.elapsed();
    eprintln!("a full copy takes {full:?}");

    let mut rng = Rng::from_env_or_time();
    let mut killed_midway = 0;
    let attempt = |i: usize, delay: Duration| -> bool {
        let hit = kill_after(&cd, &env, &["copy", "-q"], delay);
        eprintln!(
            "kill {i} after {delay:?}: {}",
            if hit {
                "hit a running copy"
            } else {
                "copy had ended"
            }
        );
        unlock(&cd, &dst_repo);
        rd.run(&["check"]).ok();
        let now = snapshots(&rd);
        for s in &before {
            assert!(now.contains(s), "kill {i}: snapshot {s:?} vanished");
        }
        // Every copied snapshot is complete (check passed) and a copy of a source snapshot.
        assert!(now.len() <= before.len() + 2, "kill {i}: {now:?}");
        // Remove what the full copy would skip anyway, so that the next kill hits a copy
        // again: the copied snapshots go (their data stays, deduplicated next time).
        if i % 2 == 1 {
            for (id, _) in now.iter().filter(|s| !before.contains(s)) {
                cd.run(&["forget", id]).ok();
            }
        }
        hit
    };
    let planned = kill_times(full, 6, 4, &mut rng);
    let mut i = 0;
    for delay in planned {
        killed_midway += attempt(i, delay) as usize;
        i += 1;
    }
    // Later copies find most data already there and end sooner than the probe did (more so
    // on a busy machine, where the probe is slow): until four kills have hit a running copy,
    // kill again sooner each time one comes too late.
    let mut delay = full / 4;
    while killed_midway < 4 && i < 40 {
        if attempt(i, delay) {
            killed_midway += 1;
        } else {
            delay = (delay / 2).max(Duration::from_millis(5));
        }
        i += 1;
    }
    assert!(
        killed_midway >= 4,
        "only {killed_midway} kills hit a running copy (a full copy took {full:?})"
    );

    // Backing up works, the copy completes, and everything restores.
    cd.run(&["backup", "-q", keep.to_str().unwrap()]).ok();
    cd.run_env(None, &env, &["copy", "-q"]).ok();
    rd.run(&["check", "--read-data"]).ok();
    let now = snapshots(&rd);
    for s in &before {
        assert!(now.contains(s));
    }
    let out = t.join("out");
    rd.run(&[
        "restore",
        "latest",
        "--path",
        data.to_str().unwrap(),
        "--target",
        out.to_str().unwrap(),
    ])
    .ok();
    let diffs = compare_dirs(&data, &restored(&out, &data), CompareOptions::default());
    assert!(diffs.is_empty(), "{diffs:?}");
    let out1 = t.join("out1");
    rd.run(&["restore", &before[0].0, "--target", out1.to_str().unwrap()])
        .ok();
    assert_eq!(
        std::fs::read(restored(&out1, &keep).join("keep.txt")).unwrap(),
        b"keep me"
    );
}

#[test]
fn sigkill_during_repair_index_loses_nothing() {
    require_restic!();
    let t = TempDir::new("cairn-crash-repair");
    let repo = t.join("repo");
    let c = Tool::cairn(&repo, PW);
    let r = Tool::restic(&repo, PW);
    c.run(&["init"]).ok();
    // Many small snapshots: many packs and index files to read, write and delete.
    let data = t.join("data");
    for i in 0..24u32 {
        let d = data.join(format!("s{i:02}"));
        std::fs::create_dir_all(&d).unwrap();
        let bytes: Vec<u8> = (0..200_000u32)
            .map(|k| (k.wrapping_mul(2_654_435_761) ^ i.wrapping_mul(40_503)) as u8)
            .collect();
        std::fs::write(d.join("f"), bytes).unwrap();
        c.run(&["backup", "-q", d.to_str().unwrap()]).ok();
    }
    let before = snapshots(&r);
    let indexes = std::fs::read_dir(repo.join("index")).unwrap().count();
    eprintln!("{} snapshots, {indexes} index files", before.len());

    let mut rng = Rng::from_env_or_time();
    let mut killed_midway = 0;
    for round in 0..2 {
        for (i, flags) in [&["--read-all-packs"][..], &[][..]].iter().enumerate() {
            let mut args = vec!["repair", "index", "-q"];
            args.extend_from_slice(flags);
            // Time a full run on a copy of the repository in its current state.
            let probe_repo = t.join(format!("probe-{round}-{i}"));
            let st = std::process::Command::new("cp")
                .arg("-a")
                .arg(&repo)
                .arg(&probe_repo)
                .status()
                .unwrap();
            assert!(st.success());
            let start = Instant::now();
            Tool::cairn(&probe_repo, PW).run(&args).ok();
            let full = start.elapsed();
            for delay in kill_times(full, 3, 2, &mut rng) {
                if kill_after(&c, &[], &args, delay) {
                    killed_midway += 1;
                }
                unlock(&c, &repo);
                r.run(&["check"]).ok();
                let now = snapshots(&r);
                assert_eq!(now, before, "{args:?} killed after {delay:?}");
            }
        }
    }
    assert!(
        killed_midway >= 8,
        "only {killed_midway} kills hit a running repair"
    );
    // A finished repair leaves one index file; everything restores; backups go on.
    c.run(&["repair", "index"]).ok();
    let index_files = std::fs::read_dir(repo.join("index"))
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count();
    assert_eq!(index_files, 1);
    r.run(&["check", "--read-data"]).ok();
    c.run(&["backup", "-q", data.to_str().unwrap()]).ok();
    r.run(&["check"]).ok();
    let any = data.join("s05");
    let snap = r
        .snapshots_json()
        .into_iter()
        .find(|s| s["paths"][0] == any.to_str().unwrap())
        .expect("the snapshot of s05");
    r.assert_restores(snap["id"].as_str().unwrap(), &any, &t.join("out"));
}

/// `rewrite --forget` killed at any moment: every old snapshot is either still there or
/// replaced by a complete rewrite naming it in `original` (the new one is stored before the
/// old one goes); a re-run finishes the job.
#[test]
fn sigkill_during_rewrite_forget_loses_nothing() {
    require_restic!();
    let t = TempDir::new("cairn-crash-rewrite");
    let repo = t.join("repo");
    let c = Tool::cairn(&repo, PW);
    let r = Tool::restic(&repo, PW);
    c.run(&["init"]).ok();
    let data = t.join("data");
    for i in 0..16u32 {
        let d = data.join(format!("s{i:02}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("keep"), format!("keep {i}")).unwrap();
        std::fs::write(d.join("drop.tmp"), format!("drop {i}")).unwrap();
        c.run(&["backup", "-q", d.to_str().unwrap()]).ok();
    }
    let before = snapshots(&r);
    let args = ["rewrite", "--forget", "--exclude", "*.tmp", "-q"];
    let probe_repo = t.join("probe");
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(&repo)
        .arg(&probe_repo)
        .status()
        .unwrap();
    assert!(st.success());
    let start = Instant::now();
    Tool::cairn(&probe_repo, PW).run(&args).ok();
    let full = start.elapsed();
    let mut rng = Rng::from_env_or_time();
    for delay in kill_times(full, 4, 4, &mut rng) {
        kill_after(&c, &[], &args, delay);
        unlock(&c, &repo);
        r.run(&["check"]).ok();
        let now = r.snapshots_json();
        for (id, _) in &before {
            let kept = now.iter().any(|s| s["id"] == id.as_str());
            let replaced = now.iter().any(|s| s["original"] == id.as_str());
            assert!(
                kept || replaced,
                "snapshot {id} lost after a kill at {delay:?}"
            );
        }
    }
    c.run(&args).ok();
    r.run(&["check", "--read-data"]).ok();
    let now = r.snapshots_json();
    // Every old snapshot is replaced (twice, if a kill fell between storing the new one and
    // removing the old one: then the re-run rewrote the old one again, as restic would).
    let originals: std::collections::BTreeSet<&str> =
        now.iter().filter_map(|s| s["original"].as_str()).collect();
    let old: std::collections::BTreeSet<&str> = before.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(originals, old, "{now:?}");
    assert!(now.iter().all(|s| s["original"].is_string()));
    for s in &now {
        let nodes = r.ls_nodes(s["id"].as_str().unwrap());
        assert!(nodes.keys().any(|p| p.ends_with("/keep")));
        assert!(nodes.keys().all(|p| !p.ends_with(".tmp")), "{nodes:?}");
    }
}
