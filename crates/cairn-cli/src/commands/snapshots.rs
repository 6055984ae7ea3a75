use super::snapshot_ref;
use crate::global::GlobalOptions;
use cairn_core::format::snapshot::Snapshot;
use cairn_core::Id;

#[derive(clap::Args)]
pub struct Args {
    /// Only show these snapshots (ids or prefixes)
    ids: Vec<String>,
    #[command(flatten)]
    filter: snapshot_ref::Filter,
    /// Only show the last n snapshots for each host and path
    #[arg(long)]
    latest: Option<usize>,
    /// Group snapshots by host, paths and/or tags, separated by commas
    #[arg(short, long, default_value = "")]
    group_by: String,
}

/// restic's grouping key: the chosen fields, unset ones shown as null.
fn group_key(s: &Snapshot, by: &[&str]) -> serde_json::Value {
    let mut paths = s.paths.clone();
    paths.sort();
    let mut tags = s.tags.clone();
    tags.sort();
    // Go writes an empty (nil) list as null.
    let pick = |on: bool, v: serde_json::Value| {
        if on && v.as_array().is_none_or(|a| !a.is_empty()) {
            v
        } else {
            serde_json::Value::Null
        }
    };
    serde_json::json!({
        "hostname": pick(by.contains(&"host"), s.hostname.clone().into()),
        "paths": pick(by.contains(&"paths"), paths.into()),
        "tags": pick(by.contains(&"tags"), tags.into()),
    })
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let by: Vec<&str> = a.group_by.split(',').filter(|x| !x.is_empty()).collect();
    if let Some(bad) = by.iter().find(|x| !["host", "paths", "tags"].contains(x)) {
        anyhow::bail!("unknown grouping option {bad:?} (host, paths, tags)");
    }
    let repo = g.open()?;
    let mut snaps = repo.list_snapshots()?;
    snaps.retain(|(_, s)| a.filter.matches(s));
    if !a.ids.is_empty() {
        snaps.retain(|(id, _)| a.ids.iter().any(|p| id.to_hex().starts_with(p.as_str())));
    }
    if let Some(n) = a.latest {
        // Newest n per host and path set, kept in time order.
        let mut count: std::collections::HashMap<serde_json::Value, usize> = Default::default();
        let mut keep = vec![false; snaps.len()];
        for (i, (_, s)) in snaps.iter().enumerate().rev() {
            let c = count.entry(group_key(s, &["host", "paths"])).or_default();
            if *c < n {
                keep[i] = true;
                *c += 1;
            }
        }
        let mut it = keep.into_iter();
        snaps.retain(|_| it.next().unwrap_or(false));
    }
    let mut groups: Vec<(serde_json::Value, Vec<(Id, Snapshot)>)> = Vec::new();
    for (id, s) in snaps {
        let key = group_key(&s, &by);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push((id, s)),
            None => groups.push((key, vec![(id, s)])),
        }
    }
    // Groups in the order of their keys, as restic sorts them.
    groups.sort_by_cached_key(|(k, _)| k.to_string());
    if g.json {
        let list = |v: &[(Id, Snapshot)]| {
            serde_json::Value::Array(
                v.iter()
                    .map(|(id, s)| snapshot_ref::to_json(id, s))
                    .collect(),
            )
        };
        let out = if by.is_empty() {
            groups
                .first()
                .map(|(_, v)| list(v))
                .unwrap_or_else(|| serde_json::json!([]))
        } else {
            serde_json::Value::Array(
                groups
                    .iter()
                    .map(|(k, v)| serde_json::json!({"group_key": k, "snapshots": list(v)}))
                    .collect(),
            )
        };
        println!("{out}");
        return Ok(crate::exit::OK);
    }
    // Like restic, an empty listing prints nothing at all.
    for (key, snaps) in &groups {
        if !by.is_empty() {
            let mut parts = Vec::new();
            if let Some(h) = key["hostname"].as_str() {
                parts.push(format!("host [{h}]"));
            }
            // restic's order, and empty lists left out.
            for field in ["tags", "paths"] {
                if let Some(v) = key[field].as_array().filter(|v| !v.is_empty()) {
                    let items: Vec<&str> = v.iter().filter_map(|x| x.as_str()).collect();
                    parts.push(format!("{field} [{}]", items.join(", ")));
                }
            }
            println!("snapshots for ({}):", parts.join(", "));
        }
        print_table(snaps);
    }
    Ok(crate::exit::OK)
}

fn print_table(snaps: &[(Id, Snapshot)]) {
    let rows: Vec<[String; 5]> = snaps
        .iter()
        .map(|(id, s)| {
            [
                id.short(),
                snapshot_ref::table_time(s),
                s.hostname.clone(),
                s.tags.join(","),
                s.paths.join("\n"),
            ]
        })
        .collect();
    let head = ["ID", "Time", "Host", "Tags", "Paths"];
    let mut w = [0usize; 5];
    for (i, h) in head.iter().enumerate() {
        w[i] = rows
            .iter()
            .map(|r| r[i].lines().map(|l| l.chars().count()).max().unwrap_or(0))
            .max()
            .unwrap_or(0)
            .max(h.len());
    }
    // restic keeps the Host and Tags columns at least ten wide.
    w[2] = w[2].max(10);
    w[3] = w[3].max(10);
    let line = |cols: [&str; 5]| {
        let mut s = String::new();
        for (i, c) in cols.iter().enumerate() {
            if i == 4 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{:<width$}  ", c, width = w[i]));
            }
        }
        s.trim_end().to_string()
    };
    let header = line(head);
    let mut body = Vec::new();
    for r in &rows {
        let mut paths = r[4].lines();
        body.push(line([
            &r[0],
            &r[1],
            &r[2],
            &r[3],
            paths.next().unwrap_or(""),
        ]));
        body.extend(paths.map(|p| line(["", "", "", "", p])));
    }
    // The rule spans the widest line (columns padded as a whole, as restic's table does).
    let fixed: usize = w[..4].iter().map(|x| x + 2).sum();
    let rule = "-".repeat((fixed + w[4]).max(header.chars().count()));
    println!("{header}");
    println!("{rule}");
    for l in &body {
        println!("{l}");
    }
    println!("{rule}");
    println!("{} snapshots", rows.len());
}
