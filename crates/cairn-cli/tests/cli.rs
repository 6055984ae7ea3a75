//! End-to-end tests of the `cairn` binary: round trips, bad input and its exit codes, damage.

mod common;

use common::{cairn, flip, ok, restored, Watched, CAIRN};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(c: &mut Command) -> Output {
    c.output().expect("run cairn")
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file under `dir` with its content (for "nothing changed" checks).
fn snapshot_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let content = std::fs::read(&p).unwrap();
                v.push((p, content));
            }
        }
    }
    v.sort();
    v
}

fn init(repo: &Path) {
    ok(cairn(repo).arg("init"));
}

fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/empty")).unwrap();
    std::fs::write(root.join("a.txt"), b"hello world\n").unwrap();
    std::fs::write(root.join("sub/empty-file"), b"").unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(root.join("sub/big.bin"), &big).unwrap();
    std::os::unix::fs::symlink("a.txt", root.join("link")).unwrap();
    std::fs::hard_link(root.join("a.txt"), root.join("hardlink")).unwrap();
    use std::os::unix::ffi::OsStrExt;
    let odd = std::ffi::OsStr::from_bytes(b"odd \"name\"\\ \n\x01\xff");
    std::fs::write(root.join(odd), b"odd").unwrap();
    std::fs::set_permissions(root.join("a.txt"), std::fs::Permissions::from_mode(0o4755)).unwrap();
}

#[test]
fn backup_and_restore_round_trip() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let src = t.path().join("src");
    make_tree(&src);
    init(&repo);
    let out = ok(cairn(&repo).arg("backup").arg(&src).arg("--json"));
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(summary["message_type"], "summary");
    assert_eq!(
        summary["total_files_processed"], 5,
        "regular files only, as restic counts"
    );
    let target = t.path().join("out");
    ok(cairn(&repo)
        .arg("restore")
        .arg("latest")
        .arg("--target")
        .arg(&target)
        .arg("--verify"));
    let restored = restored(&target, &src);
    for name in ["a.txt", "sub/empty-file", "sub/big.bin", "hardlink"] {
        assert_eq!(
            std::fs::read(src.join(name)).unwrap(),
            std::fs::read(restored.join(name)).unwrap(),
            "{name}"
        );
    }
    assert!(restored.join("sub/empty").is_dir());
    assert_eq!(
        std::fs::read_link(restored.join("link")).unwrap(),
        PathBuf::from("a.txt")
    );
    let a = std::fs::metadata(restored.join("a.txt")).unwrap();
    assert_eq!(a.mode() & 0o7777, 0o4755);
    assert_eq!(
        a.ino(),
        std::fs::metadata(restored.join("hardlink")).unwrap().ino(),
        "hard link kept"
    );
    let sm = std::fs::metadata(src.join("sub/big.bin")).unwrap();
    let rm = std::fs::metadata(restored.join("sub/big.bin")).unwrap();
    assert_eq!((sm.mtime(), sm.mtime_nsec()), (rm.mtime(), rm.mtime_nsec()));
    // A second backup of the same tree stores no new data.
    let out = ok(cairn(&repo).arg("backup").arg(&src).arg("--json"));
    let s2: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(s2["data_blobs"], 0, "{out}");
    let snaps: serde_json::Value =
        serde_json::from_str(&ok(cairn(&repo).arg("snapshots").arg("--json"))).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 2);
}

#[test]
fn wrong_password_exits_12_and_changes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    init(&repo);
    let before = snapshot_dir(&repo);
    let out = run(cairn(&repo).env("RESTIC_PASSWORD", "nope").arg("snapshots"));
    assert_eq!(code(&out), 12, "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim().lines().count(),
        1,
        "one line: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("wrong password"));
    let src = t.path().join("src");
    make_tree(&src);
    let out = run(cairn(&repo)
        .env("RESTIC_PASSWORD", "nope")
        .arg("backup")
        .arg(&src));
    assert_eq!(code(&out), 12);
    assert_eq!(snapshot_dir(&repo), before);
}

#[test]
fn missing_repository_exits_10_and_creates_nothing() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("nope");
    for args in [
        vec!["snapshots"],
        vec!["backup", "/etc/hostname"],
        vec!["ls", "latest"],
    ] {
        let out = run(cairn(&repo).args(&args));
        assert_eq!(code(&out), 10, "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
        assert!(!repo.exists(), "{args:?} created the repository directory");
    }
}

#[test]
fn init_refuses_existing_repository() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    init(&repo);
    let before = snapshot_dir(&repo);
    let out = run(cairn(&repo).arg("init"));
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(snapshot_dir(&repo), before);
}

#[test]
fn missing_and_unreadable_sources_warn_and_exit_3() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    init(&repo);
    let src = t.path().join("src");
    make_tree(&src);
    let missing = t.path().join("does-not-exist");
    // /proc/self/mem can be opened but reading at offset 0 fails (EIO), even for root.
    let out = run(cairn(&repo)
        .arg("backup")
        .arg(&src)
        .arg(&missing)
        .arg("/proc/self/mem"));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("does-not-exist"), "{err}");
    assert!(err.contains("mem"), "{err}");
    let snaps: serde_json::Value =
        serde_json::from_str(&ok(cairn(&repo).arg("snapshots").arg("--json"))).unwrap();
    assert_eq!(
        snaps.as_array().unwrap().len(),
        1,
        "snapshot saved despite the warnings"
    );
    let ls = ok(cairn(&repo).arg("ls").arg("latest"));
    assert!(ls.contains("/a.txt"), "{ls}");
    assert!(
        !ls.contains("mem\n"),
        "unreadable file must not be in the snapshot: {ls}"
    );
    // Nothing that exists at all: fatal.
    let out = run(cairn(&repo).arg("backup").arg(&missing));
    assert_eq!(code(&out), 1);
}

fn first_file(dir: &Path) -> PathBuf {
    snapshot_dir(dir).into_iter().next().expect("a file").0
}

/// Flips a bit `from_end` bytes before the end of a file.
fn flip_byte(path: &Path, from_end: u64) {
    let len = std::fs::metadata(path).unwrap().len();
    flip(path, len - from_end, 0x40);
}

#[test]
fn damaged_files_are_named() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    init(&repo);
    let src = t.path().join("src");
    make_tree(&src);
    ok(cairn(&repo).arg("backup").arg(&src));
    // A damaged snapshot file, then a damaged index file (each repaired afterwards): the
    // command that reads it fails and names it.
    for (dir, args) in [
        ("snapshots", &["snapshots"][..]),
        ("index", &["ls", "latest"]),
    ] {
        let file = first_file(&repo.join(dir));
        let saved = std::fs::read(&file).unwrap();
        flip_byte(&file, 20);
        let out = run(cairn(&repo).args(args));
        assert_ne!(code(&out), 0, "{dir}");
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            stderr(&out).contains(&name),
            "error names the {dir} file: {}",
            stderr(&out)
        );
        std::fs::write(&file, saved).unwrap();
    }
    // Damage the first blob of the biggest pack (file data): restore names pack and blob.
    let mut packs: Vec<PathBuf> = snapshot_dir(&repo.join("data"))
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    packs.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    let pack = packs.last().unwrap().clone();
    flip(&pack, 40, 1);
    let out = run(cairn(&repo)
        .arg("restore")
        .arg("latest")
        .arg("--target")
        .arg(t.path().join("out")));
    assert_ne!(code(&out), 0, "restore of damaged data must fail");
    let short = &pack.file_name().unwrap().to_string_lossy()[..8];
    assert!(
        stderr(&out).contains(short),
        "error names the pack: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("blob"),
        "error names the blob: {}",
        stderr(&out)
    );
}

#[test]
fn keys_add_list_passwd_remove() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    init(&repo);
    let pwfile = t.path().join("pw2");
    std::fs::write(&pwfile, "second\n").unwrap();
    ok(cairn(&repo)
        .args(["key", "add", "--new-password-file"])
        .arg(&pwfile));
    let keys: serde_json::Value =
        serde_json::from_str(&ok(cairn(&repo).args(["key", "list", "--json"]))).unwrap();
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let other = keys.iter().find(|k| k["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The second password opens the repository.
    ok(cairn(&repo)
        .env("RESTIC_PASSWORD", "second")
        .arg("snapshots"));
    // Refuses to remove the key in use; removes the other one.
    let cur = keys.iter().find(|k| k["current"] == true).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(code(&run(cairn(&repo).args(["key", "remove", &cur]))), 1);
    ok(cairn(&repo).args(["key", "remove", &other]));
    assert_eq!(
        code(&run(cairn(&repo)
            .env("RESTIC_PASSWORD", "second")
            .arg("snapshots"))),
        12
    );
    // passwd replaces the current key.
    std::fs::write(&pwfile, "third\n").unwrap();
    ok(cairn(&repo)
        .args(["key", "passwd", "--new-password-file"])
        .arg(&pwfile));
    assert_eq!(code(&run(cairn(&repo).arg("snapshots"))), 12);
    ok(cairn(&repo)
        .env("RESTIC_PASSWORD", "third")
        .arg("snapshots"));
}

#[test]
fn password_sources() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    init(&repo);
    let pwfile = t.path().join("pw");
    std::fs::write(&pwfile, "test-pw\n").unwrap();
    ok(cairn(&repo)
        .env_remove("RESTIC_PASSWORD")
        .arg("-p")
        .arg(&pwfile)
        .arg("snapshots"));
    ok(cairn(&repo)
        .env_remove("RESTIC_PASSWORD")
        .env("RESTIC_PASSWORD_FILE", &pwfile)
        .arg("snapshots"));
    ok(cairn(&repo)
        .env_remove("RESTIC_PASSWORD")
        .arg("--password-command")
        .arg("echo test-pw")
        .arg("snapshots"));
    ok(cairn(&repo)
        .env_remove("RESTIC_PASSWORD")
        .env("RESTIC_PASSWORD_COMMAND", "echo test-pw")
        .arg("snapshots"));
    // Repository from a file and from the environment.
    let repofile = t.path().join("repofile");
    std::fs::write(&repofile, format!("{}\n", repo.display())).unwrap();
    let mut c = Command::new(CAIRN);
    c.env("RESTIC_PASSWORD", "test-pw")
        .arg("--repository-file")
        .arg(&repofile)
        .arg("snapshots");
    ok(&mut c);
    let mut c = Command::new(CAIRN);
    c.env("RESTIC_PASSWORD", "test-pw")
        .env("RESTIC_REPOSITORY", &repo)
        .arg("snapshots");
    ok(&mut c);
    // A password on stdin when it is not a terminal.
    use std::io::Write;
    let mut child = cairn(&repo)
        .env_remove("RESTIC_PASSWORD")
        .arg("snapshots")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"test-pw\n").unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
}

#[test]
fn restore_subpath_include_exclude() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    init(&repo);
    let src = t.path().join("src");
    make_tree(&src);
    std::env::set_current_dir(t.path()).unwrap();
    ok(cairn(&repo)
        .current_dir(t.path())
        .arg("backup")
        .arg("src")
        .arg("--exclude")
        .arg("*.bin"));
    let ls = ok(cairn(&repo).arg("ls").arg("latest"));
    assert!(ls.contains("/src/a.txt") && !ls.contains("big.bin"), "{ls}");
    let out = t.path().join("o1");
    ok(cairn(&repo)
        .arg("restore")
        .arg("latest:src/sub")
        .arg("--target")
        .arg(&out));
    assert!(
        out.join("empty-file").is_file()
            && out.join("empty").is_dir()
            && !out.join("a.txt").exists()
    );
    let out = t.path().join("o2");
    ok(cairn(&repo)
        .arg("restore")
        .arg("latest")
        .arg("--target")
        .arg(&out)
        .arg("--include")
        .arg("/src/a.txt"));
    assert!(out.join("src/a.txt").is_file());
    assert!(!out.join("src/sub").exists() && !out.join("src/link").exists());
    let out = t.path().join("o3");
    ok(cairn(&repo)
        .arg("restore")
        .arg("latest")
        .arg("--target")
        .arg(&out)
        .arg("--exclude")
        .arg("sub"));
    assert!(out.join("src/a.txt").is_file() && !out.join("src/sub").exists());
}

#[test]
fn cat_objects() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    init(&repo);
    let src = t.path().join("src");
    make_tree(&src);
    ok(cairn(&repo).arg("backup").arg(&src));
    let cfg: serde_json::Value =
        serde_json::from_str(&ok(cairn(&repo).args(["cat", "config"]))).unwrap();
    assert_eq!(cfg["version"], 2);
    let mk: serde_json::Value =
        serde_json::from_str(&ok(cairn(&repo).args(["cat", "masterkey"]))).unwrap();
    assert!(mk["encrypt"].is_string());
    let snaps: serde_json::Value =
        serde_json::from_str(&ok(cairn(&repo).args(["snapshots", "--json"]))).unwrap();
    let sid = snaps[0]["short_id"].as_str().unwrap().to_string();
    let snap: serde_json::Value =
        serde_json::from_str(&ok(cairn(&repo).args(["cat", "snapshot", &sid]))).unwrap();
    let tree = snap["tree"].as_str().unwrap().to_string();
    let t1 = ok(cairn(&repo).args(["cat", "blob", &tree]));
    let t2 = ok(cairn(&repo).args(["cat", "tree", &tree]));
    assert_eq!(t1, t2);
    assert!(t1.starts_with("{\"nodes\":["));
    assert_eq!(code(&run(cairn(&repo).args(["cat", "bogus"]))), 1);
}

/// Waits until the cairn working on `repo` is blocked in read(2) (on its terminal, with echo
/// off); where /proc does not tell, gives it half a second.
fn wait_for_tty_read(repo: &Path) {
    let repo = repo.display().to_string();
    let start = std::time::Instant::now();
    while start.elapsed() < common::PATIENCE {
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let pid = e.file_name().to_string_lossy().into_owned();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            if !cmdline.starts_with(CAIRN) || !cmdline.contains(&repo) {
                continue;
            }
            match std::fs::read_to_string(format!("/proc/{pid}/syscall")) {
                Ok(s) if s.split_whitespace().next() == Some(&libc::SYS_read.to_string()) => return,
                Ok(_) => {}
                Err(_) => {
                    std::thread::sleep(std::time::Duration::from_millis(500));
                    return;
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!(
        "cairn did not read its terminal within {:?}",
        common::PATIENCE
    );
}

/// Without any password source, the password is asked on the terminal (without echo).
#[test]
fn password_prompt_on_a_terminal() {
    let have_script = Command::new("script")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have_script {
        eprintln!("SKIP: script(1) not installed");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    init(&repo);
    let cmd = format!("{} -r {} snapshots", CAIRN, repo.display());
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("RESTIC_PASSWORD")
        .env_remove("RESTIC_PASSWORD_FILE")
        .env_remove("RESTIC_PASSWORD_COMMAND")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Typed only once cairn reads the terminal: echo is off by then, while a password typed
    // earlier (a busy machine may take any time to get there) would be echoed.
    let stdout = Watched::stdout_of(&mut child);
    stdout.wait_for("enter password for repository");
    wait_for_tty_read(&repo);
    use std::io::Write;
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"test-pw\n")
        .unwrap();
    let out = child.wait().unwrap();
    let text = stdout.all();
    assert!(out.success(), "{text}");
    assert!(text.contains("enter password for repository"), "{text}");
    assert!(
        !text.contains("test-pw"),
        "the password must not be echoed: {text}"
    );
}

#[test]
fn empty_repository_lists_nothing_like_restic() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    init(&repo);
    assert_eq!(ok(cairn(&repo).arg("snapshots")), "");
    assert_eq!(ok(cairn(&repo).args(["snapshots", "--json"])).trim(), "[]");
}
