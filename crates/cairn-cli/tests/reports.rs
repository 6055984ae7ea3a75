//! `stats`, `dump` and `tag` against restic: the same numbers, the same archives, and tag
//! changes that restic reads back.

mod common;

use common::{ok_bytes, restored, tool, CAIRN};
use std::path::Path;
use std::process::{Command, Stdio};

/// A restic repository with two snapshots of a tree with shared content and a hard link.
fn setup(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let src = root.join("src");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::write(src.join("a.txt"), b"hello\n").unwrap();
    std::fs::write(src.join("sub/same-as-a"), b"hello\n").unwrap();
    std::fs::write(
        src.join("sub/deeper/big"),
        (0..2_000_000u32)
            .map(|i| (i * 7 % 253) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::hard_link(src.join("a.txt"), src.join("hard")).unwrap();
    std::os::unix::fs::symlink("a.txt", src.join("link")).unwrap();
    let repo = root.join("repo");
    ok_bytes(tool("restic", &repo).arg("init"));
    ok_bytes(tool("restic", &repo).arg("backup").arg(&src));
    std::fs::write(src.join("second.txt"), b"only in the second snapshot").unwrap();
    ok_bytes(tool("restic", &repo).arg("backup").arg(&src));
    (repo, src)
}

#[test]
fn stats_match_restic_in_every_mode() {
    require_restic!();
    let t = tempfile::tempdir().unwrap();
    let (repo, _) = setup(t.path());
    for mode in [
        "restore-size",
        "files-by-contents",
        "blobs-per-file",
        "raw-data",
    ] {
        for extra in [vec![], vec!["latest"]] {
            let want = ok_bytes(
                tool("restic", &repo)
                    .args(["stats", "--json", "--mode", mode])
                    .args(&extra),
            );
            let got = ok_bytes(
                tool(CAIRN, &repo)
                    .args(["stats", "--json", "--mode", mode])
                    .args(&extra),
            );
            let want: serde_json::Value = serde_json::from_slice(&want).unwrap();
            let got: serde_json::Value = serde_json::from_slice(&got).unwrap();
            assert_eq!(got, want, "mode {mode} {extra:?}");
        }
    }
}

#[test]
fn dump_matches_restic() {
    require_restic!();
    let t = tempfile::tempdir().unwrap();
    let (repo, src) = setup(t.path());
    let file = format!("{}/sub/deeper/big", src.display());
    assert_eq!(
        ok_bytes(tool(CAIRN, &repo).args(["dump", "latest", &file])),
        std::fs::read(src.join("sub/deeper/big")).unwrap()
    );
    let dir = src.display().to_string();
    let list = |bin: &str| {
        let tarball = ok_bytes(tool(bin, &repo).args(["dump", "latest", &dir]));
        let mut child = Command::new("tar")
            .arg("tv")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&tarball).unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
    };
    let want = list("restic");
    assert!(want.contains("sub/deeper/big"), "{want}");
    assert_eq!(list(CAIRN), want);
    // The archive extracts to the same content.
    let x = t.path().join("x");
    std::fs::create_dir_all(&x).unwrap();
    let tarball = ok_bytes(tool(CAIRN, &repo).args(["dump", "latest", &dir]));
    std::fs::write(t.path().join("d.tar"), tarball).unwrap();
    assert!(Command::new("tar")
        .arg("xf")
        .arg(t.path().join("d.tar"))
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap()
        .success());
    let extracted = restored(&x, &src);
    assert_eq!(
        std::fs::read(extracted.join("sub/deeper/big")).unwrap(),
        std::fs::read(src.join("sub/deeper/big")).unwrap()
    );
    assert_eq!(
        std::fs::read_link(extracted.join("link")).unwrap(),
        Path::new("a.txt")
    );
}

#[test]
fn tag_changes_are_read_by_restic() {
    require_restic!();
    let t = tempfile::tempdir().unwrap();
    let (repo, _) = setup(t.path());
    let snaps = |bin: &str| -> Vec<serde_json::Value> {
        serde_json::from_slice::<serde_json::Value>(&ok_bytes(
            tool(bin, &repo).args(["snapshots", "--json"]),
        ))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
    };
    let before = snaps("restic");
    let first = before[0]["id"].as_str().unwrap().to_string();
    ok_bytes(tool(CAIRN, &repo).args(["tag", "--add", "keep,daily", &first[..8]]));
    ok_bytes(tool(CAIRN, &repo).args(["tag", "--set", "weekly", "latest"]));
    let after = snaps("restic");
    assert_eq!(after.len(), 2);
    let tagged: Vec<_> = after.iter().map(|s| s["tags"].clone()).collect();
    assert!(
        tagged.contains(&serde_json::json!(["keep", "daily"])),
        "{after:?}"
    );
    assert!(tagged.contains(&serde_json::json!(["weekly"])), "{after:?}");
    // Each rewritten snapshot names the one it replaced, and the old files are gone.
    for s in &after {
        let original = s["original"].as_str().expect("original set");
        assert!(before.iter().any(|b| b["id"] == original));
        assert!(!after.iter().any(|a| a["id"] == original));
    }
    ok_bytes(tool(CAIRN, &repo).args(["tag", "--remove", "daily", "--tag", "keep"]));
    let after = snaps(CAIRN);
    assert!(
        after
            .iter()
            .any(|s| s["tags"] == serde_json::json!(["keep"])),
        "{after:?}"
    );
    ok_bytes(tool("restic", &repo).arg("check"));
}

#[test]
fn snapshot_listings_match_restic() {
    require_restic!();
    let t = tempfile::tempdir().unwrap();
    let (repo, src) = setup(t.path());
    ok_bytes(
        tool("restic", &repo)
            .args(["backup", "--host", "other", "--tag", "x,y"])
            .arg(&src),
    );
    let other = t.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    ok_bytes(tool("restic", &repo).arg("backup").arg(&other));
    for args in [
        vec!["snapshots"],
        vec!["snapshots", "--latest", "1"],
        vec!["snapshots", "--group-by", "host"],
        vec!["snapshots", "--group-by", "host,paths,tags"],
        vec!["snapshots", "--host", "other"],
        vec!["snapshots", "--tag", "x"],
    ] {
        for json in [false, true] {
            let mut a = args.clone();
            if json {
                a.push("--json");
            }
            let want = String::from_utf8(ok_bytes(tool("restic", &repo).args(&a))).unwrap();
            let got = String::from_utf8(ok_bytes(tool(CAIRN, &repo).args(&a))).unwrap();
            // restic prints groups in Go's random map order (cairn sorts them): compare the
            // groups as sets.
            assert_eq!(
                groups(&got, json),
                groups(&want, json),
                "{a:?}\n{got}\n{want}"
            );
        }
    }
}

fn groups(output: &str, json: bool) -> Vec<String> {
    let mut v: Vec<String> = if json {
        let parsed: serde_json::Value = serde_json::from_str(output).unwrap();
        match parsed.as_array() {
            Some(a) if a.first().is_some_and(|g| g.get("group_key").is_some()) => {
                a.iter().map(|g| g.to_string()).collect()
            }
            _ => vec![parsed.to_string()],
        }
    } else {
        output.split("snapshots for (").map(String::from).collect()
    };
    v.sort();
    v
}
