use super::snapshot_ref;
use crate::global::GlobalOptions;

#[derive(clap::Args)]
pub struct Args {
    /// Only show these snapshots (ids or prefixes)
    ids: Vec<String>,
    #[command(flatten)]
    filter: snapshot_ref::Filter,
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let repo = g.open()?;
    let mut snaps = repo.list_snapshots()?;
    snaps.retain(|(_, s)| a.filter.matches(s));
    if !a.ids.is_empty() {
        snaps.retain(|(id, _)| a.ids.iter().any(|p| id.to_hex().starts_with(p.as_str())));
    }
    if g.json {
        let v: Vec<_> = snaps
            .iter()
            .map(|(id, s)| snapshot_ref::to_json(id, s))
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(crate::exit::OK);
    }
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
    let rule = "-".repeat(header.chars().count().max(66));
    println!("{header}");
    println!("{rule}");
    for r in &rows {
        let mut paths = r[4].lines();
        println!(
            "{}",
            line([&r[0], &r[1], &r[2], &r[3], paths.next().unwrap_or("")])
        );
        for p in paths {
            println!("{}", line(["", "", "", "", p]));
        }
    }
    println!("{rule}");
    println!("{} snapshots", rows.len());
    Ok(crate::exit::OK)
}
