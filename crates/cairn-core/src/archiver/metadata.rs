//! Turning a file's `lstat` into a restic node.

use crate::format::gotime;
use crate::format::tree::{mode, ExtendedAttribute, Node, NodeType};
use std::collections::HashMap;
use std::ffi::{CStr, OsStr};
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Mutex;

/// uid/gid → name lookups are slow (NSS); cache them for the whole backup.
#[derive(Default)]
pub struct NameCache {
    users: Mutex<HashMap<u32, String>>,
    groups: Mutex<HashMap<u32, String>>,
}

impl NameCache {
    pub fn user(&self, uid: u32) -> String {
        let mut m = crate::packer::lock(&self.users);
        m.entry(uid).or_insert_with(|| lookup_user(uid)).clone()
    }
    pub fn group(&self, gid: u32) -> String {
        let mut m = crate::packer::lock(&self.groups);
        m.entry(gid).or_insert_with(|| lookup_group(gid)).clone()
    }
}

fn lookup_user(uid: u32) -> String {
    let mut buf = vec![0u8; 16384];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut res: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: buffers are valid for the duration of the call; result points into them.
    let rc =
        unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut res) };
    if rc != 0 || res.is_null() || pwd.pw_name.is_null() {
        return String::new();
    }
    unsafe { CStr::from_ptr(pwd.pw_name) }
        .to_string_lossy()
        .into_owned()
}

fn lookup_group(gid: u32) -> String {
    let mut buf = vec![0u8; 16384];
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut res: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as above.
    let rc =
        unsafe { libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr().cast(), buf.len(), &mut res) };
    if rc != 0 || res.is_null() || grp.gr_name.is_null() {
        return String::new();
    }
    unsafe { CStr::from_ptr(grp.gr_name) }
        .to_string_lossy()
        .into_owned()
}

/// Looks up a user name's uid (for restoring ownership by name is not done: restic restores
/// numeric ids, and so does cairn).
pub fn node_type(meta: &Metadata) -> NodeType {
    let ft = meta.file_type();
    if ft.is_file() {
        NodeType::File
    } else if ft.is_dir() {
        NodeType::Dir
    } else if ft.is_symlink() {
        NodeType::Symlink
    } else if ft.is_block_device() {
        NodeType::Dev
    } else if ft.is_char_device() {
        NodeType::Chardev
    } else if ft.is_fifo() {
        NodeType::Fifo
    } else if ft.is_socket() {
        NodeType::Socket
    } else {
        NodeType::Other("irregular".into())
    }
}

/// Builds a node (without content or subtree) from `lstat` metadata.
pub fn node_from_metadata(
    name: &OsStr,
    path: &Path,
    meta: &Metadata,
    names: &NameCache,
    with_atime: bool,
) -> Node {
    let kind = node_type(meta);
    let mut n = Node::new(name.as_bytes().to_vec(), kind.clone());
    n.mode = mode::from_unix(meta.mode());
    n.mtime = gotime::clamp_year_local(gotime::from_unix_local(
        meta.mtime(),
        meta.mtime_nsec() as u32,
    ));
    n.atime = if with_atime {
        gotime::clamp_year_local(gotime::from_unix_local(
            meta.atime(),
            meta.atime_nsec() as u32,
        ))
    } else {
        n.mtime
    };
    n.ctime = gotime::clamp_year_local(gotime::from_unix_local(
        meta.ctime(),
        meta.ctime_nsec() as u32,
    ));
    n.uid = meta.uid();
    n.gid = meta.gid();
    n.user = names.user(n.uid);
    n.group = names.group(n.gid);
    n.inode = meta.ino();
    n.device_id = meta.dev();
    // restic records the link count for these types only (not for dirs, fifos, sockets).
    if matches!(
        kind,
        NodeType::File | NodeType::Symlink | NodeType::Dev | NodeType::Chardev
    ) {
        n.links = meta.nlink();
    }
    match kind {
        NodeType::File => {
            n.size = meta.size();
            n.content = Some(Vec::new());
        }
        NodeType::Symlink => {
            if let Ok(t) = std::fs::read_link(path) {
                n.linktarget = t.as_os_str().as_bytes().to_vec();
            }
        }
        NodeType::Dev | NodeType::Chardev => n.device = meta.rdev(),
        _ => {}
    }
    n.extended_attributes = read_xattrs(path);
    n
}

fn read_xattrs(path: &Path) -> Vec<ExtendedAttribute> {
    let Ok(names) = xattr::list(path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in names {
        if let Ok(Some(value)) = xattr::get(path, &name) {
            out.push(ExtendedAttribute {
                name: name.as_bytes().to_vec(),
                value,
            });
        }
    }
    out
}
