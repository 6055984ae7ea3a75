//! Choosing snapshots the way restic does, for every front end: `latest`, full ids and unique
//! id prefixes, the `--host`/`--path`/`--tag` filters, `--group-by` groups, `--latest N`, and
//! the parent of a new backup.
//!
//! restic has two ways of choosing, and each command uses one:
//!
//! * [`SnapshotFilter::find`] is restic 0.14's `FindLatestSnapshot` / `FindSnapshot`: exactly
//!   one snapshot or an error (`dump`, `restore`). The filters only narrow `latest`, and
//!   relative `--path`s are taken relative to the working directory there.
//! * [`SnapshotFilter::select`] is `FindFilteredSnapshots` (`ls`, `find`, `stats`, `tag`,
//!   `snapshots`, `forget`): without ids every snapshot that passes the filters (paths
//!   compared as given); with ids those snapshots, `latest` narrowed by the filters, and any
//!   id that cannot be found warned about and skipped. [`SnapshotFilter::select_lenient`] is
//!   the same choice for commands that must see unreadable snapshot files too (`rewrite`,
//!   `repair snapshots`, `copy`).
//!
//! Warnings go to the caller's [`Observer`], worded as restic words them.

use crate::format::gotime::GoTime;
use crate::format::snapshot::Snapshot;
use crate::observe::Observer;
use crate::repository::Repository;
use crate::util::gopath;
use crate::util::parallel::parallel_map;
use crate::Id;
use anyhow::Context;
use cairn_backend::FileType;
use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;

/// A list of tags given as `tag[,tag,...]` (restic's `TagList`): a snapshot matches when it
/// has every tag of the list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagList(pub Vec<String>);

impl TagList {
    /// Splits at commas and trims the tags, keeping empty ones as restic does: `""` is the
    /// list of one empty tag, which matches snapshots without tags.
    pub fn parse(s: &str) -> TagList {
        TagList(s.split(',').map(|t| t.trim().to_string()).collect())
    }

    /// restic's `Snapshot.HasTags`: every tag is on the snapshot, where an empty tag stands
    /// for "the snapshot has no tags at all".
    pub fn matches(&self, s: &Snapshot) -> bool {
        for tag in &self.0 {
            if tag.is_empty() && s.tags.is_empty() {
                return true;
            }
            if !s.has_tag(tag) {
                return false;
            }
        }
        true
    }
}

impl fmt::Display for TagList {
    /// `[a, b]`, as restic prints a tag list.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.0.join(", "))
    }
}

/// restic's snapshot filter: any of the hosts, every one of the paths, and any one of the tag
/// lists (each `--tag` value is one comma-separated list whose tags must all be there).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotFilter {
    pub hosts: Vec<String>,
    pub paths: Vec<String>,
    /// The `--tag` values as given (`a,b`), each one [`TagList`].
    pub tags: Vec<String>,
}

/// One snapshot chosen by [`SnapshotFilter::select_lenient`].
pub struct Selected {
    /// The argument that named it (`None` when chosen by the filters).
    pub arg: Option<String>,
    pub id: Id,
    /// The snapshot, or why its file could not be read.
    pub snap: crate::Result<Snapshot>,
}

impl SnapshotFilter {
    /// Is no filter given?
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.paths.is_empty() && self.tags.is_empty()
    }

    /// Does the snapshot pass the filters (`--path`s compared as given)?
    pub fn matches(&self, s: &Snapshot) -> bool {
        matches_with(s, &self.hosts, &self.paths, &self.tags)
    }

    /// The one snapshot `spec` names, as restic's `dump` and `restore` find it: `latest` is the
    /// newest snapshot passing the filters (relative `--path`s made absolute), anything else a
    /// full id or unique prefix (the filters do not apply).
    pub fn find(&self, repo: &Repository, spec: &str) -> crate::Result<(Id, Snapshot)> {
        if spec == "latest" {
            return self.latest(repo)?.ok_or_else(|| {
                crate::Error::NoSnapshot(format!(
                    "latest snapshot for criteria not found: no snapshot found Paths:{} Hosts:{}",
                    go_list(&self.paths),
                    go_list(&self.hosts)
                ))
            });
        }
        let names = snapshot_names(repo)?;
        let id = resolve_prefix(&names, spec)
            .map_err(|e| anyhow::anyhow!("invalid id {spec:?}: {e}"))?;
        let snap = repo
            .load_snapshot(&id)
            .with_context(|| format!("loading snapshot {spec:?} failed"))?;
        Ok((id, snap))
    }

    /// restic's `FindLatestSnapshot`: the newest snapshot passing the filters, where each
    /// `--path` is first made absolute and cleaned (Go's `filepath.Abs`).
    pub fn latest(&self, repo: &Repository) -> crate::Result<Option<(Id, Snapshot)>> {
        let paths = self.abs_paths()?;
        Ok(repo
            .list_snapshots()?
            .into_iter()
            .filter(|(_, s)| matches_with(s, &self.hosts, &paths, &self.tags))
            .max_by(|a, b| a.1.time.cmp(&b.1.time)))
    }

    /// restic's `FindFilteredSnapshots`. Without `ids`: every snapshot passing the filters,
    /// oldest first (an unreadable snapshot file fails the whole listing). With `ids`: those
    /// snapshots in the order given, each once; `latest` is the newest passing the filters,
    /// other ids ignore them (with restic's warning), and an id that cannot be resolved or
    /// loaded is warned about and skipped.
    pub fn select(
        &self,
        repo: &Repository,
        ids: &[String],
        report: &dyn Observer,
    ) -> crate::Result<Vec<(Id, Snapshot)>> {
        if ids.is_empty() {
            let mut snaps = repo.list_snapshots()?;
            snaps.retain(|(_, s)| self.matches(s));
            return Ok(snaps);
        }
        let names = snapshot_names(repo)?;
        let mut found: Vec<Id> = Vec::new();
        let mut used_filter = false;
        for spec in ids {
            if spec == "latest" {
                used_filter = true;
                match self.latest(repo)? {
                    Some((id, _)) => found.push(id),
                    None => report.warn(&format!(
                        "Ignoring \"latest\", no snapshot matched given filter ({})",
                        self.criteria()
                    )),
                }
                continue;
            }
            match resolve_prefix(&names, spec) {
                Ok(id) => found.push(id),
                Err(e) => report.warn(&format!("Ignoring {spec:?}: {e}")),
            }
        }
        if !used_filter && !self.is_empty() {
            report.warn("Ignoring filters as there are explicit snapshot ids given");
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for id in found {
            if !seen.insert(id) {
                continue;
            }
            match repo.load_snapshot(&id) {
                Ok(s) => out.push((id, s)),
                Err(e) => report.warn(&format!(
                    "Ignoring {:?}, could not load snapshot: {e:#}",
                    id.to_hex()
                )),
            }
        }
        Ok(out)
    }

    /// [`select`](Self::select) for commands that repair or replace snapshots, which must see
    /// unreadable snapshot files instead of failing on them: without ids every snapshot file
    /// (those that pass the filters, and every unreadable one, as an error), oldest first;
    /// with ids those snapshots in the order given, each once, unreadable ones as errors.
    /// `latest` is the newest readable snapshot passing the filters.
    pub fn select_lenient(
        &self,
        repo: &Repository,
        ids: &[String],
        report: &dyn Observer,
    ) -> crate::Result<Vec<Selected>> {
        let names = snapshot_names(repo)?;
        if ids.is_empty() {
            let mut v = load_all(repo, &names)?;
            v.retain(|s| s.snap.as_ref().map_or(true, |s| self.matches(s)));
            return Ok(v);
        }
        if !ids.iter().any(|s| s == "latest") && !self.is_empty() {
            report.warn("Ignoring filters as there are explicit snapshot ids given");
        }
        let mut out: Vec<Selected> = Vec::new();
        let mut seen = HashSet::new();
        for spec in ids {
            if spec == "latest" {
                let paths = self.abs_paths()?;
                let newest = load_all(repo, &names)?
                    .into_iter()
                    .filter(|s| {
                        s.snap
                            .as_ref()
                            .is_ok_and(|s| matches_with(s, &self.hosts, &paths, &self.tags))
                    })
                    .max_by(|a, b| match (&a.snap, &b.snap) {
                        (Ok(x), Ok(y)) => x.time.cmp(&y.time),
                        _ => std::cmp::Ordering::Equal,
                    });
                match newest {
                    Some(s) if seen.insert(s.id) => out.push(Selected {
                        arg: Some(spec.clone()),
                        ..s
                    }),
                    Some(_) => {}
                    None => report.warn("Ignoring \"latest\", no snapshot matched given filter"),
                }
                continue;
            }
            let id = match resolve_prefix(&names, spec) {
                Ok(id) => id,
                Err(e) => {
                    report.warn(&format!("Ignoring {spec:?}: {e}"));
                    continue;
                }
            };
            if seen.insert(id) {
                out.push(Selected {
                    arg: Some(spec.clone()),
                    id,
                    snap: repo.load_snapshot(&id),
                });
            }
        }
        Ok(out)
    }

    /// The `--path`s as `FindLatestSnapshot` compares them: absolute and cleaned.
    fn abs_paths(&self) -> anyhow::Result<Vec<String>> {
        self.paths
            .iter()
            .map(|p| {
                gopath::abs(p).context("cannot resolve a relative --path: no working directory")
            })
            .collect()
    }

    /// Go's `%v` of the filter, as restic's warnings show it: `Paths:[a] Tags:[[x, y]] Hosts:[h]`.
    fn criteria(&self) -> String {
        let tags: Vec<String> = self
            .tags
            .iter()
            .map(|t| TagList::parse(t).to_string())
            .collect();
        format!(
            "Paths:{} Tags:{} Hosts:{}",
            go_list(&self.paths),
            go_list(&tags),
            go_list(&self.hosts)
        )
    }
}

/// restic's `HasHostname && HasTagList && HasPaths`.
fn matches_with(s: &Snapshot, hosts: &[String], paths: &[String], tags: &[String]) -> bool {
    (hosts.is_empty() || hosts.contains(&s.hostname))
        && paths.iter().all(|p| s.paths.contains(p))
        && (tags.is_empty() || tags.iter().any(|l| TagList::parse(l).matches(s)))
}

/// restic's `TagLists.Flatten`: every non-empty tag of several `--tag`-style values.
pub fn flatten_tags(lists: &[String]) -> Vec<String> {
    lists
        .iter()
        .flat_map(|l| TagList::parse(l).0)
        .filter(|t| !t.is_empty())
        .collect()
}

/// A snapshot by full id or unique prefix (no `latest`), with restic's error messages.
pub fn find_by_id(repo: &Repository, spec: &str) -> crate::Result<(Id, Snapshot)> {
    let id = repo.find_id(FileType::Snapshot, spec).map_err(|e| {
        if e.to_string().contains("ambiguous") {
            anyhow::anyhow!("multiple IDs with prefix {spec:?} found")
        } else {
            anyhow::anyhow!("no matching ID found for prefix {spec:?}")
        }
    })?;
    let sn = repo.load_snapshot(&id)?;
    Ok((id, sn))
}

/// restic's `Snapshot.String()`: `snapshot 1234abcd of [/a /b] at TIME by user@host`.
pub fn describe(id: &Id, s: &Snapshot) -> String {
    format!(
        "snapshot {} of [{}] at {} by {}@{}",
        id.short(),
        s.paths.join(" "),
        crate::format::gotime::go_string(&s.time),
        s.username,
        s.hostname
    )
}

/// restic 0.14's `changeTags`: `--set` replaces the tags (and always counts as a change),
/// otherwise `--add` appends the missing ones and `--remove` takes each one's first occurrence
/// out by moving the last tag into its place (Go's swap-delete, so the order changes as in
/// restic). All three flags are flattened as restic's `TagLists.Flatten` does, so empty tags
/// vanish — and `--set ''` changes nothing, as in restic 0.14.
pub fn change_tags(
    tags: &mut Vec<String>,
    set: &[String],
    add: &[String],
    remove: &[String],
) -> bool {
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

/// Stores `new` in place of the snapshot `old`: the new file first, then the old one goes,
/// so that a crash in between leaves both, never none. Returns the new snapshot's id.
pub fn replace(repo: &Repository, old: &Id, new: &Snapshot) -> crate::Result<Id> {
    let id = repo.save_unpacked(FileType::Snapshot, &new.to_json())?;
    repo.backend()
        .remove(&cairn_backend::Handle::new(
            FileType::Snapshot,
            old.to_hex(),
        ))
        .map_err(anyhow::Error::new)?;
    Ok(id)
}

/// Removes one snapshot file.
pub fn remove(repo: &Repository, id: &Id) -> crate::Result<()> {
    let h = cairn_backend::Handle::new(FileType::Snapshot, id.to_hex());
    repo.backend()
        .remove(&h)
        .map_err(|cause| crate::Error::Backend {
            object: Some(crate::Object::Snapshot(*id)),
            context: crate::error::Context::new(vec![format!("removing {h}")]),
            cause,
        })
}

/// restic's `FilterLastestSnapshots` (`snapshots --latest n`): the newest `n` snapshots of
/// each host and set of paths, newest first.
pub fn keep_latest(snaps: &mut Vec<(Id, Snapshot)>, n: usize) {
    snaps.sort_by_key(|s| std::cmp::Reverse(s.1.time));
    let mut count: std::collections::HashMap<(String, Vec<String>), usize> = Default::default();
    snaps.retain(|(_, s)| {
        let mut paths = s.paths.clone();
        paths.sort();
        let c = count.entry((s.hostname.clone(), paths)).or_default();
        *c += 1;
        *c <= n
    });
}

/// What decides the parent of a new backup.
pub struct ParentQuery<'a> {
    /// `--force`: no parent, every file is read.
    pub force: bool,
    /// `--parent`: this snapshot (id or unique prefix).
    pub parent: Option<&'a str>,
    /// The new snapshot's host.
    pub hostname: &'a str,
    /// The backup targets as given (made absolute and cleaned here, as the snapshot stores them).
    pub targets: &'a [PathBuf],
    /// The new snapshot's time (`--time`): a newer snapshot is never the parent.
    pub time: GoTime,
    /// restic 0.18's `--group-by` for the parent (default host and paths): which of host,
    /// paths and tags the parent must share with the new snapshot.
    pub group: GroupBy,
    /// The new snapshot's tags (a parent grouped by tags has all of them).
    pub tags: &'a [String],
}

/// restic's parent rule: none with `--force`; `--parent` if given; otherwise the latest
/// snapshot not newer than the new snapshot in the new snapshot's group (`q.group`: by
/// default this host with exactly these paths).
///
/// A parent only saves reading unchanged files, so when the snapshots cannot be listed
/// (a damaged or hostile snapshot file) that is reported and the backup goes on without one.
pub fn find_parent(
    repo: &Repository,
    q: &ParentQuery,
    report: &dyn Observer,
) -> crate::Result<Option<(Id, Snapshot)>> {
    if q.force {
        return Ok(None);
    }
    if let Some(spec) = q.parent {
        let id = repo
            .find_id(FileType::Snapshot, spec)
            .map_err(|e| anyhow::anyhow!("invalid --parent {spec:?}: {e}"))?;
        return Ok(Some((id, repo.load_snapshot(&id)?)));
    }
    let mut want: Vec<String> = q
        .targets
        .iter()
        .map(|p| crate::archiver::absolute_path(p).map(|p| p.to_string_lossy().into_owned()))
        .collect::<crate::Result<_>>()?;
    want.sort();
    let all = match repo.list_snapshots() {
        Ok(all) => all,
        Err(e) => {
            report.warn(&format!(
                "warning: no parent snapshot, every file is read: {}",
                format!("{e:#}").replace('\n', " ")
            ));
            return Ok(None);
        }
    };
    Ok(all
        .into_iter()
        .filter(|(_, s)| s.time <= q.time)
        .filter(|(_, s)| !q.group.host || s.hostname == q.hostname)
        .filter(|(_, s)| {
            let mut p = s.paths.clone();
            p.sort();
            !q.group.paths || p == want
        })
        .filter(|(_, s)| !q.group.tags || q.tags.iter().all(|t| s.has_tag(t)))
        .max_by(|x, y| x.1.time.cmp(&y.1.time)))
}

/// The names of all snapshot files.
fn snapshot_names(repo: &Repository) -> anyhow::Result<Vec<String>> {
    Ok(repo
        .backend()
        .list(FileType::Snapshot)
        .map_err(anyhow::Error::new)
        .context("listing snapshots")?
        .into_iter()
        .map(|f| f.name)
        .collect())
}

/// Every snapshot file named like one, read or not.
fn load_all(repo: &Repository, names: &[String]) -> anyhow::Result<Vec<Selected>> {
    let ids: Vec<Id> = names.iter().filter_map(|n| Id::from_hex(n).ok()).collect();
    let snaps = parallel_map(&ids, 4, |id| -> crate::Result<_> {
        Ok(repo.load_snapshot(id))
    })?;
    let mut v: Vec<Selected> = ids
        .into_iter()
        .zip(snaps)
        .map(|(id, snap)| Selected {
            arg: None,
            id,
            snap,
        })
        .collect();
    // Unreadable files first (a command that refuses them then stops before changing
    // anything), then by time; a total order, so that the readable ones are in time order.
    v.sort_by(|a, b| match (&a.snap, &b.snap) {
        (Ok(x), Ok(y)) => x.time.cmp(&y.time).then(a.id.cmp(&b.id)),
        (Err(_), Ok(_)) => std::cmp::Ordering::Less,
        (Ok(_), Err(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.id.cmp(&b.id),
    });
    Ok(v)
}

/// restic's `restic.Find` on a snapshot listing, with its error messages.
fn resolve_prefix(names: &[String], spec: &str) -> anyhow::Result<Id> {
    let mut hits = names.iter().filter(|n| n.starts_with(spec));
    match (hits.next(), hits.next()) {
        (Some(name), None) => Ok(Id::from_hex(name)?),
        (Some(_), Some(_)) => anyhow::bail!("multiple IDs with prefix {spec:?} found"),
        (None, _) => anyhow::bail!("no matching ID found for prefix {spec:?}"),
    }
}

/// Go's `%v` of a string slice: `[a b]`.
pub fn go_list(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

/// `--group-by`: which fields make snapshots a group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupBy {
    pub host: bool,
    pub paths: bool,
    pub tags: bool,
}

impl GroupBy {
    /// restic's option: `host`, `paths`, `tags` (or `hosts`, `path`, `tag`) separated by
    /// commas; empty parts are ignored, so `""` means no grouping.
    pub fn parse(s: &str) -> Result<GroupBy, String> {
        let mut g = GroupBy::default();
        for part in s.split(',') {
            match part {
                "host" | "hosts" => g.host = true,
                "path" | "paths" => g.paths = true,
                "tag" | "tags" => g.tags = true,
                "" => {}
                other => return Err(format!("unknown grouping option: '{other}'")),
            }
        }
        Ok(g)
    }

    pub fn any(&self) -> bool {
        self.host || self.paths || self.tags
    }
}

/// A group's key (restic's `SnapshotGroupKey`): the grouped fields, the others empty
/// (`None` is JSON null, which is also what an empty list of a grouped field gives).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupKey {
    pub hostname: String,
    pub paths: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
}

impl GroupKey {
    /// The key as restic marshals it: `{"hostname":…,"paths":…,"tags":…}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "hostname": self.hostname,
            "paths": self.paths,
            "tags": self.tags,
        })
    }
}

/// A group's key and its snapshots.
pub type Group = (GroupKey, Vec<(Id, Snapshot)>);

/// restic's `GroupSnapshots`, groups ordered by their key's JSON (restic's order is Go's
/// random map order). Snapshots keep their order within a group.
///
/// As in restic, every snapshot's paths come back sorted, and its tags too when grouping by
/// tags (restic sorts them in place, so its output shows them sorted).
pub fn group_snapshots(list: Vec<(Id, Snapshot)>, by: GroupBy) -> Vec<Group> {
    // With each group its key's JSON text, to find and order the groups by.
    let mut groups: Vec<(String, Group)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = Default::default();
    for (id, mut s) in list {
        s.paths.sort();
        if by.tags {
            s.tags.sort();
        }
        let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        let key = GroupKey {
            hostname: if by.host {
                s.hostname.clone()
            } else {
                String::new()
            },
            paths: if by.paths { non_empty(&s.paths) } else { None },
            tags: if by.tags { non_empty(&s.tags) } else { None },
        };
        let text = key.to_json().to_string();
        match index.get(&text) {
            Some(&i) => groups[i].1 .1.push((id, s)),
            None => {
                index.insert(text.clone(), groups.len());
                groups.push((text, (key, vec![(id, s)])));
            }
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    groups.into_iter().map(|(_, g)| g).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_backend::Handle;

    use crate::testing::Warnings;

    fn snap(time: &str, host: &str, paths: &[&str], tags: &[&str]) -> serde_json::Value {
        serde_json::json!({
            "time": time,
            "tree": Id::hash(b"tree"),
            "paths": paths,
            "hostname": host,
            "tags": tags,
        })
    }

    /// A repository with four snapshots (oldest first: a1, b2, a3, a4) and their ids.
    fn fixture() -> (tempfile::TempDir, Repository, Vec<Id>) {
        let (dir, repo) = crate::testing::new_repo();
        let ids = [
            snap("2020-01-01T00:00:00Z", "a", &["/x"], &["t1"]),
            snap("2020-01-02T00:00:00Z", "b", &["/x"], &["t1", "t2"]),
            snap("2020-01-03T00:00:00Z", "a", &["/y", "/x"], &[]),
            snap("2020-01-04T00:00:00Z", "a", &["/y"], &["t2"]),
        ]
        .iter()
        .map(|j| {
            repo.save_unpacked(FileType::Snapshot, j.to_string().as_bytes())
                .expect("save")
        })
        .collect();
        (dir, repo.into_repository(), ids)
    }

    fn filter(hosts: &[&str], paths: &[&str], tags: &[&str]) -> SnapshotFilter {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        SnapshotFilter {
            hosts: v(hosts),
            paths: v(paths),
            tags: v(tags),
        }
    }

    fn ids_of(v: &[(Id, Snapshot)]) -> Vec<Id> {
        v.iter().map(|(id, _)| *id).collect()
    }

    #[test]
    fn tag_lists_and_paths_are_restics() {
        let mut s = Snapshot::parse(
            br#"{"time":"2020-01-01T00:00:00Z","tree":"0000000000000000000000000000000000000000000000000000000000000000","paths":["/x"],"tags":["a","b"]}"#,
        )
        .expect("snapshot parses");
        assert!(filter(&[], &[], &[" a , b"]).matches(&s));
        assert!(filter(&[], &[], &["c", "b"]).matches(&s));
        assert!(!filter(&[], &[], &["a,c"]).matches(&s));
        assert!(!filter(&[], &[], &[""]).matches(&s));
        assert!(filter(&[], &["/x"], &[]).matches(&s));
        assert!(!filter(&[], &["/x", "/y"], &[]).matches(&s));
        s.tags.clear();
        assert!(filter(&[], &[], &[""]).matches(&s));
        assert!(!filter(&[], &[], &["a"]).matches(&s));
        assert_eq!(
            filter(&["h"], &["/p"], &["a, b", "c"]).criteria(),
            "Paths:[/p] Tags:[[a, b] [c]] Hosts:[h]"
        );
        let t = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(flatten_tags(&t(&[" y , z", ",", ""])), t(&["y", "z"]));
    }

    #[test]
    fn select_without_ids_filters_oldest_first() {
        let (_d, repo, ids) = fixture();
        let w = Warnings::default();
        let all = filter(&[], &[], &[])
            .select(&repo, &[], &w)
            .expect("select");
        assert_eq!(ids_of(&all), ids);
        let a = filter(&["a"], &["/x"], &[])
            .select(&repo, &[], &w)
            .expect("select");
        assert_eq!(ids_of(&a), vec![ids[0], ids[2]]);
        let t = filter(&[], &[], &["t2"])
            .select(&repo, &[], &w)
            .expect("select");
        assert_eq!(ids_of(&t), vec![ids[1], ids[3]]);
        assert!(w.take().is_empty());
    }

    #[test]
    fn select_with_ids_warns_as_restic() {
        let (_d, repo, ids) = fixture();
        let w = Warnings::default();
        let specs = vec![
            ids[1].to_hex()[..10].to_string(),
            "zzzz".to_string(),
            ids[1].to_hex(),
            "latest".to_string(),
        ];
        let got = filter(&["a"], &[], &[])
            .select(&repo, &specs, &w)
            .expect("select");
        assert_eq!(ids_of(&got), vec![ids[1], ids[3]]);
        assert_eq!(
            w.take(),
            vec!["Ignoring \"zzzz\": no matching ID found for prefix \"zzzz\"".to_string()]
        );
        let got = filter(&["nobody"], &[], &[])
            .select(&repo, &["latest".to_string()], &w)
            .expect("select");
        assert!(got.is_empty());
        assert_eq!(
            w.take(),
            vec![
                "Ignoring \"latest\", no snapshot matched given filter (Paths:[] Tags:[] Hosts:[nobody])"
                    .to_string()
            ]
        );
        let got = filter(&["a"], &[], &[])
            .select(&repo, &[ids[1].to_hex()], &w)
            .expect("select");
        assert_eq!(ids_of(&got), vec![ids[1]]);
        assert_eq!(
            w.take(),
            vec!["Ignoring filters as there are explicit snapshot ids given".to_string()]
        );
    }

    #[test]
    fn find_is_one_snapshot_or_an_error() {
        let (_d, repo, ids) = fixture();
        let f = filter(&["a"], &["/x"], &[]);
        assert_eq!(f.find(&repo, "latest").expect("latest").0, ids[2]);
        assert_eq!(
            f.find(&repo, &ids[1].to_hex()[..8]).expect("by prefix").0,
            ids[1]
        );
        let e = filter(&["q"], &[], &[])
            .find(&repo, "latest")
            .expect_err("none");
        assert_eq!(
            e.to_string(),
            "latest snapshot for criteria not found: no snapshot found Paths:[] Hosts:[q]"
        );
        let e = f.find(&repo, "zz").expect_err("unknown");
        assert_eq!(
            e.to_string(),
            "invalid id \"zz\": no matching ID found for prefix \"zz\""
        );
        assert_eq!(
            find_by_id(&repo, &ids[3].to_hex()[..6]).expect("id").0,
            ids[3]
        );
        assert_eq!(
            find_by_id(&repo, "zz").expect_err("unknown").to_string(),
            "no matching ID found for prefix \"zz\""
        );
    }

    #[test]
    fn lenient_selection_keeps_unreadable_snapshots() {
        let (_d, repo, ids) = fixture();
        let bad = Id::hash(b"not a snapshot");
        repo.backend()
            .save(
                &Handle::new(FileType::Snapshot, bad.to_hex()),
                b"not a snapshot",
            )
            .expect("save");
        let w = Warnings::default();
        assert!(filter(&[], &[], &[]).select(&repo, &[], &w).is_err());
        let all = filter(&["a"], &[], &[])
            .select_lenient(&repo, &[], &w)
            .expect("lenient");
        let got: Vec<(Id, bool)> = all.iter().map(|s| (s.id, s.snap.is_ok())).collect();
        assert!(got.contains(&(bad, false)));
        assert_eq!(
            got.iter().filter(|s| s.1).map(|s| s.0).collect::<Vec<_>>(),
            vec![ids[0], ids[2], ids[3]]
        );
        let specs = vec!["latest".to_string(), bad.to_hex(), "latest".to_string()];
        let some = filter(&[], &[], &[])
            .select_lenient(&repo, &specs, &w)
            .expect("lenient");
        assert_eq!(some.len(), 2);
        assert_eq!(
            (some[0].id, some[0].arg.as_deref()),
            (ids[3], Some("latest"))
        );
        assert!(some[1].snap.is_err());
        assert!(w.take().is_empty());
    }

    #[test]
    fn parent_is_the_latest_of_this_host_and_paths() {
        let (_d, repo, ids) = fixture();
        let w = Warnings::default();
        let targets = [PathBuf::from("/x/"), PathBuf::from("/y")];
        let time = chrono::DateTime::parse_from_rfc3339("2021-01-01T00:00:00Z").expect("time");
        let mut q = ParentQuery {
            force: false,
            parent: None,
            hostname: "a",
            targets: &targets,
            time,
            group: GroupBy {
                host: true,
                paths: true,
                tags: false,
            },
            tags: &[],
        };
        let parent = |q: &ParentQuery| find_parent(&repo, q, &w).expect("parent").map(|p| p.0);
        assert_eq!(parent(&q), Some(ids[2]));
        q.time = chrono::DateTime::parse_from_rfc3339("2020-01-02T00:00:00Z").expect("time");
        assert_eq!(parent(&q), None, "a newer snapshot is no parent");
        let spec = ids[1].to_hex();
        q.parent = Some(&spec[..8]);
        assert_eq!(parent(&q), Some(ids[1]));
        q.parent = Some(&spec);
        q.force = true;
        assert_eq!(parent(&q), None);
        assert!(w.take().is_empty());
    }

    #[test]
    fn latest_n_per_host_and_paths() {
        let (_d, repo, ids) = fixture();
        let mut all = repo.list_snapshots().expect("list");
        keep_latest(&mut all, 1);
        assert_eq!(ids_of(&all), vec![ids[3], ids[2], ids[1], ids[0]]);
        let mut all = repo.list_snapshots().expect("list");
        all.retain(|(_, s)| s.paths == ["/x"]);
        keep_latest(&mut all, 1);
        assert_eq!(ids_of(&all), vec![ids[1], ids[0]]);
    }

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

    #[test]
    fn replace_stores_first_then_removes() {
        let (_d, repo, ids) = fixture();
        let mut s = repo.load_snapshot(&ids[0]).expect("load");
        s.tags = vec!["new".into()];
        let new = replace(&repo, &ids[0], &s).expect("replace");
        let now: Vec<Id> = ids_of(&repo.list_snapshots().expect("list"));
        assert!(now.contains(&new) && !now.contains(&ids[0]));
        remove(&repo, &new).expect("remove");
        assert!(!ids_of(&repo.list_snapshots().expect("list")).contains(&new));
    }
}
