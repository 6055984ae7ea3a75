//! The FUSE filesystem: the layout directories, then each snapshot's trees, loaded when a
//! directory is looked into and kept in a bounded cache.
//!
//! Requests arrive one at a time on the session thread. Metadata requests are answered there
//! (trees are cached; a tree not cached is one blob read); reads are handed to a small pool
//! so that several files, and read-ahead of the file being read, are served at once.

use crate::layout::{Entry, Layout, SnapRef};
use crate::reader::{Handle, Pool, Shared};
use crate::MountOptions;
use cairn_core::blobcache::BoundedCache;
use cairn_core::format::gotime::{self, GoTime};
use cairn_core::format::tree::{mode, name_problem, Node, NodeType, Tree};
use cairn_core::{FileType as RepoFile, Id};
use fuser::{
    FileAttr, FileType, Filesystem, KernelConfig, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyXattr, Request,
};
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Snapshot contents never change, so the kernel may keep what it was told.
const TTL_SNAPSHOT: Duration = Duration::from_secs(24 * 3600);
/// The layout changes when snapshots are added or removed.
const TTL_LAYOUT: Duration = Duration::from_secs(1);
/// How long a listing of the snapshot files is trusted before the next look.
const RELIST_AFTER: Duration = Duration::from_secs(1);
/// Trees kept parsed in memory, by the size of their JSON.
const TREE_CACHE_BYTES: usize = 32 << 20;
/// Budget of the read-ahead into the files that follow an opened one in its directory.
const NEXT_FILES_BYTES: u64 = 4 << 20;
const NEXT_FILES_MAX: usize = 16;

enum Kind {
    /// A directory of the layout (its path there).
    Layout(String),
    /// A snapshot's symlink (raw target).
    Link(Box<[u8]>),
    /// A `latest` link of the layout (its target changes as snapshots come).
    LayoutLink(Box<[u8]>),
    /// A directory of a snapshot; `snap` is the inode of the snapshot's root.
    Dir { tree: Option<Id>, snap: u64 },
    /// A regular file: its blobs, and where it sits (directory inode, position in its tree)
    /// for reading ahead into the files that follow it.
    File {
        content: Arc<[Id]>,
        parent: u64,
        pos: u32,
    },
    /// Fifos, devices, sockets: nodes without content.
    Other,
}

/// Extended attributes as (name, value); None for the many nodes without any.
type Xattrs = Option<Box<[(Vec<u8>, Vec<u8>)]>>;

struct Inode {
    attr: FileAttr,
    kind: Kind,
    xattrs: Xattrs,
}

/// A directory listing taken at opendir, served in pieces by readdir.
struct Listing {
    entries: Vec<(u64, FileType, Vec<u8>)>,
}

pub struct CairnFs {
    shared: Arc<Shared>,
    pool: Pool,
    opts: MountOptions,
    uid: u32,
    gid: u32,
    mounted_at: SystemTime,
    /// Inode `n` is `inodes[n - 1]`; numbers are never reused within a mount.
    inodes: Vec<Inode>,
    /// (parent inode, name) → inode, so that a name keeps its number for the whole mount.
    names: HashMap<(u64, Box<[u8]>), u64>,
    /// (snapshot root inode, device, inode) → inode, for hard links.
    hardlinks: HashMap<(u64, u64, u64), u64>,
    trees: BoundedCache<Arc<Tree>>,
    layout: Layout,
    snaps: HashMap<Id, Arc<SnapRef>>,
    /// Snapshot files that could not be read (reported once).
    broken: HashSet<Id>,
    last_listed: Option<Instant>,
    files: HashMap<u64, Arc<Handle>>,
    dirs: HashMap<u64, Listing>,
    next_fh: u64,
}

fn to_system_time(t: &GoTime) -> SystemTime {
    let (s, n) = gotime::to_unix(t);
    if s >= 0 {
        UNIX_EPOCH + Duration::new(s as u64, n)
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(s.unsigned_abs()))
            .and_then(|t| t.checked_add(Duration::from_nanos(u64::from(n))))
            .unwrap_or(UNIX_EPOCH)
    }
}

/// The kernel's 32-bit encoding of a device number (`new_encode_dev`) from glibc's `dev_t`.
fn encode_dev(dev: u64) -> u32 {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)) as u32
}

fn os(name: &[u8]) -> &OsStr {
    OsStr::from_bytes(name)
}

impl CairnFs {
    pub(crate) fn new(shared: Arc<Shared>, opts: MountOptions) -> CairnFs {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let (uid, gid) = if opts.owner_root { (0, 0) } else { (uid, gid) };
        let pool = Pool::new(shared.clone(), opts.read_threads);
        let mut fs = CairnFs {
            shared,
            pool,
            opts,
            uid,
            gid,
            mounted_at: SystemTime::now(),
            inodes: Vec::new(),
            names: HashMap::new(),
            hardlinks: HashMap::new(),
            trees: BoundedCache::new(TREE_CACHE_BYTES),
            layout: Layout::default(),
            snaps: HashMap::new(),
            broken: HashSet::new(),
            last_listed: None,
            files: HashMap::new(),
            dirs: HashMap::new(),
            next_fh: 1,
        };
        let root = fs.layout_dir_attr(1, None);
        fs.inodes.push(Inode {
            attr: root,
            kind: Kind::Layout(String::new()),
            xattrs: None,
        });
        fs
    }

    fn log(&self, msg: &str) {
        (self.shared.log)(msg);
    }

    /// Reads the snapshot list, the first time and whenever the layout is looked at more
    /// than [`RELIST_AFTER`] after the last look; rebuilds the layout (and reloads the index,
    /// which new snapshots' blobs are in) when the set of snapshots changed.
    pub(crate) fn refresh(&mut self) -> anyhow::Result<()> {
        if self.last_listed.is_some_and(|t| t.elapsed() < RELIST_AFTER) {
            return Ok(());
        }
        // The index was loaded just before the first listing.
        let first = self.last_listed.is_none();
        let ids: HashSet<Id> = {
            let repo = self.shared.repo();
            repo.list_ids(RepoFile::Snapshot)?.into_iter().collect()
        };
        self.last_listed = Some(Instant::now());
        let known: HashSet<Id> = self
            .snaps
            .keys()
            .chain(self.broken.iter())
            .copied()
            .collect();
        if ids == known {
            return Ok(());
        }
        let new: Vec<Id> = ids.difference(&known).copied().collect();
        self.snaps.retain(|id, _| ids.contains(id));
        self.broken.retain(|id| ids.contains(id));
        let mut added = 0;
        for id in new {
            let loaded = self.shared.repo().load_snapshot(&id);
            match loaded {
                Ok(snap) => {
                    if self.opts.filter.matches(&snap) {
                        added += 1;
                    }
                    self.snaps.insert(id, Arc::new(SnapRef { id, snap }));
                }
                Err(e) => {
                    self.log(&format!("snapshot {}: {e:#} (left out)", id.short()));
                    self.broken.insert(id);
                }
            }
        }
        if added > 0 && !first {
            // Blobs of the new snapshots are in index files written after ours was read.
            let fresh = self.shared.repo().read_fresh_index()?;
            self.shared.repo_mut().replace_index(fresh);
        }
        let selected: Vec<Arc<SnapRef>> = self
            .snaps
            .values()
            .filter(|s| self.opts.filter.matches(&s.snap))
            .cloned()
            .collect();
        self.layout = Layout::build(
            selected,
            &self.opts.path_templates,
            &self.opts.time_template,
        );
        Ok(())
    }

    fn layout_dir_attr(&self, ino: u64, time: Option<SystemTime>) -> FileAttr {
        let t = time.unwrap_or(self.mounted_at);
        FileAttr {
            ino,
            size: 0,
            blocks: 0,
            atime: t,
            mtime: t,
            ctime: t,
            crtime: t,
            kind: FileType::Directory,
            perm: 0o555,
            nlink: 2,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    fn node_attr(&self, ino: u64, n: &Node) -> FileAttr {
        let kind = match n.kind {
            NodeType::Dir => FileType::Directory,
            NodeType::Symlink => FileType::Symlink,
            NodeType::Dev => FileType::BlockDevice,
            NodeType::Chardev => FileType::CharDevice,
            NodeType::Fifo => FileType::NamedPipe,
            NodeType::Socket => FileType::Socket,
            NodeType::File | NodeType::Other(_) => FileType::RegularFile,
        };
        let size = match n.kind {
            NodeType::File => n.size,
            NodeType::Symlink => n.linktarget.len() as u64,
            _ => 0,
        };
        let (uid, gid) = if self.opts.owner_root {
            (0, 0)
        } else {
            (n.uid, n.gid)
        };
        FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: to_system_time(&n.atime),
            mtime: to_system_time(&n.mtime),
            ctime: to_system_time(&n.ctime),
            crtime: to_system_time(&n.mtime),
            kind,
            perm: (mode::to_unix_perm(n.mode) & 0o7777) as u16,
            nlink: u32::try_from(n.links).unwrap_or(u32::MAX).max(1),
            uid,
            gid,
            rdev: match n.kind {
                NodeType::Dev | NodeType::Chardev => encode_dev(n.device),
                _ => 0,
            },
            blksize: 4096,
            flags: 0,
        }
    }

    fn inode(&self, ino: u64) -> Option<&Inode> {
        self.inodes.get(usize::try_from(ino).ok()?.checked_sub(1)?)
    }

    fn push(&mut self, mut attr: FileAttr, kind: Kind, xattrs: Xattrs) -> u64 {
        let ino = self.inodes.len() as u64 + 1;
        attr.ino = ino;
        self.inodes.push(Inode { attr, kind, xattrs });
        ino
    }

    /// The inode of the layout entry `name` in layout directory `parent` (at `path`),
    /// made or brought up to date.
    fn layout_child(&mut self, parent: u64, path: &str, name: &str) -> Option<u64> {
        let child = if path.is_empty() {
            format!("/{name}")
        } else {
            format!("{path}/{name}")
        };
        let e = self.layout.entries.get(&child)?.clone();
        // A name that comes to stand for another snapshot gets a new inode: the kernel may
        // still hold the old one's contents.
        let mut key = name.as_bytes().to_vec();
        match &e {
            Entry::Snapshot(s) | Entry::Link(_, s) => {
                key.push(0);
                key.extend_from_slice(s.id.to_hex().as_bytes());
            }
            Entry::Dir(_) => {}
        }
        let key = (parent, key.into_boxed_slice());
        let time = match &e {
            Entry::Snapshot(s) | Entry::Link(_, s) => Some(to_system_time(&s.snap.time)),
            Entry::Dir(_) => None,
        };
        if let Some(&ino) = self.names.get(&key) {
            if let Entry::Link(target, _) = &e {
                if let Some(i) = self.inodes.get_mut(ino as usize - 1) {
                    i.kind = Kind::LayoutLink(target.as_bytes().into());
                    i.attr.size = target.len() as u64;
                }
            }
            return Some(ino);
        }
        let ino = match e {
            Entry::Dir(_) => {
                let attr = self.layout_dir_attr(0, None);
                self.push(attr, Kind::Layout(child), None)
            }
            Entry::Snapshot(s) => {
                let attr = self.layout_dir_attr(0, time);
                let ino = self.inodes.len() as u64 + 1;
                self.push(
                    attr,
                    Kind::Dir {
                        tree: Some(s.snap.tree),
                        snap: ino,
                    },
                    None,
                )
            }
            Entry::Link(target, _) => {
                let mut attr = self.layout_dir_attr(0, time);
                attr.kind = FileType::Symlink;
                attr.perm = 0o777;
                attr.nlink = 1;
                attr.size = target.len() as u64;
                self.push(attr, Kind::LayoutLink(target.as_bytes().into()), None)
            }
        };
        self.names.insert(key, ino);
        Some(ino)
    }

    fn tree(&self, id: &Id) -> cairn_core::Result<Arc<Tree>> {
        self.trees.get_or_load(
            id,
            // Parsed nodes take about twice their JSON; the node count stands in for it.
            |t: &Arc<Tree>| t.nodes.len() * 512,
            || Ok(Arc::new(self.shared.repo().load_tree(id)?)),
        )
    }

    /// The inode of node `pos` of directory `parent` (which belongs to snapshot `snap`).
    fn node_child(&mut self, parent: u64, snap: u64, pos: usize, n: &Node) -> u64 {
        let key = (parent, n.name.clone().into_boxed_slice());
        if let Some(&ino) = self.names.get(&key) {
            return ino;
        }
        let link_key = (snap, n.device_id, n.inode);
        let shared_inode = n.kind != NodeType::Dir && n.links > 1 && n.inode != 0;
        if shared_inode {
            if let Some(&ino) = self.hardlinks.get(&link_key) {
                self.names.insert(key, ino);
                return ino;
            }
        }
        let attr = self.node_attr(0, n);
        let kind = match n.kind {
            NodeType::Dir => Kind::Dir {
                tree: n.subtree,
                snap,
            },
            NodeType::Symlink => Kind::Link(n.linktarget.clone().into_boxed_slice()),
            NodeType::File => Kind::File {
                content: n.content.clone().unwrap_or_default().into(),
                parent,
                pos: u32::try_from(pos).unwrap_or(u32::MAX),
            },
            _ => Kind::Other,
        };
        let xattrs = (!n.extended_attributes.is_empty()).then(|| {
            n.extended_attributes
                .iter()
                .map(|x| (x.name.clone(), x.value.clone()))
                .collect()
        });
        let ino = self.push(attr, kind, xattrs);
        self.names.insert(key, ino);
        if shared_inode {
            self.hardlinks.insert(link_key, ino);
        }
        ino
    }

    /// Looks `name` up in directory `parent`; errors are errno values.
    fn do_lookup(&mut self, parent: u64, name: &[u8]) -> Result<u64, libc::c_int> {
        let Some(p) = self.inode(parent) else {
            return Err(libc::ENOENT);
        };
        match &p.kind {
            Kind::Layout(path) => {
                let path = path.clone();
                if let Err(e) = self.refresh() {
                    self.log(&format!("listing snapshots: {e:#}"));
                }
                let name = std::str::from_utf8(name).map_err(|_| libc::ENOENT)?;
                self.layout_child(parent, &path, name).ok_or(libc::ENOENT)
            }
            Kind::Dir { tree, snap } => {
                let (tree, snap) = (*tree, *snap);
                if name_problem(name).is_some() {
                    return Err(libc::ENOENT);
                }
                let Some(tree) = tree else {
                    return Err(libc::ENOENT);
                };
                let t = self.tree(&tree).map_err(|e| {
                    self.log(&format!("tree {}: {e:#}", tree.short()));
                    libc::EIO
                })?;
                // Trees are sorted by name; a forged one may not be.
                let pos = t
                    .nodes
                    .binary_search_by(|n| n.name.as_slice().cmp(name))
                    .ok()
                    .or_else(|| t.nodes.iter().position(|n| n.name == name))
                    .ok_or(libc::ENOENT)?;
                Ok(self.node_child(parent, snap, pos, &t.nodes[pos]))
            }
            _ => Err(libc::ENOTDIR),
        }
    }

    fn listing(&mut self, ino: u64) -> Result<Listing, libc::c_int> {
        let Some(i) = self.inode(ino) else {
            return Err(libc::ENOENT);
        };
        let mut entries = Vec::new();
        match &i.kind {
            Kind::Layout(path) => {
                let path = path.clone();
                if let Err(e) = self.refresh() {
                    self.log(&format!("listing snapshots: {e:#}"));
                }
                let names: Vec<String> = self
                    .layout
                    .children(&path)
                    .map(|c| c.iter().cloned().collect())
                    .unwrap_or_default();
                for name in names {
                    if let Some(c) = self.layout_child(ino, &path, &name) {
                        let kind = self.inodes[c as usize - 1].attr.kind;
                        entries.push((c, kind, name.into_bytes()));
                    }
                }
            }
            Kind::Dir { tree, snap } => {
                let (tree, snap) = (*tree, *snap);
                if let Some(tree) = tree {
                    let t = self.tree(&tree).map_err(|e| {
                        self.log(&format!("tree {}: {e:#}", tree.short()));
                        libc::EIO
                    })?;
                    let mut seen = HashSet::new();
                    for (pos, n) in t.nodes.iter().enumerate() {
                        if let Some(why) = name_problem(&n.name) {
                            self.log(&format!(
                                "tree {}: entry {:?} left out: {why}",
                                tree.short(),
                                n.name_lossy()
                            ));
                            continue;
                        }
                        if !seen.insert(n.name.as_slice()) {
                            self.log(&format!(
                                "tree {}: repeated name {:?} left out",
                                tree.short(),
                                n.name_lossy()
                            ));
                            continue;
                        }
                        let c = self.node_child(ino, snap, pos, n);
                        let kind = self.inodes[c as usize - 1].attr.kind;
                        entries.push((c, kind, n.name.clone()));
                    }
                }
            }
            _ => return Err(libc::ENOTDIR),
        }
        Ok(Listing { entries })
    }

    fn ttl(&self, ino: u64) -> Duration {
        match self.inode(ino).map(|i| &i.kind) {
            Some(Kind::Layout(_)) | Some(Kind::LayoutLink(_)) => TTL_LAYOUT,
            // A snapshot's root lives in a layout directory, where its name may go.
            Some(Kind::Dir { snap, .. }) if *snap == ino => TTL_LAYOUT,
            _ => TTL_SNAPSHOT,
        }
    }

    /// Schedules the first blobs of the files that follow `ino` in its directory: tar, cp -r
    /// and find -exec read a directory's files in listing order, and small files are one
    /// blob each, so the next ones are decrypted while the current one is copied.
    fn read_ahead_next_files(&self, ino: u64) {
        let Some(Inode {
            kind: Kind::File { parent, pos, .. },
            ..
        }) = self.inode(ino)
        else {
            return;
        };
        let Some(Inode {
            kind: Kind::Dir {
                tree: Some(tree), ..
            },
            ..
        }) = self.inode(*parent)
        else {
            return;
        };
        let Some(t) = self.trees.get(tree) else {
            return;
        };
        let repo = self.shared.repo();
        let mut budget = NEXT_FILES_BYTES;
        let mut ids = Vec::new();
        for n in t.nodes.iter().skip(*pos as usize + 1).take(NEXT_FILES_MAX) {
            if n.kind != NodeType::File {
                continue;
            }
            let Some(first) = n.content.as_ref().and_then(|c| c.first()) else {
                continue;
            };
            let size = repo
                .index()
                .plain_size(cairn_core::format::pack::BlobType::Data, first)
                .unwrap_or(u64::MAX);
            if size > budget {
                break;
            }
            budget -= size;
            ids.push(*first);
        }
        drop(repo);
        self.pool.prefetch(ids);
    }
}

impl Filesystem for CairnFs {
    fn init(&mut self, _req: &Request<'_>, config: &mut KernelConfig) -> Result<(), libc::c_int> {
        use fuser::consts::{FUSE_CACHE_SYMLINKS, FUSE_DO_READDIRPLUS};
        // READDIRPLUS answers a listing with every entry's attributes: `ls -l` and find
        // then need no lookup per entry.
        let _ = config.add_capabilities(FUSE_DO_READDIRPLUS);
        let _ = config.add_capabilities(FUSE_CACHE_SYMLINKS);
        let _ = config.set_max_readahead(1 << 20);
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        match self.do_lookup(parent, name.as_bytes()) {
            Ok(ino) => {
                let ttl = self.ttl(ino);
                match self.inode(ino) {
                    Some(i) => reply.entry(&ttl, &i.attr, 0),
                    None => reply.error(libc::EIO),
                }
            }
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        let ttl = self.ttl(ino);
        match self.inode(ino) {
            Some(i) => reply.attr(&ttl, &i.attr),
            None => reply.error(libc::ENOENT),
        }
    }

    fn readlink(&mut self, _req: &Request<'_>, ino: u64, reply: ReplyData) {
        match self.inode(ino).map(|i| &i.kind) {
            Some(Kind::Link(t)) | Some(Kind::LayoutLink(t)) => reply.data(t),
            Some(_) => reply.error(libc::EINVAL),
            None => reply.error(libc::ENOENT),
        }
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        if flags & libc::O_ACCMODE != libc::O_RDONLY {
            return reply.error(libc::EROFS);
        }
        let (content, size) = match self.inode(ino) {
            Some(Inode {
                kind: Kind::File { content, .. },
                attr,
                ..
            }) => (content.clone(), attr.size),
            Some(Inode {
                kind: Kind::Other, ..
            }) => return reply.opened(0, 0),
            Some(_) => return reply.error(libc::EISDIR),
            None => return reply.error(libc::ENOENT),
        };
        let handle = {
            let repo = self.shared.repo();
            Handle::new(&repo, content, size)
        };
        match handle {
            Ok(h) => {
                let fh = self.next_fh;
                self.next_fh += 1;
                self.files.insert(fh, Arc::new(h));
                self.read_ahead_next_files(ino);
                // Contents never change: the page cache may outlive this open.
                reply.opened(fh, fuser::consts::FOPEN_KEEP_CACHE);
            }
            Err(e) => {
                self.log(&format!("inode {ino}: {e:#}"));
                reply.error(libc::EIO)
            }
        }
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let Some(h) = self.files.get(&fh) else {
            return reply.error(libc::EBADF);
        };
        let Ok(offset) = u64::try_from(offset) else {
            return reply.error(libc::EINVAL);
        };
        self.pool.read(h.clone(), offset, size, reply);
    }

    fn release(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        _flags: i32,
        _lock_owner: Option<u64>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.files.remove(&fh);
        reply.ok();
    }

    fn opendir(&mut self, _req: &Request<'_>, ino: u64, _flags: i32, reply: ReplyOpen) {
        match self.listing(ino) {
            Ok(l) => {
                let fh = self.next_fh;
                self.next_fh += 1;
                self.dirs.insert(fh, l);
                reply.opened(fh, 0);
            }
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let Some(l) = self.dirs.get(&fh) else {
            return reply.error(libc::EBADF);
        };
        let start = usize::try_from(offset).unwrap_or(0);
        let dots = [
            (ino, FileType::Directory, &b"."[..]),
            (ino, FileType::Directory, b".."),
        ];
        let all = dots
            .into_iter()
            .chain(l.entries.iter().map(|(i, k, n)| (*i, *k, n.as_slice())));
        for (k, (i, kind, name)) in all.enumerate().skip(start) {
            if reply.add(i, k as i64 + 1, kind, os(name)) {
                break;
            }
        }
        reply.ok();
    }

    fn readdirplus(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        fh: u64,
        offset: i64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let Some(l) = self.dirs.get(&fh) else {
            return reply.error(libc::EBADF);
        };
        let start = usize::try_from(offset).unwrap_or(0);
        let dots = [(ino, &b"."[..]), (ino, b"..")];
        let all = dots
            .into_iter()
            .chain(l.entries.iter().map(|(i, _, n)| (*i, n.as_slice())));
        for (k, (i, name)) in all.enumerate().skip(start) {
            let Some(node) = self.inode(i) else {
                continue;
            };
            let ttl = self.ttl(i);
            if reply.add(i, k as i64 + 1, os(name), &ttl, &node.attr, 0) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        _flags: i32,
        reply: ReplyEmpty,
    ) {
        self.dirs.remove(&fh);
        reply.ok();
    }

    fn getxattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        name: &OsStr,
        size: u32,
        reply: ReplyXattr,
    ) {
        let Some(i) = self.inode(ino) else {
            return reply.error(libc::ENOENT);
        };
        let value = i
            .xattrs
            .iter()
            .flat_map(|x| x.iter())
            .find(|(n, _)| n.as_slice() == name.as_bytes())
            .map(|(_, v)| v);
        match value {
            None => reply.error(libc::ENODATA),
            Some(v) if size == 0 => reply.size(v.len() as u32),
            Some(v) if v.len() > size as usize => reply.error(libc::ERANGE),
            Some(v) => reply.data(v),
        }
    }

    fn listxattr(&mut self, _req: &Request<'_>, ino: u64, size: u32, reply: ReplyXattr) {
        let Some(i) = self.inode(ino) else {
            return reply.error(libc::ENOENT);
        };
        let mut names = Vec::new();
        for (n, _) in i.xattrs.iter().flat_map(|x| x.iter()) {
            names.extend_from_slice(n);
            names.push(0);
        }
        if size == 0 {
            reply.size(names.len() as u32)
        } else if names.len() > size as usize {
            reply.error(libc::ERANGE)
        } else {
            reply.data(&names)
        }
    }
}
