//! Every parser of repository data, fed random and mutated input on stable Rust: errors are
//! fine, panics are not. (The fuzz/ crate runs the same parsers under libFuzzer.)

use cairn_core::crypto::Key;
use cairn_core::format::{
    gojson, gotime, indexfile::IndexFile, keyfile::KeyFile, pack, snapshot::Snapshot, tree::Tree,
    unpacked,
};
use proptest::prelude::*;

const TREE: &[u8] = br#"{"nodes":[{"name":"a\\\"b\\xff","type":"file","mode":420,"mtime":"2023-01-02T03:04:05.123456789+01:00","atime":"2023-01-02T03:04:05Z","ctime":"2023-01-02T03:04:05Z","uid":1,"gid":2,"size":5,"links":1,"content":["f2ca1bb6c7e907d06dafe4687e579fce76b37e4e93b7605022da52e6ccc26fd2"]},{"name":"d","type":"dir","mtime":"2023-01-02T03:04:05Z","atime":"2023-01-02T03:04:05Z","ctime":"2023-01-02T03:04:05Z","uid":0,"gid":0,"content":null,"subtree":"f2ca1bb6c7e907d06dafe4687e579fce76b37e4e93b7605022da52e6ccc26fd2","extended_attributes":[{"name":"user.a","value":"eQ=="}]}]}"#;
const INDEX: &[u8] = br#"{"packs":[{"id":"73d04e6125cf3c28a299cc2f3cca3b78ceac396e4fcf9575e34536b26782413c","blobs":[{"id":"3ec79977ef0cf5de7b08cd12b874cd0f62bbaf7f07f3497a5b1bbcc8cb39b1ce","type":"data","offset":0,"length":38,"uncompressed_length":10}]}]}"#;
const SNAP: &[u8] = br#"{"time":"2015-05-04T22:19:14.185427263+02:00","tree":"2b1fd8c8b1bd6e5fcbd9e5fd26e6a6cf8d3d3e86e5c2b56d63e59ef05fd0ab35","paths":["/x"],"hostname":"h","tags":["a"]}"#;
const KEY: &[u8] = br#"{"created":"2015-05-04T22:19:14Z","username":"u","hostname":"h","kdf":"scrypt","N":1024,"r":8,"p":1,"salt":"AAAA","data":"AAAA"}"#;

fn all_parsers(data: &[u8]) {
    if let Ok(t) = Tree::parse(data) {
        let _ = Tree::parse(&t.to_json()).expect("a parsed tree re-parses");
    }
    let _ = IndexFile::parse(data);
    if let Ok(s) = Snapshot::parse(data) {
        let _ = Snapshot::parse(&s.to_json()).expect("a parsed snapshot re-parses");
    }
    let _ = KeyFile::parse(data);
    let _ = Key::from_json(data);
    let _ = pack::parse_header_plain(data);
    let key = Key::from_kdf(&[7u8; 64]);
    let _ = pack::parse_header_from_tail(&key, data, data.len() as u64);
    let _ = unpacked::decode_plain(2, data.to_vec());
    let _ = unpacked::decode(2, &key, data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = gojson::go_unquote_inner(s);
        let _ = gotime::parse_rfc3339(s);
    }
}

fn mutate(base: &[u8], flips: &[(usize, u8)], cut: usize) -> Vec<u8> {
    let mut v = base.to_vec();
    for (i, b) in flips {
        if !v.is_empty() {
            let n = v.len();
            v[i % n] = *b;
        }
    }
    v.truncate(cut.min(v.len()));
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        all_parsers(&data);
    }

    #[test]
    fn mutated_valid_inputs(which in 0usize..4, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6), cut in 0usize..4096) {
        let base = [TREE, INDEX, SNAP, KEY][which];
        all_parsers(&mutate(base, &flips, cut));
    }

    #[test]
    fn pack_header_entries(entries in proptest::collection::vec((0u8..5, any::<u32>(), any::<u32>(), any::<[u8; 32]>()), 0..20)) {
        let mut h = Vec::new();
        for (t, a, b, id) in entries {
            h.push(t);
            h.extend_from_slice(&a.to_le_bytes());
            if t >= 2 { h.extend_from_slice(&b.to_le_bytes()); }
            h.extend_from_slice(&id);
        }
        let _ = pack::parse_header_plain(&h);
    }
}

#[test]
fn valid_seeds_parse() {
    assert!(Tree::parse(TREE).is_ok());
    assert!(IndexFile::parse(INDEX).is_ok());
    assert!(Snapshot::parse(SNAP).is_ok());
    assert!(KeyFile::parse(KEY).is_ok());
}
