//! `diff`: what changed from one snapshot to another, printed as restic 0.14 prints it
//! (`+`/`-`/`M`/`T`/`U` lines in name order, then blob statistics; `--json` gives
//! `change` messages and a `statistics` message).
//!
//! Besides ids and id prefixes, cairn accepts `latest` and restic 0.17's `ID:subfolder`
//! (compare a directory inside the snapshots); restic 0.14 accepts neither.

use crate::global::GlobalOptions;
use cairn_core::diff::{self, DiffOutput, DiffStat};
use cairn_core::format::gojson::{write_json_bytes_as_str, write_json_str};
use std::io::Write;

#[derive(clap::Args)]
pub struct Args {
    /// The two snapshots to compare: ids, unique prefixes or "latest", each optionally
    /// followed by ":subfolder"
    #[arg(value_name = "SNAPSHOT-ID")]
    snapshots: Vec<String>,
    /// Print changes in metadata
    #[arg(long)]
    metadata: bool,
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    if a.snapshots.len() != 2 {
        anyhow::bail!("specify two snapshot IDs");
    }
    let repo = g.open_with_index()?;
    let (id1, tree1) = diff::resolve(&repo, &a.snapshots[0])?;
    let (id2, tree2) = diff::resolve(&repo, &a.snapshots[1])?;

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if !g.json && !g.quiet {
        writeln!(
            out,
            "comparing snapshot {} to {}:\n",
            id1.short(),
            id2.short()
        )?;
    }

    let mut printer = Changes {
        out: &mut out,
        json: g.json,
        quiet: g.quiet,
    };
    let r = diff::diff_trees(
        &repo,
        &tree1,
        &tree2,
        a.metadata,
        Some(&crate::signals::INTERRUPTED),
        &mut printer,
    )?;
    let (added, removed, changed) = (r.added, r.removed, r.changed_files);

    if g.json {
        let mut b = Vec::with_capacity(400);
        b.extend_from_slice(b"{\"message_type\":\"statistics\",\"source_snapshot\":");
        write_json_str(&mut b, &a.snapshots[0]);
        b.extend_from_slice(b",\"target_snapshot\":");
        write_json_str(&mut b, &a.snapshots[1]);
        b.extend_from_slice(
            format!(
                ",\"changed_files\":{changed},\"added\":{},\"removed\":{}}}\n",
                stat_json(&added),
                stat_json(&removed)
            )
            .as_bytes(),
        );
        out.write_all(&b)?;
    } else {
        writeln!(out)?;
        writeln!(
            out,
            "Files:       {:5} new, {:5} removed, {:5} changed",
            added.files, removed.files, changed
        )?;
        writeln!(
            out,
            "Dirs:        {:5} new, {:5} removed",
            added.dirs, removed.dirs
        )?;
        writeln!(
            out,
            "Others:      {:5} new, {:5} removed",
            added.others, removed.others
        )?;
        writeln!(
            out,
            "Data Blobs:  {:5} new, {:5} removed",
            added.data_blobs, removed.data_blobs
        )?;
        writeln!(
            out,
            "Tree Blobs:  {:5} new, {:5} removed",
            added.tree_blobs, removed.tree_blobs
        )?;
        writeln!(out, "  Added:   {:<5}", format_bytes(added.bytes))?;
        writeln!(out, "  Removed: {:<5}", format_bytes(removed.bytes))?;
    }
    out.flush()?;
    Ok(crate::exit::OK)
}

/// restic 0.14's `formatBytes` (note: 1024 bytes is still "1024 B").
fn format_bytes(c: u64) -> String {
    let b = c as f64;
    if c > 1 << 40 {
        format!("{:.3} TiB", b / (1u64 << 40) as f64)
    } else if c > 1 << 30 {
        format!("{:.3} GiB", b / (1u64 << 30) as f64)
    } else if c > 1 << 20 {
        format!("{:.3} MiB", b / (1u64 << 20) as f64)
    } else if c > 1 << 10 {
        format!("{:.3} KiB", b / (1u64 << 10) as f64)
    } else {
        format!("{c} B")
    }
}

/// A `DiffStat` as restic's `diff --json` writes it.
fn stat_json(s: &DiffStat) -> String {
    format!(
        "{{\"files\":{},\"dirs\":{},\"others\":{},\"data_blobs\":{},\"tree_blobs\":{},\"bytes\":{}}}",
        s.files, s.dirs, s.others, s.data_blobs, s.tree_blobs, s.bytes
    )
}

/// The changes as restic prints them: `+    /path` lines, or `change` messages with `--json`.
struct Changes<'w, W: Write> {
    out: &'w mut W,
    json: bool,
    quiet: bool,
}

impl<W: Write> DiffOutput for Changes<'_, W> {
    fn change(&mut self, path: &[u8], modifier: &str) -> anyhow::Result<()> {
        if self.quiet {
            return Ok(());
        }
        let mut b = Vec::with_capacity(path.len() + 64);
        if self.json {
            b.extend_from_slice(b"{\"message_type\":\"change\",\"path\":");
            write_json_bytes_as_str(&mut b, path);
            b.extend_from_slice(b",\"modifier\":");
            write_json_str(&mut b, modifier);
            b.extend_from_slice(b"}\n");
        } else {
            b.extend_from_slice(format!("{modifier:<5}").as_bytes());
            b.extend_from_slice(path);
            b.push(b'\n');
        }
        self.out.write_all(&b)?;
        Ok(())
    }

    fn warn(&mut self, msg: &str) {
        eprintln!("{msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_like_restic_014() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1024), "1024 B");
        assert_eq!(format_bytes(1025), "1.001 KiB");
        assert_eq!(format_bytes(5115), "4.995 KiB");
        assert_eq!(format_bytes(3 << 20), "3.000 MiB");
        assert_eq!(format_bytes((1 << 30) + 1), "1.000 GiB");
    }
}
