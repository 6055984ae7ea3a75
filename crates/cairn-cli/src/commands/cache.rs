//! `cache`: lists the local caches of repositories and removes old ones (`--cleanup`).

use crate::global::GlobalOptions;
use crate::output::bytes;
use std::time::{Duration, SystemTime};

#[derive(clap::Args)]
pub struct Args {
    /// Remove old cache directories
    #[arg(long)]
    cleanup: bool,
    /// Max age in days for cache directories to be considered old
    #[arg(long, default_value_t = 30)]
    max_age: u64,
    /// Do not output the size of the cache directories
    #[arg(long)]
    no_size: bool,
}

/// Removes the caches not used for longer than `max_age`.
fn remove_old(
    caches: &[cairn_core::cache::CacheDir],
    max_age: Duration,
    quiet: bool,
) -> anyhow::Result<()> {
    let now = SystemTime::now();
    let old: Vec<_> = caches
        .iter()
        .filter(|c| now.duration_since(c.last_used).is_ok_and(|d| d > max_age))
        .collect();
    if old.is_empty() {
        if !quiet {
            println!("no old cache dirs found");
        }
        return Ok(());
    }
    for c in old {
        if !quiet {
            println!("removing old cache dir {}", c.path.display());
        }
        std::fs::remove_dir_all(&c.path)
            .map_err(|e| anyhow::anyhow!("removing {}: {e}", c.path.display()))?;
    }
    Ok(())
}

/// The global `--cleanup-cache`: after a command, caches unused for 30 days are removed.
pub fn cleanup_after(g: &GlobalOptions) -> anyhow::Result<()> {
    let Some(base) = g.cache_dir() else {
        return Ok(());
    };
    let caches = cairn_core::cache::list_caches(&base)
        .map_err(|e| anyhow::anyhow!("reading cache directory {}: {e}", base.display()))?;
    remove_old(&caches, Duration::from_secs(30 * 24 * 3600), g.quiet)
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let Some(base) = g.cache_dir() else {
        anyhow::bail!("the cache is disabled (--no-cache)");
    };
    let caches = cairn_core::cache::list_caches(&base)
        .map_err(|e| anyhow::anyhow!("reading cache directory {}: {e}", base.display()))?;
    let max_age = Duration::from_secs(a.max_age * 24 * 3600);
    let now = SystemTime::now();
    let is_old = |t: SystemTime| now.duration_since(t).map(|d| d > max_age).unwrap_or(false);
    if a.cleanup {
        remove_old(&caches, max_age, g.quiet)?;
        return Ok(crate::exit::OK);
    }
    if caches.is_empty() {
        println!("no cache dirs found, base dir is {}", base.display());
        return Ok(crate::exit::OK);
    }
    let mut rows = vec![vec![
        "Repo ID".to_string(),
        "Last Used".to_string(),
        "Old".to_string(),
    ]];
    if !a.no_size {
        rows[0].push("Size".to_string());
    }
    for c in &caches {
        let days = now
            .duration_since(c.last_used)
            .map(|d| d.as_secs() / 86400)
            .unwrap_or(0);
        let used = match days {
            0 => "0 days ago".to_string(),
            1 => "1 day ago".to_string(),
            n => format!("{n} days ago"),
        };
        let mut row = vec![
            c.repo_id[..10].to_string(),
            used,
            if is_old(c.last_used) { "yes" } else { "" }.to_string(),
        ];
        if !a.no_size {
            row.push(bytes(dir_size(&c.path)));
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let line = "-".repeat(widths.iter().sum::<usize>() + 2 * widths.len());
    for (n, r) in rows.iter().enumerate() {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
        if n == 0 {
            println!("{line}");
        }
    }
    println!("{line}");
    println!("{} cache dirs in {}", caches.len(), base.display());
    Ok(crate::exit::OK)
}

fn dir_size(p: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
