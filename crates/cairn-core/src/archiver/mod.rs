//! Backup: walk → read → chunk → hash → skip known → compress → encrypt → pack → upload →
//! index → snapshot.
//!
//! A pool of walker threads lists directories (mostly depth first) and compares each entry
//! with the parent snapshot; changed regular files go to a pool of reader threads that chunk
//! and hash them and hand new blobs to blob workers, which compress and encrypt them for the
//! [`BlobWriter`]'s packs and uploads. Tree blobs are built bottom-up as entries arrive
//! (`assembly.rs`), on whichever thread completes a directory. Bounded queues keep memory flat
//! however large the tree is.

mod assembly;
pub mod filter;
pub mod metadata;
pub mod resume;
pub mod select;
mod work_stack;

use crate::chunker::{ChunkReader, ChunkerTables};
use crate::format::gotime::GoTime;
use crate::format::pack::BlobType;
use crate::format::snapshot::{Snapshot, SnapshotSummary};
use crate::format::tree::{Node, NodeType, Tree};
use crate::observe::{Event, Observer};
use crate::packer::{BlobWriter, Compression, WriterStats};
use crate::repository::IndexedRepository;
use crate::{Error, Id};
use anyhow::Context;
use assembly::{Dir, DirDone, FinishDir, Slot};
use cairn_backend::FileType;
use crossbeam_channel::{bounded, Receiver, Sender};
use metadata::NameCache;
use select::{SelectOptions, Selection};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use work_stack::WorkStack;

#[derive(Default)]
pub struct BackupOptions {
    pub paths: Vec<PathBuf>,
    pub select: SelectOptions,
    /// Read and chunk everything, but write nothing.
    pub dry_run: bool,
    /// Write no snapshot when nothing changed since the parent.
    pub skip_if_unchanged: bool,
    pub tags: Vec<String>,
    pub hostname: String,
    pub time: Option<GoTime>,
    pub compression: Compression,
    pub with_atime: bool,
    /// Reader threads; 0 = one per core.
    pub read_concurrency: usize,
    /// The snapshot whose unchanged files need not be read again.
    pub parent: Option<(Id, Snapshot)>,
    /// Do not treat a changed ctime as a changed file.
    pub ignore_ctime: bool,
    /// Do not treat a changed inode number as a changed file.
    pub ignore_inode: bool,
    /// The resume log for this backup (see [`resume`]); None disables resuming.
    pub resume_log: Option<PathBuf>,
    pub program_version: String,
}

#[derive(Debug, Clone)]
pub struct BackupResult {
    /// Files not read because an interrupted earlier run had stored them.
    pub files_resumed: u64,
    /// None for a dry run, or when `skip_if_unchanged` found nothing changed.
    pub snapshot_id: Option<Id>,
    pub summary: SnapshotSummary,
    pub writer: WriterStats,
    pub errors: u64,
}

struct Stats {
    files_new: AtomicU64,
    /// New files taken from an interrupted run's checkpoints instead of being read.
    files_resumed: AtomicU64,
    files_changed: AtomicU64,
    files_unmodified: AtomicU64,
    dirs_new: AtomicU64,
    dirs_changed: AtomicU64,
    dirs_unmodified: AtomicU64,
    files: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

/// A chunk on its way to the blob workers, with the file it belongs to.
type BlobJob = (Id, Vec<u8>, std::sync::Arc<FileTrack>);

/// How many of a file's parts (its blobs, and the reading) are not stored yet, and its resume
/// entry, released when the count reaches zero.
struct FileTrack {
    pending: AtomicUsize,
    entry: std::sync::Mutex<Option<resume::Entry>>,
}

struct FileJob<'c> {
    path: PathBuf,
    node: Node,
    /// The file was in the parent snapshot (so it counts as changed, not new).
    in_parent: bool,
    reply: Slot<'c>,
}

struct Ctx<'a, 'w> {
    repo: &'w IndexedRepository,
    writer: &'w BlobWriter<'a>,
    ignore_ctime: bool,
    ignore_inode: bool,
    tables: &'w ChunkerTables,
    select: Selection,
    names: NameCache,
    with_atime: bool,
    observer: &'w dyn Observer,
    interrupted: &'w AtomicBool,
    stats: Stats,
    /// Files of an interrupted earlier run of this backup, by path.
    resumable: HashMap<Vec<u8>, resume::Entry>,
    resume_enabled: bool,
    /// Files whose blobs are all stored, waiting for the next checkpoint.
    stored: std::sync::Mutex<Vec<resume::Entry>>,
    /// The first error that must fail the whole backup (as opposed to a skipped file).
    fatal: std::sync::Mutex<Option<anyhow::Error>>,
    aborted: AtomicBool,
}

/// A directory to list, and where its node goes once its tree is stored.
struct WalkJob<'c> {
    path: PathBuf,
    node: Node,
    /// The same directory's tree in the parent snapshot, if it had one.
    parent_tree: Option<Id>,
    /// The device `--one-file-system` keeps to.
    dev: Option<u64>,
    up: Slot<'c>,
}

/// Where the walk sends work: files to the readers, directories to the walkers.
struct Queues<'q, 'c> {
    files: Sender<FileJob<'c>>,
    dirs: &'q WorkStack<WalkJob<'c>>,
}

impl<'a, 'w> Ctx<'a, 'w> {
    fn stopping(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed) || self.aborted.load(Ordering::Relaxed)
    }

    fn check_interrupt(&self) -> anyhow::Result<()> {
        if self.stopping() {
            return Err(Error::Interrupted.into());
        }
        Ok(())
    }

    /// An error that must fail the backup (the repository cannot be written): remember the
    /// first and stop every stage.
    fn fail(&self, e: anyhow::Error) {
        crate::packer::lock(&self.fatal).get_or_insert(e);
        self.aborted.store(true, Ordering::SeqCst);
    }

    /// Compresses, encrypts and packs data blobs handed over by the readers.
    fn blob_worker(&self, blobs: Receiver<BlobJob>) {
        for (id, data, track) in blobs.iter() {
            if self.aborted.load(Ordering::Relaxed) {
                continue;
            }
            match self.writer.save(BlobType::Data, id, &data) {
                Ok(_) => self.blob_stored(&track),
                Err(e) => self.fail(e.into()),
            }
        }
    }

    /// One of a file's blobs (or its reading, which counts as one) is done; the last one makes
    /// the file eligible for the next checkpoint.
    fn blob_stored(&self, track: &FileTrack) {
        if track.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(e) = crate::packer::lock(&track.entry).take() {
                crate::packer::lock(&self.stored).push(e);
            }
        }
    }

    /// Makes everything stored so far durable, then records the files it completes.
    fn checkpoint(&self, log: &std::sync::Mutex<resume::Log>) -> anyhow::Result<()> {
        let done = std::mem::take(&mut *crate::packer::lock(&self.stored));
        if done.is_empty() {
            return Ok(());
        }
        self.writer.checkpoint()?;
        let packs = self.writer.take_stored_packs();
        Ok(crate::packer::lock(log).append(&done, &packs)?)
    }

    /// Logs the finished files whose blobs are all in stored packs, without waiting for a
    /// checkpoint to index them (see [`resume`]); the others wait for the next round.
    fn log_stored(&self, log: &std::sync::Mutex<resume::Log>) -> anyhow::Result<()> {
        // Taken before the files: a file counts as ready only if its packs are among these
        // or were logged before.
        let packs = self.writer.take_stored_packs();
        let done = std::mem::take(&mut *crate::packer::lock(&self.stored));
        let (ready, wait): (Vec<_>, Vec<_>) = done
            .into_iter()
            .partition(|e| self.writer.all_stored(e.blobs()));
        crate::packer::lock(&self.stored).extend(wait);
        Ok(crate::packer::lock(log).append(&ready, &packs)?)
    }

    fn report(&self, path: &Path, err: anyhow::Error) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        self.observer.error(path, &err);
    }

    /// Reads, chunks and stores one regular file, filling in its content list.
    fn save_file(
        &self,
        path: &Path,
        mut node: Node,
        in_parent: bool,
        blobs: &Sender<BlobJob>,
    ) -> anyhow::Result<Node> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .with_context(|| format!("open {}", path.display()))?;
        let mut reader = ChunkReader::new(self.tables, f);
        // Reading itself counts as one pending part, so the file cannot complete early.
        let track = std::sync::Arc::new(FileTrack {
            pending: AtomicUsize::new(1),
            entry: std::sync::Mutex::new(None),
        });
        let mut content = Vec::new();
        let mut size = 0u64;
        let mut added = 0u64;
        while let Some(chunk) = reader
            .next_chunk()
            .with_context(|| format!("read {}", path.display()))?
        {
            self.check_interrupt()?;
            let id = Id::hash(&chunk);
            size += chunk.len() as u64;
            content.push(id);
            if !self.writer.is_known(BlobType::Data, &id) {
                added += chunk.len() as u64;
                // Compression and encryption happen on the blob workers, so one large file
                // keeps every core busy.
                track.pending.fetch_add(1, Ordering::AcqRel);
                blobs
                    .send((id, chunk, track.clone()))
                    .map_err(|_| Error::Interrupted)?;
            }
        }
        node.size = size;
        node.content = Some(content);
        if self.resume_enabled {
            *crate::packer::lock(&track.entry) = Some(resume::Entry::from_node(path, &node));
        }
        self.blob_stored(&track);
        self.stats.files.fetch_add(1, Ordering::Relaxed);
        if in_parent {
            self.stats.files_changed.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.files_new.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.bytes.fetch_add(size, Ordering::Relaxed);
        self.observer.event(Event::FileSaved {
            path,
            bytes: size,
            added,
        });
        Ok(node)
    }

    fn file_worker(&self, jobs: Receiver<FileJob<'_>>, blobs: Sender<BlobJob>) {
        for job in jobs.iter() {
            let res = if self.stopping() {
                None
            } else {
                match self.save_file(&job.path, job.node, job.in_parent, &blobs) {
                    Ok(n) => Some(n),
                    Err(e) => {
                        if !matches!(e.downcast_ref::<Error>(), Some(Error::Interrupted)) {
                            self.report(&job.path, e);
                        }
                        None
                    }
                }
            };
            job.reply.deliver(res);
        }
    }

    /// Stores a tree blob and returns its id.
    fn save_tree(&self, mut tree: Tree) -> anyhow::Result<Id> {
        tree.sort()?;
        let json = tree.to_json();
        let id = Id::hash(&json);
        self.writer.save(BlobType::Tree, id, &json)?;
        Ok(id)
    }

    fn lstat_node(&self, name: &OsStr, path: &Path) -> anyhow::Result<(Node, std::fs::Metadata)> {
        let meta =
            std::fs::symlink_metadata(path).with_context(|| format!("lstat {}", path.display()))?;
        let node = metadata::node_from_metadata(name, path, &meta, &self.names, self.with_atime);
        Ok((node, meta))
    }

    /// restic's change detection: a file whose type, size, mtime, ctime and inode match its
    /// node in the parent snapshot, and all of whose blobs are stored, need not be read.
    fn unchanged(&self, old: &Node, new: &Node) -> bool {
        old.kind == NodeType::File
            && old.size == new.size
            && old.mtime == new.mtime
            && (self.ignore_ctime || old.ctime == new.ctime)
            && (self.ignore_inode || old.inode == new.inode)
            && old
                .content
                .as_ref()
                .is_some_and(|c| c.iter().all(|id| self.writer.is_known(BlobType::Data, id)))
    }

    /// The parent snapshot's tree for a directory, or None (with a warning) if it cannot be read.
    fn parent_tree(&self, path: &Path, id: Option<Id>) -> Option<Tree> {
        let id = id?;
        match self.repo.load_tree(&id) {
            Ok(t) => Some(t),
            Err(e) => {
                self.observer.error(
                    path,
                    &anyhow::Error::from(e)
                        .context("parent snapshot tree unreadable; reading all files here"),
                );
                None
            }
        }
    }

    /// Turns one path into a node delivered to `slot`: unchanged files reuse their parent
    /// node's content, other files are queued for the readers, directories for the walkers.
    /// `dev` is the device this walk may not leave with `--one-file-system` (None at a target).
    fn visit<'c>(
        &self,
        name: &OsStr,
        path: &Path,
        q: &Queues<'_, 'c>,
        parent: Option<&Node>,
        dev: Option<u64>,
        slot: Slot<'c>,
    ) -> anyhow::Result<()> {
        self.check_interrupt()?;
        if self.select.excluded_path(path) {
            return Ok(());
        }
        let (mut node, _meta) = match self.lstat_node(name, path) {
            Ok(x) => x,
            Err(e) => {
                self.report(path, e);
                return Ok(());
            }
        };
        if self.select.one_file_system && dev.is_some_and(|d| d != node.device_id) {
            // As restic: a mount point is kept as an empty directory, nothing below it.
            if node.kind == NodeType::Dir {
                node.subtree = Some(self.save_tree(Tree::default())?);
                slot.deliver(Some(node));
            }
            return Ok(());
        }
        let dev = Some(dev.unwrap_or(node.device_id));
        match node.kind {
            NodeType::File if self.select.too_large(node.size) => {}
            NodeType::File => {
                let resumed = if parent.is_none() {
                    self.resumable
                        .get(path.as_os_str().as_bytes())
                        .map(|e| e.to_node())
                        .filter(|old| self.unchanged(old, &node))
                } else {
                    None
                };
                // Content known without reading: from an interrupted run's log (a new file
                // to the summary) or from the parent snapshot (unmodified).
                let known = if let Some(old) = &resumed {
                    self.stats.files_new.fetch_add(1, Ordering::Relaxed);
                    self.stats.files_resumed.fetch_add(1, Ordering::Relaxed);
                    Some(old.content.clone())
                } else if let Some(old) = parent.filter(|old| self.unchanged(old, &node)) {
                    self.stats.files_unmodified.fetch_add(1, Ordering::Relaxed);
                    Some(old.content.clone())
                } else {
                    None
                };
                if let Some(content) = known {
                    node.content = content;
                    self.stats.files.fetch_add(1, Ordering::Relaxed);
                    self.stats.bytes.fetch_add(node.size, Ordering::Relaxed);
                    self.observer.event(Event::FileUnchanged {
                        path,
                        bytes: node.size,
                    });
                    slot.deliver(Some(node));
                    return Ok(());
                }
                q.files
                    .send(FileJob {
                        path: path.to_path_buf(),
                        node,
                        in_parent: parent.is_some_and(|p| p.kind == NodeType::File),
                        reply: slot,
                    })
                    .map_err(|_| anyhow::anyhow!("file readers stopped"))?;
            }
            NodeType::Dir => {
                let parent_tree = parent
                    .filter(|p| p.kind == NodeType::Dir)
                    .and_then(|p| p.subtree);
                q.dirs.push(WalkJob {
                    path: path.to_path_buf(),
                    node,
                    parent_tree,
                    dev,
                    up: slot,
                });
            }
            _ => slot.deliver(Some(node)),
        }
        Ok(())
    }

    /// Runs on a walker: lists one directory and visits its entries. The directory's tree is
    /// stored once the last entry has arrived (see [`assembly`]).
    fn walk_dir<'c>(&'c self, job: WalkJob<'c>, q: &Queues<'_, 'c>) -> anyhow::Result<()> {
        self.check_interrupt()?;
        let path = job.path;
        let old = self.parent_tree(&path, job.parent_tree);
        let mut names: Vec<OsString> = match std::fs::read_dir(&path) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.file_name())).collect(),
            Err(e) => {
                self.report(
                    &path,
                    anyhow::Error::new(e).context(format!("read directory {}", path.display())),
                );
                return Ok(());
            }
        };
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        if let Some(keep) = self.select.marker_in(&path, &names) {
            names.retain(|n| keep.iter().any(|k| k.as_slice() == n.as_bytes()));
        }
        let parent_tree = old.is_some().then_some(job.parent_tree).flatten();
        let (dir, _listing) = Dir::new(
            self,
            job.node,
            path.clone(),
            parent_tree,
            names.len(),
            job.up,
        );
        for (i, name) in names.iter().enumerate() {
            let old_node = old.as_ref().and_then(|t| t.find(name.as_bytes()));
            self.visit(name, &path.join(name), q, old_node, job.dev, dir.slot(i))?;
        }
        Ok(())
    }

    /// Runs on every walker thread until the walk is over.
    fn walker<'c>(&'c self, q: Queues<'_, 'c>) {
        q.dirs.work(|job| {
            if self.stopping() {
                return; // dropping the job reports its directory as left out
            }
            if let Err(e) = self.walk_dir(job, &q) {
                if !matches!(e.downcast_ref::<Error>(), Some(Error::Interrupted)) {
                    self.fail(e);
                }
            }
        });
    }

    fn collect(&self, pending: Vec<Receiver<Option<Node>>>) -> anyhow::Result<Vec<Node>> {
        let nodes = pending
            .into_iter()
            .filter_map(|rx| rx.recv().ok().flatten())
            .collect();
        self.check_interrupt()?;
        Ok(nodes)
    }
}

impl FinishDir for Ctx<'_, '_> {
    fn finish_dir(&self, dir: DirDone) -> Option<Node> {
        if self.stopping() {
            return None;
        }
        let mut node = dir.node;
        match self.save_tree(Tree { nodes: dir.entries }) {
            Ok(id) => {
                node.subtree = Some(id);
                let counter = match dir.parent_tree {
                    None => &self.stats.dirs_new,
                    Some(p) if p == id => &self.stats.dirs_unmodified,
                    Some(_) => &self.stats.dirs_changed,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                Some(node)
            }
            Err(e) => {
                self.fail(e.context(format!("store tree of {}", dir.path.display())));
                None
            }
        }
    }
}

/// The backup targets arranged as the snapshot's root tree will hold them.
#[derive(Default)]
struct TargetTree {
    /// Real path to back up at this position (a target), if any.
    target: Option<PathBuf>,
    children: BTreeMap<Vec<u8>, TargetTree>,
    /// The real directory this intermediate node stands for (for its metadata).
    real: Option<PathBuf>,
}

/// The absolute, lexically cleaned form of a backup target, as stored in a snapshot's paths.
pub fn absolute_path(p: &Path) -> crate::Result<PathBuf> {
    Ok(crate::util::gopath::clean_abs_path(p)
        .with_context(|| format!("{}: no working directory to resolve it", p.display()))?)
}

/// restic's rule: relative targets keep their relative components in the tree; absolute ones
/// get one directory node per component.
fn build_targets(paths: &[PathBuf]) -> anyhow::Result<TargetTree> {
    let mut root = TargetTree::default();
    for p in paths {
        let real = absolute_path(p)?;
        let rel: Vec<Component> = if p.is_absolute() {
            real.components()
                .filter(|c| matches!(c, Component::Normal(_)))
                .collect()
        } else {
            // Strip leading "./" and resolve ".." lexically within the argument.
            let mut v: Vec<Component> = Vec::new();
            for c in p.components() {
                match c {
                    Component::Normal(_) => v.push(c),
                    Component::ParentDir => {
                        v.pop();
                    }
                    _ => {}
                }
            }
            if v.is_empty() {
                // "." or "..": restic names the node after the directory itself.
                real.components().next_back().into_iter().collect()
            } else {
                v
            }
        };
        if rel.is_empty() {
            anyhow::bail!("cannot back up the root directory as a relative target");
        }
        let mut cur = &mut root;
        let mut real_prefix = real.clone();
        for _ in 0..rel.len() {
            real_prefix.pop();
        }
        for (i, c) in rel.iter().enumerate() {
            let Component::Normal(name) = c else { continue };
            real_prefix.push(name);
            cur = cur.children.entry(name.as_bytes().to_vec()).or_default();
            if i + 1 < rel.len() {
                cur.real.get_or_insert(real_prefix.clone());
            }
        }
        if cur.target.is_some() {
            anyhow::bail!("{} is given twice as a backup target", p.display());
        }
        cur.target = Some(real);
    }
    Ok(root)
}

/// The writer a backup stores its blobs through (one that stores nothing for `--dry-run`).
fn blob_writer(
    repo: &IndexedRepository,
    compression: Compression,
    dry_run: bool,
) -> BlobWriter<'_> {
    let writer = repo.blob_writer(compression);
    if dry_run {
        writer.dry_run()
    } else {
        writer
    }
}

pub fn backup(
    repo: &IndexedRepository,
    opts: &BackupOptions,
    observer: &dyn Observer,
    interrupted: &AtomicBool,
) -> crate::Result<BackupResult> {
    let start = chrono::Local::now().fixed_offset();
    let targets = build_targets(&opts.paths)?;
    // Leftovers of a killed earlier run; failing to remove them must not stop a backup.
    if !opts.dry_run {
        let _ = repo.backend().clean_stale_staging();
    }
    let tables = ChunkerTables::new(repo.polynomial());
    let writer = blob_writer(repo, opts.compression, opts.dry_run);
    let ctx = Ctx {
        repo,
        writer: &writer,
        ignore_ctime: opts.ignore_ctime,
        ignore_inode: opts.ignore_inode,
        tables: &tables,
        select: Selection::new(&opts.select)?,
        names: NameCache::default(),
        with_atime: opts.with_atime,
        observer,
        interrupted,
        stats: Stats {
            files_new: AtomicU64::new(0),
            files_resumed: AtomicU64::new(0),
            files_changed: AtomicU64::new(0),
            files_unmodified: AtomicU64::new(0),
            dirs_new: AtomicU64::new(0),
            dirs_changed: AtomicU64::new(0),
            dirs_unmodified: AtomicU64::new(0),
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        },
        resumable: match (&opts.resume_log, opts.dry_run) {
            (Some(p), false) => resume::load(p),
            _ => HashMap::new(),
        },
        resume_enabled: opts.resume_log.is_some() && !opts.dry_run,
        stored: std::sync::Mutex::new(Vec::new()),
        fatal: std::sync::Mutex::new(None),
        aborted: AtomicBool::new(false),
    };
    let log = std::sync::Mutex::new(resume::Log::new(
        opts.resume_log.clone().unwrap_or_default(),
    ));
    let walk_done = AtomicBool::new(false);
    let readers = if opts.read_concurrency == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        opts.read_concurrency
    };
    let walk_stack = WorkStack::new();
    let root_id: anyhow::Result<Id> = std::thread::scope(|s| {
        let (files_tx, files_rx) = bounded::<FileJob>(readers * 4);
        let workers = default_readers();
        // A few chunks in flight per worker: enough to keep them busy, bounded in memory.
        let (blobs_tx, blobs_rx) = bounded::<BlobJob>(workers * 2);
        for _ in 0..workers {
            let rx = blobs_rx.clone();
            let ctx = &ctx;
            s.spawn(move || ctx.blob_worker(rx));
        }
        drop(blobs_rx);
        for _ in 0..readers {
            let rx = files_rx.clone();
            let tx = blobs_tx.clone();
            let ctx = &ctx;
            s.spawn(move || ctx.file_worker(rx, tx));
        }
        drop(files_rx);
        drop(blobs_tx);
        for _ in 0..walkers() {
            let q = Queues {
                files: files_tx.clone(),
                dirs: &walk_stack,
            };
            let ctx = &ctx;
            s.spawn(move || ctx.walker(q));
        }
        if ctx.resume_enabled {
            let (ctx, log, walk_done) = (&ctx, &log, &walk_done);
            s.spawn(move || {
                let every = checkpoint_interval();
                let mut last = std::time::Instant::now();
                let mut last_log = last;
                while !walk_done.load(Ordering::Relaxed) && !ctx.stopping() {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    if last.elapsed() >= every {
                        if let Err(e) = ctx.checkpoint(log) {
                            ctx.fail(e.context("checkpoint"));
                        }
                        last = std::time::Instant::now();
                        last_log = last;
                    } else if last_log.elapsed() >= LOG_STORED_EVERY {
                        if let Err(e) = ctx.log_stored(log) {
                            ctx.fail(e.context("resume log"));
                        }
                        last_log = std::time::Instant::now();
                    }
                }
            });
        }
        let q = Queues {
            files: files_tx,
            dirs: &walk_stack,
        };
        let parent_root = opts
            .parent
            .as_ref()
            .and_then(|(_, snap)| ctx.parent_tree(Path::new("/"), Some(snap.tree)));
        let res = save_target_tree(&ctx, &targets, &q, parent_root.as_ref());
        // Whatever happened, the walkers may stop once their work is done; then the readers
        // (whose queue the walkers feed) and the blob workers run dry and the scope ends.
        drop(q);
        walk_stack.close();
        walk_done.store(true, Ordering::Relaxed);
        res
    });
    // Empty by now; it borrows `ctx`, which is taken apart below.
    drop(walk_stack);
    let root_id = match crate::packer::lock(&ctx.fatal).take() {
        Some(e) => Err(e),
        None => root_id,
    };
    let resume_enabled = ctx.resume_enabled;
    let stored = ctx.stored.into_inner().unwrap_or_else(|e| e.into_inner());
    let st = ctx.stats;
    let root_id = match root_id {
        Ok(id) => id,
        Err(e) => {
            // Keep what was stored: the packs and an index for them make a re-run cheaper,
            // and the files they complete go to the resume log so a re-run skips them.
            let packs = writer.take_stored_packs();
            if writer.finish().is_ok() && resume_enabled {
                let _ = crate::packer::lock(&log).append(&stored, &packs);
            }
            return Err(e.into());
        }
    };
    let wstats = writer.finish()?;
    let files_resumed = st.files_resumed.load(Ordering::Relaxed);
    let end = chrono::Local::now().fixed_offset();
    let summary = SnapshotSummary {
        backup_start: start,
        backup_end: end,
        files_new: st.files_new.load(Ordering::Relaxed),
        files_changed: st.files_changed.load(Ordering::Relaxed),
        files_unmodified: st.files_unmodified.load(Ordering::Relaxed),
        dirs_new: st.dirs_new.load(Ordering::Relaxed),
        dirs_changed: st.dirs_changed.load(Ordering::Relaxed),
        dirs_unmodified: st.dirs_unmodified.load(Ordering::Relaxed),
        data_blobs: wstats.data_blobs,
        tree_blobs: wstats.tree_blobs,
        data_added: wstats.data_added,
        data_added_packed: wstats.data_added_packed,
        total_files_processed: st.files.load(Ordering::Relaxed),
        total_bytes_processed: st.bytes.load(Ordering::Relaxed),
    };
    let mut paths: Vec<String> = opts
        .paths
        .iter()
        .map(|p| absolute_path(p).map(|p| p.to_string_lossy().into_owned()))
        .collect::<crate::Result<_>>()?;
    paths.sort();
    let unchanged = opts.parent.as_ref().is_some_and(|(_, p)| p.tree == root_id);
    let snapshot_id = if opts.skip_if_unchanged && unchanged {
        None
    } else {
        write_snapshot(repo, opts, root_id, paths, start, &summary)?
    };
    if snapshot_id.is_some() {
        // The snapshot is the parent of the next run now; the log has served its purpose.
        log.into_inner().unwrap_or_else(|e| e.into_inner()).remove();
    }
    Ok(BackupResult {
        files_resumed,
        snapshot_id,
        summary,
        writer: wstats,
        errors: st.errors.load(Ordering::Relaxed),
    })
}

/// How often files whose packs are stored (not yet indexed) go to the resume log.
const LOG_STORED_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// How often a running backup makes a checkpoint (`CAIRN_CHECKPOINT_SECS`, default 10).
fn checkpoint_interval() -> std::time::Duration {
    let secs = std::env::var("CAIRN_CHECKPOINT_SECS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .unwrap_or(10.0);
    std::time::Duration::from_secs_f64(secs)
}

/// Writes the snapshot, last, after every pack and index it depends on is durable.
fn write_snapshot(
    repo: &IndexedRepository,
    opts: &BackupOptions,
    tree: Id,
    paths: Vec<String>,
    start: GoTime,
    summary: &SnapshotSummary,
) -> anyhow::Result<Option<Id>> {
    if opts.dry_run {
        return Ok(None);
    }
    let (uid, gid) = crate::util::host::current_uid_gid();
    let snap = Snapshot {
        time: opts.time.unwrap_or(start),
        parent: opts.parent.as_ref().map(|(id, _)| *id),
        tree,
        paths,
        hostname: opts.hostname.clone(),
        username: metadata::NameCache::default().user(uid),
        uid,
        gid,
        excludes: opts.select.excludes.clone(),
        tags: opts.tags.clone(),
        original: None,
        program_version: opts.program_version.clone(),
        summary: Some(summary.clone()),
    };
    Ok(Some(
        repo.save_unpacked(FileType::Snapshot, &snap.to_json())?,
    ))
}

/// Backs up a stream (`--stdin`) as one file named `filename` at the snapshot's root.
pub fn backup_stdin(
    repo: &IndexedRepository,
    opts: &BackupOptions,
    filename: &str,
    input: impl std::io::Read,
    interrupted: &AtomicBool,
) -> crate::Result<BackupResult> {
    if filename.is_empty() || filename == "." || filename == ".." || filename.contains('/') {
        crate::error::bail!("invalid --stdin-filename {filename:?}: want a plain file name");
    }
    let start = chrono::Local::now().fixed_offset();
    let tables = ChunkerTables::new(repo.polynomial());
    let writer = blob_writer(repo, opts.compression, opts.dry_run);
    let mut reader = ChunkReader::new(&tables, input);
    let mut content = Vec::new();
    let mut size = 0u64;
    let read: anyhow::Result<()> = (|| {
        while let Some(chunk) = reader.next_chunk().context("reading standard input")? {
            if interrupted.load(Ordering::Relaxed) {
                return Err(Error::Interrupted.into());
            }
            let id = Id::hash(&chunk);
            size += chunk.len() as u64;
            writer.save(BlobType::Data, id, &chunk)?;
            content.push(id);
        }
        Ok(())
    })();
    if let Err(e) = read {
        // Index what was stored, so that a re-run does not upload it again.
        let _ = writer.finish();
        return Err(e.into());
    }
    let now = chrono::Local::now().fixed_offset();
    let names = NameCache::default();
    let mut node = Node::new(filename.as_bytes().to_vec(), NodeType::File);
    node.mode = 0o644;
    (node.mtime, node.atime, node.ctime) = (now, now, now);
    (node.uid, node.gid) = crate::util::host::current_uid_gid();
    node.user = names.user(node.uid);
    node.group = names.group(node.gid);
    node.size = size;
    node.content = Some(content);
    let tree = Tree { nodes: vec![node] }.to_json();
    let root_id = Id::hash(&tree);
    writer.save(BlobType::Tree, root_id, &tree)?;
    let wstats = writer.finish()?;
    let summary = SnapshotSummary {
        backup_start: start,
        backup_end: chrono::Local::now().fixed_offset(),
        files_new: 1,
        data_blobs: wstats.data_blobs,
        tree_blobs: wstats.tree_blobs,
        data_added: wstats.data_added,
        data_added_packed: wstats.data_added_packed,
        total_files_processed: 1,
        total_bytes_processed: size,
        ..Default::default()
    };
    let snapshot_id = write_snapshot(
        repo,
        opts,
        root_id,
        vec![format!("/{filename}")],
        start,
        &summary,
    )?;
    Ok(BackupResult {
        files_resumed: 0,
        snapshot_id,
        summary,
        writer: wstats,
        errors: 0,
    })
}

fn save_target_tree<'c>(
    ctx: &'c Ctx,
    t: &TargetTree,
    q: &Queues<'_, 'c>,
    parent: Option<&Tree>,
) -> anyhow::Result<Id> {
    let mut pending = Vec::new();
    for (name, child) in &t.children {
        let name_os = OsStr::from_bytes(name);
        let old = parent.and_then(|p| p.find(name));
        if let Some(real) = &child.target {
            let (slot, rx) = Slot::channel();
            ctx.visit(name_os, real, q, old, None, slot)?;
            pending.push(rx);
            continue;
        }
        // An intermediate directory: metadata from the real directory, children from targets.
        let real = child.real.clone().unwrap_or_else(|| PathBuf::from("/"));
        let mut node = match ctx.lstat_node(name_os, &real) {
            Ok((n, _)) => n,
            Err(e) => {
                ctx.report(&real, e);
                continue;
            }
        };
        node.kind = NodeType::Dir;
        let old_tree = old
            .filter(|o| o.kind == NodeType::Dir)
            .and_then(|o| ctx.parent_tree(&real, o.subtree));
        let id = save_target_tree(ctx, child, q, old_tree.as_ref())?;
        let counter = match old.and_then(|o| o.subtree) {
            None => &ctx.stats.dirs_new,
            Some(p) if p == id => &ctx.stats.dirs_unmodified,
            Some(_) => &ctx.stats.dirs_changed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        node.subtree = Some(id);
        let (slot, rx) = Slot::channel();
        slot.deliver(Some(node));
        pending.push(rx);
    }
    let nodes = ctx.collect(pending)?;
    ctx.save_tree(Tree { nodes })
}

/// Walker threads: listing directories is system calls and tree decoding, which several
/// threads do faster than one even on two cores (one waits on the disk while another works).
fn walkers() -> usize {
    default_readers().clamp(2, 8)
}

/// One reader per core by default.
pub fn default_readers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Counts what a backup with these options will read (files and bytes), for progress and
/// ETA. Runs beside the backup and stops early when `stop` is set; it applies the same
/// selection rules as the backup itself.
pub fn scan(opts: &BackupOptions, files: &AtomicU64, bytes: &AtomicU64, stop: &AtomicBool) {
    let Ok(select) = Selection::new(&opts.select) else {
        return;
    };
    fn walk(
        path: &Path,
        dev: Option<u64>,
        s: &Selection,
        files: &AtomicU64,
        bytes: &AtomicU64,
        stop: &AtomicBool,
    ) {
        use std::os::unix::fs::MetadataExt;
        if stop.load(Ordering::Relaxed) || s.excluded_path(path) {
            return;
        }
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return;
        };
        if s.one_file_system && dev.is_some_and(|d| d != meta.dev()) {
            return;
        }
        if meta.is_file() {
            if !s.too_large(meta.len()) {
                files.fetch_add(1, Ordering::Relaxed);
                bytes.fetch_add(meta.len(), Ordering::Relaxed);
            }
        } else if meta.is_dir() {
            let Ok(rd) = std::fs::read_dir(path) else {
                return;
            };
            let mut names: Vec<OsString> = rd.flatten().map(|e| e.file_name()).collect();
            if let Some(keep) = s.marker_in(path, &names) {
                names.retain(|n| keep.iter().any(|k| k.as_slice() == n.as_bytes()));
            }
            for n in names {
                walk(
                    &path.join(n),
                    Some(dev.unwrap_or(meta.dev())),
                    s,
                    files,
                    bytes,
                    stop,
                );
            }
        }
    }
    for p in &opts.paths {
        walk(p, None, &select, files, bytes, stop);
    }
}
