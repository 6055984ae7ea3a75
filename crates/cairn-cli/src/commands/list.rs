//! `list`: the ids of one kind of repository file, or every blob.

use crate::global::GlobalOptions;
use cairn_core::FileType;

#[derive(clap::Args)]
pub struct Args {
    /// What to list: blobs, packs, index, snapshots, keys or locks
    #[arg(value_name = "TYPE")]
    kind: String,
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let kind = match a.kind.as_str() {
        "packs" => FileType::Data,
        "index" => FileType::Index,
        "snapshots" => FileType::Snapshot,
        "keys" => FileType::Key,
        "locks" => FileType::Lock,
        "blobs" => return list_blobs(g),
        other => anyhow::bail!(
            "invalid type {other:?}: want blobs, packs, index, snapshots, keys or locks"
        ),
    };
    // As restic: listing locks must work while the repository is locked exclusively.
    let repo = if kind == FileType::Lock {
        g.open_unlocked()?
    } else {
        g.open()?
    };
    let mut out = std::io::stdout().lock();
    for id in repo.list_ids(kind)? {
        use std::io::Write;
        writeln!(out, "{}", id.to_hex())?;
    }
    Ok(crate::exit::OK)
}

fn list_blobs(g: &GlobalOptions) -> anyhow::Result<i32> {
    use std::io::Write;
    let repo = g.open()?;
    let mut out = std::io::stdout().lock();
    for idx in repo.list_ids(FileType::Index)? {
        let file = repo.load_index_file(&idx)?;
        for p in &file.packs {
            for b in &p.blobs {
                writeln!(out, "{} {}", b.ty, b.id.to_hex())?;
            }
        }
    }
    Ok(crate::exit::OK)
}
