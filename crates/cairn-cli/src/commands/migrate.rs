//! `migrate`: lists the migrations a repository can take, or applies them. The only one is
//! restic's `upgrade_repo_v2` (format version 1 → 2: compression becomes available), which
//! checks the repository first and then replaces the config file.

use crate::global::GlobalOptions;
use cairn_core::checker::{Checker, Finding, Hint, Options};
use cairn_core::repository::Repository;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(clap::Args)]
pub struct Args {
    /// Migrations to apply (none: list the available ones)
    #[arg(value_name = "migration name")]
    names: Vec<String>,
    /// Apply a migration a second time
    #[arg(short, long)]
    force: bool,
}

const UPGRADE_V2: &str = "upgrade_repo_v2";

/// Can `upgrade_repo_v2` be applied, and if not, why?
fn upgrade_check(repo: &Repository) -> Result<(), String> {
    match repo.version() {
        1 => Ok(()),
        v => Err(format!("repository is already upgraded to version {v}")),
    }
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let repo = g.open_exclusive()?;
    if a.names.is_empty() {
        println!("available migrations:");
        if upgrade_check(&repo).is_ok() {
            println!("  {UPGRADE_V2}\tupgrade a repository to version 2");
        } else {
            println!("no migrations found");
        }
        return Ok(crate::exit::OK);
    }
    let mut first_err: Option<anyhow::Error> = None;
    for name in &a.names {
        if name != UPGRADE_V2 {
            eprintln!("unknown migration {name}");
            continue;
        }
        if let Err(reason) = upgrade_check(&repo) {
            if !a.force {
                eprintln!(
                    "migration {name} cannot be applied: {reason}\nIf you want to apply this migration anyway, re-run with option --force"
                );
                continue;
            }
            eprintln!("check for migration {name} failed, continuing anyway");
        }
        println!("checking repository integrity...");
        check(&repo, g)?;
        println!("applying migration {name}...");
        match cairn_core::migrate::upgrade_repo_v2(&repo) {
            Ok(()) => println!("migration {name}: success"),
            Err(e) => {
                eprintln!("migration {name} failed: {e:#}");
                first_err.get_or_insert(anyhow::Error::from(e));
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(crate::exit::OK),
    }
}

/// restic's default `check` (no data read), which the migration needs to pass: index, packs,
/// snapshots, trees and blobs.
fn check(repo: &Repository, g: &GlobalOptions) -> anyhow::Result<()> {
    let errors = AtomicBool::new(false);
    let show = |f: Finding| match f {
        Finding::Error(p) => {
            errors.store(true, Ordering::Relaxed);
            eprintln!("{p}");
        }
        // Packs no index names are harmless here, as in restic's check.
        Finding::Hint(Hint::UnreferencedPack { .. }) => {}
        Finding::Hint(h) => println!("{h}"),
    };
    let say = |m: &str| {
        if !g.quiet {
            println!("{m}");
        }
    };
    let opts = Options {
        stop: Some(&crate::signals::INTERRUPTED),
        ..Options::default()
    };
    say("load indexes");
    let (mut chk, found) = Checker::load_index(repo, opts)?;
    for f in found {
        show(f);
    }
    if errors.load(Ordering::Relaxed) {
        anyhow::bail!("LoadIndex returned errors");
    }
    for k in chk.check_key_files()? {
        show(Finding::Error(k));
    }
    say("check all packs");
    for f in chk.check_packs()? {
        show(f);
    }
    say("check snapshots, trees and blobs");
    chk.check_structure(&show)?;
    if errors.load(Ordering::Relaxed) {
        anyhow::bail!("repository contains errors");
    }
    say("no errors were found");
    Ok(())
}
