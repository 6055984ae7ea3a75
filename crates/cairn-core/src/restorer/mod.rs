//! Restore: snapshot tree → directories, files (written in parallel, holes for zero blocks),
//! links and special files → metadata, with directory metadata applied last.

pub mod fsops;
mod packs;

use crate::archiver::filter::Excludes;
use crate::format::pack::BlobType;
use crate::format::tree::{name_problem, Node, NodeType, Tree};
use crate::observe::Observer;
use crate::repository::IndexedRepository;
use crate::walk::{self, Visit, Visitor, WalkOptions};
use crate::{Error, Id};
use anyhow::Context;
use fsops::{Dirs, Place, PlanDir, ROOT};
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

pub struct RestoreOptions {
    pub target: PathBuf,
    pub includes: Vec<String>,
    pub excludes: Vec<String>,
    pub verify: bool,
    pub threads: usize,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct RestoreStats {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    pub errors: u64,
    /// Entries left out (see [`RestoreObserver::warning`]).
    pub warnings: u64,
    pub verified: u64,
}

pub(crate) struct FileTask {
    pub(crate) place: Place,
    pub(crate) node: Node,
}

/// What a restore will create: directories (as parent index + name, so that memory does not
/// grow with path lengths), files, hard links and other nodes.
struct Plan {
    dirs: Vec<PlanDir>,
    files: Vec<FileTask>,
    /// (link, the file restored first) for hard links to a file restored elsewhere.
    hardlinks: Vec<(Place, Place, Node)>,
    others: Vec<(Place, Node)>,
}

impl Plan {
    fn entries(&self) -> usize {
        self.dirs.len() + self.files.len() + self.others.len() + self.hardlinks.len()
    }
}

/// Matching for `--include`: an item is restored if it matches, lies under a match, or is a
/// directory on the way to one.
struct Includes {
    any: bool,
    matcher: Excludes,
}

impl Includes {
    fn new(pats: &[String]) -> anyhow::Result<Includes> {
        Ok(Includes {
            any: !pats.is_empty(),
            matcher: Excludes::new(pats)?,
        })
    }
    fn selected(&self, path: &[u8]) -> bool {
        !self.any || self.matcher.matches(path)
    }
    /// Could something below this directory be selected?
    fn may_contain(&self, path: &[u8]) -> bool {
        !self.any || self.matcher.may_match_below(path)
    }
}

/// A directory being walked: its plan index, whether everything below is selected, the plan
/// size when it was entered (to drop it again if nothing below was selected), and the names
/// its tree holds more than once.
struct Open {
    dir: u32,
    all_selected: bool,
    keep_if_empty: bool,
    entries_before: usize,
    repeated: HashSet<Vec<u8>>,
    seen_repeated: HashSet<Vec<u8>>,
}

/// Builds the plan from the one tree walker; what cannot be restored safely is reported and
/// left out.
struct Planner<'a> {
    excludes: &'a Excludes,
    includes: &'a Includes,
    plan: Plan,
    open: Vec<Open>,
    seen_inodes: HashMap<(u64, u64), Place>,
    warnings: Vec<(Vec<u8>, String)>,
    tree_errors: Vec<(Vec<u8>, anyhow::Error)>,
}

impl Planner<'_> {
    fn warn(&mut self, path: &[u8], msg: String) {
        self.warnings.push((path.to_vec(), msg));
    }
}

impl Visitor for Planner<'_> {
    fn tree(&mut self, _path: &[u8], _id: &Id, tree: &Tree) -> anyhow::Result<()> {
        let mut names = HashSet::new();
        let mut repeated = HashSet::new();
        for n in &tree.nodes {
            if !names.insert(n.name.as_slice()) {
                repeated.insert(n.name.clone());
            }
        }
        if let Some(top) = self.open.last_mut() {
            top.repeated = repeated;
        }
        Ok(())
    }

    fn node(&mut self, path: &[u8], node: &Node, _depth: usize) -> anyhow::Result<Visit> {
        let Some(top) = self.open.last_mut() else {
            return Ok(Visit::Skip);
        };
        let parent = top.dir;
        let parent_all = top.all_selected;
        if let Some(why) = name_problem(&node.name) {
            self.warn(path, format!("not restored: unsafe name ({why})"));
            return Ok(Visit::Skip);
        }
        if top.repeated.contains(&node.name) && !top.seen_repeated.insert(node.name.clone()) {
            self.warn(
                path,
                format!(
                    "not restored: a second entry named {:?} in the same directory ({}); the first one was restored",
                    node.name_lossy(),
                    node.kind.as_str()
                ),
            );
            return Ok(Visit::Skip);
        }
        if self.excludes.matches(path) {
            return Ok(Visit::Skip);
        }
        let selected = parent_all || self.includes.selected(path);
        let place = Place {
            dir: parent,
            name: node.name.clone().into_boxed_slice(),
        };
        match node.kind {
            NodeType::Dir => {
                if node.subtree.is_none() {
                    self.warn(path, "not restored: directory has no subtree".into());
                    return Ok(Visit::Skip);
                }
                if !selected && !self.includes.may_contain(path) {
                    return Ok(Visit::Skip);
                }
                let idx = u32::try_from(self.plan.dirs.len())
                    .map_err(|_| anyhow::anyhow!("more than 2^32 directories to restore"))?;
                let mut meta = node.clone();
                meta.subtree = None;
                meta.content = None;
                self.plan.dirs.push(PlanDir {
                    parent,
                    name: place.name,
                    node: Some(meta),
                });
                let before = self.plan.entries();
                self.open.push(Open {
                    dir: idx,
                    all_selected: selected,
                    keep_if_empty: selected,
                    entries_before: before,
                    repeated: HashSet::new(),
                    seen_repeated: HashSet::new(),
                });
                Ok(Visit::Descend)
            }
            _ if !selected => Ok(Visit::Skip),
            NodeType::File => {
                if node.links > 1 && node.inode != 0 {
                    let key = (node.device_id, node.inode);
                    if let Some(first) = self.seen_inodes.get(&key) {
                        self.plan
                            .hardlinks
                            .push((place, first.clone(), node.clone()));
                        return Ok(Visit::Skip);
                    }
                    self.seen_inodes.insert(key, place.clone());
                }
                self.plan.files.push(FileTask {
                    place,
                    node: node.clone(),
                });
                Ok(Visit::Skip)
            }
            NodeType::Symlink | NodeType::Fifo => {
                self.plan.others.push((place, node.clone()));
                Ok(Visit::Skip)
            }
            NodeType::Dev | NodeType::Chardev => {
                if fsops::is_root() {
                    self.plan.others.push((place, node.clone()));
                } else {
                    self.warn(
                        path,
                        format!(
                            "not restored: only root can create a {} node",
                            node.kind.as_str()
                        ),
                    );
                }
                Ok(Visit::Skip)
            }
            // Sockets cannot be restored (restic skips them too); other types are unknown.
            NodeType::Socket => Ok(Visit::Skip),
            NodeType::Other(ref t) => {
                self.warn(path, format!("not restored: unknown node type {t:?}"));
                Ok(Visit::Skip)
            }
        }
    }

    fn tree_error(&mut self, path: &[u8], _id: &Id, err: anyhow::Error) -> anyhow::Result<()> {
        if path.is_empty() {
            return Err(err);
        }
        // The directory was entered in `node`; it stays (empty) and the error is reported.
        self.open.pop();
        self.tree_errors.push((path.to_vec(), err));
        Ok(())
    }

    fn leave(&mut self, _path: &[u8], _node: &Node, _depth: usize) -> anyhow::Result<()> {
        let Some(done) = self.open.pop() else {
            return Ok(());
        };
        // A directory only on the way to includes that matched nothing is not created.
        if !done.keep_if_empty
            && self.plan.entries() == done.entries_before
            && self.plan.dirs.len() == done.dir as usize + 1
        {
            self.plan.dirs.pop();
        }
        Ok(())
    }
}

pub fn restore(
    repo: &IndexedRepository,
    root_tree: Id,
    opts: &RestoreOptions,
    observer: &dyn Observer,
    interrupted: &AtomicBool,
) -> anyhow::Result<RestoreStats> {
    let excludes = Excludes::new(&opts.excludes)?;
    let includes = Includes::new(&opts.includes)?;
    // A new target directory is private until the snapshot's own modes are applied (as restic).
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(&opts.target)
        .with_context(|| format!("create target directory {}", opts.target.display()))?;
    let mut planner = Planner {
        excludes: &excludes,
        includes: &includes,
        plan: Plan {
            dirs: vec![PlanDir {
                parent: ROOT,
                name: Box::default(),
                node: None,
            }],
            files: vec![],
            hardlinks: vec![],
            others: vec![],
        },
        open: vec![Open {
            dir: ROOT,
            all_selected: false,
            keep_if_empty: true,
            entries_before: 0,
            repeated: HashSet::new(),
            seen_repeated: HashSet::new(),
        }],
        seen_inodes: HashMap::new(),
        warnings: Vec::new(),
        tree_errors: Vec::new(),
    };
    walk::walk(
        repo,
        root_tree,
        b"",
        &WalkOptions::interruptible(interrupted),
        &mut planner,
    )?;
    let Planner {
        plan,
        warnings,
        tree_errors,
        ..
    } = planner;
    let in_target = |path: &[u8]| {
        opts.target
            .join(OsStr::from_bytes(path.strip_prefix(b"/").unwrap_or(path)))
    };
    for (path, msg) in &warnings {
        observer.warn_at(&in_target(path), msg);
    }

    let dirs = Dirs::new(&opts.target, &plan.dirs)
        .with_context(|| format!("open target directory {}", opts.target.display()))?;
    let errors = AtomicU64::new(0);
    let report = |p: &Path, e: anyhow::Error| {
        errors.fetch_add(1, Ordering::Relaxed);
        observer.error(p, &e);
    };
    for (path, e) in tree_errors {
        report(&in_target(&path), e);
    }
    let dir_ok = dirs.create_all(|i, e| {
        let p = dirs.display(i);
        report(
            &p,
            anyhow::Error::new(e).context(format!("mkdir {}", p.display())),
        );
    });
    // Regular files: contents pack by pack, in parallel, each file's metadata after its last
    // blob; then the metadata of files without content.
    let threads = opts.threads.max(1);
    let written = packs::write_contents(
        repo,
        &dirs,
        &plan.files,
        &dir_ok,
        threads,
        interrupted,
        &report,
    );
    let bytes = AtomicU64::new(written.bytes);
    let verified = AtomicU64::new(0);
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(t) = plan.files.get(i) else { break };
                // Files without content are created here.
                if written.complete[i] && !written.finished[i] {
                    let res = dirs
                        .create_file(&t.place)
                        .map_err(anyhow::Error::new)
                        .and_then(|f| fsops::apply_fd(f.as_raw_fd(), &t.node));
                    if let Err(e) = res {
                        let p = dirs.display_place(&t.place);
                        report(&p, e.context(format!("metadata of {}", p.display())));
                    }
                }
            });
        }
    });
    if interrupted.load(Ordering::Relaxed) {
        return Err(Error::Interrupted.into());
    }
    for (place, node) in &plan.others {
        if !dir_ok[place.dir as usize] {
            continue;
        }
        let res = dirs
            .create_special(place, node)
            .map_err(anyhow::Error::new)
            .and_then(|_| dirs.metadata(place, node));
        if let Err(e) = res {
            let p = dirs.display_place(place);
            report(
                &p,
                e.context(format!("create {} {}", node.kind.as_str(), p.display())),
            );
        }
    }
    for (place, first, node) in &plan.hardlinks {
        if !dir_ok[place.dir as usize] {
            continue;
        }
        if let Err(e) = dirs.hard_link(first, place) {
            let p = dirs.display_place(place);
            // Fall back to a copy of the content so that no file is lost.
            report(
                &p,
                anyhow::Error::new(e).context(format!("hard link {}", p.display())),
            );
            if let Ok(n) = restore_file(repo, &dirs, place, node) {
                bytes.fetch_add(n, Ordering::Relaxed);
                let _ = dirs.metadata(place, node);
            }
        }
    }
    if opts.verify {
        let vnext = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let i = vnext.fetch_add(1, Ordering::Relaxed);
                    let Some(t) = plan.files.get(i) else { break };
                    if !dir_ok[t.place.dir as usize] {
                        continue;
                    }
                    match verify_file(repo, &dirs, &t.place, &t.node) {
                        Ok(()) => {
                            verified.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => report(&dirs.display_place(&t.place), e),
                    }
                });
            }
        });
    }
    // Directories last and deepest first, so that writing into them does not disturb times.
    for (i, d) in plan.dirs.iter().enumerate().skip(1).rev() {
        let Some(node) = &d.node else { continue };
        if !dir_ok[i] {
            continue;
        }
        if let Err(e) = dirs.dir_metadata(i as u32, node) {
            let p = dirs.display(i as u32);
            report(&p, e.context(format!("metadata of {}", p.display())));
        }
    }
    Ok(RestoreStats {
        files: (plan.files.len() + plan.hardlinks.len()) as u64,
        dirs: (plan.dirs.len() - 1) as u64,
        bytes: bytes.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        warnings: warnings.len() as u64,
        verified: verified.load(Ordering::Relaxed),
    })
}

/// Writes one file's content; zero blocks are skipped to leave holes.
fn restore_file(
    repo: &IndexedRepository,
    dirs: &Dirs,
    place: &Place,
    node: &Node,
) -> anyhow::Result<u64> {
    let path = dirs.display_place(place);
    let f = dirs
        .create_file(place)
        .with_context(|| format!("create {}", path.display()))?;
    let mut offset = 0u64;
    let ids = node.content.as_deref().unwrap_or(&[]);
    // Blobs repeated within a file (zero runs, copies) are loaded once.
    let mut last: Option<(Id, std::sync::Arc<Vec<u8>>)> = None;
    for id in ids {
        let data = match &last {
            Some((lid, d)) if lid == id => d.clone(),
            _ => {
                let d = std::sync::Arc::new(
                    repo.load_blob(BlobType::Data, id)
                        .with_context(|| format!("file {}", path.display()))?,
                );
                last = Some((*id, d.clone()));
                d
            }
        };
        if !is_zero(&data) {
            f.write_all_at(&data, offset)
                .with_context(|| format!("write {}", path.display()))?;
        }
        offset += data.len() as u64;
    }
    // Extends over a trailing hole and fixes the size.
    f.set_len(offset)
        .with_context(|| format!("truncate {}", path.display()))?;
    Ok(offset)
}

fn is_zero(b: &[u8]) -> bool {
    let (pre, mid, post) = unsafe { b.align_to::<u128>() };
    pre.iter().all(|x| *x == 0) && mid.iter().all(|x| *x == 0) && post.iter().all(|x| *x == 0)
}

fn verify_file(
    repo: &IndexedRepository,
    dirs: &Dirs,
    place: &Place,
    node: &Node,
) -> anyhow::Result<()> {
    let path = dirs.display_place(place);
    let f = dirs
        .open_file(place, false)
        .with_context(|| format!("verify {}: open", path.display()))?;
    let mut offset = 0u64;
    let mut buf = Vec::new();
    for id in node.content.as_deref().unwrap_or(&[]) {
        let size = repo
            .index()
            .plain_size(BlobType::Data, id)
            .ok_or(Error::BlobNotFound(*id))? as usize;
        buf.resize(size, 0);
        f.read_exact_at(&mut buf, offset)
            .with_context(|| format!("verify {}: read at {offset}", path.display()))?;
        if Id::hash(&buf) != *id {
            anyhow::bail!(
                "verify {}: content at offset {offset} does not match blob {}",
                path.display(),
                id.short()
            );
        }
        offset += size as u64;
    }
    let len = f.metadata()?.len();
    if len != offset {
        anyhow::bail!("verify {}: size {len}, expected {offset}", path.display());
    }
    Ok(())
}
