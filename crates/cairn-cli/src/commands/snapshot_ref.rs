//! Choosing snapshots the way restic 0.14 does — `latest`, a full id or a unique id prefix,
//! narrowed by the `--host`/`--path`/`--tag` filters — and snapshot JSON as restic prints it.
//!
//! restic 0.14 has two ways of choosing, and each command uses one:
//!
//! * [`Filter::find`] is `restic.FindLatestSnapshot` / `restic.FindSnapshot`: exactly one
//!   snapshot or an error (`dump`, `restore`). The filters only narrow `latest`; relative
//!   `--path`s are taken relative to the working directory there.
//! * [`Filter::select`] is `FindFilteredSnapshots` of cmd/restic/find.go (`ls`, `find`,
//!   `stats`, `tag`, `snapshots`): without ids every snapshot that passes the filters (paths
//!   compared as given); with ids those snapshots, `latest` narrowed by the filters, and any id
//!   that cannot be found warned about on stderr and skipped.

use anyhow::Context;
use cairn_backend::FileType;
use cairn_core::format::snapshot::Snapshot;
use cairn_core::repository::Repository;
use cairn_core::Id;
use std::collections::HashSet;
use std::path::PathBuf;

/// restic's snapshot filter flags, shared by every command that picks snapshots.
#[derive(clap::Args, Default, Clone, Debug)]
pub struct Filter {
    /// Only consider snapshots for this host (can be specified multiple times)
    #[arg(short = 'H', long = "host", value_name = "host")]
    pub hosts: Vec<String>,
    /// Only consider snapshots including this (absolute) path (can be specified multiple times)
    #[arg(long = "path", value_name = "path")]
    pub paths: Vec<String>,
    /// Only consider snapshots including tag[,tag,...] (can be specified multiple times)
    #[arg(long = "tag", value_name = "taglist")]
    pub tags: Vec<String>,
}

/// Help for the filter flags of a command where they only narrow `latest` (restic's `ls`,
/// `dump`, `restore`); for `Command::mut_args`.
pub fn help_when_latest(a: clap::Arg) -> clap::Arg {
    reword(a, "when the snapshot ID is \"latest\"")
}

/// Help for the filter flags of a command where they choose the snapshots when none are named
/// (restic's `find` and `tag`); for `Command::mut_args`.
pub fn help_without_ids(a: clap::Arg) -> clap::Arg {
    reword(a, "when no snapshot ID is given")
}

fn reword(a: clap::Arg, when: &str) -> clap::Arg {
    let help = match a.get_id().as_str() {
        "hosts" => format!("Only consider snapshots for this host, {when} (can be specified multiple times)"),
        "paths" => format!("Only consider snapshots including this (absolute) path, {when} (can be specified multiple times)"),
        "tags" => format!("Only consider snapshots including tag[,tag,...], {when} (can be specified multiple times)"),
        _ => return a,
    };
    a.help(help)
}

impl Filter {
    /// Is no filter given?
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.paths.is_empty() && self.tags.is_empty()
    }

    /// Does the snapshot pass the filters (`--path`s compared as given)?
    pub fn matches(&self, s: &Snapshot) -> bool {
        matches(s, &self.hosts, &self.paths, &self.tags)
    }

    /// The one snapshot `spec` names, as restic's `dump` and `restore` find it: `latest` is the
    /// newest snapshot passing the filters (relative `--path`s made absolute), anything else a
    /// full id or unique prefix (the filters do not apply).
    pub fn find(&self, repo: &Repository, spec: &str) -> anyhow::Result<(Id, Snapshot)> {
        if spec == "latest" {
            return self.latest(repo)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "latest snapshot for criteria not found: no snapshot found Paths:{} Hosts:{}",
                    go_list(&self.paths),
                    go_list(&self.hosts)
                )
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
    pub fn latest(&self, repo: &Repository) -> anyhow::Result<Option<(Id, Snapshot)>> {
        let paths = self.abs_paths()?;
        Ok(repo
            .list_snapshots()?
            .into_iter()
            .filter(|(_, s)| matches(s, &self.hosts, &paths, &self.tags))
            .max_by(|a, b| a.1.time.cmp(&b.1.time)))
    }

    /// restic's `FindFilteredSnapshots` (cmd/restic/find.go). Without `ids`: every snapshot
    /// passing the filters, oldest first. With `ids`: those snapshots in the order given, each
    /// once; `latest` is the newest passing the filters, other ids ignore them (with restic's
    /// warning), and an id that cannot be resolved is warned about and skipped.
    pub fn select(&self, repo: &Repository, ids: &[String]) -> anyhow::Result<Vec<(Id, Snapshot)>> {
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
                    None => eprintln!(
                        "Ignoring \"latest\", no snapshot matched given filter (Paths:{} Tags:{} Hosts:{})",
                        go_list(&self.paths),
                        go_tag_lists(&self.tags),
                        go_list(&self.hosts)
                    ),
                }
                continue;
            }
            match resolve_prefix(&names, spec) {
                Ok(id) => found.push(id),
                Err(e) => eprintln!("Ignoring {spec:?}: {e}"),
            }
        }
        if !used_filter && !self.is_empty() {
            eprintln!("Ignoring filters as there are explicit snapshot ids given");
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for id in found {
            if !seen.insert(id) {
                continue;
            }
            match repo.load_snapshot(&id) {
                Ok(s) => out.push((id, s)),
                Err(e) => eprintln!("Ignoring {:?}, could not load snapshot: {e:#}", id.to_hex()),
            }
        }
        Ok(out)
    }

    /// The `--path`s as `FindLatestSnapshot` compares them: absolute and cleaned.
    fn abs_paths(&self) -> anyhow::Result<Vec<String>> {
        if self.paths.iter().all(|p| p.starts_with('/')) {
            return Ok(self.paths.iter().map(|p| go_clean(p)).collect());
        }
        let wd = getwd().context("cannot resolve a relative --path: no working directory")?;
        let wd = wd.to_string_lossy();
        Ok(self
            .paths
            .iter()
            .map(|p| {
                if p.starts_with('/') {
                    go_clean(p)
                } else {
                    go_clean(&format!("{wd}/{p}"))
                }
            })
            .collect())
    }
}

/// Finds a snapshot by `latest` (newest passing the filters, `--path`s compared as given), full
/// id or unique prefix.
pub fn find(
    repo: &Repository,
    spec: &str,
    hosts: &[String],
    paths: &[String],
    tags: &[String],
) -> anyhow::Result<(Id, Snapshot)> {
    Filter {
        hosts: hosts.to_vec(),
        paths: paths.to_vec(),
        tags: tags.to_vec(),
    }
    .find(repo, spec)
}

/// restic's `HasHostname && HasTagList && HasPaths`: any of the hosts, every one of the
/// paths, and any one of the tag lists, each `--tag` value being one comma-separated list
/// whose tags all have to be there (an empty tag matches a snapshot without tags).
pub fn matches(s: &Snapshot, hosts: &[String], paths: &[String], tags: &[String]) -> bool {
    (hosts.is_empty() || hosts.contains(&s.hostname))
        && paths.iter().all(|p| s.paths.contains(p))
        && (tags.is_empty() || tags.iter().any(|l| has_tags(s, &tag_list(l))))
}

/// restic's `TagList.Set`: the tags of one `--tag` value, split at commas and trimmed (empty
/// tags are kept).
pub fn tag_list(s: &str) -> Vec<&str> {
    s.split(',').map(str::trim).collect()
}

/// restic's `TagLists.Flatten`: every non-empty tag of several `--tag`-style values.
pub fn flatten_tags(lists: &[String]) -> Vec<String> {
    lists
        .iter()
        .flat_map(|l| tag_list(l))
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

/// restic's `Snapshot.HasTags`.
fn has_tags(s: &Snapshot, list: &[&str]) -> bool {
    for t in list {
        if t.is_empty() && s.tags.is_empty() {
            return true;
        }
        if !s.has_tag(t) {
            return false;
        }
    }
    true
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

/// restic's `restic.Find` on a snapshot listing, with its error messages.
fn resolve_prefix(names: &[String], spec: &str) -> anyhow::Result<Id> {
    let mut hits = names.iter().filter(|n| n.starts_with(spec));
    match (hits.next(), hits.next()) {
        (Some(name), None) => Id::from_hex(name),
        (Some(_), Some(_)) => anyhow::bail!("multiple IDs with prefix {spec:?} found"),
        (None, _) => anyhow::bail!("no matching ID found for prefix {spec:?}"),
    }
}

/// Go's `%v` of a string slice: `[a b]`.
pub fn go_list(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

/// Go's `%v` of restic's `TagLists`: `[[a, b] [c]]`.
fn go_tag_lists(v: &[String]) -> String {
    let lists: Vec<String> = v
        .iter()
        .map(|l| format!("[{}]", tag_list(l).join(", ")))
        .collect();
    format!("[{}]", lists.join(" "))
}

/// Go's `os.Getwd`: `$PWD` when it names the working directory, else the resolved path.
fn getwd() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    if let Some(pwd) = std::env::var_os("PWD").map(PathBuf::from) {
        if pwd.is_absolute() {
            if let (Ok(a), Ok(b)) = (std::fs::metadata(&pwd), std::fs::metadata(".")) {
                if a.dev() == b.dev() && a.ino() == b.ino() {
                    return Ok(pwd);
                }
            }
        }
    }
    std::env::current_dir()
}

/// Go's `path.Clean` (lexical: no `.`, `..` resolved, no doubled or trailing slashes).
pub fn go_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// restic's JSON form of a snapshot in listings: the file's fields plus `id` and `short_id`.
pub fn to_json(id: &Id, s: &Snapshot) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), serde_json::Value::String(id.to_hex()));
        o.insert("short_id".into(), serde_json::Value::String(id.short()));
    }
    v
}

/// "2006-01-02 15:04:05" in the snapshot's own offset, as restic's tables show times.
pub fn table_time(s: &Snapshot) -> String {
    crate::output::local_time(&s.time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_is_gos() {
        for (i, o) in [
            ("/a/b/", "/a/b"),
            ("/a//b/./c/..", "/a/b"),
            ("/..", "/"),
            ("/../a", "/a"),
            ("a/../..", ".."),
            ("", "."),
            ("./", "."),
            ("/", "/"),
        ] {
            assert_eq!(go_clean(i), o, "{i}");
        }
    }

    #[test]
    fn tag_lists_are_restics() {
        let mut s = Snapshot::parse(
            br#"{"time":"2020-01-01T00:00:00Z","tree":"0000000000000000000000000000000000000000000000000000000000000000","paths":["/x"],"tags":["a","b"]}"#,
        )
        .expect("snapshot parses");
        let t = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(matches(&s, &[], &[], &t(&[" a , b"])));
        assert!(matches(&s, &[], &[], &t(&["c", "b"])));
        assert!(!matches(&s, &[], &[], &t(&["a,c"])));
        assert!(!matches(&s, &[], &[], &t(&[""])));
        assert!(matches(&s, &[], &t(&["/x"]), &[]));
        assert!(!matches(&s, &[], &t(&["/x", "/y"]), &[]));
        s.tags.clear();
        assert!(matches(&s, &[], &[], &t(&[""])));
        assert!(!matches(&s, &[], &[], &t(&["a"])));
        assert_eq!(go_tag_lists(&t(&["a, b", "c"])), "[[a, b] [c]]");
        assert_eq!(flatten_tags(&t(&[" y , z", ",", ""])), t(&["y", "z"]));
    }
}
