//! Writes a large synthetic repository for memory benchmarks (bench/million.sh): N tiny data
//! blobs, each the content of one file, 1,000 files per directory, in two snapshots — one of
//! everything and one of nine tenths — so that forgetting the first leaves a tenth of the
//! blobs for prune to remove. restic reads it like any other repository.
//!
//!   cargo run --release -p cairn-core --example synth_repo -- REPO N PASSWORD

use cairn_core::format::gotime::GoTime;
use cairn_core::format::pack::BlobType;
use cairn_core::format::snapshot::Snapshot;
use cairn_core::format::tree::{Node, NodeType, Tree};
use cairn_core::packer::{BlobWriter, Compression};
use cairn_core::repository::{InitOptions, Repository};
use cairn_core::Id;
use std::sync::Arc;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, repo, n, pw] = args.as_slice() else {
        anyhow::bail!("usage: synth_repo REPO N PASSWORD");
    };
    let n: usize = n.parse()?;
    let backend: Arc<dyn cairn_backend::Backend> =
        Arc::from(cairn_backend::open(repo).map_err(anyhow::Error::msg)?);
    let repo = Repository::init(
        backend,
        pw.as_bytes(),
        InitOptions {
            version: 2,
            kdf: Default::default(),
            polynomial: None,
            username: "bench".into(),
            hostname: "bench".into(),
        },
    )?;
    let mut known = cairn_core::index::MasterIndex::new();
    known.finish();
    let writer = BlobWriter::for_repo(&repo, Compression::Auto, &known);
    let time: GoTime = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00+00:00")?;
    let mut dirs_all = Vec::new();
    let mut dirs_most = Vec::new();
    let per_dir = 1000;
    for d in 0..n.div_ceil(per_dir) {
        let mut nodes = Vec::new();
        for i in d * per_dir..((d + 1) * per_dir).min(n) {
            let content = format!("synthetic file {i} {:016x}\n", rand::random::<u64>());
            let id = Id::hash(content.as_bytes());
            writer.save(BlobType::Data, id, content.as_bytes())?;
            let mut node = Node::new(format!("f{i}").into_bytes(), NodeType::File);
            node.mode = 0o644;
            node.mtime = time;
            node.atime = time;
            node.ctime = time;
            node.size = content.len() as u64;
            node.content = Some(vec![id]);
            nodes.push(node);
        }
        let full = Tree { nodes };
        let most = Tree {
            nodes: full.nodes[..full.nodes.len() * 9 / 10].to_vec(),
        };
        for (tree, list) in [(full, &mut dirs_all), (most, &mut dirs_most)] {
            let json = tree.to_json();
            let id = Id::hash(&json);
            writer.save(BlobType::Tree, id, &json)?;
            let mut node = Node::new(format!("d{d}").into_bytes(), NodeType::Dir);
            node.mode = 0o755 | (1 << 31);
            node.mtime = time;
            node.atime = time;
            node.ctime = time;
            node.subtree = Some(id);
            list.push(node);
        }
    }
    let mut roots = Vec::new();
    for nodes in [dirs_all, dirs_most] {
        let json = Tree { nodes }.to_json();
        let id = Id::hash(&json);
        writer.save(BlobType::Tree, id, &json)?;
        roots.push(id);
    }
    writer.finish()?;
    for (i, root) in roots.iter().enumerate() {
        let snap = Snapshot {
            time: time + chrono::Duration::hours(i as i64),
            parent: None,
            tree: *root,
            paths: vec!["/synthetic".into()],
            hostname: "bench".into(),
            username: "bench".into(),
            uid: 0,
            gid: 0,
            excludes: vec![],
            tags: vec![],
            original: None,
            program_version: "synth_repo".into(),
            summary: None,
        };
        let id = repo.save_unpacked(cairn_backend::FileType::Snapshot, &snap.to_json())?;
        println!("{id}");
    }
    Ok(())
}
