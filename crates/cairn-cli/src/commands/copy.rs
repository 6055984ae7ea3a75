//! `copy`: snapshots from another repository (`--from-repo`) into this one, skipping those
//! already copied and blobs already stored. Also the source-repository options that `init
//! --copy-chunker-params` shares.

use super::snapshot_ref;
use crate::global::{self, GlobalOptions, LockMode};
use crate::printer::{printer, During};
use anyhow::Context;
use cairn_core::copy::{save_copied_snapshot, similar_snapshots, Copier};
use cairn_core::format::gotime::go_string;
use cairn_core::format::snapshot::Snapshot;
use cairn_core::observe::check_cancel;
use cairn_core::observe::Observer;
use cairn_core::repository::Repository;
use cairn_core::Id;
use std::collections::HashMap;
use std::path::PathBuf;

/// The other repository (restic's `secondaryRepoOptions`, `--from-*` group).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct FromRepo {
    /// Source repository to copy snapshots from
    #[arg(
        id = "from_repo",
        long = "from-repo",
        env = "RESTIC_FROM_REPOSITORY",
        value_name = "repository"
    )]
    pub repo: Option<String>,
    /// File from which to read the source repository location
    #[arg(
        id = "from_repository_file",
        long = "from-repository-file",
        env = "RESTIC_FROM_REPOSITORY_FILE",
        value_name = "file"
    )]
    pub repository_file: Option<PathBuf>,
    /// File to read the source repository password from
    #[arg(
        id = "from_password_file",
        long = "from-password-file",
        env = "RESTIC_FROM_PASSWORD_FILE",
        value_name = "file"
    )]
    pub password_file: Option<PathBuf>,
    /// Key ID of key to try decrypting the source repository first
    #[arg(
        id = "from_key_hint",
        long = "from-key-hint",
        env = "RESTIC_FROM_KEY_HINT",
        value_name = "string"
    )]
    pub key_hint: Option<String>,
    /// Shell command to obtain the source repository password from
    #[arg(
        id = "from_password_command",
        long = "from-password-command",
        env = "RESTIC_FROM_PASSWORD_COMMAND",
        value_name = "command"
    )]
    pub password_command: Option<String>,
    /// Use an empty password for the source repository (insecure)
    #[arg(id = "from_insecure_no_password", long = "from-insecure-no-password")]
    pub insecure_no_password: bool,
}

fn nonempty<T: AsRef<std::ffi::OsStr>>(v: &Option<T>) -> Option<&T> {
    v.as_ref().filter(|s| !s.as_ref().is_empty())
}

impl FromRepo {
    /// Is a source repository named at all?
    pub fn is_set(&self) -> bool {
        nonempty(&self.repo).is_some() || nonempty(&self.repository_file).is_some()
    }

    pub fn location(&self) -> anyhow::Result<String> {
        match (nonempty(&self.repo), nonempty(&self.repository_file)) {
            (Some(_), Some(_)) => anyhow::bail!(
                "Options --from-repo and --from-repository-file are mutually exclusive, please specify only one"
            ),
            (Some(r), None) => Ok(r.clone()),
            (None, Some(f)) => {
                let s = std::fs::read_to_string(f)
                    .with_context(|| format!("reading repository file {}", f.display()))?;
                let s = s.trim().to_string();
                if s.is_empty() {
                    anyhow::bail!("repository file {} is empty", f.display());
                }
                Ok(s)
            }
            (None, None) => anyhow::bail!(
                "Please specify a source repository location (--from-repo or --from-repository-file)"
            ),
        }
    }

    /// The password, in restic's order: command, file, `$RESTIC_FROM_PASSWORD`, a prompt.
    pub fn password(&self, prompt: &str) -> anyhow::Result<Vec<u8>> {
        let file = nonempty(&self.password_file);
        let cmd = nonempty(&self.password_command);
        if self.insecure_no_password {
            if file.is_some()
                || cmd.is_some()
                || std::env::var_os("RESTIC_FROM_PASSWORD").is_some_and(|p| !p.is_empty())
            {
                anyhow::bail!("--from-insecure-no-password must not be specified together with providing a password via a cli option or environment variable");
            }
            return Ok(Vec::new());
        }
        if file.is_some() && cmd.is_some() {
            anyhow::bail!("Password file and command are mutually exclusive options");
        }
        if let Some(cmd) = cmd {
            return global::run_password_command(cmd);
        }
        if let Some(f) = file {
            let s = std::fs::read(f)
                .with_context(|| format!("reading password file {}", f.display()))?;
            return Ok(global::first_line(&s));
        }
        let pw = match std::env::var_os("RESTIC_FROM_PASSWORD") {
            Some(pw) => {
                use std::os::unix::ffi::OsStringExt;
                pw.into_vec()
            }
            None => global::read_password(prompt)?,
        };
        if pw.is_empty() {
            anyhow::bail!(global::EMPTY_PASSWORD);
        }
        Ok(pw)
    }

    /// Opens the other repository (`what` names it in the password prompt), without a lock.
    pub fn open(&self, what: &str, g: &GlobalOptions) -> anyhow::Result<Repository> {
        let loc = self.location()?;
        let backend = global::open_backend(&loc, &[], g.http()?)?;
        if !backend.exists().map_err(anyhow::Error::new)? {
            return Err(cairn_core::Error::NoRepository {
                location: backend.location(),
            }
            .into());
        }
        let pw = self.password(&format!("enter password for {what} repository: "))?;
        Repository::open(backend, &pw, nonempty(&self.key_hint).map(|s| s.as_str()))
            .with_context(|| format!("{what} repository {loc}"))
    }
}

#[derive(clap::Args)]
#[command(mut_args(snapshot_ref::help_without_ids))]
pub struct Args {
    /// Snapshots to copy (default: all that match the filters)
    #[arg(value_name = "snapshotID")]
    ids: Vec<String>,
    #[command(flatten)]
    from: FromRepo,
    #[command(flatten)]
    filter: snapshot_ref::Filter,
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    if !a.from.is_set() {
        anyhow::bail!(
            "Please specify a source repository location (--from-repo or --from-repository-file)"
        );
    }
    let src = a.from.open("source", g)?;
    let dst = g.open_unlocked()?;
    // The source is only read (no lock with --no-lock); the destination is always locked,
    // shared, as a backup locks it.
    let _src_lock = g.lock(&src, LockMode::Shared)?;
    let mut locking = g.clone();
    locking.no_lock = false;
    let _dst_lock = locking.lock(&dst, LockMode::Shared)?;

    let p = printer(g, During::Maintenance, false);
    let src = src
        .load_index()
        .context("loading the source repository's index")?;
    let mut dst = dst
        .load_index()
        .context("loading the destination repository's index")?;
    // Packs a killed earlier copy (or backup) stored but never indexed: index them, so that
    // nothing it uploaded is uploaded again.
    let opts = cairn_core::adopt::AdoptOptions::for_repo(&dst);
    cairn_core::adopt::adopt_orphan_packs(&mut dst, &opts, &p)
        .context("adopting the packs of an interrupted run")?;

    // Snapshots already in the destination, by the id of the snapshot they were copied from
    // (and by their own id, for identical copies).
    let mut by_original: HashMap<Id, Vec<(Id, Snapshot)>> = HashMap::new();
    for s in a.filter.core().select_lenient(&dst, &[], &p)? {
        let Ok(snap) = s.snap else { continue };
        if let Some(o) = snap.original.filter(|o| !o.is_zero()) {
            by_original.entry(o).or_default().push((s.id, snap.clone()));
        }
        by_original.entry(s.id).or_default().push((s.id, snap));
    }

    let selected = a.filter.core().select_lenient(&src, &a.ids, &p)?;
    let mut copier = Copier::new(&src, &dst, g.compression()?);
    for s in selected {
        check_cancel(&p)?;
        let snap = match s.snap {
            Ok(snap) => snap,
            Err(e) => {
                p.warn(&format!(
                    "Ignoring {:?}, could not load snapshot: {e:#}",
                    s.id.to_hex()
                ));
                continue;
            }
        };
        p.info(&format!(
            "\nsnapshot {} of [{}] at {})",
            s.id.short(),
            snap.paths.join(" "),
            go_string(&snap.time)
        ));
        let original = snap.original.unwrap_or(s.id);
        if let Some(copy) = by_original
            .get(&original)
            .and_then(|v| v.iter().find(|(_, d)| similar_snapshots(d, &snap)))
        {
            p.info(&format!(
                "skipping source snapshot {}, was already copied to snapshot {}",
                s.id.short(),
                copy.0.short()
            ));
            continue;
        }
        p.info("  copy started, this may take a while...");
        let stats = copier.copy_tree(snap.tree, &p)?;
        p.verbose(&format!(
            "  copied {} trees and {} data blobs ({})",
            stats.trees,
            stats.data_blobs,
            crate::output::bytes(stats.bytes)
        ));
        // Everything the snapshot names is stored and indexed before the snapshot is.
        copier.checkpoint()?;
        let new_id = save_copied_snapshot(&dst, s.id, &snap)?;
        p.info(&format!("snapshot {} saved", new_id.short()));
    }
    copier.finish()?;
    Ok(crate::exit::OK)
}
