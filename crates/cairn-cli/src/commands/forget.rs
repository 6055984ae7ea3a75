//! `forget`: remove snapshots by a policy (restic 0.14's `--keep-*`) or by id. Only the
//! snapshot files go; `prune` removes the data nothing refers to any more.

use super::{snapshot_ref, snapshots};
use crate::global::GlobalOptions;
use anyhow::Context;
use cairn_core::forget::{self as policy, Duration, ExpirePolicy, GroupBy, TagList};
use cairn_core::format::snapshot::Snapshot;
use cairn_core::repository::Repository;
use cairn_core::snapshots::SnapshotFilter;
use cairn_core::Id;
use std::collections::BTreeSet;
use std::io::IsTerminal;

#[derive(clap::Args)]
pub struct Args {
    /// Snapshots to forget (ids, unique id prefixes or "latest"); the policy is then ignored
    #[arg(value_name = "snapshot ID")]
    ids: Vec<String>,
    /// Keep the last n snapshots
    #[arg(
        short = 'l',
        long,
        value_name = "n",
        default_value_t = 0,
        allow_negative_numbers = true,
        value_parser = parse_count
    )]
    keep_last: i64,
    /// Keep the last n hourly snapshots
    #[arg(
        short = 'H',
        long,
        value_name = "n",
        default_value_t = 0,
        allow_negative_numbers = true,
        value_parser = parse_count
    )]
    keep_hourly: i64,
    /// Keep the last n daily snapshots
    #[arg(
        short = 'd',
        long,
        value_name = "n",
        default_value_t = 0,
        allow_negative_numbers = true,
        value_parser = parse_count
    )]
    keep_daily: i64,
    /// Keep the last n weekly snapshots
    #[arg(
        short = 'w',
        long,
        value_name = "n",
        default_value_t = 0,
        allow_negative_numbers = true,
        value_parser = parse_count
    )]
    keep_weekly: i64,
    /// Keep the last n monthly snapshots
    #[arg(
        short = 'm',
        long,
        value_name = "n",
        default_value_t = 0,
        allow_negative_numbers = true,
        value_parser = parse_count
    )]
    keep_monthly: i64,
    /// Keep the last n yearly snapshots
    #[arg(
        short = 'y',
        long,
        value_name = "n",
        default_value_t = 0,
        allow_negative_numbers = true,
        value_parser = parse_count
    )]
    keep_yearly: i64,
    /// Keep snapshots that are newer than duration (eg. 1y5m7d2h) relative to the latest snapshot
    #[arg(long, value_name = "duration", value_parser = parse_duration, allow_hyphen_values = true)]
    keep_within: Option<Duration>,
    /// Keep hourly snapshots that are newer than duration (eg. 1y5m7d2h) relative to the latest snapshot
    #[arg(long, value_name = "duration", value_parser = parse_duration, allow_hyphen_values = true)]
    keep_within_hourly: Option<Duration>,
    /// Keep daily snapshots that are newer than duration (eg. 1y5m7d2h) relative to the latest snapshot
    #[arg(long, value_name = "duration", value_parser = parse_duration, allow_hyphen_values = true)]
    keep_within_daily: Option<Duration>,
    /// Keep weekly snapshots that are newer than duration (eg. 1y5m7d2h) relative to the latest snapshot
    #[arg(long, value_name = "duration", value_parser = parse_duration, allow_hyphen_values = true)]
    keep_within_weekly: Option<Duration>,
    /// Keep monthly snapshots that are newer than duration (eg. 1y5m7d2h) relative to the latest snapshot
    #[arg(long, value_name = "duration", value_parser = parse_duration, allow_hyphen_values = true)]
    keep_within_monthly: Option<Duration>,
    /// Keep yearly snapshots that are newer than duration (eg. 1y5m7d2h) relative to the latest snapshot
    #[arg(long, value_name = "duration", value_parser = parse_duration, allow_hyphen_values = true)]
    keep_within_yearly: Option<Duration>,
    /// Keep snapshots with this taglist (can be specified multiple times)
    #[arg(long, value_name = "taglist")]
    keep_tag: Vec<String>,
    /// Only consider snapshots with the given host (can be specified multiple times)
    #[arg(long = "host", alias = "hostname", value_name = "host")]
    hosts: Vec<String>,
    /// Only consider snapshots which include this taglist in the format `tag[,tag,...]` (can be specified multiple times)
    #[arg(long = "tag", value_name = "taglist")]
    tags: Vec<String>,
    /// Only consider snapshots which include this (absolute) path (can be specified multiple times)
    #[arg(long = "path", value_name = "path")]
    paths: Vec<String>,
    /// Use compact output format
    #[arg(short, long)]
    compact: bool,
    /// Group snapshots by host, paths and/or tags, separated by comma (disable grouping with '')
    #[arg(short, long, value_name = "group", default_value = "host,paths")]
    group_by: String,
    /// Allow deleting all snapshots of a snapshot group
    #[arg(long)]
    unsafe_allow_remove_all: bool,
    /// Do not delete anything, just print what would be done
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Automatically run the 'prune' command if snapshots have been removed
    #[arg(long)]
    prune: bool,
    /// Tolerate given limit of unused data (for --prune)
    #[arg(long, value_name = "limit")]
    max_unused: Option<String>,
    /// Maximum size to repack (for --prune)
    #[arg(long, value_name = "size")]
    max_repack_size: Option<String>,
    /// Only repack packs which are cacheable (for --prune)
    #[arg(long)]
    repack_cacheable_only: bool,
    /// Repack pack files below 80% of target pack size (for --prune)
    #[arg(long)]
    repack_small: bool,
    /// Repack all uncompressed data (for --prune)
    #[arg(long)]
    repack_uncompressed: bool,
    /// Pack below-limit packfiles (allowed suffixes: k/K, m/M)
    #[arg(long, value_name = "below-limit")]
    repack_smaller_than: Option<String>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    Duration::parse(s)
}

/// A `--keep-*` count: a number or `unlimited` (restic 0.18), kept here as -1. Negative
/// numbers are refused with restic 0.18's words (restic 0.14 took them as "keep nothing" and
/// forgot every snapshot).
fn parse_count(s: &str) -> Result<i64, String> {
    if s == "unlimited" {
        return Ok(UNLIMITED);
    }
    let n: i64 = s.parse().map_err(|_| format!("invalid count {s:?}"))?;
    if n < 0 {
        return Err("negative values not allowed, use 'unlimited' instead".into());
    }
    Ok(n)
}

const UNLIMITED: i64 = -1;

/// The policy from the flags. Negative values are refused: restic 0.14 takes a negative
/// count as "a policy that keeps nothing" and forgets every snapshot of the group (a bug
/// fixed in restic 0.16, which refuses them too).
fn policy(a: &Args) -> anyhow::Result<ExpirePolicy> {
    let count = |n: i64, flag: &str| -> anyhow::Result<u32> {
        if n == UNLIMITED {
            return Ok(u32::MAX);
        }
        u32::try_from(n).with_context(|| format!("--{flag} {n}: too large"))
    };
    let within = |d: Option<Duration>, flag: &str| -> anyhow::Result<Duration> {
        let d = d.unwrap_or_default();
        if d.is_negative() {
            anyhow::bail!("--{flag} {d}: durations with negative values are not allowed");
        }
        Ok(d)
    };
    Ok(ExpirePolicy {
        last: count(a.keep_last, "keep-last")?,
        hourly: count(a.keep_hourly, "keep-hourly")?,
        daily: count(a.keep_daily, "keep-daily")?,
        weekly: count(a.keep_weekly, "keep-weekly")?,
        monthly: count(a.keep_monthly, "keep-monthly")?,
        yearly: count(a.keep_yearly, "keep-yearly")?,
        within: within(a.keep_within, "keep-within")?,
        within_hourly: within(a.keep_within_hourly, "keep-within-hourly")?,
        within_daily: within(a.keep_within_daily, "keep-within-daily")?,
        within_weekly: within(a.keep_within_weekly, "keep-within-weekly")?,
        within_monthly: within(a.keep_within_monthly, "keep-within-monthly")?,
        within_yearly: within(a.keep_within_yearly, "keep-within-yearly")?,
        tags: a.keep_tag.iter().map(|t| TagList::parse(t)).collect(),
    })
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let policy = policy(&a)?;
    // Checked before anything is removed: a bad --max-unused must not leave half the work done.
    let prune_opts = super::prune::Tuning {
        max_unused: a.max_unused.clone().unwrap_or_else(|| "5%".into()),
        max_repack_size: a.max_repack_size.clone(),
        repack_cacheable_only: a.repack_cacheable_only,
        repack_small: a.repack_small,
        repack_uncompressed: a.repack_uncompressed,
        repack_smaller_than: a.repack_smaller_than.clone(),
    }
    .options(g)?;
    if g.no_lock && !a.dry_run {
        anyhow::bail!(
            "--no-lock is only applicable in combination with --dry-run for forget command"
        );
    }
    // As restic: exclusive, except a dry run with --no-lock, which takes no lock at all.
    let repo = if a.dry_run && g.no_lock {
        g.open_unlocked()?
    } else {
        g.open_exclusive()?
    };

    let filter = SnapshotFilter {
        hosts: a.hosts.clone(),
        paths: a.paths.clone(),
        tags: a.tags.clone(),
    };
    if a.unsafe_allow_remove_all && filter.is_empty() {
        anyhow::bail!(
            "--unsafe-allow-remove-all is not allowed unless a snapshot filter option is specified"
        );
    }
    let mut remove: BTreeSet<Id> = BTreeSet::new();
    let mut json_groups = Vec::new();
    if !a.ids.is_empty() {
        // Explicit snapshots go, whatever the policy says.
        for (id, _) in filter.select(&repo, &a.ids, &crate::printer::SELECTION)? {
            remove.insert(id);
        }
    } else {
        // As in restic, --group-by only matters (and is only checked) without explicit ids.
        let group_by = GroupBy::parse(&a.group_by).map_err(anyhow::Error::msg)?;
        let snaps = filter.select(&repo, &[], &crate::printer::SELECTION)?;
        if policy.is_empty() && !a.unsafe_allow_remove_all {
            // restic 0.18 makes this an error (0.14 printed it and succeeded).
            anyhow::bail!("no policy was specified, no snapshots will be removed");
        }
        {
            if !g.json && !g.quiet && !policy.is_empty() {
                println!("Applying Policy: {policy}");
            }
            for (key, group) in policy::group_snapshots(snaps, group_by) {
                if g.verbose >= 1 && !g.json {
                    print!("{}", group_header(&key));
                }
                let applied = if policy.is_empty() {
                    // Only with --unsafe-allow-remove-all and a filter (checked above):
                    // everything the filter chose goes, as in restic 0.18.
                    policy::Applied {
                        remove: group,
                        ..Default::default()
                    }
                } else {
                    policy::apply_policy(group, &policy)
                };
                // restic 0.18's safe-forget rule: a policy never empties a group, unless the
                // user says so (and named which snapshots with a filter).
                if applied.keep.is_empty() && !a.unsafe_allow_remove_all {
                    anyhow::bail!(
                        "refusing to delete last snapshot of snapshot group \"{}\"",
                        group_name(&key)
                    );
                }
                if !g.json && !g.quiet {
                    if !applied.keep.is_empty() {
                        println!("keep {} snapshots:", applied.keep.len());
                        let reasons: Vec<Vec<String>> =
                            applied.reasons.iter().map(|r| r.matches.clone()).collect();
                        snapshots::print_table(&applied.keep, Some(&reasons), a.compact);
                        println!();
                    }
                    if !applied.remove.is_empty() {
                        println!("remove {} snapshots:", applied.remove.len());
                        snapshots::print_table(&applied.remove, None, a.compact);
                        println!();
                    }
                }
                remove.extend(applied.remove.iter().map(|(id, _)| *id));
                json_groups.push(group_json(&key, &applied));
            }
        }
    }

    if !remove.is_empty() {
        if a.dry_run {
            if !g.json {
                let short: Vec<String> = remove.iter().map(Id::short).collect();
                println!(
                    "Would have removed the following snapshots:\n{{{}}}\n",
                    short.join(" ")
                );
            }
        } else {
            delete(&repo, &remove, g)?;
        }
    }
    if g.json && !json_groups.is_empty() {
        println!("{}", serde_json::Value::Array(json_groups));
    }
    if a.prune && !a.dry_run && !remove.is_empty() {
        if !g.json && !g.quiet {
            println!(
                "{} snapshots have been removed, running prune",
                remove.len()
            );
        }
        super::prune::prune(repo, &prune_opts, false, g)?;
    }
    Ok(crate::exit::OK)
}

/// A group as restic 0.18 names it in its refusal: "host vm, path [/tmp/x]".
fn group_name(key: &policy::GroupKey) -> String {
    let mut parts = Vec::new();
    if !key.hostname.is_empty() {
        parts.push(format!("host {}", key.hostname));
    }
    if let Some(p) = &key.paths {
        parts.push(format!("path [{}]", p.join(" ")));
    }
    if let Some(t) = &key.tags {
        parts.push(format!("tags [{}]", t.join(" ")));
    }
    parts.join(", ")
}

/// restic's "snapshots for (host [h], tags [a, b], paths [/x]):" line (nothing without
/// grouping).
fn group_header(key: &policy::GroupKey) -> String {
    let mut parts = Vec::new();
    if !key.hostname.is_empty() {
        parts.push(format!("host [{}]", key.hostname));
    }
    if let Some(t) = &key.tags {
        parts.push(format!("tags [{}]", t.join(", ")));
    }
    if let Some(p) = &key.paths {
        parts.push(format!("paths [{}]", p.join(", ")));
    }
    if parts.is_empty() {
        return String::new();
    }
    format!("snapshots for ({}):\n", parts.join(", "))
}

/// One group as restic's `forget --json` writes it.
fn group_json(key: &policy::GroupKey, applied: &policy::Applied) -> serde_json::Value {
    // Go writes an empty (nil) list as null.
    let list = |v: &[(Id, Snapshot)]| {
        if v.is_empty() {
            serde_json::Value::Null
        } else {
            v.iter()
                .map(|(id, s)| snapshot_ref::to_json(id, s))
                .collect()
        }
    };
    let reasons = if applied.reasons.is_empty() {
        serde_json::Value::Null
    } else {
        applied
            .reasons
            .iter()
            .zip(&applied.keep)
            .map(|(r, (_, s))| {
                serde_json::json!({
                    "snapshot": serde_json::to_value(s).unwrap_or_default(),
                    "matches": r.matches,
                    "counters": serde_json::to_value(&r.counters).unwrap_or_default(),
                })
            })
            .collect()
    };
    serde_json::json!({
        "tags": key.tags,
        "host": key.hostname,
        "paths": key.paths,
        "keep": list(&applied.keep),
        "remove": list(&applied.remove),
        "reasons": reasons,
    })
}

/// Removes the snapshot files, stopping at the first failure, with restic's progress line.
fn delete(repo: &Repository, ids: &BTreeSet<Id>, g: &GlobalOptions) -> anyhow::Result<()> {
    let start = std::time::Instant::now();
    let mut done = 0usize;
    for id in ids {
        // restic names a file by the first ten characters of its name in these messages.
        let name: String = id.to_hex().chars().take(10).collect();
        if let Err(e) = cairn_core::snapshots::remove(repo, id) {
            if !g.json {
                eprintln!("unable to remove <snapshot/{name}> from the repository");
            }
            return Err(e.into());
        }
        if !g.json && g.verbose >= 2 {
            println!("removed <snapshot/{name}>");
        }
        done += 1;
    }
    if !g.json && !g.quiet {
        let status = format!(
            "[{}] 100.00%  {done} / {done} files deleted",
            crate::output::duration(start.elapsed().as_secs_f64())
        );
        // restic ends the bar with its own newline: a blank line when stdout is no terminal.
        if std::io::stdout().is_terminal() {
            println!("{status}");
        } else {
            println!("{status}\n");
        }
    }
    Ok(())
}
