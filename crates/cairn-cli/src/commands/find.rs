//! `find`: files and directories whose paths match patterns, or the files and directories
//! that hold given blobs, trees or packs, in every snapshot (or the chosen ones), printed
//! as restic 0.14 prints them.
//!
//! Patterns follow restic's `filter.Match` on the whole path in the snapshot (with Go's
//! `filepath.Match` for each component): a relative pattern matches any run of path
//! components (so `foo` matches `/a/foo` and everything below it), an absolute one matches
//! from the root, and `**` spans directories.
//!
//! Where restic 0.14 has known bugs that later versions fixed, cairn follows the fix:
//! directories with identical content are searched every time they occur (0.14 skipped
//! repeats), snapshots are printed in time order (0.14: unspecified order), a pack's tree
//! blobs are found as trees with `--pack` (0.14 found nothing), and `--tree` also checks a
//! snapshot's root tree. IDs given to `--blob`, `--tree` and `--pack` may be prefixes of any
//! length (0.14: exactly 8 or 64 characters).

use super::snapshot_ref;
use crate::global::GlobalOptions;
use crate::output;
use cairn_backend::{FileType, Handle};
use cairn_core::archiver::filter::Pattern;
use cairn_core::format::gojson::{write_json_bytes_as_str, write_json_str};
use cairn_core::format::gotime::{self, GoTime};
use cairn_core::format::indexfile::IndexFile;
use cairn_core::format::pack::{self, BlobType, PackedBlob};
use cairn_core::format::snapshot::Snapshot;
use cairn_core::format::tree::{mode, Node, NodeType, Tree};
use cairn_core::repository::IndexedRepository;
use cairn_core::walk::{self, Visit, Visitor, WalkOptions};
use cairn_core::Id;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::rc::Rc;

#[derive(clap::Args)]
#[command(mut_args(snapshot_ref::help_without_ids))]
pub struct Args {
    /// File name patterns to search for (or IDs, with --blob, --tree or --pack)
    #[arg(value_name = "PATTERN")]
    patterns: Vec<String>,
    /// Oldest modification date/time
    #[arg(short = 'O', long)]
    oldest: Option<String>,
    /// Newest modification date/time
    #[arg(short = 'N', long)]
    newest: Option<String>,
    /// Snapshot id to search in (can be given multiple times)
    #[arg(short = 's', long = "snapshot", value_name = "ID")]
    snapshots: Vec<String>,
    /// Pattern is a blob-ID
    #[arg(long)]
    blob: bool,
    /// Pattern is a tree-ID
    #[arg(long)]
    tree: bool,
    /// Pattern is a pack-ID
    #[arg(long)]
    pack: bool,
    /// Display the pack-ID the blobs belong to (with --blob or --tree)
    #[arg(long)]
    show_pack_id: bool,
    /// Ignore case for pattern
    #[arg(short = 'i', long)]
    ignore_case: bool,
    /// Use a long listing format showing size and mode
    #[arg(short = 'l', long)]
    long: bool,
    #[command(flatten)]
    filter: snapshot_ref::Filter,
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    if a.patterns.is_empty() {
        anyhow::bail!("wrong number of arguments");
    }
    let mut patterns = a.patterns.clone();
    if a.ignore_case {
        for p in &mut patterns {
            *p = String::from_utf8_lossy(&go_to_lower(p.as_bytes())).into_owned();
        }
    }
    let oldest = match a.oldest.as_deref() {
        Some(s) if !s.is_empty() => Some(parse_time(s)?),
        _ => None,
    };
    let newest = match a.newest.as_deref() {
        Some(s) if !s.is_empty() => Some(parse_time(s)?),
        _ => None,
    };
    if [a.blob, a.tree, a.pack].iter().filter(|x| **x).count() > 1 {
        anyhow::bail!("cannot have several ID types");
    }

    let repo = g.open_with_index()?;
    let stdout = std::io::stdout();
    let mut out = Output {
        w: std::io::BufWriter::new(stdout.lock()),
        json: g.json,
        long: a.long,
        quiet: g.quiet,
        inuse: false,
        current: None,
        printed: None,
        hits: 0,
    };

    let id_mode = a.blob || a.tree || a.pack;
    let mut ids = IdSearch::default();
    if a.blob {
        ids.blobs = Some(IdSet::new(&patterns));
    }
    if a.tree {
        ids.trees = Some(IdSet::new(&patterns));
        ids.stop_when_all_trees_found = true;
    }
    if a.pack {
        let (data, trees) = packs_to_blobs(&repo, &patterns)?;
        ids.blobs = Some(IdSet::from_ids(data));
        ids.trees = Some(IdSet::from_ids(trees));
    }

    let snaps = select_snapshots(&repo, &a)?;
    if id_mode {
        let mut f = IdFinder {
            repo: &repo,
            ids: &mut ids,
            barren: HashSet::new(),
            items_found: 0,
        };
        for (id, sn) in &snaps {
            out.current = Some((*id, sn.time));
            f.search_snapshot(&sn.tree, &mut out)?;
        }
    } else {
        // The empty pattern matches everything, as in restic.
        let pats = patterns
            .iter()
            .map(|p| pattern(p))
            .collect::<anyhow::Result<_>>()?;
        let mut f = PatternFinder {
            repo: &repo,
            patterns: pats,
            ignore_case: a.ignore_case,
            oldest,
            newest,
            memo: HashMap::new(),
        };
        for (id, sn) in &snaps {
            out.current = Some((*id, sn.time));
            f.search_snapshot(&sn.tree, &mut out)?;
        }
    }
    out.finish()?;

    if a.show_pack_id && id_mode {
        show_packs(&repo, &ids, &mut out.w)?;
    }
    out.w.flush()?;
    Ok(crate::exit::OK)
}

// ---------------------------------------------------------------------------------------------
// Which snapshots to search

fn select_snapshots(repo: &IndexedRepository, a: &Args) -> anyhow::Result<Vec<(Id, Snapshot)>> {
    let mut snaps = a.filter.select(repo, &a.snapshots)?;
    // restic >= 0.16 prints snapshots oldest first; 0.14's order was unspecified.
    snaps.sort_by_key(|s| s.1.time);
    Ok(snaps)
}

/// A snapshot by id or unique prefix, with restic's error messages.
pub(crate) fn find_snapshot(
    repo: &IndexedRepository,
    spec: &str,
) -> anyhow::Result<(Id, Snapshot)> {
    let id = repo.find_id(FileType::Snapshot, spec).map_err(|e| {
        if e.to_string().contains("ambiguous") {
            anyhow::anyhow!("multiple IDs with prefix {spec:?} found")
        } else {
            anyhow::anyhow!("no matching ID found for prefix {spec:?}")
        }
    })?;
    let sn = repo.load_snapshot(&id)?;
    Ok((id, sn))
}

// ---------------------------------------------------------------------------------------------
// Output, in restic's exact shapes (including its hand-assembled JSON array)

struct Output<W: Write> {
    w: W,
    json: bool,
    long: bool,
    quiet: bool,
    /// Has the JSON array been opened?
    inuse: bool,
    /// The snapshot being searched (id, time).
    current: Option<(Id, GoTime)>,
    /// The snapshot whose matches were printed last.
    printed: Option<Id>,
    hits: usize,
}

impl<W: Write> Output<W> {
    fn pattern(&mut self, path: &[u8], node: &Node) -> anyhow::Result<()> {
        let (sid, stime) = self.current.expect("a snapshot is being searched");
        if self.json {
            if !self.inuse {
                self.w.write_all(b"[")?;
                self.inuse = true;
            }
            if self.printed != Some(sid) {
                if let Some(old) = self.printed {
                    write!(
                        self.w,
                        "],\"hits\":{},\"snapshot\":\"{}\"}},",
                        self.hits, old
                    )?;
                }
                self.w.write_all(b"{\"matches\":[")?;
                self.printed = Some(sid);
                self.hits = 0;
            }
            if self.hits > 0 {
                self.w.write_all(b",")?;
            }
            let mut buf = Vec::with_capacity(256);
            node_json(&mut buf, path, node);
            self.w.write_all(&buf)?;
            self.hits += 1;
        } else {
            if self.printed != Some(sid) {
                if self.printed.is_some() && !self.quiet {
                    self.w.write_all(b"\n")?;
                }
                self.printed = Some(sid);
                if !self.quiet {
                    writeln!(
                        self.w,
                        "Found matching entries in snapshot {} from {}",
                        sid.short(),
                        output::local_time(&stime)
                    )?;
                }
            }
            let mut line = Vec::with_capacity(path.len() + 64);
            format_node(&mut line, path, node, self.long);
            line.push(b'\n');
            self.w.write_all(&line)?;
        }
        Ok(())
    }

    fn object(
        &mut self,
        kind: &str,
        id: &Id,
        path: &[u8],
        parent: Option<&Id>,
    ) -> anyhow::Result<()> {
        let (sid, stime) = self.current.expect("a snapshot is being searched");
        if self.json {
            if !self.inuse {
                self.w.write_all(b"[")?;
                self.inuse = true;
            }
            if self.hits > 0 {
                self.w.write_all(b",")?;
            }
            let mut b = Vec::with_capacity(300);
            b.extend_from_slice(b"{\"object_type\":");
            write_json_str(&mut b, kind);
            b.extend_from_slice(format!(",\"id\":\"{id}\",\"path\":").as_bytes());
            write_json_bytes_as_str(&mut b, path);
            if let Some(p) = parent {
                b.extend_from_slice(format!(",\"parent_tree\":\"{p}\"").as_bytes());
            }
            b.extend_from_slice(
                format!(
                    ",\"snapshot\":\"{sid}\",\"time\":\"{}\"}}",
                    gotime::format_rfc3339_nano(&stime)
                )
                .as_bytes(),
            );
            self.w.write_all(&b)?;
            self.hits += 1;
        } else {
            let mut b = format!("Found {kind} {id}\n").into_bytes();
            if kind == "blob" {
                b.extend_from_slice(b" ... in file ");
                b.extend_from_slice(path);
                let p = parent.map(|p| p.to_hex()).unwrap_or_default();
                b.extend_from_slice(format!("\n     (tree {p})\n").as_bytes());
            } else {
                b.extend_from_slice(b" ... path ");
                b.extend_from_slice(path);
                b.push(b'\n');
            }
            b.extend_from_slice(
                format!(
                    " ... in snapshot {} ({})\n",
                    sid.short(),
                    output::local_time(&stime)
                )
                .as_bytes(),
            );
            self.w.write_all(&b)?;
        }
        Ok(())
    }

    /// restic prints this to stdout, even with --json.
    fn load_error(&mut self, parent: &Id) -> anyhow::Result<()> {
        let (sid, _) = self.current.expect("a snapshot is being searched");
        write!(
            self.w,
            "Unable to load tree {parent}\n ... which belongs to snapshot {sid}\n"
        )?;
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        if self.json {
            if let Some(old) = self.printed {
                write!(
                    self.w,
                    "],\"hits\":{},\"snapshot\":\"{}\"}}",
                    self.hits, old
                )?;
            }
            if self.inuse {
                self.w.write_all(b"]\n")?;
            } else {
                self.w.write_all(b"[]\n")?;
            }
        }
        Ok(())
    }
}

/// Go's mode bits for a node's type, as restic's `formatNode` adds them.
fn type_bits(kind: &NodeType) -> u32 {
    match kind {
        NodeType::Dir => mode::DIR,
        NodeType::Symlink => mode::SYMLINK,
        NodeType::Dev => mode::DEVICE,
        NodeType::Chardev => mode::DEVICE | mode::CHAR_DEVICE,
        NodeType::Fifo => mode::NAMED_PIPE,
        NodeType::Socket => mode::SOCKET,
        NodeType::File | NodeType::Other(_) => 0,
    }
}

/// restic's `formatNode`: the path, or an `ls -l` style line.
fn format_node(out: &mut Vec<u8>, path: &[u8], n: &Node, long: bool) {
    if !long {
        out.extend_from_slice(path);
        return;
    }
    out.extend_from_slice(
        format!(
            "{} {:5} {:5} {:6} {} ",
            output::permissions(type_bits(&n.kind) | n.mode),
            n.uid,
            n.gid,
            n.size,
            output::local_time(&n.mtime)
        )
        .as_bytes(),
    );
    out.extend_from_slice(path);
    if n.kind == NodeType::Symlink {
        out.extend_from_slice(b" -> ");
        out.extend_from_slice(&n.linktarget);
    }
}

/// A match as restic 0.14's `find --json` writes it: the node's JSON fields minus name,
/// inode, extended attributes, device, content and subtree, after `path` and `permissions`.
fn node_json(out: &mut Vec<u8>, path: &[u8], n: &Node) {
    out.extend_from_slice(b"{\"path\":");
    write_json_bytes_as_str(out, path);
    out.extend_from_slice(b",\"permissions\":");
    write_json_str(out, &output::permissions(n.mode));
    out.extend_from_slice(b",\"type\":");
    write_json_str(out, n.kind.as_str());
    if n.mode != 0 {
        out.extend_from_slice(format!(",\"mode\":{}", n.mode).as_bytes());
    }
    for (k, t) in [
        ("mtime", &n.mtime),
        ("atime", &n.atime),
        ("ctime", &n.ctime),
    ] {
        out.extend_from_slice(
            format!(",\"{k}\":\"{}\"", gotime::format_rfc3339_nano(t)).as_bytes(),
        );
    }
    out.extend_from_slice(format!(",\"uid\":{},\"gid\":{}", n.uid, n.gid).as_bytes());
    for (k, v) in [("user", &n.user), ("group", &n.group)] {
        if !v.is_empty() {
            out.extend_from_slice(format!(",\"{k}\":").as_bytes());
            write_json_str(out, v);
        }
    }
    for (k, v) in [
        ("device_id", n.device_id),
        ("size", n.size),
        ("links", n.links),
    ] {
        if v != 0 {
            out.extend_from_slice(format!(",\"{k}\":{v}").as_bytes());
        }
    }
    if !n.linktarget.is_empty() {
        out.extend_from_slice(b",\"linktarget\":");
        write_json_bytes_as_str(out, &n.linktarget);
    }
    if !n.error.is_empty() {
        out.extend_from_slice(b",\"error\":");
        write_json_str(out, &n.error);
    }
    out.push(b'}');
}

/// Every walk stops at Ctrl-C; nodes are visited in name order (`walk_sorted`), as restic's
/// walker sorts them.
fn walk_options() -> WalkOptions<'static> {
    WalkOptions::interruptible(&crate::signals::INTERRUPTED)
}

fn check_node(n: &Node, path: &[u8]) -> anyhow::Result<()> {
    if n.kind.as_str().is_empty() {
        anyhow::bail!("node type is empty for node {:?}", n.name_lossy());
    }
    if n.kind == NodeType::Dir && n.subtree.is_none() {
        anyhow::bail!(
            "subtree for node {} in tree {} is nil",
            n.name_lossy(),
            String::from_utf8_lossy(path)
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Searching by pattern

/// What searching a directory (a tree at a path) printed, kept so that the same tree at the
/// same path in another snapshot is printed again without loading anything.
enum Event {
    Match { path: Vec<u8>, node: Box<Node> },
    LoadError { parent: Id },
    Sub(Rc<Vec<Event>>),
}

struct PatternFinder<'a> {
    repo: &'a IndexedRepository,
    patterns: Vec<Option<Pattern>>,
    ignore_case: bool,
    oldest: Option<GoTime>,
    newest: Option<GoTime>,
    /// (tree, hash of its path) → what searching it printed. The matches below a directory
    /// depend only on its tree and its path, so a repeat is replayed instead of re-read.
    memo: HashMap<(Id, u64), Rc<Vec<Event>>>,
}

fn path_key(tree: &Id, path: &[u8]) -> (Id, u64) {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    (*tree, h.finish())
}

fn replay<W: Write>(events: &[Event], out: &mut Output<W>) -> anyhow::Result<()> {
    for e in events {
        match e {
            Event::Match { path, node } => out.pattern(path, node)?,
            Event::LoadError { parent } => out.load_error(parent)?,
            Event::Sub(sub) => replay(sub, out)?,
        }
    }
    Ok(())
}

/// A lighter copy of a node for the memo: only what printing needs.
fn printable(n: &Node) -> Box<Node> {
    let mut c = n.clone();
    c.content = None;
    c.extended_attributes.clear();
    c.generic_attributes.clear();
    Box::new(c)
}

impl PatternFinder<'_> {
    fn search_snapshot<W: Write>(&mut self, root: &Id, out: &mut Output<W>) -> anyhow::Result<()> {
        if let Some(ev) = self.memo.get(&path_key(root, b"/")).cloned() {
            return replay(&ev, out);
        }
        let repo = self.repo;
        let mut v = PatternVisitor {
            f: self,
            out,
            root: *root,
            frames: Vec::new(),
            pending: None,
        };
        walk::walk_sorted(repo, *root, b"", &walk_options(), &mut v)?;
        if let Some(f) = v.frames.pop() {
            v.f.memo.insert(path_key(&f.id, &f.path), Rc::new(f.events));
        }
        Ok(())
    }

    fn matches(&self, path: &[u8]) -> anyhow::Result<bool> {
        let comps = components(path);
        Ok(self
            .patterns
            .iter()
            .any(|p| p.as_ref().is_none_or(|p| p.matches(&comps))))
    }

    fn child_may_match(&self, path: &[u8]) -> anyhow::Result<bool> {
        let comps = components(path);
        Ok(self
            .patterns
            .iter()
            .any(|p| p.as_ref().is_none_or(|p| p.may_match_below(&comps))))
    }

    fn in_time_range(&self, n: &Node) -> bool {
        if let Some(o) = &self.oldest {
            if n.mtime < *o {
                return false;
            }
        }
        if let Some(nw) = &self.newest {
            if n.mtime > *nw {
                return false;
            }
        }
        true
    }
}

/// A directory being searched: its tree, its path and what searching it printed so far.
struct PatternFrame {
    id: Id,
    path: Vec<u8>,
    events: Vec<Event>,
}

/// One snapshot's search, driven by the core walker (names in order, as restic's walker
/// visits them). Directories whose (tree, path) was searched before are replayed from the
/// memo instead of being entered.
struct PatternVisitor<'f, 'r, 'o, W: Write> {
    f: &'f mut PatternFinder<'r>,
    out: &'o mut Output<W>,
    root: Id,
    frames: Vec<PatternFrame>,
    /// The directory being entered: its path, and its node if it matched (printed once its
    /// tree could be loaded, as restic prints it).
    pending: Option<(Vec<u8>, Option<Box<Node>>)>,
}

impl<W: Write> Visitor for PatternVisitor<'_, '_, '_, W> {
    fn node(&mut self, _: &[u8], n: &Node, _depth: usize) -> anyhow::Result<Visit> {
        let Some(top) = self.frames.last_mut() else {
            anyhow::bail!("find: node outside of a tree");
        };
        let path = go_path_join(&top.path, &n.name);
        check_node(n, &path)?;
        let lowered;
        let norm: &[u8] = if self.f.ignore_case {
            lowered = go_to_lower(&path);
            &lowered
        } else {
            &path
        };
        let found = self.f.matches(norm)?;
        if n.kind != NodeType::Dir {
            if found && self.f.in_time_range(n) {
                self.out.pattern(&path, n)?;
                top.events.push(Event::Match {
                    path,
                    node: printable(n),
                });
            }
            return Ok(Visit::Skip);
        }
        let matched = found && self.f.in_time_range(n);
        if !matched && !self.f.child_may_match(norm)? {
            return Ok(Visit::Skip);
        }
        let Some(sub) = n.subtree else {
            anyhow::bail!("find: directory without subtree");
        };
        if let Some(ev) = self.f.memo.get(&path_key(&sub, &path)).cloned() {
            if matched {
                self.out.pattern(&path, n)?;
                top.events.push(Event::Match {
                    path,
                    node: printable(n),
                });
            }
            if !ev.is_empty() {
                replay(&ev, self.out)?;
                top.events.push(Event::Sub(ev));
            }
            return Ok(Visit::Skip);
        }
        self.pending = Some((path, matched.then(|| printable(n))));
        Ok(Visit::Descend)
    }

    fn tree(&mut self, _: &[u8], id: &Id, _: &Tree) -> anyhow::Result<()> {
        let Some(parent) = self.frames.last_mut() else {
            self.frames.push(PatternFrame {
                id: *id,
                path: b"/".to_vec(),
                events: Vec::new(),
            });
            return Ok(());
        };
        let Some((path, matched)) = self.pending.take() else {
            anyhow::bail!("find: tree without directory");
        };
        if let Some(node) = matched {
            self.out.pattern(&path, &node)?;
            parent.events.push(Event::Match {
                path: path.clone(),
                node,
            });
        }
        self.frames.push(PatternFrame {
            id: *id,
            path,
            events: Vec::new(),
        });
        Ok(())
    }

    fn tree_error(&mut self, _: &[u8], _: &Id, e: anyhow::Error) -> anyhow::Result<()> {
        if e.is::<walk::TooDeep>() {
            return Err(e);
        }
        // restic reports the tree holding the node, and skips the node.
        self.pending = None;
        match self.frames.last_mut() {
            None => self.out.load_error(&self.root),
            Some(top) => {
                self.out.load_error(&top.id)?;
                top.events.push(Event::LoadError { parent: top.id });
                Ok(())
            }
        }
    }

    fn leave(&mut self, _: &[u8], _: &Node, _depth: usize) -> anyhow::Result<()> {
        let Some(f) = self.frames.pop() else {
            return Ok(());
        };
        let ev = Rc::new(f.events);
        self.f.memo.insert(path_key(&f.id, &f.path), ev.clone());
        if let Some(parent) = self.frames.last_mut() {
            if !ev.is_empty() {
                parent.events.push(Event::Sub(ev));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Searching by blob, tree or pack id

/// Ids to look for: full ids, and prefixes not resolved yet.
#[derive(Default)]
struct IdSet {
    full: HashSet<Id>,
    prefixes: Vec<String>,
    /// How many ids were asked for (restic's `len(treeIDs)`).
    asked: usize,
}

impl IdSet {
    fn new(pats: &[String]) -> IdSet {
        let mut s = IdSet::default();
        let mut seen = HashSet::new();
        for p in pats {
            let p = p.to_ascii_lowercase();
            if !seen.insert(p.clone()) {
                continue;
            }
            s.asked += 1;
            match Id::from_hex(&p) {
                Ok(id) => {
                    s.full.insert(id);
                }
                Err(_) => s.prefixes.push(p),
            }
        }
        s
    }

    fn from_ids(ids: impl IntoIterator<Item = Id>) -> IdSet {
        let full: HashSet<Id> = ids.into_iter().collect();
        IdSet {
            asked: full.len(),
            full,
            prefixes: Vec::new(),
        }
    }

    /// Does `id` match? A prefix that matches is replaced by the full id (as restic does
    /// with short ids), so that it names one object from then on.
    fn check(&mut self, id: &Id) -> bool {
        if self.full.contains(id) {
            return true;
        }
        if self.prefixes.is_empty() {
            return false;
        }
        let hex = id.to_hex();
        if let Some(i) = self
            .prefixes
            .iter()
            .position(|p| !p.is_empty() && hex.starts_with(p.as_str()))
        {
            self.prefixes.remove(i);
            self.full.insert(*id);
            return true;
        }
        false
    }

    /// Everything to report packs for: resolved ids, then what was never found.
    fn listing(&self) -> Vec<String> {
        let mut v: Vec<String> = self.full.iter().map(|i| i.to_hex()).collect();
        v.sort();
        let mut rest = self.prefixes.clone();
        rest.sort();
        v.extend(rest);
        v
    }
}

#[derive(Default)]
struct IdSearch {
    blobs: Option<IdSet>,
    trees: Option<IdSet>,
    /// With --tree, restic stops searching a snapshot once it has found as many trees as
    /// were asked for (counting finds across all snapshots).
    stop_when_all_trees_found: bool,
}

struct IdFinder<'a> {
    repo: &'a IndexedRepository,
    ids: &'a mut IdSearch,
    /// Trees known to hold nothing searched for. Matching only ever narrows (a prefix is
    /// replaced by one full id), so a tree without hits stays without hits.
    barren: HashSet<Id>,
    items_found: usize,
}

enum Flow {
    Continue { hit: bool },
    Stop,
}

impl IdFinder<'_> {
    fn search_snapshot<W: Write>(&mut self, root: &Id, out: &mut Output<W>) -> anyhow::Result<()> {
        let repo = self.repo;
        let mut v = IdVisitor {
            f: self,
            out,
            root: *root,
            frames: Vec::new(),
            pending: None,
            stop: false,
        };
        walk::walk_sorted(repo, *root, b"", &walk_options(), &mut v)?;
        if !v.stop {
            if let Some(f) = v.frames.pop() {
                if !f.hit {
                    v.f.barren.insert(f.id);
                }
            }
        }
        Ok(())
    }

    fn check_tree<W: Write>(
        &mut self,
        id: &Id,
        path: &[u8],
        out: &mut Output<W>,
    ) -> anyhow::Result<Flow> {
        let Some(trees) = self.ids.trees.as_mut() else {
            return Ok(Flow::Continue { hit: false });
        };
        if !trees.check(id) {
            return Ok(Flow::Continue { hit: false });
        }
        out.object("tree", id, path, None)?;
        self.items_found += 1;
        if self.ids.stop_when_all_trees_found && self.items_found >= trees.asked {
            return Ok(Flow::Stop);
        }
        Ok(Flow::Continue { hit: true })
    }
}

/// A directory being searched for ids: its tree, its path, and whether anything was found
/// in it.
struct IdFrame {
    id: Id,
    path: Vec<u8>,
    hit: bool,
}

/// One snapshot's search for ids, driven by the core walker. Trees known to be barren are
/// checked themselves but not entered.
struct IdVisitor<'f, 'r, 'o, W: Write> {
    f: &'f mut IdFinder<'r>,
    out: &'o mut Output<W>,
    root: Id,
    frames: Vec<IdFrame>,
    /// Path of the directory being entered.
    pending: Option<Vec<u8>>,
    /// Everything asked for was found (or the root is barren): end the walk.
    stop: bool,
}

impl<W: Write> Visitor for IdVisitor<'_, '_, '_, W> {
    fn node(&mut self, _: &[u8], n: &Node, _depth: usize) -> anyhow::Result<Visit> {
        if self.stop {
            return Ok(Visit::Stop);
        }
        let Some(top) = self.frames.last_mut() else {
            anyhow::bail!("find: node outside of a tree");
        };
        let path = go_path_join(&top.path, &n.name);
        check_node(n, &path)?;
        match n.kind {
            NodeType::Dir => {
                let Some(sub) = n.subtree else {
                    anyhow::bail!("find: directory without subtree");
                };
                if !self.f.barren.contains(&sub) {
                    self.pending = Some(path);
                    return Ok(Visit::Descend);
                }
                match self.f.check_tree(&sub, &path, self.out)? {
                    Flow::Stop => {
                        self.stop = true;
                        return Ok(Visit::Stop);
                    }
                    Flow::Continue { hit } => top.hit |= hit,
                }
            }
            NodeType::File => {
                let Some(blobs) = self.f.ids.blobs.as_mut() else {
                    return Ok(Visit::Skip);
                };
                for id in n.content.iter().flatten() {
                    if blobs.check(id) {
                        self.out.object("blob", id, &path, Some(&top.id))?;
                        top.hit = true;
                    }
                }
            }
            _ => {}
        }
        Ok(Visit::Skip)
    }

    fn tree(&mut self, _: &[u8], id: &Id, _: &Tree) -> anyhow::Result<()> {
        let path = match self.frames.last() {
            None => b"/".to_vec(),
            Some(_) => self
                .pending
                .take()
                .ok_or_else(|| anyhow::anyhow!("find: tree without directory"))?,
        };
        match self.f.check_tree(id, &path, self.out)? {
            Flow::Stop => self.stop = true,
            Flow::Continue { hit } => {
                if let Some(parent) = self.frames.last_mut() {
                    parent.hit |= hit;
                } else if self.f.barren.contains(id) {
                    // A root known to hold nothing is not searched again.
                    self.stop = true;
                }
            }
        }
        self.frames.push(IdFrame {
            id: *id,
            path,
            hit: false,
        });
        Ok(())
    }

    fn tree_error(&mut self, _: &[u8], _: &Id, e: anyhow::Error) -> anyhow::Result<()> {
        if e.is::<walk::TooDeep>() {
            return Err(e);
        }
        self.pending = None;
        match self.frames.last_mut() {
            None => self.out.load_error(&self.root),
            Some(top) => {
                self.out.load_error(&top.id)?;
                top.hit = true;
                Ok(())
            }
        }
    }

    fn leave(&mut self, _: &[u8], _: &Node, _depth: usize) -> anyhow::Result<()> {
        let Some(f) = self.frames.pop() else {
            return Ok(());
        };
        if self.stop {
            return Ok(());
        }
        if !f.hit {
            self.f.barren.insert(f.id);
        } else if let Some(parent) = self.frames.last_mut() {
            parent.hit = true;
        }
        Ok(())
    }
}

/// The data and tree blobs of the packs named by `pats` (ids or prefixes), read from the
/// packs' headers, or from the index for packs missing from the repository.
fn packs_to_blobs(repo: &IndexedRepository, pats: &[String]) -> anyhow::Result<(Vec<Id>, Vec<Id>)> {
    let pats: Vec<String> = pats.iter().map(|p| p.to_ascii_lowercase()).collect();
    let mut found = vec![false; pats.len()];
    let mut data = Vec::new();
    let mut trees = Vec::new();
    let mut add = |blobs: &mut dyn Iterator<Item = PackedBlob>| {
        for b in blobs {
            match b.ty {
                BlobType::Data => data.push(b.id),
                BlobType::Tree => trees.push(b.id),
            }
        }
    };
    // Which of the patterns `only` (indices into pats) name this pack?
    let hits = |name: &str, only: &[usize]| -> Vec<usize> {
        only.iter()
            .copied()
            .filter(|i| !pats[*i].is_empty() && name.starts_with(pats[*i].as_str()))
            .collect()
    };
    let all: Vec<usize> = (0..pats.len()).collect();
    let mut in_backend = HashSet::new();
    for f in repo.backend().list(FileType::Data)? {
        let h = hits(&f.name, &all);
        if !h.is_empty() {
            add(&mut read_pack_header(repo, &f.name, f.size)?.into_iter());
            for i in h {
                found[i] = true;
            }
        }
        in_backend.insert(f.name);
    }
    let unfound: Vec<usize> = all.iter().copied().filter(|i| !found[*i]).collect();
    if !unfound.is_empty() {
        // Packs missing from the repository: take their blobs from the index.
        let mut from_index = BTreeSet::new();
        for idx in repo.list_ids(FileType::Index)? {
            let file = IndexFile::parse(&repo.load_unpacked(FileType::Index, &idx)?)?;
            for p in &file.packs {
                let name = p.id.to_hex();
                if in_backend.contains(&name) {
                    continue;
                }
                let h = hits(&name, &unfound);
                if !h.is_empty() {
                    add(&mut p.blobs.iter().map(|b| b.to_packed()));
                    for i in h {
                        found[i] = true;
                    }
                    from_index.insert(name);
                }
            }
        }
        if !from_index.is_empty() {
            eprintln!(
                "some pack files are missing from the repository, getting their blobs from the repository index: [{}]\n",
                from_index.into_iter().collect::<Vec<_>>().join(" ")
            );
        }
    }
    let mut missing: Vec<&str> = pats
        .iter()
        .zip(&found)
        .filter(|(_, f)| !**f)
        .map(|(p, _)| p.as_str())
        .collect();
    if !missing.is_empty() {
        missing.sort();
        missing.dedup();
        anyhow::bail!("unable to find pack(s): [{}]", missing.join(" "));
    }
    Ok((data, trees))
}

fn read_pack_header(
    repo: &IndexedRepository,
    name: &str,
    size: u64,
) -> anyhow::Result<Vec<PackedBlob>> {
    let h = Handle::new(FileType::Data, name);
    let mut want = pack::HEADER_PROBE.min(size);
    loop {
        let tail = repo.backend().load(&h, size - want, want)?;
        match pack::parse_header_from_tail(repo.key(), &tail, size)
            .map_err(|e| anyhow::anyhow!("pack {name}: {e:#}"))?
        {
            Ok(blobs) => return Ok(blobs),
            Err(n) if n > want && n <= size => want = n,
            Err(_) => anyhow::bail!("pack {name}: invalid header"),
        }
    }
}

/// `--show-pack-id`: where each blob and tree searched for is stored.
fn show_packs<W: Write>(repo: &IndexedRepository, ids: &IdSearch, w: &mut W) -> anyhow::Result<()> {
    let kinds = [
        (BlobType::Data, ids.blobs.as_ref()),
        (BlobType::Tree, ids.trees.as_ref()),
    ];
    for (ty, set) in kinds {
        let Some(set) = set else { continue };
        for s in set.listing() {
            let id = match go_parse_id(&s) {
                Ok(id) => id,
                Err(e) => {
                    writeln!(
                        w,
                        "Note: cannot find pack for object '{s}', unable to parse ID: {e}"
                    )?;
                    continue;
                }
            };
            match repo.index().lookup_all(ty, &id).first() {
                None => writeln!(w, "Object {} not found in the index", id.short())?,
                Some(loc) => {
                    let b = &loc.blob;
                    writeln!(
                        w,
                        "Object belongs to pack {}\n ... Pack {}: <Blob ({}) {}, offset {}, length {}, uncompressed length {}>",
                        loc.pack,
                        loc.pack.short(),
                        b.ty,
                        b.id.short(),
                        b.offset,
                        b.length,
                        b.uncompressed_length
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// restic's `ParseID`, with its error messages.
fn go_parse_id(s: &str) -> Result<Id, String> {
    let b = s.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if !c.is_ascii_hexdigit() {
            if i % 2 == 1 || i + 1 < b.len() || b.len().is_multiple_of(2) {
                let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
                return Err(format!(
                    "hex.DecodeString: encoding/hex: invalid byte: U+{:04X} {ch:?}",
                    ch as u32
                ));
            }
            break;
        }
    }
    if b.len() % 2 == 1 {
        return Err("hex.DecodeString: encoding/hex: odd length hex string".into());
    }
    Id::from_hex(s).map_err(|_| "invalid length for hash".to_string())
}

/// A find pattern; None (the empty pattern) matches everything, and a leading `!` is ignored,
/// as restic's find does.
fn pattern(p: &str) -> anyhow::Result<Option<Pattern>> {
    let p = p.strip_prefix('!').unwrap_or(p);
    if p.is_empty() {
        return Ok(None);
    }
    Pattern::new(p).map(Some)
}

/// Path components for matching (the root has none).
fn components(path: &[u8]) -> Vec<&[u8]> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .collect()
}

/// Go's `strings.ToLower`: ASCII fast path; otherwise rune by rune with invalid bytes
/// becoming U+FFFD.
fn go_to_lower(s: &[u8]) -> Vec<u8> {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(s.len());
    for chunk in s.utf8_chunks() {
        // Go maps each character to one character (U+0130 to 'i', its first in Rust).
        out.extend(
            chunk
                .valid()
                .chars()
                .map(|c| c.to_lowercase().next().unwrap_or(c)),
        );
        // Each byte that is not UTF-8 becomes U+FFFD, as in Go.
        out.extend(std::iter::repeat_n('\u{fffd}', chunk.invalid().len()));
    }
    out.into_bytes()
}

/// Go's `path.Clean` on bytes.
pub(crate) fn go_clean(p: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b".".to_vec();
    }
    let rooted = p[0] == b'/';
    let n = p.len();
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let (mut r, mut dotdot) = (0, 0);
    if rooted {
        out.push(b'/');
        r = 1;
        dotdot = 1;
    }
    while r < n {
        if p[r] == b'/' || (p[r] == b'.' && (r + 1 == n || p[r + 1] == b'/')) {
            r += 1;
        } else if p[r] == b'.' && p[r + 1] == b'.' && (r + 2 == n || p[r + 2] == b'/') {
            r += 2;
            if out.len() > dotdot {
                let mut w = out.len() - 1;
                while w > dotdot && out[w] != b'/' {
                    w -= 1;
                }
                out.truncate(w);
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if (rooted && out.len() != 1) || (!rooted && !out.is_empty()) {
                out.push(b'/');
            }
            while r < n && p[r] != b'/' {
                out.push(p[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        return b".".to_vec();
    }
    out
}

/// Go's `path.Join(prefix, name)`, for a `prefix` that is clean apart from perhaps a
/// trailing slash (as every path built while walking a tree is).
pub(crate) fn go_path_join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let plain = !name.is_empty() && !name.contains(&b'/') && name != b"." && name != b"..";
    if plain && prefix.starts_with(b"/") {
        let mut p = Vec::with_capacity(prefix.len() + 1 + name.len());
        p.extend_from_slice(prefix);
        if !prefix.ends_with(b"/") {
            p.push(b'/');
        }
        p.extend_from_slice(name);
        return p;
    }
    let mut p = prefix.to_vec();
    if !prefix.is_empty() && !name.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    if p.is_empty() {
        return p;
    }
    go_clean(&p)
}

// ---------------------------------------------------------------------------------------------
// --oldest / --newest: restic's time formats, in local time unless a zone is given

/// restic's accepted layouts, in Go's reference-time notation.
const LAYOUTS: [&str; 11] = [
    "2006-01-02",
    "2006-01-02 15:04",
    "2006-01-02 15:04:05",
    "2006-01-02 15:04:05 -0700",
    "2006-01-02 15:04:05 MST",
    "02.01.2006",
    "02.01.2006 15:04",
    "02.01.2006 15:04:05",
    "02.01.2006 15:04:05 -0700",
    "02.01.2006 15:04:05 MST",
    "Mon Jan 2 15:04:05 -0700 MST 2006",
];

/// The layout elements used in [`LAYOUTS`]; anything else is literal text.
const ELEMENTS: [&str; 11] = [
    "2006", "-0700", "MST", "Jan", "Mon", "01", "02", "15", "04", "05", "2",
];

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn parse_time(s: &str) -> anyhow::Result<GoTime> {
    LAYOUTS
        .iter()
        .find_map(|l| parse_layout(s, l))
        .ok_or_else(|| anyhow::anyhow!("unable to parse time: {s:?}"))
}

/// Between `min` and `max` leading digits of `v`.
fn digits(v: &str, min: usize, max: usize) -> Option<(u32, &str)> {
    let n = v.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if n < min {
        return None;
    }
    Some((v[..n].parse().ok()?, &v[n..]))
}

/// Go's `time.ParseInLocation(layout, s, time.Local)` for the elements restic's layouts use.
fn parse_layout(s: &str, layout: &str) -> Option<GoTime> {
    use chrono::{NaiveDate, TimeZone};
    let mut v = s;
    let mut l = layout;
    let (mut y, mut mo, mut d, mut h, mut mi, mut sec, mut nanos) = (0i32, 1, 1, 0, 0, 0, 0);
    let mut offset: Option<i32> = None;
    let mut abbrev: Option<&str> = None;
    while !l.is_empty() {
        let Some(el) = ELEMENTS.iter().find(|e| l.starts_with(**e)) else {
            let c = l.chars().next()?;
            l = &l[c.len_utf8()..];
            if c == ' ' {
                // A space in the layout matches any run of spaces, as in Go.
                let t = v.trim_start_matches(' ');
                if t.len() == v.len() {
                    return None;
                }
                v = t;
            } else {
                v = v.strip_prefix(c)?;
            }
            continue;
        };
        l = &l[el.len()..];
        match *el {
            "2006" => {
                let (n, r) = digits(v, 4, 4)?;
                (y, v) = (n as i32, r);
            }
            "01" => (mo, v) = digits(v, 2, 2)?,
            "02" => (d, v) = digits(v, 2, 2)?,
            "2" => (d, v) = digits(v, 1, 2)?,
            "15" => (h, v) = digits(v, 1, 2)?,
            "04" => (mi, v) = digits(v, 2, 2)?,
            "05" => {
                (sec, v) = digits(v, 2, 2)?;
                // Go accepts a fraction after the seconds even if the layout has none.
                if let Some(r) = v.strip_prefix('.').or_else(|| v.strip_prefix(',')) {
                    let n = r.bytes().take_while(u8::is_ascii_digit).count();
                    if n > 0 {
                        let frac = &r[..n.min(9)];
                        nanos = frac.parse::<u32>().ok()? * 10u32.pow(9 - frac.len() as u32);
                        v = &r[n..];
                    }
                }
            }
            "-0700" => {
                let sign = match v.as_bytes().first()? {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                let (hh, r) = digits(&v[1..], 2, 2)?;
                let (mm, r) = digits(r, 2, 2)?;
                offset = Some(sign * (hh as i32 * 3600 + mm as i32 * 60));
                v = r;
            }
            "MST" => {
                let n = v.bytes().take_while(u8::is_ascii_uppercase).count();
                if !(3..=5).contains(&n) {
                    return None;
                }
                abbrev = Some(&v[..n]);
                v = &v[n..];
            }
            "Jan" => {
                let name = v.get(..3)?.to_ascii_lowercase();
                mo = MONTHS.iter().position(|m| *m == name)? as u32 + 1;
                v = &v[3..];
            }
            _ => {
                // "Mon": a weekday name, checked for form only, as Go does.
                let name = v.get(..3)?.to_ascii_lowercase();
                WEEKDAYS.iter().position(|m| *m == name)?;
                v = &v[3..];
            }
        }
    }
    if !v.is_empty() || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let naive = NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_nano_opt(h, mi, sec, nanos)?;
    if let Some(off) = offset {
        let tz = chrono::FixedOffset::east_opt(off)?;
        return tz.from_local_datetime(&naive).single();
    }
    let local = local_time_of(naive);
    match abbrev {
        None => Some(local),
        Some(a) if a != "UTC" && local_abbrev(&local).as_deref() == Some(a) => Some(local),
        // "UTC", and (as in Go) an unknown abbreviation: a zone with offset 0.
        Some(_) => Some(chrono::Utc.from_utc_datetime(&naive).fixed_offset()),
    }
}

/// A wall-clock time in the local zone (Go's `ParseInLocation(..., time.Local)`).
fn local_time_of(naive: chrono::NaiveDateTime) -> GoTime {
    use chrono::{LocalResult, Offset, TimeZone};
    match chrono::Local.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.fixed_offset(),
        LocalResult::None => {
            // In a gap: use the offset in effect just before it.
            let off = chrono::Local
                .offset_from_utc_datetime(&(naive - chrono::TimeDelta::hours(1)))
                .fix();
            off.from_local_datetime(&naive)
                .single()
                .unwrap_or_else(|| chrono::Utc.from_utc_datetime(&naive).fixed_offset())
        }
    }
}

/// The local zone's abbreviation at `t` (e.g. "CET"), from the C library.
fn local_abbrev(t: &GoTime) -> Option<String> {
    let secs = t.timestamp() as libc::time_t;
    // SAFETY: localtime_r writes into the zeroed tm we own; tm_zone then points to static
    // storage of the C library (or is null).
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() || tm.tm_zone.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr(tm.tm_zone)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, path: &str) -> bool {
        pattern(p)
            .unwrap()
            .is_none_or(|p| p.matches(&components(path.as_bytes())))
    }

    /// Go's filepath.Match semantics, one component at a time.
    #[test]
    fn go_filepath_match() {
        let ok = |p: &str, n: &str| m(&format!("/{p}"), &format!("/{n}"));
        assert!(ok("abc", "abc"));
        assert!(ok("*", "abc"));
        assert!(ok("*c", "abc"));
        assert!(ok("a*/b", "abc/b"));
        assert!(ok("a*b*c*d*e*/f", "axbxcxdxe/f"));
        assert!(!ok("a*b?c*x", "abxbbxdbxebxczzy"));
        assert!(ok("ab[c]", "abc"));
        assert!(ok("ab[b-d]", "abc"));
        assert!(!ok("ab[^c]", "abc"));
        assert!(ok("ab[^b-d]", "abe"));
        assert!(ok("a\\*b", "a*b"));
        assert!(!ok("a\\*b", "ab"));
        assert!(ok("a?b", "a☺b"));
        assert!(ok("a[^a]b", "a☺b"));
        assert!(!ok("a???b", "a☺b"));
        assert!(ok("*x", "xxx"));
        assert!(ok("[\\-]", "-"));
        for bad in [
            "[", "[^", "[^bc", "a[", "a\\", "[a-", "[]a]", "[-]", "[x-]", "[]", "*x[",
        ] {
            assert!(pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn restic_filter_match() {
        assert!(m("f1", "/src/f1"));
        assert!(m("foo", "/src/foo/bar/baz"));
        assert!(m("foo/*", "/src/foo/bar"));
        assert!(m("foo/*", "/src/foo/bar/baz"));
        assert!(!m("foo/*", "/src/foo"));
        assert!(m("/src/foo", "/src/foo/x"));
        assert!(!m("/foo", "/src/foo"));
        assert!(m("/src/**/baz", "/src/foo/bar/baz"));
        assert!(m("**/baz", "/src/foo/bar/baz"));
        assert!(m("", "/x"));
        assert!(m("src/./foo/", "/src/foo"));
        assert!(m("!foo", "/foo"));
        let c = |p: &str, path: &str| {
            pattern(p)
                .unwrap()
                .is_none_or(|p| p.may_match_below(&components(path.as_bytes())))
        };
        assert!(c("x", "/a"));
        assert!(c("/a/b/c", "/a"));
        assert!(!c("/a/b/c", "/x"));
        assert!(c("/a/**/z", "/a/q/r"));
        assert!(!c("/a/**/z", "/b/q/r"));
    }

    #[test]
    fn paths() {
        assert_eq!(go_path_join(b"/", b"a"), b"/a");
        assert_eq!(go_path_join(b"/a", b"b"), b"/a/b");
        assert_eq!(go_path_join(b"/a/", b"b"), b"/a/b");
        assert_eq!(go_path_join(b"/a", b".."), b"/");
        assert_eq!(go_clean(b"a//b/./c/.."), b"a/b");
        assert_eq!(go_clean(b"/../x"), b"/x");
        assert_eq!(go_clean(b"../../x"), b"../../x");
        assert_eq!(go_clean(b"a/b/../../.."), b"..");
        assert_eq!(go_clean(b""), b".");
    }

    #[test]
    fn lower() {
        assert_eq!(go_to_lower(b"AbC"), b"abc");
        assert_eq!(go_to_lower("ÄİX".as_bytes()), "äix".as_bytes());
        assert_eq!(go_to_lower(b"A\xffB"), "a\u{fffd}b".as_bytes());
    }

    #[test]
    fn times() {
        let t = |s: &str| parse_time(s).map(|t| t.timestamp()).ok();
        assert_eq!(t("2020-01-02 03:04:05 +0100"), Some(1577930645));
        assert_eq!(t("02.01.2020 03:04:05 +0100"), Some(1577930645));
        assert_eq!(t("Thu Jan 2 03:04:05 +0100 CET 2020"), Some(1577930645));
        assert_eq!(t("2020-01-02 02:04:05 UTC"), Some(1577930645));
        assert_eq!(t("2020-01-02 03:04:05.5 +0100"), Some(1577930645));
        assert!(t("2020-01-02").is_some());
        assert!(t("2020-01-02 3:04").is_some());
        assert!(t("2020-1-02").is_none());
        assert!(t("2020-02-30").is_none());
        assert!(t("2020-01-02 03:04:05x").is_none());
        assert!(t("xx").is_none());
    }

    #[test]
    fn parse_ids() {
        assert_eq!(
            go_parse_id("10357c82").unwrap_err(),
            "invalid length for hash"
        );
        assert_eq!(
            go_parse_id("abc").unwrap_err(),
            "hex.DecodeString: encoding/hex: odd length hex string"
        );
        assert_eq!(
            go_parse_id("zz").unwrap_err(),
            "hex.DecodeString: encoding/hex: invalid byte: U+007A 'z'"
        );
        assert!(go_parse_id(&"ab".repeat(32)).is_ok());
    }
}
