//! Restore: snapshot tree → directories, files (written in parallel, holes for zero blocks),
//! links and special files → metadata, with directory metadata applied last.

pub mod fsops;
mod packs;

use crate::archiver::filter::{Excludes, PatternSet};
use crate::format::pack::BlobType;
use crate::format::tree::{name_problem, Node, NodeType, Tree};
use crate::observe::{Event, Observer, RestoreAction};
use crate::repository::IndexedRepository;
use crate::walk::{self, Visit, Visitor, WalkOptions};
use crate::{Error, Id, Object};
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
    /// `--iinclude` / `--iexclude`: patterns that ignore case.
    pub iincludes: Vec<String>,
    pub iexcludes: Vec<String>,
    pub verify: bool,
    pub threads: usize,
    /// What to do with entries that already exist in the target.
    pub overwrite: Overwrite,
    /// Remove what the target holds and the snapshot does not (within the selection).
    pub delete: bool,
    /// Decide and report everything, change nothing.
    pub dry_run: bool,
    /// Leave runs of zero bytes as holes instead of writing them.
    pub sparse: bool,
    /// restic 0.18's `--exclude-xattr` / `--include-xattr`: patterns on extended attribute
    /// names (at most one of the two lists is used; none restores every attribute).
    pub xattr_excludes: Vec<String>,
    pub xattr_includes: Vec<String>,
}

impl Default for RestoreOptions {
    fn default() -> RestoreOptions {
        RestoreOptions {
            target: PathBuf::new(),
            includes: vec![],
            excludes: vec![],
            iincludes: vec![],
            iexcludes: vec![],
            verify: false,
            threads: 2,
            overwrite: Overwrite::Always,
            delete: false,
            dry_run: false,
            sparse: false,
            xattr_excludes: vec![],
            xattr_includes: vec![],
        }
    }
}

/// restic 0.18's `--overwrite`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Overwrite {
    /// Replace what is there; a file whose content already matches is left (metadata only).
    #[default]
    Always,
    /// As `Always`, but a file with the snapshot's size and modification time is trusted to
    /// match without reading it.
    IfChanged,
    /// Replace only what is older than the snapshot's entry.
    IfNewer,
    /// Never replace anything that exists.
    Never,
}

impl std::str::FromStr for Overwrite {
    type Err = String;
    fn from_str(s: &str) -> Result<Overwrite, String> {
        Ok(match s {
            "always" => Overwrite::Always,
            "if-changed" => Overwrite::IfChanged,
            "if-newer" => Overwrite::IfNewer,
            "never" => Overwrite::Never,
            _ => {
                return Err(format!(
                    "invalid overwrite behavior {s:?}, must be one of (always|if-changed|if-newer|never)"
                ))
            }
        })
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct RestoreStats {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    /// Files (and other entries) left as they were, and their size.
    pub skipped: u64,
    pub bytes_skipped: u64,
    /// Entries `delete` removed (or would remove).
    pub deleted: u64,
    pub errors: u64,
    /// Entries left out (see [`Event::Warning`]).
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
    /// Per directory (with `delete`): every name its tree holds, selected or not.
    expected: Vec<HashSet<Box<[u8]>>>,
    /// Per directory: everything below it is selected.
    all_selected: Vec<bool>,
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
    matcher: PatternSet,
}

impl Includes {
    fn new(pats: &[String], folded: &[String]) -> anyhow::Result<Includes> {
        Ok(Includes {
            any: !pats.is_empty() || !folded.is_empty(),
            matcher: PatternSet::new(pats, folded)?,
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

/// Which extended attributes are restored, by name: restic's glob patterns, either
/// excluding or including (not both).
enum XattrFilter {
    All,
    Exclude(Excludes),
    Include(Excludes),
}

impl XattrFilter {
    fn new(excludes: &[String], includes: &[String]) -> anyhow::Result<XattrFilter> {
        Ok(match (excludes.is_empty(), includes.is_empty()) {
            (true, true) => XattrFilter::All,
            (false, false) => {
                anyhow::bail!("exclude and include xattr patterns are mutually exclusive")
            }
            (false, true) => XattrFilter::Exclude(
                Excludes::new(excludes).map_err(|e| anyhow::anyhow!("--exclude-xattr: {e}"))?,
            ),
            (true, false) => XattrFilter::Include(
                Excludes::new(includes).map_err(|e| anyhow::anyhow!("--include-xattr: {e}"))?,
            ),
        })
    }

    /// The node without the attributes left out, or None when it keeps them all.
    fn filter(&self, node: &Node) -> Option<Node> {
        let keep = |name: &[u8]| match self {
            XattrFilter::All => true,
            XattrFilter::Exclude(p) => !p.matches(name),
            XattrFilter::Include(p) => p.matches(name),
        };
        if node.extended_attributes.iter().all(|x| keep(&x.name)) {
            return None;
        }
        let mut n = node.clone();
        n.extended_attributes.retain(|x| keep(&x.name));
        Some(n)
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
    excludes: &'a PatternSet,
    xattrs: &'a XattrFilter,
    track_names: bool,
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
            if self.track_names {
                if let Some(e) = self.plan.expected.get_mut(top.dir as usize) {
                    *e = tree.nodes.iter().map(|n| n.name.clone().into()).collect();
                }
            }
        }
        Ok(())
    }

    fn node(&mut self, path: &[u8], node: &Node, _depth: usize) -> anyhow::Result<Visit> {
        // Extended attributes the filter leaves out never enter the plan.
        let filtered;
        let node = match self.xattrs.filter(node) {
            Some(n) => {
                filtered = n;
                &filtered
            }
            None => node,
        };
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
                self.plan.expected.push(HashSet::new());
                self.plan.all_selected.push(selected);
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
            self.plan.expected.pop();
            self.plan.all_selected.pop();
        }
        Ok(())
    }
}

/// What to do with one regular file of the plan.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FileChoice {
    /// Write it; `update` when a regular file with other content is there.
    Write { update: bool },
    /// Its content is there already: apply the metadata only.
    MetadataOnly,
    /// `--overwrite` keeps what is there.
    Keep,
}

/// Does `--overwrite` allow replacing what is at the place (for any kind of entry)?
fn may_replace(overwrite: Overwrite, existing: &fsops::Existing, node: &Node) -> bool {
    match (overwrite, existing.mtime()) {
        (_, None) | (Overwrite::Always | Overwrite::IfChanged, _) => true,
        (Overwrite::Never, Some(_)) => false,
        (Overwrite::IfNewer, Some(there)) => {
            let (s, n) = crate::format::gotime::to_unix(&node.mtime);
            (s, n as i64) > there
        }
    }
}

/// Decides a regular file: what is at its place, and whether its content matches.
fn choose_file(
    repo: &IndexedRepository,
    dirs: Option<&Dirs>,
    task: &FileTask,
    overwrite: Overwrite,
) -> FileChoice {
    let Some(dirs) = dirs else {
        return FileChoice::Write { update: false };
    };
    let existing = fsops::lstat_at(dirs, &task.place).unwrap_or(fsops::Existing::Nothing);
    if !may_replace(overwrite, &existing, &task.node) {
        return FileChoice::Keep;
    }
    let fsops::Existing::File { size, mtime } = existing else {
        return FileChoice::Write { update: false };
    };
    if overwrite == Overwrite::IfChanged && size == task.node.size {
        let (s, n) = crate::format::gotime::to_unix(&task.node.mtime);
        if (s, n as i64) == mtime {
            return FileChoice::MetadataOnly;
        }
    }
    if size == task.node.size && verify_file(repo, dirs, &task.place, &task.node).is_ok() {
        FileChoice::MetadataOnly
    } else {
        FileChoice::Write { update: true }
    }
}

pub fn restore(
    repo: &IndexedRepository,
    root_tree: Id,
    opts: &RestoreOptions,
    observer: &dyn Observer,
    interrupted: &AtomicBool,
) -> crate::Result<RestoreStats> {
    let excludes = PatternSet::new(&opts.excludes, &opts.iexcludes)?;
    let includes = Includes::new(&opts.includes, &opts.iincludes)?;
    let dry = opts.dry_run;
    if !dry {
        // A new target directory is private until the snapshot's own modes are applied (as
        // restic does).
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&opts.target)
            .with_context(|| format!("create target directory {}", opts.target.display()))?;
    }
    let xattrs = XattrFilter::new(&opts.xattr_excludes, &opts.xattr_includes)?;
    let mut planner = Planner {
        excludes: &excludes,
        xattrs: &xattrs,
        track_names: opts.delete,
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
            expected: vec![HashSet::new()],
            all_selected: vec![false],
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
    // What progress is measured against (restic counts files, directories and other
    // entries alike, and the bytes of the files).
    observer.event(Event::RestorePlanned {
        entries: (plan.files.len()
            + plan.hardlinks.len()
            + plan.others.len()
            + plan.dirs.len().saturating_sub(1)) as u64,
        bytes: plan.files.iter().map(|f| f.node.size).sum(),
    });

    // A dry run into a target that does not exist finds nothing there.
    let dirs = match Dirs::new(&opts.target, &plan.dirs) {
        Ok(d) => Some(d),
        Err(e) if dry && e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Error::Io {
                path: Some(opts.target.clone()),
                context: crate::error::Context::new(vec![format!(
                    "open target directory {}",
                    opts.target.display()
                )]),
                cause: e,
            })
        }
    };
    let errors = AtomicU64::new(0);
    let report = |p: &Path, e: anyhow::Error| {
        errors.fetch_add(1, Ordering::Relaxed);
        observer.error(p, &e);
    };
    let item = |path: &Path, action: RestoreAction, size: u64| {
        observer.event(Event::Restored { path, action, size });
    };
    let place_of = |place: &Place| fsops::location(&plan.dirs, place);
    for (path, e) in tree_errors {
        report(&in_target(&path), e);
    }
    let dir_ok = match (&dirs, dry) {
        (Some(d), false) => d.create_all(|i, e| {
            let p = d.display(i);
            report(
                &p,
                anyhow::Error::new(e).context(format!("mkdir {}", p.display())),
            );
        }),
        _ => vec![true; plan.dirs.len()],
    };
    let threads = opts.threads.max(1);

    // Regular files: what is in the target decides, file by file (in parallel: deciding may
    // mean reading a file to compare it).
    let choices: Vec<FileChoice> =
        crate::util::parallel::parallel_map(&plan.files, threads, |t| -> crate::Result<_> {
            if !dir_ok[t.place.dir as usize] || interrupted.load(Ordering::Relaxed) {
                return Ok(FileChoice::Keep);
            }
            Ok(choose_file(repo, dirs.as_ref(), t, opts.overwrite))
        })?;
    if interrupted.load(Ordering::Relaxed) {
        return Err(Error::Interrupted);
    }
    let mut skipped = 0u64;
    let mut bytes_skipped = 0u64;
    let mut to_write: Vec<&FileTask> = Vec::new();
    let mut updates: Vec<bool> = Vec::new();
    let mut metadata_only: Vec<&FileTask> = Vec::new();
    for (t, c) in plan.files.iter().zip(&choices) {
        match c {
            FileChoice::Write { update } => {
                to_write.push(t);
                updates.push(*update);
            }
            FileChoice::MetadataOnly | FileChoice::Keep => {
                if dir_ok[t.place.dir as usize] {
                    skipped += 1;
                    bytes_skipped += t.node.size;
                    item(
                        &place_of(&t.place),
                        RestoreAction::FileUnchanged,
                        t.node.size,
                    );
                }
                if *c == FileChoice::MetadataOnly {
                    metadata_only.push(t);
                }
            }
        }
    }
    let file_action = |update: bool| {
        if update {
            RestoreAction::FileUpdated
        } else {
            RestoreAction::FileRestored
        }
    };
    let bytes = AtomicU64::new(0);
    let verified = AtomicU64::new(0);
    if let (Some(dirs), false) = (&dirs, dry) {
        let files: Vec<FileTask> = to_write
            .iter()
            .map(|t| FileTask {
                place: t.place.clone(),
                node: t.node.clone(),
            })
            .collect();
        // Contents pack by pack, in parallel, each file's metadata after its last blob; then
        // the files without content.
        let written = packs::write_contents(
            repo,
            dirs,
            &files,
            &dir_ok,
            packs::Writing {
                threads,
                sparse: opts.sparse,
                wrote: &|n| observer.event(Event::RestoreBytes { bytes: n }),
            },
            interrupted,
            &report,
        );
        bytes.fetch_add(written.bytes, Ordering::Relaxed);
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(t) = files.get(i) else { break };
                    if written.complete[i] && !written.finished[i] {
                        let res = dirs
                            .create_file(&t.place)
                            .map_err(Error::from)
                            .and_then(|f| fsops::apply_fd(f.as_raw_fd(), &t.node));
                        if let Err(e) = res {
                            let p = dirs.display_place(&t.place);
                            let e = anyhow::Error::from(e);
                            report(&p, e.context(format!("metadata of {}", p.display())));
                            continue;
                        }
                    }
                    if written.complete[i] {
                        item(&place_of(&t.place), file_action(updates[i]), t.node.size);
                    }
                });
            }
        });
        if interrupted.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        for t in &metadata_only {
            if let Err(e) = dirs.metadata(&t.place, &t.node) {
                let p = dirs.display_place(&t.place);
                let e = anyhow::Error::from(e);
                report(&p, e.context(format!("metadata of {}", p.display())));
            }
        }
        if opts.verify {
            let vnext = AtomicUsize::new(0);
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| loop {
                        let i = vnext.fetch_add(1, Ordering::Relaxed);
                        let Some(t) = files.get(i) else { break };
                        if !dir_ok[t.place.dir as usize] {
                            continue;
                        }
                        match verify_file(repo, dirs, &t.place, &t.node) {
                            Ok(()) => {
                                verified.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => report(&dirs.display_place(&t.place), e),
                        }
                    });
                }
            });
        }
    } else {
        for (t, update) in to_write.iter().zip(&updates) {
            bytes.fetch_add(t.node.size, Ordering::Relaxed);
            item(&place_of(&t.place), file_action(*update), t.node.size);
        }
    }

    // Symlinks, fifos and devices, then hard links: replaced only where --overwrite allows.
    let allowed = |place: &Place, node: &Node| -> bool {
        match &dirs {
            Some(d) => {
                let there = fsops::lstat_at(d, place).unwrap_or(fsops::Existing::Nothing);
                may_replace(opts.overwrite, &there, node)
            }
            None => true,
        }
    };
    let mut others_done = 0u64;
    // Where the entry is to be written, or None when it is kept (or only reported: dry run).
    let mut gate = |place: &Place, node: &Node| -> Option<&Dirs> {
        if !dir_ok[place.dir as usize] {
            return None;
        }
        if !allowed(place, node) {
            skipped += 1;
            item(&place_of(place), RestoreAction::FileUnchanged, 0);
            return None;
        }
        others_done += 1;
        let d = dirs.as_ref().filter(|_| !dry);
        if d.is_none() {
            item(&place_of(place), RestoreAction::OtherRestored, 0);
        }
        d
    };
    for (place, node) in &plan.others {
        let Some(d) = gate(place, node) else {
            continue;
        };
        let res = d
            .create_special(place, node)
            .map_err(Error::from)
            .and_then(|_| d.metadata(place, node));
        match res {
            Ok(()) => item(&place_of(place), RestoreAction::OtherRestored, 0),
            Err(e) => {
                let p = d.display_place(place);
                report(
                    &p,
                    anyhow::Error::from(e).context(format!(
                        "create {} {}",
                        node.kind.as_str(),
                        p.display()
                    )),
                );
            }
        }
    }
    for (place, first, node) in &plan.hardlinks {
        let Some(d) = gate(place, node) else {
            continue;
        };
        if let Err(e) = d.hard_link(first, place) {
            let p = d.display_place(place);
            // Fall back to a copy of the content so that no file is lost.
            report(
                &p,
                anyhow::Error::new(e).context(format!("hard link {}", p.display())),
            );
            if let Ok(n) = restore_file(repo, d, place, node, opts.sparse) {
                bytes.fetch_add(n, Ordering::Relaxed);
                let _ = d.metadata(place, node);
            }
        } else {
            item(&place_of(place), RestoreAction::OtherRestored, 0);
        }
    }

    // --delete: what each restored directory holds beyond its tree, within the selection.
    let mut deleted = 0u64;
    if opts.delete {
        if let Some(d) = &dirs {
            for (i, expected) in plan.expected.iter().enumerate() {
                if !dir_ok[i] || interrupted.load(Ordering::Relaxed) {
                    continue;
                }
                let i = i as u32;
                let names = match d.names_in(i) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && dry => continue,
                    Err(e) => {
                        let p = d.display(i);
                        report(
                            &p,
                            anyhow::Error::new(e).context(format!("list {}", p.display())),
                        );
                        continue;
                    }
                };
                let base = fsops::dir_location(&plan.dirs, i);
                for name in names {
                    if expected.contains(name.as_slice()) {
                        continue;
                    }
                    let loc = base.join(OsStr::from_bytes(&name));
                    let loc = loc.as_os_str().as_bytes();
                    let selected = plan.all_selected[i as usize] || includes.selected(loc);
                    if excludes.matches(loc) || !selected {
                        continue;
                    }
                    let dir_path = d.display(i);
                    let res = d.remove_tree(i, &name, dry, &mut |rel| {
                        deleted += 1;
                        let p = dir_path.join(OsStr::from_bytes(rel));
                        let p = std::path::absolute(&p).unwrap_or(p);
                        item(&p, RestoreAction::Deleted, 0);
                    });
                    if let Err(e) = res {
                        let p = dir_path.join(OsStr::from_bytes(&name));
                        report(
                            &p,
                            anyhow::Error::new(e).context(format!("delete {}", p.display())),
                        );
                    }
                }
            }
        }
    }

    // Directories last and deepest first, so that writing into them does not disturb times.
    for (i, pd) in plan.dirs.iter().enumerate().skip(1).rev() {
        let Some(node) = &pd.node else { continue };
        if !dir_ok[i] {
            continue;
        }
        if let (Some(d), false) = (&dirs, dry) {
            if let Err(e) = d.dir_metadata(i as u32, node) {
                let p = d.display(i as u32);
                let e = anyhow::Error::from(e);
                report(&p, e.context(format!("metadata of {}", p.display())));
                continue;
            }
        }
        item(
            &fsops::dir_location(&plan.dirs, i as u32),
            RestoreAction::DirRestored,
            0,
        );
    }
    Ok(RestoreStats {
        files: to_write.len() as u64 + others_done,
        dirs: (plan.dirs.len() - 1) as u64,
        bytes: bytes.load(Ordering::Relaxed),
        skipped,
        bytes_skipped,
        deleted,
        errors: errors.load(Ordering::Relaxed),
        warnings: warnings.len() as u64,
        verified: verified.load(Ordering::Relaxed),
    })
}

/// Writes one file's content; with `sparse`, zero blocks are skipped to leave holes.
fn restore_file(
    repo: &IndexedRepository,
    dirs: &Dirs,
    place: &Place,
    node: &Node,
    sparse: bool,
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
        if !sparse || !is_zero(&data) {
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
        let size = repo.index().plain_size(BlobType::Data, id).ok_or_else(|| {
            Error::not_found(Object::Blob(*id), format!("blob {id} not found in index"))
        })? as usize;
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
