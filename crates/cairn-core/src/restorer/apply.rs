//! Applying a node's metadata to a restored path, and creating links and special files.

use crate::format::gotime;
use crate::format::tree::{mode, Node, NodeType};
use anyhow::Context;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cpath(p: &Path) -> anyhow::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| anyhow::anyhow!("path {} contains NUL", p.display()))
}

fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    // SAFETY: geteuid has no preconditions.
    *ROOT.get_or_init(|| unsafe { libc::geteuid() == 0 })
}

/// Creates a symlink, fifo, device node or socket placeholder.
pub fn create_special(path: &Path, node: &Node) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    match node.kind {
        NodeType::Symlink => {
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&node.linktarget), path)
                .with_context(|| format!("symlink {}", path.display()))
        }
        NodeType::Fifo => {
            let c = cpath(path)?;
            // SAFETY: c is a valid NUL-terminated path.
            if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("mkfifo {}", path.display()));
            }
            Ok(())
        }
        NodeType::Dev | NodeType::Chardev => {
            if !is_root() {
                // Only root can create device nodes; restic skips them the same way.
                return Ok(());
            }
            let c = cpath(path)?;
            let kind = if node.kind == NodeType::Dev {
                libc::S_IFBLK
            } else {
                libc::S_IFCHR
            };
            // SAFETY: valid path; mode and device come from the snapshot.
            if unsafe { libc::mknod(c.as_ptr(), kind | 0o600, node.device as libc::dev_t) } != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("mknod {}", path.display()));
            }
            Ok(())
        }
        NodeType::Socket => Ok(()),
        _ => Ok(()),
    }
}

/// Ownership, permissions, extended attributes and times, in the order that keeps each one.
pub fn metadata(path: &Path, node: &Node) -> anyhow::Result<()> {
    if matches!(node.kind, NodeType::Socket)
        || (matches!(node.kind, NodeType::Dev | NodeType::Chardev) && !is_root())
    {
        return Ok(());
    }
    let c = cpath(path)?;
    let is_link = node.kind == NodeType::Symlink;
    if is_root() {
        // SAFETY: valid path.
        if unsafe { libc::lchown(c.as_ptr(), node.uid, node.gid) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("lchown {}", path.display()));
        }
    }
    for xa in &node.extended_attributes {
        let name = std::ffi::OsStr::from_bytes(&xa.name);
        if let Err(e) = xattr::set(path, name, &xa.value) {
            // Filesystems without xattr support (or trusted.* as non-root) are not fatal.
            if !is_link {
                return Err(anyhow::Error::new(e).context(format!(
                    "setxattr {} on {}",
                    String::from_utf8_lossy(&xa.name),
                    path.display()
                )));
            }
        }
    }
    // chmod after chown: chown clears setuid/setgid.
    if !is_link {
        let perm = mode::to_unix_perm(node.mode);
        // SAFETY: valid path.
        if unsafe { libc::chmod(c.as_ptr(), perm as libc::mode_t) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("chmod {}", path.display()));
        }
    }
    let (as_, an) = gotime::to_unix(&node.atime);
    let (ms, mn) = gotime::to_unix(&node.mtime);
    let times = [
        libc::timespec {
            tv_sec: as_ as libc::time_t,
            tv_nsec: an as _,
        },
        libc::timespec {
            tv_sec: ms as libc::time_t,
            tv_nsec: mn as _,
        },
    ];
    // SAFETY: valid path and a two-element timespec array.
    if unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("set times on {}", path.display()));
    }
    Ok(())
}
