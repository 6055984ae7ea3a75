//! Snapshot files (`snapshots/<id>`).

use crate::format::gotime::{self, GoTime};
use crate::Id;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub mod gotime_serde {
    use super::*;
    pub fn serialize<S: Serializer>(t: &GoTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&gotime::format_rfc3339_nano(t))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<GoTime, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        gotime::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(with = "gotime_serde")]
    pub time: GoTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Id>,
    pub tree: Id,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub paths: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub uid: u32,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub gid: u32,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_empty"
    )]
    pub excludes: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_empty"
    )]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<Id>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub program_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<SnapshotSummary>,
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SnapshotSummary {
    #[serde(with = "gotime_serde")]
    pub backup_start: GoTime,
    #[serde(with = "gotime_serde")]
    pub backup_end: GoTime,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub dirs_new: u64,
    pub dirs_changed: u64,
    pub dirs_unmodified: u64,
    pub data_blobs: u64,
    pub tree_blobs: u64,
    pub data_added: u64,
    pub data_added_packed: u64,
    pub total_files_processed: u64,
    pub total_bytes_processed: u64,
}

impl Snapshot {
    pub fn parse(json: &[u8]) -> crate::Result<Snapshot> {
        Ok(serde_json::from_slice(json)?)
    }
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("snapshot serializes")
    }
    pub fn has_tag(&self, t: &str) -> bool {
        self.tags.iter().any(|x| x == t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_restic_snapshot() {
        let j = br#"{"time":"2015-05-04T22:19:14.185427263+02:00","tree":"2b1fd8c8b1bd6e5fcbd9e5fd26e6a6cf8d3d3e86e5c2b56d63e59ef05fd0ab35","paths":["/home/user/testdir"],"hostname":"kasimir","username":"fd0","uid":1000,"gid":100}"#;
        let s = Snapshot::parse(j).unwrap();
        assert_eq!(s.hostname, "kasimir");
        assert_eq!(s.to_json(), j.to_vec());
        let j2 = br#"{"time":"2015-05-04T22:19:14Z","tree":"2b1fd8c8b1bd6e5fcbd9e5fd26e6a6cf8d3d3e86e5c2b56d63e59ef05fd0ab35","paths":null,"tags":null}"#;
        let s2 = Snapshot::parse(j2).unwrap();
        assert!(s2.paths.is_empty() && s2.tags.is_empty());
    }
}
