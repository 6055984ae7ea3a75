//! Restore: snapshot tree → directories, files (written in parallel, holes for zero blocks),
//! links and special files → metadata, with directory metadata applied last.

pub mod apply;
mod packs;

use crate::archiver::filter::Excludes;
use crate::format::pack::BlobType;
use crate::format::tree::{Node, NodeType};
use crate::repository::Repository;
use crate::{Error, Id};
use anyhow::Context;
use std::collections::HashMap;
use std::ffi::OsStr;
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

pub trait RestoreObserver: Sync {
    fn error(&self, path: &Path, err: &anyhow::Error);
}

#[derive(Debug, Default, Clone, Copy)]
pub struct RestoreStats {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    pub errors: u64,
    pub verified: u64,
}

struct FileTask {
    path: PathBuf,
    node: Node,
}

struct Plan {
    dirs: Vec<(PathBuf, Node)>,
    files: Vec<FileTask>,
    /// (link path, first path) for hard links to a file restored elsewhere.
    hardlinks: Vec<(PathBuf, PathBuf, Node)>,
    others: Vec<(PathBuf, Node)>,
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

pub fn restore(
    repo: &Repository,
    root_tree: Id,
    opts: &RestoreOptions,
    observer: &dyn RestoreObserver,
    interrupted: &AtomicBool,
) -> anyhow::Result<RestoreStats> {
    let excludes = Excludes::new(&opts.excludes)?;
    let includes = Includes::new(&opts.includes)?;
    let mut plan = Plan {
        dirs: vec![],
        files: vec![],
        hardlinks: vec![],
        others: vec![],
    };
    let mut seen_inodes: HashMap<(u64, u64), PathBuf> = HashMap::new();
    // A new target directory is private until the snapshot's own modes are applied (as restic).
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(&opts.target)
        .with_context(|| format!("create target directory {}", opts.target.display()))?;
    walk(
        repo,
        root_tree,
        &opts.target,
        b"",
        &excludes,
        &includes,
        &mut plan,
        &mut seen_inodes,
    )?;

    let errors = AtomicU64::new(0);
    let report = |p: &Path, e: anyhow::Error| {
        errors.fetch_add(1, Ordering::Relaxed);
        observer.error(p, &e);
    };
    for (path, _) in &plan.dirs {
        if let Err(e) = std::fs::create_dir_all(path) {
            report(
                path,
                anyhow::Error::new(e).context(format!("mkdir {}", path.display())),
            );
        }
    }
    // Regular files: contents pack by pack, in parallel; then their metadata.
    let threads = opts.threads.max(1);
    let (written, complete) =
        packs::write_contents(repo, &plan.files, threads, interrupted, &report);
    let bytes = AtomicU64::new(written);
    let verified = AtomicU64::new(0);
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(t) = plan.files.get(i) else { break };
                if complete[i] {
                    if let Err(e) = apply::metadata(&t.path, &t.node) {
                        report(&t.path, e);
                    }
                }
            });
        }
    });
    if interrupted.load(Ordering::Relaxed) {
        return Err(Error::Interrupted.into());
    }
    for (path, node) in &plan.others {
        if let Err(e) = apply::create_special(path, node).and_then(|_| apply::metadata(path, node))
        {
            report(path, e);
        }
    }
    for (path, first, node) in &plan.hardlinks {
        let _ = std::fs::remove_file(path);
        if let Err(e) = std::fs::hard_link(first, path) {
            // Fall back to a copy of the content so that no file is lost.
            report(
                path,
                anyhow::Error::new(e).context(format!("hard link {}", path.display())),
            );
            if let Ok(n) = restore_file(repo, path, node) {
                bytes.fetch_add(n, Ordering::Relaxed);
                let _ = apply::metadata(path, node);
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
                    match verify_file(repo, &t.path, &t.node) {
                        Ok(()) => {
                            verified.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => report(&t.path, e),
                    }
                });
            }
        });
    }
    // Directories last and deepest first, so that writing into them does not disturb times.
    for (path, node) in plan.dirs.iter().rev() {
        if let Err(e) = apply::metadata(path, node) {
            report(path, e);
        }
    }
    Ok(RestoreStats {
        files: (plan.files.len() + plan.hardlinks.len()) as u64,
        dirs: plan.dirs.len() as u64,
        bytes: bytes.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        verified: verified.load(Ordering::Relaxed),
    })
}

fn safe_name(name: &[u8]) -> anyhow::Result<&OsStr> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        anyhow::bail!(
            "refusing to restore node with unsafe name {:?}",
            String::from_utf8_lossy(name)
        );
    }
    Ok(OsStr::from_bytes(name))
}

#[allow(clippy::too_many_arguments)]
fn walk(
    repo: &Repository,
    tree_id: Id,
    dir: &Path,
    snap_path: &[u8],
    excludes: &Excludes,
    includes: &Includes,
    plan: &mut Plan,
    seen: &mut HashMap<(u64, u64), PathBuf>,
) -> anyhow::Result<()> {
    let tree = repo.load_tree(&tree_id)?;
    for node in tree.nodes {
        let name = safe_name(&node.name)?;
        let path = dir.join(name);
        let mut sp = snap_path.to_vec();
        sp.push(b'/');
        sp.extend_from_slice(&node.name);
        if excludes.matches(&sp) {
            continue;
        }
        let selected = includes.selected(&sp);
        match node.kind {
            NodeType::Dir => {
                let Some(sub) = node.subtree else {
                    anyhow::bail!("directory {} has no subtree", path.display());
                };
                if selected {
                    // Everything below a selected directory is selected.
                    let all = Includes::new(&[])?;
                    plan.dirs.push((path.clone(), node.clone()));
                    walk(repo, sub, &path, &sp, excludes, &all, plan, seen)?;
                } else if includes.may_contain(&sp) {
                    let before = plan.dirs.len()
                        + plan.files.len()
                        + plan.others.len()
                        + plan.hardlinks.len();
                    let idx = plan.dirs.len();
                    plan.dirs.push((path.clone(), node.clone()));
                    walk(repo, sub, &path, &sp, excludes, includes, plan, seen)?;
                    let after = plan.dirs.len()
                        + plan.files.len()
                        + plan.others.len()
                        + plan.hardlinks.len();
                    if after == before + 1 {
                        plan.dirs.remove(idx);
                    }
                }
            }
            _ if !selected => {}
            NodeType::File => {
                if node.links > 1 && node.inode != 0 {
                    let key = (node.device_id, node.inode);
                    if let Some(first) = seen.get(&key) {
                        plan.hardlinks.push((path, first.clone(), node));
                        continue;
                    }
                    seen.insert(key, path.clone());
                }
                plan.files.push(FileTask { path, node });
            }
            _ => plan.others.push((path, node)),
        }
    }
    Ok(())
}

/// Writes one file's content; zero blocks are skipped to leave holes.
fn restore_file(repo: &Repository, path: &Path, node: &Node) -> anyhow::Result<u64> {
    let f = packs::create(path)?;
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

fn verify_file(repo: &Repository, path: &Path, node: &Node) -> anyhow::Result<()> {
    let f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
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
