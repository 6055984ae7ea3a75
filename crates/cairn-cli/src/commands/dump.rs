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

use super::snapshot_ref::{self, go_clean};
use crate::global::GlobalOptions;
use anyhow::Context;
use cairn_core::format::gotime::{self, GoTime};
use cairn_core::format::pack::BlobType;
use cairn_core::format::tree::{mode, name_problem, Node, NodeType, Tree};
use cairn_core::repository::IndexedRepository;
use cairn_core::walk::{self, Visit, Visitor, WalkOptions};
use cairn_core::Id;
use chrono::{Datelike, Timelike};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::sync::atomic::Ordering;

/// restic exits with 2 when the snapshot was found but dumping from it failed.
const EXIT_DUMP_FAILED: i32 = 2;

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) in Unix seconds.
const GO_ZERO_TIME: i64 = -62_135_596_800;

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
    #[command(flatten)]
    filter: snapshot_ref::Filter,
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
    let (snap_id, snap) = a.filter.find(&repo, &a.snapshot)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut left_out = 0u64;
    let result = dump(
        &repo,
        snap.tree,
        &a.path,
        format,
        &mut out,
        &mut Checks::new(&snap_id, &mut left_out),
    )
    .and_then(|()| out.flush().context("writing to stdout"));
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
        || cairn_core::ErrorKind::of(e) == cairn_core::ErrorKind::Interrupted
}

/// restic's `printFromTree`: follows the (cleaned) path from the snapshot's root tree; a file
/// at its end is written as it is, a directory (or "/") as an archive.
fn dump<W: Write>(
    repo: &IndexedRepository,
    root: Id,
    path: &str,
    format: Format,
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
        return archive(repo, &repo.load_tree(&root)?.nodes, "", format, out, checks);
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
                    &mut BlobReader::new(repo, node.content.unwrap_or_default()),
                    out,
                )
                .context("writing to stdout")?;
                return Ok(());
            }
            (NodeType::Dir, _) => {
                let sub = subtree(&node, &item)?;
                let t = repo
                    .load_tree(&sub)
                    .with_context(|| format!("cannot load subtree for {item:?}"))?;
                if last {
                    return archive(repo, &t.nodes, &item[1..], format, out, checks);
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
    format: Format,
    out: &mut W,
    checks: &mut Checks,
) -> anyhow::Result<()> {
    // SAFETY: isatty only inspects the file descriptor.
    if unsafe { libc::isatty(libc::STDOUT_FILENO) } == 1 {
        anyhow::bail!("stdout is the terminal, please redirect output");
    }
    match format {
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
    let opts = WalkOptions::interruptible(&crate::signals::INTERRUPTED);
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
            walk::walk_sorted(repo, id, &p, &opts, &mut v)?;
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

thread_local! {
    /// The data blob read last: files that share content (hard links, copies, and every
    /// name of a DAG-shaped snapshot) follow one another, and read it once.
    static LAST_BLOB: std::cell::RefCell<Option<(Id, std::rc::Rc<[u8]>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Reads a file's content blob by blob, holding one blob in memory at a time.
struct BlobReader<'r> {
    repo: &'r IndexedRepository,
    ids: std::vec::IntoIter<Id>,
    cur: std::rc::Rc<[u8]>,
    pos: usize,
}

impl<'r> BlobReader<'r> {
    fn new(repo: &'r IndexedRepository, ids: Vec<Id>) -> Self {
        BlobReader {
            repo,
            ids: ids.into_iter(),
            cur: std::rc::Rc::from(Vec::new()),
            pos: 0,
        }
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.cur.len() {
            let Some(id) = self.ids.next() else {
                return Ok(0);
            };
            // A large file stops at Ctrl-C too, between two blobs.
            if crate::signals::INTERRUPTED.load(Ordering::Relaxed) {
                return Err(std::io::Error::other(cairn_core::Error::Interrupted));
            }
            self.cur = LAST_BLOB.with(|last| {
                let mut last = last.borrow_mut();
                if let Some((_, b)) = last.as_ref().filter(|(l, _)| *l == id) {
                    return Ok(b.clone());
                }
                let b: std::rc::Rc<[u8]> = self
                    .repo
                    .load_blob(BlobType::Data, &id)
                    .map_err(|e| std::io::Error::other(format!("{e:#}")))?
                    .into();
                *last = Some((id, b.clone()));
                Ok::<_, std::io::Error>(b)
            })?;
            self.pos = 0;
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A file's content for an archive member whose header says `size` bytes: exactly that
/// many, or an error naming the file (should the blobs hold more or fewer bytes than the
/// index said) — never bytes past the member's end.
struct ExactReader<'r> {
    inner: BlobReader<'r>,
    left: u64,
    path: String,
}

impl<'r> ExactReader<'r> {
    fn new(repo: &'r IndexedRepository, n: &Node, path: &[u8]) -> Self {
        ExactReader {
            inner: BlobReader::new(repo, n.content.clone().unwrap_or_default()),
            left: n.size,
            path: String::from_utf8_lossy(path).into_owned(),
        }
    }
}

impl Read for ExactReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(format!(
                    "{:?}: content is longer than the file's size",
                    self.path
                ))),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::other(format!(
                "{:?}: content is shorter than the file's size",
                self.path
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// tar

fn tar_entry<W: Write>(
    repo: &IndexedRepository,
    tar: &mut tar::Builder<W>,
    path: &[u8],
    n: &Node,
) -> anyhow::Result<()> {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let p = std::path::Path::new(OsStr::from_bytes(path));
    let shown = || String::from_utf8_lossy(path).into_owned();
    let mut h = tar::Header::new_gnu();
    h.set_mode(mode::to_unix_perm(n.mode));
    h.set_uid(n.uid as u64);
    h.set_gid(n.gid as u64);
    let _ = h.set_username(&n.user);
    let _ = h.set_groupname(&n.group);
    h.set_mtime(gotime::to_unix(&n.mtime).0.max(0) as u64);
    h.set_size(0);
    match n.kind {
        NodeType::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            let mut dir = path.to_vec();
            dir.push(b'/');
            tar.append_data(
                &mut h,
                std::path::Path::new(OsStr::from_bytes(&dir)),
                std::io::empty(),
            )
        }
        NodeType::Symlink => {
            h.set_entry_type(tar::EntryType::Symlink);
            tar.append_link(
                &mut h,
                p,
                std::path::Path::new(OsStr::from_bytes(&n.linktarget)),
            )
        }
        NodeType::File => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(n.size);
            tar.append_data(&mut h, p, ExactReader::new(repo, n, path))
        }
        // Other nodes (only those directly in the dumped directory get here) become empty
        // regular files, as Go's tar writer makes of restic's headers without a type.
        _ => {
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, p, std::io::empty())
        }
    }
    .with_context(|| format!("writing {:?} to the tar archive", shown()))
}

// ---------------------------------------------------------------------------------------------
// zip

/// Go's `zip.FileHeader.SetMode`: the Unix mode (type, setuid/setgid/sticky and permission
/// bits, from Go's `fs.FileMode` as restic stores it) in the high 16 bits, and the MS-DOS
/// directory and read-only attributes in the low ones.
fn zip_external_attributes(m: u32) -> u32 {
    // Go's fs.ModeIrregular; with the other type bits it makes up fs.ModeType.
    const IRREGULAR: u32 = 1 << 19;
    const TYPE: u32 = mode::DIR
        | mode::SYMLINK
        | mode::NAMED_PIPE
        | mode::SOCKET
        | mode::DEVICE
        | mode::CHAR_DEVICE
        | IRREGULAR;
    let mut unix = match m & TYPE {
        mode::DIR => 0o040000,
        mode::SYMLINK => 0o120000,
        mode::NAMED_PIPE => 0o010000,
        mode::SOCKET => 0o140000,
        mode::DEVICE => 0o060000,
        t if t == mode::DEVICE | mode::CHAR_DEVICE => 0o020000,
        _ => 0o100000,
    };
    if m & mode::SETUID != 0 {
        unix |= 0o4000;
    }
    if m & mode::SETGID != 0 {
        unix |= 0o2000;
    }
    if m & mode::STICKY != 0 {
        unix |= 0o1000;
    }
    unix |= m & mode::PERM;
    let mut attrs = unix << 16;
    if m & mode::DIR != 0 {
        attrs |= 0x10;
    }
    if m & 0o200 == 0 {
        attrs |= 0x01;
    }
    attrs
}

/// Go's `timeToMsDosTime` on the wall-clock time in the time's own offset, including its
/// wrap-around for years outside 1980–2107.
fn msdos_time(t: &GoTime) -> (u16, u16) {
    let n = t.naive_local();
    let date =
        i64::from(n.day()) + (i64::from(n.month()) << 5) + ((i64::from(n.year()) - 1980) << 9);
    let time =
        i64::from(n.second() / 2) + (i64::from(n.minute()) << 5) + (i64::from(n.hour()) << 11);
    (date as u16, time as u16)
}

fn zip_entry<W: Write>(
    repo: &IndexedRepository,
    zip: &mut zip::ZipWriter<zip::write::StreamWriter<W>>,
    path: &[u8],
    n: &Node,
) -> anyhow::Result<()> {
    use zip::write::FullFileOptions;
    let shown = || String::from_utf8_lossy(path).into_owned();
    let is_dir = n.kind == NodeType::Dir;
    let mut name = path.to_vec();
    if is_dir {
        name.push(b'/');
    }
    let external = zip_external_attributes(n.mode);
    let (date, time) = msdos_time(&n.mtime);
    let mut opts = FullFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .system(zip::System::Unix)
        .external_attributes(external)
        // A day that the wrap-around made invalid (February 29 of a year that is not a leap
        // year) falls back to 1980-01-01; the timestamp field below still has the time.
        .last_modified_time(zip::DateTime::try_from_msdos(date, time).unwrap_or_default());
    // Info-ZIP's extended timestamp with the modification time only, as Go's writer adds it
    // (unless the time is Go's zero time, 0001-01-01T00:00:00Z).
    let (secs, nanos) = gotime::to_unix(&n.mtime);
    if (secs, nanos) != (GO_ZERO_TIME, 0) {
        let mut ut = [0u8; 5];
        ut[0] = 1;
        // Go's uint32(t.Unix()): wraps outside 1970–2106.
        ut[1..].copy_from_slice(&(secs as u32).to_le_bytes());
        opts.add_extra_field(0x5455, ut, false)
            .context("zip extended timestamp")?;
    }
    // The zip crate writes the entries of (Unix) directory-like types — directories, and the
    // sockets and block devices that may sit directly in the dumped directory — without a data
    // descriptor; in a stream it cannot go back to fill in their header, so they must be
    // complete before they are written.
    let dir_like = {
        let t = (external >> 16) & 0o170000;
        t & 0o040000 != 0
    };
    if !dir_like {
        let opts = opts.large_file(n.size >= u64::from(u32::MAX));
        zip.start_file_with_options(opts.name(&name))
            .with_context(|| format!("writing {:?} to the zip archive", shown()))?;
        match n.kind {
            NodeType::Symlink => zip.write_all(&n.linktarget),
            NodeType::File => std::io::copy(&mut ExactReader::new(repo, n, path), zip).map(|_| ()),
            // Fifos and character devices directly in the dumped directory: empty entries.
            _ => Ok(()),
        }
        .with_context(|| format!("writing {:?} to the zip archive", shown()))?;
        return Ok(());
    }
    match std::str::from_utf8(&name) {
        Ok(s) if is_dir => zip.add_directory(s, opts),
        // A name that is not UTF-8, or a socket or device: written as a complete entry of an
        // archive of its own (in memory, where the header can be finished) and merged in.
        _ => {
            let mut one = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            one.start_file_with_options(opts.name(&name))
                .and_then(|()| one.finish())
                .and_then(zip::ZipArchive::new)
                .and_then(|a| zip.merge_archive(a))
        }
    }
    .with_context(|| format!("writing {:?} to the zip archive", shown()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_attributes_are_gos() {
        // Values as Go's archive/zip computes them for restic's node modes.
        assert_eq!(zip_external_attributes(0o644), 0o100644 << 16);
        assert_eq!(zip_external_attributes(0o444), (0o100444 << 16) | 1);
        assert_eq!(
            zip_external_attributes(mode::DIR | mode::STICKY | 0o777),
            (0o41777 << 16) | 0x10
        );
        assert_eq!(
            zip_external_attributes(mode::SETUID | 0o755),
            0o104755 << 16
        );
        assert_eq!(
            zip_external_attributes(mode::SYMLINK | 0o777),
            0o120777 << 16
        );
        assert_eq!(
            zip_external_attributes(mode::NAMED_PIPE | 0o644),
            0o10644 << 16
        );
        assert_eq!(
            zip_external_attributes(mode::DEVICE | mode::CHAR_DEVICE | 0o620),
            0o20620 << 16
        );
    }

    #[test]
    fn msdos_time_wraps_like_go() {
        let t = gotime::parse_rfc3339("1975-03-04T05:06:07+02:00").expect("time parses");
        let (d, tm) = msdos_time(&t);
        // (1975-1980) wraps to 123 (2103), as in restic's archives.
        assert_eq!(d >> 9, 123);
        assert_eq!((d >> 5) & 0xf, 3);
        assert_eq!(d & 0x1f, 4);
        assert_eq!(tm >> 11, 5);
        assert_eq!((tm >> 5) & 0x3f, 6);
        assert_eq!(tm & 0x1f, 3);
    }
}
