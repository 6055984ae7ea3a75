use super::snapshot_ref;
use crate::global::GlobalOptions;
use cairn_backend::{FileType, Handle};

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

/// restic 0.14's `changeTags`: `--set` replaces the tags (and always counts as a change),
/// otherwise `--add` appends the missing ones and `--remove` takes each one's first occurrence
/// out by moving the last tag into its place (Go's swap-delete, so the order changes as in
/// restic). All three flags are flattened as restic's `TagLists.Flatten` does, so empty tags
/// vanish — and `--set ''` changes nothing, as in restic 0.14.
fn change_tags(tags: &mut Vec<String>, set: &[String], add: &[String], remove: &[String]) -> bool {
    if !set.is_empty() {
        *tags = set.to_vec();
        return true;
    }
    let mut changed = false;
    for t in add {
        if !tags.contains(t) {
            tags.push(t.clone());
            changed = true;
        }
    }
    for t in remove {
        if let Some(i) = tags.iter().position(|x| x == t) {
            tags.swap_remove(i);
            changed = true;
        }
    }
    changed
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
        .select(&repo, &a.ids, &snapshot_ref::Warnings)?;
    let set = cairn_core::snapshots::flatten_tags(&a.set);
    let add = cairn_core::snapshots::flatten_tags(&a.add);
    let remove = cairn_core::snapshots::flatten_tags(&a.remove);
    let mut changed = 0;
    for (id, mut snap) in snaps {
        if !change_tags(&mut snap.tags, &set, &add, &remove) {
            continue;
        }
        // The changed snapshot remembers the one it replaces, as restic does.
        snap.original.get_or_insert(id);
        // New file first, then the old one goes: a crash in between leaves both, never none.
        let saved = repo
            .save_unpacked(FileType::Snapshot, &snap.to_json())
            .and_then(|_| {
                repo.backend
                    .remove(&Handle::new(FileType::Snapshot, id.to_hex()))
                    .map_err(anyhow::Error::new)
            });
        match saved {
            Ok(()) => changed += 1,
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

#[cfg(test)]
mod tests {
    use super::change_tags;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn tag_changes_are_restics() {
        let mut t = v(&["a", "b", "c", "d"]);
        assert!(change_tags(&mut t, &[], &[], &v(&["a", "x"])));
        assert_eq!(t, v(&["d", "b", "c"]));
        assert!(change_tags(&mut t, &[], &v(&["b", "e", "e"]), &[]));
        assert_eq!(t, v(&["d", "b", "c", "e"]));
        assert!(!change_tags(&mut t, &[], &v(&["e"]), &v(&["zz"])));
        assert!(change_tags(&mut t, &v(&["d", "b", "c", "e"]), &[], &[]));
        assert_eq!(t, v(&["d", "b", "c", "e"]));
    }
}
