use super::snapshot_ref;
use crate::global::GlobalOptions;
use crate::output;
use crate::printer::{printer, During};
use crate::signals::INTERRUPTED;
use cairn_core::archiver::select::patterns_with_files;
use cairn_core::restorer::{self, Overwrite, RestoreOptions};
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
    /// Read exclude patterns from a file (can be specified multiple times)
    #[arg(long = "exclude-file", value_name = "file")]
    exclude_files: Vec<PathBuf>,
    /// Read include patterns from a file (can be specified multiple times)
    #[arg(long = "include-file", value_name = "file")]
    include_files: Vec<PathBuf>,
    /// Same as --exclude pattern but ignores the casing of filenames
    #[arg(long = "iexclude", value_name = "pattern")]
    iexcludes: Vec<String>,
    /// Same as --exclude-file but ignores casing of filenames in patterns
    #[arg(long = "iexclude-file", value_name = "file")]
    iexclude_files: Vec<PathBuf>,
    /// Same as --include pattern but ignores the casing of filenames
    #[arg(long = "iinclude", value_name = "pattern")]
    iincludes: Vec<String>,
    /// Same as --include-file but ignores casing of filenames in patterns
    #[arg(long = "iinclude-file", value_name = "file")]
    iinclude_files: Vec<PathBuf>,
    /// Overwrite behavior, one of (always|if-changed|if-newer|never)
    #[arg(long, value_name = "behavior", default_value = "always", value_parser = parse_overwrite)]
    overwrite: Overwrite,
    /// Delete files from target directory if they do not exist in snapshot. Use '--dry-run -vv'
    /// to check what would be deleted
    #[arg(long)]
    delete: bool,
    /// Do not write any data, just show what would be done
    #[arg(long)]
    dry_run: bool,
    /// Restore files as sparse
    #[arg(long)]
    sparse: bool,
    /// Verify restored files' content
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    filter: snapshot_ref::Filter,
}

fn parse_overwrite(s: &str) -> Result<Overwrite, String> {
    s.parse()
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let excludes = patterns_with_files(&a.excludes, &a.exclude_files)?;
    let iexcludes = patterns_with_files(&a.iexcludes, &a.iexclude_files)?;
    let includes = patterns_with_files(&a.includes, &a.include_files)?;
    let iincludes = patterns_with_files(&a.iincludes, &a.iinclude_files)?;
    let including = !includes.is_empty() || !iincludes.is_empty();
    let excluding = !excludes.is_empty() || !iexcludes.is_empty();
    if including && excluding {
        anyhow::bail!("exclude and include patterns are mutually exclusive");
    }
    if a.dry_run && a.verify {
        anyhow::bail!("--dry-run and --verify are mutually exclusive");
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
            "restoring snapshot {} of [{}] at {} by {}@{} to {}",
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
        includes,
        excludes,
        iincludes,
        iexcludes,
        verify: a.verify,
        threads,
        overwrite: a.overwrite,
        delete: a.delete,
        dry_run: a.dry_run,
        sparse: a.sparse,
    };
    let obs = printer(g, During::Restore, false);
    let st = restorer::restore(&repo, tree, &opts, &obs, &INTERRUPTED)?;
    let secs = start.elapsed().as_secs_f64();
    print_summary(&st, secs, a.verify, g);
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

/// restic 0.18's closing line (text) or `summary` message (JSON, zero counts left out).
fn print_summary(st: &restorer::RestoreStats, secs: f64, verify: bool, g: &GlobalOptions) {
    let restored = st.files + st.dirs;
    if g.json {
        let mut m = serde_json::json!({"message_type": "summary"});
        let fields = [
            ("seconds_elapsed", secs as u64),
            ("total_files", restored + st.skipped),
            ("files_restored", restored),
            ("files_skipped", st.skipped),
            ("files_deleted", st.deleted),
            ("total_bytes", st.bytes + st.bytes_skipped),
            ("bytes_restored", st.bytes),
            ("bytes_skipped", st.bytes_skipped),
            // cairn's own.
            ("files_verified", st.verified),
            ("error_count", st.errors),
        ];
        for (k, v) in fields {
            if v > 0 {
                m[k] = v.into();
            }
        }
        println!("{m}");
        return;
    }
    if g.quiet {
        return;
    }
    let mut line = format!(
        "Summary: Restored {restored} files/dirs ({}) in {}",
        output::bytes(st.bytes),
        output::duration(secs)
    );
    if st.skipped > 0 {
        line += &format!(
            ", skipped {} files/dirs {}",
            st.skipped,
            output::bytes(st.bytes_skipped)
        );
    }
    if st.deleted > 0 {
        line += &format!(", deleted {} files/dirs", st.deleted);
    }
    println!("{line}");
    if verify {
        println!("verified {} files", st.verified);
    }
}
