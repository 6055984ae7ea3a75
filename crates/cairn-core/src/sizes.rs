//! Size histograms of a repository's files and blobs (restic 0.18's `stats --mode debug`):
//! decades of bytes (0, 1–9, 10–99, …) up to a limit, and every size above it listed.

use crate::format::pack::BlobType;
use crate::repository::IndexedRepository;
use cairn_backend::FileType;

/// Sizes above twice the largest pack restic writes are listed one by one.
const FILE_LIMIT: u64 = 2 * 128 * 1024 * 1024;
/// Sizes above twice the chunker's largest chunk are listed one by one.
const BLOB_LIMIT: u64 = 2 * 8 * 1024 * 1024;

/// How many sizes fell into each decade.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SizeHistogram {
    pub count: u64,
    pub total: u64,
    /// (lower, upper, count), both bounds inclusive: [0, 0], [1, 9], [10, 99], … with the
    /// last upper bound capped at the limit.
    pub buckets: Vec<(u64, u64, u64)>,
    /// Sizes above the limit, in the order they came.
    pub oversized: Vec<u64>,
}

impl SizeHistogram {
    pub fn new(limit: u64) -> SizeHistogram {
        let mut buckets = vec![(0, 0, 0)];
        let mut lower = 1u64;
        while lower < limit {
            let upper = lower.saturating_mul(10).saturating_sub(1).min(limit);
            buckets.push((lower, upper, 0));
            lower = lower.saturating_mul(10);
        }
        SizeHistogram {
            count: 0,
            total: 0,
            buckets,
            oversized: Vec::new(),
        }
    }

    pub fn add(&mut self, size: u64) {
        self.count += 1;
        self.total = self.total.saturating_add(size);
        match self
            .buckets
            .iter_mut()
            .find(|(lo, hi, _)| (*lo..=*hi).contains(&size))
        {
            Some(b) => b.2 += 1,
            None => self.oversized.push(size),
        }
    }
}

/// The files of each type (keys, locks, index files, packs) and the stored blobs of each
/// type (every index entry, so a blob stored twice counts twice).
pub struct RepositorySizes {
    pub files: Vec<(FileType, SizeHistogram)>,
    pub blobs: Vec<(BlobType, SizeHistogram)>,
}

pub fn collect(repo: &IndexedRepository) -> crate::Result<RepositorySizes> {
    let mut files = Vec::new();
    for ty in [
        FileType::Key,
        FileType::Lock,
        FileType::Index,
        FileType::Data,
    ] {
        let mut h = SizeHistogram::new(FILE_LIMIT);
        for f in repo.backend().list(ty)? {
            h.add(f.size);
        }
        files.push((ty, h));
    }
    let mut blobs = Vec::new();
    let index = repo.index();
    for ty in [BlobType::Data, BlobType::Tree] {
        let mut h = SizeHistogram::new(BLOB_LIMIT);
        for pos in 0..index.blob_count(ty) {
            h.add(u64::from(index.entry(ty, pos).1.length));
        }
        blobs.push((ty, h));
    }
    Ok(RepositorySizes { files, blobs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decades_up_to_the_limit() {
        let mut h = SizeHistogram::new(1500);
        assert_eq!(
            h.buckets.iter().map(|b| (b.0, b.1)).collect::<Vec<_>>(),
            [(0, 0), (1, 9), (10, 99), (100, 999), (1000, 1500)]
        );
        for s in [0, 5, 9, 10, 1500, 1501] {
            h.add(s);
        }
        assert_eq!(
            h.buckets.iter().map(|b| b.2).collect::<Vec<_>>(),
            [1, 2, 1, 0, 1]
        );
        assert_eq!(h.oversized, [1501]);
        assert_eq!((h.count, h.total), (6, 3025));
    }
}
