use crate::global::GlobalOptions;
use cairn_core::format::keyfile::KeyFile;
use cairn_core::format::pack::BlobType;
use cairn_core::FileType;
use cairn_core::Id;
use std::io::Write;

#[derive(clap::Args)]
pub struct Args {
    /// config, masterkey, key, snapshot, index, pack, blob, tree or lock
    kind: String,
    /// The object's ID (a unique prefix will do); for tree also SNAPSHOT[:PATH]
    id: Option<String>,
}

fn pretty(bytes: &[u8]) -> anyhow::Result<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes)?;
    Ok(serde_json::to_string_pretty(&v)?)
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let need_id = || {
        a.id.clone()
            .ok_or_else(|| anyhow::anyhow!("ID not specified"))
    };
    let mut out = std::io::stdout().lock();
    match a.kind.as_str() {
        "config" => {
            let repo = g.open()?;
            writeln!(out, "{}", serde_json::to_string_pretty(&repo.config())?)?;
        }
        "masterkey" => {
            let repo = g.open()?;
            writeln!(out, "{}", pretty(&repo.key().to_json())?)?;
        }
        "key" => {
            let repo = g.open()?;
            let id = match &a.id {
                Some(p) => repo.find_id(FileType::Key, p)?,
                None => Id::from_hex(repo.key_id())?,
            };
            let raw = repo.load_raw(FileType::Key, &id)?;
            KeyFile::parse(&raw)?;
            writeln!(out, "{}", pretty(&raw)?)?;
        }
        "snapshot" | "index" | "lock" => {
            let repo = g.open()?;
            let kind = match a.kind.as_str() {
                "snapshot" => FileType::Snapshot,
                "index" => FileType::Index,
                _ => FileType::Lock,
            };
            let id = repo.find_id(kind, &need_id()?)?;
            let json = repo.load_unpacked(kind, &id)?;
            if kind == FileType::Index {
                out.write_all(&json)?;
            } else {
                writeln!(out, "{}", pretty(&json)?)?;
            }
        }
        "pack" => {
            let repo = g.open()?;
            let id = repo.find_id(FileType::Data, &need_id()?)?;
            let raw = repo.load_raw(FileType::Data, &id)?;
            if Id::hash(&raw) != id {
                eprintln!("Warning: hash of data does not match ID, want {id}, got {}", Id::hash(&raw));
            }
            out.write_all(&raw)?;
        }
        "blob" => {
            let repo = g.open_with_index()?;
            let id = Id::from_hex(&need_id()?)?;
            for ty in [BlobType::Data, BlobType::Tree] {
                if repo.index().has(ty, &id) {
                    out.write_all(&repo.load_blob(ty, &id)?)?;
                    return Ok(crate::exit::OK);
                }
            }
            anyhow::bail!("blob {id} not found");
        }
        "tree" => {
            let repo = g.open_with_index()?;
            let spec = need_id()?;
            let tree_id = if let Ok(id) = Id::from_hex(&spec) {
                id
            } else {
                let (snap_spec, sub) = spec.split_once(':').unwrap_or((spec.as_str(), ""));
                let (_, snap) = cairn_core::snapshots::SnapshotFilter::default().find(&repo, snap_spec)?;
                cairn_core::walk::subtree_at(&repo, snap.tree, sub)?
            };
            out.write_all(&repo.load_blob(BlobType::Tree, &tree_id)?)?;
        }
        other => anyhow::bail!("invalid type {other:?}: want config, masterkey, key, snapshot, index, pack, blob, tree or lock"),
    }
    Ok(crate::exit::OK)
}
