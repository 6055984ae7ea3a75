//! Prune: delete what no snapshot needs, repack packs that are partly unused.
//!
//! Decisions follow restic's (which packs are kept, repacked, deleted, with the same
//! `--max-unused`, `--max-repack-size`, `--repack-*` rules), so a repository pruned by cairn
//! looks as restic would have left it. The order of the writes is what keeps it safe:
//!
//! 1. packs that no index lists are deleted (nothing can refer to them);
//! 2. blobs still needed from packs being repacked are written to new packs, and an index
//!    for those is written;
//! 3. a new index for every pack that stays is written, then the old index files are
//!    deleted;
//! 4. only then are the packs that are no longer indexed deleted.
//!
//! A crash at any point leaves either duplicates or unreferenced packs, never a blob that a
//! snapshot needs and no index finds. The plan is computed in full, and every blob to be kept
//! is verified while it is repacked, before anything is deleted.

pub mod used;

use crate::format::indexfile::{IndexBlob, IndexFile, IndexPack};
use crate::format::pack::{BlobType, PackedBlob};
use crate::index::BlobLocation;
use crate::observe::Observer;
use crate::packer::{BlobWriter, Compression};
use crate::repository::IndexedRepository;
use crate::Id;
use anyhow::Context;
use cairn_backend::{FileType, Handle};
use std::collections::HashMap;

/// How much unused space may remain after pruning.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxUnused {
    Unlimited,
    /// Percent of the used size (restic: p / (100 - p) × used).
    Percent(f64),
    Bytes(u64),
}

impl MaxUnused {
    /// restic's `--max-unused`: "unlimited", "N%", or a size ("10M", "1G").
    pub fn parse(s: &str) -> crate::Result<MaxUnused> {
        let s = s.trim();
        if s == "unlimited" {
            return Ok(MaxUnused::Unlimited);
        }
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("invalid percentage {s:?} passed for --max-unused"))?;
            if p < 0.0 {
                crate::error::invalid!("percentage for --max-unused must be positive");
            }
            if p >= 100.0 {
                crate::error::invalid!("percentage for --max-unused must be below 100%");
            }
            return Ok(MaxUnused::Percent(p));
        }
        Ok(MaxUnused::Bytes(
            crate::archiver::select::parse_size(s)
                .with_context(|| format!("invalid number of bytes {s:?} for --max-unused"))?,
        ))
    }

    fn bytes(self, used: u64) -> u64 {
        match self {
            MaxUnused::Unlimited => u64::MAX,
            MaxUnused::Percent(p) => (p / (100.0 - p) * used as f64) as u64,
            MaxUnused::Bytes(b) => b,
        }
    }
}

#[derive(Clone, Debug)]
pub struct PruneOptions {
    pub max_unused: MaxUnused,
    pub max_repack_bytes: u64,
    pub repack_cacheable_only: bool,
    pub repack_small: bool,
    pub repack_uncompressed: bool,
    /// restic 0.18's `--repack-smaller-than`: packs below this size are small (instead of
    /// 1/25 of the pack size, or 80 % with `repack_small`); at most the pack size.
    pub repack_smaller_than: Option<u64>,
    /// restic 0.18's `--unsafe-recover-no-free-space`: nothing is repacked, and the old index
    /// files are deleted *before* the packs and the new index is written last, so that a
    /// repository on a full disk can be pruned. A crash in between leaves no index at all
    /// (`repair index` rebuilds it).
    pub unsafe_recovery: bool,
    pub compression: Compression,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            max_unused: MaxUnused::Percent(5.0),
            max_repack_bytes: u64::MAX,
            repack_cacheable_only: false,
            repack_small: false,
            repack_uncompressed: false,
            repack_smaller_than: None,
            unsafe_recovery: false,
            compression: Compression::Auto,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub used: u64,
    pub duplicate: u64,
    pub unused: u64,
    pub remove: u64,
    pub repack: u64,
    pub repackrm: u64,
    /// Sizes only: packs no index lists.
    pub unref: u64,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct PackCounts {
    pub used: u64,
    pub partly_used: u64,
    pub unused: u64,
    pub unref: u64,
    pub keep: u64,
    pub repack: u64,
    pub remove: u64,
}

/// restic's prune statistics: blob counts, sizes (bytes as stored), pack counts.
#[derive(Clone, Copy, Debug, Default)]
pub struct PruneStats {
    pub blobs: Counts,
    pub size: Counts,
    pub packs: PackCounts,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Keep,
    Repack,
    Remove,
    /// In the index, not in the repository, and nothing needed is in it: dropped from the index.
    Forget,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Kinds {
    #[default]
    None,
    Data,
    Tree,
    Mixed,
}

#[derive(Clone, Debug)]
struct PackInfo {
    id: Id,
    used_size: u64,
    unused_size: u64,
    used_blobs: u64,
    unused_blobs: u64,
    kinds: Kinds,
    uncompressed: bool,
    /// Needs recompression: an uncompressed tree pack (v2), or any with --repack-uncompressed.
    must_compress: bool,
    action: Action,
}

impl PackInfo {
    fn size(&self) -> u64 {
        self.used_size + self.unused_size
    }
}

/// What a prune will do; computed without changing anything.
pub struct Plan {
    pub stats: PruneStats,
    /// Packs in the repository that no index lists.
    pub unreferenced: Vec<Id>,
    pub repack: Vec<Id>,
    pub remove: Vec<Id>,
    /// Missing packs with nothing needed in them, dropped from the index.
    pub forget_missing: Vec<Id>,
    packs: Vec<PackInfo>,
    /// Index entry number → pack slot.
    slot_of: Vec<u32>,
    /// Copies to keep, one bit per index entry.
    keep: [Vec<bool>; 2],
    index_files: Vec<Id>,
}

impl Plan {
    /// Whether executing would change the repository.
    pub fn is_empty(&self) -> bool {
        self.unreferenced.is_empty()
            && self.repack.is_empty()
            && self.remove.is_empty()
            && self.forget_missing.is_empty()
    }
}

fn ty_slot(ty: BlobType) -> usize {
    match ty {
        BlobType::Data => 0,
        BlobType::Tree => 1,
    }
}

/// Decides what to do. `roots` are the tree ids of every snapshot that remains. The
/// repository's index must be loaded (and the repository locked exclusively).
pub fn plan(
    repo: &IndexedRepository,
    roots: &[Id],
    opts: &PruneOptions,
    obs: &dyn Observer,
) -> crate::Result<Plan> {
    if opts.repack_uncompressed && repo.version() < 2 {
        crate::error::invalid!("compression requires at least repository format version 2");
    }
    let idx = repo.index();
    let index_files = repo.list_ids(FileType::Index)?;
    obs.info(&format!(
        "finding data that is still in use for {} snapshots",
        roots.len()
    ));
    let threads = crate::archiver::default_readers().max(2) * 2;
    let (marks, missing) = used::mark_used(repo, roots, threads, &|_| {}, &|| obs.cancelled())?;
    if !missing.is_empty() {
        let first = &missing[0];
        crate::error::bail!(
            "{} blob(s) that snapshots need are not in the index (first: {} blob {}{}): \
             data seems to be missing; prune will not run, to prevent (additional) data loss. \
             Run `check` and `repair index`",
            missing.len(),
            first.ty,
            first.id,
            first
                .parent
                .map(|p| format!(" in tree {}", p.short()))
                .unwrap_or_default()
        );
    }

    // One slot per distinct pack id (a pack listed by two index files is one pack).
    let mut slots: HashMap<Id, u32> = HashMap::new();
    let mut packs: Vec<PackInfo> = Vec::new();
    let slot_of: Vec<u32> = idx
        .pack_ids()
        .iter()
        .map(|id| {
            *slots.entry(*id).or_insert_with(|| {
                packs.push(PackInfo {
                    id: *id,
                    // Header: its length field and the encryption's overhead, plus entries.
                    used_size: 4 + crate::crypto::OVERHEAD as u64,
                    unused_size: 0,
                    used_blobs: 0,
                    unused_blobs: 0,
                    kinds: Kinds::None,
                    uncompressed: false,
                    must_compress: false,
                    action: Action::Keep,
                });
                (packs.len() - 1) as u32
            })
        })
        .collect();

    let mut stats = PruneStats::default();
    let mut keep: [Vec<bool>; 2] = [
        vec![false; idx.blob_count(BlobType::Data)],
        vec![false; idx.blob_count(BlobType::Tree)],
    ];
    // Used blobs stored more than once: decided after every pack's other blobs are counted.
    let mut dup_groups: Vec<(BlobType, Vec<(u32, usize)>)> = Vec::new();

    for ty in [BlobType::Data, BlobType::Tree] {
        let n = idx.blob_count(ty);
        let mut pos = 0;
        while pos < n {
            let (_, first) = idx.entry(ty, pos);
            let mut end = pos + 1;
            while end < n && idx.entry(ty, end).1.id == first.id {
                end += 1;
            }
            // Physical copies: the same pack and offset listed twice is one copy.
            let mut copies: Vec<(u32, usize, PackedBlob)> = Vec::with_capacity(end - pos);
            for q in pos..end {
                let (pn, b) = idx.entry(ty, q);
                let slot = slot_of[pn as usize];
                if !copies
                    .iter()
                    .any(|(s, _, c)| *s == slot && c.offset == b.offset)
                {
                    copies.push((slot, q, b));
                }
            }
            for (slot, _, b) in &copies {
                let p = &mut packs[*slot as usize];
                p.used_size += b.entry_size() as u64;
                p.kinds = match (p.kinds, ty) {
                    (Kinds::None, BlobType::Data) => Kinds::Data,
                    (Kinds::None, BlobType::Tree) => Kinds::Tree,
                    (Kinds::Data, BlobType::Data) => Kinds::Data,
                    (Kinds::Tree, BlobType::Tree) => Kinds::Tree,
                    _ => Kinds::Mixed,
                };
                if !b.is_compressed() {
                    p.uncompressed = true;
                }
            }
            let used = marks.get(ty, pos);
            let len = |b: &PackedBlob| b.length as u64;
            if used {
                stats.blobs.used += 1;
                stats.size.used += len(&copies[0].2);
                for (_, _, b) in &copies[1..] {
                    stats.blobs.duplicate += 1;
                    stats.size.duplicate += len(b);
                }
            } else {
                for (_, _, b) in &copies {
                    stats.blobs.unused += 1;
                    stats.size.unused += len(b);
                }
            }
            if used && copies.len() > 1 {
                dup_groups.push((ty, copies.iter().map(|(s, q, _)| (*s, *q)).collect()));
            } else {
                for (slot, q, b) in &copies {
                    let p = &mut packs[*slot as usize];
                    if used {
                        p.used_size += len(b);
                        p.used_blobs += 1;
                        keep[ty_slot(ty)][*q] = true;
                    } else {
                        p.unused_size += len(b);
                        p.unused_blobs += 1;
                    }
                }
            }
            pos = end;
        }
    }
    // restic's rule for duplicates: keep the copy in a pack that keeps other blobs anyway, or
    // else the last one; the others count as unused.
    for (ty, copies) in &dup_groups {
        let mut count = copies.len();
        for (slot, q) in copies {
            let b = idx.entry(*ty, *q).1;
            let p = &mut packs[*slot as usize];
            if count == 0 {
                p.unused_size += b.length as u64;
                p.unused_blobs += 1;
            } else if p.used_blobs > 0 || count == 1 {
                p.used_size += b.length as u64;
                p.used_blobs += 1;
                keep[ty_slot(*ty)][*q] = true;
                count = 0;
            } else {
                p.unused_size += b.length as u64;
                p.unused_blobs += 1;
                count -= 1;
            }
        }
    }

    obs.info("searching used packs...");
    obs.info("collecting packs for deletion and repacking");
    let on_disk = repo
        .backend()
        .list(FileType::Data)
        .map_err(anyhow::Error::new)
        .context("listing packs")?;
    let pack_size = repo.pack_size() as u64;
    if opts.repack_smaller_than.is_some_and(|n| n > pack_size) {
        crate::error::invalid!("repack-smaller-than exceeds repository packsize");
    }
    let target = match opts.repack_smaller_than {
        Some(n) if n > 0 => n,
        _ if opts.repack_small => pack_size / 5 * 4,
        _ => pack_size / 25,
    };
    let mut seen = vec![false; packs.len()];
    let mut unreferenced = Vec::new();
    let mut candidates: Vec<usize> = Vec::new();
    let mut small: Vec<usize> = Vec::new();
    for f in &on_disk {
        let Ok(id) = Id::from_hex(&f.name) else {
            continue;
        };
        let Some(&slot) = slots.get(&id) else {
            unreferenced.push(id);
            stats.size.unref += f.size;
            continue;
        };
        let slot = slot as usize;
        seen[slot] = true;
        let p = &mut packs[slot];
        if p.size() != f.size && p.used_blobs != 0 {
            crate::error::bail!(
                "pack {}: calculated size {} does not match real size {}; run `repair index`",
                id.short(),
                p.size(),
                f.size
            );
        }
        match () {
            _ if p.used_blobs == 0 => stats.packs.unused += 1,
            _ if p.unused_blobs == 0 => stats.packs.used += 1,
            _ => stats.packs.partly_used += 1,
        }
        p.must_compress = repo.version() >= 2
            && p.uncompressed
            && (p.kinds == Kinds::Tree || opts.repack_uncompressed);
        if p.used_blobs == 0 {
            p.action = Action::Remove;
            stats.blobs.remove += p.unused_blobs;
            stats.size.remove += p.unused_size;
        } else if opts.repack_cacheable_only && p.kinds == Kinds::Data {
            stats.packs.keep += 1;
        } else if p.unused_blobs == 0 && p.kinds != Kinds::Mixed && !p.must_compress {
            if f.size >= target {
                stats.packs.keep += 1;
            } else {
                small.push(slot);
            }
        } else {
            candidates.push(slot);
        }
    }
    let mut forget_missing = Vec::new();
    let mut missing_needed = Vec::new();
    for (slot, p) in packs.iter_mut().enumerate() {
        if seen[slot] {
            continue;
        }
        if p.used_blobs == 0 {
            p.action = Action::Forget;
            forget_missing.push(p.id);
            stats.blobs.remove += p.unused_blobs;
            stats.size.remove += p.unused_size;
        } else {
            missing_needed.push(p.id);
        }
    }
    if !missing_needed.is_empty() {
        crate::error::bail!(
            "the index references {} needed pack file(s) which are missing from the repository \
             (first: {}): prune will not run; see `check` and `repair index` / `repair packs`",
            missing_needed.len(),
            missing_needed[0]
        );
    }
    if !forget_missing.is_empty() {
        obs.warn("Missing but unneeded pack files are referenced in the index, will be repaired");
        for id in &forget_missing {
            obs.warn(&format!("will forget missing pack file {id}"));
        }
    }
    if small.len() < 10 {
        // Too few to be worth it; also stops repacking a single small pack forever.
        stats.packs.keep += small.len() as u64;
    } else {
        candidates.extend(small);
    }
    // Trees and mixed packs first, then small packs, then by falling share of unused space.
    candidates.sort_by(|&i, &j| {
        let (pi, pj) = (&packs[i], &packs[j]);
        let data_i = pi.kinds == Kinds::Data;
        let data_j = pj.kinds == Kinds::Data;
        let small_i = pi.size() < target;
        let small_j = pj.size() < target;
        data_i
            .cmp(&data_j)
            .then(small_j.cmp(&small_i))
            .then_with(|| {
                let a = pi.unused_size as u128 * pj.used_size as u128;
                let b = pj.unused_size as u128 * pi.used_size as u128;
                b.cmp(&a)
            })
            .then(pi.id.cmp(&pj.id))
    });
    let max_unused_after = opts.max_unused.bytes(stats.size.used);
    for slot in candidates {
        let p = &mut packs[slot];
        let reached_unused = stats
            .size
            .unused
            .saturating_sub(stats.size.remove)
            .saturating_sub(stats.size.repackrm)
            < max_unused_after;
        let reached_repack = stats.size.repack.saturating_add(p.size()) >= opts.max_repack_bytes;
        let large_enough = p.size() >= target;
        let repack = if reached_repack {
            false
        } else if p.kinds != Kinds::Data || p.must_compress {
            true
        } else {
            !(reached_unused && large_enough)
        };
        if repack {
            p.action = Action::Repack;
            stats.blobs.repack += p.unused_blobs + p.used_blobs;
            stats.size.repack += p.size();
            stats.blobs.repackrm += p.unused_blobs;
            stats.size.repackrm += p.unused_size;
        } else {
            stats.packs.keep += 1;
        }
    }
    stats.packs.unref = unreferenced.len() as u64;
    let repack: Vec<Id> = packs
        .iter()
        .filter(|p| p.action == Action::Repack)
        .map(|p| p.id)
        .collect();
    let remove: Vec<Id> = packs
        .iter()
        .filter(|p| p.action == Action::Remove)
        .map(|p| p.id)
        .collect();
    stats.packs.repack = repack.len() as u64;
    stats.packs.remove = remove.len() as u64;
    unreferenced.sort();
    Ok(Plan {
        stats,
        unreferenced,
        repack,
        remove,
        forget_missing,
        packs,
        slot_of,
        keep,
        index_files,
    })
}

/// Carries out a plan. See the module documentation for the order of the steps.
pub fn execute(
    repo: &IndexedRepository,
    plan: Plan,
    opts: &PruneOptions,
    obs: &dyn Observer,
) -> crate::Result<()> {
    let idx = repo.index();
    // Half-written files of killed processes on this host; failing to remove them is harmless.
    let _ = repo.backend().clean_stale_staging();
    if !plan.unreferenced.is_empty() {
        obs.info("deleting unreferenced packs");
        delete_files(repo, FileType::Data, &plan.unreferenced)?;
    }

    if !plan.repack.is_empty() {
        obs.info("repacking packs");
        // Blobs to carry over, grouped by the pack they are read from.
        let mut by_pack: HashMap<u32, Vec<(BlobType, PackedBlob)>> = HashMap::new();
        for ty in [BlobType::Data, BlobType::Tree] {
            for pos in 0..idx.blob_count(ty) {
                if !plan.keep[ty_slot(ty)][pos] {
                    continue;
                }
                let (pn, b) = idx.entry(ty, pos);
                let slot = plan.slot_of[pn as usize];
                if plan.packs[slot as usize].action == Action::Repack {
                    by_pack.entry(slot).or_default().push((ty, b));
                }
            }
        }
        // An empty "known" index: every blob handed over is written, even though the old
        // index still lists it.
        let mut nothing_known = crate::index::MasterIndex::new();
        nothing_known.finish();
        let writer = BlobWriter::for_repo(repo, opts.compression, &nothing_known);
        let jobs: Vec<(u32, Vec<(BlobType, PackedBlob)>)> = by_pack.into_iter().collect();
        let res =
            crate::util::parallel::parallel_map(&jobs, 2, |(slot, blobs)| -> anyhow::Result<()> {
                let pack = plan.packs[*slot as usize].id;
                let h = Handle::new(FileType::Data, pack.to_hex());
                let raw = crate::format::limits::load_pack_bounded(repo.backend().as_ref(), &h)
                    .with_context(|| format!("reading pack {}", pack.short()))?;
                for (ty, b) in blobs {
                    let start = b.offset as usize;
                    let end = start + b.length as usize;
                    let sealed = raw.get(start..end).ok_or_else(|| {
                        anyhow::anyhow!("pack {}: blob {} lies beyond the pack's end", pack, b.id)
                    })?;
                    let loc = BlobLocation { pack, blob: *b };
                    let plain = repo.open_blob(&loc, sealed)?;
                    writer.save(*ty, b.id, &plain)?;
                }
                Ok(())
            });
        // Index whatever was written even on failure: duplicates are harmless.
        let finished = writer.finish();
        res.context("repacking (nothing was deleted)")?;
        finished.context("repacking (nothing was deleted)")?;
    }

    let dropped = |a: Action| a != Action::Keep;
    let gone: Vec<Id> = plan.remove.iter().chain(&plan.repack).copied().collect();
    if opts.unsafe_recovery {
        // Room first: no new file is written before old ones are gone.
        obs.info("deleting index files");
        delete_files(repo, FileType::Index, &plan.index_files)?;
        if !gone.is_empty() {
            obs.info(&format!("removing {} old packs", gone.len()));
            delete_files(repo, FileType::Data, &gone)?;
        }
        obs.info("rebuilding index");
        write_index(repo, &plan, &dropped)?;
        obs.info("done");
        return Ok(());
    }
    if plan.packs.iter().any(|p| dropped(p.action)) {
        obs.info("rebuilding index");
        write_index(repo, &plan, &dropped)?;
        obs.info("deleting obsolete index files");
        delete_files(repo, FileType::Index, &plan.index_files)?;
    }
    if !gone.is_empty() {
        obs.info(&format!("removing {} old packs", gone.len()));
        delete_files(repo, FileType::Data, &gone)?;
    }
    obs.info("done");
    Ok(())
}

/// Index files for every pack that stays, at most 50,000 blobs each (as restic).
fn write_index(
    repo: &IndexedRepository,
    plan: &Plan,
    dropped: &dyn Fn(Action) -> bool,
) -> anyhow::Result<()> {
    const MAX_BLOBS: usize = 50_000;
    let idx = repo.index();
    let mut per_pack: Vec<Vec<IndexBlob>> = vec![Vec::new(); plan.packs.len()];
    for ty in [BlobType::Data, BlobType::Tree] {
        for pos in 0..idx.blob_count(ty) {
            let (pn, b) = idx.entry(ty, pos);
            let slot = plan.slot_of[pn as usize] as usize;
            if dropped(plan.packs[slot].action) {
                continue;
            }
            per_pack[slot].push(IndexBlob::from_packed(&b));
        }
    }
    let mut file = IndexFile::default();
    let mut count = 0;
    for (slot, mut blobs) in per_pack.into_iter().enumerate() {
        if blobs.is_empty() {
            continue;
        }
        // A pack listed by two index files has each blob twice: keep one.
        blobs.sort_by(|a, b| a.offset.cmp(&b.offset).then(a.id.cmp(&b.id)));
        blobs.dedup_by(|a, b| a.offset == b.offset && a.id == b.id);
        count += blobs.len();
        file.packs.push(IndexPack {
            id: plan.packs[slot].id,
            blobs,
        });
        if count >= MAX_BLOBS {
            repo.save_unpacked(FileType::Index, &file.to_json())
                .context("writing index")?;
            file = IndexFile::default();
            count = 0;
        }
    }
    if !file.packs.is_empty() {
        repo.save_unpacked(FileType::Index, &file.to_json())
            .context("writing index")?;
    }
    Ok(())
}

fn delete_files(repo: &IndexedRepository, kind: FileType, ids: &[Id]) -> anyhow::Result<()> {
    crate::util::parallel::parallel_map(ids, 4, |id| {
        repo.backend()
            .remove(&Handle::new(kind, id.to_hex()))
            .map_err(anyhow::Error::new)
            .with_context(|| format!("removing {}/{}", kind.dir(), id))
    })?;
    Ok(())
}
