//! `check`: tests the repository for errors, as `restic check` does. The check is the core's
//! ([`cairn_core::checker::run`]); its findings arrive as events that the text printer prints
//! as restic 0.14 does (errors on stderr, one line each, naming the damaged object; hints and
//! progress on stdout) and the JSON printer as restic 0.18's `error` messages, followed by
//! 0.18's `summary`. Any error makes the command end with `Fatal: repository contains
//! errors` (exit 1).

use crate::global::GlobalOptions;
use crate::printer::{self, During};
use cairn_core::checker::run::{Plan, Summary};
use cairn_core::checker::{self, Options, Subset};
use cairn_core::observe::{CheckEvent, Event, Observer};
use std::io::IsTerminal;

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

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let mut summary = Summary::default();
    let r = check(&a, g, &mut summary);
    // restic 0.18 prints the summary whatever happened; a failure it did not count is one.
    if g.json {
        if r.is_err() && summary.num_errors == 0 {
            summary.num_errors = 1;
        }
        let broken: Vec<String> = summary.broken_packs.iter().map(|p| p.to_hex()).collect();
        let m = serde_json::json!({
            "message_type": "summary",
            "num_errors": summary.num_errors,
            "broken_packs": if broken.is_empty() { serde_json::Value::Null } else { broken.into() },
            "suggest_repair_index": summary.suggest_repair_index,
            "suggest_prune": summary.suggest_prune,
        });
        println!("{m}");
    }
    r
}

fn check(a: &Args, g: &GlobalOptions, summary: &mut Summary) -> anyhow::Result<i32> {
    let subset = subset(a)?;
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
    let live = !g.quiet && !g.json && std::io::stdout().is_terminal();
    let p = printer::printer(g, During::Check, live);

    // TODO(lock): non-exclusive. `open` takes a shared lock (skipped with --no-lock): a check
    // changes nothing. restic 0.14 takes an exclusive one here, later restic a shared one.
    let repo = match g.open() {
        Ok(r) => r,
        Err(e) => {
            // A damaged key file looks like a wrong password; say which file it is.
            if cairn_core::ErrorKind::of(&e) == cairn_core::ErrorKind::WrongPassword {
                if let Ok(backend) = g.backend() {
                    if let Ok(found) = checker::check_key_files(&*backend) {
                        for k in &found {
                            summary.num_errors += 1;
                            p.event(Event::Check(CheckEvent::Problem(k)));
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
    let plan = Plan {
        read: if a.read_data {
            Some(None)
        } else {
            subset.as_ref().map(Some)
        },
        check_unused: a.check_unused,
    };
    checker::run::run(&repo, opts, plan, &p, summary)?;
    Ok(crate::exit::OK)
}
