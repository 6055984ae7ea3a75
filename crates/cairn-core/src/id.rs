//! 32-byte SHA-256 identifiers, written as 64 lowercase hex characters.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id(pub [u8; 32]);

impl Id {
    pub fn hash(data: &[u8]) -> Id {
        Id(Sha256::digest(data).into())
    }

    pub fn random() -> Id {
        Id(rand::random())
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0u8; 32]
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 hex characters, as restic prints ids.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    pub fn from_hex(s: &str) -> crate::Result<Id> {
        let b = s.as_bytes();
        if b.len() != 64 {
            crate::error::bail!("invalid id {s:?}: want 64 hex characters, got {}", b.len());
        }
        // Every tree lists the ids of its files' blobs: decoding them is a measurable part of
        // reading trees, so a table lookup per character instead of a generic decoder.
        let mut out = [0u8; 32];
        let mut bad = 0u8;
        for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
            let (hi, lo) = (HEX[pair[0] as usize], HEX[pair[1] as usize]);
            bad |= hi | lo;
            *o = (hi << 4) | (lo & 0x0f);
        }
        if bad & 0xf0 != 0 {
            crate::error::bail!("invalid id {s:?}: not a hex string");
        }
        Ok(Id(out))
    }
}

/// Value of each hex digit (either case); 0xff for anything else.
pub(crate) static HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.short())
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Id::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = Id::hash(b"abc");
        assert_eq!(
            id.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Id::from_hex(&id.to_hex()).unwrap(), id);
        assert_eq!(id.short(), "ba7816bf");
        assert!(Id::from_hex("abc").is_err());
        assert!(Id::from_hex(&"zz".repeat(32)).is_err());
        assert!(Id::from_hex(&format!("{}g", &id.to_hex()[..63])).is_err());
        assert!(Id::from_hex(&format!("é{}", &id.to_hex()[..62])).is_err());
        assert_eq!(Id::from_hex(&id.to_hex().to_uppercase()).unwrap(), id);
    }

    proptest::proptest! {
        /// The table decoder accepts and rejects exactly what a generic hex decoder does.
        #[test]
        fn from_hex_agrees_with_the_hex_crate(s in "[0-9a-fA-F]{60}[0-9a-fA-Fgz]{4}", bytes in proptest::array::uniform32(0u8..)) {
            let mut want = [0u8; 32];
            let ok = hex::decode_to_slice(&s, &mut want).is_ok();
            match Id::from_hex(&s) {
                Ok(id) => proptest::prop_assert!(ok && id.0 == want),
                Err(_) => proptest::prop_assert!(!ok),
            }
            let id = Id(bytes);
            proptest::prop_assert_eq!(Id::from_hex(&id.to_hex()).unwrap(), id);
        }
    }
}
