//! Restores of forged snapshots (correctly encrypted, written with the master key as an
//! attacker who can write to the repository could) and restores onto targets that already
//! hold planted links and fifos. For each: nothing outside the target changes, the restore
//! ends in bounded time and memory, and what is left out is reported with exit code 3.

mod common;

use cairn_core::format::tree::NodeType;
use cairn_testsupport::hostile::{self, Forger};
use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const PW: &str = "hostile-test";

struct Setup {
    _tmp: TempDir,
    repo: PathBuf,
    /// A directory outside every restore target, which must never change.
    outside: PathBuf,
    target: PathBuf,
    tmp_root: PathBuf,
}

fn setup() -> Setup {
    let tmp = TempDir::new("hostile-restore");
    let repo = tmp.join("repo");
    Tool::cairn(&repo, PW).run(&["init"]).ok();
    let outside = tmp.join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o750)).unwrap();
    std::fs::write(outside.join("victim"), b"precious").unwrap();
    let target = tmp.join("target");
    Setup {
        repo,
        outside,
        target,
        tmp_root: tmp.path().to_path_buf(),
        _tmp: tmp,
    }
}

/// Runs cairn with a memory limit and a deadline; a run past the deadline is killed and
/// fails the test.
fn cairn_bounded(repo: &Path, args: &[&str], secs: u64) -> Run {
    cairn_bounded_as(repo, args, secs, None)
}

fn cairn_bounded_as(repo: &Path, args: &[&str], secs: u64, uid: Option<u32>) -> Run {
    let mut all = vec!["--no-cache"];
    all.extend_from_slice(args);
    let user = uid.map(|u| [format!("--reuid={u}"), format!("--regid={u}")]);
    let wrap: Vec<&str> = match &user {
        Some([u, g]) => vec!["setpriv", u, g, "--clear-groups"],
        None => vec![],
    };
    cairn_limited(repo, PW, &[], &wrap, &all, 2 << 30, secs)
}

fn restore(s: &Setup, snap: &str, extra: &[&str]) -> Run {
    let t = s.target.to_string_lossy().into_owned();
    let mut args = vec!["restore", snap, "--target", &t];
    args.extend_from_slice(extra);
    cairn_bounded(&s.repo, &args, 120)
}

#[test]
fn symlink_from_an_earlier_restore_is_not_followed() {
    let s = setup();
    let before = detailed_listing(&s.outside);
    let mut f = Forger::open(&s.repo, PW);
    // Snapshot A: `link` and `d/link` are symlinks to the outside directory, `f` to the victim.
    let out = s.outside.as_os_str().as_encoded_bytes().to_vec();
    let victim = s
        .outside
        .join("victim")
        .as_os_str()
        .as_encoded_bytes()
        .to_vec();
    let l1 = f.symlink(b"link", &out);
    let l2 = f.symlink(b"link", &out);
    let inner = f.tree(&[l2]);
    let d = f.dir(b"d", inner);
    let lf = f.symlink(b"victim", &victim);
    let a_root = f.tree(&[d, l1, lf]);
    let a = f.snapshot(a_root);
    // Snapshot B: real directories (mode 0777) with files where A had the links.
    let file_b = f.file(b"planted", b"evil");
    let deep_dir_tree = vec![file_b.clone()];
    let sub = f.tree(&deep_dir_tree);
    let mut link_dir = f.dir(b"link", sub);
    link_dir.mode = 0o777 | (1 << 31);
    let inner_b = f.tree(&[link_dir.clone()]);
    let d_b = f.dir(b"d", inner_b);
    let victim_b = f.file(b"victim", b"overwritten");
    let b_root = f.tree(&[d_b, link_dir, victim_b]);
    let b = f.snapshot(b_root);

    restore(&s, &a.to_hex(), &[]).expect_code(0);
    assert!(std::fs::symlink_metadata(s.target.join("link"))
        .unwrap()
        .file_type()
        .is_symlink());
    let r = restore(&s, &b.to_hex(), &["--verify"]);
    r.expect_code(0);
    assert_eq!(
        detailed_listing(&s.outside),
        before,
        "the outside directory changed"
    );
    for p in ["link", "d/link"] {
        let m = std::fs::symlink_metadata(s.target.join(p)).unwrap();
        assert!(m.is_dir(), "{p} should now be a real directory");
        assert_eq!(
            std::fs::read(s.target.join(p).join("planted")).unwrap(),
            b"evil"
        );
    }
    let m = std::fs::symlink_metadata(s.target.join("victim")).unwrap();
    assert!(m.is_file());
    assert_eq!(
        std::fs::read(s.target.join("victim")).unwrap(),
        b"overwritten"
    );
}

#[test]
fn hard_link_and_fifo_in_the_target_are_replaced_not_written_through() {
    let s = setup();
    std::fs::create_dir(&s.target).unwrap();
    // A hard link to a file outside, and a fifo nobody reads, where files will be restored.
    std::fs::hard_link(s.outside.join("victim"), s.target.join("h")).unwrap();
    let fifo = std::ffi::CString::new(s.target.join("p").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let before = detailed_listing(&s.outside);
    let mut f = Forger::open(&s.repo, PW);
    let h = f.file(b"h", b"new content");
    let p = f.file(b"p", b"not a fifo");
    let root = f.tree(&[h, p]);
    let snap = f.snapshot(root);
    restore(&s, &snap.to_hex(), &["--verify"]).expect_code(0);
    assert_eq!(
        detailed_listing(&s.outside),
        before,
        "the outside directory changed"
    );
    assert_eq!(std::fs::read(s.target.join("h")).unwrap(), b"new content");
    assert_eq!(std::fs::read(s.target.join("p")).unwrap(), b"not a fifo");
    assert_eq!(std::fs::metadata(s.target.join("h")).unwrap().nlink(), 1);
}

#[test]
fn repeated_names_restore_the_first_and_report_the_rest() {
    let s = setup();
    let before = detailed_listing(&s.outside);
    let victim = s
        .outside
        .join("victim")
        .as_os_str()
        .as_encoded_bytes()
        .to_vec();
    let mut f = Forger::open(&s.repo, PW);
    // symlink + file under one name; fifo + file (restore --verify would hang on the fifo);
    // a hard-linked pair whose first name is also a symlink to the victim.
    let sym = f.symlink(b"a", &victim);
    let fa = f.file(b"a", b"through the link?");
    let fifo = hostile::node(b"b", NodeType::Fifo);
    let fb = f.file(b"b", b"file b");
    let sym2 = f.symlink(b"c", &victim);
    let mut hl1 = f.file(b"c", b"hard linked");
    hl1.links = 2;
    hl1.inode = 77;
    let mut hl2 = f.file(b"d", b"hard linked");
    hl2.links = 2;
    hl2.inode = 77;
    let root = f.tree(&[sym, fa, fifo, fb, sym2, hl1, hl2]);
    let snap = f.snapshot(root);
    let r = restore(&s, &snap.to_hex(), &["--verify"]);
    let r = r.expect_code(3);
    let err = r.stderr_str();
    for name in ["\"a\"", "\"b\"", "\"c\""] {
        assert!(
            err.lines()
                .any(|l| l.contains(name) && l.contains("second entry")),
            "no warning for the repeated {name}: {err}"
        );
    }
    assert_eq!(
        detailed_listing(&s.outside),
        before,
        "the outside directory changed"
    );
    // The first of each name was restored.
    assert!(std::fs::symlink_metadata(s.target.join("a"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::symlink_metadata(s.target.join("c"))
        .unwrap()
        .file_type()
        .is_symlink());
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(s.target.join("b"))
        .unwrap()
        .file_type()
        .is_fifo());
    // `d` is the hard link's other name: it gets the content, not a link through `c`.
    assert_eq!(std::fs::read(s.target.join("d")).unwrap(), b"hard linked");
}

#[test]
fn unsafe_names_are_left_out_with_a_warning() {
    let s = setup();
    let before = detailed_listing(&s.tmp_root.join("outside"));
    let mut f = Forger::open(&s.repo, PW);
    let names: [&[u8]; 5] = [b"..", b".", b"", b"x/../../outside/victim", b"/abs"];
    let mut nodes: Vec<_> = names.iter().map(|n| f.file(n, b"escape")).collect();
    let inner = f_file(&mut f);
    let sub = f.tree(&[inner]);
    nodes.push(f.dir(b"..", sub));
    nodes.push(f.file(b"ok", b"fine"));
    let root = f.tree(&nodes);
    let snap = f.snapshot(root);
    let r = restore(&s, &snap.to_hex(), &[]);
    let r = r.expect_code(3);
    assert_eq!(
        r.stderr_str()
            .lines()
            .filter(|l| l.contains("unsafe name"))
            .count(),
        6,
        "every unsafe name is reported: {}",
        r.stderr_str()
    );
    assert_eq!(detailed_listing(&s.tmp_root.join("outside")), before);
    let names: Vec<_> = std::fs::read_dir(&s.target)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("ok")]);
    // Nothing was written beside the target either.
    let mut top: Vec<_> = std::fs::read_dir(&s.tmp_root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    top.sort();
    assert_eq!(
        top,
        ["outside", "repo", "target"].map(std::ffi::OsString::from)
    );
}

fn f_file(f: &mut Forger) -> cairn_core::format::tree::Node {
    f.file(b"inside-dotdot", b"escape")
}

#[test]
fn deep_chains_restore_past_path_max_or_stop_with_a_clear_error() {
    let s = setup();
    let mut f = Forger::open(&s.repo, PW);
    let leaf = f.file(b"leaf", b"bottom");
    // 3,000 levels: paths of 6,000 bytes, beyond PATH_MAX; restored one component at a time.
    let ok = hostile::deep_chain(&mut f, 3000, std::slice::from_ref(&leaf));
    let ok = f.snapshot(ok);
    // 20,000 levels: beyond the walker's depth limit (restic's restore overflows its stack
    // on a few thousand).
    let deep = hostile::deep_chain(&mut f, 20_000, &[leaf]);
    let deep = f.snapshot(deep);
    restore(&s, &ok.to_hex(), &[]).expect_code(0);
    // Follow the chain down with openat, as no path-based call can reach the leaf.
    let mut fd = std::fs::File::open(&s.target).unwrap();
    for _ in 0..3000 {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: valid descriptor and name.
        let n = unsafe {
            libc::openat(
                fd.as_raw_fd(),
                c"d".as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY,
            )
        };
        assert!(n >= 0, "chain broken");
        // SAFETY: fresh descriptor.
        fd = unsafe { std::fs::File::from_raw_fd(n) };
    }
    {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: as above.
        let n = unsafe { libc::openat(fd.as_raw_fd(), c"leaf".as_ptr(), libc::O_RDONLY) };
        assert!(n >= 0, "leaf missing");
        let mut leaf = unsafe { std::fs::File::from_raw_fd(n) };
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut leaf, &mut v).unwrap();
        assert_eq!(v, b"bottom");
    }
    let t2 = s.tmp_root.join("target2");
    let r = cairn_bounded(
        &s.repo,
        &["restore", &deep.to_hex(), "--target", &t2.to_string_lossy()],
        120,
    );
    let r = r.expect_code(1);
    assert!(
        r.stderr_str().contains("nested deeper than"),
        "{}",
        r.stderr_str()
    );
}

#[test]
fn dag_bomb_is_refused_in_bounded_time_and_memory() {
    let s = setup();
    let mut f = Forger::open(&s.repo, PW);
    let root = hostile::dag_bomb(&mut f, 40);
    let snap = f.snapshot(root);
    let r = restore(&s, &snap.to_hex(), &[]);
    let r = r.expect_code(1);
    assert!(r.stderr_str().contains("distinct"), "{}", r.stderr_str());
}

#[test]
fn devices_without_root_are_reported() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        loud("devices_without_root_are_reported needs root to switch to another user; skipped");
        return;
    }
    let s = setup();
    let mut f = Forger::open(&s.repo, PW);
    let mut dev = hostile::node(b"null", NodeType::Chardev);
    dev.device = libc::makedev(1, 3);
    dev.mode = 0o666 | (1 << 26) | (1 << 21);
    let ok = f.file(b"ok", b"fine");
    let root = f.tree(&[dev, ok]);
    let snap = f.snapshot(root);
    // The user `nobody` needs to read the repository and write the target.
    Command::new("chmod")
        .args(["-R", "a+rwX"])
        .arg(&s.tmp_root)
        .status()
        .unwrap();
    let t = s.target.to_string_lossy().into_owned();
    let r = cairn_bounded_as(
        &s.repo,
        &["restore", &snap.to_hex(), "--target", &t],
        60,
        Some(65534),
    );
    let r = r.expect_code(3);
    assert!(
        r.stderr_str().contains("only root can create"),
        "{}",
        r.stderr_str()
    );
    assert_eq!(std::fs::read(s.target.join("ok")).unwrap(), b"fine");
    assert!(!s.target.join("null").exists());
}
