//! Resolving `latest`, an id or an id prefix to a snapshot, and snapshot JSON as restic prints it.

use cairn_backend::FileType;
use cairn_core::format::snapshot::Snapshot;
use cairn_core::repository::Repository;
use cairn_core::{Error, Id};

/// restic's snapshot filter flags, shared by every command that picks snapshots.
#[derive(clap::Args, Default)]
pub struct Filter {
    /// Only consider snapshots for this host (can be specified multiple times)
    #[arg(short = 'H', long = "host")]
    pub hosts: Vec<String>,
    /// Only consider snapshots including this (absolute) path (can be specified multiple times)
    #[arg(long = "path")]
    pub paths: Vec<String>,
    /// Only consider snapshots including tag[,tag,...] (can be specified multiple times)
    #[arg(long = "tag")]
    pub tags: Vec<String>,
}

impl Filter {
    pub fn matches(&self, s: &Snapshot) -> bool {
        matches(s, &self.hosts, &self.paths, &self.tags)
    }
    pub fn find(&self, repo: &Repository, spec: &str) -> anyhow::Result<(Id, Snapshot)> {
        find(repo, spec, &self.hosts, &self.paths, &self.tags)
    }
}

/// Finds a snapshot by `latest`, full id or unique prefix, optionally among those of a host or path.
pub fn find(
    repo: &Repository,
    spec: &str,
    hosts: &[String],
    paths: &[String],
    tags: &[String],
) -> anyhow::Result<(Id, Snapshot)> {
    if spec == "latest" {
        let snaps = repo.list_snapshots()?;
        return snaps
            .into_iter()
            .filter(|(_, s)| matches(s, hosts, paths, tags))
            .max_by(|a, b| a.1.time.cmp(&b.1.time))
            .ok_or_else(|| Error::NoSnapshot(spec.to_string()).into());
    }
    let id = repo
        .find_id(FileType::Snapshot, spec)
        .map_err(|e| anyhow::anyhow!("no matching ID found for prefix {spec:?}: {e}"))?;
    let snap = repo.load_snapshot(&id)?;
    Ok((id, snap))
}

pub fn matches(s: &Snapshot, hosts: &[String], paths: &[String], tags: &[String]) -> bool {
    (hosts.is_empty() || hosts.contains(&s.hostname))
        && (paths.is_empty() || paths.iter().all(|p| s.paths.iter().any(|sp| sp == p)))
        && (tags.is_empty()
            || tags.iter().any(|group| {
                group
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .all(|t| s.has_tag(t))
            }))
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
