//! The checker's view of the index: every entry of every index file, merged as restic merges
//! them (identical entries kept once, anything else kept as listed), in compact sorted arrays.
//!
//! Memory is what matters on large repositories: one 48-byte entry per blob in an array sorted
//! by id (one per blob type), a 4-byte reference per blob in a second order (by pack, then
//! offset) for reading packs, and one bit per blob for "seen" marks. No per-blob heap object.

use crate::format::indexfile::IndexFile;
use crate::format::pack::{BlobType, PackedBlob};
use crate::id::HEX;
use crate::index::Fanout;
use crate::Id;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// An id parsed from 64 hex digits with a table (index files hold a million of them; this is
/// several times faster than a general hex decoder).
#[derive(Clone, Copy)]
pub(crate) struct HexId(pub Id);

/// Parses 64 hex digits.
pub(crate) fn parse_hex_id(s: &[u8]) -> Option<Id> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let (hi, lo) = (HEX[pair[0] as usize], HEX[pair[1] as usize]);
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 0x0f);
    }
    (bad & 0xf0 == 0).then_some(Id(out))
}

impl<'de> serde::Deserialize<'de> for HexId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<HexId, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = HexId;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an id of 64 hex digits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HexId, E> {
                parse_hex_id(v.as_bytes())
                    .map(HexId)
                    .ok_or_else(|| E::custom(format!("invalid id {v:?}")))
            }
        }
        d.deserialize_str(V)
    }
}

/// An index file as the checker reads it (the same JSON as
/// [`crate::format::indexfile::IndexFile`], unknown keys ignored).
#[derive(serde::Deserialize)]
pub(crate) struct RawIndex {
    #[serde(default)]
    pub packs: Vec<RawPack>,
}

#[derive(serde::Deserialize)]
pub(crate) struct RawPack {
    pub id: HexId,
    #[serde(default)]
    pub blobs: Vec<RawBlob>,
}

#[derive(serde::Deserialize)]
pub(crate) struct RawBlob {
    pub id: HexId,
    #[serde(rename = "type")]
    pub ty: BlobType,
    pub offset: u32,
    pub length: u32,
    #[serde(default)]
    pub uncompressed_length: u32,
}

impl RawIndex {
    /// Parses an index file; the flag says whether it has the old format (a top-level array of
    /// packs, which restic 0.14 still reads).
    pub fn parse(json: &[u8]) -> serde_json::Result<(RawIndex, bool)> {
        if json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            let packs: Vec<RawPack> = serde_json::from_slice(json)?;
            return Ok((RawIndex { packs }, true));
        }
        Ok((serde_json::from_slice(json)?, false))
    }
}

impl From<&IndexFile> for RawIndex {
    fn from(f: &IndexFile) -> RawIndex {
        RawIndex {
            packs: f
                .packs
                .iter()
                .map(|p| RawPack {
                    id: HexId(p.id),
                    blobs: p
                        .blobs
                        .iter()
                        .map(|b| RawBlob {
                            id: HexId(b.id),
                            ty: b.ty,
                            offset: b.offset,
                            length: b.length,
                            uncompressed_length: b.uncompressed_length,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// The first 8 bytes of an id as a number: ids are random, so this decides nearly every
/// comparison without a call to memcmp.
#[inline]
fn lead(id: &Id) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&id.0[..8]);
    u64::from_be_bytes(b)
}

#[inline]
fn cmp_ids(a: &Id, b: &Id) -> std::cmp::Ordering {
    lead(a).cmp(&lead(b)).then_with(|| a.cmp(b))
}

/// One index entry. The pack is a position in [`CheckIndex::packs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Entry {
    pub id: Id,
    pub pack: u32,
    pub offset: u32,
    pub length: u32,
    pub ulen: u32,
}

impl Entry {
    pub fn to_packed(self, ty: BlobType) -> PackedBlob {
        PackedBlob {
            ty,
            id: self.id,
            offset: self.offset,
            length: self.length,
            uncompressed_length: self.ulen,
        }
    }

    /// Size of this blob's entry in the pack header.
    fn header_entry_size(&self) -> u64 {
        if self.ulen != 0 {
            41
        } else {
            37
        }
    }
}

/// A pack as the index files describe it.
#[derive(Clone, Debug)]
pub(crate) struct PackMeta {
    pub id: Id,
    /// The file size the index implies, as restic computes it: the blobs' lengths plus their
    /// header entries plus 36 (header encryption overhead and the length field).
    pub size: u64,
    pub blobs: u32,
    pub has_data: bool,
    pub has_tree: bool,
    /// The index files that list this pack (positions in [`CheckIndex::files`]).
    pub files: Vec<u32>,
    /// The most entries one index file lists for this pack. When several files list the pack
    /// and the merged entries outnumber this, the files disagree about its contents.
    pub max_listed: u32,
}

impl PackMeta {
    /// A pack no index entry has been merged into yet.
    fn new(id: Id) -> PackMeta {
        PackMeta {
            id,
            size: 0,
            blobs: 0,
            has_data: false,
            has_tree: false,
            files: Vec::new(),
            max_listed: 0,
        }
    }
}

/// A fixed-size set of bits that threads can set concurrently.
pub(crate) struct Bits(Vec<AtomicU64>);

impl Bits {
    pub fn new(n: usize) -> Bits {
        Bits((0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect())
    }

    /// Sets bit `i`; returns whether it was set before.
    pub fn set(&self, i: usize) -> bool {
        let mask = 1u64 << (i % 64);
        self.0[i / 64].fetch_or(mask, Ordering::Relaxed) & mask != 0
    }

    pub fn get(&self, i: usize) -> bool {
        self.0[i / 64].load(Ordering::Relaxed) & (1u64 << (i % 64)) != 0
    }
}

fn slot(ty: BlobType) -> usize {
    match ty {
        BlobType::Data => 0,
        BlobType::Tree => 1,
    }
}

const TYPES: [BlobType; 2] = [BlobType::Data, BlobType::Tree];
const TREE_BIT: u32 = 1 << 31;

/// Collects index files one at a time; [`IndexBuilder::finish`] merges them.
#[derive(Default)]
pub(crate) struct IndexBuilder {
    files: Vec<Id>,
    packs: Vec<PackMeta>,
    pack_no: HashMap<Id, u32>,
    arrays: [Vec<Entry>; 2],
}

impl IndexBuilder {
    pub fn add_file(&mut self, file: Id, f: &RawIndex) {
        let file_no = self.files.len() as u32;
        self.files.push(file);
        for p in &f.packs {
            let pid = p.id.0;
            // restic knows packs only through their blobs: a pack listed without blobs does
            // not count as indexed.
            if p.blobs.is_empty() {
                continue;
            }
            let next = self.packs.len() as u32;
            let no = *self.pack_no.entry(pid).or_insert(next);
            if no == next {
                self.packs.push(PackMeta::new(pid));
            }
            let meta = &mut self.packs[no as usize];
            if meta.files.last() != Some(&file_no) {
                meta.files.push(file_no);
            }
            meta.max_listed = meta.max_listed.max(p.blobs.len() as u32);
            for b in &p.blobs {
                self.arrays[slot(b.ty)].push(Entry {
                    id: b.id.0,
                    pack: no,
                    offset: b.offset,
                    length: b.length,
                    ulen: b.uncompressed_length,
                });
            }
        }
    }

    pub fn finish(self) -> CheckIndex {
        let IndexBuilder {
            files,
            mut packs,
            pack_no: _,
            mut arrays,
        } = self;
        // Packs in id order, so that a pack's position can be found by binary search.
        let mut order: Vec<u32> = (0..packs.len() as u32).collect();
        order.sort_unstable_by_key(|&i| packs[i as usize].id);
        let mut remap = vec![0u32; packs.len()];
        for (new, &old) in order.iter().enumerate() {
            remap[old as usize] = new as u32;
        }
        let mut sorted_packs = Vec::with_capacity(packs.len());
        for &old in &order {
            sorted_packs.push(std::mem::replace(
                &mut packs[old as usize],
                PackMeta::new(Id::default()),
            ));
        }
        drop(packs);
        let mut packs = sorted_packs;
        for arr in arrays.iter_mut() {
            for e in arr.iter_mut() {
                e.pack = remap[e.pack as usize];
            }
            // Identical entries (the same pack listed by several index files) count once.
            arr.sort_unstable_by(|a, b| cmp_ids(&a.id, &b.id).then_with(|| a.cmp(b)));
            arr.dedup();
            arr.shrink_to_fit();
        }
        for (s, arr) in arrays.iter().enumerate() {
            for e in arr {
                let p = &mut packs[e.pack as usize];
                p.blobs += 1;
                p.size += e.length as u64 + e.header_entry_size();
                if s == 0 {
                    p.has_data = true;
                } else {
                    p.has_tree = true;
                }
            }
        }
        for p in packs.iter_mut() {
            p.size += 36;
        }
        // References in (pack, offset) order: a counting sort by pack, then each pack's
        // (small) run sorted by offset.
        let mut pack_start = Vec::with_capacity(packs.len() + 1);
        let mut acc = 0u32;
        for p in &packs {
            pack_start.push(acc);
            acc += p.blobs;
        }
        pack_start.push(acc);
        let mut fill = pack_start.clone();
        let mut by_pack = vec![0u32; acc as usize];
        for (s, arr) in arrays.iter().enumerate() {
            let bit = if s == 1 { TREE_BIT } else { 0 };
            for (i, e) in arr.iter().enumerate() {
                let at = &mut fill[e.pack as usize];
                by_pack[*at as usize] = i as u32 | bit;
                *at += 1;
            }
        }
        let key = |r: u32| {
            let e = &arrays[(r >> 31) as usize][(r & !TREE_BIT) as usize];
            (e.offset, e.length, r)
        };
        for w in pack_start.windows(2) {
            by_pack[w[0] as usize..w[1] as usize].sort_unstable_by_key(|&r| key(r));
        }
        let fanout = [
            Fanout::build(&arrays[0], |e| &e.id),
            Fanout::build(&arrays[1], |e| &e.id),
        ];
        let marks = [Bits::new(arrays[0].len()), Bits::new(arrays[1].len())];
        CheckIndex {
            files,
            packs,
            arrays,
            fanout,
            by_pack,
            pack_start,
            marks,
        }
    }
}

pub(crate) struct CheckIndex {
    /// Index files that were loaded, in load order.
    pub files: Vec<Id>,
    /// Every pack some index file lists with at least one blob, sorted by id.
    pub packs: Vec<PackMeta>,
    arrays: [Vec<Entry>; 2],
    fanout: [Fanout; 2],
    by_pack: Vec<u32>,
    pack_start: Vec<u32>,
    marks: [Bits; 2],
}

impl CheckIndex {
    pub fn pack_no(&self, id: &Id) -> Option<usize> {
        self.packs.binary_search_by(|p| p.id.cmp(id)).ok()
    }

    /// Positions (in the array of `ty`) of every entry for `id`.
    pub fn find(&self, ty: BlobType, id: &Id) -> std::ops::Range<usize> {
        let s = slot(ty);
        let r = self.fanout[s].range(id);
        let arr = &self.arrays[s][r.clone()];
        let lo = arr.partition_point(|e| cmp_ids(&e.id, id).is_lt());
        let hi = lo + arr[lo..].partition_point(|e| e.id == *id);
        r.start + lo..r.start + hi
    }

    pub fn entry(&self, ty: BlobType, i: usize) -> &Entry {
        &self.arrays[slot(ty)][i]
    }

    /// Marks a blob as reached (by its first entry); returns whether it was marked before.
    pub fn mark(&self, ty: BlobType, first: usize) -> bool {
        self.marks[slot(ty)].set(first)
    }

    /// The entries of one pack in offset order.
    pub fn pack_entries(&self, pack: usize) -> impl Iterator<Item = (BlobType, &Entry)> + '_ {
        let (a, b) = (self.pack_start[pack], self.pack_start[pack + 1]);
        self.by_pack[a as usize..b as usize].iter().map(|&r| {
            let s = (r >> 31) as usize;
            (TYPES[s], &self.arrays[s][(r & !TREE_BIT) as usize])
        })
    }

    pub fn blob_count(&self) -> usize {
        self.arrays[0].len() + self.arrays[1].len()
    }

    /// Blobs no snapshot reaches (by the marks set while walking the trees), in id order.
    pub fn unused(&self) -> Vec<(BlobType, Id)> {
        let mut out = Vec::new();
        for (s, arr) in self.arrays.iter().enumerate() {
            let mut i = 0;
            while i < arr.len() {
                let id = arr[i].id;
                if !self.marks[s].get(i) {
                    out.push((TYPES[s], id));
                }
                while i < arr.len() && arr[i].id == id {
                    i += 1;
                }
            }
        }
        out
    }

    /// Blobs stored in more than one pack, with those packs.
    pub fn duplicates(&self) -> Vec<(BlobType, Id, Vec<Id>)> {
        let mut out = Vec::new();
        for (s, arr) in self.arrays.iter().enumerate() {
            let mut i = 0;
            while i < arr.len() {
                let id = arr[i].id;
                let mut j = i;
                while j < arr.len() && arr[j].id == id {
                    j += 1;
                }
                let mut packs: Vec<Id> = arr[i..j]
                    .iter()
                    .map(|e| self.packs[e.pack as usize].id)
                    .collect();
                packs.dedup();
                if packs.len() > 1 {
                    out.push((TYPES[s], id, packs));
                }
                i = j;
            }
        }
        out
    }

    /// Bytes held by the arrays (for reports and tests).
    pub fn memory_bytes(&self) -> usize {
        (self.arrays[0].capacity() + self.arrays[1].capacity()) * std::mem::size_of::<Entry>()
            + self.by_pack.capacity() * 4
            + self.pack_start.capacity() * 4
            + self.fanout[0].memory_bytes()
            + self.fanout[1].memory_bytes()
            + (self.marks[0].0.capacity() + self.marks[1].0.capacity()) * 8
            + self.packs.capacity() * std::mem::size_of::<PackMeta>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::indexfile::{IndexBlob, IndexPack};

    fn blob(ty: BlobType, n: u8, offset: u32, length: u32, ulen: u32) -> IndexBlob {
        IndexBlob {
            id: Id([n; 32]),
            ty,
            offset,
            length,
            uncompressed_length: ulen,
        }
    }

    fn file(packs: Vec<(u8, Vec<IndexBlob>)>) -> IndexFile {
        IndexFile {
            supersedes: vec![],
            packs: packs
                .into_iter()
                .map(|(p, blobs)| IndexPack {
                    id: Id([p; 32]),
                    blobs,
                })
                .collect(),
        }
    }

    #[test]
    fn merges_identical_listings_and_computes_sizes() {
        let a = file(vec![
            (
                9,
                vec![
                    blob(BlobType::Data, 1, 0, 100, 0),
                    blob(BlobType::Data, 2, 100, 50, 80),
                ],
            ),
            (3, vec![blob(BlobType::Tree, 7, 0, 60, 0)]),
            (4, vec![]),
        ]);
        // The same pack 9 again, identical, in a second file; and pack 5 mixed.
        let b = file(vec![
            (
                9,
                vec![
                    blob(BlobType::Data, 2, 100, 50, 80),
                    blob(BlobType::Data, 1, 0, 100, 0),
                ],
            ),
            (
                5,
                vec![
                    blob(BlobType::Tree, 8, 0, 40, 0),
                    blob(BlobType::Data, 1, 40, 100, 0),
                ],
            ),
        ]);
        let mut bld = IndexBuilder::default();
        bld.add_file(Id([0xa0; 32]), &(&a).into());
        bld.add_file(Id([0xb0; 32]), &(&b).into());
        let idx = bld.finish();
        // Pack 4 has no blobs: not indexed. Packs sorted by id.
        let ids: Vec<u8> = idx.packs.iter().map(|p| p.id.0[0]).collect();
        assert_eq!(ids, vec![3, 5, 9]);
        let p9 = &idx.packs[idx.pack_no(&Id([9; 32])).unwrap()];
        assert_eq!(p9.blobs, 2);
        assert_eq!(p9.size, 100 + 37 + 50 + 41 + 36);
        assert_eq!(p9.files, vec![0, 1]);
        assert_eq!(p9.max_listed, 2);
        let p5 = &idx.packs[idx.pack_no(&Id([5; 32])).unwrap()];
        assert!(p5.has_data && p5.has_tree);
        // Pack entries come in offset order.
        let offs: Vec<(BlobType, u32)> = idx
            .pack_entries(idx.pack_no(&Id([5; 32])).unwrap())
            .map(|(t, e)| (t, e.offset))
            .collect();
        assert_eq!(offs, vec![(BlobType::Tree, 0), (BlobType::Data, 40)]);
        // Blob 1 is in two packs; blob 2 once after merging.
        assert_eq!(idx.find(BlobType::Data, &Id([1; 32])).len(), 2);
        assert_eq!(idx.find(BlobType::Data, &Id([2; 32])).len(), 1);
        assert!(idx.find(BlobType::Tree, &Id([1; 32])).is_empty());
        assert_eq!(idx.blob_count(), 5);
        let dups = idx.duplicates();
        assert_eq!(dups.len(), 1);
        assert_eq!(dups[0].1, Id([1; 32]));
        // Marks: everything unused until reached.
        assert_eq!(idx.unused().len(), 4);
        let r = idx.find(BlobType::Data, &Id([1; 32]));
        assert!(!idx.mark(BlobType::Data, r.start));
        assert!(idx.mark(BlobType::Data, r.start));
        let unused: Vec<Id> = idx.unused().into_iter().map(|(_, id)| id).collect();
        assert_eq!(unused, vec![Id([2; 32]), Id([7; 32]), Id([8; 32])]);
    }

    #[test]
    fn conflicting_listings_stay_visible() {
        let a = file(vec![(9, vec![blob(BlobType::Data, 1, 0, 100, 0)])]);
        let b = file(vec![(9, vec![blob(BlobType::Data, 1, 0, 101, 0)])]);
        let mut bld = IndexBuilder::default();
        bld.add_file(Id([0xa0; 32]), &(&a).into());
        bld.add_file(Id([0xb0; 32]), &(&b).into());
        let idx = bld.finish();
        let p = &idx.packs[0];
        assert_eq!(p.blobs, 2);
        assert!(p.blobs > p.max_listed);
    }

    #[test]
    fn hex_ids_parse_like_the_general_decoder() {
        let id = Id::hash(b"x");
        assert_eq!(parse_hex_id(id.to_hex().as_bytes()), Some(id));
        assert_eq!(
            parse_hex_id(id.to_hex().to_uppercase().as_bytes()),
            Some(id)
        );
        assert_eq!(parse_hex_id(&id.to_hex().as_bytes()[1..]), None);
        for bad in [b'g', b'/', b':', b'@', b'G', b' ', 0xff] {
            let mut h = id.to_hex().into_bytes();
            h[17] = bad;
            assert_eq!(parse_hex_id(&h), None, "{bad}");
        }
        let (raw, old) = RawIndex::parse(
            br#"{"supersedes":[],"packs":[{"id":"73d04e6125cf3c28a299cc2f3cca3b78ceac396e4fcf9575e34536b26782413c","blobs":[{"id":"3ec79977ef0cf5de7b08cd12b874cd0f62bbaf7f07f3497a5b1bbcc8cb39b1ce","type":"data","offset":0,"length":38,"uncompressed_length":10,"x":1}]}]}"#,
        )
        .unwrap();
        assert!(!old);
        assert_eq!(raw.packs[0].blobs[0].uncompressed_length, 10);
        let (raw, old) = RawIndex::parse(
            br#" [{"id":"73d04e6125cf3c28a299cc2f3cca3b78ceac396e4fcf9575e34536b26782413c","blobs":[]}]"#,
        )
        .unwrap();
        assert!(old && raw.packs.len() == 1);
        assert!(RawIndex::parse(br#"{"packs":[{"id":"73d0","blobs":[]}]}"#).is_err());
    }

    proptest::proptest! {
        /// Lookups through the fan-out table agree with a plain scan.
        #[test]
        fn find_agrees_with_a_scan(
            ids in proptest::collection::vec(0u8..40, 0..300),
        ) {
            let blobs: Vec<IndexBlob> = ids
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    let mut id = [n; 32];
                    id[31] = (i % 3) as u8;
                    IndexBlob { id: Id(id), ty: BlobType::Data, offset: i as u32 * 10, length: 10, uncompressed_length: 0 }
                })
                .collect();
            let mut bld = IndexBuilder::default();
            bld.add_file(Id([1; 32]), &(&IndexFile { supersedes: vec![], packs: vec![IndexPack { id: Id([2; 32]), blobs: blobs.clone() }] }).into());
            let idx = bld.finish();
            for b in &blobs {
                let want = blobs.iter().filter(|x| x.id == b.id).count();
                proptest::prop_assert_eq!(idx.find(BlobType::Data, &b.id).len(), want);
            }
            proptest::prop_assert!(idx.find(BlobType::Data, &Id([99; 32])).is_empty());
        }
    }
}
