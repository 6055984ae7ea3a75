//! Writes correctly encrypted but hostile objects into a real repository: forged trees
//! (unsafe or duplicate names, unsorted, deep chains, DAG bombs), snapshots pointing at them,
//! and raw unpacked files (snapshots, locks) whose plaintext is anything at all. The forger
//! holds the master key, so everything it writes passes every MAC and hash check: it is what
//! an attacker who can write to the repository (and knows the password) could plant.

use cairn_core::format::gotime;
use cairn_core::format::pack::BlobType;
use cairn_core::format::snapshot::Snapshot;
use cairn_core::format::tree::{Node, NodeType};
use cairn_core::packer::{BlobWriter, Compression};
use cairn_core::repository::Repository;
use cairn_core::Id;
use cairn_backend::FileType;
use std::path::Path;
use std::sync::Arc;

pub struct Forger {
    pub repo: Repository,
    /// Blobs waiting to be packed: (type, plaintext). Written by [`Forger::flush`].
    pending: Vec<(BlobType, Vec<u8>)>,
}

/// A node with sane defaults and the given type; fill in what the case needs.
pub fn node(name: &[u8], kind: NodeType) -> Node {
    let mut n = Node::new(name.to_vec(), kind.clone());
    let t = gotime::from_unix_local(1_700_000_000, 0);
    n.mtime = t;
    n.atime = t;
    n.ctime = t;
    n.mode = match kind {
        NodeType::Dir => 0o755 | (1 << 31),
        NodeType::Symlink => 0o777 | (1 << 27),
        NodeType::Fifo => 0o644 | (1 << 25),
        _ => 0o644,
    };
    n
}

impl Forger {
    /// Opens an existing local repository with its password.
    pub fn open(repo: &Path, password: &str) -> Forger {
        let be = cairn_backend::open(&repo.to_string_lossy()).expect("open backend");
        let mut repo =
            Repository::open(Arc::from(be), password.as_bytes(), None).expect("open repository");
        repo.load_index().expect("load index");
        Forger {
            repo,
            pending: Vec::new(),
        }
    }

    /// Stores a data blob and returns its id.
    pub fn data(&mut self, bytes: &[u8]) -> Id {
        self.pending.push((BlobType::Data, bytes.to_vec()));
        Id::hash(bytes)
    }

    /// A file node whose content is `bytes` in one blob, with an honest size.
    pub fn file(&mut self, name: &[u8], bytes: &[u8]) -> Node {
        let mut n = node(name, NodeType::File);
        n.content = Some(if bytes.is_empty() {
            vec![]
        } else {
            vec![self.data(bytes)]
        });
        n.size = bytes.len() as u64;
        n.links = 1;
        n
    }

    /// A directory node over a subtree.
    pub fn dir(&mut self, name: &[u8], subtree: Id) -> Node {
        let mut n = node(name, NodeType::Dir);
        n.subtree = Some(subtree);
        n
    }

    /// A symlink node.
    pub fn symlink(&mut self, name: &[u8], target: &[u8]) -> Node {
        let mut n = node(name, NodeType::Symlink);
        n.linktarget = target.to_vec();
        n.links = 1;
        n
    }

    /// Stores a tree of these nodes in the order given (no sorting, no duplicate check).
    pub fn tree(&mut self, nodes: &[Node]) -> Id {
        let mut out = b"{\"nodes\":[".to_vec();
        for (i, n) in nodes.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            n.write_json(&mut out);
        }
        out.extend_from_slice(b"]}\n");
        self.tree_raw(&out)
    }

    /// Stores arbitrary bytes as a tree blob.
    pub fn tree_raw(&mut self, json: &[u8]) -> Id {
        self.pending.push((BlobType::Tree, json.to_vec()));
        Id::hash(json)
    }

    /// Packs and indexes every pending blob.
    pub fn flush(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return;
        }
        let index = self.repo.index();
        let w = BlobWriter::new(
            self.repo.backend.clone(),
            self.repo.key.clone(),
            self.repo.version(),
            Compression::Auto,
            index,
        );
        for (ty, plain) in &pending {
            w.save(*ty, Id::hash(plain), plain).expect("save blob");
        }
        w.finish().expect("finish packs");
        // Reload so that later flushes dedupe against what is stored now.
        self.repo.reload_index().expect("reload index");
    }

    /// Flushes pending blobs and stores a snapshot of `tree` (paths `/forged`), returning its id.
    pub fn snapshot(&mut self, tree: Id) -> Id {
        self.flush();
        let snap = Snapshot {
            time: gotime::from_unix_local(1_700_000_000, 0),
            parent: None,
            tree,
            paths: vec!["/forged".into()],
            hostname: "forger".into(),
            username: "forger".into(),
            uid: 0,
            gid: 0,
            excludes: vec![],
            tags: vec![],
            original: None,
            program_version: String::new(),
            summary: None,
        };
        self.repo
            .save_unpacked(FileType::Snapshot, &snap.to_json())
            .expect("save snapshot")
    }

    /// Seals `plain` (the decrypted content, any bytes at all) and stores it as an unpacked
    /// file of `kind`, named by its hash as restic names them. Returns the id.
    pub fn raw_unpacked(&mut self, kind: FileType, plain: &[u8]) -> Id {
        let sealed = self.repo.key.seal(plain);
        let id = Id::hash(&sealed);
        self.repo
            .backend
            .save(&cairn_backend::Handle::new(kind, id.to_hex()), &sealed)
            .expect("save raw file");
        id
    }

    /// A v2 zstd frame (with restic's version byte) that expands to `n` bytes of `fill`.
    pub fn zstd_bomb(n: usize, fill: u8) -> Vec<u8> {
        let mut out = vec![2u8];
        let mut enc = zstd::stream::Encoder::new(&mut out, 19).expect("zstd encoder");
        let chunk = vec![fill; 1 << 20];
        let mut left = n;
        while left > 0 {
            let k = left.min(chunk.len());
            std::io::Write::write_all(&mut enc, &chunk[..k]).expect("compress");
            left -= k;
        }
        enc.finish().expect("finish zstd");
        out
    }
}

/// A chain of `depth` nested directories `d/d/d/...`, the innermost holding `leaf`; returns
/// the root tree.
pub fn deep_chain(f: &mut Forger, depth: usize, leaf: &[Node]) -> Id {
    let mut tree = f.tree(leaf);
    for _ in 0..depth {
        let d = f.dir(b"d", tree);
        tree = f.tree(&[d]);
    }
    tree
}

/// A DAG bomb: `levels` trees, each naming the next one twice (`a` and `b`), so the snapshot
/// names 2^levels paths with only `levels` distinct trees.
pub fn dag_bomb(f: &mut Forger, levels: usize) -> Id {
    let leaf = f.file(b"f", b"x");
    let mut tree = f.tree(&[leaf]);
    for _ in 0..levels {
        let a = f.dir(b"a", tree);
        let b = f.dir(b"b", tree);
        tree = f.tree(&[a, b]);
    }
    tree
}
