//! A whole `check`, phase after phase, with every finding told to an [`Observer`] as it is
//! found ([`CheckEvent`]) and restic 0.18's summary counted on the way: a front end only
//! prints events and, for `--json`, the [`Summary`].

use super::{Checker, Finding, Hint, Options, Problem, Subset};
use crate::observe::{CheckEvent, Event, Observer};
use crate::repository::Repository;
use crate::Id;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Instant;

/// Which optional phases to run.
#[derive(Clone, Copy, Default)]
pub struct Plan<'a> {
    /// Read packs: `Some(None)` all of them (`--read-data`), `Some(Some(s))` a subset.
    pub read: Option<Option<&'a Subset>>,
    /// List unused and duplicate blobs (as hints).
    pub check_unused: bool,
}

/// restic 0.18's `check --json` summary: errors counted, packs to salvage, and what to run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub num_errors: u64,
    /// Packs whose content is damaged (`repair packs` salvages what is left of them).
    pub broken_packs: BTreeSet<Id>,
    pub suggest_repair_index: bool,
    pub suggest_prune: bool,
}

impl Summary {
    fn problem(&mut self, p: &Problem, reading: bool) {
        self.num_errors += 1;
        // As restic 0.18 counts them: a pack of the wrong size, or one whose content is
        // damaged when read.
        let broken = match p {
            Problem::PackSize { pack, .. } | Problem::PackTruncated { pack, .. } => Some(pack),
            Problem::PackHash { pack, .. }
            | Problem::PackHeader { pack, .. }
            | Problem::BlobDamaged { pack, .. }
            | Problem::BlobNotIndexed { pack, .. }
            | Problem::BlobNotInPack { pack, .. }
                if reading =>
            {
                Some(pack)
            }
            _ => None,
        };
        if let Some(p) = broken {
            self.broken_packs.insert(*p);
        }
    }
}

/// Runs the check; `summary` holds what was found even when the check ends in an error
/// (which is "repository contains errors" when it found any).
pub fn run(
    repo: &Repository,
    opts: Options<'_>,
    plan: Plan<'_>,
    obs: &dyn Observer,
    summary: &mut Summary,
) -> crate::Result<()> {
    let s = Mutex::new(std::mem::take(summary));
    let r = phases(repo, opts, plan, obs, &s);
    *summary = s.into_inner().unwrap_or_else(|e| e.into_inner());
    r?;
    if summary.num_errors > 0 {
        crate::error::bail!("repository contains errors");
    }
    obs.info("no errors were found");
    Ok(())
}

/// Ends a phase's progress line (a progress event with nothing to count).
fn end_progress(obs: &dyn Observer) {
    tell(
        obs,
        CheckEvent::Progress {
            done: 0,
            total: 0,
            start: None,
        },
    );
}

fn tell(obs: &dyn Observer, e: CheckEvent<'_>) {
    obs.event(Event::Check(e));
}

fn phases(
    repo: &Repository,
    opts: Options<'_>,
    plan: Plan<'_>,
    obs: &dyn Observer,
    s: &Mutex<Summary>,
) -> anyhow::Result<()> {
    let lock = || s.lock().unwrap_or_else(|e| e.into_inner());
    let problem = |p: &Problem, reading: bool| {
        lock().problem(p, reading);
        tell(obs, CheckEvent::Problem(p));
    };

    obs.info("load indexes");
    let (mut chk, found) = Checker::load_index(repo, opts)?;
    let mut load_errors = false;
    let (mut rebuild, mut mixed) = (false, false);
    for f in &found {
        match f {
            Finding::Error(e) => {
                load_errors = true;
                problem(e, false);
            }
            Finding::Hint(h) => {
                match h {
                    Hint::MixedPack { .. } => mixed = true,
                    _ => rebuild = true,
                }
                tell(obs, CheckEvent::Hint(h));
            }
        }
    }
    {
        let mut sum = lock();
        sum.suggest_repair_index |= rebuild || load_errors;
        sum.suggest_prune |= mixed;
    }
    if rebuild {
        tell(
            obs,
            CheckEvent::Note(
                "This is non-critical, you can run `cairn rebuild-index' to correct this",
            ),
        );
    }
    if mixed {
        tell(
            obs,
            CheckEvent::Note(
                "Mixed packs with tree and data blobs are non-critical, you can run `cairn prune` to correct this.",
            ),
        );
    }
    if load_errors {
        anyhow::bail!("LoadIndex returned errors");
    }
    // Problems with key files other than the one that opened the repository.
    for k in chk.check_key_files()? {
        problem(&k, false);
    }

    obs.info("check all packs");
    let mut orphans = 0;
    for f in chk.check_packs()? {
        match &f {
            Finding::Hint(h @ Hint::UnreferencedPack { .. }) => {
                orphans += 1;
                tell(obs, CheckEvent::Hint(h));
            }
            Finding::Hint(h) => tell(obs, CheckEvent::Hint(h)),
            Finding::Error(p) => problem(p, false),
        }
    }
    if orphans > 0 {
        lock().suggest_prune = true;
        obs.info(&format!(
            "{orphans} additional files were found in the repo, which likely contain duplicate data.\nThis is non-critical, you can run `cairn prune` to correct this."
        ));
    }

    obs.info("check snapshots, trees and blobs");
    let stats = chk.check_structure(&|f| match &f {
        Finding::Error(p) => problem(p, false),
        Finding::Hint(h) => tell(obs, CheckEvent::Hint(h)),
    })?;
    end_progress(obs);
    obs.verbose(&format!(
        "checked {} snapshots and {} trees",
        stats.snapshots, stats.trees
    ));

    if plan.check_unused {
        let hints = chk.blob_hints();
        let (mut unused, mut dups) = (0, 0);
        for h in &hints {
            match h {
                Hint::UnusedBlob { .. } => unused += 1,
                _ => dups += 1,
            }
            tell(obs, CheckEvent::Hint(h));
        }
        let note = format!(
            "{unused} unused blobs, {dups} blobs stored more than once (non-critical, `cairn prune` removes them)"
        );
        tell(obs, CheckEvent::Note(&note));
    }

    let Some(subset) = plan.read else {
        return Ok(());
    };
    let sel = chk.select_packs(subset)?;
    match subset {
        None => obs.info("read all data"),
        Some(Subset::Bucket { n, t }) => obs.info(&format!(
            "read group #{n} of {} data packs (out of total {} packs in {t} groups)",
            sel.len(),
            sel.total_packs
        )),
        Some(Subset::Percent(pct)) => obs.info(&format!("read {pct:.1}% of data packs")),
        Some(Subset::Size(size)) => obs.info(&format!(
            "read {} bytes of data packs",
            (*size).min(sel.total_bytes)
        )),
    }
    for id in chk.selected_ids(&sel) {
        tell(obs, CheckEvent::ReadingPack(&id));
    }
    let start = Instant::now();
    chk.read_packs(
        &sel,
        &|f| match &f {
            Finding::Error(p) => problem(p, true),
            Finding::Hint(h) => tell(obs, CheckEvent::Hint(h)),
        },
        &|done, total, _| {
            tell(
                obs,
                CheckEvent::Progress {
                    done,
                    total,
                    start: Some(start),
                },
            )
        },
    )?;
    end_progress(obs);
    Ok(())
}
