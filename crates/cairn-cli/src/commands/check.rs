//! `check`: tests the repository for errors, as `restic check` (0.14) does and prints it.
//!
//! Errors go to stderr, one line each, naming the damaged object; hints and progress go to
//! stdout. Any error makes the command end with `Fatal: repository contains errors` (exit 1).

use crate::global::GlobalOptions;
use cairn_core::checker::{self, Checker, Finding, Hint, Options, Problem, Subset};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Read all data blobs
    #[arg(long)]
    read_data: bool,
    /// Read a subset of data packs, specified as 'n/t' for specific part, or either 'x%' or
    /// 'x.y%' or a size in bytes with suffixes k/K, m/M, g/G, t/T for a random subset
    #[arg(long, value_name = "subset")]
    read_data_subset: Option<String>,
    /// List blobs that no snapshot uses and blobs stored more than once (as hints; restic
    /// 0.14 accepts and ignores this flag)
    #[arg(long)]
    check_unused: bool,
    /// Use the cache (by default check reads everything from the repository itself, so that
    /// a good cached copy cannot hide a damaged file)
    #[arg(long)]
    with_cache: bool,
}

/// Validates the flags before the repository is opened, with restic's messages.
fn subset(a: &Args) -> anyhow::Result<Option<Subset>> {
    let s = a.read_data_subset.as_deref().filter(|s| !s.is_empty());
    if a.read_data && s.is_some() {
        anyhow::bail!("check flags --read-data and --read-data-subset cannot be used together");
    }
    s.map(|s| s.parse::<Subset>()).transpose()
}

/// Prints findings as they come in, from any thread.
struct Printer {
    verbose: bool,
    errors: AtomicBool,
    /// A progress line is on screen (cleared before anything else is printed).
    live: Mutex<bool>,
}

impl Printer {
    fn error(&self, p: &Problem) {
        self.errors.store(true, Ordering::Relaxed);
        self.clear_live();
        eprintln!("{p}");
    }

    fn clear_live(&self) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if *live {
            print!("\r\x1b[K");
            *live = false;
        }
    }

    fn verbose(&self, msg: &str) {
        if self.verbose {
            self.clear_live();
            println!("{msg}");
        }
    }

    fn finding(&self, f: Finding) {
        match f {
            Finding::Error(p) => self.error(&p),
            Finding::Hint(h) => {
                self.clear_live();
                println!("{h}");
            }
        }
    }

    fn progress(&self, start: Instant, done: u64, total: u64, what: &str) {
        use std::io::Write;
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let pct = if total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / total as f64
        };
        print!(
            "\r\x1b[K[{}] {pct:.2}%  {done} / {total} {what}",
            crate::output::duration(start.elapsed().as_secs_f64())
        );
        let _ = std::io::stdout().flush();
        *live = true;
    }
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let subset = subset(&a)?;
    // A check must see the repository, not cached copies of it (restic uses a temporary
    // cache; none is the same but cheaper).
    let uncached;
    let g = if a.with_cache {
        g
    } else {
        uncached = GlobalOptions {
            no_cache: true,
            ..g.clone()
        };
        &uncached
    };
    let p = Printer {
        verbose: !g.quiet,
        errors: AtomicBool::new(false),
        live: Mutex::new(false),
    };
    let live = !g.quiet && !g.json && std::io::stdout().is_terminal();

    // TODO(lock): non-exclusive. `open` takes a shared lock (skipped with --no-lock): a check
    // changes nothing. restic 0.14 takes an exclusive one here, later restic a shared one.
    let repo = match g.open() {
        Ok(r) => r,
        Err(e) => {
            // A damaged key file looks like a wrong password; say which file it is.
            if cairn_core::ErrorKind::of(&e) == cairn_core::ErrorKind::WrongPassword {
                if let Ok(backend) = g.backend() {
                    if let Ok(found) = checker::check_key_files(&*backend) {
                        for k in found {
                            p.error(&k);
                        }
                    }
                }
            }
            return Err(e);
        }
    };
    let opts = Options {
        stop: Some(&crate::signals::INTERRUPTED),
        ..Options::default()
    };

    p.verbose("load indexes");
    let (mut chk, found) = Checker::load_index(&repo, opts)?;
    let mut load_errors = false;
    let (mut rebuild, mut mixed) = (false, false);
    for f in found {
        match f {
            Finding::Error(e) => {
                load_errors = true;
                p.error(&e);
            }
            Finding::Hint(h) => {
                match h {
                    Hint::MixedPack { .. } => mixed = true,
                    _ => rebuild = true,
                }
                p.finding(Finding::Hint(h));
            }
        }
    }
    if rebuild {
        println!("This is non-critical, you can run `cairn rebuild-index' to correct this");
    }
    if mixed {
        println!(
            "Mixed packs with tree and data blobs are non-critical, you can run `cairn prune` to correct this."
        );
    }
    if load_errors {
        anyhow::bail!("LoadIndex returned errors");
    }
    // Problems with key files other than the one that opened the repository.
    for k in chk.check_key_files()? {
        p.error(&k);
    }

    p.verbose("check all packs");
    let mut orphans = 0;
    for f in chk.check_packs()? {
        match f {
            Finding::Hint(h @ Hint::UnreferencedPack { .. }) => {
                orphans += 1;
                p.verbose(&h.to_string());
            }
            other => p.finding(other),
        }
    }
    if orphans > 0 {
        p.verbose(&format!(
            "{orphans} additional files were found in the repo, which likely contain duplicate data.\nThis is non-critical, you can run `cairn prune` to correct this."
        ));
    }

    p.verbose("check snapshots, trees and blobs");
    let stats = chk.check_structure(&|f| p.finding(f))?;
    if live {
        p.clear_live();
    }
    if g.verbose > 0 {
        println!(
            "checked {} snapshots and {} trees",
            stats.snapshots, stats.trees
        );
    }

    if a.check_unused {
        let hints = chk.blob_hints();
        let (mut unused, mut dups) = (0, 0);
        for h in hints {
            match h {
                Hint::UnusedBlob { .. } => unused += 1,
                _ => dups += 1,
            }
            println!("{h}");
        }
        println!(
            "{unused} unused blobs, {dups} blobs stored more than once (non-critical, `cairn prune` removes them)"
        );
    }

    let selection = if a.read_data {
        p.verbose("read all data");
        Some(chk.select_packs(None)?)
    } else if let Some(s) = &subset {
        let sel = chk.select_packs(Some(s))?;
        match s {
            Subset::Bucket { n, t } => p.verbose(&format!(
                "read group #{n} of {} data packs (out of total {} packs in {t} groups)",
                sel.len(),
                sel.total_packs
            )),
            Subset::Percent(pct) => p.verbose(&format!("read {pct:.1}% of data packs")),
            Subset::Size(size) => p.verbose(&format!(
                "read {} bytes of data packs",
                (*size).min(sel.total_bytes)
            )),
        }
        Some(sel)
    } else {
        None
    };
    if let Some(sel) = selection {
        let start = Instant::now();
        if g.verbose > 1 {
            for id in chk.selected_ids(&sel) {
                println!("reading pack {id}");
            }
        }
        chk.read_packs(&sel, &|f| p.finding(f), &|done, total, _| {
            if live {
                p.progress(start, done, total, "packs");
            }
        })?;
        if live {
            p.clear_live();
        }
    }

    if p.errors.load(Ordering::Relaxed) {
        anyhow::bail!("repository contains errors");
    }
    p.verbose("no errors were found");
    Ok(crate::exit::OK)
}
