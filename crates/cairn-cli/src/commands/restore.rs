use super::snapshot_ref;
use crate::global::GlobalOptions;
use crate::output;
use crate::printer::{printer, During};
use crate::signals::INTERRUPTED;
use cairn_core::restorer::{self, RestoreOptions};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
#[command(mut_args(snapshot_ref::help_when_latest))]
pub struct Args {
    /// Snapshot to restore: an ID, "latest", optionally followed by :SUBPATH
    snapshot: String,
    /// Directory to extract data to
    #[arg(short, long)]
    target: PathBuf,
    /// Include a pattern, exclude everything else (can be specified multiple times)
    #[arg(short, long = "include")]
    includes: Vec<String>,
    /// Exclude a pattern (can be specified multiple times)
    #[arg(short, long = "exclude")]
    excludes: Vec<String>,
    /// Verify restored files' content
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    filter: snapshot_ref::Filter,
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    if !a.includes.is_empty() && !a.excludes.is_empty() {
        anyhow::bail!("exclude and include patterns are mutually exclusive");
    }
    let start = Instant::now();
    let repo = g.open_with_index()?;
    let (spec, sub) = match a.snapshot.split_once(':') {
        Some((s, p)) => (s.to_string(), p.to_string()),
        None => (a.snapshot.clone(), String::new()),
    };
    let (id, snap) = a.filter.core().find(&repo, &spec)?;
    let tree = cairn_core::walk::subtree_at(&repo, snap.tree, &sub)
        .map_err(|e| anyhow::anyhow!("snapshot {}: {e:#}", id.short()))?;
    if !g.quiet && !g.json {
        println!(
            "restoring <Snapshot {} of [{}] at {} by {}@{}> to {}",
            id.short(),
            snap.paths.join(" "),
            snap.time.format("%Y-%m-%d %H:%M:%S%.f %z"),
            snap.username,
            snap.hostname,
            a.target.display()
        );
    }
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2)
        * 2;
    // Over a network a reader mostly waits on round trips: keep every connection busy.
    let threads = threads.max(2 * repo.connections());
    let opts = RestoreOptions {
        target: a.target.clone(),
        includes: a.includes,
        excludes: a.excludes,
        verify: a.verify,
        threads,
    };
    let obs = printer(g, During::Restore, false);
    let st = restorer::restore(&repo, tree, &opts, &obs, &INTERRUPTED)?;
    let secs = start.elapsed().as_secs_f64();
    if g.json {
        let m = serde_json::json!({
            "message_type": "summary", "seconds_elapsed": secs as u64, "total_files": st.files + st.dirs,
            "files_restored": st.files + st.dirs, "total_bytes": st.bytes, "bytes_restored": st.bytes,
            "files_verified": st.verified, "error_count": st.errors,
        });
        println!("{m}");
    } else if !g.quiet {
        println!(
            "Summary: Restored {} files/dirs ({}) in {}",
            st.files + st.dirs,
            output::bytes(st.bytes),
            output::duration(secs)
        );
        if a.verify {
            println!("verified {} files", st.verified);
        }
    }
    if st.errors > 0 {
        anyhow::bail!("There were {} errors", st.errors);
    }
    if st.warnings > 0 {
        // Everything restorable was restored, but not everything in the snapshot.
        eprintln!(
            "Warning: {} entries of the snapshot were not restored (see above)",
            st.warnings
        );
        return Ok(crate::exit::INCOMPLETE);
    }
    Ok(crate::exit::OK)
}
