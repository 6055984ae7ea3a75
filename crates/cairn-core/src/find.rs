//! restic's `find`: the files and directories of snapshots whose paths match patterns
//! ([`search_patterns`]), or that hold given blobs, trees or packs ([`IdSearch`],
//! [`search_ids`]). What is found goes to a [`FindOutput`], which prints it.
//!
//! Patterns follow restic's `filter.Match` on the whole path in the snapshot (with Go's
//! `filepath.Match` for each component): a relative pattern matches any run of path
//! components (so `foo` matches `/a/foo` and everything below it), an absolute one matches
//! from the root, and `**` spans directories.
//!
//! Where restic 0.14 has known bugs that later versions fixed, cairn follows the fix:
//! directories with identical content are searched every time they occur (0.14 skipped
//! repeats), a pack's tree blobs are found as trees with `--pack` (0.14 found nothing), and
//! `--tree` also checks a snapshot's root tree. IDs given to `--blob`, `--tree` and `--pack`
//! may be prefixes of any length (0.14: exactly 8 or 64 characters).

use crate::archiver::filter::Pattern;
use crate::format::gotime::GoTime;
use crate::format::indexfile::IndexFile;
use crate::format::pack::{BlobType, PackedBlob};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeType, Tree};
use crate::observe::Observer;
use crate::repository::IndexedRepository;
use crate::util::gopath::join_bytes as go_path_join;
use crate::walk::{self, Visit, Visitor, WalkOptions};
use crate::Id;
use anyhow::Context;
use cairn_backend::FileType;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;

/// Where the matches go, in the order restic prints them.
pub trait FindOutput {
    /// The search moves on to this snapshot.
    fn snapshot(&mut self, id: &Id, time: &GoTime) -> anyhow::Result<()>;
    /// A node whose path matches (pattern search).
    fn pattern(&mut self, path: &[u8], node: &Node) -> anyhow::Result<()>;
    /// A blob (`kind` "blob", in the file at `path`, listed in tree `parent`) or a tree
    /// (`kind` "tree", the directory at `path`) searched for.
    fn object(
        &mut self,
        kind: &str,
        id: &Id,
        path: &[u8],
        parent: Option<&Id>,
    ) -> anyhow::Result<()>;
    /// A tree that could not be loaded; `parent` is the tree naming it (or the root).
    fn load_error(&mut self, parent: &Id) -> anyhow::Result<()>;
}

/// What a pattern search looks for.
pub struct PatternSearch {
    /// Patterns, already lowered with [`go_to_lower`] when `ignore_case`; the empty pattern
    /// matches everything and a leading `!` is ignored, as in restic.
    pub patterns: Vec<String>,
    pub ignore_case: bool,
    /// Only nodes modified at or after this time.
    pub oldest: Option<GoTime>,
    /// Only nodes modified at or before this time.
    pub newest: Option<GoTime>,
}

/// Searches the snapshots (in the order given) for paths matching the patterns.
pub fn search_patterns(
    repo: &IndexedRepository,
    snaps: &[(Id, Snapshot)],
    q: &PatternSearch,
    walk: &WalkOptions,
    out: &mut dyn FindOutput,
) -> crate::Result<()> {
    let patterns = q
        .patterns
        .iter()
        .map(|p| pattern(p))
        .collect::<anyhow::Result<_>>()?;
    let mut f = PatternFinder {
        repo,
        walk,
        patterns,
        ignore_case: q.ignore_case,
        oldest: q.oldest,
        newest: q.newest,
        memo: HashMap::new(),
    };
    for (id, sn) in snaps {
        out.snapshot(id, &sn.time)?;
        f.search_snapshot(&sn.tree, out)?;
    }
    Ok(())
}

/// What the ids of `find --blob/--tree/--pack` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    Blob,
    Tree,
    Pack,
}

impl IdSearch {
    /// The search for `pats` (ids or prefixes): packs are resolved to their blobs here, from
    /// the packs' headers, or from the index for packs missing from the repository (which is
    /// warned about); a pack that cannot be found at all is an error.
    pub fn new(
        repo: &IndexedRepository,
        kind: IdKind,
        pats: &[String],
        report: &dyn Observer,
    ) -> crate::Result<IdSearch> {
        let mut ids = IdSearch::default();
        match kind {
            IdKind::Blob => ids.blobs = Some(IdSet::new(pats)),
            IdKind::Tree => {
                ids.trees = Some(IdSet::new(pats));
                ids.stop_when_all_trees_found = true;
            }
            IdKind::Pack => {
                let (data, trees) = packs_to_blobs(repo, pats, report)?;
                ids.blobs = Some(IdSet::from_ids(data));
                ids.trees = Some(IdSet::from_ids(trees));
            }
        }
        Ok(ids)
    }

    /// What `--show-pack-id` reports on: data blobs, then trees; for each the ids found (in
    /// full), then what was never found (as given).
    pub fn wanted(&self) -> Vec<(BlobType, String)> {
        let mut v = Vec::new();
        for (ty, set) in [(BlobType::Data, &self.blobs), (BlobType::Tree, &self.trees)] {
            if let Some(set) = set {
                v.extend(set.listing().into_iter().map(|s| (ty, s)));
            }
        }
        v
    }
}

/// Searches the snapshots (in the order given) for the ids; prefixes that match are
/// resolved in `ids` as they are found.
pub fn search_ids(
    repo: &IndexedRepository,
    snaps: &[(Id, Snapshot)],
    ids: &mut IdSearch,
    walk: &WalkOptions,
    out: &mut dyn FindOutput,
) -> crate::Result<()> {
    let mut f = IdFinder {
        repo,
        walk,
        ids,
        barren: HashSet::new(),
        items_found: 0,
    };
    for (id, sn) in snaps {
        out.snapshot(id, &sn.time)?;
        f.search_snapshot(&sn.tree, out)?;
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
    walk: &'a WalkOptions<'a>,
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

fn replay(events: &[Event], out: &mut dyn FindOutput) -> anyhow::Result<()> {
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
    fn search_snapshot(&mut self, root: &Id, out: &mut dyn FindOutput) -> anyhow::Result<()> {
        if let Some(ev) = self.memo.get(&path_key(root, b"/")).cloned() {
            return replay(&ev, out);
        }
        let repo = self.repo;
        let walk = self.walk;
        let mut v = PatternVisitor {
            f: self,
            out,
            root: *root,
            frames: Vec::new(),
            pending: None,
        };
        walk::walk(
            repo,
            *root,
            b"",
            &WalkOptions {
                sorted: true,
                ..*walk
            },
            &mut v,
        )?;
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
struct PatternVisitor<'f, 'r, 'o> {
    f: &'f mut PatternFinder<'r>,
    out: &'o mut dyn FindOutput,
    root: Id,
    frames: Vec<PatternFrame>,
    /// The directory being entered: its path, and its node if it matched (printed once its
    /// tree could be loaded, as restic prints it).
    pending: Option<(Vec<u8>, Option<Box<Node>>)>,
}

impl Visitor for PatternVisitor<'_, '_, '_> {
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

/// The ids a search looks for, resolved as they are found.
#[derive(Default)]
pub struct IdSearch {
    blobs: Option<IdSet>,
    trees: Option<IdSet>,
    /// With --tree, restic stops searching a snapshot once it has found as many trees as
    /// were asked for (counting finds across all snapshots).
    stop_when_all_trees_found: bool,
}

struct IdFinder<'a> {
    repo: &'a IndexedRepository,
    walk: &'a WalkOptions<'a>,
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
    fn search_snapshot(&mut self, root: &Id, out: &mut dyn FindOutput) -> anyhow::Result<()> {
        let repo = self.repo;
        let walk = self.walk;
        let mut v = IdVisitor {
            f: self,
            out,
            root: *root,
            frames: Vec::new(),
            pending: None,
            stop: false,
        };
        walk::walk(
            repo,
            *root,
            b"",
            &WalkOptions {
                sorted: true,
                ..*walk
            },
            &mut v,
        )?;
        if !v.stop {
            if let Some(f) = v.frames.pop() {
                if !f.hit {
                    v.f.barren.insert(f.id);
                }
            }
        }
        Ok(())
    }

    fn check_tree(
        &mut self,
        id: &Id,
        path: &[u8],
        out: &mut dyn FindOutput,
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
struct IdVisitor<'f, 'r, 'o> {
    f: &'f mut IdFinder<'r>,
    out: &'o mut dyn FindOutput,
    root: Id,
    frames: Vec<IdFrame>,
    /// Path of the directory being entered.
    pending: Option<Vec<u8>>,
    /// Everything asked for was found (or the root is barren): end the walk.
    stop: bool,
}

impl Visitor for IdVisitor<'_, '_, '_> {
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
fn packs_to_blobs(
    repo: &IndexedRepository,
    pats: &[String],
    report: &dyn Observer,
) -> anyhow::Result<(Vec<Id>, Vec<Id>)> {
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
    for f in repo
        .backend()
        .list(FileType::Data)
        .map_err(anyhow::Error::new)?
    {
        let h = hits(&f.name, &all);
        if !h.is_empty() {
            let id = Id::from_hex(&f.name).with_context(|| format!("pack file {}", f.name))?;
            add(&mut crate::repair::read_pack_header(repo, &id, f.size)?.into_iter());
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
            report.warn(&format!(
                "some pack files are missing from the repository, getting their blobs from the repository index: [{}]\n",
                from_index.into_iter().collect::<Vec<_>>().join(" ")
            ));
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

/// restic's `ParseID`, with its error messages (for `--show-pack-id`).
pub fn go_parse_id(s: &str) -> Result<Id, String> {
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
    Ok(Pattern::new(p).map(Some)?)
}

/// Path components for matching (the root has none).
fn components(path: &[u8]) -> Vec<&[u8]> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .collect()
}

/// Go's `strings.ToLower`: ASCII fast path; otherwise rune by rune with invalid bytes
/// becoming U+FFFD.
pub fn go_to_lower(s: &[u8]) -> Vec<u8> {
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
    fn lower() {
        assert_eq!(go_to_lower(b"AbC"), b"abc");
        assert_eq!(go_to_lower("ÄİX".as_bytes()), "äix".as_bytes());
        assert_eq!(go_to_lower(b"A\xffB"), "a\u{fffd}b".as_bytes());
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

    #[derive(Default)]
    struct Recorder {
        found: Vec<String>,
    }

    impl FindOutput for Recorder {
        fn snapshot(&mut self, id: &Id, _: &GoTime) -> anyhow::Result<()> {
            self.found.push(format!("snapshot {}", id.short()));
            Ok(())
        }
        fn pattern(&mut self, path: &[u8], _: &Node) -> anyhow::Result<()> {
            self.found.push(String::from_utf8_lossy(path).into_owned());
            Ok(())
        }
        fn object(
            &mut self,
            kind: &str,
            id: &Id,
            path: &[u8],
            _: Option<&Id>,
        ) -> anyhow::Result<()> {
            self.found.push(format!(
                "{kind} {} {}",
                id.short(),
                String::from_utf8_lossy(path)
            ));
            Ok(())
        }
        fn load_error(&mut self, parent: &Id) -> anyhow::Result<()> {
            self.found.push(format!("error {}", parent.short()));
            Ok(())
        }
    }

    use crate::observe::Quiet;

    #[test]
    fn patterns_and_ids_are_found_in_every_snapshot() {
        use crate::testing::{dir, file, new_repo, Blobs};
        let (_d, mut repo) = new_repo();
        let (root, sub, x) = {
            let b = Blobs::new(&repo);
            let x = b.data(b"x");
            let sub = b.tree(vec![file("Foo.txt", vec![x], 1), file("bar", vec![], 0)]);
            let root = b.tree(vec![dir("d", sub), file("foo", vec![x], 1)]);
            b.finish();
            (root, sub, x)
        };
        repo.reload_index().expect("index");
        let snap = |t: &str| {
            Snapshot::parse(
                format!(r#"{{"time":"{t}","tree":"{root}","paths":["/d"]}}"#).as_bytes(),
            )
            .expect("snapshot")
        };
        let snaps = vec![
            (Id::hash(b"s1"), snap("2020-01-01T00:00:00Z")),
            (Id::hash(b"s2"), snap("2020-01-02T00:00:00Z")),
        ];
        let walk = WalkOptions::default();
        let mut r = Recorder::default();
        let q = PatternSearch {
            patterns: vec![go_to_lower(b"*FOO*").into_iter().map(char::from).collect()],
            ignore_case: true,
            oldest: None,
            newest: None,
        };
        search_patterns(&repo, &snaps, &q, &walk, &mut r).expect("search");
        let (s1, s2) = (snaps[0].0.short(), snaps[1].0.short());
        let want = |s: &str| vec![format!("snapshot {s}"), "/d/Foo.txt".into(), "/foo".into()];
        assert_eq!(r.found, [want(&s1), want(&s2)].concat());

        let mut ids = IdSearch::new(&repo, IdKind::Blob, &[x.to_hex()[..6].to_string()], &Quiet)
            .expect("ids");
        let mut r = Recorder::default();
        search_ids(&repo, &snaps[..1], &mut ids, &walk, &mut r).expect("search");
        assert_eq!(
            r.found,
            vec![
                format!("snapshot {s1}"),
                format!("blob {} /d/Foo.txt", x.short()),
                format!("blob {} /foo", x.short()),
            ]
        );
        assert_eq!(ids.wanted(), vec![(BlobType::Data, x.to_hex())]);

        let mut ids = IdSearch::new(&repo, IdKind::Tree, &[sub.to_hex()], &Quiet).expect("ids");
        let mut r = Recorder::default();
        search_ids(&repo, &snaps, &mut ids, &walk, &mut r).expect("search");
        assert_eq!(r.found[1], format!("tree {} /d", sub.short()));
        assert!(IdSearch::new(&repo, IdKind::Pack, &["ffff".to_string()], &Quiet).is_err());
    }
}
