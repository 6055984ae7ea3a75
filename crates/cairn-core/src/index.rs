//! The in-memory index: where every blob lives.
//!
//! Kept as sorted arrays of fixed-size entries (48 bytes each, one array per blob type) rather
//! than a map of heap objects: memory on large repositories is restic's best-known weakness.

use crate::format::indexfile::IndexFile;
use crate::format::pack::{BlobType, PackedBlob};
use crate::Id;

#[derive(Clone, Copy, Debug)]
struct Entry {
    id: Id,
    pack: u32,
    offset: u32,
    length: u32,
    uncompressed_length: u32,
}

/// Where one blob is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: Id,
    pub blob: PackedBlob,
}

#[derive(Default)]
pub struct MasterIndex {
    packs: Vec<Id>,
    data: Vec<Entry>,
    tree: Vec<Entry>,
    data_fanout: Fanout,
    tree_fanout: Fanout,
    sorted: bool,
}

/// Where each leading-bits prefix starts in a sorted array. Ids are uniformly random, so with
/// about four entries per prefix a lookup compares a handful of ids instead of ~20 (lookups
/// of every blob of every unchanged file are what a no-change backup spends its time on).
/// Costs 4 bytes per 4 entries: 1/48 of the entries' memory.
#[derive(Default)]
pub(crate) struct Fanout {
    bits: u32,
    starts: Vec<u32>,
}

impl Fanout {
    /// The table for `entries`, sorted by the id `id_of` gives.
    pub(crate) fn build<T>(entries: &[T], id_of: impl Fn(&T) -> &Id) -> Fanout {
        let bits = (entries.len() / 4).max(1).ilog2().min(24);
        let mut starts = Vec::with_capacity((1 << bits) + 1);
        let mut i = 0;
        for prefix in 0..(1u64 << bits) {
            while i < entries.len() && Fanout::prefix_of(bits, id_of(&entries[i])) < prefix {
                i += 1;
            }
            starts.push(i as u32);
        }
        starts.push(entries.len() as u32);
        Fanout { bits, starts }
    }

    fn prefix_of(bits: u32, id: &Id) -> u64 {
        if bits == 0 {
            return 0;
        }
        let lead = u64::from_be_bytes([
            id.0[0], id.0[1], id.0[2], id.0[3], id.0[4], id.0[5], id.0[6], id.0[7],
        ]);
        lead >> (64 - bits)
    }

    /// Bytes it holds.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.starts.capacity() * 4
    }

    /// Where entries with `id` can be in the sorted array.
    pub(crate) fn range(&self, id: &Id) -> std::ops::Range<usize> {
        let p = Fanout::prefix_of(self.bits, id) as usize;
        match (self.starts.get(p), self.starts.get(p + 1)) {
            (Some(&a), Some(&b)) => a as usize..b as usize,
            _ => 0..0,
        }
    }
}

impl MasterIndex {
    pub fn new() -> MasterIndex {
        MasterIndex::default()
    }

    /// Adds every entry of an index file. Call [`MasterIndex::finish`] before lookups.
    pub fn add_file(&mut self, f: &IndexFile) {
        for p in &f.packs {
            self.add_pack(p.id, p.blobs.iter().map(|b| b.to_packed()));
        }
    }

    pub fn add_pack(&mut self, pack: Id, blobs: impl IntoIterator<Item = PackedBlob>) {
        let pi = self.packs.len() as u32;
        self.packs.push(pack);
        for b in blobs {
            let e = Entry {
                id: b.id,
                pack: pi,
                offset: b.offset,
                length: b.length,
                uncompressed_length: b.uncompressed_length,
            };
            match b.ty {
                BlobType::Data => self.data.push(e),
                BlobType::Tree => self.tree.push(e),
            }
        }
        self.sorted = false;
    }

    /// Sorts the arrays; duplicates (a blob in several packs) are kept, lookups return one.
    pub fn finish(&mut self) {
        self.data.sort_unstable_by_key(|e| e.id);
        self.tree.sort_unstable_by_key(|e| e.id);
        self.data.shrink_to_fit();
        self.tree.shrink_to_fit();
        self.data_fanout = Fanout::build(&self.data, |e| &e.id);
        self.tree_fanout = Fanout::build(&self.tree, |e| &e.id);
        self.sorted = true;
    }

    fn arr(&self, ty: BlobType) -> &[Entry] {
        debug_assert!(self.sorted, "MasterIndex::finish not called");
        match ty {
            BlobType::Data => &self.data,
            BlobType::Tree => &self.tree,
        }
    }

    /// The entries that may hold `id`: those sharing its leading bits.
    fn candidates(&self, ty: BlobType, id: &Id) -> &[Entry] {
        let (arr, fanout) = match ty {
            BlobType::Data => (&self.data, &self.data_fanout),
            BlobType::Tree => (&self.tree, &self.tree_fanout),
        };
        debug_assert!(self.sorted, "MasterIndex::finish not called");
        arr.get(fanout.range(id)).unwrap_or(&[])
    }

    fn to_loc(&self, ty: BlobType, e: &Entry) -> BlobLocation {
        BlobLocation {
            pack: self.packs[e.pack as usize],
            blob: PackedBlob {
                ty,
                id: e.id,
                offset: e.offset,
                length: e.length,
                uncompressed_length: e.uncompressed_length,
            },
        }
    }

    pub fn lookup(&self, ty: BlobType, id: &Id) -> Option<BlobLocation> {
        let a = self.candidates(ty, id);
        a.binary_search_by(|e| e.id.cmp(id))
            .ok()
            .map(|i| self.to_loc(ty, &a[i]))
    }

    /// Every stored copy of a blob.
    pub fn lookup_all(&self, ty: BlobType, id: &Id) -> Vec<BlobLocation> {
        let a = self.candidates(ty, id);
        let start = a.partition_point(|e| e.id < *id);
        a[start..]
            .iter()
            .take_while(|e| e.id == *id)
            .map(|e| self.to_loc(ty, e))
            .collect()
    }

    pub fn has(&self, ty: BlobType, id: &Id) -> bool {
        self.candidates(ty, id)
            .binary_search_by(|e| e.id.cmp(id))
            .is_ok()
    }

    /// Positions (in [`MasterIndex::entry`] numbering) of every stored copy of a blob.
    pub fn copies(&self, ty: BlobType, id: &Id) -> std::ops::Range<usize> {
        let fanout = match ty {
            BlobType::Data => &self.data_fanout,
            BlobType::Tree => &self.tree_fanout,
        };
        let range = fanout.range(id);
        let a = self.candidates(ty, id);
        let start = a.partition_point(|e| e.id < *id);
        let end = start + a[start..].iter().take_while(|e| e.id == *id).count();
        range.start + start..range.start + end
    }

    /// The entry at a position (0..blob_count): the pack's number and the blob.
    pub fn entry(&self, ty: BlobType, pos: usize) -> (u32, PackedBlob) {
        let e = &self.arr(ty)[pos];
        (
            e.pack,
            PackedBlob {
                ty,
                id: e.id,
                offset: e.offset,
                length: e.length,
                uncompressed_length: e.uncompressed_length,
            },
        )
    }

    /// Every pack the index knows, numbered as [`MasterIndex::entry`] numbers them. A pack
    /// listed in several index files appears once per listing.
    pub fn pack_ids(&self) -> &[Id] {
        &self.packs
    }

    pub fn blob_count(&self, ty: BlobType) -> usize {
        self.arr(ty).len()
    }

    pub fn pack_count(&self) -> usize {
        self.packs.len()
    }

    /// Plaintext size of a blob as the index knows it (for file sizes without reading data).
    pub fn plain_size(&self, ty: BlobType, id: &Id) -> Option<u64> {
        self.lookup(ty, id).map(|l| {
            if l.blob.uncompressed_length != 0 {
                l.blob.uncompressed_length as u64
            } else {
                // A hostile index may declare less than the encryption overhead.
                (l.blob.length as u64).saturating_sub(crate::crypto::OVERHEAD as u64)
            }
        })
    }

    /// Bytes of memory held by the entries (for reporting).
    pub fn memory_bytes(&self) -> usize {
        (self.data.capacity() + self.tree.capacity()) * std::mem::size_of::<Entry>()
            + (self.data_fanout.starts.capacity() + self.tree_fanout.starts.capacity()) * 4
            + self.packs.capacity() * 32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pb(ty: BlobType, n: u8, off: u32) -> PackedBlob {
        PackedBlob {
            ty,
            id: Id([n; 32]),
            offset: off,
            length: 50,
            uncompressed_length: 0,
        }
    }

    #[test]
    fn lookups() {
        let mut m = MasterIndex::new();
        m.add_pack(
            Id([1; 32]),
            [pb(BlobType::Data, 9, 0), pb(BlobType::Tree, 8, 50)],
        );
        m.add_pack(
            Id([2; 32]),
            [pb(BlobType::Data, 7, 0), pb(BlobType::Data, 9, 50)],
        );
        m.finish();
        assert_eq!(std::mem::size_of::<Entry>(), 48);
        assert!(m.has(BlobType::Data, &Id([7; 32])));
        assert!(!m.has(BlobType::Tree, &Id([7; 32])));
        assert_eq!(
            m.lookup(BlobType::Tree, &Id([8; 32])).unwrap().pack,
            Id([1; 32])
        );
        assert_eq!(m.lookup_all(BlobType::Data, &Id([9; 32])).len(), 2);
        assert_eq!(m.plain_size(BlobType::Data, &Id([7; 32])), Some(18));
        assert!(m.lookup(BlobType::Data, &Id([3; 32])).is_none());
    }

    proptest::proptest! {
        /// The fan-out table finds exactly what a plain search of the sorted entries finds.
        #[test]
        fn fanout_lookups_agree_with_a_full_search(
            ids in proptest::collection::vec(proptest::array::uniform32(0u8..), 0..600),
            probes in proptest::collection::vec(proptest::array::uniform32(0u8..), 0..50),
        ) {
            // A third of the blobs stored twice, as after an interrupted backup.
            let mut ids = ids;
            ids.extend(ids.clone().into_iter().take(ids.len() / 3));
            let mut m = MasterIndex::new();
            m.add_pack(Id([0; 32]), ids.iter().enumerate().map(|(i, id)| PackedBlob {
                ty: BlobType::Data,
                id: Id(*id),
                offset: i as u32,
                length: 40,
                uncompressed_length: 0,
            }));
            m.finish();
            for id in ids.iter().chain(probes.iter()) {
                let want = ids.iter().filter(|x| *x == id).count();
                proptest::prop_assert_eq!(m.has(BlobType::Data, &Id(*id)), want > 0);
                proptest::prop_assert_eq!(m.lookup_all(BlobType::Data, &Id(*id)).len(), want);
            }
        }
    }
}
