//! restic's snapshot filter flags (`--host`, `--path`, `--tag`) and snapshot JSON as restic
//! prints it. The choosing itself is the core's ([`cairn_core::snapshots`]).

use cairn_core::format::snapshot::Snapshot;
use cairn_core::snapshots::SnapshotFilter;
use cairn_core::Id;

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
    /// The flags as the core's filter, which does the choosing.
    pub fn core(&self) -> SnapshotFilter {
        SnapshotFilter {
            hosts: self.hosts.clone(),
            paths: self.paths.clone(),
            tags: self.tags.clone(),
        }
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
