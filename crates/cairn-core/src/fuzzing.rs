//! The bodies of cairn's fuzz targets, shared by the libFuzzer targets in `fuzz/` (nightly,
//! `cargo +nightly fuzz run <name>`) and the stable-Rust runner in
//! `crates/cairn-core/tests/fuzz_bodies.rs`, which runs each for a bounded time under a memory
//! limit in CI. Each takes arbitrary bytes; returning is success, a panic (or an abort, or
//! running out of memory) is a bug.
//!
//! Every input comes from whoever can write to the repository, so none of these may trust a
//! length, a count or a compressed size.

use crate::crypto::Key;
use crate::format::pack::{BlobType, PackedBlob};
use crate::format::{gojson, gotime, indexfile, keyfile, limits, pack, snapshot, tree, unpacked};
use crate::index::BlobLocation;
use crate::Id;
use cairn_backend::FileType;

/// A target's body.
pub type Body = fn(&[u8]);

/// Every target, by the name of its libFuzzer binary.
pub const TARGETS: &[(&str, Body)] = &[
    ("tree", tree),
    ("pack_header", pack_header),
    ("index_file", index_file),
    ("snapshot", snapshot),
    ("key_file", key_file),
    ("unpacked", unpacked),
    ("go_strings", go_strings),
    ("zstd_frames", zstd_frames),
    ("blob", blob),
    ("lock_file", lock_file),
];

/// The fixed key the targets that decrypt use (inputs sealed with it pass the MAC).
pub fn fuzz_key() -> Key {
    Key::from_kdf(&[9u8; 64])
}

/// Tree blobs: parse, and anything that parses must re-serialize and parse to the same tree.
pub fn tree(data: &[u8]) {
    if let Ok(t) = tree::Tree::parse(data) {
        let again = tree::Tree::parse(&t.to_json()).expect("re-parse");
        assert_eq!(again.nodes.len(), t.nodes.len());
    }
}

/// Pack headers: the decrypted entry list, and the tail-of-pack reader with a fixed key.
pub fn pack_header(data: &[u8]) {
    let _ = pack::parse_header_plain(data);
    let key = Key::from_kdf(&[7u8; 64]);
    let _ = pack::parse_header_from_tail(&key, data, data.len() as u64);
}

/// Index files, and building an in-memory index from them.
pub fn index_file(data: &[u8]) {
    if let Ok(f) = indexfile::IndexFile::parse(data) {
        let mut idx = crate::index::MasterIndex::new();
        idx.add_file(&f);
        idx.finish();
    }
}

/// Snapshots: anything that parses must re-serialize and parse again.
pub fn snapshot(data: &[u8]) {
    if let Ok(s) = snapshot::Snapshot::parse(data) {
        snapshot::Snapshot::parse(&s.to_json()).expect("re-parse");
    }
}

/// Key files and the master key JSON inside them (scrypt itself is not fuzzed: too slow),
/// and the config.
pub fn key_file(data: &[u8]) {
    let _ = keyfile::KeyFile::parse(data);
    let _ = Key::from_json(data);
    let _ = serde_json::from_slice::<crate::format::config::Config>(data).map(|c| c.validate());
}

/// Unpacked files after decryption (the v2 version byte and zstd payload), and sealed, with
/// the snapshot and lock ceilings (the index one only differs in size, and costs time).
pub fn unpacked(data: &[u8]) {
    if let Ok(out) = unpacked::decode_plain_as(FileType::Snapshot, 2, data.to_vec()) {
        assert!(out.len() <= limits::MAX_SNAPSHOT);
    }
    let _ = unpacked::decode_as(FileType::Lock, 2, &fuzz_key(), data);
}

/// Go-quoted names and RFC 3339 times as restic writes them.
pub fn go_strings(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = gojson::go_unquote_inner(s);
        let _ = gotime::parse_rfc3339(s);
    }
    let q = gojson::go_quote_inner(data);
    assert_eq!(gojson::go_unquote_inner(&q).expect("unquote"), data);
}

/// zstd frames through the bounded decoder, with small ceilings: never more output than the
/// ceiling, whatever the frames declare or expand to.
pub fn zstd_frames(data: &[u8]) {
    const CAP: usize = 256 * 1024;
    if let Ok(out) = limits::decompress_capped(data, CAP, "fuzzed frame") {
        assert!(out.len() <= CAP);
    }
    for v in [1, 2] {
        if let Ok(out) = unpacked::decode_plain_as(FileType::Lock, v, data.to_vec()) {
            assert!(out.len() <= limits::MAX_LOCK_FILE);
        }
        if let Ok(out) = unpacked::decode_plain_as(FileType::Key, v, data.to_vec()) {
            assert!(out.len() <= limits::MAX_KEY_FILE);
        }
    }
}

/// One blob as a pack stores it: byte 0 picks the type and whether it is compressed, bytes
/// 1..5 are the uncompressed length the index declares, the rest is the plaintext (a zstd
/// frame for compressed blobs), sealed here with [`fuzz_key`] so that it reaches the
/// decompressor. The declared length is checked against the ceilings before anything is
/// allocated; a decoded blob is never longer than its ceiling.
pub fn blob(data: &[u8]) {
    if data.len() < 5 {
        return;
    }
    let ty = if data[0] & 1 == 0 {
        BlobType::Data
    } else {
        BlobType::Tree
    };
    let compressed = data[0] & 2 != 0;
    let declared = u32::from_le_bytes(data[1..5].try_into().expect("4 bytes"));
    let plain = &data[5..];
    let key = fuzz_key();
    let sealed = key.seal(plain);
    let loc = BlobLocation {
        pack: Id::hash(b"fuzz"),
        blob: PackedBlob {
            ty,
            // The hash of a frame's output is unknowable here: the check that fails last.
            id: Id::hash(plain),
            offset: 0,
            length: sealed.len() as u32,
            uncompressed_length: if compressed { declared } else { 0 },
        },
    };
    // Big declared lengths within the ceilings only cost an allocation the fuzzer need
    // not repeat: checked, not decompressed.
    if compressed && declared as usize > 4 << 20 && limits::check_blob(&loc.blob).is_ok() {
        return;
    }
    if let Ok(out) = crate::repository::open_blob(&key, &loc, &sealed) {
        assert!(out.len() <= limits::max_blob(ty));
    }
}

/// Lock files after decryption: decoded within the lock ceiling, parsed, and described as
/// `unlock` and the lock messages do.
pub fn lock_file(data: &[u8]) {
    for v in [1, 2] {
        if let Ok(info) = crate::lock::parse_plain(v, data.to_vec()) {
            let _ = info.describe(&Id::hash(data));
            let _ = info.is_stale("fuzz-host");
        }
    }
}
