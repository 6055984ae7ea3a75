//! `rewrite` (restic ≥ 0.15): snapshots without excluded paths, or with a new host or time,
//! stored as new snapshots that name the old one in `original` (with `--forget` the old one
//! is removed). The work is the core's ([`cairn_core::rewrite::rewrite_snapshots`]).

use super::snapshot_ref;
use crate::global::GlobalOptions;
use crate::printer::{printer, During};
use cairn_core::archiver::select::{patterns_with_files, SelectOptions, Selection};
use cairn_core::rewrite::{Replace, RewriteOptions};
use cairn_core::util::timeparse;
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(mut_args(snapshot_ref::help_without_ids))]
pub struct Args {
    /// Snapshots to rewrite (default: all that match the filters)
    #[arg(value_name = "snapshotID")]
    ids: Vec<String>,
    #[command(flatten)]
    filter: snapshot_ref::Filter,
    /// Exclude a pattern (can be specified multiple times)
    #[arg(short = 'e', long = "exclude", value_name = "pattern")]
    excludes: Vec<String>,
    /// Read exclude patterns from a file (can be specified multiple times)
    #[arg(long = "exclude-file", value_name = "file")]
    exclude_files: Vec<PathBuf>,
    /// Same as --exclude pattern but ignores the casing of filenames
    #[arg(long = "iexclude", value_name = "pattern")]
    iexcludes: Vec<String>,
    /// Same as --exclude-file but ignores casing of filenames in patterns
    #[arg(long = "iexclude-file", value_name = "file")]
    iexclude_files: Vec<PathBuf>,
    /// Remove original snapshots after creating new ones
    #[arg(long)]
    forget: bool,
    /// Do not do anything, just print what would be done
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Replace hostname
    #[arg(long, value_name = "host")]
    new_host: Option<String>,
    /// Replace time of the backup
    #[arg(long, value_name = "time")]
    new_time: Option<String>,
    /// Create snapshot summary record if it does not exist (recounts files and bytes)
    #[arg(short = 's', long)]
    snapshot_summary: bool,
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let excludes = patterns_with_files(&a.excludes, &a.exclude_files)?;
    let iexcludes = patterns_with_files(&a.iexcludes, &a.iexclude_files)?;
    let filtering = !excludes.is_empty() || !iexcludes.is_empty();
    let new_host = a.new_host.as_deref().filter(|h| !h.is_empty());
    let new_time = a.new_time.as_deref().filter(|t| !t.is_empty());
    if !filtering && !a.snapshot_summary && new_host.is_none() && new_time.is_none() {
        anyhow::bail!("Nothing to do: no excludes provided and no new metadata provided");
    }
    let new_time = new_time
        .map(|s| {
            timeparse::parse_local_seconds(s)
                .map_err(|e| anyhow::anyhow!("error in time option: {s:?}: {e}"))
        })
        .transpose()?;
    let sel = Selection::new(&SelectOptions {
        excludes,
        iexcludes,
        ..Default::default()
    })?;
    let repo = if a.forget && !a.dry_run {
        g.open_exclusive()?
    } else {
        g.open()?
    }
    .load_index()?;
    let p = printer(g, During::Maintenance, false);
    let compression = g.compression()?;
    let selected = a.filter.core().select_lenient(&repo, &a.ids, &p)?;
    let opts = RewriteOptions {
        excludes: filtering.then_some(&sel),
        snapshot_summary: a.snapshot_summary,
        replace: Replace {
            dry_run: a.dry_run,
            forget: a.forget,
            tag: "rewrite",
            new_host,
            new_time,
            compression,
            interrupted: Some(&crate::signals::INTERRUPTED),
            create_summary: a.snapshot_summary,
        },
    };
    cairn_core::rewrite::rewrite_snapshots(&repo, selected, &opts, &p)?;
    Ok(crate::exit::OK)
}
