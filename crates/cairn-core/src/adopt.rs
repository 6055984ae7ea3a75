//! Adopting packs that an interrupted writer stored but never indexed.
//!
//! A backup (or copy) stores packs as it goes and names them in an index file only at a
//! checkpoint or at the end. Killed in between, it leaves complete packs in `data/` that no
//! index lists: their blobs are unknown, so a re-run would upload them again (and prune would
//! later delete the orphans). Before a backup or copy writes anything, [`adopt_orphan_packs`]
//! reads the header of every such pack, verifies it, and stores an index file naming the good
//! ones, so that their blobs count as known and nothing is uploaded twice.
//!
//! Why an unindexed pack is never one still being written: every backend stores a file under
//! its final name only once it is complete (local and SFTP write a hidden temporary file and
//! rename or link it into place; REST and S3 store a file with one request, which the server
//! makes visible only when it has all of it). But a pack may belong to a *live* writer that
//! has not reached its next checkpoint yet. Adopting it would only make that pack listed by
//! two index files (a hint for `check`, not an error), yet adoption is skipped while any other
//! process holds a lock that is not stale: a writer's lock is stored before its first pack,
//! and locks are listed after `data/`, so a pack of a live writer always comes with its lock.
//! A killed process's lock is stale at once on its own host (its pid is gone), after 30
//! minutes elsewhere. Prune takes an exclusive lock, so it never runs beside a backup and
//! cannot delete the packs of one that is running.
//!
//! What is verified: the header's length against a ceiling and the file's size before
//! anything is allocated (headers are untrusted), its authentication (decryption), that its
//! entries add up to the file's size exactly, and each entry's length. On a local repository
//! every blob's authentication tag is checked too (read in bounded pieces; Poly1305 only, no
//! decryption): with the authenticated header that covers every byte of the pack, so a body
//! that a crash or bad disk damaged is caught before backup deduplicates against it, at a
//! fraction of the cost of hashing the pack. Packs that this machine's resume log names were
//! seen stored durably by the killed run itself ([`crate::archiver::resume::witnessed_packs`]);
//! their headers are checked, their blobs are not read again. On a remote repository the header alone is
//! trusted, as restic's `repair index` does: checking blobs would download every orphan,
//! about what re-uploading it costs. A blob in an adopted pack that turns out damaged is then
//! found by `check --read-data` and handled by `repair packs`/prune as any other.

use crate::crypto::OVERHEAD;
use crate::format::indexfile::{IndexBlob, IndexPack};
use crate::format::pack::PackedBlob;
use crate::observe::{check_cancel, Observer};
use crate::repair::{read_pack_header, save_index_files};
use crate::repository::{IndexedRepository, Repository};
use crate::util::parallel::parallel_map;
use crate::Id;
use anyhow::Context;
use cairn_backend::{FileType, Handle};
use std::collections::HashSet;

/// Largest piece of a pack read at once to check its blobs (bounds memory per reading
/// thread; a single blob larger than this, which the header ceilings allow, is read alone).
const VERIFY_PIECE: u64 = 8 * 1024 * 1024;
/// The smallest valid pack: one empty blob (32 bytes sealed), a sealed 37-byte header entry
/// and the 4-byte header length.
const MIN_PACK: u64 = 32 + (OVERHEAD as u64 + 37) + 4;

/// How to verify orphan packs.
#[derive(Clone, Debug, Default)]
pub struct AdoptOptions {
    /// Read each whole pack and check every blob's authentication tag (besides the header
    /// checks).
    pub verify_blobs: bool,
    /// Packs whose blobs need no check: a run on this machine logged them as stored.
    pub witnessed: HashSet<Id>,
}

impl AdoptOptions {
    /// Check blobs on a local repository, trust authenticated headers on a remote one.
    pub fn for_repo(repo: &Repository) -> AdoptOptions {
        AdoptOptions {
            verify_blobs: !cairn_backend::is_remote(&repo.backend().location()),
            witnessed: HashSet::new(),
        }
    }

    /// For a backup: [`for_repo`](Self::for_repo), trusting the packs that this machine's
    /// resume logs (under `cache_dir`, when there is a cache) saw stored.
    pub fn for_backup(repo: &Repository, cache_dir: Option<&std::path::Path>) -> AdoptOptions {
        let mut opts = AdoptOptions::for_repo(repo);
        if let Some(dir) = cache_dir {
            opts.witnessed = crate::archiver::resume::witnessed_packs(dir, &repo.config().id);
        }
        opts
    }
}

/// What [`adopt_orphan_packs`] found and did.
#[derive(Clone, Debug, Default)]
pub struct AdoptStats {
    /// Packs in `data/` that no index names.
    pub orphans: usize,
    /// Packs now named by a new index file.
    pub packs: usize,
    /// Their size in bytes.
    pub bytes: u64,
    /// Blobs they hold.
    pub blobs: u64,
    /// Orphans that failed verification (left for prune), with the reason.
    pub damaged: Vec<(Id, String)>,
    /// Set when adoption was skipped because another process uses the repository.
    pub deferred: Option<String>,
    /// The index files written.
    pub index_files: Vec<Id>,
}

/// Adopts the packs of `data/` that no loaded index names (see the module documentation).
/// Loads the index if needed and adds the adopted packs to it. Call with the repository
/// locked (shared), before anything is written.
pub fn adopt_orphan_packs(
    repo: &mut IndexedRepository,
    opts: &AdoptOptions,
    report: &dyn Observer,
) -> crate::Result<AdoptStats> {
    let mut stats = AdoptStats::default();
    let known: HashSet<Id> = repo.index().pack_ids().iter().copied().collect();
    let listed = repo
        .backend()
        .list(FileType::Data)
        .map_err(anyhow::Error::new)
        .context("listing packs")?;
    let mut orphans: Vec<(Id, u64)> = listed
        .into_iter()
        .filter_map(|f| Id::from_hex(&f.name).ok().map(|id| (id, f.size)))
        .filter(|(id, _)| !known.contains(id))
        .collect();
    drop(known);
    if orphans.is_empty() {
        return Ok(stats);
    }
    orphans.sort();
    orphans.dedup_by_key(|(id, _)| *id);
    stats.orphans = orphans.len();

    // After the listing: a writer that stored one of these packs had stored its lock before.
    if let Some(who) = live_writer(repo)? {
        report.verbose(&format!(
            "{} packs are in no index; not adopting them while another process uses the \
             repository ({who})",
            orphans.len()
        ));
        stats.deferred = Some(who);
        return Ok(stats);
    }

    let threads = repo.backend().connections().clamp(2, 8);
    let checked = parallel_map(&orphans, threads, |(id, size)| -> crate::Result<_> {
        check_cancel(report)?;
        Ok(verify_pack(repo, id, *size, opts))
    })?;
    check_cancel(report)?;
    let mut packs = Vec::new();
    for ((id, size), res) in orphans.iter().zip(checked) {
        match res {
            Ok(blobs) => {
                stats.packs += 1;
                stats.bytes += size;
                stats.blobs += blobs.len() as u64;
                packs.push(IndexPack {
                    id: *id,
                    blobs: blobs.iter().map(IndexBlob::from_packed).collect(),
                });
            }
            Err(e) => {
                let why = format!("{:#}", e);
                report.warn(&format!(
                    "pack {id} is in no index and is damaged, not adopted (prune removes it): \
                     {why}"
                ));
                stats.damaged.push((*id, why));
            }
        }
    }
    if packs.is_empty() {
        return Ok(stats);
    }
    stats.index_files = save_index_files(repo, packs.clone(), Vec::new())
        .context("storing an index for packs of an interrupted run")?;
    repo.add_to_index(&packs);
    report.info(&format!(
        "adopted {} packs ({:.1} MiB) left by an interrupted backup or copy",
        stats.packs,
        stats.bytes as f64 / (1024.0 * 1024.0)
    ));
    Ok(stats)
}

/// Describes another process's lock that is not stale, if there is one.
fn live_writer(repo: &Repository) -> anyhow::Result<Option<String>> {
    let host = crate::lock::hostname();
    let me = std::process::id() as i64;
    let locks = crate::lock::list_locks(repo).context("listing locks")?;
    Ok(locks
        .into_iter()
        .find(|(_, l)| {
            let ours = l.hostname == host && l.pid == me;
            !ours && !l.is_stale(&host)
        })
        .map(|(id, l)| l.describe(&id)))
}

/// Reads and checks one pack's header (and with `verify_blobs` its blobs); its blobs.
fn verify_pack(
    repo: &Repository,
    id: &Id,
    size: u64,
    opts: &AdoptOptions,
) -> anyhow::Result<Vec<PackedBlob>> {
    if size < MIN_PACK {
        anyhow::bail!("{size} bytes is too short for a pack");
    }
    // Checks the header length against its ceiling and the size before reading it.
    let blobs = read_pack_header(repo, id, size)?;
    if blobs.is_empty() {
        anyhow::bail!("the header lists no blobs");
    }
    for b in &blobs {
        if (b.length as usize) < OVERHEAD {
            anyhow::bail!("blob {} is {} bytes, too short", b.id, b.length);
        }
        if b.is_compressed() && repo.version() < 2 {
            anyhow::bail!("blob {} is compressed in a version 1 repository", b.id);
        }
    }
    if opts.verify_blobs && !opts.witnessed.contains(id) {
        verify_blob_tags(repo, id, &blobs)?;
    }
    Ok(blobs)
}

/// Checks the authentication tag of every blob of a pack, reading runs of neighbouring blobs
/// in pieces of at most [`VERIFY_PIECE`] bytes.
fn verify_blob_tags(repo: &Repository, id: &Id, blobs: &[PackedBlob]) -> anyhow::Result<()> {
    let h = Handle::new(FileType::Data, id.to_hex());
    let mut sorted: Vec<&PackedBlob> = blobs.iter().collect();
    sorted.sort_by_key(|b| b.offset);
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i].offset as u64;
        let mut end = start + sorted[i].length as u64;
        let mut j = i + 1;
        while j < sorted.len()
            && sorted[j].offset as u64 >= end
            && sorted[j].offset as u64 + sorted[j].length as u64 - start <= VERIFY_PIECE
        {
            end = sorted[j].offset as u64 + sorted[j].length as u64;
            j += 1;
        }
        let piece = repo
            .backend()
            .load(&h, start, end - start)
            .map_err(anyhow::Error::new)?;
        if piece.len() as u64 != end - start {
            anyhow::bail!("short read at byte {start}");
        }
        for b in &sorted[i..j] {
            let at = (b.offset as u64 - start) as usize;
            let sealed = &piece[at..at + b.length as usize];
            if !repo.key().verify(sealed) {
                anyhow::bail!("blob {} at byte {} fails authentication", b.id, b.offset);
            }
        }
        i = j;
    }
    Ok(())
}
