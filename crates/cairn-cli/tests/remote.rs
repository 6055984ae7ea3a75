//! Repositories on real servers started on loopback by the tests — REST (`rclone serve
//! restic`), S3 (Garage) and SFTP (OpenSSH sshd) — backed up to both ways with restic 0.14: one
//! test body per direction, run against every server (`rest::…`, `s3::…`, `sftp::…`, so that a
//! failure names its server), and how cairn reports each kind of server it cannot use.

mod common;

use common::{
    compare_dirs, make_corpus, only_symlinks_differ, restored, CompareOptions, Diff, Garage,
    RcloneRest, Run, Sshd, TempDir, Tool,
};
use std::path::{Path, PathBuf};

/// A server of one kind, running.
enum Server {
    Rest(RcloneRest),
    S3(Garage),
    Sftp(Sshd),
}

#[derive(Clone, Copy)]
enum Kind {
    Rest,
    S3,
    Sftp,
}

impl Server {
    /// `None` (after a loud message) when the server's program is missing; with
    /// `CAIRN_REQUIRE_SERVERS=1` that fails the test instead.
    fn start(kind: Kind) -> Option<Server> {
        match kind {
            Kind::Rest => RcloneRest::start().map(Server::Rest),
            Kind::S3 => Garage::start().map(Server::S3),
            Kind::Sftp => Sshd::start().map(Server::Sftp),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Server::Rest(_) => "REST",
            Server::S3(_) => "S3",
            Server::Sftp(_) => "SFTP",
        }
    }

    fn location(&self, repo: &str) -> String {
        match self {
            Server::Rest(s) => s.location(repo),
            Server::S3(g) => g.location(repo),
            Server::Sftp(s) => s.location(repo),
        }
    }

    /// Runs restic or cairn on a repository of this server, with what it needs to reach it:
    /// the store's credentials (S3) or `-o sftp.command=ssh -F CONFIG ALIAS -s sftp` (SFTP;
    /// restic 0.14 knows no `sftp.args`).
    fn run(&self, tool: &Tool, args: &[&str]) -> Run {
        match self {
            Server::Rest(_) => tool.run(args),
            Server::S3(g) => {
                let env = g.env();
                let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
                tool.run_env(None, &env, args)
            }
            Server::Sftp(s) => {
                let opt = s.command_option();
                let mut all = vec!["-o", opt.as_str()];
                all.extend_from_slice(args);
                tool.run(&all)
            }
        }
    }

    /// Like [`Server::run`], but for cairn through the other way it has to reach the server
    /// where there is one: SFTP through the ssh config alias with `sftp.args`.
    fn run_cairn_other_way(&self, cairn: &Tool, args: &[&str]) -> Run {
        match self {
            Server::Sftp(s) => {
                let opt = s.args_option();
                let mut all = vec!["-o", opt.as_str()];
                all.extend_from_slice(args);
                cairn.run(&all)
            }
            _ => self.run(cairn, args),
        }
    }

    /// Restores the latest snapshot into `out`, and returns how the restored `src` differs
    /// from `src`.
    fn restore_diffs(&self, tool: &Tool, src: &Path, out: &Path) -> Vec<Diff> {
        self.run(
            tool,
            &["restore", "latest", "--target", out.to_str().unwrap()],
        )
        .ok();
        compare_dirs(src, &restored(out, src), CompareOptions::default())
    }

    /// Where the repository lies on the server's disk in restic's layout, for the servers
    /// that keep it as plain files (Garage has its own format).
    fn disk(&self, repo: &str) -> Option<PathBuf> {
        match self {
            Server::Rest(s) => Some(s.dir().join(repo)),
            Server::S3(_) => None,
            Server::Sftp(s) => Some(s.dir().join(repo)),
        }
    }
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

/// restic's layout: a config file, and every pack in `data/XX/` named by its first two hex
/// digits.
fn assert_restic_layout(repo: &Path) {
    assert!(repo.join("config").is_file(), "{}", repo.display());
    let packs: Vec<_> = std::fs::read_dir(repo.join("data"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .collect();
    assert!(!packs.is_empty(), "{}", repo.display());
    for p in &packs {
        let name = p.file_name().to_string_lossy().into_owned();
        let dir = p.path().parent().unwrap().file_name().unwrap().to_owned();
        assert_eq!(dir.to_string_lossy(), &name[..2], "{}", p.path().display());
    }
}

/// restic writes; cairn lists, restores and checks what it wrote, then adds a backup that
/// restic accepts.
fn restic_writes_cairn_reads(kind: Kind, seed: u32) {
    require_restic!();
    let Some(s) = Server::start(kind) else {
        return;
    };
    let what = s.name();
    let t = TempDir::new(&format!("remote-{what}-by-restic"));
    let src = t.join("src");
    make_corpus(&src, 8, seed);
    let src_s = src.to_str().unwrap();
    let loc = s.location("by-restic");
    let cairn = Tool::cairn(Path::new(&loc), "pw");
    let restic = Tool::restic(Path::new(&loc), "pw");
    s.run(&restic, &["init"]).ok();
    s.run(&restic, &["backup", "-q", src_s]).ok();

    // cairn lists what restic wrote, snapshot and files, and restores it.
    let snaps = s.run(&cairn, &["snapshots", "--json"]).ok().json();
    assert_eq!(snaps.as_array().map(Vec::len), Some(1), "{what}: {snaps}");
    let ls = s.run(&cairn, &["ls", "latest"]).ok().stdout_str();
    assert!(ls.lines().count() > 5, "{what}: {ls}");
    let d = s.restore_diffs(&cairn, &src, &t.join("cairn-restored"));
    assert!(
        only_symlinks_differ(&d),
        "cairn's restore of restic's {what} backup differs: {d:?}"
    );
    s.run(&cairn, &["check", "--read-data"]).ok();

    // cairn adds to restic's repository; restic accepts the result.
    s.run_cairn_other_way(&cairn, &["backup", "-q", src_s]).ok();
    s.run(&cairn, &["check"]).ok();
    s.run(&restic, &["check", "--read-data"]).ok();
    let snaps = s.run(&restic, &["snapshots", "--json"]).ok().json();
    assert_eq!(snaps.as_array().map(Vec::len), Some(2), "{what}: {snaps}");
    if let Some(repo) = s.disk("by-restic") {
        let left = leftovers(&repo);
        assert!(left.is_empty(), "{what}: {left:?}");
    }
}

/// cairn writes in restic's layout; restic checks and restores it; cairn's next backup finds
/// its parent and stores nothing new.
fn cairn_writes_restic_reads(kind: Kind, seed: u32) {
    require_restic!();
    let Some(s) = Server::start(kind) else {
        return;
    };
    let what = s.name();
    let t = TempDir::new(&format!("remote-{what}-by-cairn"));
    let src = t.join("src");
    make_corpus(&src, 8, seed);
    let src_s = src.to_str().unwrap();
    let loc = s.location("by-cairn");
    let cairn = Tool::cairn(Path::new(&loc), "pw");
    let restic = Tool::restic(Path::new(&loc), "pw");
    s.run(&cairn, &["init"]).ok();
    s.run(&cairn, &["backup", "-q", src_s]).ok();
    if let Some(repo) = s.disk("by-cairn") {
        assert_restic_layout(&repo);
    }

    s.run(&restic, &["check", "--read-data"]).ok();
    let d = s.restore_diffs(&restic, &src, &t.join("restic-restored"));
    assert!(
        only_symlinks_differ(&d),
        "restic's restore of cairn's {what} backup differs: {d:?}"
    );
    // A second cairn backup uses its parent and stores no new data (only the trees of the
    // test's own folder, whose mtime the restore above changed).
    let r = s.run(&cairn, &["backup", "--json", src_s]).ok();
    let sum = r.summary();
    assert_eq!(sum["files_new"], 0, "{what}: {sum}");
    assert_eq!(sum["files_changed"], 0, "{what}: {sum}");
    assert_eq!(sum["data_blobs"], 0, "{what}: {sum}");
    s.run(&restic, &["check"]).ok();
    if let Some(repo) = s.disk("by-cairn") {
        let left = leftovers(&repo);
        assert!(left.is_empty(), "{what}: {left:?}");
    }
}

/// `--limit-upload` and `--limit-download` hold on this server: 1 MiB of noise at 256 KiB/s
/// takes at least 4 s each way (only lower bounds: a busy machine makes it slower, never
/// faster).
fn limits_hold(kind: Kind) {
    let Some(s) = Server::start(kind) else {
        return;
    };
    let what = s.name();
    let t = TempDir::new(&format!("remote-{what}-limits"));
    let src = t.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("noise"), common::noise(11, 1 << 20)).unwrap();
    let loc = s.location("limited");
    let cairn = Tool::cairn(Path::new(&loc), "pw");
    s.run(&cairn, &["init"]).ok();
    let start = std::time::Instant::now();
    s.run(
        &cairn,
        &[
            "--limit-upload",
            "256",
            "backup",
            "-q",
            src.to_str().unwrap(),
        ],
    )
    .ok();
    let up = start.elapsed();
    assert!(
        up >= std::time::Duration::from_millis(3800),
        "{what}: upload took {up:?}"
    );
    let start = std::time::Instant::now();
    let out = t.join("out");
    s.run(
        &cairn,
        &[
            "--no-cache",
            "--limit-download",
            "256",
            "restore",
            "latest",
            "--target",
            out.to_str().unwrap(),
        ],
    )
    .ok();
    let down = start.elapsed();
    assert!(
        down >= std::time::Duration::from_millis(3800),
        "{what}: download took {down:?}"
    );
    assert_eq!(
        std::fs::read(restored(&out, &src).join("noise")).unwrap(),
        std::fs::read(src.join("noise")).unwrap()
    );
}

/// The two directions against one kind of server, as tests named after it. Each test has
/// its own corpus seed, so that no two share their data by accident.
macro_rules! both_ways_over {
    ($($server:ident: $kind:expr, $seed:expr;)*) => {$(
        mod $server {
            use super::*;

            #[test]
            fn restic_backup_restores_identically_with_cairn() {
                restic_writes_cairn_reads($kind, $seed);
            }

            #[test]
            fn cairn_backup_restores_identically_with_restic() {
                cairn_writes_restic_reads($kind, $seed + 1);
            }

            #[test]
            fn bandwidth_limits_hold() {
                limits_hold($kind);
            }
        }
    )*};
}

both_ways_over! {
    rest: Kind::Rest, 3;
    s3: Kind::S3, 5;
    sftp: Kind::Sftp, 7;
}

// How cairn reports each kind of server it cannot use: these differ in what goes wrong, so
// each is its own test.

#[test]
fn a_rest_server_that_is_not_there_is_one_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let loc = format!("rest:http://127.0.0.1:{port}/repo/");
    // Without retries: one line.
    let r = Tool::cairn(Path::new(&loc), "pw").run(&["snapshots", "-o", "retry.max-elapsed=0"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr_str());
    let err = r.stderr_str();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("Fatal:") && err.contains("config"), "{err}");
    // With a short retry budget: a notice per retry, then the same one-line error, which
    // says how long it tried.
    let t = std::time::Instant::now();
    let r = Tool::cairn(Path::new(&loc), "pw").run(&["snapshots", "-o", "retry.max-elapsed=3s"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr_str());
    assert!(t.elapsed() < std::time::Duration::from_secs(15));
    let err = r.stderr_str();
    let lines: Vec<&str> = err.trim().lines().collect();
    assert!(lines.len() >= 2, "{err}");
    let (last, notices) = lines.split_last().unwrap();
    assert!(
        last.starts_with("Fatal:") && last.contains("gave up after"),
        "{err}"
    );
    assert!(notices.iter().all(|l| l.contains("retrying in")), "{err}");
}

#[test]
fn refused_s3_credentials_are_one_clear_error() {
    let Some(g) = Garage::start() else {
        return;
    };
    let loc = g.location("repo");
    let cairn = Tool::cairn(Path::new(&loc), "pw");
    // A wrong secret: permission denied is not retried, and is one line naming the variables.
    let env = [
        ("AWS_ACCESS_KEY_ID", g.access_key_id()),
        ("AWS_SECRET_ACCESS_KEY", "wrong"),
        ("AWS_DEFAULT_REGION", "garage"),
    ];
    let t = std::time::Instant::now();
    let r = cairn.run_env(None, &env, &["snapshots"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr_str());
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    let err = r.stderr_str();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("Fatal:") && err.contains("403") && err.contains("AWS_SECRET_ACCESS_KEY"),
        "{err}"
    );
    // No credentials at all (empty counts as unset, whatever the caller's environment has).
    let r = cairn.run_env(
        None,
        &[("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", "")],
        &["snapshots"],
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr_str());
    let err = r.stderr_str();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
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
    let server = Server::Sftp(s);
    let r = server.run(
        &Tool::cairn(Path::new(&loc), "pw"),
        &["-o", "sftp.comand=ssh", "snapshots"],
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr_str());
    assert!(r.stderr_str().contains("sftp.comand"), "{}", r.stderr_str());
}
