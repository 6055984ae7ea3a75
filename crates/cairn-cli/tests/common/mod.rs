//! Helpers shared by cairn's integration tests: running cairn and restic, building test trees,
//! unpacking restic's fixtures, and comparing two directory trees in full (content and
//! metadata, with paths as raw bytes).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fmt;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

// ---------------------------------------------------------------------------------------------
// Locations and availability of the tools
// ---------------------------------------------------------------------------------------------

/// The cairn binary cargo built for this test run.
pub fn cairn_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cairn"))
}

/// `shared/` beside the project: `$CAIRN_SHARED`, else `CARGO_MANIFEST_DIR/../../../shared`.
pub fn shared_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CAIRN_SHARED") {
        if !d.is_empty() {
            return PathBuf::from(d);
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

pub fn fixtures_dir() -> PathBuf {
    shared_dir().join("fixtures/restic")
}

use cairn_testsupport::tool_works;

/// Is `restic` on PATH and runnable? Checked once per test process.
pub fn restic_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| tool_works("restic", "version"))
}

/// Is `getfattr` (package `attr`) available? Checked once per test process.
pub fn getfattr_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let ok = tool_works("getfattr", "--version");
        if !ok {
            loud(
                "NOTE: getfattr (package `attr`) is not installed: extended attributes are NOT \
                 compared in this run",
            );
        }
        ok
    })
}

/// Prints a framed message to the process's stderr, past the test harness's capture.
pub use cairn_testsupport::loud;

/// Returns from the calling test (after a loud message) when restic is not installed, or
/// fails it when `CAIRN_REQUIRE_RESTIC=1` says restic must be there (as in CI).
#[macro_export]
macro_rules! require_restic {
    () => {
        if !$crate::common::restic_available() {
            if std::env::var("CAIRN_REQUIRE_RESTIC").as_deref() == Ok("1") {
                panic!("restic is not installed (not on PATH), but CAIRN_REQUIRE_RESTIC=1");
            }
            // Straight to stderr: the test harness captures eprintln! of passing tests.
            $crate::common::loud(&format!(
                "SKIP: restic not installed: {} proves nothing (CAIRN_REQUIRE_RESTIC=1 makes this fail)",
                std::thread::current().name().unwrap_or("this test")
            ));
            return;
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Running programs
// ---------------------------------------------------------------------------------------------

/// Environment variables of restic (and so cairn) that must not leak from the caller's
/// environment into a test.
const SCRUB_ENV: &[&str] = &[
    "RESTIC_REPOSITORY",
    "RESTIC_REPOSITORY_FILE",
    "RESTIC_PASSWORD",
    "RESTIC_PASSWORD_FILE",
    "RESTIC_PASSWORD_COMMAND",
    "RESTIC_KEY_HINT",
    "RESTIC_COMPRESSION",
    "RESTIC_CACHE_DIR",
    "RESTIC_HOST",
    "RESTIC_READ_CONCURRENCY",
    "RESTIC_PACK_SIZE",
    "RESTIC_FROM_REPOSITORY",
    "RESTIC_FROM_PASSWORD",
];

/// A finished command: how it was called, its exit code and output.
pub struct Run {
    pub desc: String,
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Run {
    fn from_output(desc: String, out: Output) -> Run {
        Run {
            desc,
            code: out.status.code(),
            stdout: out.stdout,
            stderr: out.stderr,
        }
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Panics with the command and the tail of its output unless it exited 0.
    pub fn ok(self) -> Run {
        self.expect_code(0)
    }

    pub fn expect_code(self, code: i32) -> Run {
        if self.code != Some(code) {
            panic!(
                "{}\n  exited {:?}, expected {code}\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}",
                self.desc,
                self.code,
                tail(&self.stdout_str(), 4000),
                tail(&self.stderr_str(), 4000)
            );
        }
        self
    }

    /// stdout as JSON lines (lines that do not parse are skipped).
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect()
    }

    /// stdout as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: stdout is not JSON ({e}):\n{}",
                self.desc,
                tail(&self.stdout_str(), 4000)
            )
        })
    }

    /// The `"message_type":"summary"` line of a `backup --json` run.
    pub fn summary(&self) -> serde_json::Value {
        self.json_lines()
            .into_iter()
            .rev()
            .find(|v| v["message_type"] == "summary")
            .unwrap_or_else(|| {
                panic!(
                    "{}: no summary line in output:\n{}",
                    self.desc,
                    tail(&self.stdout_str(), 4000)
                )
            })
    }
}

fn tail(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut i = s.len() - n;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

/// Runs a command to completion with a scrubbed restic environment plus `env`.
pub fn run_cmd(prog: &OsStr, args: &[&OsStr], env: &[(&str, &OsStr)], cwd: Option<&Path>) -> Run {
    let mut c = Command::new(prog);
    c.args(args).stdin(Stdio::null());
    for k in SCRUB_ENV {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    let desc = format!(
        "`{} {}`{}",
        Path::new(prog).display(),
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        cwd.map(|d| format!(" (in {})", d.display()))
            .unwrap_or_default()
    );
    let start = Instant::now();
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("cannot run {desc}: {e}"));
    eprintln!(
        "[{:6.2}s] {desc} -> {:?}",
        start.elapsed().as_secs_f64(),
        out.status.code()
    );
    Run::from_output(desc, out)
}

/// A repository as seen by one program (cairn or restic), with its password.
#[derive(Clone)]
pub struct Tool {
    pub prog: PathBuf,
    pub repo: PathBuf,
    pub password: String,
    pub is_restic: bool,
    /// restic only: pass `--no-lock` (for read-only fixture repositories, as restic's tests do).
    pub no_lock: bool,
}

impl Tool {
    pub fn cairn(repo: &Path, password: &str) -> Tool {
        Tool {
            prog: cairn_bin(),
            repo: repo.to_path_buf(),
            password: password.to_string(),
            is_restic: false,
            no_lock: false,
        }
    }

    pub fn restic(repo: &Path, password: &str) -> Tool {
        Tool {
            prog: PathBuf::from("restic"),
            repo: repo.to_path_buf(),
            password: password.to_string(),
            is_restic: true,
            no_lock: false,
        }
    }

    /// restic 0.18 (Debian trixie's, see `.ci/trixie-tools`), or None after a loud skip
    /// message when it is not installed and not required.
    pub fn restic018(repo: &Path, password: &str) -> Option<Tool> {
        let prog = cairn_testsupport::restic_018()?;
        Some(Tool {
            prog,
            ..Tool::restic(repo, password)
        })
    }

    /// Runs `PROG -r REPO [--no-cache] ARGS...` in `cwd` (default: the test's own).
    pub fn run_in(&self, cwd: Option<&Path>, args: &[&str]) -> Run {
        self.run_env(cwd, &[], args)
    }

    /// Like `run_in`, with extra environment variables.
    pub fn run_env(&self, cwd: Option<&Path>, extra_env: &[(&str, &str)], args: &[&str]) -> Run {
        let mut all: Vec<&OsStr> = vec![OsStr::new("-r"), self.repo.as_os_str()];
        if self.is_restic {
            // Never touch a cache outside the test's temporary directories.
            all.push(OsStr::new("--no-cache"));
            if self.no_lock {
                all.push(OsStr::new("--no-lock"));
            }
        }
        all.extend(args.iter().map(OsStr::new));
        let mut env: Vec<(&str, &OsStr)> = vec![
            ("RESTIC_PASSWORD", OsStr::new(&self.password)),
            // Cheap scrypt parameters for keys cairn creates (tests only).
            ("CAIRN_TEST_KDF", OsStr::new("fast")),
        ];
        env.extend(extra_env.iter().map(|(k, v)| (*k, OsStr::new(v))));
        run_cmd(self.prog.as_os_str(), &all, &env, cwd)
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_in(None, args)
    }

    /// Starts `PROG -r REPO ARGS...` with a piped stdin and returns at once; the caller keeps
    /// the process waiting (on stdin) for as long as it needs, e.g. to hold a lock.
    pub fn spawn(&self, extra_env: &[(&str, &str)], args: &[&str]) -> std::process::Child {
        let mut c = Command::new(&self.prog);
        c.arg("-r").arg(&self.repo);
        if self.is_restic {
            c.arg("--no-cache");
        }
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for k in SCRUB_ENV {
            c.env_remove(k);
        }
        c.env("RESTIC_PASSWORD", &self.password)
            .env("CAIRN_TEST_KDF", "fast");
        for (k, v) in extra_env {
            c.env(k, v);
        }
        c.spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.prog.display()))
    }

    /// `snapshots --json`, as (id, tree) pairs sorted by id.
    pub fn snapshot_ids(&self) -> Vec<(String, String)> {
        let v = self.run(&["snapshots", "--json"]).ok().json();
        let mut out: Vec<(String, String)> = v
            .as_array()
            .unwrap_or_else(|| panic!("snapshots --json did not print an array: {v}"))
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().expect("snapshot without id").to_string(),
                    s["tree"]
                        .as_str()
                        .expect("snapshot without tree")
                        .to_string(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// `snapshots --json`, sorted by id.
    pub fn snapshots_json(&self) -> Vec<serde_json::Value> {
        let v = self.run(&["snapshots", "--json"]).ok().json();
        let mut out = v
            .as_array()
            .unwrap_or_else(|| panic!("snapshots --json did not print an array: {v}"))
            .clone();
        out.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        out
    }

    /// `ls --json SNAP`: the node lines, keyed by their "path" field. Panics on duplicate paths.
    /// The fields restic 0.18 added (`inode`, `message_type`) are left out, so that the lines
    /// compare with restic 0.14's; `tests/compat018.rs` compares whole lines with 0.18's.
    pub fn ls_nodes(&self, snap: &str) -> BTreeMap<String, serde_json::Value> {
        let r = self.run(&["ls", "--json", snap]).ok();
        let mut out = BTreeMap::new();
        for mut v in r.json_lines() {
            if v["struct_type"] != "node" {
                continue;
            }
            if let Some(o) = v.as_object_mut() {
                o.remove("inode");
                o.remove("message_type");
            }
            let p = v["path"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: node line without path: {v}", r.desc))
                .to_string();
            if let Some(old) = out.insert(p.clone(), v) {
                panic!("{}: path {p:?} listed twice (first: {old})", r.desc);
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Test trees and fixtures
// ---------------------------------------------------------------------------------------------

/// `make-corpus create DIR --size-mb MB --seed SEED`; DIR must not exist yet or be empty.
pub fn make_corpus(dir: &Path, size_mb: u32, seed: u32) {
    let script = shared_dir().join("corpus/make-corpus");
    assert!(
        script.exists(),
        "{} not found (set CAIRN_SHARED to the shared/ folder)",
        script.display()
    );
    let mb = size_mb.to_string();
    let sd = seed.to_string();
    run_cmd(
        OsStr::new("python3"),
        &[
            script.as_os_str(),
            OsStr::new("create"),
            dir.as_os_str(),
            OsStr::new("--size-mb"),
            OsStr::new(&mb),
            OsStr::new("--seed"),
            OsStr::new(&sd),
        ],
        &[],
        None,
    )
    .ok();
}

/// Extracts a fixture tarball from shared/fixtures/restic into `dest` (which must exist), the
/// way the fixtures' README asks: `tar --no-same-owner -xzf`.
pub fn extract_fixture(tarball: &str, dest: &Path) {
    let tb = fixtures_dir().join(tarball);
    assert!(tb.exists(), "fixture {} not found", tb.display());
    run_cmd(
        OsStr::new("tar"),
        &[
            OsStr::new("--no-same-owner"),
            OsStr::new("-xzf"),
            tb.as_os_str(),
            OsStr::new("-C"),
            dest.as_os_str(),
        ],
        &[],
        None,
    )
    .ok();
}

/// A temporary directory that is made writable again before it is removed (restic
/// repositories hold read-only files and folders; as non-root they could not be deleted).
pub struct TempDir {
    inner: Option<tempfile::TempDir>,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        TempDir {
            inner: Some(
                tempfile::Builder::new()
                    .prefix(prefix)
                    .tempdir()
                    .expect("create temporary directory"),
            ),
        }
    }
    pub fn path(&self) -> &Path {
        self.inner.as_ref().unwrap().path()
    }
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path().join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(t) = self.inner.take() {
            let _ = Command::new("chmod")
                .arg("-R")
                .arg("u+rwX")
                .arg(t.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = t.close();
        }
    }
}

/// `du -sb PATH` in bytes.
pub fn du_sb(p: &Path) -> u64 {
    let r = run_cmd(
        OsStr::new("du"),
        &[OsStr::new("-sb"), p.as_os_str()],
        &[],
        None,
    )
    .ok();
    r.stdout_str()
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse du output {:?}", r.stdout_str()))
}

// ---------------------------------------------------------------------------------------------
// Tree scanning and comparison
// ---------------------------------------------------------------------------------------------

/// Bytes for humans: printable ASCII as is, everything else escaped (`\xff`, `\n`).
pub fn show(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

/// What Go's encoding/json makes of a byte string that is not valid UTF-8: each byte of an
/// invalid sequence becomes U+FFFD (utf8.DecodeRune reports invalid input one byte at a time).
pub fn go_json_lossy(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        out.extend_from_slice(chunk.valid().as_bytes());
        for _ in chunk.invalid() {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    BlockDev,
    CharDev,
}

/// One path's `lstat` and what it leads to.
#[derive(Clone, Debug)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits including setuid, setgid and sticky (`st_mode & 0o7777`).
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    /// (seconds, nanoseconds).
    pub mtime: (i64, i64),
    /// Regular files only (0 otherwise).
    pub size: u64,
    /// Symlinks only.
    pub target: Option<Vec<u8>>,
    /// Device nodes only.
    pub rdev: u64,
    /// `user.*` extended attributes (empty when getfattr is missing).
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    pub dev_ino: (u64, u64),
    pub nlink: u64,
}

/// A directory tree: relative path (raw bytes; the root is `.`) → entry.
pub struct Tree {
    pub root: PathBuf,
    pub entries: BTreeMap<Vec<u8>, Entry>,
    pub xattrs_read: bool,
}

impl Tree {
    pub fn abs(&self, rel: &[u8]) -> PathBuf {
        if rel == b"." {
            self.root.clone()
        } else {
            self.root.join(OsStr::from_bytes(rel))
        }
    }

    /// Total bytes of the regular files, each inode counted once.
    pub fn total_file_bytes(&self) -> u64 {
        let mut seen = BTreeSet::new();
        self.entries
            .values()
            .filter(|e| e.kind == Kind::File && seen.insert(e.dev_ino))
            .map(|e| e.size)
            .sum()
    }

    /// Paths (other than directories) grouped by the inode they share, keyed by path:
    /// path → every path of the tree with the same inode (including itself).
    fn link_groups(&self) -> BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>> {
        let mut by_ino: BTreeMap<(u64, u64), BTreeSet<Vec<u8>>> = BTreeMap::new();
        for (p, e) in &self.entries {
            if e.kind != Kind::Dir {
                by_ino.entry(e.dev_ino).or_default().insert(p.clone());
            }
        }
        let mut out = BTreeMap::new();
        for group in by_ino.values() {
            for p in group {
                out.insert(p.clone(), group.clone());
            }
        }
        out
    }

    /// Sets of paths that are hard links of each other (groups of two or more).
    pub fn hardlink_sets(&self) -> BTreeSet<BTreeSet<Vec<u8>>> {
        self.link_groups()
            .into_values()
            .filter(|g| g.len() > 1)
            .collect()
    }
}

fn kind_of(ft: &std::fs::FileType) -> Kind {
    if ft.is_file() {
        Kind::File
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_symlink() {
        Kind::Symlink
    } else if ft.is_fifo() {
        Kind::Fifo
    } else if ft.is_socket() {
        Kind::Socket
    } else if ft.is_block_device() {
        Kind::BlockDev
    } else if ft.is_char_device() {
        Kind::CharDev
    } else {
        panic!("unknown file type {ft:?}")
    }
}

fn entry_of(meta: &std::fs::Metadata, abs: &Path) -> Entry {
    let kind = kind_of(&meta.file_type());
    Entry {
        kind,
        perm: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        size: if kind == Kind::File { meta.size() } else { 0 },
        target: if kind == Kind::Symlink {
            Some(
                std::fs::read_link(abs)
                    .unwrap_or_else(|e| panic!("readlink {}: {e}", abs.display()))
                    .into_os_string()
                    .as_bytes()
                    .to_vec(),
            )
        } else {
            None
        },
        rdev: if matches!(kind, Kind::BlockDev | Kind::CharDev) {
            meta.rdev()
        } else {
            0
        },
        xattrs: BTreeMap::new(),
        dev_ino: (meta.dev(), meta.ino()),
        nlink: meta.nlink(),
    }
}

fn scan_dir(root: &Path, rel: &[u8], out: &mut BTreeMap<Vec<u8>, Entry>) {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(OsStr::from_bytes(rel))
    };
    let rd = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()));
    for de in rd {
        let de = de.unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()));
        let name = de.file_name();
        let mut r = rel.to_vec();
        if !r.is_empty() {
            r.push(b'/');
        }
        r.extend_from_slice(name.as_bytes());
        let abs = dir.join(&name);
        let meta = std::fs::symlink_metadata(&abs)
            .unwrap_or_else(|e| panic!("lstat {}: {e}", abs.display()));
        let e = entry_of(&meta, &abs);
        let is_dir = e.kind == Kind::Dir;
        out.insert(r.clone(), e);
        if is_dir {
            scan_dir(root, &r, out);
        }
    }
}

/// Walks `root` with lstat (never following symlinks) and records every path below it, and
/// `root` itself as `.`.
pub fn scan_tree(root: &Path) -> Tree {
    let meta =
        std::fs::symlink_metadata(root).unwrap_or_else(|e| panic!("lstat {}: {e}", root.display()));
    assert!(meta.is_dir(), "{} is not a directory", root.display());
    let mut entries = BTreeMap::new();
    entries.insert(b".".to_vec(), entry_of(&meta, root));
    scan_dir(root, b"", &mut entries);
    let mut t = Tree {
        root: root.to_path_buf(),
        entries,
        xattrs_read: false,
    };
    if getfattr_available() {
        read_xattrs(&mut t);
        t.xattrs_read = true;
    }
    t
}

/// getfattr writes file names with every non-printable byte, white space and `\` as `\ooo`.
fn getfattr_unquote(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\'
            && i + 3 < s.len()
            && s[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (s[i + 1] - b'0') as u32 * 64
                + (s[i + 2] - b'0') as u32 * 8
                + (s[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

fn unhex(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() & 1 != 0 {
        return None;
    }
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

/// Reads every `user.*` extended attribute under the tree with one
/// `getfattr -R -h -d -m - --absolute-names -e hex ROOT` (no dereferencing of symlinks).
fn read_xattrs(t: &mut Tree) {
    let root = std::fs::canonicalize(&t.root).expect("canonicalize tree root");
    let r = run_cmd(
        OsStr::new("getfattr"),
        &[
            OsStr::new("-R"),
            OsStr::new("-h"),
            OsStr::new("-d"),
            OsStr::new("-m"),
            OsStr::new("-"),
            OsStr::new("--absolute-names"),
            OsStr::new("-e"),
            OsStr::new("hex"),
            root.as_os_str(),
        ],
        &[],
        None,
    );
    let r = r.ok();
    let rootb = root.as_os_str().as_bytes();
    let mut cur: Option<Vec<u8>> = None;
    for line in r.stdout.split(|b| *b == b'\n') {
        if let Some(name) = line.strip_prefix(b"# file: ") {
            let abs = getfattr_unquote(name);
            let rel = if abs == rootb {
                b".".to_vec()
            } else if abs.len() > rootb.len() + 1
                && abs.starts_with(rootb)
                && abs[rootb.len()] == b'/'
            {
                abs[rootb.len() + 1..].to_vec()
            } else {
                panic!(
                    "getfattr printed a file outside {}: {}",
                    root.display(),
                    show(&abs)
                );
            };
            assert!(
                t.entries.contains_key(&rel),
                "getfattr printed {} which the walk did not see",
                show(&rel)
            );
            cur = Some(rel);
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let Some(rel) = &cur else {
            panic!("unexpected getfattr line {}", show(line));
        };
        let (name, value) = match line.iter().position(|b| *b == b'=') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &b""[..]),
        };
        if !name.starts_with(b"user.") {
            continue;
        }
        let value = if value.is_empty() || value == b"\"\"" {
            Vec::new()
        } else if let Some(h) = value.strip_prefix(b"0x") {
            unhex(h).unwrap_or_else(|| panic!("bad getfattr hex value {}", show(value)))
        } else {
            panic!("unexpected getfattr value {} (want -e hex)", show(value));
        };
        t.entries
            .get_mut(rel)
            .unwrap()
            .xattrs
            .insert(name.to_vec(), value);
    }
}

/// One difference between two trees.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diff {
    pub path: Vec<u8>,
    pub what: String,
    pub left: String,
    pub right: String,
}

impl Diff {
    pub fn new(path: &[u8], what: &str, left: impl Into<String>, right: impl Into<String>) -> Diff {
        Diff {
            path: path.to_vec(),
            what: what.to_string(),
            left: left.into(),
            right: right.into(),
        }
    }
}

impl fmt::Debug for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {} != {}",
            show(&self.path),
            self.what,
            self.left,
            self.right
        )
    }
}

#[derive(Clone, Copy)]
pub struct CompareOptions {
    /// Compare the mtimes of symlinks (restic and cairn both restore them on Linux).
    pub symlink_mtime: bool,
    /// Compare owners (uid, gid).
    pub owners: bool,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            symlink_mtime: true,
            owners: true,
        }
    }
}

fn fmt_time(t: (i64, i64)) -> String {
    format!("{}.{:09}", t.0, t.1)
}

/// First offset where two files differ, or None when their bytes are equal.
fn content_differs(a: &Path, b: &Path) -> Option<String> {
    let mut fa = std::fs::File::open(a).unwrap_or_else(|e| panic!("open {}: {e}", a.display()));
    let mut fb = std::fs::File::open(b).unwrap_or_else(|e| panic!("open {}: {e}", b.display()));
    let mut ba = vec![0u8; 1 << 20];
    let mut bb = vec![0u8; 1 << 20];
    let mut off = 0u64;
    loop {
        let na = read_full(&mut fa, &mut ba, a);
        let nb = read_full(&mut fb, &mut bb, b);
        if ba[..na] != bb[..nb] {
            let i = ba[..na]
                .iter()
                .zip(&bb[..nb])
                .position(|(x, y)| x != y)
                .unwrap_or(na.min(nb));
            return Some(format!("first difference at byte {}", off + i as u64));
        }
        if na == 0 {
            return None;
        }
        off += na as u64;
    }
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8], p: &Path) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read {}: {e}", p.display()),
        }
    }
    n
}

/// Compares two trees path by path: type, size, content, permission bits (with setuid, setgid
/// and sticky), owner, mtime to the nanosecond (directories too; symlinks per `opts`), symlink
/// target bytes, device numbers, `user.*` xattrs, and hard-link structure (the paths that share
/// an inode on one side share one on the other, and no others). Returns every difference.
pub fn compare_trees(a: &Tree, b: &Tree, opts: CompareOptions) -> Vec<Diff> {
    let mut diffs = Vec::new();
    for p in a.entries.keys() {
        if !b.entries.contains_key(p) {
            diffs.push(Diff::new(p, "presence", "present", "missing"));
        }
    }
    for p in b.entries.keys() {
        if !a.entries.contains_key(p) {
            diffs.push(Diff::new(p, "presence", "missing", "present"));
        }
    }
    let xattrs = a.xattrs_read && b.xattrs_read;
    let (ga, gb) = (a.link_groups(), b.link_groups());
    for (p, ea) in &a.entries {
        let Some(eb) = b.entries.get(p) else { continue };
        let mut d = |what: &str, l: String, r: String| {
            if l != r {
                diffs.push(Diff::new(p, what, l, r));
            }
        };
        d("type", format!("{:?}", ea.kind), format!("{:?}", eb.kind));
        if ea.kind != eb.kind {
            continue;
        }
        d(
            "permissions",
            format!("{:04o}", ea.perm),
            format!("{:04o}", eb.perm),
        );
        if opts.owners {
            d("uid", ea.uid.to_string(), eb.uid.to_string());
            d("gid", ea.gid.to_string(), eb.gid.to_string());
        }
        if ea.kind != Kind::Symlink || opts.symlink_mtime {
            d("mtime", fmt_time(ea.mtime), fmt_time(eb.mtime));
        }
        match ea.kind {
            Kind::File => {
                d("size", ea.size.to_string(), eb.size.to_string());
                if ea.size == eb.size {
                    if let Some(why) = content_differs(&a.abs(p), &b.abs(p)) {
                        d("content", "original".into(), why);
                    }
                }
            }
            Kind::Symlink => d(
                "symlink target",
                show(ea.target.as_deref().unwrap()),
                show(eb.target.as_deref().unwrap()),
            ),
            Kind::BlockDev | Kind::CharDev => d("rdev", ea.rdev.to_string(), eb.rdev.to_string()),
            _ => {}
        }
        if xattrs {
            let fx = |e: &Entry| {
                e.xattrs
                    .iter()
                    .map(|(k, v)| format!("{}={}", show(k), show(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            d("xattrs", fx(ea), fx(eb));
        }
        if ea.kind != Kind::Dir {
            let fg = |g: Option<&BTreeSet<Vec<u8>>>| {
                g.map(|g| g.iter().map(|p| show(p)).collect::<Vec<_>>().join(" | "))
                    .unwrap_or_default()
            };
            d("hard-link group", fg(ga.get(p)), fg(gb.get(p)));
        }
    }
    diffs.sort();
    diffs
}

/// Scans both trees and compares them; prints what was compared.
pub fn compare_dirs(a: &Path, b: &Path, opts: CompareOptions) -> Vec<Diff> {
    let ta = scan_tree(a);
    let tb = scan_tree(b);
    let diffs = compare_trees(&ta, &tb, opts);
    eprintln!(
        "compared {} ({} paths, {} hard-link sets, {} with xattrs) with {}: {} difference(s)",
        a.display(),
        ta.entries.len(),
        ta.hardlink_sets().len(),
        ta.entries.values().filter(|e| !e.xattrs.is_empty()).count(),
        b.display(),
        diffs.len()
    );
    diffs
}

/// Asserts that the differences are exactly `expected` (both sorted the same way).
pub fn assert_diffs(what: &str, mut got: Vec<Diff>, mut expected: Vec<Diff>) {
    got.sort();
    expected.sort();
    if got != expected {
        let unexpected: Vec<&Diff> = got.iter().filter(|d| !expected.contains(d)).collect();
        let missing: Vec<&Diff> = expected.iter().filter(|d| !got.contains(d)).collect();
        panic!(
            "{what}: trees differ unexpectedly\n{} unexpected difference(s):\n  {}\n{} expected difference(s) not seen:\n  {}",
            unexpected.len(),
            unexpected
                .iter()
                .take(60)
                .map(|d| format!("{d:?}"))
                .collect::<Vec<_>>()
                .join("\n  "),
            missing.len(),
            missing
                .iter()
                .map(|d| format!("{d:?}"))
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
}

/// The symlinks of a tree whose target is not valid UTF-8, as (relative path, target).
pub fn non_utf8_symlinks(t: &Tree) -> Vec<(Vec<u8>, Vec<u8>)> {
    t.entries
        .iter()
        .filter_map(|(p, e)| {
            let tg = e.target.as_ref()?;
            std::str::from_utf8(tg)
                .is_err()
                .then(|| (p.clone(), tg.clone()))
        })
        .collect()
}

/// The differences a restore shows when symlink targets went through Go's JSON string encoding
/// (restic 0.14 has no `linktarget_raw`): each such target comes back with U+FFFD for every
/// byte that was not valid UTF-8.
pub fn mangled_symlink_diffs(t: &Tree) -> Vec<Diff> {
    non_utf8_symlinks(t)
        .into_iter()
        .map(|(p, tg)| Diff::new(&p, "symlink target", show(&tg), show(&go_json_lossy(&tg))))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Real servers on loopback
// ---------------------------------------------------------------------------------------------

#[allow(unused_imports)]
pub use cairn_testsupport::garage::Garage;
#[allow(unused_imports)]
pub use cairn_testsupport::rclone::RcloneRest;
#[allow(unused_imports)]
pub use cairn_testsupport::sshd::Sshd;

/// Runs `cairn -r REPO ARGS...` as a test of hostile input must: with its address space
/// limited to `mem` bytes (RLIMIT_AS through `prlimit`; `MALLOC_ARENA_MAX=2` so that glibc's
/// per-thread arenas fit) and killed after `secs` seconds (`timeout` then exits 137). `wrap`
/// goes in front of cairn inside the limits (e.g. `setpriv --reuid=…` to run as another user).
pub fn cairn_limited(
    repo: &Path,
    password: &str,
    env: &[(&str, &str)],
    wrap: &[&str],
    args: &[&str],
    mem: u64,
    secs: u64,
) -> Run {
    let bin = cairn_bin();
    let (secs, as_limit) = (secs.to_string(), format!("--as={mem}"));
    let mut all: Vec<&OsStr> = ["-s", "KILL", &secs, "prlimit", &as_limit, "--"]
        .into_iter()
        .map(OsStr::new)
        .collect();
    all.extend(wrap.iter().map(OsStr::new));
    all.extend([bin.as_os_str(), OsStr::new("-r"), repo.as_os_str()]);
    all.extend(args.iter().map(OsStr::new));
    let mut e: Vec<(&str, &OsStr)> = vec![
        ("RESTIC_PASSWORD", OsStr::new(password)),
        ("CAIRN_TEST_KDF", OsStr::new("fast")),
        ("MALLOC_ARENA_MAX", OsStr::new("2")),
    ];
    e.extend(env.iter().map(|(k, v)| (*k, OsStr::new(v))));
    let r = run_cmd(OsStr::new("timeout"), &all, &e, None);
    assert_ne!(r.code, Some(137), "{} was killed after {secs} s", r.desc);
    r
}

// ---------------------------------------------------------------------------------------------
// `Command` helpers, for tests that add arguments, pipes or a working directory themselves
// ---------------------------------------------------------------------------------------------

/// The password of the repositories the `Command` helpers open.
pub const TEST_PW: &str = "test-pw";

/// The cairn binary, for [`tool`].
pub const CAIRN: &str = env!("CARGO_BIN_EXE_cairn");

/// `BIN -r REPO` (restic: also `--no-cache`) with [`TEST_PW`] and nothing of the caller's
/// restic environment; `bin` is `"restic"` or [`CAIRN`].
pub fn tool(bin: &str, repo: &Path) -> Command {
    let mut c = Command::new(bin);
    for k in SCRUB_ENV {
        c.env_remove(k);
    }
    c.arg("-r")
        .arg(repo)
        .env("RESTIC_PASSWORD", TEST_PW)
        .env("CAIRN_TEST_KDF", "fast");
    if bin == "restic" {
        // Never touch a cache outside the test's temporary directories.
        c.arg("--no-cache");
    }
    c
}

/// `cairn -r REPO` with [`TEST_PW`].
pub fn cairn(repo: &Path) -> Command {
    tool(CAIRN, repo)
}

/// Runs `c`, panicking with its output unless it exits 0; returns stdout.
pub fn ok_bytes(c: &mut Command) -> Vec<u8> {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        tail(&String::from_utf8_lossy(&out.stdout), 4000),
        tail(&String::from_utf8_lossy(&out.stderr), 4000)
    );
    out.stdout
}

/// [`ok_bytes`] as text.
pub fn ok(c: &mut Command) -> String {
    String::from_utf8_lossy(&ok_bytes(c)).into_owned()
}

/// `restic check` of a [`TEST_PW`] repository must pass.
pub fn restic_check(repo: &Path) {
    ok(tool("restic", repo).arg("check"));
}

/// cairn's `snapshots --json` of a [`TEST_PW`] repository.
pub fn snapshots(repo: &Path) -> Vec<serde_json::Value> {
    let out = ok(cairn(repo).args(["snapshots", "--json"]));
    match serde_json::from_str(&out) {
        Ok(serde_json::Value::Array(v)) => v,
        _ => panic!("snapshots --json did not print an array: {out}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Small things many tests need
// ---------------------------------------------------------------------------------------------

/// Where a restore into `target` puts the absolute path `src`.
pub fn restored(target: &Path, src: &Path) -> PathBuf {
    target.join(src.strip_prefix("/").unwrap_or(src))
}

/// Deterministic incompressible bytes (the chunker cuts them; compression does not shrink
/// them).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A new repository `name` below `t`, made by `cairn init`.
pub fn new_repo(t: &TempDir, name: &str, password: &str) -> PathBuf {
    let repo = t.join(name);
    Tool::cairn(&repo, password).run(&["init"]).ok();
    repo
}

/// Every file below `dir` (none if it does not exist), leaving out hidden (temporary) ones,
/// sorted.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return v;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(files_in(&p));
        } else if !p.file_name().unwrap().to_string_lossy().starts_with('.') {
            v.push(p);
        }
    }
    v.sort();
    v
}

/// Every path below `dir`, relative, sorted.
pub fn relative_paths(dir: &Path) -> Vec<String> {
    fn go(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let e = e.expect("dir entry");
            let p = e.path();
            out.push(
                p.strip_prefix(base)
                    .expect("below base")
                    .to_string_lossy()
                    .into_owned(),
            );
            if e.file_type().expect("file type").is_dir() {
                go(base, &p, out);
            }
        }
    }
    let mut v = Vec::new();
    go(dir, dir, &mut v);
    v.sort();
    v
}

/// Unmounts on drop, so that a failing assertion leaves no mount behind.
pub struct Mount(pub PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A tree that takes a while to back up or copy: `dirs` directories of 40 small files each,
/// and `bigs` files of `big_len` bytes, all incompressible and fixed by `seed`.
pub fn busy_tree(root: &Path, seed: u32, dirs: u32, bigs: u32, big_len: usize) {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for d in 0..dirs {
        let dir = root.join(format!("d{d:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..40 {
            let len = (next() % 20_000) as usize;
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            std::fs::write(dir.join(format!("f{f:03}")), data).unwrap();
        }
    }
    for b in 0..bigs {
        let data: Vec<u8> = (0..big_len).map(|_| next() as u8).collect();
        std::fs::write(root.join(format!("big{b}")), data).unwrap();
    }
}

/// Flips the bits of `mask` in the byte at `offset` of a file (made writable first: restic
/// writes repository files read-only).
pub fn flip(p: &Path, offset: u64, mask: u8) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(p) {
        let mut perm = m.permissions();
        perm.set_mode(perm.mode() | 0o200);
        std::fs::set_permissions(p, perm).unwrap();
    }
    let mut b = std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    b[offset as usize] ^= mask;
    std::fs::write(p, b).unwrap();
}

impl Tool {
    /// Restores `snap` into `out`, and returns how the restored `src` differs from `src`.
    pub fn restore_diffs(&self, snap: &str, src: &Path, out: &Path) -> Vec<Diff> {
        self.run(&["restore", snap, "--target", out.to_str().unwrap()])
            .ok();
        compare_dirs(src, &restored(out, src), CompareOptions::default())
    }

    /// Restores `snap` into `out`, which must then hold `src` exactly.
    pub fn assert_restores(&self, snap: &str, src: &Path, out: &Path) {
        let d = self.restore_diffs(snap, src, out);
        assert!(
            d.is_empty(),
            "{} restore of {snap} differs: {:?}",
            self.prog.display(),
            &d[..d.len().min(5)]
        );
    }
}

/// Are the differences all in symlinks? The tests of remote repositories tolerate those and
/// nothing else.
pub fn only_symlinks_differ(d: &[Diff]) -> bool {
    d.iter().all(|x| format!("{x:?}").contains("symlink"))
}

/// Names, types, modes, sizes and contents of everything below `dir` (not following links).
pub fn detailed_listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        let m = std::fs::symlink_metadata(&d).unwrap();
        out.push(format!("{} dir {:o}", d.display(), m.mode()));
        for p in entries {
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else if m.file_type().is_symlink() {
                out.push(format!(
                    "{} -> {:?}",
                    p.display(),
                    std::fs::read_link(&p).unwrap()
                ));
            } else if m.is_file() {
                out.push(format!(
                    "{} file {:o} {:?}",
                    p.display(),
                    m.mode(),
                    std::fs::read(&p).unwrap()
                ));
            } else {
                out.push(format!("{} other {:o}", p.display(), m.mode()));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Waiting for a running child, however busy the machine
// ---------------------------------------------------------------------------------------------

/// How long a test waits for something that a busy machine only slows down.
pub use cairn_testsupport::PATIENCE;

/// CPU time (user and system) the process `pid` has used, or `None` once it has exited.
pub fn cpu_time(pid: u32) -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid … utime stime: fields 14 and 15, 12 and 13 after the comm.
    let rest = stat.rsplit_once(") ")?.1;
    if rest.starts_with('Z') {
        return None;
    }
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(std::time::Duration::from_millis(ticks * 1000 / hz))
}

/// Waits until `child` has used `cpu` of CPU time; false if it exited first. CPU time, not
/// wall time, says how far a program has got: on a busy machine a fixed sleep may end before
/// it has even started.
pub fn wait_for_cpu(child: &mut std::process::Child, cpu: std::time::Duration) -> bool {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return false;
        }
        match cpu_time(child.id()) {
            Some(t) if t >= cpu => return true,
            Some(_) => {}
            None => return false,
        }
        assert!(
            start.elapsed() < PATIENCE,
            "pid {} used less than {cpu:?} of CPU in {PATIENCE:?}",
            child.id()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A child's stderr or stdout, drained by a thread as it comes, so that a test can wait for a message
/// instead of guessing how long the child needs to get there.
pub struct Watched {
    buf: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Watched {
    /// Takes over `child`'s stderr (which must be piped).
    pub fn stderr_of(child: &mut std::process::Child) -> Watched {
        Watched::new(child.stderr.take().expect("stderr is piped"))
    }

    /// Takes over `child`'s stdout (which must be piped).
    pub fn stdout_of(child: &mut std::process::Child) -> Watched {
        Watched::new(child.stdout.take().expect("stdout is piped"))
    }

    fn new(mut pipe: impl Read + Send + 'static) -> Watched {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let b = buf.clone();
        let reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                b.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Watched {
            buf,
            reader: Some(reader),
        }
    }

    /// What arrived so far.
    pub fn so_far(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }

    /// Waits until `needle` has arrived, failing the test after [`PATIENCE`].
    pub fn wait_for(&self, needle: &str) {
        let start = Instant::now();
        while !self.so_far().contains(needle) {
            assert!(
                start.elapsed() < PATIENCE,
                "{needle:?} did not come within {PATIENCE:?}; so far:\n{}",
                self.so_far()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// All of it, once the child has closed the pipe (has exited).
    pub fn all(mut self) -> String {
        if let Some(r) = self.reader.take() {
            r.join().expect("stderr reader");
        }
        self.so_far()
    }
}

/// Waits for `child` to end, sampling the CPU time it uses; panics unless it exits 0.
/// Kill schedules are fractions of this rather than of wall time, which varies with the load
/// of the machine from one run to the next.
pub fn cpu_of_run(child: std::process::Child) -> std::time::Duration {
    let pid = child.id();
    let waiter = std::thread::spawn(move || child.wait_with_output().expect("wait"));
    let mut used = std::time::Duration::ZERO;
    while !waiter.is_finished() {
        if let Some(t) = cpu_time(pid) {
            used = used.max(t);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let out = waiter.join().expect("waiter");
    assert!(
        out.status.success(),
        "pid {pid} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    used
}

/// SIGKILLs `child` once it has used `cpu` of CPU time (see [`cpu_of_run`]); returns whether
/// it was still running then. Its exit status is left to the caller.
pub fn kill_at_cpu(child: &mut std::process::Child, cpu: std::time::Duration) -> bool {
    let running = wait_for_cpu(child, cpu);
    let _ = child.kill();
    running
}
