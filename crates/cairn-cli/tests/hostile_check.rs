//! Hostile trees against the commands that walk every tree of a repository: `check`, `copy`,
//! `rewrite`, `prune` and `forget --prune`. The trees are forged (correctly encrypted) with
//! `cairn_testsupport::hostile`.
//!
//! - `check` reports unsafe names (`..`, `.`, empty, containing `/`), duplicate names and
//!   unsorted trees as errors (exit 1), each naming the tree, the snapshot and the path;
//! - a chain of 100,000 nested trees: every command ends with exit 1 and an error saying the
//!   trees are nested too deep (no stack overflow, nothing half done); once the snapshot is
//!   forgotten, prune works again;
//! - a 40-level DAG bomb (2^40 paths, 41 distinct trees): check, prune and copy read each
//!   tree once and succeed quickly;
//! - a tree 4,000 levels deep with long names and a sibling per level: check stays in bounds.
//!
//! Every cairn run here is bounded: `timeout` (exit 124 fails the test) and a 1 GiB address
//! space (`prlimit --as`), so a walk that expands paths or recurses fails instead of taking
//! the machine down.

mod common;

use cairn_core::Id;
use cairn_testsupport::hostile::{dag_bomb, deep_chain, Forger};
use common::{new_repo, Run, TempDir, Tool};
use std::path::Path;

const PW: &str = "hostile";

/// Runs `cairn -r REPO ARGS...` under a time and memory limit.
fn bounded(repo: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    common::cairn_limited(repo, PW, env, &[], args, 1 << 30, 300)
}

fn all_output(r: &Run) -> String {
    format!("{}\n{}", r.stdout_str(), r.stderr_str())
}

/// `root` → `sub/` → `bad`, so that the bad tree sits at `/sub`.
fn under_sub(f: &mut Forger, bad: Id) -> Id {
    let sub = f.dir(b"sub", bad);
    let keep = f.file(b"ok", b"fine");
    f.tree(&[keep, sub])
}

#[test]
fn check_names_unsafe_duplicate_and_unsorted_trees() {
    let t = TempDir::new("cairn-hostile-check");
    let repo = new_repo(&t, "repo", PW);
    let mut f = Forger::open(&repo, PW);

    // A sane snapshot first: check accepts it.
    let a = f.file(b"a", b"1");
    let b = f.file(b"b", b"2");
    let good = f.tree(&[a, b]);
    let good_root = under_sub(&mut f, good);
    f.snapshot(good_root);
    let r = bounded(&repo, &[], &["check"]).ok();
    assert!(
        r.stdout_str().contains("no errors were found"),
        "{}",
        all_output(&r)
    );

    // name → what check must say about the tree holding it.
    let cases: Vec<(Vec<Vec<u8>>, &str)> = vec![
        (
            vec![b"..".to_vec()],
            r#"node ".." has an unsafe name (name is . or ..)"#,
        ),
        (
            vec![b".".to_vec()],
            r#"node "." has an unsafe name (name is . or ..)"#,
        ),
        (vec![b"".to_vec()], "node with empty name"),
        (
            vec![b"a/b".to_vec()],
            r#"node "a/b" has an unsafe name (name contains '/')"#,
        ),
        (
            vec![b"/abs".to_vec()],
            r#"node "/abs" has an unsafe name (name contains '/')"#,
        ),
        (vec![b"x".to_vec(), b"x".to_vec()], r#"duplicate name "x""#),
        (
            vec![b"b".to_vec(), b"a".to_vec()],
            r#"names out of order: "b" before "a""#,
        ),
    ];
    let mut expect = Vec::new();
    for (i, (names, msg)) in cases.iter().enumerate() {
        let nodes: Vec<_> = names
            .iter()
            .map(|n| f.file(n, format!("content {i}").as_bytes()))
            .collect();
        let bad = f.tree(&nodes);
        let root = under_sub(&mut f, bad);
        let snap = f.snapshot(root);
        expect.push((bad, snap, *msg));
    }

    let r = bounded(&repo, &[], &["check"]).expect_code(1);
    let out = all_output(&r);
    for (tree, snap, msg) in &expect {
        let line = out
            .lines()
            .find(|l| l.contains(&tree.to_hex()) && l.contains(msg))
            .unwrap_or_else(|| panic!("no error {msg:?} for tree {tree}:\n{out}"));
        assert!(
            line.contains(&format!("snapshot {}, /sub", snap.short())),
            "{line:?} does not name snapshot {} and path /sub",
            snap.short()
        );
    }
    // The sane trees are not reported.
    assert!(!out.contains(&good.to_hex()), "{out}");
}

#[test]
fn check_names_every_snapshot_that_holds_a_damaged_tree() {
    let t = TempDir::new("cairn-hostile-shared");
    let repo = new_repo(&t, "repo", PW);
    let mut f = Forger::open(&repo, PW);

    // One damaged tree (a `..` entry), held by three snapshots at different depths and under
    // different names, and one snapshot that does not hold it.
    let dotdot = f.file(b"..", b"escape");
    let bad = f.tree(&[dotdot]);
    let direct = under_sub(&mut f, bad);
    let s1 = f.snapshot(direct);
    let mid = under_sub(&mut f, direct);
    let deeper = f.dir(b"deeper", mid);
    let root2 = f.tree(&[deeper]);
    let s2 = f.snapshot(root2);
    let other = f.dir(b"other-name", bad);
    let extra = f.file(b"z", b"z");
    let root3 = f.tree(&[other, extra]);
    let s3 = f.snapshot(root3);
    let clean = f.file(b"clean", b"clean");
    let clean_root = f.tree(&[clean]);
    let s4 = f.snapshot(clean_root);

    let r = bounded(&repo, &[], &["check"]).expect_code(1);
    let out = all_output(&r);
    // The tree is reported once (it is checked once).
    assert_eq!(
        out.lines().filter(|l| l.contains(&bad.to_hex())).count(),
        1,
        "{out}"
    );
    let line = out
        .lines()
        .find(|l| l.contains("reach the damaged trees"))
        .unwrap_or_else(|| panic!("no list of damaged snapshots:\n{out}"));
    assert!(line.starts_with("3 snapshot(s)"), "{line}");
    for s in [s1, s2, s3] {
        assert!(line.contains(&s.short()), "{line} lacks {}", s.short());
    }
    assert!(
        !line.contains(&s4.short()),
        "{line} names the clean {}",
        s4.short()
    );
}

#[test]
fn deep_chain_is_refused_by_every_walk() {
    let t = TempDir::new("cairn-hostile-deep");
    let repo = new_repo(&t, "repo", PW);
    let mut f = Forger::open(&repo, PW);
    let leaf = f.file(b"leaf", b"at the bottom");
    let root = deep_chain(&mut f, 100_000, &[leaf]);
    let snap = f.snapshot(root);
    // A sane snapshot for `forget --prune` to remove (it prunes only after forgetting).
    let sane = f.file(b"sane", b"sane");
    let sane = f.tree(&[sane]);
    let sane = f.snapshot(sane);
    drop(f);
    let deep = |r: &Run| {
        let out = all_output(r);
        assert!(
            out.contains("trees nested deeper than 4096 levels"),
            "{}: no depth error in:\n{}",
            r.desc,
            &out[..out.len().min(4000)]
        );
    };

    // check: an error naming the tree and snapshot, exit 1.
    let r = bounded(&repo, &[], &["check"]).expect_code(1);
    deep(&r);
    assert!(all_output(&r).contains(&format!("snapshot {}", snap.short())));

    // copy: refused, and no snapshot lands in the destination.
    let dst = new_repo(&t, "dst", PW);
    let env = [
        ("RESTIC_FROM_REPOSITORY", repo.to_str().unwrap()),
        ("RESTIC_FROM_PASSWORD", PW),
    ];
    let r = bounded(&dst, &env, &["copy"]).expect_code(1);
    deep(&r);
    // (The sane snapshot may have been copied before, depending on the order.)
    let r = Tool::cairn(&dst, PW).run(&["snapshots", "--json"]).ok();
    let copied = r.json();
    assert!(
        copied
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["tree"] != root.to_hex().as_str()),
        "{copied}"
    );

    // rewrite: refused, the snapshot stays as it was.
    let r = bounded(&repo, &[], &["rewrite", "--exclude", "/nothing-here"]).expect_code(1);
    deep(&r);

    // A rewrite that cuts the chain high up never goes deep: it succeeds.
    let r = bounded(&repo, &[], &["rewrite", "--exclude", "/d/d", "--dry-run"]).ok();
    assert!(
        r.stdout_str().contains("excluding /d/d"),
        "{}",
        all_output(&r)
    );

    // repair snapshots (dry run): the directory past the depth limit would become empty.
    let r = bounded(&repo, &[], &["repair", "snapshots", "--dry-run"]).ok();
    assert!(
        r.stdout_str().contains("replaced with empty directory"),
        "{}",
        &all_output(&r)[..4000]
    );

    // prune and forget --prune: refused before anything is deleted.
    let r = bounded(&repo, &[], &["prune"]).expect_code(1);
    deep(&r);
    let r = bounded(&repo, &[], &["forget", &sane.to_hex(), "--prune"]).expect_code(1);
    deep(&r);
    let r = Tool::cairn(&repo, PW).run(&["snapshots", "--json"]).ok();
    assert_eq!(r.json().as_array().map(|a| a.len()), Some(1));

    // Forgetting the forged snapshot makes the repository prunable (and clean) again.
    bounded(&repo, &[], &["forget", &snap.to_hex(), "--prune"]).ok();
    bounded(&repo, &[], &["check"]).ok();
}

#[test]
fn dag_bomb_is_walked_once_per_tree() {
    let t = TempDir::new("cairn-hostile-dag");
    let repo = new_repo(&t, "repo", PW);
    let mut f = Forger::open(&repo, PW);
    let root = dag_bomb(&mut f, 40);
    f.snapshot(root);
    drop(f);

    let start = std::time::Instant::now();
    bounded(&repo, &[], &["check"]).ok();
    bounded(&repo, &[], &["prune"]).ok();
    let dst = new_repo(&t, "dst", PW);
    let env = [
        ("RESTIC_FROM_REPOSITORY", repo.to_str().unwrap()),
        ("RESTIC_FROM_PASSWORD", PW),
    ];
    bounded(&dst, &env, &["copy"]).ok();
    bounded(&dst, &[], &["check", "--read-data"]).ok();
    // 41 distinct trees: seconds at most, not 2^40 directories.
    assert!(
        start.elapsed() < std::time::Duration::from_secs(120),
        "took {:?}",
        start.elapsed()
    );
    // rewrite --exclude decides by path, so it would have to visit all 2^40 paths: refused
    // (after a million directories, within the time limit).
    let r = bounded(
        &repo,
        &[],
        &["rewrite", "--exclude", "/nothing", "--dry-run"],
    )
    .expect_code(1);
    assert!(
        r.stderr_str().contains("refusing to expand it further"),
        "{}",
        all_output(&r)
    );
    // repair snapshots rewrites each distinct tree once: fine.
    bounded(&repo, &[], &["repair", "snapshots", "--dry-run"]).ok();
}

#[test]
fn deep_tree_with_long_names_checks_in_bounded_memory() {
    // 4,000 levels of 255-byte names, each level with a second directory beside the chain:
    // a walk that kept a path per pending directory would hold gigabytes of paths.
    let t = TempDir::new("cairn-hostile-wide");
    let repo = new_repo(&t, "repo", PW);
    let mut f = Forger::open(&repo, PW);
    let empty = f.tree(&[]);
    let long = vec![b'a'; 255];
    let leaf = f.file(b"leaf", b"bottom");
    let mut tree = f.tree(&[leaf]);
    for _ in 0..4000 {
        let chain = f.dir(&long, tree);
        let side = f.dir(b"zz", empty);
        tree = f.tree(&[chain, side]);
    }
    f.snapshot(tree);
    drop(f);
    bounded(&repo, &[], &["check"]).ok();
    bounded(&repo, &[], &["prune"]).ok();
}

#[test]
fn rewrite_of_a_dag_bomb_stops_at_the_first_ctrl_c() {
    // rewrite --exclude walks every path of the bomb (until the walk refuses it, after a
    // million directories); one SIGINT ends it within a second with exit 130.
    let t = TempDir::new("cairn-hostile-int");
    let repo = new_repo(&t, "repo", PW);
    let mut f = Forger::open(&repo, PW);
    let root = dag_bomb(&mut f, 40);
    f.snapshot(root);
    drop(f);
    let mut child = Tool::cairn(&repo, PW).spawn(&[], &["rewrite", "--exclude", "/x", "--dry-run"]);
    // Into the walk: 1.5 s of CPU, which on a busy machine may take much longer than 1.5 s.
    assert!(
        common::wait_for_cpu(&mut child, std::time::Duration::from_millis(1500)),
        "rewrite ended too soon"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "rewrite ended too soon"
    );
    let sent = std::time::Instant::now();
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if sent.elapsed() > std::time::Duration::from_secs(10) {
            let _ = child.kill();
            panic!("rewrite still running 10 s after SIGINT");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(
        sent.elapsed() < std::time::Duration::from_secs(2),
        "stopped {:?} after SIGINT",
        sent.elapsed()
    );
    assert_eq!(status.code(), Some(130));
}
