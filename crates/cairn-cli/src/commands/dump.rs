//! `dump`: a file's content, or a directory as a tar or zip archive, written to stdout the way
//! restic 0.14 writes them (cmd/restic/cmd_dump.go and internal/dump).
//!
//! An archive holds the directory's contents, not the directory itself, each entry named by
//! its full path in the snapshot without the leading slash. The entries directly inside the
//! dumped directory are written whatever their type; below them only files, directories and
//! symlinks are, as restic's walker sends no other nodes (so a fifo or device deeper down is
//! left out, and one at the top becomes an empty entry of its type).
//!
//! The snapshot is untrusted: no entry whose name is empty, `.`, `..` or contains `/` or NUL
//! (so no absolute name, nothing with a `..` component) reaches the archive, nor a second
//! entry of the same name in one directory (which could turn a symlink into a path
//! component), nor a file whose content blobs do not add up to its declared size (its bytes
//! would be read as further members). Each is reported with its path and the snapshot, left
//! out, and the dump exits with 3. Content is written through a reader that yields exactly
//! the header's size, so blobs that hold other amounts than the index says end the dump
//! (exit 2) rather than write past a member's end. Trees are walked by the core walker
//! (depth limit, DAG-bomb refusal, Ctrl-C → 130).
//!
//! Zip archives are streamed (stdout need not be seekable) with the `zip` crate and hold what
//! Go's `archive/zip` writes for restic: stored (uncompressed) entries, the full Unix mode plus
//! the MS-DOS directory/read-only bits as external attributes, the MS-DOS time in the node's own
//! UTC offset (wrapping outside 1980–2107 as Go's does) and an extended-timestamp field, data
//! descriptors after file contents. Known differences, none of which changes what an unzip
//! extracts: the "version made by/needed" fields say 1.0 for files where Go says 2.0; and the
//! few entries the crate cannot stream — directories whose names are not UTF-8, and sockets or
//! block devices directly in the dumped directory — are written as complete entries without a
//! data descriptor, and their central directory record lacks the extended timestamp (their
//! local header has it).

mod archive;

use super::snapshot_ref;
use crate::global::GlobalOptions;
use anyhow::Context;
use archive::{tar_entry, zip_entry};
use cairn_core::content::BlobReader;
use cairn_core::format::pack::BlobType;
use cairn_core::format::tree::{name_problem, Node, NodeType, Tree};
use cairn_core::repository::IndexedRepository;
use cairn_core::util::gopath::clean as go_clean;
use cairn_core::walk::{self, Visit, Visitor, WalkOptions};
use cairn_core::Id;
use std::collections::HashSet;
use std::io::Write;
use std::sync::atomic::Ordering;

/// restic exits with 2 when the snapshot was found but dumping from it failed.
const EXIT_DUMP_FAILED: i32 = 2;

#[derive(clap::Args)]
#[command(mut_args(snapshot_ref::help_when_latest))]
#[command(
    after_help = "Exit codes: 0 the whole archive was written; 2 the dump failed; 3 the \
archive was written but some entries were left out, each reported: names that could escape the \
extraction folder (empty, \".\", \"..\", containing \"/\" or NUL), repeated names in a \
directory, and files whose content does not add up to their size (a forged or damaged \
repository); 130 interrupted."
)]
pub struct Args {
    /// Snapshot id, or "latest"
    snapshot: String,
    /// Path inside the snapshot: a file is written as it is, a directory as an archive ("/"
    /// for the whole snapshot)
    path: String,
    /// Set archive format as "tar" or "zip"
    #[arg(short, long, value_name = "format", default_value = "tar")]
    archive: String,
    /// Write the output to target path (replaced if it exists)
    #[arg(short, long, value_name = "path")]
    target: Option<std::path::PathBuf>,
    #[command(flatten)]
    filter: snapshot_ref::Filter,
}

/// Where the dump goes and in which form.
#[derive(Clone, Copy)]
struct Output {
    format: Format,
    to_terminal: bool,
}

#[derive(Clone, Copy)]
enum Format {
    Tar,
    Zip,
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let format = match a.archive.as_str() {
        "tar" => Format::Tar,
        "zip" => Format::Zip,
        other => anyhow::bail!("unknown archive format {other:?}"),
    };
    let repo = g.open_with_index()?;
    let (snap_id, snap) = a.filter.core().find(&repo, &a.snapshot)?;
    let (sink, to_terminal): (Box<dyn Write>, bool) = match &a.target {
        Some(t) => (
            Box::new(
                std::fs::File::create(t)
                    .with_context(|| format!("cannot create {}", t.display()))?,
            ),
            false,
        ),
        // SAFETY: isatty only inspects the file descriptor.
        None => (Box::new(std::io::stdout()), unsafe {
            libc::isatty(libc::STDOUT_FILENO) == 1
        }),
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, sink);
    let mut left_out = 0u64;
    let result = dump(
        &repo,
        snap.tree,
        &a.path,
        Output {
            format,
            to_terminal,
        },
        &mut out,
        &mut Checks::new(&snap_id, &mut left_out),
    )
    .and_then(|()| out.flush().context("writing the output"));
    match result {
        Ok(()) if left_out > 0 => {
            eprintln!(
                "{left_out} entries of snapshot {} were left out of the archive (see above)",
                snap_id.short()
            );
            Ok(crate::exit::INCOMPLETE)
        }
        Ok(()) => Ok(crate::exit::OK),
        // Ctrl-C ends the command with 130, as everywhere.
        Err(e) if is_interrupted(&e) => Err(e),
        Err(e) => {
            eprintln!("cannot dump file: {e:#}");
            Ok(EXIT_DUMP_FAILED)
        }
    }
}

fn is_interrupted(e: &anyhow::Error) -> bool {
    // Whatever failed after Ctrl-C (a blob read cut short, say) failed because of it.
    crate::signals::INTERRUPTED.load(Ordering::Relaxed)
        || e.chain().any(|c| {
            matches!(
                c.downcast_ref::<cairn_core::Error>(),
                Some(cairn_core::Error::Interrupted)
            )
        })
}

/// restic's `printFromTree`: follows the (cleaned) path from the snapshot's root tree; a file
/// at its end is written as it is, a directory (or "/") as an archive.
fn dump<W: Write>(
    repo: &IndexedRepository,
    root: Id,
    path: &str,
    how: Output,
    out: &mut W,
    checks: &mut Checks,
) -> anyhow::Result<()> {
    let cleaned = go_clean(path);
    let comps: Vec<&str> = if cleaned == "/" {
        Vec::new()
    } else {
        cleaned.split('/').filter(|c| !c.is_empty()).collect()
    };
    if comps.is_empty() {
        return archive(repo, &repo.load_tree(&root)?.nodes, "", how, out, checks);
    }
    let mut tree = repo.load_tree(&root)?;
    let mut item = String::new();
    for (i, c) in comps.iter().enumerate() {
        item.push('/');
        item.push_str(c);
        let last = i + 1 == comps.len();
        let node = tree
            .find(c.as_bytes())
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("path {item:?} not found in snapshot"))?;
        match (&node.kind, last) {
            (NodeType::File, true) => {
                std::io::copy(
                    &mut BlobReader::new(
                        repo,
                        node.content.unwrap_or_default(),
                        Some(&crate::signals::INTERRUPTED),
                    ),
                    out,
                )
                .context("writing the output")?;
                return Ok(());
            }
            (NodeType::Dir, _) => {
                let sub = subtree(&node, &item)?;
                let t = repo
                    .load_tree(&sub)
                    .with_context(|| format!("cannot load subtree for {item:?}"))?;
                if last {
                    return archive(repo, &t.nodes, &item[1..], how, out, checks);
                }
                tree = t;
            }
            (kind, false) => {
                anyhow::bail!("{item:?} should be a dir, but is a {:?}", kind.as_str())
            }
            (kind, true) => {
                anyhow::bail!("{item:?} should be a file, but is a {:?}", kind.as_str())
            }
        }
    }
    Ok(())
}

fn subtree(n: &Node, path: &str) -> anyhow::Result<Id> {
    n.subtree
        .ok_or_else(|| anyhow::anyhow!("subtree for directory {path:?} is missing"))
}

/// The archive of a directory's `nodes`, entries named `prefix/…` (`prefix` has no leading
/// slash and is empty for the snapshot's root).
fn archive<W: Write>(
    repo: &IndexedRepository,
    nodes: &[Node],
    prefix: &str,
    how: Output,
    out: &mut W,
    checks: &mut Checks,
) -> anyhow::Result<()> {
    // An archive is not for a terminal (a single file's content may be).
    if how.to_terminal {
        anyhow::bail!("stdout is the terminal, please redirect output");
    }
    match how.format {
        Format::Tar => {
            let mut tar = tar::Builder::new(out);
            tar.follow_symlinks(false);
            send_tree(repo, nodes, prefix.as_bytes(), checks, &mut |p, n| {
                tar_entry(repo, &mut tar, p, n)
            })?;
            tar.finish().context("writing the tar archive")?;
        }
        Format::Zip => {
            let mut zip = zip::ZipWriter::new_stream(out);
            send_tree(repo, nodes, prefix.as_bytes(), checks, &mut |p, n| {
                zip_entry(repo, &mut zip, p, n)
            })?;
            zip.finish().context("writing the zip archive")?;
        }
    }
    Ok(())
}

/// What keeps a forged or damaged snapshot's entries out of an archive: each is reported
/// (naming the path and the snapshot) and left out, and the dump ends with exit code 3.
struct Checks<'a> {
    snapshot: String,
    left_out: &'a mut u64,
    /// Directories entered and distinct trees seen over the whole dump (a DAG bomb's
    /// top-level directories are walked one by one, each within the walker's own limit).
    visits: u64,
    distinct: HashSet<Id>,
}

impl<'a> Checks<'a> {
    fn new(snapshot: &Id, left_out: &'a mut u64) -> Self {
        Checks {
            snapshot: snapshot.short(),
            left_out,
            visits: 0,
            distinct: HashSet::new(),
        }
    }

    fn leave_out(&mut self, path: &[u8], why: &str) {
        *self.left_out += 1;
        eprintln!(
            "error: {:?} in snapshot {}: {why}; not written to the archive",
            String::from_utf8_lossy(path),
            self.snapshot
        );
    }

    /// Whether a node may become an archive member; if not, it is reported. `prev` is the
    /// name of the previous member in the same directory (names come in order, so a repeat
    /// follows its first occurrence).
    fn admit(
        &mut self,
        repo: &IndexedRepository,
        path: &[u8],
        n: &Node,
        prev: Option<&[u8]>,
    ) -> bool {
        if let Some(why) = name_problem(&n.name) {
            self.leave_out(path, &format!("unsafe name ({why})"));
            return false;
        }
        if prev == Some(n.name.as_slice()) {
            self.leave_out(path, "duplicate name in its directory");
            return false;
        }
        if n.kind == NodeType::File {
            // The member's header carries the node's size; the content must have exactly
            // that many bytes, or its bytes would be read as further members.
            let stored: Option<u64> = n
                .content
                .iter()
                .flatten()
                .map(|id| repo.index().plain_size(BlobType::Data, id))
                .sum();
            if let Some(stored) = stored.filter(|s| *s != n.size) {
                self.leave_out(
                    path,
                    &format!(
                        "its content has {stored} bytes but the file's size says {}",
                        n.size
                    ),
                );
                return false;
            }
        }
        true
    }

    fn entered(&mut self, path: &[u8], tree: &Id) -> anyhow::Result<()> {
        self.visits += 1;
        self.distinct.insert(*tree);
        if self.visits > walk::DAG_MIN_VISITS
            && self.visits > walk::DAG_MAX_REPEAT * self.distinct.len() as u64
        {
            anyhow::bail!(
                "{}: the snapshot names {} directories but holds only {} distinct trees; \
                 refusing to expand it further (forged repository?)",
                walk::lossy_path(path),
                self.visits,
                self.distinct.len()
            );
        }
        Ok(())
    }
}

type Emit<'e> = dyn FnMut(&[u8], &Node) -> anyhow::Result<()> + 'e;

/// restic's `sendTrees`/`sendNodes`: each of `nodes` (of any type, in the order stored), and
/// below the directories among them every file, directory and symlink, depth first in name
/// order.
fn send_tree(
    repo: &IndexedRepository,
    nodes: &[Node],
    prefix: &[u8],
    checks: &mut Checks,
    emit: &mut Emit,
) -> anyhow::Result<()> {
    let mut seen: HashSet<&[u8]> = HashSet::new();
    let opts = WalkOptions {
        sorted: true,
        ..WalkOptions::interruptible(&crate::signals::INTERRUPTED)
    };
    for n in nodes {
        if crate::signals::INTERRUPTED.load(Ordering::Relaxed) {
            return Err(cairn_core::Error::Interrupted.into());
        }
        let p = join(prefix, &n.name);
        let prev = (!seen.insert(&n.name)).then_some(n.name.as_slice());
        if !checks.admit(repo, &p, n, prev) {
            continue;
        }
        emit(&p, n)?;
        if n.kind == NodeType::Dir {
            let shown = String::from_utf8_lossy(&p);
            let id = subtree(n, &shown)?;
            let mut v = Sender {
                repo,
                checks,
                emit,
                last: Vec::new(),
            };
            walk::walk(repo, id, &p, &opts, &mut v)?;
        }
    }
    Ok(())
}

/// The walk below one directory of the dumped one.
struct Sender<'s, 'c, 'e> {
    repo: &'s IndexedRepository,
    checks: &'s mut Checks<'c>,
    emit: &'s mut Emit<'e>,
    /// Per directory being walked, the name of its last member.
    last: Vec<Option<Vec<u8>>>,
}

impl Visitor for Sender<'_, '_, '_> {
    fn node(&mut self, path: &[u8], n: &Node, _depth: usize) -> anyhow::Result<Visit> {
        if !matches!(n.kind, NodeType::File | NodeType::Dir | NodeType::Symlink) {
            return Ok(Visit::Skip);
        }
        let prev = self.last.last_mut().and_then(|l| l.replace(n.name.clone()));
        if !self.checks.admit(self.repo, path, n, prev.as_deref()) {
            return Ok(Visit::Skip);
        }
        (self.emit)(path, n)?;
        Ok(Visit::Descend)
    }

    fn tree(&mut self, path: &[u8], id: &Id, _tree: &Tree) -> anyhow::Result<()> {
        self.checks.entered(path, id)?;
        self.last.push(None);
        Ok(())
    }

    fn leave(&mut self, _path: &[u8], _node: &Node, _depth: usize) -> anyhow::Result<()> {
        self.last.pop();
        Ok(())
    }
}

fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(prefix.len() + 1 + name.len());
    p.extend_from_slice(prefix);
    if !p.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}
