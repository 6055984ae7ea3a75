use super::snapshot_ref;
use crate::global::GlobalOptions;
use cairn_core::format::snapshot::Snapshot;
use cairn_core::snapshots::{group_snapshots, keep_latest, GroupBy};
use cairn_core::Id;

#[derive(clap::Args)]
pub struct Args {
    /// Only show these snapshots (ids, unique prefixes or "latest")
    ids: Vec<String>,
    #[command(flatten)]
    filter: snapshot_ref::Filter,
    /// Only show the last n snapshots for each host and path
    #[arg(
        long,
        value_name = "n",
        allow_negative_numbers = true,
        default_value_t = 0
    )]
    latest: i64,
    /// Deprecated: use --latest 1
    #[arg(long, hide = true)]
    last: bool,
    /// Use compact output format
    #[arg(short, long)]
    compact: bool,
    /// Group snapshots by host, paths and/or tags, separated by comma
    #[arg(short, long, value_name = "group", default_value = "")]
    group_by: String,
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let by = GroupBy::parse(&a.group_by).map_err(anyhow::Error::msg)?;
    let latest = if a.last {
        eprintln!("Flag --last has been deprecated, use --latest 1");
        1
    } else {
        usize::try_from(a.latest).unwrap_or(0)
    };
    let repo = g.open()?;
    let snaps = a
        .filter
        .core()
        .select(&repo, &a.ids, &crate::printer::SELECTION)?;
    // restic prints its groups in Go's map order (random); the core orders them by their key.
    let mut groups: Vec<(serde_json::Value, Vec<(Id, Snapshot)>)> = group_snapshots(snaps, by)
        .into_iter()
        .map(|(k, v)| (k.to_json(), v))
        .collect();
    for (_, list) in &mut groups {
        if latest > 0 {
            keep_latest(list, latest);
        }
        list.sort_by_key(|s| s.1.time);
    }
    if g.json {
        let list = |v: &[(Id, Snapshot)]| {
            serde_json::Value::Array(
                v.iter()
                    .map(|(id, s)| snapshot_ref::to_json(id, s))
                    .collect(),
            )
        };
        let out = if !by.any() {
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
        let mut parts = Vec::new();
        if let Some(h) = key["hostname"].as_str().filter(|h| !h.is_empty()) {
            parts.push(format!("host [{h}]"));
        }
        // restic's order; a group without any key gets no header.
        for field in ["tags", "paths"] {
            if let Some(v) = key[field].as_array() {
                let items: Vec<&str> = v.iter().filter_map(|x| x.as_str()).collect();
                parts.push(format!("{field} [{}]", items.join(", ")));
            }
        }
        if by.any() && !parts.is_empty() {
            println!("snapshots for ({}):", parts.join(", "));
        }
        print_table(snaps, None, a.compact);
    }
    Ok(crate::exit::OK)
}

/// restic's snapshot table (`PrintSnapshots`), oldest first. `reasons` (one list per snapshot,
/// in the order of `snaps`) adds forget's Reasons column; `compact` shows only id, time, host
/// and tags (one per line). When a snapshot has several paths, a blank line separates the
/// snapshots. As in restic 0.18, a Size column (the bytes the backup read, from the
/// snapshot's summary) is added when any snapshot has a summary. Widths count bytes, as
/// restic's do.
pub fn print_table(snaps: &[(Id, Snapshot)], reasons: Option<&[Vec<String>]>, compact: bool) {
    let mut order: Vec<usize> = (0..snaps.len()).collect();
    order.sort_by(|&a, &b| snaps[a].1.time.cmp(&snaps[b].1.time));
    let has_size = snaps.iter().any(|(_, s)| s.summary.is_some());
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
    if has_size {
        head.push("Size");
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
            if has_size {
                let size = s.summary.as_ref().map(|m| m.total_bytes_processed);
                row.push(size.map(crate::output::bytes).unwrap_or_default());
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
