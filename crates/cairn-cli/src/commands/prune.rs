//! `prune`: removes data no snapshot refers to, repacking partly used packs.

use crate::global::GlobalOptions;
use crate::output::bytes;
use crate::printer::{printer, During};
use cairn_core::observe::Observer;
use cairn_core::pruner::{self, MaxUnused, PruneOptions, PruneStats};
use cairn_core::repository::Repository;

/// The options `prune` and `forget --prune` share.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Tuning {
    /// Tolerate given limit of unused data (absolute value in bytes with suffixes k/K, m/M,
    /// g/G, t/T, a value in % or the word 'unlimited')
    #[arg(long, value_name = "limit", default_value = "5%")]
    pub max_unused: String,
    /// Maximum size to repack (allowed suffixes: k/K, m/M, g/G, t/T)
    #[arg(long, value_name = "size")]
    pub max_repack_size: Option<String>,
    /// Only repack packs which are cacheable
    #[arg(long)]
    pub repack_cacheable_only: bool,
    /// Repack pack files below 80% of target pack size
    #[arg(long)]
    pub repack_small: bool,
    /// Repack all uncompressed data
    #[arg(long)]
    pub repack_uncompressed: bool,
    /// Pack below-limit packfiles (allowed suffixes: k/K, m/M)
    #[arg(long, value_name = "below-limit")]
    pub repack_smaller_than: Option<String>,
}

impl Tuning {
    pub fn options(&self, g: &GlobalOptions) -> anyhow::Result<PruneOptions> {
        Ok(PruneOptions {
            max_unused: MaxUnused::parse(&self.max_unused)?,
            max_repack_bytes: match &self.max_repack_size {
                Some(s) => cairn_core::archiver::select::parse_size(s)
                    .map_err(|e| anyhow::anyhow!("invalid --max-repack-size {s:?}: {e}"))?,
                None => u64::MAX,
            },
            repack_cacheable_only: self.repack_cacheable_only,
            repack_small: self.repack_small,
            repack_uncompressed: self.repack_uncompressed,
            repack_smaller_than: match self.repack_smaller_than.as_deref() {
                Some(s) if !s.is_empty() => {
                    Some(cairn_core::archiver::select::parse_size(s).map_err(|e| {
                        anyhow::anyhow!(
                            "invalid number of bytes {s:?} for --repack-smaller-than: {e}"
                        )
                    })?)
                }
                _ => None,
            },
            unsafe_recovery: false,
            compression: g.compression()?,
        })
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// Do not modify the repository, just print what would be done
    #[arg(short = 'n', long)]
    dry_run: bool,
    #[command(flatten)]
    tuning: Tuning,
    /// UNSAFE, READ THE DOCUMENTATION BEFORE USING! Try to recover a repository stuck with no
    /// free space. Do not use without trying out 'prune --max-repack-size 0' first.
    #[arg(long, value_name = "repository-id")]
    unsafe_recover_no_free_space: Option<String>,
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    // Validate options before touching the repository.
    let mut opts = a.tuning.options(g)?;
    let unsafe_id = a
        .unsafe_recover_no_free_space
        .as_deref()
        .filter(|s| !s.is_empty());
    if unsafe_id.is_some() {
        // Nothing is repacked: repacking needs room that is not there.
        opts.max_repack_bytes = 0;
    }
    let repo = g.open_exclusive()?;
    if let Some(given) = unsafe_id {
        // The repository's id, so that nobody runs this on a repository by accident.
        let id = &repo.config().id;
        if given != id {
            anyhow::bail!("must pass id '{id}' to --unsafe-recover-no-free-space");
        }
        opts.unsafe_recovery = true;
    }
    prune(repo, &opts, a.dry_run, g)?;
    Ok(crate::exit::OK)
}

/// Prunes an opened, exclusively locked repository (also used by `forget --prune`).
pub fn prune(
    repo: Repository,
    opts: &PruneOptions,
    dry_run: bool,
    g: &GlobalOptions,
) -> anyhow::Result<()> {
    let say = printer(g, During::Prune, false);
    say.info("loading indexes...");
    let repo = &repo.load_index()?;
    say.info("loading all snapshots...");
    let roots: Vec<cairn_core::Id> = repo
        .list_snapshots()?
        .into_iter()
        .map(|(_, s)| s.tree)
        .collect();
    let plan = pruner::plan(repo, &roots, opts, &say)?;
    if !g.quiet {
        print_stats(&plan.stats, g.verbose >= 1);
    }
    if dry_run {
        if g.verbose >= 2 {
            let list = |ids: &[cairn_core::Id]| {
                ids.iter().map(|i| i.to_hex()).collect::<Vec<_>>().join(" ")
            };
            if !plan.unreferenced.is_empty() {
                println!(
                    "Would have removed the following unreferenced packs:\n{{{}}}\n",
                    list(&plan.unreferenced)
                );
            }
            println!(
                "Would have repacked and removed the following packs:\n{{{}}}\n",
                list(&plan.repack)
            );
            println!(
                "Would have removed the following no longer used packs:\n{{{}}}\n",
                list(&plan.remove)
            );
        }
        return Ok(());
    }
    Ok(pruner::execute(repo, plan, opts, &say)?)
}

fn percent(part: u64, total: u64) -> String {
    if total == 0 {
        return "0.00%".into();
    }
    format!("{:.2}%", part as f64 / total as f64 * 100.0)
}

/// One line of restic's blob table: label, blob count, size.
fn blob_row(label: &str, blobs: u64, size: u64) {
    println!("{label}{blobs:>10} blobs / {}", bytes(size));
}

/// restic's summary of a prune plan; the detailed lines only with -v.
fn print_stats(s: &PruneStats, verbose: bool) {
    let total_blobs = s.blobs.used + s.blobs.unused + s.blobs.duplicate;
    let total_size = s.size.used + s.size.duplicate + s.size.unused + s.size.unref;
    let unused_size = s.size.duplicate + s.size.unused;
    if verbose {
        println!();
        blob_row("used:         ", s.blobs.used, s.size.used);
        if s.blobs.duplicate > 0 {
            blob_row("duplicates:   ", s.blobs.duplicate, s.size.duplicate);
        }
        blob_row("unused:       ", s.blobs.unused, s.size.unused);
        if s.size.unref > 0 {
            println!("unreferenced:                    {}", bytes(s.size.unref));
        }
        blob_row("total:        ", total_blobs, total_size);
        println!(
            "unused size: {} of total size",
            percent(unused_size, total_size)
        );
    }
    let prune_size = s.size.remove + s.size.repackrm + s.size.unref;
    let prune_blobs = s.blobs.remove + s.blobs.repackrm;
    println!();
    blob_row("to repack:    ", s.blobs.repack, s.size.repack);
    blob_row("this removes: ", s.blobs.repackrm, s.size.repackrm);
    blob_row(
        "to delete:    ",
        s.blobs.remove,
        s.size.remove + s.size.unref,
    );
    blob_row("total prune:  ", prune_blobs, prune_size);
    blob_row(
        "remaining:    ",
        total_blobs.saturating_sub(prune_blobs),
        total_size.saturating_sub(prune_size),
    );
    let unused_after = unused_size.saturating_sub(s.size.remove + s.size.repackrm);
    println!(
        "unused size after prune: {} ({} of remaining size)",
        bytes(unused_after),
        percent(unused_after, total_size.saturating_sub(prune_size))
    );
    println!();
    if verbose {
        println!("totally used packs: {:>10}", s.packs.used);
        println!("partly used packs:  {:>10}", s.packs.partly_used);
        println!("unused packs:       {:>10}\n", s.packs.unused);
        println!("to keep:      {:>10} packs", s.packs.keep);
        println!("to repack:    {:>10} packs", s.packs.repack);
        println!("to delete:    {:>10} packs", s.packs.remove);
        if s.packs.unref > 0 {
            println!("to delete:    {:>10} unreferenced packs\n", s.packs.unref);
        }
    }
}
