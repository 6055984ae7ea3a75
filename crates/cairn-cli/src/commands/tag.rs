use super::snapshot_ref;
use crate::global::GlobalOptions;
use cairn_core::snapshots::{change_tags, flatten_tags};

#[derive(clap::Args)]
#[command(mut_args(snapshot_ref::help_without_ids))]
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

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    if a.set.is_empty() && a.add.is_empty() && a.remove.is_empty() {
        anyhow::bail!("nothing to do!");
    }
    if !a.set.is_empty() && (!a.add.is_empty() || !a.remove.is_empty()) {
        anyhow::bail!("--set and --add/--remove cannot be given at the same time");
    }
    // restic rewrites snapshots under an exclusive lock.
    let repo = g.open_exclusive()?;
    let snaps = a
        .filter
        .core()
        .select(&repo, &a.ids, &crate::printer::SELECTION)?;
    let set = flatten_tags(&a.set);
    let add = flatten_tags(&a.add);
    let remove = flatten_tags(&a.remove);
    let mut changed = 0;
    for (id, mut snap) in snaps {
        if !change_tags(&mut snap.tags, &set, &add, &remove) {
            continue;
        }
        // The changed snapshot remembers the one it replaces, as restic does.
        snap.original.get_or_insert(id);
        let saved = cairn_core::snapshots::replace(&repo, &id, &snap);
        match saved {
            Ok(_) => changed += 1,
            // restic warns and goes on with the other snapshots.
            Err(e) => eprintln!(
                "unable to modify the tags for snapshot ID {:?}, ignoring: {e:#}",
                id.to_hex()
            ),
        }
    }
    if !g.quiet && !g.json {
        if changed == 0 {
            println!("no snapshots were modified");
        } else {
            println!("modified tags on {changed} snapshots");
        }
    }
    Ok(crate::exit::OK)
}
