//! `cairn mount` on a real FUSE mount: the mounted snapshot against its source (names, types,
//! sizes, modes, times, links, xattrs, contents), restic's layout, concurrent readers, a
//! backup appearing while mounted, SIGTERM, and refused mount points.

mod common;

use common::*;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PW: &str = "mount-test-password";

fn fuse_usable() -> bool {
    Path::new("/dev/fuse").exists()
        // SAFETY: geteuid cannot fail.
        && (unsafe { libc::geteuid() } == 0
            || cairn_testsupport::tool_works("fusermount3", "-V")
            || cairn_testsupport::tool_works("fusermount", "-V"))
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid C strings and a buffer of the given length.
    let r = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "setxattr {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

/// Every kind of entry the mount must show.
fn build_source(src: &Path) {
    let w = |rel: &str, data: &[u8]| std::fs::write(src.join(rel), data).unwrap();
    std::fs::create_dir_all(src.join("a/b/c")).unwrap();
    std::fs::create_dir_all(src.join("empty-dir")).unwrap();
    // Several chunks (restic's chunker cuts 512 KiB – 8 MiB pieces, ~1 MiB on average).
    w("big.bin", &noise(11, 6 << 20));
    w("empty", b"");
    w("small.txt", b"hello from the mount test\n");
    w("a/b/c/deep.txt", b"deep\n");
    w("a/b/mid.bin", &noise(12, 300_000));
    std::os::unix::fs::symlink("a/b/c/deep.txt", src.join("link")).unwrap();
    std::os::unix::fs::symlink("/does/not/exist", src.join("dangling")).unwrap();
    std::os::unix::fs::symlink(OsStr::from_bytes(b"target-\xff\xfe"), src.join("odd-link"))
        .unwrap();
    w("hl1", b"one inode, two names\n");
    std::fs::hard_link(src.join("hl1"), src.join("a/hl2")).unwrap();
    let fifo = std::ffi::CString::new(src.join("pipe").as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o640) }, 0);
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(src.join("sparse.bin")).unwrap();
        f.set_len(3 << 20).unwrap();
        f.seek(SeekFrom::Start(1 << 20)).unwrap();
        f.write_all(&[7u8; 4096]).unwrap();
    }
    set_xattr(&src.join("small.txt"), "user.cairn.test", b"value one");
    set_xattr(&src.join("a"), "user.dir", b"on a directory");
    w("ünïcödé name.txt", b"utf-8\n");
    std::fs::write(
        src.join(OsStr::from_bytes(b"bad-\xff\xfe-name")),
        b"not utf-8\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        src.join("small.txt"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::fs::set_permissions(src.join("a/b"), std::fs::Permissions::from_mode(0o2750)).unwrap();
}

/// A running `cairn mount`; unmounts (by SIGTERM, then umount) when dropped.
struct Mounted {
    child: Option<Child>,
    mnt: PathBuf,
    log: PathBuf,
}

impl Mounted {
    fn start(repo: &Path, mnt: &Path, log: &Path, extra: &[&str]) -> Mounted {
        let mut c = Command::new(cairn_bin());
        c.arg("-r").arg(repo).arg("mount").args(extra).arg(mnt);
        c.env("RESTIC_PASSWORD", PW)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap());
        let child = c.spawn().expect("start cairn mount");
        let m = Mounted {
            child: Some(child),
            mnt: mnt.to_path_buf(),
            log: log.to_path_buf(),
        };
        m.wait_mounted();
        m
    }

    fn wait_mounted(&self) {
        let t = Instant::now();
        while !is_mounted(&self.mnt) {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "not mounted after 30 s; log: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and returns the exit code.
    fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s.code();
            }
            if t.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!(
                    "cairn mount did not exit within 20 s of SIGTERM; log: {}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            std::thread::sleep(Duration::from_millis(500));
            let _ = c.kill();
            let _ = c.wait();
        }
        if is_mounted(&self.mnt) {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
    }
}

fn is_mounted(mnt: &Path) -> bool {
    let canon = std::fs::canonicalize(mnt).unwrap_or_else(|_| mnt.to_path_buf());
    let mounts = std::fs::read("/proc/self/mounts").unwrap_or_default();
    let want = canon.as_os_str().as_bytes();
    mounts
        .split(|b| *b == b'\n')
        .any(|l| l.split(|b| *b == b' ').nth(1) == Some(want))
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn link(p: &Path) -> String {
    std::fs::read_link(p)
        .unwrap_or_else(|e| panic!("readlink {}: {e}", p.display()))
        .to_string_lossy()
        .into_owned()
}

/// `restic snapshots --json` time → the name restic's default template gives it.
fn time_name(snap: &serde_json::Value) -> String {
    let t = snap["time"].as_str().unwrap();
    let t = chrono::DateTime::parse_from_rfc3339(t).unwrap();
    if t.offset().local_minus_utc() == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

struct Setup {
    t: TempDir,
    repo: PathBuf,
    src: PathBuf,
    cairn: Tool,
}

fn setup(name: &str) -> Option<Setup> {
    if !fuse_usable() {
        return cairn_testsupport::missing("FUSE (/dev/fuse, and root or fusermount)");
    }
    let t = TempDir::new(name);
    let repo = t.join("repo");
    let src = t.join("src");
    std::fs::create_dir_all(&src).unwrap();
    build_source(&src);
    let cairn = Tool::cairn(&repo, PW);
    cairn.run(&["init"]).ok();
    cairn
        .run(&[
            "backup",
            src.to_str().unwrap(),
            "--host",
            "mounthost",
            "--tag",
            "one,two",
        ])
        .ok();
    Some(Setup {
        t,
        repo,
        src,
        cairn,
    })
}

#[test]
fn mounted_snapshot_matches_its_source_and_restics_layout() {
    let Some(s) = setup("mount-content") else {
        return;
    };
    let mnt = s.t.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mut m = Mounted::start(&s.repo, &mnt, &s.t.join("mount.log"), &[]);
    let snaps = s.cairn.snapshots_json();
    let short = snaps[0]["short_id"].as_str().unwrap().to_string();
    let tname = time_name(&snaps[0]);

    // restic's layout.
    assert_eq!(names(&mnt), ["hosts", "ids", "snapshots", "tags"]);
    assert_eq!(names(&mnt.join("ids")), std::slice::from_ref(&short));
    assert_eq!(
        names(&mnt.join("snapshots")),
        [tname.clone(), "latest".into()]
    );
    assert_eq!(link(&mnt.join("snapshots/latest")), tname);
    assert_eq!(names(&mnt.join("hosts")), ["mounthost"]);
    assert_eq!(
        names(&mnt.join("hosts/mounthost")),
        [tname.clone(), "latest".into()]
    );
    assert_eq!(link(&mnt.join("hosts/mounthost/latest")), tname);
    assert_eq!(names(&mnt.join("tags")), ["one", "two"]);
    assert_eq!(link(&mnt.join("tags/two/latest")), tname);
    assert!(!mnt.join("ids/latest").exists(), "ids/ has no latest link");

    // The snapshot's copy of the source, compared in full (hard-link structure included).
    let rel = s.src.strip_prefix("/").unwrap();
    let mounted = mnt.join("ids").join(&short).join(rel);
    let a = scan_tree(&s.src);
    let b = scan_tree(&mounted);
    assert!(b.xattrs_read == a.xattrs_read);
    let diffs = compare_trees(&a, &b, CompareOptions::default());
    assert!(diffs.is_empty(), "mounted snapshot differs: {diffs:#?}");
    if !a.xattrs_read {
        loud("getfattr missing: xattrs compared only through the direct check below");
    }
    let mut buf = vec![0u8; 64];
    let p = std::ffi::CString::new(mounted.join("small.txt").as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new("user.cairn.test").unwrap();
    // SAFETY: valid C strings and buffer.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(len, 9, "getxattr: {}", std::io::Error::last_os_error());
    assert_eq!(&buf[..9], b"value one");

    // Through the latest links too, and what a stat shows beyond compare_trees.
    use std::os::unix::fs::MetadataExt;
    let via_latest = mnt.join("snapshots/latest").join(rel);
    let (m1, m2) = (
        std::fs::symlink_metadata(via_latest.join("hl1")).unwrap(),
        std::fs::symlink_metadata(via_latest.join("a/hl2")).unwrap(),
    );
    assert_eq!(m1.ino(), m2.ino(), "hard links share one inode");
    assert_eq!(m1.nlink(), 2);
    let big = std::fs::symlink_metadata(s.src.join("big.bin")).unwrap();
    let mbig = std::fs::symlink_metadata(via_latest.join("big.bin")).unwrap();
    assert_eq!(
        (mbig.size(), mbig.mtime(), mbig.mtime_nsec()),
        (big.size(), big.mtime(), big.mtime_nsec())
    );
    assert_eq!(
        std::fs::read(via_latest.join("sparse.bin")).unwrap(),
        std::fs::read(s.src.join("sparse.bin")).unwrap()
    );

    // Inode numbers are stable and distinct.
    let again = std::fs::symlink_metadata(mounted.join("a/b/c/deep.txt"))
        .unwrap()
        .ino();
    assert_eq!(
        again,
        std::fs::symlink_metadata(mounted.join("a/b/c/deep.txt"))
            .unwrap()
            .ino()
    );
    let mut inos = std::collections::BTreeMap::new();
    for (p, e) in &b.entries {
        if e.nlink <= 1 || e.kind == Kind::Dir {
            assert!(
                inos.insert(e.dev_ino.1, p.clone()).is_none(),
                "inode {} given twice",
                e.dev_ino.1
            );
        }
    }

    assert_eq!(m.terminate(), Some(0), "log: {}", m.log());
}

#[test]
fn concurrent_readers_get_the_right_bytes() {
    let Some(s) = setup("mount-concurrent") else {
        return;
    };
    let mnt = s.t.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mut m = Mounted::start(
        &s.repo,
        &mnt,
        &s.t.join("mount.log"),
        &["--blob-cache", "2M"],
    );
    let root = mnt
        .join("snapshots/latest")
        .join(s.src.strip_prefix("/").unwrap());
    let files = [
        "big.bin",
        "big.bin",
        "big.bin",
        "a/b/mid.bin",
        "sparse.bin",
        "small.txt",
    ];
    std::thread::scope(|sc| {
        for (k, f) in files.iter().enumerate() {
            let (root, src) = (&root, &s.src);
            sc.spawn(move || {
                use std::io::{Read, Seek, SeekFrom};
                let want = std::fs::read(src.join(f)).unwrap();
                for round in 0..3 {
                    let mut fh = std::fs::File::open(root.join(f)).unwrap();
                    let mut got = Vec::new();
                    if (k + round) % 2 == 0 {
                        fh.read_to_end(&mut got).unwrap();
                    } else {
                        // Backwards in odd-sized pieces: no read-ahead to lean on.
                        got = vec![0u8; want.len()];
                        let piece = 77_777usize;
                        let mut end = want.len();
                        while end > 0 {
                            let start = end.saturating_sub(piece);
                            fh.seek(SeekFrom::Start(start as u64)).unwrap();
                            fh.read_exact(&mut got[start..end]).unwrap();
                            end = start;
                        }
                    }
                    assert!(got == want, "{f}: content differs (round {round})");
                }
            });
        }
    });
    assert_eq!(m.terminate(), Some(0), "log: {}", m.log());
}

#[test]
fn backup_while_mounted_appears_and_sigterm_releases_everything() {
    let Some(s) = setup("mount-live") else {
        return;
    };
    let mnt = s.t.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mut m = Mounted::start(&s.repo, &mnt, &s.t.join("mount.log"), &["--tag", "one"]);
    assert_eq!(names(&mnt.join("ids")).len(), 1);
    // Seen (and so cached by the kernel) before it has to change.
    let first_latest = link(&mnt.join("snapshots/latest"));
    assert_eq!(
        names(&mnt.join("snapshots")),
        [first_latest.clone(), "latest".into()]
    );
    // Two more with the same time: restic names the second "<time>-1".
    std::fs::write(s.src.join("new-file"), b"added while mounted\n").unwrap();
    let t = "2031-02-03 04:05:06";
    s.cairn
        .run(&[
            "backup",
            s.src.to_str().unwrap(),
            "--tag",
            "one",
            "--time",
            t,
        ])
        .ok();
    std::fs::write(s.src.join("new-file"), b"added again\n").unwrap();
    s.cairn
        .run(&[
            "backup",
            s.src.to_str().unwrap(),
            "--tag",
            "one",
            "--time",
            t,
        ])
        .ok();
    // Filtered out: no tag "one".
    s.cairn
        .run(&["backup", s.src.to_str().unwrap(), "--tag", "other"])
        .ok();
    let snaps = s.cairn.snapshots_json();
    let tname = time_name(
        snaps
            .iter()
            .find(|j| j["time"].as_str().unwrap().starts_with("2031"))
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while names(&mnt.join("ids")).len() < 3 {
        assert!(
            Instant::now() < deadline,
            "new snapshots did not appear: {:?}",
            names(&mnt.join("ids"))
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        names(&mnt.join("ids")).len(),
        3,
        "the snapshot without tag one is filtered out"
    );
    // The link first, without listing its directory again: a lookup must see the new one
    // once the kernel's cached entry (the layout's one-second TTL) has expired.
    let deadline = Instant::now() + Duration::from_secs(5);
    while link(&mnt.join("snapshots/latest")) != format!("{tname}-1") {
        assert!(
            Instant::now() < deadline,
            "latest still names {}",
            link(&mnt.join("snapshots/latest"))
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let listed = names(&mnt.join("snapshots"));
    assert!(
        listed.contains(&tname) && listed.contains(&format!("{tname}-1")),
        "{listed:?}"
    );
    // The later of the two by id gets "-1" and the latest link, as in restic.
    let mut same: Vec<String> = snaps
        .iter()
        .filter(|j| j["time"].as_str().unwrap().starts_with("2031"))
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    same.sort();
    assert_eq!(link(&mnt.join("snapshots/latest")), format!("{tname}-1"));
    let rel = s.src.strip_prefix("/").unwrap();
    // Which of the two holds which content is up to their ids; both must be readable (their
    // blobs are in index files written after the mount loaded its index).
    let read = |short: &str| {
        std::fs::read(mnt.join("ids").join(short).join(rel).join("new-file")).unwrap()
    };
    let mut both = [read(&same[0][..8]), read(&same[1][..8])];
    let latest = std::fs::read(mnt.join("snapshots/latest").join(rel).join("new-file")).unwrap();
    assert_eq!(latest, both[1], "latest is the snapshot with the larger id");
    both.sort();
    assert_eq!(
        both,
        [b"added again\n".to_vec(), b"added while mounted\n".to_vec()]
    );
    let locks = s.cairn.run(&["list", "locks"]).ok().stdout_str();
    assert_eq!(
        locks.lines().count(),
        1,
        "one shared lock while mounted: {locks}"
    );

    // SIGTERM: unmounted, lock gone, exit 0.
    assert_eq!(m.terminate(), Some(0), "log: {}", m.log());
    assert!(!is_mounted(&mnt), "still mounted after SIGTERM");
    let locks = s.cairn.run(&["list", "locks"]).ok().stdout_str();
    assert!(locks.trim().is_empty(), "locks left: {locks}");
}

#[test]
fn refuses_bad_mount_points() {
    let Some(s) = setup("mount-refuse") else {
        return;
    };
    let full = s.t.join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("x"), b"x").unwrap();
    let r = s
        .cairn
        .run(&["mount", full.to_str().unwrap()])
        .expect_code(1);
    let err = r.stderr_str();
    assert!(
        err.contains("is not empty") && err.trim().lines().count() == 1,
        "{err}"
    );
    let inside = s.repo.join("mnt-inside");
    std::fs::create_dir(&inside).unwrap();
    let err = s
        .cairn
        .run(&["mount", inside.to_str().unwrap()])
        .expect_code(1)
        .stderr_str();
    assert!(err.contains("local repository"), "{err}");
    let err = s
        .cairn
        .run(&["mount", s.t.join("nope").to_str().unwrap()])
        .expect_code(1)
        .stderr_str();
    assert!(err.contains("does not exist"), "{err}");
    assert!(s
        .cairn
        .run(&["list", "locks"])
        .ok()
        .stdout_str()
        .trim()
        .is_empty());
}

/// restic 0.14 mounts the same repository: the top-level layout must be the same.
#[test]
fn layout_matches_restic_mount() {
    let Some(s) = setup("mount-restic") else {
        return;
    };
    if !restic_available() {
        cairn_testsupport::missing::<()>("restic");
        return;
    }
    // restic 0.14 runs `fusermount`; where only fuse3's fusermount3 exists, a link in a
    // directory put first on restic's PATH stands in for it (nothing outside the test changes).
    let bin = s.t.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let have_fm = cairn_testsupport::tool_works("fusermount", "-V");
    if !have_fm {
        if !cairn_testsupport::tool_works("fusermount3", "-V") {
            cairn_testsupport::missing::<()>("fusermount (restic 0.14 mounts through it)");
            return;
        }
        std::os::unix::fs::symlink("/usr/bin/fusermount3", bin.join("fusermount")).unwrap();
    }
    s.cairn
        .run(&[
            "backup",
            s.src.to_str().unwrap(),
            "--host",
            "other",
            "--tag",
            "a",
        ])
        .ok();
    s.cairn
        .run(&[
            "backup",
            s.src.to_str().unwrap(),
            "--time",
            "2030-01-01 00:00:00",
        ])
        .ok();
    s.cairn
        .run(&[
            "backup",
            s.src.to_str().unwrap(),
            "--time",
            "2030-01-01 00:00:00",
            "--tag",
            "x",
        ])
        .ok();
    let (cm, rm) = (s.t.join("cmnt"), s.t.join("rmnt"));
    std::fs::create_dir(&cm).unwrap();
    std::fs::create_dir(&rm).unwrap();
    let _c = Mounted::start(&s.repo, &cm, &s.t.join("c.log"), &[]);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let rlog = s.t.join("r.log");
    let r = Command::new("restic")
        .args(["-r", s.repo.to_str().unwrap(), "--no-cache", "mount"])
        .arg(&rm)
        .env("RESTIC_PASSWORD", PW)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&rlog).unwrap())
        .spawn()
        .expect("start restic mount");
    let mut restic = Mounted {
        child: Some(r),
        mnt: rm.clone(),
        log: rlog,
    };
    restic.wait_mounted();
    // restic serves its first listing only once it has loaded the snapshots.
    let deadline = Instant::now() + Duration::from_secs(20);
    while names(&rm).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut dirs: Vec<String> = ["", "ids", "snapshots", "hosts", "tags"]
        .map(String::from)
        .to_vec();
    for top in ["hosts", "tags"] {
        for n in names(&cm.join(top)) {
            dirs.push(format!("{top}/{n}"));
        }
    }
    let mut compared = 0;
    for rel in &dirs {
        let (c, r) = (cm.join(rel), rm.join(rel));
        let cn = names(&c);
        assert_eq!(cn, names(&r), "listing of /{rel} differs");
        for n in cn {
            let (cp, rp) = (c.join(&n), r.join(&n));
            let cl = std::fs::symlink_metadata(&cp)
                .unwrap()
                .file_type()
                .is_symlink();
            let rl = std::fs::symlink_metadata(&rp)
                .unwrap()
                .file_type()
                .is_symlink();
            assert_eq!(cl, rl, "/{rel}/{n}: symlink on one side only");
            if cl {
                assert_eq!(link(&cp), link(&rp), "/{rel}/{n}");
            }
        }
        compared += 1;
    }
    assert!(compared >= 3);
    restic.terminate();
}

/// A forged tree (names that are not file names, a repeated name, unsorted entries, a file
/// whose blob is not in the index, one that claims more bytes than it has) is served without
/// breaking: bad names left out with a warning, the missing blob an EIO, the rest readable.
#[test]
fn forged_trees_do_not_break_the_mount() {
    use cairn_core::format::tree::NodeType;
    use cairn_testsupport::hostile::{self, Forger};
    if !fuse_usable() {
        cairn_testsupport::missing::<()>("FUSE (/dev/fuse, and root or fusermount)");
        return;
    }
    let t = TempDir::new("mount-forged");
    let repo = t.join("repo");
    Tool::cairn(&repo, PW).run(&["init"]).ok();
    let mut f = Forger::open(&repo, PW);
    let ok = f.file(b"ok", b"fine\n");
    let mut nodes = vec![ok];
    for bad in [&b"a/b"[..], b"..", b".", b"", b"nul\0x"] {
        nodes.push(f.file(bad, b"should not be seen\n"));
    }
    nodes.push(f.file(b"dup", b"first\n"));
    nodes.push(f.file(b"dup", b"second\n"));
    nodes.push(f.file(b"aaa-unsorted", b"unsorted\n"));
    let mut lost = hostile::node(b"lost-blob", NodeType::File);
    lost.content = Some(vec![cairn_core::Id::hash(b"never stored")]);
    lost.size = 12;
    nodes.push(lost);
    let mut long = f.file(b"longer-than-content", b"short\n");
    long.size = 1 << 40;
    nodes.push(long);
    let root = f.tree(&nodes);
    let id = f.snapshot(root).to_hex();
    drop(f);
    let mnt = t.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mut m = Mounted::start(&repo, &mnt, &t.join("mount.log"), &[]);
    let dir = mnt.join("ids").join(&id[..8]);
    assert_eq!(
        names(&dir),
        [
            "aaa-unsorted",
            "dup",
            "longer-than-content",
            "lost-blob",
            "ok"
        ]
    );
    assert_eq!(std::fs::read(dir.join("ok")).unwrap(), b"fine\n");
    assert_eq!(
        std::fs::read(dir.join("aaa-unsorted")).unwrap(),
        b"unsorted\n"
    );
    assert_eq!(std::fs::read(dir.join("dup")).unwrap(), b"first\n");
    let e = std::fs::read(dir.join("lost-blob")).expect_err("a missing blob is an error");
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    // What the blobs hold, then the end: no 1 TiB of zeros.
    let mut buf = vec![0u8; 4096];
    use std::io::Read;
    let n = std::fs::File::open(dir.join("longer-than-content"))
        .unwrap()
        .read(&mut buf)
        .unwrap();
    assert_eq!(&buf[..n], b"short\n");
    assert!(is_mounted(&mnt), "still serving after the errors");
    let log = m.log();
    assert!(
        log.contains("left out") && log.contains("repeated name"),
        "{log}"
    );
    assert!(log.contains("not in the index"), "{log}");
    assert_eq!(m.terminate(), Some(0), "log: {}", m.log());
}
