//! Repositories over SFTP on a real OpenSSH sshd started on loopback by the tests: backups both
//! ways with restic 0.14 over `sftp:`, and how cairn reports a server that refuses it.

mod common;

use common::{compare_dirs, make_corpus, CompareOptions, Run, Sshd, TempDir, Tool};
use std::path::Path;

fn restored(target: &Path, src: &Path) -> std::path::PathBuf {
    target.join(src.strip_prefix("/").unwrap())
}

/// Runs a tool with `-o sftp.command=ssh -F CONFIG ALIAS -s sftp` (restic 0.14 and cairn).
fn run(s: &Sshd, tool: &Tool, args: &[&str]) -> Run {
    let opt = s.command_option();
    let mut all = vec!["-o", opt.as_str()];
    all.extend_from_slice(args);
    tool.run(&all)
}

fn only_symlinks_differ(d: &[impl std::fmt::Debug]) -> bool {
    d.iter().all(|x| format!("{x:?}").contains("symlink"))
}

/// Files below `dir` whose names say they were left half-written.
fn leftovers(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if name.contains("-tmp-") || name.contains("-temp-") {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

#[test]
fn restic_backup_over_sftp_restores_identically_with_cairn() {
    require_restic!();
    let Some(s) = Sshd::start() else {
        return;
    };
    let t = TempDir::new("sftp-by-restic");
    let src = t.join("src");
    make_corpus(&src, 8, 7);
    let src_s = src.to_str().unwrap();
    let loc = s.location("by-restic");
    let cairn = Tool::cairn(Path::new(&loc), "pw");
    let restic = Tool::restic(Path::new(&loc), "pw");
    run(&s, &restic, &["init"]).ok();
    run(&s, &restic, &["backup", "-q", src_s]).ok();

    // cairn lists what restic wrote, snapshot and files, and restores it.
    let snaps = run(&s, &cairn, &["snapshots", "--json"]).ok().json();
    assert_eq!(snaps.as_array().map(Vec::len), Some(1), "{snaps}");
    let ls = run(&s, &cairn, &["ls", "latest"]).ok().stdout_str();
    assert!(ls.lines().count() > 5, "{ls}");
    let out = t.join("cairn-restored");
    run(
        &s,
        &cairn,
        &["restore", "latest", "--target", out.to_str().unwrap()],
    )
    .ok();
    let d = compare_dirs(&src, &restored(&out, &src), CompareOptions::default());
    assert!(
        only_symlinks_differ(&d),
        "cairn's restore of restic's SFTP backup differs: {d:?}"
    );
    run(&s, &cairn, &["check", "--read-data"]).ok();

    // cairn adds to restic's repository, reaching the server through the ssh config alias
    // with sftp.args this time; restic accepts the result.
    let args = s.args_option();
    cairn.run(&["-o", &args, "backup", "-q", src_s]).ok();
    run(&s, &restic, &["check", "--read-data"]).ok();
    let snaps = run(&s, &restic, &["snapshots", "--json"]).ok().json();
    assert_eq!(snaps.as_array().map(Vec::len), Some(2), "{snaps}");
    let left = leftovers(&s.dir().join("by-restic"));
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn cairn_backup_over_sftp_restores_identically_with_restic() {
    require_restic!();
    let Some(s) = Sshd::start() else {
        return;
    };
    let t = TempDir::new("sftp-by-cairn");
    let src = t.join("src");
    make_corpus(&src, 8, 8);
    let src_s = src.to_str().unwrap();
    let loc = s.location("by-cairn");
    let cairn = Tool::cairn(Path::new(&loc), "pw");
    let restic = Tool::restic(Path::new(&loc), "pw");
    run(&s, &cairn, &["init"]).ok();
    run(&s, &cairn, &["backup", "-q", src_s]).ok();

    // restic's layout on the server's disk: packs in data/xx/.
    let repo = s.dir().join("by-cairn");
    assert!(repo.join("config").is_file());
    let packs: Vec<_> = std::fs::read_dir(repo.join("data"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .collect();
    assert!(!packs.is_empty());
    for p in &packs {
        let name = p.file_name().to_string_lossy().into_owned();
        let dir = p.path().parent().unwrap().file_name().unwrap().to_owned();
        assert_eq!(dir.to_string_lossy(), &name[..2], "{}", p.path().display());
    }

    run(&s, &restic, &["check", "--read-data"]).ok();
    let out = t.join("restic-restored");
    run(
        &s,
        &restic,
        &["restore", "latest", "--target", out.to_str().unwrap()],
    )
    .ok();
    let d = compare_dirs(&src, &restored(&out, &src), CompareOptions::default());
    assert!(
        only_symlinks_differ(&d),
        "restic's restore of cairn's SFTP backup differs: {d:?}"
    );
    // A second cairn backup uses its parent and stores no new data.
    let r = run(&s, &cairn, &["backup", "--json", src_s]).ok();
    let sum = r.summary();
    assert_eq!(sum["files_new"], 0, "{sum}");
    assert_eq!(sum["data_blobs"], 0, "{sum}");
    run(&s, &restic, &["check"]).ok();
    let left = leftovers(&repo);
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn an_sftp_server_that_refuses_cairn_is_one_clear_error() {
    let Some(s) = Sshd::start() else {
        return;
    };
    // No key the server knows.
    let command = format!(
        "sftp.command=ssh -F /dev/null -p {} -o BatchMode=yes -o StrictHostKeyChecking=no \
         -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -i /nonexistent/key {}@127.0.0.1 \
         -s sftp",
        s.port, s.user
    );
    let loc = s.location("refused");
    let r = Tool::cairn(Path::new(&loc), "pw").run(&["-o", &command, "snapshots"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr_str());
    let err = r.stderr_str();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("Fatal:") && err.contains("Permission denied"),
        "{err}"
    );

    // A misspelt sftp option is refused.
    let r = run(
        &s,
        &Tool::cairn(Path::new(&loc), "pw"),
        &["-o", "sftp.comand=ssh", "snapshots"],
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr_str());
    assert!(r.stderr_str().contains("sftp.comand"), "{}", r.stderr_str());
}
