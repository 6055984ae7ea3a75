//! `rewrite` (restic ≥ 0.15: snapshots without excluded paths) and `repair snapshots`
//! (restic ≥ 0.16: snapshots without the parts whose data is gone). Both store new snapshots
//! that name the old one in `original`, and with `--forget` remove the old one afterwards.

use super::repair::Printer;
use super::snapshot_ref;
use crate::global::GlobalOptions;
use cairn_backend::{FileType, Handle};
use cairn_core::archiver::select::{SelectOptions, Selection};
use cairn_core::format::gotime::GoTime;
use cairn_core::format::pack::BlobType;
use cairn_core::format::snapshot::Snapshot;
use cairn_core::format::tree::{Node, NodeType, Tree};
use cairn_core::packer::BlobWriter;
use cairn_core::repair::Report;
use cairn_core::repository::IndexedRepository;
use cairn_core::rewrite::{NodeAction, RewriteRules, TreeRewriter};
use cairn_core::Id;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(mut_args(snapshot_ref::help_without_ids))]
pub struct Args {
    /// Snapshots to rewrite (default: all that match the filters)
    #[arg(value_name = "snapshotID")]
    ids: Vec<String>,
    #[command(flatten)]
    filter: snapshot_ref::Filter,
    /// Exclude a pattern (can be specified multiple times)
    #[arg(short = 'e', long = "exclude", value_name = "pattern")]
    excludes: Vec<String>,
    /// Read exclude patterns from a file (can be specified multiple times)
    #[arg(long = "exclude-file", value_name = "file")]
    exclude_files: Vec<PathBuf>,
    /// Same as --exclude pattern but ignores the casing of filenames
    #[arg(long = "iexclude", value_name = "pattern")]
    iexcludes: Vec<String>,
    /// Same as --exclude-file but ignores casing of filenames in patterns
    #[arg(long = "iexclude-file", value_name = "file")]
    iexclude_files: Vec<PathBuf>,
    /// Remove original snapshots after creating new ones
    #[arg(long)]
    forget: bool,
    /// Do not do anything, just print what would be done
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Replace hostname
    #[arg(long, value_name = "host")]
    new_host: Option<String>,
    /// Replace time of the backup
    #[arg(long, value_name = "time")]
    new_time: Option<String>,
}

#[derive(clap::Args)]
#[command(mut_args(snapshot_ref::help_without_ids))]
pub struct RepairSnapshotsArgs {
    /// Snapshots to repair (default: all that match the filters)
    #[arg(value_name = "snapshotID")]
    ids: Vec<String>,
    #[command(flatten)]
    filter: snapshot_ref::Filter,
    /// Do not do anything, just print what would be done
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Remove original snapshots after creating new ones
    #[arg(long)]
    forget: bool,
}

/// Go's `time.Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST` (the zone name is
/// `UTC` at offset 0 and the numeric offset otherwise, as Go names a zone it parsed).
pub fn go_time(t: &GoTime) -> String {
    let nanos = t.timestamp_subsec_nanos();
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    let off = t.format("%z").to_string();
    let zone = if t.offset().local_minus_utc() == 0 {
        "UTC".to_string()
    } else {
        off.clone()
    };
    format!("{}{frac} {off} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
}

/// restic's `Snapshot.String()`: `snapshot 1234abcd of [/a /b] at TIME by user@host`.
pub fn snapshot_string(id: &Id, s: &Snapshot) -> String {
    format!(
        "snapshot {} of [{}] at {} by {}@{}",
        id.short(),
        s.paths.join(" "),
        go_time(&s.time),
        s.username,
        s.hostname
    )
}

/// One snapshot chosen on the command line or by the filters.
pub struct Selected {
    /// The argument that named it (None when chosen by the filters).
    pub arg: Option<String>,
    pub id: Id,
    /// The snapshot, or why its file could not be read.
    pub snap: anyhow::Result<Snapshot>,
}

/// restic's `FindFilteredSnapshots`: without ids every snapshot passing the filters, oldest
/// first (unreadable ones included, as errors, for the caller to judge); with ids those
/// snapshots in the order given, each once (`latest` = the newest passing the filters; an id
/// that names no snapshot is warned about and skipped).
pub fn find_snapshots(
    repo: &IndexedRepository,
    filter: &snapshot_ref::Filter,
    ids: &[String],
    report: &dyn Report,
) -> anyhow::Result<Vec<Selected>> {
    let names: Vec<String> = repo
        .backend()
        .list(FileType::Snapshot)
        .map_err(anyhow::Error::new)?
        .into_iter()
        .map(|f| f.name)
        .collect();
    let all = || -> anyhow::Result<Vec<Selected>> {
        let ids: Vec<Id> = names.iter().filter_map(|n| Id::from_hex(n).ok()).collect();
        let snaps = cairn_core::repository::parallel_map(&ids, 4, |id| Ok(repo.load_snapshot(id)))?;
        let mut v: Vec<Selected> = ids
            .into_iter()
            .zip(snaps)
            .map(|(id, snap)| Selected {
                arg: None,
                id,
                snap,
            })
            .collect();
        v.sort_by(|a, b| match (&a.snap, &b.snap) {
            (Ok(x), Ok(y)) => x.time.cmp(&y.time).then(a.id.cmp(&b.id)),
            _ => a.id.cmp(&b.id),
        });
        Ok(v)
    };
    if ids.is_empty() {
        let mut v = all()?;
        v.retain(|s| s.snap.as_ref().map_or(true, |s| filter.matches(s)));
        return Ok(v);
    }
    if !ids.iter().any(|s| s == "latest") && !filter.is_empty() {
        report.warn("Ignoring filters as there are explicit snapshot ids given");
    }
    let mut out: Vec<Selected> = Vec::new();
    let mut seen = HashSet::new();
    for spec in ids {
        if spec == "latest" {
            let newest = all()?
                .into_iter()
                .filter(|s| s.snap.as_ref().is_ok_and(|s| filter.matches(s)))
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
        let mut hits = names.iter().filter(|n| n.starts_with(spec.as_str()));
        let id = match (hits.next(), hits.next()) {
            (Some(n), None) => Id::from_hex(n)?,
            (Some(_), Some(_)) => {
                report.warn(&format!(
                    "Ignoring {spec:?}: multiple IDs with prefix {spec:?} found"
                ));
                continue;
            }
            (None, _) => {
                report.warn(&format!(
                    "Ignoring {spec:?}: no matching ID found for prefix {spec:?}"
                ));
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

/// How a rewritten snapshot replaces the old one.
struct Replace<'a> {
    dry_run: bool,
    forget: bool,
    /// Tag for the new snapshot when the old one stays (`rewrite` / `repaired`).
    tag: &'a str,
    new_host: Option<&'a str>,
    new_time: Option<GoTime>,
    p: &'a Printer,
}

/// restic's `filterAndReplaceSnapshot`: nothing when neither tree nor metadata changed; a
/// snapshot whose tree is gone entirely is removed; otherwise the new snapshot is stored
/// (after the trees it names are durable) and, with `--forget`, the old one removed.
fn replace_snapshot(
    repo: &IndexedRepository,
    writer: &BlobWriter,
    id: Id,
    mut snap: Snapshot,
    new_tree: Option<Id>,
    summary: Option<(u64, u64)>,
    how: &Replace,
) -> anyhow::Result<bool> {
    let p = how.p;
    let Some(tree) = new_tree else {
        if how.dry_run {
            p.info("would delete empty snapshot");
        } else {
            remove_snapshot(repo, &id)?;
            p.info(&format!("removed empty snapshot {}", id.short()));
        }
        return Ok(true);
    };
    if tree == snap.tree && how.new_host.is_none() && how.new_time.is_none() {
        return Ok(false);
    }
    if how.dry_run {
        p.info("would save new snapshot");
        if how.forget {
            p.info("would remove old snapshot");
        }
        if let Some(t) = &how.new_time {
            p.info(&format!("would set time to {}", go_time(t)));
        }
        if let Some(h) = how.new_host {
            p.info(&format!("would set hostname to {h}"));
        }
        return Ok(true);
    }
    // The new snapshot names the one it replaces (always: it is a new snapshot).
    snap.original = Some(id);
    snap.tree = tree;
    if let (Some((files, bytes)), Some(sum)) = (summary, snap.summary.as_mut()) {
        sum.total_files_processed = files;
        sum.total_bytes_processed = bytes;
    }
    if !how.forget && !snap.has_tag(how.tag) {
        snap.tags.push(how.tag.to_string());
    }
    if let Some(t) = how.new_time {
        p.info(&format!("setting time to {}", go_time(&t)));
        snap.time = t;
    }
    if let Some(h) = how.new_host {
        p.info(&format!("setting host to {h}"));
        snap.hostname = h.to_string();
    }
    // Trees first: the snapshot must never name a tree that is not stored and indexed.
    writer.checkpoint()?;
    let new_id = repo
        .save_unpacked(FileType::Snapshot, &snap.to_json())
        .map_err(|e| e.context(format!("saving the new snapshot for {}", id.short())))?;
    p.info(&format!("saved new snapshot {}", new_id.short()));
    if how.forget {
        remove_snapshot(repo, &id)?;
        p.info(&format!("removed old snapshot {}", id.short()));
    }
    Ok(true)
}

fn remove_snapshot(repo: &IndexedRepository, id: &Id) -> anyhow::Result<()> {
    let h = Handle::new(FileType::Snapshot, id.to_hex());
    repo.backend()
        .remove(&h)
        .map_err(|e| anyhow::Error::new(e).context(format!("removing snapshot {}", id.short())))
}

fn summary_line(p: &Printer, changed: usize, dry_run: bool) {
    p.info("");
    p.info(&match (changed, dry_run) {
        (0, false) => "no snapshots were modified".to_string(),
        (0, true) => "no snapshots would be modified".to_string(),
        (n, false) => format!("modified {n} snapshots"),
        (n, true) => format!("would modify {n} snapshots"),
    });
}

fn read_pattern_file(p: &Path) -> anyhow::Result<Vec<String>> {
    let s = std::fs::read_to_string(p)
        .map_err(|e| anyhow::anyhow!("reading exclude file {}: {e}", p.display()))?;
    Ok(s.lines()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.to_string())
        .collect())
}

fn parse_time(s: &str) -> anyhow::Result<GoTime> {
    use chrono::TimeZone;
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .map_err(|e| anyhow::anyhow!("error in time option: {s:?}: {e}"))?;
    chrono::Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.fixed_offset())
        .ok_or_else(|| anyhow::anyhow!("error in time option: {s:?}: no such local time"))
}

/// `rewrite --exclude`: drops every node whose path matches; counts what stays.
struct ExcludeRules<'a> {
    sel: &'a Selection,
    p: &'a Printer,
    files: u64,
    bytes: u64,
}

impl RewriteRules for ExcludeRules<'_> {
    fn node(&mut self, node: &Node, path: &[u8]) -> NodeAction {
        if self.sel.excluded_path(Path::new(OsStr::from_bytes(path))) {
            // At normal verbosity, as restic's documentation shows it.
            self.p
                .info(&format!("excluding {}", String::from_utf8_lossy(path)));
            return NodeAction::Remove;
        }
        if node.kind == NodeType::File {
            self.files += 1;
            self.bytes += node.size;
        }
        NodeAction::Keep
    }
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let mut excludes = a.excludes.clone();
    for f in &a.exclude_files {
        excludes.extend(read_pattern_file(f)?);
    }
    let mut iexcludes = a.iexcludes.clone();
    for f in &a.iexclude_files {
        iexcludes.extend(read_pattern_file(f)?);
    }
    let filtering = !excludes.is_empty() || !iexcludes.is_empty();
    let new_host = a.new_host.as_deref().filter(|h| !h.is_empty());
    let new_time = a.new_time.as_deref().filter(|t| !t.is_empty());
    if !filtering && new_host.is_none() && new_time.is_none() {
        anyhow::bail!("Nothing to do: no excludes provided and no new metadata provided");
    }
    let new_time = new_time.map(parse_time).transpose()?;
    let sel = Selection::new(&SelectOptions {
        excludes,
        iexcludes,
        ..Default::default()
    })?;
    let repo = if a.forget && !a.dry_run {
        g.open_exclusive()?
    } else {
        g.open()?
    }
    .load_index()?;
    let p = Printer::new(g);
    let how = Replace {
        dry_run: a.dry_run,
        forget: a.forget,
        tag: "rewrite",
        new_host,
        new_time,
        p: &p,
    };
    let mut writer = BlobWriter::new(
        repo.backend().clone(),
        repo.key().clone(),
        repo.version(),
        g.compression()?,
        repo.index(),
    );
    if a.dry_run {
        writer = writer.dry_run();
    }
    let mut changed = 0;
    for s in find_snapshots(&repo, &a.filter, &a.ids, &p)? {
        cairn_core::repair::check_cancel(&p)?;
        let snap = match s.snap {
            Ok(snap) => snap,
            Err(e) => {
                p.warn(&format!(
                    "Ignoring {:?}, could not load snapshot: {e:#}",
                    s.id.to_hex()
                ));
                continue;
            }
        };
        p.info(&format!("\n{}", snapshot_string(&s.id, &snap)));
        let (tree, summary) = if filtering {
            let mut rules = ExcludeRules {
                sel: &sel,
                p: &p,
                files: 0,
                bytes: 0,
            };
            let mut rw = TreeRewriter::new(&repo, &writer, false)
                .interruptible(&crate::signals::INTERRUPTED);
            let t = rw
                .rewrite(&mut rules, b"/", Some(snap.tree))
                .map_err(|e| rewrite_failed(&s.id, e))?;
            (t, Some((rules.files, rules.bytes)))
        } else {
            (Some(snap.tree), None)
        };
        if replace_snapshot(&repo, &writer, s.id, snap, tree, summary, &how)
            .map_err(|e| rewrite_failed(&s.id, e))?
        {
            changed += 1;
        }
    }
    writer.finish()?;
    summary_line(&p, changed, a.dry_run);
    Ok(crate::exit::OK)
}

fn rewrite_failed(id: &Id, e: anyhow::Error) -> anyhow::Error {
    e.context(format!("unable to rewrite snapshot ID {:?}", id.short()))
}

/// `repair snapshots`: file content that is not in the index is dropped (the size follows),
/// trees that cannot be loaded become empty directories, nodes of invalid type go; a
/// snapshot whose root tree cannot be loaded is removed.
struct RepairRules<'a> {
    repo: &'a IndexedRepository,
    p: &'a Printer,
}

impl RewriteRules for RepairRules<'_> {
    fn node(&mut self, node: &Node, path: &[u8]) -> NodeAction {
        let shown = String::from_utf8_lossy(path);
        match &node.kind {
            NodeType::Other(t) if t.is_empty() || t == "irregular" => {
                self.p.info(&format!(
                    "  file {shown:?}: removed node with invalid type {t:?}"
                ));
                return NodeAction::Remove;
            }
            NodeType::File => {}
            _ => return NodeAction::Keep,
        }
        let index = self.repo.index();
        let mut content = Vec::new();
        let mut size = 0u64;
        let mut missing = false;
        for id in node.content.iter().flatten() {
            match index.plain_size(BlobType::Data, id) {
                Some(n) => {
                    content.push(*id);
                    size += n;
                }
                None => missing = true,
            }
        }
        if missing {
            self.p
                .info(&format!("  file {shown:?}: removed missing content"));
        } else if size != node.size {
            self.p
                .info(&format!("  file {shown:?}: fixed incorrect size"));
        } else {
            return NodeAction::Keep;
        }
        let mut n = node.clone();
        n.content = Some(content);
        n.size = size;
        NodeAction::Replace(Box::new(n))
    }

    fn failed_tree(
        &mut self,
        _id: Option<Id>,
        path: &[u8],
        _err: anyhow::Error,
    ) -> anyhow::Result<Option<Tree>> {
        let shown = String::from_utf8_lossy(path);
        if path == b"/" {
            self.p.info(&format!("  dir {shown:?}: not readable"));
            return Ok(None);
        }
        self.p
            .info(&format!("  dir {shown:?}: replaced with empty directory"));
        Ok(Some(Tree::default()))
    }

    fn path_independent(&self) -> bool {
        true
    }
}

pub fn run_repair_snapshots(a: RepairSnapshotsArgs, g: &GlobalOptions) -> anyhow::Result<i32> {
    let repo = if a.dry_run {
        g.open()?
    } else {
        g.open_exclusive()?
    }
    .load_index()?;
    let p = Printer::new(g);
    let how = Replace {
        dry_run: a.dry_run,
        forget: a.forget,
        tag: "repaired",
        new_host: None,
        new_time: None,
        p: &p,
    };
    let mut writer = BlobWriter::new(
        repo.backend().clone(),
        repo.key().clone(),
        repo.version(),
        g.compression()?,
        repo.index(),
    );
    if a.dry_run {
        writer = writer.dry_run();
    }
    let mut changed = 0;
    let mut rw =
        TreeRewriter::new(&repo, &writer, true).interruptible(&crate::signals::INTERRUPTED);
    for s in find_snapshots(&repo, &a.filter, &a.ids, &p)? {
        cairn_core::repair::check_cancel(&p)?;
        let snap = match s.snap {
            Ok(snap) => snap,
            Err(e) => {
                // Only a snapshot named on the command line is removed when unreadable.
                if a.forget && s.arg.is_some() {
                    if a.dry_run {
                        p.info(&format!("would remove unreadable snapshot {}", s.id));
                    } else {
                        remove_snapshot(&repo, &s.id)
                            .map_err(|e| e.context("unable to remove unreadable snapshot file"))?;
                        p.info(&format!("removed unreadable snapshot {}", s.id));
                    }
                    changed += 1;
                    continue;
                }
                anyhow::bail!(
                    "snapshot file {id} is unreadable, use `cairn repair snapshots --forget {id}` to remove it. Original error: {e:#}",
                    id = s.id
                );
            }
        };
        p.info(&format!("\n{}", snapshot_string(&s.id, &snap)));
        let mut rules = RepairRules { repo: &repo, p: &p };
        let tree = rw
            .rewrite(&mut rules, b"/", Some(snap.tree))
            .map_err(|e| rewrite_failed(&s.id, e))?;
        if replace_snapshot(&repo, &writer, s.id, snap, tree, None, &how)
            .map_err(|e| rewrite_failed(&s.id, e))?
        {
            changed += 1;
        }
    }
    drop(rw);
    writer.finish()?;
    summary_line(&p, changed, a.dry_run);
    Ok(crate::exit::OK)
}
