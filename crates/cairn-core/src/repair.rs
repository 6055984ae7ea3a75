//! Repairs of the index and of damaged packs, as restic's `repair index` (0.14:
//! `rebuild-index`) and `repair packs` do them.
//!
//! Both keep the repository valid at every moment, so that a crash anywhere leaves something
//! `check` accepts: new packs and index files are stored before anything is deleted, and old
//! index files go only after the new ones are durable. An interrupted repair leaves
//! duplicates (which the next repair or prune merges), never a gap.

use crate::crypto::OVERHEAD;
use crate::format::indexfile::{IndexBlob, IndexFile, IndexPack};
use crate::format::pack::{self, PackedBlob};
use crate::index::{BlobLocation, MasterIndex};
use crate::observe::{check_cancel, Observer};
use crate::packer::{BlobWriter, Compression};
use crate::repository::Repository;
use crate::util::parallel::parallel_map;
use crate::Id;
use anyhow::Context;
use cairn_backend::{FileType, Handle};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Start a new index file after this many blobs (restic's limit).
pub const INDEX_MAX_BLOBS: usize = 50_000;

/// The size a pack with these blobs has: the blobs, the encrypted header of one entry per blob
/// (37 bytes, 41 when compressed) and the 4-byte header length (restic's `pack.Size`).
pub fn pack_size(blobs: &[IndexBlob]) -> u64 {
    let entries: u64 = blobs
        .iter()
        .map(|b| if b.uncompressed_length != 0 { 41 } else { 37 })
        .sum();
    let data: u64 = blobs.iter().map(|b| b.length as u64).sum();
    data + entries + OVERHEAD as u64 + 4
}

/// Reads and decrypts a pack's header (its blobs in pack order).
pub fn read_pack_header(repo: &Repository, id: &Id, size: u64) -> crate::Result<Vec<PackedBlob>> {
    let h = Handle::new(FileType::Data, id.to_hex());
    let mut want = pack::HEADER_PROBE.min(size);
    loop {
        let tail = repo
            .backend()
            .load(&h, size - want, want)
            .map_err(anyhow::Error::new)?;
        if (tail.len() as u64) < want {
            crate::error::bail!("pack {id}: short read ({} of {want} bytes)", tail.len());
        }
        match pack::parse_header_from_tail(repo.key(), &tail, size)
            .with_context(|| format!("pack {id}"))?
        {
            Ok(blobs) => return Ok(blobs),
            Err(n) if n > want && n <= size => want = n,
            Err(_) => crate::error::bail!("pack {id}: invalid header length"),
        }
    }
}

/// Every index file, each loaded on its own so that a damaged one does not hide the others.
pub fn load_index_files(repo: &Repository) -> crate::Result<Vec<(Id, crate::Result<IndexFile>)>> {
    let ids = repo
        .list_ids(FileType::Index)
        .context("listing index files")?;
    let files = parallel_map(&ids, 4, |id| -> crate::Result<_> {
        Ok(repo.load_index_file(id))
    })?;
    Ok(ids.into_iter().zip(files).collect())
}

/// Stores packs as new index files of at most [`INDEX_MAX_BLOBS`] blobs each. The last one
/// written names the index files they replace in `supersedes`: cairn skips superseded index
/// files when loading, so that list must not exist before every new file is durable (a crash
/// in between would hide packs only the old files name). Returns the new ids.
pub fn save_index_files(
    repo: &Repository,
    packs: Vec<IndexPack>,
    supersedes: Vec<Id>,
) -> crate::Result<Vec<Id>> {
    let mut files = Vec::new();
    let mut cur = IndexFile::default();
    let mut count = 0;
    for p in packs {
        if count > 0 && count + p.blobs.len() > INDEX_MAX_BLOBS {
            files.push(std::mem::take(&mut cur));
            count = 0;
        }
        count += p.blobs.len();
        cur.packs.push(p);
    }
    if !cur.packs.is_empty() {
        files.push(cur);
    }
    if let Some(last) = files.last_mut() {
        last.supersedes = supersedes;
    }
    let mut ids = Vec::with_capacity(files.len());
    for f in files {
        let id = repo
            .save_unpacked(FileType::Index, &f.to_json())
            .context("saving new index file")?;
        ids.push(id);
    }
    Ok(ids)
}

/// Removes files of one type, in order; the first failure stops (as restic's
/// `DeleteFilesChecked`).
pub fn remove_files(repo: &Repository, kind: FileType, ids: &[Id]) -> crate::Result<()> {
    for id in ids {
        let h = Handle::new(kind, id.to_hex());
        repo.backend()
            .remove(&h)
            .map_err(anyhow::Error::new)
            .with_context(|| format!("removing {h}"))?;
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, Default)]
pub struct RepairIndexOptions {
    /// Read every pack's header, ignoring what the index files say.
    pub read_all_packs: bool,
}

#[derive(Clone, Debug, Default)]
pub struct RepairIndexStats {
    /// Packs whose headers were read.
    pub packs_read: usize,
    /// Packs that could not be read (left in place, not indexed).
    pub packs_invalid: Vec<Id>,
    /// Index entries dropped because their pack does not exist.
    pub packs_missing: usize,
    /// Packs in the new index.
    pub packs_indexed: usize,
    pub index_files_written: usize,
    pub index_files_removed: usize,
}

/// Sorts a pack's entries by offset, so that two listings of the same pack compare equal.
fn sorted_blobs(mut blobs: Vec<IndexBlob>) -> Vec<IndexBlob> {
    blobs.sort_by_key(|b| (b.offset, b.id));
    blobs
}

/// restic's `repair index`: an index that covers exactly the packs that exist. Index entries
/// are trusted where the pack exists with the size they imply (and every index file listing
/// it agrees); all other packs, and with `read_all_packs` every pack, are read. New index files
/// are written first, then every old one is removed.
pub fn repair_index(
    repo: &Repository,
    opts: RepairIndexOptions,
    report: &dyn Observer,
) -> crate::Result<RepairIndexStats> {
    let mut stats = RepairIndexStats::default();
    let mut obsolete: Vec<Id> = Vec::new();
    let mut from_index: HashMap<Id, Vec<IndexBlob>> = HashMap::new();
    let mut disagree: BTreeSet<Id> = BTreeSet::new();
    if opts.read_all_packs {
        obsolete = repo
            .list_ids(FileType::Index)
            .context("listing index files")?;
    } else {
        report.info("loading indexes...");
        for (id, file) in load_index_files(repo)? {
            obsolete.push(id);
            let file = match file {
                Ok(f) => f,
                Err(e) => {
                    report.warn(&format!("removing invalid index {id}: {e:#}"));
                    continue;
                }
            };
            for p in file.packs {
                let blobs = sorted_blobs(p.blobs);
                match from_index.entry(p.id) {
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(blobs);
                    }
                    std::collections::hash_map::Entry::Occupied(o) => {
                        if *o.get() != blobs {
                            disagree.insert(p.id);
                        }
                    }
                }
            }
        }
    }
    check_cancel(report)?;

    report.info("getting pack files to read...");
    let listed = repo
        .backend()
        .list(FileType::Data)
        .map_err(anyhow::Error::new)
        .context("listing packs")?;
    let mut to_read: Vec<(Id, u64)> = Vec::new();
    let mut keep: BTreeMap<Id, Vec<IndexBlob>> = BTreeMap::new();
    for f in listed {
        let Ok(id) = Id::from_hex(&f.name) else {
            continue;
        };
        match from_index.remove(&id) {
            None => {
                // Also with read_all_packs, as restic prints it.
                report.warn(&format!("adding pack file to index {id}"));
                to_read.push((id, f.size));
            }
            Some(blobs) => {
                let expect = pack_size(&blobs);
                if expect != f.size {
                    report.warn(&format!(
                        "reindexing pack file {id} with unexpected size {} instead of {expect}",
                        f.size
                    ));
                    to_read.push((id, f.size));
                } else if disagree.contains(&id) {
                    report.warn(&format!(
                        "reindexing pack file {id}: index files disagree on its contents"
                    ));
                    to_read.push((id, f.size));
                } else {
                    keep.insert(id, blobs);
                }
            }
        }
    }
    let mut missing: Vec<Id> = from_index.into_keys().collect();
    missing.sort();
    for id in &missing {
        report.warn(&format!("removing not found pack file {id}"));
    }
    stats.packs_missing = missing.len();

    if !to_read.is_empty() {
        report.info("reading pack files");
        to_read.sort();
        let headers = parallel_map(&to_read, 8, |(id, size)| -> crate::Result<_> {
            check_cancel(report)?;
            Ok(read_pack_header(repo, id, *size))
        })?;
        stats.packs_read = to_read.len();
        for ((id, _), header) in to_read.iter().zip(headers) {
            match header {
                Ok(blobs) if !blobs.is_empty() => {
                    keep.insert(*id, blobs.iter().map(IndexBlob::from_packed).collect());
                }
                Ok(_) => {
                    report.warn(&format!("skipped incomplete pack file: {id}: no blobs"));
                    stats.packs_invalid.push(*id);
                }
                Err(e) => {
                    report.warn(&format!(
                        "skipped incomplete pack file: {id}: {}",
                        e.root_cause()
                    ));
                    stats.packs_invalid.push(*id);
                }
            }
        }
    }
    check_cancel(report)?;

    report.info("rebuilding index");
    stats.packs_indexed = keep.len();
    let packs: Vec<IndexPack> = keep
        .into_iter()
        .map(|(id, blobs)| IndexPack { id, blobs })
        .collect();
    obsolete.sort();
    obsolete.dedup();
    let written = save_index_files(repo, packs, obsolete.clone())?;
    stats.index_files_written = written.len();
    // Should a new index file have the name of an old one (it cannot: every file gets a fresh
    // nonce), it must not be removed.
    obsolete.retain(|id| !written.contains(id));

    report.info("deleting obsolete index files");
    remove_files(repo, FileType::Index, &obsolete)?;
    stats.index_files_removed = obsolete.len();
    Ok(stats)
}

/// What `repair packs` did.
#[derive(Clone, Debug, Default)]
pub struct RepairPacksStats {
    /// Blobs stored again in new packs.
    pub blobs_salvaged: u64,
    /// Blobs that could not be read.
    pub blobs_lost: u64,
    pub packs_removed: usize,
}

/// restic's `repair packs`: every blob of the named packs that can still be read (as the
/// index lists them, and as their header lists them if that differs) is stored again in new
/// packs; then the index files stop naming the damaged packs, and the packs are removed.
/// Snapshots that used a lost blob need `repair snapshots` afterwards.
pub fn repair_packs(
    repo: &Repository,
    ids: &[Id],
    compression: Compression,
    report: &dyn Observer,
) -> crate::Result<RepairPacksStats> {
    let mut stats = RepairPacksStats::default();
    let damaged: BTreeSet<Id> = ids.iter().copied().collect();
    let files: Vec<(Id, IndexFile)> = load_index_files(repo)?
        .into_iter()
        .map(|(id, f)| f.map(|f| (id, f)))
        .collect::<crate::Result<_>>()
        .context("loading index (run `repair index` first if an index file is damaged)")?;

    // Blobs stored elsewhere need no second copy; those in the damaged packs must be stored
    // again even though the index knows them.
    let mut known = MasterIndex::new();
    let mut in_index: BTreeMap<Id, Vec<IndexBlob>> = BTreeMap::new();
    for (_, f) in &files {
        for p in &f.packs {
            if damaged.contains(&p.id) {
                let e = in_index.entry(p.id).or_default();
                for b in &p.blobs {
                    if !e.contains(b) {
                        e.push(b.clone());
                    }
                }
            } else {
                known.add_pack(p.id, p.blobs.iter().map(|b| b.to_packed()));
            }
        }
    }
    known.finish();
    let sizes: HashMap<Id, u64> = repo
        .backend()
        .list(FileType::Data)
        .map_err(anyhow::Error::new)
        .context("listing packs")?
        .into_iter()
        .filter_map(|f| Id::from_hex(&f.name).ok().map(|id| (id, f.size)))
        .collect();

    report.info("salvaging intact data from specified pack files");
    let writer = BlobWriter::for_repo(repo, compression, &known);
    for id in &damaged {
        check_cancel(report)?;
        let mut index_blobs = in_index.remove(id).unwrap_or_default();
        index_blobs.sort_by_key(|b| (b.offset, b.id));
        let mut header_blobs: Option<Vec<IndexBlob>> = sizes.get(id).and_then(|size| {
            read_pack_header(repo, id, *size)
                .ok()
                .map(|v| v.iter().map(IndexBlob::from_packed).collect())
        });
        if let Some(h) = header_blobs.as_mut() {
            h.sort_by_key(|b| (b.offset, b.id));
        }
        salvage(repo, &writer, id, &index_blobs, &mut stats, report)?;
        if let Some(h) = &header_blobs {
            if *h != index_blobs {
                if !index_blobs.is_empty() {
                    report.warn(&format!("repairing incomplete index entry for pack {id}"));
                }
                let extra: Vec<IndexBlob> = h
                    .iter()
                    .filter(|b| !index_blobs.contains(b))
                    .cloned()
                    .collect();
                salvage(repo, &writer, id, &extra, &mut stats, report)?;
            }
        }
        let header_empty = match &header_blobs {
            Some(h) => h.is_empty(),
            None => true,
        };
        if index_blobs.is_empty() && header_empty {
            report.warn(&format!("no blobs found for pack {id}"));
        }
    }
    writer
        .finish()
        .context("storing the salvaged blobs failed")?;

    // The salvaged blobs are indexed now: the damaged packs can leave the index.
    rewrite_index_without(repo, &files, &damaged)?;

    report.info("removing salvaged pack files");
    for id in &damaged {
        let h = Handle::new(FileType::Data, id.to_hex());
        match repo.backend().remove(&h) {
            Ok(()) => stats.packs_removed += 1,
            // prune removes them later.
            Err(e) => report.warn(&format!("failed to delete pack file {id}: {e}")),
        }
    }
    Ok(stats)
}

/// Stores again each blob of `blobs` (entries of pack `pack`) that still decrypts and matches
/// its id.
fn salvage(
    repo: &Repository,
    writer: &BlobWriter,
    pack: &Id,
    blobs: &[IndexBlob],
    stats: &mut RepairPacksStats,
    report: &dyn Observer,
) -> anyhow::Result<()> {
    let h = Handle::new(FileType::Data, pack.to_hex());
    for b in blobs {
        let loc = BlobLocation {
            pack: *pack,
            blob: b.to_packed(),
        };
        // Declared lengths beyond the ceilings are refused before anything is read.
        let plain = crate::format::limits::check_blob(&loc.blob)
            .map_err(|e| anyhow::anyhow!("pack {}: {} blob {}: {e}", pack.short(), b.ty, b.id))
            .and_then(|()| {
                repo.backend()
                    .load(&h, b.offset as u64, b.length as u64)
                    .map_err(anyhow::Error::new)
            })
            .and_then(|sealed| {
                if sealed.len() != b.length as usize {
                    anyhow::bail!("short read");
                }
                Ok(repo.open_blob(&loc, &sealed)?)
            });
        match plain {
            Ok(p) => {
                writer
                    .save(b.ty, b.id, &p)
                    .with_context(|| format!("storing {} blob {}", b.ty, b.id))?;
                stats.blobs_salvaged += 1;
            }
            Err(e) => {
                report.warn(&format!("failed to load blob {}: {e:#}", b.id));
                stats.blobs_lost += 1;
            }
        }
    }
    Ok(())
}

/// Rewrites the index files that name any of `packs` without them: the new files are stored
/// first, then the old ones removed.
pub fn rewrite_index_without(
    repo: &Repository,
    files: &[(Id, IndexFile)],
    packs: &BTreeSet<Id>,
) -> crate::Result<()> {
    let mut old = Vec::new();
    let mut keep = Vec::new();
    for (id, f) in files {
        if !f.packs.iter().any(|p| packs.contains(&p.id)) {
            continue;
        }
        old.push(*id);
        keep.extend(f.packs.iter().filter(|p| !packs.contains(&p.id)).cloned());
    }
    if old.is_empty() {
        return Ok(());
    }
    save_index_files(repo, keep, old.clone())?;
    remove_files(repo, FileType::Index, &old)
}

/// Copies of the packs `ids`, each stored in `dir` as `pack-<id>` before `repair packs`
/// touches them, in case the salvage goes wrong. A pack that cannot be read is warned about
/// (the repair then removes it); an existing copy is never overwritten.
pub fn save_pack_copies(
    repo: &Repository,
    ids: &[Id],
    dir: &std::path::Path,
    report: &dyn Observer,
) -> crate::Result<()> {
    use std::io::Write;
    for id in ids {
        let h = Handle::new(FileType::Data, id.to_hex());
        let data = match crate::format::limits::load_pack_bounded(repo.backend().as_ref(), &h) {
            Ok(d) => d,
            Err(e) => {
                report.warn(&format!(
                    "will remove packfile {id} due to failed download: {e}"
                ));
                continue;
            }
        };
        let name = dir.join(format!("pack-{id}"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&name)
            .map_err(|e| anyhow::anyhow!("creating backup copy {}: {e}", name.display()))?;
        f.write_all(&data)
            .and_then(|_| f.sync_all())
            .map_err(|e| anyhow::anyhow!("writing backup copy {}: {e}", name.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::pack::BlobType;

    #[test]
    fn pack_size_counts_header_entries() {
        let b = |len, ulen| IndexBlob {
            id: Id([1; 32]),
            ty: BlobType::Data,
            offset: 0,
            length: len,
            uncompressed_length: ulen,
        };
        // The smallest pack: one empty blob, 32 + (32 + 37) + 4 bytes.
        assert_eq!(pack_size(&[b(32, 0)]), 105);
        assert_eq!(pack_size(&[b(32, 0), b(50, 90)]), 105 + 50 + 41);
    }

    use crate::testing::Warnings;

    #[test]
    fn pack_copies_are_saved_once_and_unreadable_packs_warned_about() {
        let (_d, mut repo) = crate::testing::new_repo();
        let b = crate::testing::Blobs::new(&repo);
        let blob = b.data(b"some data");
        b.finish();
        repo.reload_index().expect("index");
        let pack = repo.index().lookup_all(BlobType::Data, &blob)[0].pack;
        let missing = Id::hash(b"no such pack");
        let out = tempfile::tempdir().expect("temp dir");
        let w = Warnings::default();
        save_pack_copies(&repo, &[pack, missing], out.path(), &w).expect("copies");
        let copy = std::fs::read(out.path().join(format!("pack-{pack}"))).expect("copy");
        assert_eq!(Id::hash(&copy), pack);
        let warned = w.take();
        assert_eq!(warned.len(), 1);
        assert!(
            warned[0].starts_with(&format!("will remove packfile {missing}")),
            "{warned:?}"
        );
        let e = save_pack_copies(&repo, &[pack], out.path(), &w).expect_err("exists");
        assert!(e.to_string().starts_with("creating backup copy "), "{e}");
    }
}
