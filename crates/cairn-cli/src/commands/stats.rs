use super::snapshot_ref;
use crate::global::GlobalOptions;
use crate::output;
use cairn_core::format::pack::BlobType;
use cairn_core::format::tree::{Node, NodeType};
use cairn_core::repository::IndexedRepository;
use cairn_core::walk::{self, Visit, Visitor, WalkOptions};
use cairn_core::Id;
use std::collections::HashSet;

#[derive(clap::Args)]
pub struct Args {
    /// Snapshots to count (default: all that match the filters)
    ids: Vec<String>,
    #[command(flatten)]
    filter: snapshot_ref::Filter,
    /// Counting mode: restore-size (default), files-by-contents, blobs-per-file, raw-data or
    /// debug (size histograms of files and blobs)
    #[arg(long, default_value = "restore-size")]
    mode: String,
}

#[derive(Default)]
struct Counts {
    files: u64,
    size: u64,
    blobs: u64,
    seen_trees: HashSet<Id>,
    seen_data: HashSet<Id>,
    seen_contents: HashSet<Id>,
    seen_inodes: HashSet<(u64, u64)>,
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let mode = a.mode.as_str();
    if ![
        "restore-size",
        "files-by-contents",
        "blobs-per-file",
        "raw-data",
        "debug",
    ]
    .contains(&mode)
    {
        anyhow::bail!("unknown mode {mode:?}: use restore-size, files-by-contents, blobs-per-file, raw-data or debug");
    }
    let repo = g.open_with_index()?;
    if mode == "debug" {
        print_debug(&cairn_core::sizes::collect(&repo)?);
        return Ok(crate::exit::OK);
    }
    let snaps = a
        .filter
        .core()
        .select(&repo, &a.ids, &crate::printer::SELECTION)?;
    let mut c = Counts::default();
    for (_, snap) in &snaps {
        c.seen_inodes.clear();
        walk(&repo, snap.tree, mode, &mut c)?;
    }
    if mode == "raw-data" {
        c.blobs = (c.seen_trees.len() + c.seen_data.len()) as u64;
    }
    if g.json {
        let mut m = serde_json::json!({"total_size": c.size, "total_file_count": c.files});
        if mode == "raw-data" || mode == "blobs-per-file" {
            m["total_blob_count"] = c.blobs.into();
        }
        m["snapshots_count"] = snaps.len().into();
        println!("{m}");
        return Ok(crate::exit::OK);
    }
    println!("Stats in {mode} mode:");
    println!("Snapshots processed:   {}", snaps.len());
    if mode == "raw-data" || mode == "blobs-per-file" {
        println!("   Total Blob Count:   {}", c.blobs);
    }
    if mode != "raw-data" {
        println!("   Total File Count:   {}", c.files);
    }
    println!("         Total Size:   {}", output::bytes(c.size));
    Ok(crate::exit::OK)
}

/// Counts one snapshot's tree the way restic's `stats` does for each mode.
fn walk(repo: &IndexedRepository, tree: Id, mode: &str, c: &mut Counts) -> anyhow::Result<()> {
    if mode == "raw-data" {
        if !c.seen_trees.insert(tree) {
            return Ok(());
        }
        c.size += stored_size(repo, BlobType::Tree, &tree);
    }
    let mut v = Counter { repo, mode, c };
    Ok(walk::walk(
        repo,
        tree,
        b"",
        &WalkOptions::interruptible(&crate::signals::INTERRUPTED),
        &mut v,
    )?)
}

struct Counter<'a> {
    repo: &'a IndexedRepository,
    mode: &'a str,
    c: &'a mut Counts,
}

impl Visitor for Counter<'_> {
    fn node(&mut self, _path: &[u8], n: &Node, _depth: usize) -> anyhow::Result<Visit> {
        let (repo, c) = (self.repo, &mut *self.c);
        match self.mode {
            "restore-size" => {
                // Every name counts as a file, but a hard-linked file's size counts once per
                // snapshot (as restic counts).
                c.files += 1;
                if !(n.kind == NodeType::File
                    && n.links > 1
                    && !c.seen_inodes.insert((n.device_id, n.inode)))
                {
                    c.size += n.size;
                }
            }
            "files-by-contents" if n.kind != NodeType::Dir => {
                let ids = n.content.as_deref().unwrap_or(&[]);
                let mut key = Vec::with_capacity(ids.len() * 32);
                ids.iter().for_each(|id| key.extend_from_slice(&id.0));
                if c.seen_contents.insert(Id::hash(&key)) {
                    c.files += 1;
                    c.size += n.size;
                }
            }
            "blobs-per-file" if n.kind == NodeType::File => {
                let ids = n.content.as_deref().unwrap_or(&[]);
                let mut key = Vec::with_capacity(ids.len() * 32);
                ids.iter().for_each(|id| key.extend_from_slice(&id.0));
                if c.seen_contents.insert(Id::hash(&key)) {
                    c.files += 1;
                }
                for id in ids {
                    if c.seen_data.insert(*id) {
                        c.blobs += 1;
                        c.size += repo.index().plain_size(BlobType::Data, id).unwrap_or(0);
                    }
                }
            }
            "raw-data" => {
                for id in n.content.as_deref().unwrap_or(&[]) {
                    if c.seen_data.insert(*id) {
                        c.size += stored_size(repo, BlobType::Data, id);
                    }
                }
            }
            _ => {}
        }
        let Some(sub) = n.subtree.filter(|_| n.kind == NodeType::Dir) else {
            return Ok(Visit::Skip);
        };
        // raw-data counts each tree once, and what is below it with it.
        if self.mode == "raw-data" {
            if !c.seen_trees.insert(sub) {
                return Ok(Visit::Skip);
            }
            c.size += stored_size(repo, BlobType::Tree, &sub);
        }
        Ok(Visit::Descend)
    }
}

fn stored_size(repo: &IndexedRepository, ty: BlobType, id: &Id) -> u64 {
    repo.index()
        .lookup(ty, id)
        .map(|l| l.blob.length as u64)
        .unwrap_or(0)
}

/// restic 0.18's `stats --mode debug`, on stderr as restic writes it: per file type and blob
/// type the count, the total size and a table of the decades from the first to the last
/// one used, then the sizes above the limit.
fn print_debug(sizes: &cairn_core::sizes::RepositorySizes) {
    let mut out = String::from("Collecting size statistics\n\n");
    for (ty, h) in &sizes.files {
        let name = match ty {
            cairn_core::FileType::Data => "data".to_string(),
            other => other.dir().trim_end_matches('s').to_string(),
        };
        out.push_str(&format!("File Type: {name}\n{}\n", histogram(h)));
    }
    for (ty, h) in &sizes.blobs {
        out.push_str(&format!("Blob Type: {ty}\n{}\n\n", histogram(h)));
    }
    eprint!("{out}");
}

fn histogram(h: &cairn_core::sizes::SizeHistogram) -> String {
    let mut s = format!(
        "Count: {}\nTotal Size: {}\n",
        h.count,
        output::bytes(h.total)
    );
    let first = h.buckets.iter().position(|b| b.2 > 0);
    let last = h.buckets.iter().rposition(|b| b.2 > 0);
    let rows: Vec<(String, u64)> = match (first, last) {
        (Some(f), Some(l)) => h.buckets[f..=l]
            .iter()
            .map(|(lo, hi, n)| (format!("{lo} - {hi} Byte"), *n))
            .collect(),
        _ => Vec::new(),
    };
    let range_w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(4);
    let count_w = rows
        .iter()
        .map(|r| r.1.to_string().len())
        .max()
        .unwrap_or(0)
        .max(5);
    let rule = "-".repeat(range_w + 2 + count_w);
    s.push_str(&format!("{:<range_w$}  Count\n{rule}\n", "Size"));
    for (range, n) in &rows {
        // Ranges are right-aligned among themselves, as restic pads them.
        s.push_str(&format!("{range:>range_w$}  {n}\n"));
    }
    s.push_str(&rule);
    s.push('\n');
    if !h.oversized.is_empty() {
        let v: Vec<String> = h.oversized.iter().map(u64::to_string).collect();
        s.push_str(&format!("Oversized: [{}]\n", v.join(" ")));
    }
    s
}
