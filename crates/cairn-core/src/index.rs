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
    sorted: bool,
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
        self.sorted = true;
    }

    fn arr(&self, ty: BlobType) -> &[Entry] {
        debug_assert!(self.sorted, "MasterIndex::finish not called");
        match ty {
            BlobType::Data => &self.data,
            BlobType::Tree => &self.tree,
        }
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
        let a = self.arr(ty);
        a.binary_search_by(|e| e.id.cmp(id))
            .ok()
            .map(|i| self.to_loc(ty, &a[i]))
    }

    /// Every stored copy of a blob.
    pub fn lookup_all(&self, ty: BlobType, id: &Id) -> Vec<BlobLocation> {
        let a = self.arr(ty);
        let start = a.partition_point(|e| e.id < *id);
        a[start..]
            .iter()
            .take_while(|e| e.id == *id)
            .map(|e| self.to_loc(ty, e))
            .collect()
    }

    pub fn has(&self, ty: BlobType, id: &Id) -> bool {
        self.arr(ty).binary_search_by(|e| e.id.cmp(id)).is_ok()
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
                l.blob.length as u64 - crate::crypto::OVERHEAD as u64
            }
        })
    }

    /// Bytes of memory held by the entries (for reporting).
    pub fn memory_bytes(&self) -> usize {
        (self.data.capacity() + self.tree.capacity()) * std::mem::size_of::<Entry>()
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
}
