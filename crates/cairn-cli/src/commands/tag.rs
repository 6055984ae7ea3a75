use super::snapshot_ref;
use crate::global::GlobalOptions;
use cairn_backend::{FileType, Handle};

#[derive(clap::Args)]
pub struct Args {
    /// Snapshots to change (default: all that match the filters)
    ids: Vec<String>,
    #[command(flatten)]
    filter: snapshot_ref::Filter,
    /// Tags which will replace the existing tags in the format `tag[,tag,...]`
    #[arg(long = "set")]
    set: Vec<String>,
    /// Tags which will be added to the existing tags in the format `tag[,tag,...]`
    #[arg(long = "add")]
    add: Vec<String>,
    /// Tags which will be removed from the existing tags in the format `tag[,tag,...]`
    #[arg(long = "remove")]
    remove: Vec<String>,
}

fn split(v: &[String]) -> Vec<String> {
    v.iter()
        .flat_map(|t| t.split(','))
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    if a.set.is_empty() && a.add.is_empty() && a.remove.is_empty() {
        anyhow::bail!("nothing to do: use --set, --add or --remove");
    }
    if !a.set.is_empty() && (!a.add.is_empty() || !a.remove.is_empty()) {
        anyhow::bail!("--set and --add/--remove cannot be given at the same time");
    }
    let repo = g.open()?;
    let mut snaps = repo.list_snapshots()?;
    snaps.retain(|(_, s)| a.filter.matches(s));
    if !a.ids.is_empty() {
        let wanted: Vec<_> = a
            .ids
            .iter()
            .map(|spec| a.filter.find(&repo, spec).map(|(id, _)| id))
            .collect::<anyhow::Result<_>>()?;
        snaps.retain(|(id, _)| wanted.contains(id));
    }
    let (set, add, remove) = (split(&a.set), split(&a.add), split(&a.remove));
    let mut changed = 0;
    for (id, mut snap) in snaps {
        let mut tags = if a.set.is_empty() {
            snap.tags.clone()
        } else {
            set.clone()
        };
        for t in &add {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        tags.retain(|t| !remove.contains(t));
        if tags == snap.tags {
            continue;
        }
        snap.tags = tags;
        // The changed snapshot remembers the one it replaces, as restic does.
        snap.original.get_or_insert(id);
        // New file first, then the old one goes: a crash in between leaves both, never none.
        repo.save_unpacked(FileType::Snapshot, &snap.to_json())?;
        repo.backend
            .remove(&Handle::new(FileType::Snapshot, id.to_hex()))?;
        changed += 1;
    }
    if !g.quiet && !g.json {
        println!("modified tags on {changed} snapshots");
    }
    Ok(crate::exit::OK)
}
