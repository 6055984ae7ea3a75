//! A hostile repository against the commands that walk trees (ls, find, dump, diff, stats):
//! correctly encrypted but forged trees written by `cairn_testsupport::hostile::Forger` into a
//! real repository. Every command runs as the real binary under an address-space limit and a
//! deadline, so a stack overflow, an abort, a memory blowup or a hang fails the test.
//!
//! - a chain of 100,000 nested trees: each command stops at the walker's depth limit with
//!   one clear line and its documented exit code (1, dump's "failed" 2), never a signal;
//! - a DAG bomb (40 levels, 2^40 paths): each command refuses it in bounded time and memory;
//! - Ctrl-C during a large walk (ls, stats, dump, find, diff): exit 130 within a second;
//! - `dump` of a tree with unsafe names, repeated names and files whose content does not
//!   add up to their size: those entries are reported and absent, exit 3, and extracting the
//!   archive (Python's tarfile/zipfile, trusting it fully) writes nothing outside its folder.

mod common;

use cairn_testsupport::hostile::{self, Forger};
use common::{new_repo, relative_paths, TempDir};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PW: &str = "hostile-walk";
/// Address-space limit for every cairn run.
const MEMORY_LIMIT: u64 = 1 << 30;

/// A small, honest snapshot to compare with.
fn normal_snapshot(f: &mut Forger) -> String {
    let a = f.file(b"a", b"hello\n");
    let b = f.file(b"b", b"world\n");
    let t = f.tree(&[a, b]);
    let d = f.dir(b"d", t);
    let root = f.tree(&[d]);
    f.snapshot(root).to_hex()
}

struct Finished {
    desc: String,
    code: Option<i32>,
    signal: Option<i32>,
    stderr: String,
    elapsed: Duration,
}

impl Finished {
    fn last_line(&self) -> &str {
        self.stderr.lines().last().unwrap_or("")
    }

    /// Exited on its own (not by a signal) with `code`, and said `what` on stderr.
    fn expect(&self, code: i32, what: &str) {
        assert_eq!(
            (self.code, self.signal),
            (Some(code), None),
            "{}: exit code/signal after {:?}; stderr (tail):\n{}",
            self.desc,
            self.elapsed,
            tail(&self.stderr)
        );
        assert!(
            self.stderr.contains(what),
            "{}: stderr lacks {what:?}:\n{}",
            self.desc,
            tail(&self.stderr)
        );
    }
}

fn tail(s: &str) -> &str {
    let mut i = s.len().saturating_sub(3000);
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

/// Starts cairn on `repo` with its stdout going to `stdout` (a file, or /dev/null), under
/// the address-space limit.
fn start(repo: &Path, args: &[&str], stdout: Option<&Path>, stderr: &Path) -> std::process::Child {
    let mut c = Command::new(common::cairn_bin());
    c.arg("-r").arg(repo).args(args);
    c.env_remove("RESTIC_REPOSITORY")
        .env_remove("RESTIC_PASSWORD_FILE")
        .env_remove("RESTIC_CACHE_DIR")
        .env("RESTIC_PASSWORD", PW)
        .env("CAIRN_TEST_KDF", "fast")
        .env("XDG_CACHE_HOME", repo.with_extension("cache"))
        .stdin(Stdio::null())
        .stdout(match stdout {
            Some(p) => Stdio::from(std::fs::File::create(p).expect("stdout file")),
            None => Stdio::null(),
        })
        .stderr(Stdio::from(
            std::fs::File::create(stderr).expect("stderr file"),
        ));
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: MEMORY_LIMIT,
                rlim_max: MEMORY_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c.spawn().expect("start cairn")
}

/// Runs cairn to completion within `deadline` (killing it and failing the test otherwise).
fn run_limited(
    tmp: &TempDir,
    repo: &Path,
    args: &[&str],
    stdout: Option<&Path>,
    deadline: Duration,
) -> Finished {
    let desc = format!("`cairn {}`", args.join(" "));
    let err_path = tmp.join("stderr.txt");
    let started = Instant::now();
    let mut child = start(repo, args, stdout, &err_path);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{desc}: still running after {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&std::fs::read(&err_path).unwrap_or_default()).into();
    eprintln!("[{:6.2}s] {desc} -> {status:?}", elapsed.as_secs_f64());
    Finished {
        desc,
        code: status.code(),
        signal: status.signal(),
        stderr,
        elapsed,
    }
}

#[test]
fn deep_chain_of_trees_stops_at_the_depth_limit() {
    let tmp = TempDir::new("cairn-hostile-deep");
    let repo = new_repo(&tmp, "repo", PW);
    let mut f = Forger::open(&repo, PW);
    let normal = normal_snapshot(&mut f);
    let leaf = f.file(b"bottom", b"deep\n");
    let root = hostile::deep_chain(&mut f, 100_000, &[leaf]);
    let deep = f.snapshot(root).to_hex();
    drop(f);

    let limit = Duration::from_secs(120);
    let depth_msg = "nested deeper than 4096 levels";
    let out = tmp.join("out");
    let r = run_limited(&tmp, &repo, &["ls", &deep], Some(&out), limit);
    r.expect(1, depth_msg);
    assert!(
        r.last_line().starts_with("Fatal: ") && r.last_line().contains(depth_msg),
        "{}: last line {:?}",
        r.desc,
        r.last_line()
    );
    // What it listed before stopping is the chain itself, 4096 levels of it.
    let listed = std::fs::read(&out).expect("ls output");
    let lines = listed
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"/d"))
        .count();
    assert_eq!(lines, 4096, "ls listed {lines} levels");

    for args in [
        vec!["find", "-s", &deep, "bottom"],
        vec!["find", "--blob", "-s", &deep, "00"],
        vec!["stats", &deep],
        vec!["diff", &normal, &deep],
        vec!["diff", &deep, &normal],
    ] {
        run_limited(&tmp, &repo, &args, None, limit).expect(1, depth_msg);
    }
    let r = run_limited(&tmp, &repo, &["dump", &deep, "/"], None, limit);
    r.expect(2, depth_msg);
    assert!(
        r.last_line().starts_with("cannot dump file: "),
        "{}",
        r.last_line()
    );
    // A deep but legal part of the chain is still readable.
    let d50 = "/d".repeat(50);
    run_limited(&tmp, &repo, &["ls", &deep, &d50], None, limit).expect(0, "");
}

#[test]
fn dag_bomb_is_refused_in_bounded_time_and_memory() {
    let tmp = TempDir::new("cairn-hostile-dag");
    let repo = new_repo(&tmp, "repo", PW);
    let mut f = Forger::open(&repo, PW);
    let normal = normal_snapshot(&mut f);
    let root = hostile::dag_bomb(&mut f, 40);
    let bomb = f.snapshot(root).to_hex();
    drop(f);

    let limit = Duration::from_secs(300);
    let refusal = "refusing to expand";
    for args in [
        vec!["ls", bomb.as_str()],
        vec!["find", "-s", bomb.as_str(), "nothing-like-this"],
        vec!["find", "-s", bomb.as_str(), "f"],
        vec!["stats", bomb.as_str()],
        vec!["diff", normal.as_str(), bomb.as_str()],
    ] {
        let r = run_limited(&tmp, &repo, &args, None, limit);
        r.expect(1, refusal);
        assert!(
            r.last_line().contains(refusal),
            "{}: {}",
            r.desc,
            r.last_line()
        );
    }
    let r = run_limited(&tmp, &repo, &["dump", &bomb, "/"], None, limit);
    r.expect(2, refusal);
    // raw-data counts each tree once, so the bomb is small to it.
    run_limited(
        &tmp,
        &repo,
        &["stats", "--mode", "raw-data", &bomb],
        None,
        limit,
    )
    .expect(0, "");
}

#[test]
fn ctrl_c_ends_every_walk_within_a_second() {
    let tmp = TempDir::new("cairn-hostile-sigint");
    let repo = new_repo(&tmp, "repo", PW);
    let mut f = Forger::open(&repo, PW);
    let normal = normal_snapshot(&mut f);
    let root = hostile::dag_bomb(&mut f, 40);
    let bomb = f.snapshot(root).to_hex();
    drop(f);

    let out = tmp.join("out");
    let err = tmp.join("err");
    for args in [
        vec!["ls", bomb.as_str()],
        vec!["stats", bomb.as_str()],
        vec!["dump", bomb.as_str(), "/"],
        vec!["find", "-s", bomb.as_str(), "f"],
        vec!["diff", normal.as_str(), bomb.as_str()],
    ] {
        let desc = args.join(" ");
        let mut child = start(&repo, &args, Some(&out), &err);
        // Into the walk (the quickest, stats, reaches the refusal after ~0.6 s).
        let t0 = Instant::now();
        if args[0] == "ls" {
            while std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) < 1 << 20 {
                assert!(t0.elapsed() < common::PATIENCE, "ls printed nothing");
                std::thread::sleep(Duration::from_millis(10));
            }
        } else {
            // 150 ms of CPU, not of wall time: on a busy machine that much wall time may
            // not even see cairn start.
            assert!(
                common::wait_for_cpu(&mut child, Duration::from_millis(150)),
                "{desc} ended before the signal"
            );
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "{desc} ended before the signal"
        );
        // SAFETY: signals our own child, by its id.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
        let sent = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().expect("wait") {
                break st;
            }
            if sent.elapsed() > Duration::from_secs(5) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{desc}: still running 5 s after SIGINT");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let took = sent.elapsed();
        eprintln!("{desc}: {status:?} {took:?} after SIGINT");
        assert_eq!(status.code(), Some(130), "{desc} after SIGINT: {status:?}");
        assert!(
            took < Duration::from_secs(1),
            "{desc} took {took:?} to stop"
        );
    }
}

/// A directory of every kind of entry that must not reach an archive, beside good ones.
/// Returns (snapshot id, names that must be in the archive, paths that must be reported).
fn forge_unsafe_dump(f: &mut Forger) -> (String, Vec<&'static str>, Vec<&'static str>) {
    // A whole tar member (an escaping one) as file content: a header that says 0 bytes
    // would make it the archive's next member.
    let mut smuggled = tar::Header::new_old();
    smuggled.as_old_mut().name[..11].copy_from_slice(b"../smuggled");
    smuggled.set_size(6);
    smuggled.set_mode(0o644);
    smuggled.set_entry_type(tar::EntryType::Regular);
    smuggled.set_cksum();
    let mut payload = smuggled.as_bytes().to_vec();
    payload.extend_from_slice(b"owned\n");
    payload.resize(1024, 0);
    let mut liar = f.file(b"liar", &payload);
    liar.size = 0;
    let mut short = f.file(b"short", b"only ten b");
    short.size = 5000;

    let good = f.file(b"good", b"fine\n");
    let inner = f.file(b"inner", b"also fine\n");
    let sub = f.tree(&[inner.clone(), liar, short]);
    // "link" as a symlink out of the folder and as a directory: the directory's file would
    // be written through the symlink.
    let outside = f.file(b"pwned", b"through the link\n");
    let through = f.tree(&[outside]);
    let link_dir = f.dir(b"link", through);
    let link = f.symlink(b"link", b"/tmp/cairn-hostile-outside");

    let mut bad = Vec::new();
    for name in [
        &b".."[..],
        b".",
        b"",
        b"a/b",
        b"/etc/x",
        b"../../up",
        b"nul\0byte",
    ] {
        bad.push(f.file(name, b"must not be archived\n"));
    }
    let bad_dir = f.dir(b"..", sub);
    let mut deep_bad = Vec::new();
    for name in [&b".."[..], b"x/../../y"] {
        deep_bad.push(f.file(name, b"nested bad\n"));
    }
    deep_bad.push(inner);
    let deep = f.tree(&deep_bad);
    let deep_dir = f.dir(b"deeper", deep);
    let sub2 = f.tree(&[deep_dir]);
    let sub_dir = f.dir(b"sub", sub2);
    let liar_dir = f.dir(b"files", sub);

    let mut nodes = vec![good];
    nodes.extend(bad);
    nodes.extend([bad_dir, link, link_dir, sub_dir, liar_dir]);
    let root = f.tree(&nodes);
    let snap = f.snapshot(root).to_hex();
    let expected = vec![
        "good",
        "link",
        "sub/",
        "sub/deeper/",
        "sub/deeper/inner",
        "files/",
        "files/inner",
    ];
    let reported = vec![
        "\"..\"",
        "\".\"",
        "\"\"",
        "\"a/b\"",
        "\"/etc/x\"",
        "\"../../up\"",
        "\"nul\\0byte\"",
        "\"link\"",
        "\"sub/deeper/..\"",
        "\"sub/deeper/x/../../y\"",
        "\"files/liar\"",
        "\"files/short\"",
    ];
    (snap, expected, reported)
}

/// Extracts `archive` (tar or zip) with Python into `dest`, trusting it fully (no filter),
/// and prints the member names, one per line.
fn python_extract(archive: &Path, dest: &Path, zip: bool) -> Vec<String> {
    let script = if zip {
        "import sys, zipfile\n\
         z = zipfile.ZipFile(sys.argv[1])\n\
         names = z.namelist()\n\
         z.extractall(sys.argv[2])\n\
         print('\\n'.join(names))\n"
    } else {
        "import sys, tarfile\n\
         t = tarfile.open(sys.argv[1])\n\
         names = t.getnames()\n\
         try:\n    t.extractall(sys.argv[2], filter='fully_trusted')\n\
         except TypeError:\n    t.extractall(sys.argv[2])\n\
         print('\\n'.join(names))\n"
    };
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(archive)
        .arg(dest)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python extraction failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn dump_leaves_out_unsafe_entries_and_writes_exact_members() {
    let tmp = TempDir::new("cairn-hostile-dump");
    let repo = new_repo(&tmp, "repo", PW);
    let mut f = Forger::open(&repo, PW);
    let (snap, expected, reported) = forge_unsafe_dump(&mut f);
    drop(f);
    let outside = Path::new("/tmp/cairn-hostile-outside");
    let _ = std::fs::remove_dir_all(outside);
    std::fs::create_dir_all(outside).expect("outside dir");

    for (format, zip) in [("tar", false), ("zip", true)] {
        let archive = tmp.join(format!("dump.{format}"));
        let r = run_limited(
            &tmp,
            &repo,
            &["dump", "--archive", format, &snap, "/"],
            Some(&archive),
            Duration::from_secs(60),
        );
        r.expect(3, "left out of the archive");
        let short = &snap[..8];
        for p in &reported {
            let line = r
                .stderr
                .lines()
                .find(|l| l.contains(&format!("{p} in snapshot {short}")));
            assert!(line.is_some(), "{format}: {p} not reported:\n{}", r.stderr);
        }
        // Extract into a folder of its own inside a sandbox: nothing may appear beside it.
        let sandbox = tmp.join(format!("sandbox-{format}"));
        let dest = sandbox.join("x");
        std::fs::create_dir_all(&dest).expect("dest");
        let mut names = python_extract(&archive, &dest, zip);
        names.sort();
        let mut want: Vec<String> = expected
            .iter()
            .map(|n| {
                let n = n.to_string();
                if zip {
                    n
                } else {
                    n.trim_end_matches('/').to_string()
                }
            })
            .collect();
        want.sort();
        assert_eq!(names, want, "{format}: archive members");
        assert_eq!(
            relative_paths(&sandbox).first().map(String::as_str),
            Some("x")
        );
        assert!(
            relative_paths(&sandbox).iter().all(|p| p.starts_with('x')),
            "{format}: written outside the extraction folder: {:?}",
            relative_paths(&sandbox)
        );
        assert!(
            relative_paths(outside).is_empty(),
            "{format}: written through the symlink: {:?}",
            relative_paths(outside)
        );
        assert!(!tmp.join("smuggled").exists() && !sandbox.join("smuggled").exists());
        // The members that are there have their own content, in full.
        assert_eq!(
            std::fs::read(dest.join("files/inner")).expect("files/inner"),
            b"also fine\n"
        );
        assert_eq!(std::fs::read(dest.join("good")).expect("good"), b"fine\n");
    }
    let _ = std::fs::remove_dir_all(outside);
}
