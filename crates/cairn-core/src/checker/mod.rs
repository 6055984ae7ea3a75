//! `check`: finds damage in a repository and names the objects concerned.
//!
//! The phases follow restic's checker, and a caller runs them in this order:
//! 1. [`Checker::load_index`]: every index file loads and parses (an error here stops the
//!    check, as in restic: nothing after it could be trusted); hints for packs listed by
//!    several index files, mixed packs and index files in the old format.
//! 2. [`Checker::check_packs`]: every indexed pack exists with the size its index entries
//!    imply, the entries of a pack tile it without gaps or overlaps, index files that list
//!    the same pack agree; packs no index lists are hints.
//! 3. [`Checker::check_structure`]: every snapshot loads, and every tree it reaches is indexed
//!    as a tree, decrypts, parses and has valid nodes whose data blobs are indexed.
//! 4. [`Checker::read_packs`] (`--read-data`, `--read-data-subset`): each selected pack is
//!    read once, front to back; its SHA-256 must equal its name, its header must decrypt and
//!    agree with the index entry by entry, and every blob must decrypt, decompress and hash
//!    to its id.
//!
//! [`check_key_files`] looks at the key files; it also works on a repository that cannot be
//! opened. Errors are [`Problem`]s, hints are [`Hint`]s; both name the objects concerned.

mod index;
mod keys;
mod read;
pub mod run;
mod structure;
pub mod subset;

pub use keys::check_key_files;
pub use read::PackSelection;
pub use structure::StructureStats;
pub use subset::Subset;

use crate::format::pack::BlobType;
use crate::repository::Repository;
use crate::{Error, Id};
use cairn_backend::FileType;
use index::{CheckIndex, IndexBuilder, RawIndex};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Where in a snapshot a tree or file was reached from (the first way found: trees shared by
/// several snapshots are checked once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub snapshot: Id,
    /// Path inside the snapshot, `/` for its root.
    pub path: String,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "snapshot {}, {}", self.snapshot.short(), self.path)
    }
}

/// Why a blob's stored bytes are not what the index or header say they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobFault {
    /// Fewer bytes than the encryption overhead.
    TooShort(u32),
    /// The MAC does not match: the bytes were changed, or the offset is wrong.
    Decrypt,
    Decompress(String),
    /// Decompressed to another length than recorded.
    Length {
        got: usize,
        want: u32,
    },
    /// The plaintext hashes to another id.
    Hash(Id),
    /// A declared length beyond the ceiling for its type ([`crate::format::limits`]).
    TooLarge(String),
}

impl fmt::Display for BlobFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobFault::TooShort(n) => write!(f, "only {n} bytes, too short to be a blob"),
            BlobFault::Decrypt => f.write_str("ciphertext verification failed (damaged data)"),
            BlobFault::Decompress(e) => write!(f, "decompression failed: {e}"),
            BlobFault::Length { got, want } => {
                write!(f, "decompressed to {got} bytes, expected {want}")
            }
            BlobFault::Hash(h) => write!(f, "content hashes to {h}, not to its id"),
            BlobFault::TooLarge(e) => f.write_str(e),
        }
    }
}

/// An error found in the repository. Each names the objects concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A key file that is damaged (content does not match its name) or not a valid key file.
    KeyFile { name: String, reason: String },
    /// An index file that cannot be read or parsed.
    IndexFile { index: Id, reason: String },
    /// Several index files list this pack, with different contents.
    PackIndexConflict { pack: Id, indexes: Vec<Id> },
    /// A pack's index entries do not follow each other from offset 0: a gap or an overlap
    /// before `blob`.
    PackIndexLayout {
        pack: Id,
        ty: BlobType,
        blob: Id,
        offset: u32,
        expected: u32,
    },
    /// An indexed pack is not in the repository.
    PackMissing { pack: Id },
    /// An indexed pack has another size than its index entries imply.
    PackSize {
        pack: Id,
        actual: u64,
        expected: u64,
    },
    /// Reading a pack failed.
    PackUnreadable { pack: Id, reason: String },
    /// A pack's content does not hash to its name.
    PackHash { pack: Id, actual: Id },
    /// A pack's header cannot be read, or does not fit the file.
    PackHeader { pack: Id, reason: String },
    /// Blobs the header or index places past the end of the pack file.
    PackTruncated {
        pack: Id,
        size: u64,
        blobs: usize,
        first: Id,
    },
    /// A blob's stored bytes are damaged.
    BlobDamaged {
        pack: Id,
        ty: BlobType,
        blob: Id,
        offset: u32,
        fault: BlobFault,
    },
    /// The pack header has this blob, but no index entry says so (or one at another place).
    BlobNotIndexed {
        pack: Id,
        ty: BlobType,
        blob: Id,
        offset: u32,
        length: u32,
    },
    /// An index entry for this pack that the pack header does not have.
    BlobNotInPack {
        pack: Id,
        ty: BlobType,
        blob: Id,
        offset: u32,
        length: u32,
    },
    /// A snapshot file that cannot be read or parsed.
    SnapshotUnreadable { snapshot: Id, reason: String },
    /// A tree that a snapshot or directory refers to is not in the index (as a tree).
    TreeMissing { tree: Id, at: Place },
    /// A tree that is indexed but cannot be loaded, decrypted or parsed.
    TreeUnreadable { tree: Id, at: Place, reason: String },
    /// A file's data blob is not in the index.
    BlobMissing {
        tree: Id,
        file: String,
        blob: Id,
        at: Place,
    },
    /// A node restic would reject (nil content, null ids, no subtree, unknown type, no name).
    NodeInvalid { tree: Id, reason: String, at: Place },
}

fn short_set(ids: &[Id]) -> String {
    let mut v: Vec<String> = ids.iter().map(|i| i.short()).collect();
    v.sort();
    format!("{{{}}}", v.join(" "))
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::KeyFile { name, reason } => write!(f, "key {name}: {reason}"),
            Problem::IndexFile { index, reason } => {
                write!(f, "error loading index {index}: {reason}")
            }
            Problem::PackIndexConflict { pack, indexes } => write!(
                f,
                "pack {pack}: index files {} list different contents for it",
                short_set(indexes)
            ),
            Problem::PackIndexLayout {
                pack,
                ty,
                blob,
                offset,
                expected,
            } => write!(
                f,
                "pack {pack}: index entries contain gaps or overlapping blobs: {ty} blob {blob} \
                 at offset {offset}, expected {expected}"
            ),
            Problem::PackMissing { pack } => write!(f, "pack {pack}: does not exist"),
            Problem::PackSize {
                pack,
                actual,
                expected,
            } => write!(
                f,
                "pack {pack}: unexpected file size: got {actual}, expected {expected}"
            ),
            Problem::PackUnreadable { pack, reason } => {
                write!(f, "pack {pack}: failed to download: {reason}")
            }
            Problem::PackHash { pack, actual } => write!(
                f,
                "pack {pack}: content does not match its name (SHA-256 is {actual})"
            ),
            Problem::PackHeader { pack, reason } => write!(f, "pack {pack}: header: {reason}"),
            Problem::PackTruncated {
                pack,
                size,
                blobs,
                first,
            } => write!(
                f,
                "pack {pack}: {blobs} blob(s) lie beyond the end of the {size}-byte file, \
                 starting with {first}"
            ),
            Problem::BlobDamaged {
                pack,
                ty,
                blob,
                offset,
                fault,
            } => write!(
                f,
                "pack {pack}: {ty} blob {blob} at offset {offset}: {fault}"
            ),
            Problem::BlobNotIndexed {
                pack,
                ty,
                blob,
                offset,
                length,
            } => write!(
                f,
                "pack {pack}: {ty} blob {blob} (offset {offset}, length {length}) is not \
                 contained in index or position is incorrect"
            ),
            Problem::BlobNotInPack {
                pack,
                ty,
                blob,
                offset,
                length,
            } => write!(
                f,
                "pack {pack}: index lists {ty} blob {blob} (offset {offset}, length {length}), \
                 which the pack header does not contain"
            ),
            Problem::SnapshotUnreadable { snapshot, reason } => {
                write!(f, "snapshot {snapshot}: {reason}")
            }
            Problem::TreeMissing { tree, at } => {
                write!(f, "tree {tree}: not found in index ({at})")
            }
            Problem::TreeUnreadable { tree, at, reason } => {
                write!(f, "tree {tree}: cannot be loaded: {reason} ({at})")
            }
            Problem::BlobMissing {
                tree,
                file,
                blob,
                at,
            } => write!(
                f,
                "tree {tree}: file {file:?} blob {blob} not found in index ({at})"
            ),
            Problem::NodeInvalid { tree, reason, at } => write!(f, "tree {tree}: {reason} ({at})"),
        }
    }
}

/// Something worth knowing that is not an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hint {
    /// An index file whose top level is an array (restic before 0.8).
    OldIndexFormat { index: Id },
    /// Several index files list this pack, identically.
    DuplicatePack { pack: Id, indexes: Vec<Id> },
    /// A pack holding both tree and data blobs.
    MixedPack { pack: Id },
    /// A pack no index file lists (an interrupted backup, or a pack prune can remove).
    UnreferencedPack { pack: Id, size: u64 },
    /// An indexed blob no snapshot reaches.
    UnusedBlob { ty: BlobType, blob: Id },
    /// A blob stored in more than one pack.
    DuplicateBlob {
        ty: BlobType,
        blob: Id,
        packs: Vec<Id>,
    },
    /// Every snapshot that reaches one of the damaged trees reported above. Each error names
    /// only the first snapshot that led to its tree (a tree is checked once); a shared subtree
    /// damages every snapshot that holds it, and this says which ones those are.
    DamagedSnapshots { snapshots: Vec<Id> },
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hint::OldIndexFormat { index } => write!(f, "index {index} has old format"),
            Hint::DuplicatePack { pack, indexes } => write!(
                f,
                "pack {pack} contained in several indexes: {}",
                short_set(indexes)
            ),
            Hint::MixedPack { pack } => write!(
                f,
                "pack {} contains a mix of tree and data blobs",
                pack.short()
            ),
            Hint::UnreferencedPack { pack, .. } => {
                write!(f, "pack {pack}: not referenced in any index")
            }
            Hint::UnusedBlob { ty, blob } => write!(f, "unused {ty} blob {blob}"),
            Hint::DuplicateBlob { ty, blob, packs } => write!(
                f,
                "{ty} blob {blob} is stored in several packs: {}",
                short_set(packs)
            ),
            Hint::DamagedSnapshots { snapshots } => write!(
                f,
                "{} snapshot(s) reach the damaged trees above: {}",
                snapshots.len(),
                short_set(snapshots)
            ),
        }
    }
}

/// What a check phase found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    Error(Problem),
    Hint(Hint),
}

/// Knobs for a check.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// Threads for loading index files, trees and snapshots.
    pub threads: usize,
    /// Packs read at the same time by `read_packs` (each holds at most one segment of a pack,
    /// see `read::SEGMENT`, plus one blob's plaintext).
    pub readers: usize,
    /// Set to stop early (Ctrl-C); the phase then returns [`Error::Interrupted`].
    pub stop: Option<&'a AtomicBool>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Options {
            threads: cpus.clamp(2, 8),
            readers: cpus.clamp(2, 8),
            stop: None,
        }
    }
}

/// A check in progress: the merged index plus what the phases learned.
pub struct Checker<'r> {
    repo: &'r Repository,
    opts: Options<'r>,
    index: CheckIndex,
    /// Sizes of the indexed packs as listed by the backend (None = missing), once
    /// [`Checker::check_packs`] ran.
    listed: Option<Vec<Option<u64>>>,
}

impl<'r> Checker<'r> {
    /// Checks every file in `keys/` (see [`check_key_files`]).
    pub fn check_key_files(&self) -> crate::Result<Vec<Problem>> {
        check_key_files(&**self.repo.backend())
    }

    fn stopped(&self) -> bool {
        self.opts.stop.is_some_and(|s| s.load(Ordering::Relaxed))
    }

    fn check_stop(&self) -> anyhow::Result<()> {
        if self.stopped() {
            return Err(Error::Interrupted.into());
        }
        Ok(())
    }

    /// Loads every index file. Findings that are errors mean the index cannot be trusted and
    /// the check should stop there (restic's "LoadIndex returned errors").
    pub fn load_index(
        repo: &'r Repository,
        opts: Options<'r>,
    ) -> crate::Result<(Checker<'r>, Vec<Finding>)> {
        let ids = repo.list_ids(FileType::Index)?;
        let mut findings = Vec::new();
        let mut builder = IndexBuilder::default();
        let next = AtomicUsize::new(0);
        // Files are read and parsed on one thread while this one merges: measured on a
        // million blobs, more readers were not faster and each held another file's worth of
        // JSON (tens of MB at the peak).
        let (tx, rx) = crossbeam_channel::bounded::<(Id, anyhow::Result<(RawIndex, bool)>)>(0);
        let workers = 1;
        std::thread::scope(|s| {
            for _ in 0..workers {
                let tx = tx.clone();
                let (ids, next) = (&ids, &next);
                s.spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(id) = ids.get(i) else { break };
                    if opts.stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                        break;
                    }
                    let r = load_index_file(repo, id);
                    if tx.send((*id, r)).is_err() {
                        break;
                    }
                });
            }
            drop(tx);
            for (id, r) in rx {
                match r {
                    Ok((file, old)) => {
                        if old {
                            findings.push(Finding::Hint(Hint::OldIndexFormat { index: id }));
                        }
                        builder.add_file(id, &file);
                    }
                    Err(e) => findings.push(Finding::Error(Problem::IndexFile {
                        index: id,
                        reason: format!("{e:#}"),
                    })),
                }
            }
        });
        let index = builder.finish();
        let checker = Checker {
            repo,
            opts,
            index,
            listed: None,
        };
        checker.check_stop()?;
        for p in &checker.index.packs {
            if p.files.len() > 1 && p.blobs <= p.max_listed {
                findings.push(Finding::Hint(Hint::DuplicatePack {
                    pack: p.id,
                    indexes: checker.file_ids(&p.files),
                }));
            }
            if p.has_data && p.has_tree {
                findings.push(Finding::Hint(Hint::MixedPack { pack: p.id }));
            }
        }
        findings.sort_by_key(|f| matches!(f, Finding::Hint(_)));
        Ok((checker, findings))
    }

    fn file_ids(&self, files: &[u32]) -> Vec<Id> {
        let mut v: Vec<Id> = files
            .iter()
            .map(|&f| self.index.files[f as usize])
            .collect();
        v.sort();
        v
    }

    /// Number of packs the index knows.
    pub fn pack_count(&self) -> usize {
        self.index.packs.len()
    }

    /// Number of distinct index entries.
    pub fn blob_count(&self) -> usize {
        self.index.blob_count()
    }

    /// Bytes the checker's index holds.
    pub fn index_memory(&self) -> usize {
        self.index.memory_bytes()
    }

    /// Compares the index with the packs the backend lists, and each pack's index entries
    /// with each other.
    pub fn check_packs(&mut self) -> crate::Result<Vec<Finding>> {
        let mut out = Vec::new();
        for (no, p) in self.index.packs.iter().enumerate() {
            if p.files.len() > 1 && p.blobs > p.max_listed {
                out.push(Finding::Error(Problem::PackIndexConflict {
                    pack: p.id,
                    indexes: self.file_ids(&p.files),
                }));
            }
            let mut expected = 0u64;
            for (ty, e) in self.index.pack_entries(no) {
                if e.offset as u64 != expected {
                    out.push(Finding::Error(Problem::PackIndexLayout {
                        pack: p.id,
                        ty,
                        blob: e.id,
                        offset: e.offset,
                        expected: expected.min(u32::MAX as u64) as u32,
                    }));
                    break;
                }
                expected = e.offset as u64 + e.length as u64;
            }
        }
        let listing = self
            .repo
            .backend()
            .list(FileType::Data)
            .map_err(anyhow::Error::new)
            .map_err(|e| e.context("listing packs"))?;
        self.check_stop()?;
        let mut listed = vec![None; self.index.packs.len()];
        let mut orphans = Vec::new();
        for f in listing {
            let Ok(id) = Id::from_hex(&f.name) else {
                continue;
            };
            match self.index.pack_no(&id) {
                Some(no) => listed[no] = Some(f.size),
                None => orphans.push(Hint::UnreferencedPack {
                    pack: id,
                    size: f.size,
                }),
            }
        }
        for (p, size) in self.index.packs.iter().zip(&listed) {
            match size {
                None => out.push(Finding::Error(Problem::PackMissing { pack: p.id })),
                Some(s) if *s != p.size => out.push(Finding::Error(Problem::PackSize {
                    pack: p.id,
                    actual: *s,
                    expected: p.size,
                })),
                Some(_) => {}
            }
        }
        orphans.sort_by_key(|h| match h {
            Hint::UnreferencedPack { pack, .. } => *pack,
            _ => Id::default(),
        });
        out.extend(orphans.into_iter().map(Finding::Hint));
        self.listed = Some(listed);
        Ok(out)
    }

    /// Blobs no snapshot reaches and blobs stored in several packs (after
    /// [`Checker::check_structure`]; before it, every blob counts as unused).
    pub fn blob_hints(&self) -> Vec<Hint> {
        let mut out: Vec<Hint> = self
            .index
            .unused()
            .into_iter()
            .map(|(ty, blob)| Hint::UnusedBlob { ty, blob })
            .collect();
        out.extend(
            self.index
                .duplicates()
                .into_iter()
                .map(|(ty, blob, packs)| Hint::DuplicateBlob { ty, blob, packs }),
        );
        out
    }
}

/// Reads one index file; the flag says whether it is in the old (array) format.
fn load_index_file(repo: &Repository, id: &Id) -> anyhow::Result<(RawIndex, bool)> {
    let json = repo.load_unpacked(FileType::Index, id)?;
    RawIndex::parse(&json).map_err(|e| anyhow::anyhow!("invalid index file: {e}"))
}

#[cfg(test)]
mod tests;
