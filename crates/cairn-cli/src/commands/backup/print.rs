//! What `backup` prints: errors and per-file lines as they happen, the live progress line (or
//! restic's `status` messages), the adoption of an interrupted run's packs, and the summary.

use crate::global::GlobalOptions;
use crate::output;
use crate::printer::Printer;
use cairn_core::adopt::AdoptStats;
use cairn_core::archiver;
use cairn_core::format::gotime;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The closing summary: restic's `summary` message with `--json`, its text otherwise.
pub(super) fn print_summary(
    res: &archiver::BackupResult,
    adopted: &AdoptStats,
    elapsed: f64,
    dry_run: bool,
    g: &GlobalOptions,
) {
    let sm = &res.summary;
    crate::printer::record_backup(cairn_profile::outcome::BackupCounts {
        files_new: sm.files_new,
        files_changed: sm.files_changed,
        files_unmodified: sm.files_unmodified,
        dirs_new: sm.dirs_new,
        dirs_changed: sm.dirs_changed,
        dirs_unmodified: sm.dirs_unmodified,
        total_files_processed: sm.total_files_processed,
        total_bytes_processed: sm.total_bytes_processed,
        data_added: sm.data_added,
        data_added_packed: sm.data_added_packed,
        snapshot_id: res.snapshot_id.map(|id| id.to_hex()),
    });
    if g.json {
        let m = serde_json::json!({
            "message_type": "summary",
            "files_new": sm.files_new, "files_changed": sm.files_changed, "files_unmodified": sm.files_unmodified,
            "dirs_new": sm.dirs_new, "dirs_changed": sm.dirs_changed, "dirs_unmodified": sm.dirs_unmodified,
            "data_blobs": sm.data_blobs, "tree_blobs": sm.tree_blobs, "data_added": sm.data_added,
            "data_added_packed": sm.data_added_packed,
            "total_files_processed": sm.total_files_processed, "total_bytes_processed": sm.total_bytes_processed,
            "total_duration": elapsed,
            "backup_start": gotime::format_rfc3339_nano(&sm.backup_start),
            "backup_end": gotime::format_rfc3339_nano(&sm.backup_end),
        });
        let mut m = m;
        // restic 0.18: `dry_run` only when true, the whole snapshot id.
        if dry_run {
            m["dry_run"] = true.into();
        }
        if let Some(id) = res.snapshot_id {
            m["snapshot_id"] = id.to_hex().into();
        }
        // cairn's own: what an interrupted earlier run had stored.
        m["files_resumed"] = res.files_resumed.into();
        m["packs_adopted"] = adopted.packs.into();
        m["data_adopted_packed"] = adopted.bytes.into();
        println!("{m}");
    } else if !g.quiet {
        println!();
        if res.files_resumed > 0 {
            println!(
                "resumed {} files stored by an interrupted earlier run",
                res.files_resumed
            );
        }
        println!(
            "Files:       {:5} new, {:5} changed, {:5} unmodified",
            sm.files_new, sm.files_changed, sm.files_unmodified
        );
        println!(
            "Dirs:        {:5} new, {:5} changed, {:5} unmodified",
            sm.dirs_new, sm.dirs_changed, sm.dirs_unmodified
        );
        if dry_run {
            println!(
                "Would add to the repository: {}",
                output::bytes(sm.data_added)
            );
        } else {
            println!(
                "Added to the repository: {} ({} stored)",
                output::bytes(sm.data_added),
                output::bytes(sm.data_added_packed)
            );
        }
        println!();
        println!(
            "processed {} files, {} in {}",
            sm.total_files_processed,
            output::bytes(sm.total_bytes_processed),
            output::duration(elapsed)
        );
        match (res.snapshot_id, dry_run) {
            (Some(id), _) => println!("snapshot {} saved", id.short()),
            (None, false) => println!("skipped creating snapshot: nothing changed"),
            (None, true) => {}
        }
    }
}

/// Totals found by the scanner running beside the backup.
pub(super) struct Totals {
    pub(super) files: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) scanned: AtomicBool,
}

pub(super) fn progress_loop(obs: &Printer, totals: &Totals, done: &AtomicBool, start: Instant) {
    let interval = output::progress_interval().unwrap_or(Duration::from_secs(1));
    let mut last = Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100).min(interval));
        if last.elapsed() < interval || obs.quiet() {
            continue;
        }
        last = Instant::now();
        let files = obs.tally().files.load(Ordering::Relaxed);
        let bytes = obs.tally().bytes.load(Ordering::Relaxed);
        let (total_files, total_bytes) = (
            totals.files.load(Ordering::Relaxed),
            totals.bytes.load(Ordering::Relaxed),
        );
        let secs = start.elapsed().as_secs_f64();
        let fraction = if total_bytes > 0 {
            (bytes as f64 / total_bytes as f64).min(1.0)
        } else {
            0.0
        };
        // An ETA only once the scanner knows the whole size and some progress was made.
        let remaining = (totals.scanned.load(Ordering::Relaxed) && fraction > 0.0)
            .then(|| secs / fraction - secs);
        let cur = obs
            .tally()
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if obs.is_json() {
            let mut m = serde_json::json!({
                "message_type": "status", "seconds_elapsed": secs as u64,
            });
            if let Some(r) = remaining {
                m["seconds_remaining"] = (r as u64).into();
            }
            m["percent_done"] = fraction.into();
            m["total_files"] = total_files.into();
            m["files_done"] = files.into();
            m["total_bytes"] = total_bytes.into();
            m["bytes_done"] = bytes.into();
            m["error_count"] = obs.tally().errors.load(Ordering::Relaxed).into();
            m["current_files"] = serde_json::json!([cur]);
            println!("{m}");
        } else {
            let rate = bytes as f64 / secs.max(0.001);
            let eta = remaining
                .map(|r| format!(" ETA {}", output::duration(r)))
                .unwrap_or_default();
            let mut line = format!(
                "[{}] {:.2}%  {} files {}, total {} files {}, {}/s, {} errors{eta}  {}",
                output::duration(secs),
                fraction * 100.0,
                files,
                output::bytes(bytes),
                total_files,
                output::bytes(total_bytes),
                output::bytes(rate as u64),
                obs.tally().errors.load(Ordering::Relaxed),
                cur
            );
            let width = terminal_width().saturating_sub(1).max(40);
            if let Some((i, _)) = line.char_indices().nth(width) {
                line.truncate(i);
            }
            print!("\r\x1b[2K{line}");
            let _ = std::io::stdout().flush();
        }
    }
}

fn terminal_width() -> usize {
    // SAFETY: an all-zero winsize is a valid value of this plain C struct.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills a winsize struct we own.
    if unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_col > 0 {
        ws.ws_col as usize
    } else {
        120
    }
}
