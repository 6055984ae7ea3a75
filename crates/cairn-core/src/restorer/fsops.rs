//! The one restore writer: every name a restore creates or changes is reached from the target
//! directory one component at a time with `openat(O_NOFOLLOW|O_DIRECTORY)`, and metadata is
//! applied through the opened descriptor (`fchown`, `fchmod`, `fsetxattr`, `futimens`), never
//! by path. A symlink, fifo, device or hard link that already sits in the target (planted, or
//! left by an earlier restore) is never followed, opened for writing or written through: what
//! is in the way of a file, link or special node is unlinked and the node created anew with
//! `O_EXCL`; what is in the way of a directory (anything but a real directory) is replaced by
//! one.

use crate::format::gotime;
use crate::format::tree::{mode, Node, NodeType};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The directory index of the target itself.
pub const ROOT: u32 = 0;

/// A directory of the plan: its parent's index and its name (the target has neither).
pub struct PlanDir {
    pub parent: u32,
    pub name: Box<[u8]>,
    pub node: Option<Node>,
}

/// Where an entry goes: a directory of the plan and a name in it.
#[derive(Clone)]
pub struct Place {
    pub dir: u32,
    pub name: Box<[u8]>,
}

fn cstr(name: &[u8]) -> std::io::Result<CString> {
    CString::new(name).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))
}

fn last_err() -> std::io::Error {
    std::io::Error::last_os_error()
}

fn check(r: libc::c_int) -> std::io::Result<()> {
    if r < 0 {
        Err(last_err())
    } else {
        Ok(())
    }
}

fn openat(
    dir: RawFd,
    name: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> std::io::Result<OwnedFd> {
    // SAFETY: name is NUL-terminated; the returned descriptor is owned by us.
    let fd = unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(last_err());
    }
    // SAFETY: fd is a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fstat(fd: RawFd) -> std::io::Result<libc::stat> {
    // SAFETY: st is written by fstat before being read.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

fn is_type(st: &libc::stat, ty: libc::mode_t) -> bool {
    st.st_mode & libc::S_IFMT == ty
}

const DIR_FLAGS: libc::c_int = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;

/// Opens (or creates, replacing whatever non-directory is in the way) the directory `name`
/// in `parent`.
fn make_dir(parent: RawFd, name: &[u8]) -> std::io::Result<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: valid descriptor and name.
    if unsafe { libc::mkdirat(parent, c.as_ptr(), 0o700) } != 0 {
        let e = last_err();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e);
        }
    }
    match openat(parent, &c, DIR_FLAGS, 0) {
        Ok(fd) => Ok(fd),
        // A symlink (ELOOP) or another non-directory (ENOTDIR) is in the way: replace it.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)) => {
            // SAFETY: valid descriptor and name; flags 0 removes a non-directory only.
            check(unsafe { libc::unlinkat(parent, c.as_ptr(), 0) })?;
            check(unsafe { libc::mkdirat(parent, c.as_ptr(), 0o700) })?;
            openat(parent, &c, DIR_FLAGS, 0)
        }
        Err(e) => Err(e),
    }
}

/// Runs `create` (which must fail with EEXIST when the name is taken); if the name is taken
/// by anything but a directory, unlinks it and tries once more.
fn replacing<T>(
    dir: RawFd,
    name: &CStr,
    create: impl Fn() -> std::io::Result<T>,
) -> std::io::Result<T> {
    match create() {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            // SAFETY: valid descriptor and name; a directory in the way fails with EISDIR.
            if unsafe { libc::unlinkat(dir, name.as_ptr(), 0) } != 0 {
                let u = last_err();
                if u.raw_os_error() == Some(libc::EISDIR) {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "a directory is in the way",
                    ));
                }
                return Err(u);
            }
            create()
        }
        r => r,
    }
}

/// Descriptors of the plan's directories, resolved from the target one component at a time
/// and shared by the restore's threads. A bounded number stay open.
pub struct Dirs<'a> {
    dirs: &'a [PlanDir],
    target: PathBuf,
    root: Arc<OwnedFd>,
    open: Mutex<HashMap<u32, Arc<OwnedFd>>>,
}

impl<'a> Dirs<'a> {
    const MAX_OPEN: usize = 512;

    pub fn new(target: &Path, dirs: &'a [PlanDir]) -> std::io::Result<Dirs<'a>> {
        // The target itself is the user's choice and may be reached through links.
        let root = File::open(target)?;
        let root = Arc::new(OwnedFd::from(root));
        Ok(Dirs {
            dirs,
            target: target.to_path_buf(),
            root,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// The path of a directory for messages (never used to reach anything).
    pub fn display(&self, dir: u32) -> PathBuf {
        let mut names = Vec::new();
        let mut i = dir;
        while i != ROOT {
            let d = &self.dirs[i as usize];
            names.push(&d.name);
            i = d.parent;
        }
        let mut p = self.target.clone();
        for n in names.iter().rev() {
            p.push(std::ffi::OsStr::from_bytes(n));
        }
        p
    }

    pub fn display_place(&self, place: &Place) -> PathBuf {
        self.display(place.dir)
            .join(std::ffi::OsStr::from_bytes(&place.name))
    }

    /// Creates every directory of the plan, in plan order (parents first). Returns, per
    /// directory, the error that kept it from existing.
    pub fn create_all(&self, mut report: impl FnMut(u32, std::io::Error)) -> Vec<bool> {
        let mut ok = vec![true; self.dirs.len()];
        for i in 1..self.dirs.len() {
            let d = &self.dirs[i];
            if !ok[d.parent as usize] {
                ok[i] = false;
                continue;
            }
            let res = self
                .get(d.parent)
                .and_then(|p| make_dir(p.as_raw_fd(), &d.name));
            match res {
                Ok(fd) => self.keep(i as u32, fd),
                Err(e) => {
                    ok[i] = false;
                    report(i as u32, e);
                }
            }
        }
        ok
    }

    fn keep(&self, i: u32, fd: OwnedFd) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= Self::MAX_OPEN {
            open.clear();
        }
        open.insert(i, Arc::new(fd));
    }

    /// The descriptor of directory `i`, opened without following any link.
    pub fn get(&self, i: u32) -> std::io::Result<Arc<OwnedFd>> {
        if i == ROOT {
            return Ok(self.root.clone());
        }
        // The chain up to the nearest open ancestor.
        let mut chain = Vec::new();
        let mut base = {
            let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let mut j = i;
            loop {
                if j == ROOT {
                    break self.root.clone();
                }
                if let Some(fd) = open.get(&j) {
                    break fd.clone();
                }
                chain.push(j);
                j = self.dirs[j as usize].parent;
            }
        };
        for &j in chain.iter().rev() {
            let c = cstr(&self.dirs[j as usize].name)?;
            let fd = openat(base.as_raw_fd(), &c, DIR_FLAGS, 0)?;
            let fd = Arc::new(fd);
            {
                let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
                if open.len() >= Self::MAX_OPEN {
                    open.clear();
                }
                open.insert(j, fd.clone());
            }
            base = fd;
        }
        Ok(base)
    }

    /// Creates a new, empty regular file (replacing whatever non-directory has its name).
    pub fn create_file(&self, place: &Place) -> std::io::Result<File> {
        let dir = self.get(place.dir)?;
        let c = cstr(&place.name)?;
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let fd = replacing(dir.as_raw_fd(), &c, || {
            openat(dir.as_raw_fd(), &c, flags, 0o600)
        })?;
        Ok(File::from(fd))
    }

    /// Opens a file this restore created, for writing, reading or its metadata: never
    /// through a link, never blocking on a fifo, and only if it is still a regular file.
    pub fn open_file(&self, place: &Place, write: bool) -> std::io::Result<File> {
        let dir = self.get(place.dir)?;
        let c = cstr(&place.name)?;
        let acc = if write {
            libc::O_WRONLY
        } else {
            libc::O_RDONLY
        };
        let fd = openat(
            dir.as_raw_fd(),
            &c,
            acc | libc::O_NOFOLLOW | libc::O_NONBLOCK,
            0,
        )?;
        let st = fstat(fd.as_raw_fd())?;
        if !is_type(&st, libc::S_IFREG) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        Ok(File::from(fd))
    }

    /// Creates a symlink, fifo or device node (replacing whatever non-directory has its name).
    pub fn create_special(&self, place: &Place, node: &Node) -> std::io::Result<()> {
        let dir = self.get(place.dir)?;
        let d = dir.as_raw_fd();
        let c = cstr(&place.name)?;
        match node.kind {
            NodeType::Symlink => {
                let target = cstr(&node.linktarget)?;
                // SAFETY: valid descriptor and NUL-terminated strings.
                replacing(d, &c, || {
                    check(unsafe { libc::symlinkat(target.as_ptr(), d, c.as_ptr()) })
                })
            }
            NodeType::Fifo => {
                // SAFETY: valid descriptor and name.
                replacing(d, &c, || {
                    check(unsafe { libc::mkfifoat(d, c.as_ptr(), 0o600) })
                })
            }
            NodeType::Dev | NodeType::Chardev => {
                let kind = if node.kind == NodeType::Dev {
                    libc::S_IFBLK
                } else {
                    libc::S_IFCHR
                };
                replacing(d, &c, || {
                    // SAFETY: valid descriptor and name; mode and device from the snapshot.
                    check(unsafe {
                        libc::mknodat(d, c.as_ptr(), kind | 0o600, node.device as libc::dev_t)
                    })
                })
            }
            _ => Ok(()),
        }
    }

    /// Makes `place` a hard link to the file at `first` (which this restore created).
    pub fn hard_link(&self, first: &Place, place: &Place) -> std::io::Result<()> {
        let from = self.get(first.dir)?;
        let to = self.get(place.dir)?;
        let cf = cstr(&first.name)?;
        let ct = cstr(&place.name)?;
        replacing(to.as_raw_fd(), &ct, || {
            // SAFETY: valid descriptors and names; flags 0 never follows a symlink at `first`.
            check(unsafe {
                libc::linkat(
                    from.as_raw_fd(),
                    cf.as_ptr(),
                    to.as_raw_fd(),
                    ct.as_ptr(),
                    0,
                )
            })
        })
    }

    /// Applies a node's ownership, extended attributes, mode and times to the thing at
    /// `place` (a directory when `place` is None-named: use [`Dirs::dir_metadata`]).
    pub fn metadata(&self, place: &Place, node: &Node) -> crate::Result<()> {
        match node.kind {
            NodeType::File => {
                let f = self.open_file(place, false)?;
                apply_fd(f.as_raw_fd(), node)
            }
            NodeType::Fifo => {
                // A fifo opened for reading without blocking needs no writer.
                let dir = self.get(place.dir)?;
                let c = cstr(&place.name)?;
                let fd = openat(
                    dir.as_raw_fd(),
                    &c,
                    libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
                    0,
                )?;
                if !is_type(&fstat(fd.as_raw_fd())?, libc::S_IFIFO) {
                    crate::error::bail!("not a fifo any more");
                }
                apply_fd(fd.as_raw_fd(), node)
            }
            NodeType::Dev | NodeType::Chardev => {
                // Opening a device could have effects: work on an O_PATH descriptor, through
                // /proc/self/fd for the calls that take no such descriptor.
                let dir = self.get(place.dir)?;
                let c = cstr(&place.name)?;
                let fd = openat(dir.as_raw_fd(), &c, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
                let st = fstat(fd.as_raw_fd())?;
                if !is_type(&st, libc::S_IFBLK) && !is_type(&st, libc::S_IFCHR) {
                    crate::error::bail!("not a device any more");
                }
                let proc = cstr(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_bytes())?;
                if is_root() {
                    // SAFETY: valid descriptor; empty path with AT_EMPTY_PATH names it.
                    check(unsafe {
                        libc::fchownat(
                            fd.as_raw_fd(),
                            c"".as_ptr(),
                            node.uid,
                            node.gid,
                            libc::AT_EMPTY_PATH,
                        )
                    })?;
                }
                let perm = mode::to_unix_perm(node.mode);
                // SAFETY: the /proc path names exactly the node we opened.
                check(unsafe { libc::chmod(proc.as_ptr(), perm as libc::mode_t) })?;
                let t = times(node);
                // SAFETY: as above, with a two-element timespec array.
                check(unsafe { libc::utimensat(libc::AT_FDCWD, proc.as_ptr(), t.as_ptr(), 0) })?;
                Ok(())
            }
            NodeType::Symlink => {
                let dir = self.get(place.dir)?;
                let d = dir.as_raw_fd();
                let c = cstr(&place.name)?;
                if is_root() {
                    // SAFETY: valid descriptor and name; the link itself, never its target.
                    check(unsafe {
                        libc::fchownat(d, c.as_ptr(), node.uid, node.gid, libc::AT_SYMLINK_NOFOLLOW)
                    })?;
                }
                // Linux keeps no mode and (for user.*) no extended attributes on symlinks.
                let t = times(node);
                // SAFETY: valid descriptor, name and timespec array.
                check(unsafe {
                    libc::utimensat(d, c.as_ptr(), t.as_ptr(), libc::AT_SYMLINK_NOFOLLOW)
                })?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Applies a directory's metadata through its descriptor.
    pub fn dir_metadata(&self, i: u32, node: &Node) -> crate::Result<()> {
        let fd = self.get(i)?;
        apply_fd(fd.as_raw_fd(), node)
    }
}

pub fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    // SAFETY: geteuid has no preconditions.
    *ROOT.get_or_init(|| unsafe { libc::geteuid() == 0 })
}

fn times(node: &Node) -> [libc::timespec; 2] {
    let (as_, an) = gotime::to_unix(&node.atime);
    let (ms, mn) = gotime::to_unix(&node.mtime);
    [
        libc::timespec {
            tv_sec: as_ as libc::time_t,
            tv_nsec: an as _,
        },
        libc::timespec {
            tv_sec: ms as libc::time_t,
            tv_nsec: mn as _,
        },
    ]
}

/// Ownership, extended attributes, permissions and times, through a descriptor, in the order
/// that keeps each one (chmod after chown, which clears setuid/setgid; times last).
pub fn apply_fd(fd: RawFd, node: &Node) -> crate::Result<()> {
    if is_root() {
        // SAFETY: valid descriptor.
        check(unsafe { libc::fchown(fd, node.uid, node.gid) })
            .map_err(|e| anyhow::anyhow!("chown: {e}"))?;
    }
    for xa in &node.extended_attributes {
        let name = cstr(&xa.name)?;
        // SAFETY: valid descriptor, NUL-terminated name, value pointer and length agree.
        let r = unsafe {
            libc::fsetxattr(
                fd,
                name.as_ptr(),
                xa.value.as_ptr().cast(),
                xa.value.len(),
                0,
            )
        };
        if r != 0 {
            crate::error::bail!(
                "setxattr {}: {}",
                String::from_utf8_lossy(&xa.name),
                last_err()
            );
        }
    }
    let perm = mode::to_unix_perm(node.mode);
    // SAFETY: valid descriptor.
    check(unsafe { libc::fchmod(fd, perm as libc::mode_t) })
        .map_err(|e| anyhow::anyhow!("chmod: {e}"))?;
    let t = times(node);
    // SAFETY: valid descriptor and a two-element timespec array.
    check(unsafe { libc::futimens(fd, t.as_ptr()) })
        .map_err(|e| anyhow::anyhow!("set times: {e}"))?;
    Ok(())
}

/// What a restore finds where it is about to put an entry.
#[derive(Debug, Clone, Copy)]
pub enum Existing {
    Nothing,
    /// A regular file: its size and modification time (seconds, nanoseconds).
    File {
        size: u64,
        mtime: (i64, i64),
    },
    /// Anything else (directory, symlink, fifo, device), with its modification time.
    Other {
        mtime: (i64, i64),
    },
}

impl Existing {
    pub fn mtime(&self) -> Option<(i64, i64)> {
        match self {
            Existing::Nothing => None,
            Existing::File { mtime, .. } | Existing::Other { mtime } => Some(*mtime),
        }
    }
}

/// Looks at a name in a directory without following it; a missing directory on the way (a
/// dry run creates none) means nothing is there.
pub fn lstat_at(dirs: &Dirs, place: &Place) -> std::io::Result<Existing> {
    let dir = match dirs.get(place.dir) {
        Ok(d) => d,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
            return Ok(Existing::Nothing)
        }
        Err(e) => return Err(e),
    };
    let c = cstr(&place.name)?;
    // SAFETY: st is written by fstatat before being read; valid descriptor and name.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r != 0 {
        let e = last_err();
        return if e.raw_os_error() == Some(libc::ENOENT) {
            Ok(Existing::Nothing)
        } else {
            Err(e)
        };
    }
    let mtime = (st.st_mtime as i64, st.st_mtime_nsec as i64);
    Ok(if is_type(&st, libc::S_IFREG) {
        Existing::File {
            size: st.st_size as u64,
            mtime,
        }
    } else {
        Existing::Other { mtime }
    })
}

/// The names in an open directory (without "." and "..").
fn read_names(fd: RawFd) -> std::io::Result<Vec<Vec<u8>>> {
    // fdopendir takes ownership of its descriptor: give it a copy.
    // SAFETY: valid descriptor; dup returns a new one or -1.
    let copy = unsafe { libc::dup(fd) };
    if copy < 0 {
        return Err(last_err());
    }
    // SAFETY: copy is a valid directory descriptor we own; on success the stream owns it.
    let stream = unsafe { libc::fdopendir(copy) };
    if stream.is_null() {
        let e = last_err();
        // SAFETY: fdopendir failed, so the copy is still ours to close.
        unsafe { libc::close(copy) };
        return Err(e);
    }
    // SAFETY: rewinding a fresh stream is always allowed.
    unsafe { libc::rewinddir(stream) };
    let mut names = Vec::new();
    loop {
        // SAFETY: stream is open; the entry stays valid until the next readdir call.
        let ent = unsafe { libc::readdir(stream) };
        if ent.is_null() {
            break;
        }
        // SAFETY: d_name is NUL-terminated within the entry.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    // SAFETY: closes the stream and its descriptor once.
    unsafe { libc::closedir(stream) };
    Ok(names)
}

impl Dirs<'_> {
    /// The names directory `i` holds now.
    pub fn names_in(&self, i: u32) -> std::io::Result<Vec<Vec<u8>>> {
        let fd = self.get(i)?;
        read_names(fd.as_raw_fd())
    }

    /// Removes `name` from directory `i` and, if it is a directory, everything below it:
    /// iteratively, each level reached with `openat(O_NOFOLLOW)`, so that no symlink in the
    /// target is ever followed. `removed` hears every entry (relative to directory `i`),
    /// deepest first; with `dry_run` nothing is removed, only reported.
    pub fn remove_tree(
        &self,
        i: u32,
        name: &[u8],
        dry_run: bool,
        removed: &mut dyn FnMut(&[u8]),
    ) -> std::io::Result<()> {
        /// Far deeper than any real tree; keeps the descriptors held bounded.
        const MAX_DEPTH: usize = 4096;
        struct Level {
            fd: OwnedFd,
            path: Vec<u8>,
            pending: Vec<Vec<u8>>,
        }
        let top = self.get(i)?;
        let c = cstr(name)?;
        let is_dir = |parent: RawFd, c: &CStr| -> std::io::Result<bool> {
            // SAFETY: st is written before being read; valid descriptor and name.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            check(unsafe {
                libc::fstatat(parent, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW)
            })?;
            Ok(is_type(&st, libc::S_IFDIR))
        };
        let unlink = |parent: RawFd, c: &CStr, dir: bool| -> std::io::Result<()> {
            if dry_run {
                return Ok(());
            }
            let flags = if dir { libc::AT_REMOVEDIR } else { 0 };
            // SAFETY: valid descriptor and name.
            check(unsafe { libc::unlinkat(parent, c.as_ptr(), flags) })
        };
        if !is_dir(top.as_raw_fd(), &c)? {
            unlink(top.as_raw_fd(), &c, false)?;
            removed(name);
            return Ok(());
        }
        let fd = openat(top.as_raw_fd(), &c, DIR_FLAGS, 0)?;
        let pending = read_names(fd.as_raw_fd())?;
        let mut stack = vec![Level {
            fd,
            path: name.to_vec(),
            pending,
        }];
        loop {
            let depth = stack.len();
            let Some(level) = stack.last_mut() else { break };
            let Some(child) = level.pending.pop() else {
                let done = stack.pop().expect("a level");
                drop(done.fd);
                let parent = stack.last().map_or(top.as_raw_fd(), |l| l.fd.as_raw_fd());
                let base = done
                    .path
                    .rsplit(|b| *b == b'/')
                    .next()
                    .unwrap_or(&done.path);
                unlink(parent, &cstr(base)?, true)?;
                removed(&done.path);
                continue;
            };
            let level = stack.last_mut().expect("a level");
            let cc = cstr(&child)?;
            let mut path = level.path.clone();
            path.push(b'/');
            path.extend_from_slice(&child);
            if is_dir(level.fd.as_raw_fd(), &cc)? {
                if depth >= MAX_DEPTH {
                    return Err(std::io::Error::other("directory tree too deep to remove"));
                }
                let fd = openat(level.fd.as_raw_fd(), &cc, DIR_FLAGS, 0)?;
                let pending = read_names(fd.as_raw_fd())?;
                stack.push(Level { fd, path, pending });
            } else {
                unlink(level.fd.as_raw_fd(), &cc, false)?;
                removed(&path);
            }
        }
        Ok(())
    }
}

/// An entry's path inside the snapshot, as restic names it in messages ("/dir/file").
pub fn location(dirs: &[PlanDir], place: &Place) -> PathBuf {
    dir_location(dirs, place.dir).join(std::ffi::OsStr::from_bytes(&place.name))
}

/// A directory's path inside the snapshot.
pub fn dir_location(dirs: &[PlanDir], dir: u32) -> PathBuf {
    let mut names = Vec::new();
    let mut i = dir;
    while i != ROOT {
        let Some(d) = dirs.get(i as usize) else { break };
        names.push(&d.name);
        i = d.parent;
    }
    let mut p = PathBuf::from("/");
    for n in names.iter().rev() {
        p.push(std::ffi::OsStr::from_bytes(n));
    }
    p
}
