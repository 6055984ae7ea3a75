//! File selection: cairn and restic back up the same tree with the same flags, and their
//! snapshots list exactly the same paths. Plus the flags restic 0.14 lacks, tested directly.

mod common;

use common::{ok, tool, Mount, CAIRN};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

fn tool_in(bin: &str, repo: &Path, cwd: &Path) -> Command {
    let mut c = tool(bin, repo);
    c.current_dir(cwd);
    c
}

fn ls_paths(bin: &str, repo: &Path, cwd: &Path) -> BTreeSet<String> {
    ok(tool_in(bin, repo, cwd).args(["ls", "--json", "latest"]))
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["struct_type"] == "node")
        .map(|v| v["path"].as_str().unwrap().to_string())
        .collect()
}

fn make_tree(root: &Path) {
    for d in [
        "src/a",
        "src/b/deep",
        "src/Cache",
        "src/tagged",
        "src/other",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("src/a/x.JPG"), b"jpg").unwrap();
    std::fs::write(root.join("src/a/y.txt"), b"text").unwrap();
    std::fs::write(root.join("src/b/deep/z.log"), b"log").unwrap();
    std::fs::write(root.join("src/b/big.bin"), vec![7u8; 50_000]).unwrap();
    std::fs::write(
        root.join("src/Cache/CACHEDIR.TAG"),
        b"Signature: 8a477f597d28d172789f06886806bc55\n",
    )
    .unwrap();
    std::fs::write(root.join("src/Cache/blob"), b"cached").unwrap();
    std::fs::write(root.join("src/tagged/.nobackup"), b"").unwrap();
    std::fs::write(root.join("src/tagged/secret"), b"s").unwrap();
    std::fs::write(root.join("src/other/keep"), b"k").unwrap();
    std::fs::write(root.join("excl.txt"), "# comment\n*.log\n\nCache\n").unwrap();
    std::fs::write(root.join("iexcl.txt"), "*.jpg\n").unwrap();
    std::fs::write(root.join("list.txt"), "# targets\nsrc/a\nsrc/b/*\n\n").unwrap();
    std::fs::write(root.join("list-verbatim.txt"), "src/a\nsrc/other\n").unwrap();
    std::fs::write(root.join("list-raw.bin"), b"src/a/y.txt\0src/other\0").unwrap();
}

#[test]
fn selection_flags_match_restic() {
    require_restic!();
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    make_tree(root);
    let cases: Vec<Vec<&str>> = vec![
        vec!["src", "--exclude", "*.log"],
        vec!["src", "--exclude", "b", "--exclude", "/nonexistent"],
        vec!["src", "--iexclude", "*.jpg"],
        vec!["src", "--exclude-file", "excl.txt"],
        vec!["src", "--iexclude-file", "iexcl.txt"],
        vec!["src", "--exclude-if-present", ".nobackup"],
        vec!["src", "--exclude-caches"],
        vec![
            "src",
            "--exclude-if-present",
            "CACHEDIR.TAG:Signature: 8a477f597d28d172789f06886806bc55",
        ],
        vec!["src", "--exclude-if-present", "CACHEDIR.TAG:wrong header"],
        vec!["src", "--exclude-larger-than", "10k"],
        vec!["--files-from", "list.txt"],
        vec!["--files-from-verbatim", "list-verbatim.txt"],
        vec!["--files-from-raw", "list-raw.bin"],
        vec!["src", "-x"],
    ];
    // What a backup of `src` with no flags holds: every exclusion case must differ from it,
    // so that a flag silently ignored by both programs cannot pass.
    let base_repo = root.join("baseline");
    ok(tool_in(CAIRN, &base_repo, root).arg("init"));
    ok(tool_in(CAIRN, &base_repo, root).args(["backup", "src"]));
    let baseline = ls_paths(CAIRN, &base_repo, root);
    for (i, args) in cases.iter().enumerate() {
        let rrepo = root.join(format!("restic-{i}"));
        let crepo = root.join(format!("cairn-{i}"));
        ok(tool_in("restic", &rrepo, root).arg("init"));
        ok(tool_in(CAIRN, &crepo, root).arg("init"));
        ok(tool_in("restic", &rrepo, root).arg("backup").args(args));
        ok(tool_in(CAIRN, &crepo, root).arg("backup").args(args));
        let want = ls_paths("restic", &rrepo, root);
        let got = ls_paths(CAIRN, &crepo, root);
        assert_eq!(got, want, "flags {args:?}");
        let selects_nothing_less =
            args.contains(&"-x") || args.iter().any(|a| a.contains("wrong header"));
        assert_eq!(
            got == baseline,
            selects_nothing_less,
            "flags {args:?} should change the selection"
        );
    }
}

#[test]
fn one_file_system_matches_restic_across_a_mount() {
    require_restic!();
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    std::fs::create_dir_all(root.join("src/mnt")).unwrap();
    std::fs::write(root.join("src/f"), b"f").unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(root.join("src/mnt"))
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("SKIP: cannot mount tmpfs here (needs root)");
        return;
    }
    let _g = Mount(root.join("src/mnt"));
    std::fs::write(root.join("src/mnt/inner"), b"other fs").unwrap();
    for flags in [vec!["src", "-x"], vec!["src"]] {
        let rrepo = root.join(format!("r{}", flags.len()));
        let crepo = root.join(format!("c{}", flags.len()));
        ok(tool_in("restic", &rrepo, root).arg("init"));
        ok(tool_in(CAIRN, &crepo, root).arg("init"));
        ok(tool_in("restic", &rrepo, root).arg("backup").args(&flags));
        ok(tool_in(CAIRN, &crepo, root).arg("backup").args(&flags));
        let want = ls_paths("restic", &rrepo, root);
        assert_eq!(ls_paths(CAIRN, &crepo, root), want, "{flags:?}");
        assert_eq!(want.iter().any(|p| p.ends_with("/inner")), flags.len() == 1);
    }
}

#[test]
fn stdin_matches_restic() {
    require_restic!();
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut ids = Vec::new();
    for bin in ["restic", CAIRN] {
        let repo = root.join(if bin == "restic" { "r" } else { "c" });
        ok(tool_in(bin, &repo, root).arg("init"));
        let mut child = tool_in(bin, &repo, root)
            .args(["backup", "--stdin", "--stdin-filename", "db.sql", "--json"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&data).unwrap();
        assert!(child.wait_with_output().unwrap().status.success());
        let snaps: serde_json::Value =
            serde_json::from_str(&ok(tool_in(bin, &repo, root).args(["snapshots", "--json"])))
                .unwrap();
        assert_eq!(snaps[0]["paths"][0], "/db.sql");
        let out = root.join(format!("out-{}", ids.len()));
        ok(tool_in(bin, &repo, root)
            .args(["restore", "latest", "--target"])
            .arg(&out));
        assert_eq!(std::fs::read(out.join("db.sql")).unwrap(), data);
        ids.push(ls_paths(bin, &repo, root));
    }
    assert_eq!(ids[0], ids[1]);
}

#[test]
fn stdin_from_command_and_skip_if_unchanged() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let repo = root.join("repo");
    let cairn = || tool_in(CAIRN, &repo, root);
    ok(cairn().arg("init"));
    ok(cairn().args([
        "backup",
        "--stdin-from-command",
        "--stdin-filename",
        "out.txt",
        "--",
        "sh",
        "-c",
        "echo from a command",
    ]));
    let out = root.join("o");
    ok(cairn().args(["restore", "latest", "--target"]).arg(&out));
    assert_eq!(
        std::fs::read(out.join("out.txt")).unwrap(),
        b"from a command\n"
    );
    // A failing command fails the backup and leaves no snapshot.
    let st = cairn()
        .args([
            "backup",
            "--stdin-from-command",
            "--",
            "sh",
            "-c",
            "echo partial; exit 4",
        ])
        .output()
        .unwrap();
    assert_eq!(
        st.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let snaps: serde_json::Value =
        serde_json::from_str(&ok(cairn().args(["snapshots", "--json"]))).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 1);
    // --skip-if-unchanged: the second identical backup writes no snapshot.
    std::fs::create_dir_all(root.join("d")).unwrap();
    std::fs::write(root.join("d/f"), b"x").unwrap();
    ok(cairn().args(["backup", "d", "--skip-if-unchanged"]));
    let second = ok(cairn().args(["backup", "d", "--skip-if-unchanged"]));
    assert!(second.contains("skipped"), "{second}");
    let snaps: serde_json::Value =
        serde_json::from_str(&ok(cairn().args(["snapshots", "--json"]))).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 2);
    // --dry-run writes nothing at all.
    let before: Vec<_> = walk(&repo);
    std::fs::write(root.join("d/g"), b"new").unwrap();
    let dry = ok(cairn().args(["backup", "d", "--dry-run"]));
    assert!(dry.contains("Would add to the repository"), "{dry}");
    assert_eq!(walk(&repo), before);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                v.push(e.path());
            }
        }
    }
    v.sort();
    v
}
