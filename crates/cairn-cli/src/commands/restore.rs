use super::snapshot_ref;
use crate::global::GlobalOptions;
use crate::output;
use crate::printer::{printer, During, Printer};
use crate::signals::INTERRUPTED;
use cairn_core::archiver::select::patterns_with_files;
use cairn_core::observe::{Event, Observer, RestoreAction};
use cairn_core::restorer::{self, Overwrite, RestoreOptions};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
    /// Exclude xattr by pattern (can be specified multiple times)
    #[arg(long = "exclude-xattr", value_name = "pattern")]
    exclude_xattrs: Vec<String>,
    /// Include xattr by pattern (can be specified multiple times)
    #[arg(long = "include-xattr", value_name = "pattern")]
    include_xattrs: Vec<String>,
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
        xattr_excludes: a.exclude_xattrs.clone(),
        xattr_includes: a.include_xattrs.clone(),
    };
    // restic 0.18: a live line on a terminal and `status` messages with --json, 60 a second
    // unless RESTIC_PROGRESS_FPS says otherwise; none with --quiet.
    let live = !g.quiet && !g.json && std::io::stdout().is_terminal();
    let interval = ((live || g.json) && !g.quiet)
        .then(|| output::progress_interval().unwrap_or(Duration::from_secs(1) / 60));
    let obs = Progress {
        inner: printer(g, During::Restore, live),
        counts: Default::default(),
    };
    let done = AtomicBool::new(false);
    let st = std::thread::scope(|s| {
        if let Some(every) = interval {
            let (obs, done) = (&obs, &done);
            s.spawn(move || obs.report_until(done, every, start, g.json));
        }
        let r = restorer::restore(&repo, tree, &opts, &obs, &INTERRUPTED);
        done.store(true, Ordering::Relaxed);
        r
    })?;
    if live {
        print!("\r\x1b[2K");
    }
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

/// restic 0.18's restore progress counts, kept from the core's events.
#[derive(Default)]
struct Counts {
    total: AtomicU64,
    total_bytes: AtomicU64,
    restored: AtomicU64,
    /// Bytes of the files finished (a dry run writes none).
    bytes: AtomicU64,
    /// Bytes written so far, blob by blob.
    written: AtomicU64,
    skipped: AtomicU64,
    bytes_skipped: AtomicU64,
    deleted: AtomicU64,
}

/// The printer, plus the counts for the progress line and `status` messages.
struct Progress {
    inner: Printer,
    counts: Counts,
}

impl Observer for Progress {
    fn event(&self, e: Event<'_>) {
        let c = &self.counts;
        match e {
            Event::RestorePlanned { entries, bytes } => {
                c.total.store(entries, Ordering::Relaxed);
                c.total_bytes.store(bytes, Ordering::Relaxed);
            }
            Event::RestoreBytes { bytes } => {
                c.written.fetch_add(bytes, Ordering::Relaxed);
            }
            Event::Restored { action, size, .. } => {
                let (n, b) = match action {
                    RestoreAction::FileUnchanged => (&c.skipped, &c.bytes_skipped),
                    RestoreAction::Deleted => (&c.deleted, &c.bytes),
                    _ => (&c.restored, &c.bytes),
                };
                n.fetch_add(1, Ordering::Relaxed);
                if action != RestoreAction::Deleted {
                    b.fetch_add(size, Ordering::Relaxed);
                }
            }
            _ => {}
        }
        self.inner.event(e);
    }

    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }
}

impl Progress {
    /// Prints the progress every `every` until `done`.
    fn report_until(&self, done: &AtomicBool, every: Duration, start: Instant, json: bool) {
        let mut next = Instant::now() + every;
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50).min(every));
            if Instant::now() < next {
                continue;
            }
            next = Instant::now() + every;
            let line = self.status(start.elapsed(), json);
            if json {
                println!("{line}");
            } else {
                let mut out = std::io::stdout().lock();
                let _ = write!(out, "\r\x1b[2K{line}");
                let _ = out.flush();
            }
        }
    }

    /// restic 0.18's `status` message (zero counts left out) or its progress line.
    fn status(&self, elapsed: Duration, json: bool) -> String {
        let c = &self.counts;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (total, total_bytes) = (get(&c.total), get(&c.total_bytes));
        // Files are reported when all of them are written; the bytes as they go.
        let (restored, bytes) = (get(&c.restored), get(&c.bytes).max(get(&c.written)));
        let (skipped, bytes_skipped, deleted) =
            (get(&c.skipped), get(&c.bytes_skipped), get(&c.deleted));
        if json {
            let mut m = serde_json::json!({"message_type": "status"});
            let secs = elapsed.as_secs();
            if secs > 0 {
                m["seconds_elapsed"] = secs.into();
            }
            m["percent_done"] = if total_bytes > 0 {
                (bytes as f64 / total_bytes as f64).into()
            } else {
                0.0.into()
            };
            for (k, v) in [
                ("total_files", total),
                ("files_restored", restored),
                ("files_skipped", skipped),
                ("files_deleted", deleted),
                ("total_bytes", total_bytes),
                ("bytes_restored", bytes),
                ("bytes_skipped", bytes_skipped),
            ] {
                if v > 0 {
                    m[k] = v.into();
                }
            }
            return m.to_string();
        }
        let percent = if total_bytes > 0 {
            format!(
                "{:3.2}%",
                (bytes as f64 * 100.0 / total_bytes as f64).min(100.0)
            )
        } else {
            String::new()
        };
        let mut line = format!(
            "[{}] {percent}  {restored} files/dirs {}, total {total} files/dirs {}",
            output::duration(elapsed.as_secs_f64()),
            output::bytes(bytes),
            output::bytes(total_bytes)
        );
        if skipped > 0 {
            line += &format!(
                ", skipped {skipped} files/dirs {}",
                output::bytes(bytes_skipped)
            );
        }
        if deleted > 0 {
            line += &format!(", deleted {deleted} files/dirs");
        }
        line
    }
}
