//! Pack files: encrypted blobs followed by an encrypted header and its 4-byte length.

use crate::crypto::{Key, OVERHEAD};
use crate::Id;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobType {
    Data,
    Tree,
}

impl std::fmt::Display for BlobType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BlobType::Data => "data",
            BlobType::Tree => "tree",
        })
    }
}

/// One blob's place in a pack, as the header and the index describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedBlob {
    pub ty: BlobType,
    pub id: Id,
    pub offset: u32,
    /// Stored (encrypted) length.
    pub length: u32,
    /// Length after decompression; 0 when the blob is not compressed.
    pub uncompressed_length: u32,
}

impl PackedBlob {
    pub fn is_compressed(&self) -> bool {
        self.uncompressed_length != 0
    }
    /// Bytes this blob's entry takes in the pack header.
    pub fn entry_size(&self) -> usize {
        if self.is_compressed() {
            41
        } else {
            37
        }
    }
}

/// Largest header restic accepts, including the length field.
pub const MAX_HEADER_SIZE: u64 = 16 * 1024 * 1024 + 4;
/// How much of a pack's tail to fetch first when reading its header (as restic does).
pub const HEADER_PROBE: u64 = 15 * 41 + 36;

/// The plaintext header for `blobs` in pack order.
pub fn header_plain(blobs: &[PackedBlob]) -> Vec<u8> {
    let mut h = Vec::with_capacity(blobs.len() * 41);
    for b in blobs {
        let ty = match (b.ty, b.is_compressed()) {
            (BlobType::Data, false) => 0u8,
            (BlobType::Tree, false) => 1,
            (BlobType::Data, true) => 2,
            (BlobType::Tree, true) => 3,
        };
        h.push(ty);
        h.extend_from_slice(&b.length.to_le_bytes());
        if b.is_compressed() {
            h.extend_from_slice(&b.uncompressed_length.to_le_bytes());
        }
        h.extend_from_slice(&b.id.0);
    }
    h
}

/// Appends the encrypted header and its length, finishing a pack.
pub fn finish(pack: &mut Vec<u8>, key: &Key, blobs: &[PackedBlob]) {
    let before = pack.len();
    key.seal_into(&header_plain(blobs), pack);
    let hlen = (pack.len() - before) as u32;
    pack.extend_from_slice(&hlen.to_le_bytes());
}

/// Parses a decrypted header; offsets follow from the lengths.
pub fn parse_header_plain(h: &[u8]) -> crate::Result<Vec<PackedBlob>> {
    let mut out = Vec::with_capacity(h.len() / 37);
    let mut pos = 0usize;
    let mut offset: u64 = 0;
    while pos < h.len() {
        let ty = h[pos];
        let (bt, compressed) = match ty {
            0 => (BlobType::Data, false),
            1 => (BlobType::Tree, false),
            2 => (BlobType::Data, true),
            3 => (BlobType::Tree, true),
            t => crate::error::bail!("pack header: invalid blob type {t} at byte {pos}"),
        };
        let need = if compressed { 41 } else { 37 };
        if pos + need > h.len() {
            crate::error::bail!("pack header: truncated entry at byte {pos}");
        }
        let length = u32::from_le_bytes(h[pos + 1..pos + 5].try_into().expect("4 bytes"));
        let (uncompressed_length, id_at) = if compressed {
            (
                u32::from_le_bytes(h[pos + 5..pos + 9].try_into().expect("4 bytes")),
                pos + 9,
            )
        } else {
            (0, pos + 5)
        };
        let id = Id(h[id_at..id_at + 32].try_into().expect("32 bytes"));
        if offset > u32::MAX as u64 {
            crate::error::bail!("pack header: blob offset overflows");
        }
        out.push(PackedBlob {
            ty: bt,
            id,
            offset: offset as u32,
            length,
            uncompressed_length,
        });
        offset += length as u64;
        pos += need;
    }
    Ok(out)
}

/// Reads a pack's header given its tail (`tail` = the last `tail.len()` bytes of a file of
/// `file_size` bytes). Returns `Err(needed)` through `Ok(Err(n))` when the tail is too short
/// and `n` trailing bytes must be fetched.
pub fn parse_header_from_tail(
    key: &Key,
    tail: &[u8],
    file_size: u64,
) -> crate::Result<Result<Vec<PackedBlob>, u64>> {
    if tail.len() < 4 || file_size < 4 {
        crate::error::bail!("pack is too short ({file_size} bytes)");
    }
    let hlen = u32::from_le_bytes(tail[tail.len() - 4..].try_into().expect("4 bytes")) as u64;
    if hlen < OVERHEAD as u64 || hlen > file_size - 4 || hlen + 4 > MAX_HEADER_SIZE {
        crate::error::bail!("pack header length {hlen} is invalid for a file of {file_size} bytes");
    }
    if (tail.len() as u64) < hlen + 4 {
        return Ok(Err(hlen + 4));
    }
    let enc = &tail[tail.len() - 4 - hlen as usize..tail.len() - 4];
    let plain = key
        .open(enc)
        .map_err(|_| anyhow::anyhow!("pack header: decryption failed (damaged or wrong key)"))?;
    let blobs = parse_header_plain(&plain)?;
    let expect = blobs.iter().map(|b| b.length as u64).sum::<u64>()
        + OVERHEAD as u64
        + blobs.iter().map(|b| b.entry_size() as u64).sum::<u64>()
        + 4;
    if expect != file_size {
        crate::error::bail!("pack size {file_size} does not match its header (expected {expect})");
    }
    Ok(Ok(blobs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let key = Key::random();
        let mut pack = Vec::new();
        let mut blobs = Vec::new();
        for (i, (ty, comp)) in [
            (BlobType::Data, false),
            (BlobType::Data, true),
            (BlobType::Tree, true),
        ]
        .into_iter()
        .enumerate()
        {
            let plain = vec![i as u8; 100];
            let offset = pack.len() as u32;
            key.seal_into(&plain, &mut pack);
            blobs.push(PackedBlob {
                ty,
                id: Id::hash(&plain),
                offset,
                length: pack.len() as u32 - offset,
                uncompressed_length: if comp { 100 } else { 0 },
            });
        }
        finish(&mut pack, &key, &blobs);
        let size = pack.len() as u64;
        let got = parse_header_from_tail(&key, &pack, size).unwrap().unwrap();
        assert_eq!(got, blobs);
        // A short tail asks for more.
        let short = &pack[pack.len() - 10..];
        assert!(parse_header_from_tail(&key, short, size).unwrap().is_err());
        // A flipped bit in the header is caught.
        let mut bad = pack.clone();
        let n = bad.len();
        bad[n - 10] ^= 1;
        assert!(parse_header_from_tail(&key, &bad, size).is_err());
        // A wrong size is caught.
        assert!(parse_header_from_tail(&key, &pack, size + 1).is_err());
    }

    #[test]
    fn smallest_pack_is_73_bytes() {
        let key = Key::random();
        let mut pack = Vec::new();
        key.seal_into(b"", &mut pack);
        let blobs = [PackedBlob {
            ty: BlobType::Data,
            id: Id::hash(b""),
            offset: 0,
            length: 32,
            uncompressed_length: 0,
        }];
        finish(&mut pack, &key, &blobs);
        // An empty blob (32 bytes sealed), the sealed 37-byte entry and the length field.
        assert_eq!(pack.len(), 32 + (32 + 37) + 4);
    }
}
