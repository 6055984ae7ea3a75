//! A killed backup or copy loses no uploaded pack: the packs it stored before any index named
//! them are adopted by the next run (their headers read and verified, an index written for
//! them), so that nothing is uploaded twice. Damaged orphans are reported and left alone.

mod common;

use common::{make_corpus, TempDir, Tool};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

const PW: &str = "adopt-pw";

/// Every pack in `repo/data`, by name, with its size.
fn packs(repo: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(dirs) = std::fs::read_dir(repo.join("data")) else {
        return out;
    };
    for d in dirs {
        let d = d.unwrap();
        let Ok(files) = std::fs::read_dir(d.path()) else {
            continue;
        };
        for f in files {
            let f = f.unwrap();
            let name = f.file_name().to_string_lossy().into_owned();
            if name.len() == 64 && !name.starts_with('.') {
                if let Ok(m) = f.metadata() {
                    out.insert(name, m.len());
                }
            }
        }
    }
    out
}

/// Every (pack, blob type, blob id) the index files list, read with cairn's `cat index`.
fn index_entries(c: &Tool) -> Vec<(String, String, String)> {
    let list = c.run(&["list", "index"]).ok().stdout_str();
    let mut out = Vec::new();
    for id in list.lines().filter(|l| !l.is_empty()) {
        let v = c.run(&["cat", "index", id]).ok().json();
        for p in v["packs"].as_array().unwrap() {
            let pack = p["id"].as_str().unwrap().to_string();
            for b in p["blobs"].as_array().unwrap() {
                out.push((
                    pack.clone(),
                    b["type"].as_str().unwrap().to_string(),
                    b["id"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

/// No blob is stored in two packs, and every pack in `data/` is indexed.
fn assert_no_duplicates_all_indexed(c: &Tool, repo: &Path) {
    let entries = index_entries(c);
    let mut seen: HashMap<(String, String), String> = HashMap::new();
    let mut dups = Vec::new();
    for (pack, ty, id) in &entries {
        if let Some(other) = seen.insert((ty.clone(), id.clone()), pack.clone()) {
            if other != *pack {
                dups.push(format!("{ty} {id} in {other} and {pack}"));
            }
        }
    }
    assert!(
        dups.is_empty(),
        "{} blobs stored twice: {:?}",
        dups.len(),
        &dups[..dups.len().min(5)]
    );
    let indexed: BTreeSet<&String> = entries.iter().map(|(p, _, _)| p).collect();
    let unindexed: Vec<String> = packs(repo)
        .into_keys()
        .filter(|p| !indexed.contains(p))
        .collect();
    assert!(unindexed.is_empty(), "packs in no index: {unindexed:?}");
}

/// Starts `tool ARGS`, waits until `repo/data` holds at least `want` packs, then kills it
/// (SIGKILL). Returns the packs it left. Panics if it finished first.
fn kill_when_packs(
    tool: &Tool,
    repo: &Path,
    env: &[(&str, &str)],
    args: &[&str],
    want: usize,
    also: &dyn Fn() -> bool,
) -> BTreeMap<String, u64> {
    let before = packs(repo).len();
    let mut child = tool.spawn(env, args);
    drop(child.stdin.take());
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "{args:?} finished ({st}) before {want} packs were stored: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if packs(repo).len() >= before + want && also() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "no packs after 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    eprintln!("killed {args:?} after {:?}", start.elapsed());
    packs(repo)
}

/// cairn restores the latest snapshot exactly (restic would mangle the corpus's non-UTF-8
/// symlink targets; its `check --read-data` is the independent verdict).
/// Lines in the resume logs under a cache directory.
/// The packs named by the resume logs under a cache directory.
fn resume_log_packs(cache: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for repo in std::fs::read_dir(cache).into_iter().flatten().flatten() {
        let dir = repo.path().join("cairn-resume");
        for f in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(f.path()).unwrap_or_default();
            for line in text.lines() {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                    if let Some(k) = v["k"].as_str() {
                        out.insert(k.to_string());
                    }
                }
            }
        }
    }
    out
}

fn resume_log_lines(cache: &Path) -> usize {
    let mut n = 0;
    for repo in std::fs::read_dir(cache).into_iter().flatten().flatten() {
        let dir = repo.path().join("cairn-resume");
        for f in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            n += std::fs::read(f.path())
                .map(|b| b.iter().filter(|c| **c == b'\n').count())
                .unwrap_or(0);
        }
    }
    n
}

/// restic accepts the repository, reading every pack (the killed process's lock removed first,
/// as a user would after a crash: restic's check locks exclusively).
fn restic_check_read_data(c: &Tool, r: &Tool) {
    c.run(&["unlock"]).ok();
    r.run(&["check", "--read-data"]).ok();
}

#[test]
fn killed_backup_packs_are_adopted_not_uploaded_again() {
    require_restic!();
    let t = TempDir::new("cairn-adopt-backup");
    let data = t.join("data");
    make_corpus(&data, 240, 11);
    let repo = t.join("repo");
    let cache = t.join("cache");
    let cache_s = cache.to_str().unwrap();
    let c = Tool::cairn(&repo, PW);
    let r = Tool::restic(&repo, PW);
    c.run(&["init"]).ok();

    // No checkpoint: the kill lands before the first, whatever the machine's speed; it comes
    // once packs are stored ...
    let left = kill_when_packs(
        &c,
        &repo,
        &[("CAIRN_CHECKPOINT_SECS", "3600")],
        &[
            "--cache-dir",
            cache_s,
            "backup",
            "-q",
            data.to_str().unwrap(),
        ],
        4,
        // ... and once it has logged files whose packs are stored (not indexed).
        &|| resume_log_lines(&cache) > 0,
    );
    assert!(left.len() >= 4);
    assert!(
        index_entries(&c).is_empty(),
        "the killed run wrote an index: the test did not kill it before a checkpoint"
    );
    let left_bytes: u64 = left.values().sum();
    // The resume log names packs the killed run stored (adoption trusts their headers without
    // reading their blobs again): each is one the run really left behind.
    let witnessed = resume_log_packs(&cache);
    assert!(!witnessed.is_empty(), "the resume log names no pack");
    for p in &witnessed {
        assert!(
            left.contains_key(p),
            "the resume log names pack {p}, not in data/"
        );
    }

    let run = c
        .run(&[
            "--cache-dir",
            cache_s,
            "backup",
            "--json",
            data.to_str().unwrap(),
        ])
        .ok();
    let sm = run.summary();
    eprintln!("{sm}");
    assert_eq!(
        sm["packs_adopted"].as_u64(),
        Some(left.len() as u64),
        "{sm}"
    );
    // Files of the killed run whose blobs were in stored packs are not read again, although
    // no checkpoint ever indexed those packs.
    assert!(sm["files_resumed"].as_u64().unwrap() > 0, "{sm}");
    assert_eq!(sm["data_adopted_packed"].as_u64(), Some(left_bytes), "{sm}");
    // Every pack of the killed run is still there and now indexed; no blob twice.
    let now = packs(&repo);
    for p in left.keys() {
        assert!(now.contains_key(p), "pack {p} of the killed run vanished");
    }
    assert_no_duplicates_all_indexed(&c, &repo);
    // What the re-run stored plus what it adopted is about one full backup's worth: at most
    // the packs a full backup needs, plus the tree packs and partly filled last packs.
    let stored: u64 = now.values().sum();
    let added = sm["data_added_packed"].as_u64().unwrap();
    assert!(
        added + left_bytes <= stored + 1,
        "added {added} + adopted {left_bytes} > stored {stored}"
    );

    // A second run adopts nothing more and adds (almost) nothing.
    let again = c
        .run(&[
            "--cache-dir",
            cache_s,
            "backup",
            "--json",
            data.to_str().unwrap(),
        ])
        .ok()
        .summary();
    assert_eq!(again["packs_adopted"].as_u64(), Some(0), "{again}");

    restic_check_read_data(&c, &r);
    c.assert_restores("latest", &data, &t.join("out"));
}

#[test]
fn killed_copy_packs_are_adopted_not_uploaded_again() {
    require_restic!();
    let t = TempDir::new("cairn-adopt-copy");
    let data = t.join("data");
    make_corpus(&data, 200, 12);
    let src = t.join("src");
    let dst = t.join("dst");
    let cs = Tool::cairn(&src, PW);
    let cd = Tool::cairn(&dst, PW);
    let rd = Tool::restic(&dst, PW);
    cs.run(&["init"]).ok();
    cs.run(&["--no-cache", "backup", "-q", data.to_str().unwrap()])
        .ok();
    let env = [
        ("RESTIC_FROM_REPOSITORY", src.to_str().unwrap()),
        ("RESTIC_FROM_PASSWORD", PW),
    ];
    cd.run_env(None, &env, &["init", "--copy-chunker-params"])
        .ok();

    let left = kill_when_packs(&cd, &dst, &env, &["--no-cache", "copy", "-q"], 4, &|| true);
    assert!(
        index_entries(&cd).is_empty(),
        "the killed copy wrote an index before it was killed"
    );
    let run = cd.run_env(None, &env, &["--no-cache", "copy"]).ok();
    let out = run.stdout_str();
    assert!(
        out.contains(&format!("adopted {} packs", left.len())),
        "no adoption reported:\n{out}"
    );
    let now = packs(&dst);
    for p in left.keys() {
        assert!(now.contains_key(p), "pack {p} of the killed copy vanished");
    }
    assert_no_duplicates_all_indexed(&cd, &dst);
    restic_check_read_data(&cd, &rd);
    cd.assert_restores("latest", &data, &t.join("out"));
}

#[test]
fn damaged_orphans_are_reported_and_not_adopted() {
    require_restic!();
    let t = TempDir::new("cairn-adopt-damaged");
    let data = t.join("data");
    make_corpus(&data, 100, 13);
    let repo = t.join("repo");
    let c = Tool::cairn(&repo, PW);
    let r = Tool::restic(&repo, PW);
    c.run(&["init"]).ok();
    // Orphans, exactly as a run killed before its first checkpoint leaves them: a complete
    // backup whose index files and snapshot are then removed.
    c.run(&["--no-cache", "backup", "-q", data.to_str().unwrap()])
        .ok();
    for d in ["index", "snapshots"] {
        for e in std::fs::read_dir(repo.join(d)).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
    }
    let orphans = packs(&repo);
    assert!(orphans.len() >= 4, "{orphans:?}");
    let path = |name: &str| repo.join("data").join(&name[..2]).join(name);
    let names: Vec<&String> = orphans.keys().collect();
    use std::os::unix::fs::PermissionsExt;
    let damage = |name: &str, f: &dyn Fn(&mut Vec<u8>)| {
        let p = path(name);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut b = std::fs::read(&p).unwrap();
        f(&mut b);
        std::fs::write(&p, b).unwrap();
    };
    // Truncated (the header length no longer matches), a flipped bit in a blob (the header
    // is intact; only that blob's authentication tag shows it), a flipped bit in the header.
    damage(names[0], &|b| b.truncate(b.len() - 100));
    damage(names[1], &|b| b[10] ^= 0x20);
    damage(names[2], &|b| {
        let n = b.len();
        b[n - 20] ^= 1
    });
    // Garbage under a pack's name, shorter than any pack.
    let junk = "ff".repeat(32);
    std::fs::create_dir_all(repo.join("data/ff")).unwrap();
    std::fs::write(path(&junk), b"not a pack").unwrap();

    let run = c
        .run(&["--no-cache", "backup", "--json", data.to_str().unwrap()])
        .ok();
    let sm = run.summary();
    let good = orphans.len() - 3;
    assert_eq!(sm["packs_adopted"].as_u64(), Some(good as u64), "{sm}");
    let err = run.stderr_str();
    for n in names[..3].iter().map(|s| s.as_str()).chain([junk.as_str()]) {
        assert!(
            err.contains(&format!("pack {n} is in no index and is damaged")),
            "{n} not reported:\n{err}"
        );
    }
    // The damaged packs are not indexed; everything else restores, and restic agrees.
    let indexed: BTreeSet<String> = index_entries(&c).into_iter().map(|e| e.0).collect();
    for n in names[..3].iter() {
        assert!(!indexed.contains(*n), "damaged pack {n} was indexed");
    }
    for n in names[3..].iter() {
        assert!(indexed.contains(*n), "intact orphan {n} was not adopted");
    }
    std::fs::remove_file(path(&junk)).unwrap();
    restic_check_read_data(&c, &r);
    c.assert_restores("latest", &data, &t.join("out"));
}

#[test]
fn orphans_wait_while_another_process_holds_a_lock() {
    require_restic!();
    let t = TempDir::new("cairn-adopt-live");
    let data = t.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut x: u32 = 99;
    for i in 0..3 {
        let bytes: Vec<u8> = (0..6_000_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        std::fs::write(data.join(format!("f{i}")), bytes).unwrap();
    }
    let repo = t.join("repo");
    let c = Tool::cairn(&repo, PW);
    let r = Tool::restic(&repo, PW);
    c.run(&["init"]).ok();
    c.run(&["--no-cache", "backup", "-q", data.to_str().unwrap()])
        .ok();
    for d in ["index", "snapshots"] {
        for e in std::fs::read_dir(repo.join(d)).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
    }
    let orphans = packs(&repo).len();
    assert!(orphans >= 2);

    // A live writer (restic, waiting for its stdin) holds a lock: its packs could be among
    // the orphans, so they stay as they are.
    let mut holder = r.spawn(&[], &["backup", "--stdin", "--stdin-filename", "x"]);
    let start = Instant::now();
    while std::fs::read_dir(repo.join("locks")).unwrap().count() == 0 {
        assert!(start.elapsed() < common::PATIENCE, "restic took no lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    let sm = c
        .run(&["--no-cache", "backup", "--json", data.to_str().unwrap()])
        .ok()
        .summary();
    assert_eq!(sm["packs_adopted"].as_u64(), Some(0), "{sm}");
    use std::io::Write;
    holder
        .stdin
        .take()
        .unwrap()
        .write_all(b"stdin data")
        .unwrap();
    let out = holder.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Alone again: adopted.
    let sm = c
        .run(&["--no-cache", "backup", "--json", data.to_str().unwrap()])
        .ok()
        .summary();
    assert_eq!(sm["packs_adopted"].as_u64(), Some(orphans as u64), "{sm}");
    // (The run beside the lock stored its blobs again: prune removes those duplicates.)
    let indexed: BTreeSet<String> = index_entries(&c).into_iter().map(|e| e.0).collect();
    for p in packs(&repo).keys() {
        assert!(indexed.contains(p), "pack {p} in no index");
    }
    r.run(&["check", "--read-data"]).ok();
}
