//! `migrate`: lists the migrations a repository can take, or applies them. The only one is
//! restic's `upgrade_repo_v2` (format version 1 → 2: compression becomes available), which
//! checks the repository first and then replaces the config file.

use crate::global::GlobalOptions;
use anyhow::Context;
use cairn_backend::Handle;
use cairn_core::checker::{self, Checker, Finding, Hint, Options};
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
        match upgrade_repo_v2(&repo) {
            Ok(()) => println!("migration {name}: success"),
            Err(e) => {
                eprintln!("migration {name} failed: {e:#}");
                first_err.get_or_insert(e);
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
    for k in checker::check_key_files(&**repo.backend())? {
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

/// Replaces the config with one of version 2 (same id and chunker polynomial). A copy of the
/// old file goes to a temporary folder first; if storing the new one fails, the old one is put
/// back (restic's `UpgradeRepoV2.Apply`).
fn upgrade_repo_v2(repo: &Repository) -> anyhow::Result<()> {
    let h = Handle::config();
    let old = repo
        .backend()
        .load(&h, 0, 0)
        .map_err(anyhow::Error::new)
        .context("load config file failed")?;
    let dir = std::env::temp_dir().join(format!(
        "cairn-migrate-upgrade-repo-v2-{}",
        cairn_core::Id::random().short()
    ));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("create temp dir {} failed", dir.display()))?;
    let backup = dir.join("config");
    std::fs::write(&backup, &old)
        .with_context(|| format!("write config file backup to {} failed", dir.display()))?;

    let mut cfg = repo.config().clone();
    cfg.version = 2;
    // The config file is never compressed, in either version.
    let sealed = repo.key().seal(&serde_json::to_vec(&cfg)?);
    if let Err(e) = repo.backend().save(&h, &sealed) {
        let upload = anyhow::Error::new(e);
        let _ = repo.backend().remove(&h);
        return Err(match repo.backend().save(&h, &old) {
            Ok(()) => upload.context(format!(
                "error uploading config, re-uploaded old config was successful, there is a backup of the config file in {}",
                backup.display()
            )),
            Err(e2) => upload.context(format!(
                "error uploading config, re-uploading old config failed as well ({e2}), but there is a backup of the config file in {}",
                backup.display()
            )),
        });
    }
    let _ = std::fs::remove_file(&backup);
    let _ = std::fs::remove_dir(&dir);
    Ok(())
}
