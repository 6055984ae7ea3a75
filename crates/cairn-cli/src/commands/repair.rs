//! `repair index` (restic 0.14: `rebuild-index`), `repair packs` and `repair snapshots`.

use super::snapshot_ref;
use crate::global::GlobalOptions;
use crate::printer::{printer, During};
use cairn_core::observe::Observer;
use cairn_core::repair::{self, RepairIndexOptions};
use cairn_core::rewrite::Replace;
use cairn_core::Id;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Build a new index
    Index(IndexArgs),
    /// Salvage damaged pack files
    Packs(PacksArgs),
    /// Repair snapshots
    Snapshots(SnapshotsArgs),
}

#[derive(clap::Args)]
pub struct IndexArgs {
    /// Read all pack files to generate new index from scratch
    #[arg(long)]
    read_all_packs: bool,
}

#[derive(clap::Args)]
pub struct PacksArgs {
    /// Pack files to salvage (full ids)
    #[arg(value_name = "packIDs")]
    ids: Vec<String>,
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    match a.what {
        What::Index(i) => run_index(i, g),
        What::Packs(p) => run_packs(p, g),
        What::Snapshots(s) => run_snapshots(s, g),
    }
}

#[derive(clap::Args)]
#[command(mut_args(snapshot_ref::help_without_ids))]
pub struct SnapshotsArgs {
    /// Snapshots to repair (default: all that match the filters)
    #[arg(value_name = "snapshotID")]
    ids: Vec<String>,
    #[command(flatten)]
    filter: snapshot_ref::Filter,
    /// Do not do anything, just print what would be done
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Remove original snapshots after creating new ones
    #[arg(long)]
    forget: bool,
}

/// `repair snapshots` (restic >= 0.16).
fn run_snapshots(a: SnapshotsArgs, g: &GlobalOptions) -> anyhow::Result<i32> {
    let repo = if a.dry_run {
        g.open()?
    } else {
        g.open_exclusive()?
    }
    .load_index()?;
    let p = printer(g, During::Maintenance, false);
    let compression = g.compression()?;
    let selected = a.filter.core().select_lenient(&repo, &a.ids, &p)?;
    let how = Replace {
        dry_run: a.dry_run,
        forget: a.forget,
        tag: "repaired",
        new_host: None,
        new_time: None,
        compression,
        interrupted: Some(&crate::signals::INTERRUPTED),
        create_summary: false,
    };
    cairn_core::rewrite::repair_snapshots(&repo, selected, &how, &p)?;
    Ok(crate::exit::OK)
}

/// `repair index` and its 0.14 name `rebuild-index`.
pub fn run_index(a: IndexArgs, g: &GlobalOptions) -> anyhow::Result<i32> {
    let repo = g.open_exclusive()?;
    let p = printer(g, During::Maintenance, false);
    repair::repair_index(
        &repo,
        RepairIndexOptions {
            read_all_packs: a.read_all_packs,
        },
        &p,
    )?;
    p.info("done");
    Ok(crate::exit::OK)
}

fn run_packs(a: PacksArgs, g: &GlobalOptions) -> anyhow::Result<i32> {
    let mut ids = Vec::new();
    for s in &a.ids {
        let id = Id::from_hex(s).map_err(|e| anyhow::anyhow!("invalid pack id {s:?}: {e:#}"))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        anyhow::bail!("no ids specified");
    }
    let repo = g.open_exclusive()?;
    let p = printer(g, During::Maintenance, false);

    // A copy of each pack in the working directory, in case the salvage goes wrong.
    p.info("saving backup copies of pack files to current folder");
    repair::save_pack_copies(&repo, &ids, std::path::Path::new(""), &p)?;

    let stats = repair::repair_packs(&repo, &ids, g.compression()?, &p)?;
    p.verbose(&format!(
        "salvaged {} blobs, {} could not be read, removed {} pack files",
        stats.blobs_salvaged, stats.blobs_lost, stats.packs_removed
    ));
    eprintln!(
        "\nUse `cairn repair snapshots --forget` to remove the corrupted data blobs from all snapshots"
    );
    Ok(crate::exit::OK)
}
