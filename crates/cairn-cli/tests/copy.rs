//! `copy --from-repo` in both directions between cairn and restic repositories, and
//! `init --copy-chunker-params`: copies pass restic's `check --read-data`, restore identically,
//! are not copied twice, and deduplicate against what the destination already holds.

mod common;

use common::{extract_fixture, files_in, noise, TempDir, Tool};
use std::path::Path;

const PW: &str = "geheim";

/// restic's backup-data fixture plus three 2 MiB files (larger than the chunker's minimum, so
/// that their chunks depend on the chunker polynomial).
fn make_source(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    extract_fixture("cmd_restic--backup-data.tar.gz", dir);
    for i in 0..3u64 {
        std::fs::write(dir.join(format!("big{i}")), noise(i + 1, 2 << 20)).unwrap();
    }
}

/// Bytes stored in packs.
fn pack_bytes(repo: &Path) -> u64 {
    files_in(&repo.join("data"))
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

fn from_env(src: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("RESTIC_FROM_REPOSITORY", src.to_str().unwrap().to_string()),
        ("RESTIC_FROM_PASSWORD", PW.to_string()),
    ]
}

fn run_from(t: &Tool, src: &Path, args: &[&str]) -> common::Run {
    let env = from_env(src);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    t.run_env(None, &env, args)
}

#[test]
fn copy_from_restic_into_cairn_deduplicates() {
    require_restic!();
    let t = TempDir::new("cairn-copy");
    let data = t.join("data");
    make_source(&data);
    let src_repo = t.join("src");
    let dst_repo = t.join("dst");
    let rs = Tool::restic(&src_repo, PW);
    let cd = Tool::cairn(&dst_repo, PW);
    let rd = Tool::restic(&dst_repo, PW);
    rs.run(&["init", "--repository-version", "2"]).ok();
    rs.run(&["backup", "-q", data.to_str().unwrap()]).ok();
    let src_snaps = rs.snapshot_ids();

    // The destination shares the source's chunker polynomial.
    run_from(&cd, &src_repo, &["init", "--copy-chunker-params"]).ok();
    let out = run_from(&cd, &src_repo, &["copy"]).ok();
    let text = out.stdout_str();
    assert!(
        text.contains("copy started, this may take a while..."),
        "{text}"
    );
    assert!(text.contains("saved"), "{text}");
    rd.run(&["check", "--read-data"]).ok();
    let snaps = rd.snapshots_json();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0]["original"], src_snaps[0].0.as_str());
    assert_eq!(
        snaps[0]["tree"],
        src_snaps[0].1.as_str(),
        "trees travel verbatim"
    );
    assert!(snaps[0].get("parent").is_none());
    rd.assert_restores("latest", &data, &t.join("out1"));

    // A second copy finds the snapshot there and adds nothing.
    let size = pack_bytes(&dst_repo);
    let again = run_from(&cd, &src_repo, &["copy"]).ok();
    assert!(
        again
            .stdout_str()
            .contains("was already copied to snapshot"),
        "{}",
        again.stdout_str()
    );
    assert_eq!(pack_bytes(&dst_repo), size);
    assert_eq!(rd.snapshot_ids().len(), 1);

    // The same files backed up into the destination directly deduplicate against the copy:
    // same polynomial, same chunks.
    let sum = cd
        .run(&["backup", "--json", data.to_str().unwrap()])
        .ok()
        .summary();
    assert!(
        sum["data_added"].as_u64().unwrap() < 64 * 1024,
        "backup after copy added {}",
        sum["data_added"]
    );

    // New data in the source: only the new snapshot is copied, and only the new file's data.
    std::fs::write(data.join("new"), noise(99, 1 << 20)).unwrap();
    rs.run(&["backup", "-q", data.to_str().unwrap()]).ok();
    let size = pack_bytes(&dst_repo);
    let out = run_from(&cd, &src_repo, &["copy"]).ok();
    assert_eq!(
        out.stdout_str().matches("copy started").count(),
        1,
        "{}",
        out.stdout_str()
    );
    let grown = pack_bytes(&dst_repo) - size;
    assert!(
        grown > 1 << 20 && grown < (1 << 20) + (256 << 10),
        "the copy of 1 MiB of new data grew the repository by {grown} bytes"
    );
    rd.run(&["check", "--read-data"]).ok();
    assert_eq!(rd.snapshot_ids().len(), 3);
    rd.assert_restores("latest", &data, &t.join("out2"));
}

#[test]
fn copy_from_cairn_into_restic_repository() {
    require_restic!();
    let t = TempDir::new("cairn-copy-rev");
    let data = t.join("data");
    make_source(&data);
    let src_repo = t.join("src");
    let dst_repo = t.join("dst");
    let cs = Tool::cairn(&src_repo, PW);
    let cd = Tool::cairn(&dst_repo, PW);
    let rd = Tool::restic(&dst_repo, PW);
    cs.run(&["init"]).ok();
    cs.run(&["backup", "-q", "--host", "one", data.to_str().unwrap()])
        .ok();
    std::fs::write(data.join("more"), b"more data").unwrap();
    cs.run(&["backup", "-q", "--host", "two", data.to_str().unwrap()])
        .ok();
    // restic makes the destination, with the source's chunker parameters.
    run_from(&rd, &src_repo, &["init", "--copy-chunker-params"]).ok();

    // Only the snapshots of host two.
    run_from(&cd, &src_repo, &["copy", "--host", "two"]).ok();
    let snaps = rd.snapshots_json();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0]["hostname"], "two");
    rd.run(&["check", "--read-data"]).ok();
    rd.assert_restores("latest", &data, &t.join("out"));

    // Then one snapshot by id prefix, via a password file and --from-repo.
    let one = cs
        .snapshots_json()
        .into_iter()
        .find(|s| s["hostname"] == "one")
        .unwrap();
    let pwfile = t.join("pw");
    std::fs::write(&pwfile, format!("{PW}\n")).unwrap();
    cd.run(&[
        "copy",
        "--from-repo",
        src_repo.to_str().unwrap(),
        "--from-password-file",
        pwfile.to_str().unwrap(),
        &one["short_id"].as_str().unwrap()[..6],
    ])
    .ok();
    assert_eq!(rd.snapshot_ids().len(), 2);
    rd.run(&["check", "--read-data"]).ok();

    // restic sees cairn's copies as copies: it copies nothing again.
    let r = run_from(&rd, &src_repo, &["copy"]).ok();
    assert_eq!(
        r.stdout_str().matches("was already copied").count(),
        2,
        "{}",
        r.stdout_str()
    );
    assert_eq!(rd.snapshot_ids().len(), 2);
}

/// restic's TestCopyUnstableJSON: a tree whose JSON does not survive a decode/encode cycle
/// must arrive byte for byte, keeping its id.
#[test]
fn copy_keeps_unstable_tree_json_verbatim() {
    require_restic!();
    let t = TempDir::new("cairn-copy-json");
    extract_fixture("cmd_restic--copy-unstable-json.tar.gz", t.path());
    let src_repo = t.join("repo");
    let dst_repo = t.join("dst");
    let cd = Tool::cairn(&dst_repo, PW);
    let rd = Tool::restic(&dst_repo, PW);
    let rs = Tool::restic(&src_repo, PW);
    cd.run(&["init"]).ok();
    run_from(&cd, &src_repo, &["copy"]).ok();
    rd.run(&["check", "--read-data"]).ok();
    assert_eq!(rd.snapshot_ids().len(), 1);
    let mut want: Vec<String> = rs
        .run(&["list", "blobs"])
        .ok()
        .stdout_str()
        .lines()
        .map(String::from)
        .collect();
    let mut got: Vec<String> = rd
        .run(&["list", "blobs"])
        .ok()
        .stdout_str()
        .lines()
        .map(String::from)
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
}

/// Into a version 1 repository: blobs stored uncompressed, restic reads them.
#[test]
fn copy_into_a_version_1_repository() {
    require_restic!();
    let t = TempDir::new("cairn-copy-v1");
    let data = t.join("data");
    make_source(&data);
    let src_repo = t.join("src");
    let dst_repo = t.join("dst");
    let cs = Tool::cairn(&src_repo, PW);
    let cd = Tool::cairn(&dst_repo, PW);
    let rd = Tool::restic(&dst_repo, PW);
    cs.run(&["init"]).ok();
    cs.run(&["backup", "-q", data.to_str().unwrap()]).ok();
    rd.run(&["init", "--repository-version", "1"]).ok();
    run_from(&cd, &src_repo, &["copy"]).ok();
    rd.run(&["check", "--read-data"]).ok();
    rd.assert_restores("latest", &data, &t.join("out"));
}

#[test]
fn copy_needs_a_source() {
    let t = TempDir::new("cairn-copy-nosrc");
    let cd = Tool::cairn(&t.join("dst"), PW);
    cd.run(&["init"]).ok();
    let out = cd.run(&["copy"]).expect_code(1);
    assert!(
        out.stderr_str()
            .contains("Please specify a source repository location"),
        "{}",
        out.stderr_str()
    );
    let other = Tool::cairn(&t.join("other"), PW);
    let out = other
        .run(&["init", "--from-repo", t.join("dst").to_str().unwrap()])
        .expect_code(1);
    assert!(
        out.stderr_str().contains(
            "Secondary repository must only be specified when copying the chunker parameters"
        ),
        "{}",
        out.stderr_str()
    );
}
