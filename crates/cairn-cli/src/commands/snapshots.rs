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
        print_table(snaps, None, false);
    }
    Ok(crate::exit::OK)
}

/// restic's snapshot table (`PrintSnapshots`), oldest first. `reasons` (one list per snapshot,
/// in the order of `snaps`) adds forget's Reasons column; `compact` shows only id, time, host
/// and tags (one per line). When a snapshot has several paths, a blank line separates the
/// snapshots. Widths count bytes, as restic's do.
pub fn print_table(snaps: &[(Id, Snapshot)], reasons: Option<&[Vec<String>]>, compact: bool) {
    let mut order: Vec<usize> = (0..snaps.len()).collect();
    order.sort_by(|&a, &b| snaps[a].1.time.cmp(&snaps[b].1.time));
    let mut head = vec!["ID", "Time"];
    if compact {
        head.extend(["Host", "Tags  "]);
    } else {
        head.extend(["Host      ", "Tags      "]);
        if reasons.is_some() {
            head.push("Reasons");
        }
        head.push("Paths");
    }
    let rows: Vec<Vec<String>> = order
        .iter()
        .map(|&i| {
            let (id, s) = &snaps[i];
            let mut row = vec![id.short(), snapshot_ref::table_time(s), s.hostname.clone()];
            if compact {
                row.push(s.tags.join("\n"));
            } else {
                row.push(s.tags.join(","));
                if let Some(r) = reasons {
                    row.push(r.get(i).map(|r| r.join("\n")).unwrap_or_default());
                }
                row.push(s.paths.join("\n"));
            }
            row
        })
        .collect();
    let multiline = !compact && snaps.iter().any(|(_, s)| s.paths.len() > 1);
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, cell) in r.iter().enumerate() {
            w[i] = w[i].max(cell.split('\n').map(str::len).max().unwrap_or(0));
        }
    }
    let lines = |cells: &[String]| -> Vec<String> {
        let parts: Vec<Vec<&str>> = cells.iter().map(|c| c.split('\n').collect()).collect();
        let n = parts.iter().map(Vec::len).max().unwrap_or(1);
        (0..n)
            .map(|l| {
                let mut s = String::new();
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        s.push_str("  ");
                    }
                    let v = p.get(l).copied().unwrap_or("");
                    s.push_str(v);
                    s.push_str(&" ".repeat(w[i].saturating_sub(v.len())));
                }
                s.trim_end_matches(' ').to_string()
            })
            .collect()
    };
    let rule = "-".repeat(w.iter().sum::<usize>() + 2 * (w.len() - 1));
    let mut out = String::new();
    let head: Vec<String> = head.iter().map(|h| h.to_string()).collect();
    for l in lines(&head) {
        out.push_str(&l);
        out.push('\n');
    }
    out.push_str(&rule);
    out.push('\n');
    for (i, r) in rows.iter().enumerate() {
        if multiline && i > 0 {
            out.push('\n');
        }
        for l in lines(r) {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out.push_str(&rule);
    out.push('\n');
    out.push_str(&format!("{} snapshots\n", rows.len()));
    print!("{out}");
}
