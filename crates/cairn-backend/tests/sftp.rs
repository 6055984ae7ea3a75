//! The SFTP backend against a real OpenSSH sshd started on loopback for each test (and
//! stopped after it): the conformance suite, the ways to reach a server (`sftp.command`, an
//! ssh config alias through `sftp.args`, the `sftp://` form), clear errors when ssh cannot
//! log in, and a session whose ssh died being replaced.

mod suite;

use cairn_backend::{Backend, BackendError, FileType, Handle, Options};
use cairn_testsupport::sshd::Sshd;
use cairn_testsupport::PATIENCE;
use std::path::Path;
use std::time::{Duration, Instant};

fn open(location: &str, opts: &[String]) -> Box<dyn Backend> {
    let o = Options::parse(opts).expect("options");
    match cairn_backend::open_with(location, &o) {
        Ok(b) => b,
        Err(e) => panic!("open {location}: {e}"),
    }
}

fn open_err(location: &str, opts: &[String]) -> String {
    let o = Options::parse(opts).expect("options");
    match cairn_backend::open_with(location, &o) {
        Ok(_) => panic!("{location} opened"),
        Err(e) => e.to_string(),
    }
}

/// Every file below `dir`, relative.
fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn sftp_backend_conforms_against_openssh() {
    let Some(server) = Sshd::start() else {
        return;
    };
    let t = Instant::now();
    let loc = server.location("repo");
    let be = open(&loc, &[server.command_option()]);
    assert_eq!(be.location(), loc);
    assert_eq!(be.connections(), 5);
    suite::conformance(be.as_ref());

    // restic's layout on disk, private files, and nothing half-written left behind.
    let repo = server.dir().join("repo");
    for d in ["keys", "snapshots", "index", "locks", "data/00", "data/ff"] {
        assert!(repo.join(d).is_dir(), "{d} missing");
    }
    let files = files_below(&repo);
    assert!(files.iter().all(|f| !f.contains("-tmp-")), "{files:?}");
    assert_eq!(files.len(), 6, "{files:?}"); // the config and five snapshots
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(repo.join("config"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    // The config alone may be replaced.
    be.save(&Handle::config(), b"second config").unwrap();
    assert_eq!(be.load(&Handle::config(), 0, 0).unwrap(), b"second config");

    // Listings skip temporary names (cairn's and restic's) and foreign files; a missing type
    // directory lists as empty.
    let id = "cd".repeat(32);
    let snaps = repo.join("snapshots");
    std::fs::write(snaps.join(format!(".{}-tmp-h-1-00", &id[..16])), b"x").unwrap();
    std::fs::write(snaps.join(format!("{id}-restic-temp-0011")), b"x").unwrap();
    std::fs::write(snaps.join("README"), b"x").unwrap();
    assert_eq!(be.list(FileType::Snapshot).unwrap().len(), 5);
    std::fs::remove_dir(repo.join("locks")).unwrap();
    assert!(be.list(FileType::Lock).unwrap().is_empty());
    // ... and saving into it makes it again.
    be.save(&Handle::new(FileType::Lock, id.clone()), b"lock")
        .unwrap();
    assert_eq!(be.list(FileType::Lock).unwrap().len(), 1);
    eprintln!("conformance over sftp: {:.1}s", t.elapsed().as_secs_f64());
}

#[test]
fn many_threads_share_one_session() {
    let Some(server) = Sshd::start() else {
        return;
    };
    let be = open(
        &server.location("parallel"),
        &[server.command_option(), "sftp.connections=8".to_string()],
    );
    assert_eq!(be.connections(), 8);
    be.create().unwrap();
    let be: &dyn Backend = be.as_ref();
    std::thread::scope(|s| {
        for t in 0..8u8 {
            s.spawn(move || {
                for i in 0..12u8 {
                    let mut data = vec![t ^ i; 1000 + 300_000 * (i as usize % 3)];
                    data[0] = t;
                    let h = Handle::new(FileType::Data, suite::sha256_hex(&data));
                    be.save(&h, &data).unwrap();
                    assert_eq!(be.load(&h, 0, 0).unwrap(), data);
                }
            });
        }
    });
    let packs = be.list(FileType::Data).unwrap();
    assert_eq!(packs.len(), 96);
    // Two writers of the same name: one stores its file, the other is refused, never a
    // mixture.
    let h = Handle::new(FileType::Index, "ee".repeat(32));
    let results: Vec<_> = std::thread::scope(|s| {
        let a = s.spawn(|| be.save(&h, &vec![1u8; 2_000_000]));
        let b = s.spawn(|| be.save(&h, &vec![2u8; 2_000_000]));
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    let stored = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(stored, 1, "{results:?}");
    assert!(results
        .iter()
        .any(|r| matches!(r, Err(BackendError::AlreadyExists(_)))));
    // (Not a whole-file load: that would be checked against the name.)
    let got = be.load(&h, 0, 2_000_000).unwrap();
    assert!(got == vec![1u8; 2_000_000] || got == vec![2u8; 2_000_000]);
}

#[test]
fn sftp_reaches_the_server_through_an_ssh_config_alias_and_urls() {
    let Some(server) = Sshd::start() else {
        return;
    };
    // `sftp:ALIAS:/path`, with cairn's ssh reading the test's config through sftp.args.
    let be = open(&server.location("alias"), &[server.args_option()]);
    be.create().unwrap();
    be.save(&Handle::config(), b"via alias").unwrap();
    assert!(server.dir().join("alias/config").is_file());
    drop(be);

    // `sftp://user@127.0.0.1:PORT//abs/path`: the port and user from the URL.
    let url = format!(
        "sftp://{}@127.0.0.1:{}/{}",
        server.user,
        server.port,
        server.dir().join("alias").display()
    );
    let be = open(&url, &[server.args_option()]);
    assert_eq!(be.load(&Handle::config(), 0, 0).unwrap(), b"via alias");

    // `sftp:user@host:/path` in the same way.
    let be = open(
        &format!(
            "sftp:{}@127.0.0.1:{}",
            server.user,
            server.dir().join("alias").display()
        ),
        &[format!(
            "sftp.args=-F {} -p {}",
            server.config_path().display(),
            server.port
        )],
    );
    assert_eq!(be.stat(&Handle::config()).unwrap(), 9);

    // Unknown sftp options are refused, known ones are not reported.
    let err = open_err(
        &server.location("alias"),
        &[server.command_option(), "sftp.comand=x".into()],
    );
    assert!(err.contains("sftp.comand"), "{err}");
    let err = open_err(
        &server.location("alias"),
        &[server.command_option(), server.args_option()],
    );
    assert!(err.contains("both"), "{err}");
}

#[test]
fn refused_keys_and_wrong_hosts_are_one_clear_line() {
    let Some(server) = Sshd::start() else {
        return;
    };
    // A key the server does not know.
    let other = server.dir().join("other_key");
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let command = format!(
        "sftp.command=ssh -F /dev/null -p {} -o BatchMode=yes -o StrictHostKeyChecking=no \
         -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -i {} {}@127.0.0.1 -s sftp",
        server.port,
        other.display(),
        server.user
    );
    let t = Instant::now();
    let err = open_err(&server.location("x"), &[command]);
    assert!(!err.contains('\n'), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(err.contains("ssh exited"), "{err}");
    assert!(!err.contains("Permanently added"), "{err}");
    eprintln!("refused key: {err} ({:.1}s)", t.elapsed().as_secs_f64());

    // Nothing listening on the port.
    let port = cairn_testsupport::free_port();
    let err = open_err(
        &format!("sftp://{}@127.0.0.1:{port}//tmp/x", server.user),
        &[server.args_option()],
    );
    assert!(!err.contains('\n'), "{err}");
    assert!(err.contains("Connection refused"), "{err}");
    eprintln!("wrong port: {err}");

    // A command that does not exist.
    let err = open_err(
        &server.location("x"),
        &["sftp.command=/nonexistent/ssh host -s sftp".into()],
    );
    assert!(err.contains("cannot start") && !err.contains('\n'), "{err}");

    // A command that is not an SFTP server at all.
    let err = open_err(
        &server.location("x"),
        &["sftp.command=sh -c 'echo no sftp here >&2; exit 3'".into()],
    );
    assert!(
        err.contains("status 3") && err.contains("no sftp here") && !err.contains('\n'),
        "{err}"
    );
}

/// The pids of this process's `ssh` children whose command line mentions `mark`.
fn ssh_children(mark: &str) -> Vec<i32> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some((comm, rest)) = stat.split_once(") ") else {
            continue;
        };
        let ppid = rest.split_whitespace().nth(1).unwrap_or("");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if comm.ends_with("(ssh") && ppid == me && cmdline.contains(mark) {
            out.push(pid);
        }
    }
    out
}

/// Has the process exited (a zombie or gone)?
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .split_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => true,
    }
}

#[test]
fn a_session_whose_ssh_died_is_replaced() {
    let Some(server) = Sshd::start() else {
        return;
    };
    let be = open(
        &server.location("revive"),
        &[server.command_option(), "retry.max-elapsed=30s".into()],
    );
    be.create().unwrap();
    let h = Handle::new(FileType::Snapshot, suite::sha256_hex(b"before"));
    be.save(&h, b"before").unwrap();
    let mark = server.config_path().display().to_string();
    let pids = ssh_children(&mark);
    assert_eq!(pids.len(), 1, "{pids:?}");
    // SAFETY: killing the ssh this test's backend started.
    unsafe { libc::kill(pids[0], libc::SIGKILL) };
    // Dead, not merely signalled: then the next request cannot reach it.
    let start = Instant::now();
    while !dead(pids[0]) {
        assert!(
            start.elapsed() < PATIENCE,
            "ssh {} outlived SIGKILL",
            pids[0]
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The retry decorator's next attempt runs over a new ssh.
    assert_eq!(be.load(&h, 0, 0).unwrap(), b"before");
    let now = ssh_children(&mark);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now, pids);
    // Dropping the backend ends its ssh.
    drop(be);
    assert!(ssh_children(&mark).is_empty());
}

#[test]
fn sessions_that_die_mid_operation_are_reported_and_replaced() {
    let Some(server) = Sshd::start() else {
        return;
    };
    // Each session lives one second from its start, then the server ends it under whatever
    // request is in flight, and the ssh command exits with status 7.
    let Some(short_lived) = server
        .short_lived_command()
        .or_else(|| cairn_testsupport::missing("OpenSSH's sftp-server"))
    else {
        return;
    };
    let command = format!("sftp.command=sh -c '{short_lived}; exit 7'");
    let opts = Options::parse(&[command]).unwrap();
    let loc = server.location("dying");
    let be = until_ok("open", || {
        cairn_backend::sftp::SftpBackend::open(&loc["sftp:".len()..], &opts)
    });
    until_ok("create", || be.create());
    // Save for 2.5 s, and on a machine so busy that no session lived long enough to store
    // anything in that time, until one did.
    let start = Instant::now();
    let (mut stored, mut failed) = (0, Vec::new());
    let mut i = 0u32;
    while start.elapsed() < Duration::from_millis(2500)
        || (stored == 0 && start.elapsed() < PATIENCE)
    {
        i += 1;
        let data: Vec<u8> = (0..400_000u32)
            .map(|j| (i.wrapping_mul(j) >> 3) as u8)
            .collect();
        let h = Handle::new(FileType::Data, suite::sha256_hex(&data));
        match be.save(&h, &data) {
            Ok(()) => stored += 1,
            Err(e) => failed.push(e),
        }
    }
    assert!(stored > 0);
    for e in &failed {
        match e {
            BackendError::Io { err, .. } => {
                let msg = err.to_string();
                // Transient (the retry decorator tries again, over a new ssh), one line, and
                // saying what happened.
                assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted, "{msg}");
                assert!(!msg.contains('\n') && msg.contains("sh exited"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
    }
    eprintln!(
        "{stored} saves, {} failed as their session died: {:?}",
        failed.len(),
        failed.first().map(|e| e.to_string())
    );
    // Whatever was stored is whole. Sessions keep dying every second, so the listing and each
    // load may be cut short any number of times on a busy machine: each is tried again, over
    // a new session, until one lives long enough.
    let listed = until_ok("list the stored packs", || be.list(FileType::Data));
    // A save cut short after its rename may have stored its pack too.
    assert!(listed.len() >= stored, "{stored} stored: {listed:?}");
    for f in listed {
        let h = Handle::new(FileType::Data, f.name.clone());
        let data = until_ok(&format!("load {}", f.name), || be.load(&h, 0, 0));
        assert_eq!(suite::sha256_hex(&data), f.name);
    }
}

/// `op`'s first success, trying again while it fails, for up to [`PATIENCE`].
fn until_ok<T, E: std::fmt::Display>(what: &str, mut op: impl FnMut() -> Result<T, E>) -> T {
    let start = Instant::now();
    loop {
        match op() {
            Ok(v) => return v,
            Err(e) if start.elapsed() < PATIENCE => eprintln!("{what}: {e}; again"),
            Err(e) => panic!("{what}: still failing after {PATIENCE:?}: {e}"),
        }
    }
}
