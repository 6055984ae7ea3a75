//! `repair index` (restic 0.14: `rebuild-index`), `repair packs` and `repair snapshots`.

use crate::global::GlobalOptions;
use cairn_core::repair::{self, RepairIndexOptions, Report};
use cairn_core::Id;
use std::io::Write;
use std::sync::atomic::Ordering;

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
    Snapshots(super::rewrite::RepairSnapshotsArgs),
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

/// Messages as restic prints them: progress on stdout (not with `--quiet`), warnings on stderr.
pub struct Printer {
    pub quiet: bool,
    pub verbose: u8,
}

impl Printer {
    pub fn new(g: &GlobalOptions) -> Printer {
        Printer {
            quiet: g.quiet,
            verbose: g.verbose,
        }
    }
}

impl Report for Printer {
    fn info(&self, msg: &str) {
        if !self.quiet {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{msg}");
        }
    }
    fn warn(&self, msg: &str) {
        eprintln!("{msg}");
    }
    fn verbose(&self, msg: &str) {
        if self.verbose > 0 && !self.quiet {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{msg}");
        }
    }
    fn cancelled(&self) -> bool {
        crate::signals::INTERRUPTED.load(Ordering::Relaxed)
    }
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    match a.what {
        What::Index(i) => run_index(i, g),
        What::Packs(p) => run_packs(p, g),
        What::Snapshots(s) => super::rewrite::run_repair_snapshots(s, g),
    }
}

/// `repair index` and its 0.14 name `rebuild-index`.
pub fn run_index(a: IndexArgs, g: &GlobalOptions) -> anyhow::Result<i32> {
    let repo = g.open_exclusive()?;
    let p = Printer::new(g);
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
    let p = Printer::new(g);

    // A copy of each pack in the working directory, in case the salvage goes wrong.
    p.info("saving backup copies of pack files to current folder");
    for id in &ids {
        let h = cairn_backend::Handle::new(cairn_backend::FileType::Data, id.to_hex());
        let data = match cairn_core::format::limits::load_pack_bounded(repo.backend().as_ref(), &h)
        {
            Ok(d) => d,
            Err(e) => {
                p.warn(&format!(
                    "will remove packfile {id} due to failed download: {e}"
                ));
                continue;
            }
        };
        let name = format!("pack-{id}");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&name)
            .map_err(|e| anyhow::anyhow!("creating backup copy {name}: {e}"))?;
        f.write_all(&data)
            .and_then(|_| f.sync_all())
            .map_err(|e| anyhow::anyhow!("writing backup copy {name}: {e}"))?;
    }

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
