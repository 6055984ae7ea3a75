//! restic 0.18 compatibility: the same command lines through restic 0.18 and cairn, on one
//! shared repository, with their normalized output compared.

mod common;

use common::{TempDir, Tool};
use serde_json::Value;
use std::collections::BTreeSet;

/// A small tree with a file, a directory, a symlink and an empty file.
fn source(t: &TempDir) -> std::path::PathBuf {
    let src = t.join("src");
    std::fs::create_dir_all(src.join("d/e")).unwrap();
    std::fs::write(src.join("d/a.txt"), b"hello\n").unwrap();
    std::fs::write(src.join("d/e/empty"), b"").unwrap();
    std::os::unix::fs::symlink("a.txt", src.join("d/link")).unwrap();
    src
}

/// One repository (`DIR/repo`, not yet created) seen by restic 0.18 and by cairn with the same
/// password; None (after a loud skip) when restic 0.18 is not installed.
struct Twins {
    t: TempDir,
    restic: Tool,
    cairn: Tool,
}

fn twins(name: &str, password: &str) -> Option<Twins> {
    let t = TempDir::new(name);
    let repo = t.join("repo");
    let restic = Tool::restic018(&repo, password)?;
    let cairn = Tool::cairn(&repo, password);
    Some(Twins { t, restic, cairn })
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn backup_json_summary_has_every_field_restic_018_prints() {
    let Some(Twins { t, restic, cairn }) = twins("compat-summary", "pw") else {
        return;
    };
    let src = source(&t);
    restic.run(&["init"]).ok();
    let theirs = restic
        .run(&["backup", "--json", src.to_str().unwrap()])
        .ok()
        .summary();
    let ours = cairn
        .run(&["backup", "--json", "--force", src.to_str().unwrap()])
        .ok()
        .summary();
    let missing: Vec<_> = keys(&theirs).difference(&keys(&ours)).cloned().collect();
    assert!(
        missing.is_empty(),
        "cairn's summary lacks {missing:?}\nrestic: {theirs}\ncairn: {ours}"
    );
    // Both name the whole snapshot id, which both list.
    let listed: Vec<String> = cairn.snapshot_ids().into_iter().map(|(id, _)| id).collect();
    for s in [&theirs, &ours] {
        let id = s["snapshot_id"].as_str().expect("snapshot_id");
        assert_eq!(id.len(), 64, "not a whole id: {id}");
        assert!(listed.iter().any(|l| l == id), "{id} not in {listed:?}");
    }
    // Same counts for the same tree (the second run read it all again: --force).
    for k in ["total_files_processed", "total_bytes_processed", "dirs_new"] {
        assert_eq!(theirs[k], ours[k], "{k}");
    }
}

#[test]
fn ls_json_lines_equal_restic_018s() {
    let Some(Twins { t, restic, cairn }) = twins("compat-ls", "pw") else {
        return;
    };
    let src = source(&t);
    restic.run(&["init"]).ok();
    restic.run(&["backup", "-q", src.to_str().unwrap()]).ok();
    let theirs = restic.run(&["ls", "--json", "latest"]).ok().json_lines();
    let ours = cairn.run(&["ls", "--json", "latest"]).ok().json_lines();
    assert_eq!(theirs.len(), ours.len(), "line counts differ");
    // The snapshot line: the same fields with the same values.
    assert_eq!(theirs[0], ours[0], "snapshot line");
    // Node lines: identical, field order aside.
    for (a, b) in theirs.iter().zip(&ours).skip(1) {
        assert_eq!(a, b, "node line");
    }
}

#[test]
fn json_errors_end_in_restic_018s_exit_error() {
    let t = TempDir::new("compat-exit");
    let repo = t.join("no-repo-here");
    let Some(restic) = Tool::restic018(&repo, "pw") else {
        return;
    };
    let cairn = Tool::cairn(&repo, "pw");
    let last = |tool: &Tool| -> Value {
        let r = tool.run(&["--json", "snapshots"]).expect_code(10);
        let err = r.stderr_str();
        let line = err.lines().last().expect("stderr line").to_string();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    };
    let (a, b) = (last(&restic), last(&cairn));
    assert_eq!(keys(&a), keys(&b));
    assert_eq!(a["message_type"], "exit_error");
    assert_eq!(a["code"], b["code"]);
    // Both say what the text form says, "Fatal: " first.
    for m in [&a, &b] {
        assert!(
            m["message"]
                .as_str()
                .is_some_and(|s| s.starts_with("Fatal: ")),
            "{m}"
        );
    }
}

#[test]
fn verbose_levels_features_options_and_generate_are_accepted() {
    let t = TempDir::new("compat-misc");
    let repo = t.join("repo");
    let cairn = Tool::cairn(&repo, "pw");
    cairn.run(&["init"]).ok();
    let src = source(&t);
    // --verbose=2 is -vv: per-file lines.
    let out = cairn
        .run(&["backup", "--verbose=2", src.to_str().unwrap()])
        .ok()
        .stdout_str();
    assert!(out.contains("new       "), "no per-file lines: {out}");
    let f = cairn.run(&["features"]).ok().stdout_str();
    assert!(f.contains("safe-forget-keep-tags"), "{f}");
    let o = cairn.run(&["options"]).ok().stdout_str();
    assert!(o.contains("s3.region") && o.contains("sftp.command"), "{o}");
    let bash = cairn
        .run(&["generate", "--bash-completion", "-"])
        .ok()
        .stdout_str();
    assert!(
        bash.contains("_cairn()") && bash.contains("restore"),
        "bash completion"
    );
    let man = t.join("man");
    cairn
        .run(&["generate", "--man", man.to_str().unwrap()])
        .ok();
    let page = std::fs::read_to_string(man.join("cairn-backup.1")).expect("man page");
    assert!(
        page.starts_with(".ie") || page.contains(".TH"),
        "not a man page"
    );
    cairn.run(&["generate"]).expect_code(1);
}

/// A target as a day of work leaves it after an earlier restore: a file edited in place
/// (same size), one grown, one touched into the future, one deleted, one replaced by a
/// symlink, and an extra file and directory the snapshot does not have.
fn dirty_target(target: &std::path::Path, future: std::time::SystemTime) {
    use std::os::unix::fs::symlink;
    let d = target.join("src/d");
    std::fs::write(d.join("a.txt"), b"HELLO\n").unwrap();
    std::fs::write(d.join("grown"), b"grown and grown and grown\n").unwrap();
    std::fs::remove_file(d.join("gone")).unwrap();
    std::fs::remove_file(d.join("was-file")).unwrap();
    symlink("/etc/hostname", d.join("was-file")).unwrap();
    std::fs::write(d.join("extra"), b"not in the snapshot\n").unwrap();
    std::fs::create_dir_all(d.join("extra-dir/deeper")).unwrap();
    std::fs::write(d.join("extra-dir/deeper/f"), b"x").unwrap();
    // The same times in every twin target: older than the snapshot (if-newer replaces
    // those) or newer (if-newer keeps them).
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    for (p, t) in [
        ("a.txt", old),
        ("grown", future),
        ("newer", future),
        ("extra-dir/deeper/f", old),
        ("extra-dir/deeper", old),
        ("extra-dir", old),
        ("extra", old),
    ] {
        std::fs::File::open(d.join(p))
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    set_symlink_mtime(&d.join("was-file"), future);
}

fn set_symlink_mtime(p: &std::path::Path, t: std::time::SystemTime) {
    use std::os::unix::ffi::OsStrExt;
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as libc::time_t;
    let ts = [
        libc::timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
    ];
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path and a two-element timespec array.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(r, 0, "utimensat {}", p.display());
}

/// `verbose_status` lines of a `restore --json -vv`, the target path masked, sorted.
fn restore_actions(r: &common::Run, target: &std::path::Path) -> Vec<String> {
    let t = std::path::absolute(target).unwrap();
    let mut v: Vec<String> = r
        .json_lines()
        .into_iter()
        .filter(|m| m["message_type"] == "verbose_status")
        .map(|m| {
            format!(
                "{} {} {}",
                m["action"].as_str().unwrap_or(""),
                m["item"]
                    .as_str()
                    .unwrap_or("")
                    .replace(t.to_str().unwrap(), "TARGET"),
                m["size"]
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn restore_overwrite_delete_and_dry_run_match_restic_018() {
    let Some(Twins { t, restic, cairn }) = twins("compat-restore", "pw") else {
        return;
    };
    let src = t.join("src");
    let d = src.join("d");
    std::fs::create_dir_all(&d).unwrap();
    for (name, body) in [
        ("a.txt", &b"hello\n"[..]),
        ("grown", b"small\n"),
        ("gone", b"deleted later\n"),
        ("was-file", b"a file in the snapshot\n"),
        ("newer", b"touched later\n"),
        ("same", b"left alone\n"),
    ] {
        std::fs::write(d.join(name), body).unwrap();
    }
    restic.run(&["init"]).ok();
    // Relative paths: the snapshot holds src/..., restored to TARGET/src/...
    restic.run_in(Some(t.path()), &["backup", "-q", "src"]).ok();

    let future = std::time::SystemTime::now() + std::time::Duration::from_secs(3600 * 24);
    let cases: &[&[&str]] = &[
        &[],
        &["--overwrite", "if-changed"],
        &["--overwrite", "if-newer"],
        &["--overwrite", "never"],
        &["--delete"],
        // Deletes within the selection only: extra-dir goes, extra stays.
        &[
            "--delete",
            "--include",
            "/src/d/extra-dir",
            "--include",
            "/src/d/same",
        ],
        &["--delete", "--exclude", "/src/d/extra"],
        &["--dry-run", "--delete"],
        &["--sparse", "--overwrite", "if-changed", "--delete"],
    ];
    for (n, extra) in cases.iter().enumerate() {
        let mut outs = Vec::new();
        for tool in [&restic, &cairn] {
            let target = t.join(format!(
                "t{n}-{}",
                if tool.is_restic { "restic" } else { "cairn" }
            ));
            let tt = target.to_str().unwrap().to_string();
            // Both start from the same restore, then the same day of work.
            cairn.run(&["restore", "latest", "--target", &tt]).ok();
            dirty_target(&target, future);
            let mut args = vec!["restore", "latest", "--target", &tt, "--json", "-vv"];
            args.extend_from_slice(extra);
            let before = common::detailed_listing(&target);
            let r = tool.run(&args).ok();
            if extra.contains(&"--dry-run") {
                assert_eq!(
                    before,
                    common::detailed_listing(&target),
                    "{} restore {extra:?} changed the target",
                    if tool.is_restic { "restic" } else { "cairn" }
                );
            }
            outs.push((target, restore_actions(&r, std::path::Path::new(&tt))));
        }
        let (rt, ra) = &outs[0];
        let (ct, ca) = &outs[1];
        assert_eq!(
            ra, ca,
            "restore {extra:?}: restic's and cairn's actions differ"
        );
        if extra.contains(&"--dry-run") {
            continue;
        }
        // Everything but the target directory itself (which no restore sets) must be equal.
        let diffs: Vec<_> = common::compare_dirs(rt, ct, common::CompareOptions::default())
            .into_iter()
            .filter(|d| !(d.path == b"." && d.what == "mtime"))
            .collect();
        common::assert_diffs(&format!("restore {extra:?}"), diffs, vec![]);
    }
}

#[test]
fn empty_passwords_need_insecure_no_password_as_in_restic_018() {
    let Some(Twins { t, restic, cairn }) = twins("compat-nopw", "") else {
        return;
    };
    let repo = t.join("repo");
    let src = source(&t);
    // Refused without the flag, by both, before anything is written.
    for tool in [&restic, &cairn] {
        let err = tool.run(&["init"]).expect_code(1).stderr_str();
        assert!(err.contains("--insecure-no-password"), "{err}");
        assert!(!repo.join("config").exists());
    }
    cairn.run(&["init", "--insecure-no-password"]).ok();
    cairn
        .run(&[
            "backup",
            "-q",
            "--insecure-no-password",
            src.to_str().unwrap(),
        ])
        .ok();
    // restic 0.18 reads the repository cairn made with the empty password.
    let listed = restic
        .run(&["snapshots", "--json", "--insecure-no-password"])
        .ok()
        .json();
    assert_eq!(listed.as_array().map(|a| a.len()), Some(1));
    restic.run(&["check", "--insecure-no-password"]).ok();
    // The flag with a password from elsewhere is a contradiction, for both.
    for tool in [&restic, &cairn] {
        let err = tool
            .run_env(
                None,
                &[("RESTIC_PASSWORD", "pw")],
                &["snapshots", "--insecure-no-password"],
            )
            .expect_code(1)
            .stderr_str();
        assert!(err.contains("must not be specified together"), "{err}");
    }
    // A key with a real password, then a second empty one through key add.
    let pwfile = t.join("pw");
    std::fs::write(&pwfile, "secret\n").unwrap();
    cairn
        .run(&[
            "key",
            "add",
            "--insecure-no-password",
            "--new-password-file",
            pwfile.to_str().unwrap(),
        ])
        .ok();
    let with_pw = Tool::cairn(&repo, "secret");
    with_pw
        .run(&["key", "add", "--new-insecure-no-password"])
        .ok();
    let keys = with_pw.run(&["key", "list", "--json"]).ok().json();
    assert_eq!(keys.as_array().map(|a| a.len()), Some(3), "{keys}");
}

#[test]
fn pack_size_is_honoured_and_restic_014_reads_the_packs() {
    let t = TempDir::new("compat-packsize");
    let repo = t.join("repo");
    let cairn = Tool::cairn(&repo, "pw");
    cairn.run(&["init"]).ok();
    cairn.run(&["--pack-size", "2", "snapshots"]).expect_code(1);
    let src = t.join("src");
    std::fs::create_dir_all(&src).unwrap();
    // 14 MiB that neither compress nor deduplicate.
    std::fs::write(src.join("noise"), common::noise(7, 14 << 20)).unwrap();
    cairn
        .run_env(
            None,
            &[("RESTIC_PACK_SIZE", "4")],
            &["backup", "-q", src.to_str().unwrap()],
        )
        .ok();
    let packs: Vec<u64> = common::files_in(&repo.join("data"))
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect();
    assert!(
        packs.len() >= 3,
        "4 MiB packs expected, got sizes {packs:?}"
    );
    assert!(
        packs.iter().all(|&n| n < 13 << 20),
        "a pack far over 4 MiB: {packs:?}"
    );
    require_restic!();
    Tool::restic(&repo, "pw")
        .run(&["check", "--read-data"])
        .ok();
}

/// Ids a `forget --json` run would remove.
fn forget_removes(r: &common::Run) -> BTreeSet<String> {
    let v: Value = r.json();
    v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["remove"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s["id"].as_str().map(String::from))
        .collect()
}

#[test]
fn forget_refuses_what_restic_018_refuses() {
    let Some(Twins { t, restic, cairn }) = twins("compat-forget", "pw") else {
        return;
    };
    let src = source(&t);
    restic.run(&["init"]).ok();
    for _ in 0..3 {
        restic
            .run(&["backup", "-q", "--host", "h1", src.to_str().unwrap()])
            .ok();
    }
    let all: BTreeSet<String> = cairn.snapshot_ids().into_iter().map(|(id, _)| id).collect();
    // Refused by both, nothing removed.
    for args in [
        &["forget", "--keep-tag", "nosuchtag"][..],
        &["forget"],
        &["forget", "--unsafe-allow-remove-all"],
        &["forget", "--keep-last", "-1"],
    ] {
        for tool in [&restic, &cairn] {
            let r = tool.run(args);
            assert_ne!(r.code, Some(0), "{} accepted {args:?}", r.desc);
        }
        let now: BTreeSet<String> = cairn.snapshot_ids().into_iter().map(|(id, _)| id).collect();
        assert_eq!(now, all, "{args:?} removed snapshots");
    }
    // Accepted by both, with the same outcome.
    for (args, removes_all) in [
        (&["forget", "--keep-last", "unlimited"][..], false),
        (&["forget", "--keep-last", "1"], false),
        (
            &["forget", "--unsafe-allow-remove-all", "--host", "h1"],
            true,
        ),
    ] {
        let mut full = args.to_vec();
        full.extend(["--dry-run", "--json"]);
        let theirs = forget_removes(&restic.run(&full).ok());
        let ours = forget_removes(&cairn.run(&full).ok());
        assert_eq!(theirs, ours, "{args:?}");
        assert_eq!(ours == all, removes_all, "{args:?}: {ours:?}");
    }
}

#[test]
fn dump_target_writes_what_restic_018_writes() {
    let Some(Twins { t, restic, cairn }) = twins("compat-dump", "pw") else {
        return;
    };
    let src = source(&t);
    restic.run(&["init"]).ok();
    restic.run_in(Some(t.path()), &["backup", "-q", "src"]).ok();
    for (what, path) in [("file", "/src/d/a.txt"), ("tar", "/src")] {
        let mut outs = Vec::new();
        for tool in [&restic, &cairn] {
            let out = t.join(format!(
                "{what}-{}",
                if tool.is_restic { "restic" } else { "cairn" }
            ));
            // An existing file is replaced.
            std::fs::write(&out, b"old content that must go").unwrap();
            let r = tool
                .run(&["dump", "latest", path, "--target", out.to_str().unwrap()])
                .ok();
            assert!(r.stdout.is_empty(), "{}: output went to stdout too", r.desc);
            outs.push(std::fs::read(&out).unwrap());
        }
        if what == "file" {
            assert_eq!(outs[0], b"hello\n");
            assert_eq!(outs[0], outs[1]);
        } else {
            // Both tars hold the same entries (headers may differ in details).
            let names = |b: &[u8]| -> Vec<String> {
                let mut a = tar::Archive::new(b);
                let mut v: Vec<String> = a
                    .entries()
                    .unwrap()
                    .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
                    .collect();
                v.sort();
                v
            };
            assert_eq!(names(&outs[0]), names(&outs[1]));
            assert!(names(&outs[1]).iter().any(|n| n.ends_with("a.txt")));
        }
    }
    let _ = src;
}
