//! Index files (`index/<id>`): which blobs live in which pack, at which offset.

use crate::format::pack::{BlobType, PackedBlob};
use crate::Id;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IndexFile {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supersedes: Vec<Id>,
    #[serde(default)]
    pub packs: Vec<IndexPack>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IndexPack {
    pub id: Id,
    #[serde(default)]
    pub blobs: Vec<IndexBlob>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexBlob {
    pub id: Id,
    #[serde(rename = "type")]
    pub ty: BlobType,
    pub offset: u32,
    pub length: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub uncompressed_length: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl IndexBlob {
    pub fn from_packed(b: &PackedBlob) -> IndexBlob {
        IndexBlob {
            id: b.id,
            ty: b.ty,
            offset: b.offset,
            length: b.length,
            uncompressed_length: b.uncompressed_length,
        }
    }
    pub fn to_packed(&self) -> PackedBlob {
        PackedBlob {
            ty: self.ty,
            id: self.id,
            offset: self.offset,
            length: self.length,
            uncompressed_length: self.uncompressed_length,
        }
    }
}

impl IndexFile {
    pub fn parse(json: &[u8]) -> crate::Result<IndexFile> {
        // restic 0.14 could still read the old top-level-array form; accept it too.
        if json.first() == Some(&b'[') {
            let packs: Vec<IndexPack> = serde_json::from_slice(json)?;
            return Ok(IndexFile {
                supersedes: vec![],
                packs,
            });
        }
        Ok(serde_json::from_slice(json)?)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).expect("index serializes");
        v.push(b'\n');
        v
    }

    pub fn blob_count(&self) -> usize {
        self.packs.iter().map(|p| p.blobs.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_restic_form() {
        let j = br#"{"packs":[{"id":"73d04e6125cf3c28a299cc2f3cca3b78ceac396e4fcf9575e34536b26782413c","blobs":[{"id":"3ec79977ef0cf5de7b08cd12b874cd0f62bbaf7f07f3497a5b1bbcc8cb39b1ce","type":"data","offset":0,"length":38,"uncompressed_length":10},{"id":"9ccb846e60d90d4eb915848add7aa7ea1e4bbabfc60e573db9f7bfb2789afbae","type":"tree","offset":38,"length":112}]}]}"#;
        let idx = IndexFile::parse(j).unwrap();
        assert_eq!(idx.blob_count(), 2);
        assert_eq!(idx.packs[0].blobs[0].uncompressed_length, 10);
        assert_eq!(idx.packs[0].blobs[1].ty, BlobType::Tree);
        let back = idx.to_json();
        assert_eq!(&back[..back.len() - 1], &j[..]);
    }
}
