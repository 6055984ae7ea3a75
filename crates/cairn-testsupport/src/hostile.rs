//! Writes correctly encrypted but hostile objects into a real repository: forged trees
//! (unsafe or duplicate names, unsorted, deep chains, DAG bombs), snapshots pointing at them,
//! and raw unpacked files (snapshots, locks) whose plaintext is anything at all. The forger
//! holds the master key, so everything it writes passes every MAC and hash check: it is what
//! an attacker who can write to the repository (and knows the password) could plant.

use cairn_backend::FileType;
use cairn_core::format::gotime;
use cairn_core::format::pack::BlobType;
use cairn_core::format::snapshot::Snapshot;
use cairn_core::format::tree::{Node, NodeType};
use cairn_core::packer::{BlobWriter, Compression};
use cairn_core::repository::{IndexedRepository, Repository};
use cairn_core::Id;
use std::path::Path;
use std::sync::Arc;

pub struct Forger {
    pub repo: IndexedRepository,
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
        let repo = Repository::open(Arc::from(be), password.as_bytes(), None)
            .expect("open repository")
            .load_index()
            .expect("load index");
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
        let w = BlobWriter::for_repo(&self.repo, Compression::Auto, index);
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
        let sealed = self.repo.key().seal(plain);
        let id = Id::hash(&sealed);
        self.repo
            .backend()
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

/// A v2 zstd payload (restic's version byte 2, then one frame) that expands to `n` bytes of
/// `fill`, built by hand from 128 KiB RLE blocks: 4 bytes per block, so 8 GiB take 256 KiB
/// and no time to make. With `declare`, the frame header states the content size (as
/// restic's and cairn's encoders do); without, a decoder learns it only by decompressing.
pub fn zstd_rle_bomb(n: u64, fill: u8, declare: bool) -> Vec<u8> {
    const BLOCK: u64 = 128 * 1024;
    let mut out = vec![2u8];
    out.extend_from_slice(&0xFD2F_B528u32.to_le_bytes());
    // Frame header descriptor: 8-byte content size, or none; not single-segment, no
    // checksum, no dictionary. Window descriptor: 2^17 (one block).
    out.push(if declare { 0xC0 } else { 0x00 });
    out.push((17 - 10) << 3);
    if declare {
        out.extend_from_slice(&n.to_le_bytes());
    }
    let mut left = n;
    loop {
        let k = left.min(BLOCK);
        left -= k;
        let last = u32::from(left == 0);
        // Block header: last-block bit, type 1 (RLE), size in the upper 21 bits.
        let h = last | (1 << 1) | ((k as u32) << 3);
        out.extend_from_slice(&h.to_le_bytes()[..3]);
        out.push(fill);
        if left == 0 {
            break;
        }
    }
    out
}

impl Forger {
    /// Stores `plain` as one zstd-compressed blob of type `ty` in a pack of its own, whose
    /// pack header and index entry both declare `declared` as its uncompressed length (the
    /// truth being `plain.len()`). Returns (pack id, blob id).
    pub fn blob_declaring(&mut self, ty: BlobType, plain: &[u8], declared: u32) -> (Id, Id) {
        use cairn_core::format::indexfile::{IndexBlob, IndexFile, IndexPack};
        use cairn_core::format::pack::{self, PackedBlob};
        let z = zstd::bulk::compress(plain, 3).expect("compress");
        let mut data = Vec::new();
        self.repo.key().seal_into(&z, &mut data);
        let b = PackedBlob {
            ty,
            id: Id::hash(plain),
            offset: 0,
            length: data.len() as u32,
            uncompressed_length: declared,
        };
        pack::finish(&mut data, self.repo.key(), &[b]);
        let pack_id = Id::hash(&data);
        self.repo
            .backend()
            .save(
                &cairn_backend::Handle::new(FileType::Data, pack_id.to_hex()),
                &data,
            )
            .expect("save pack");
        let idx = IndexFile {
            supersedes: vec![],
            packs: vec![IndexPack {
                id: pack_id,
                blobs: vec![IndexBlob::from_packed(&b)],
            }],
        };
        self.repo
            .save_unpacked(FileType::Index, &idx.to_json())
            .expect("save index");
        self.repo.reload_index().expect("reload index");
        (pack_id, b.id)
    }
}
