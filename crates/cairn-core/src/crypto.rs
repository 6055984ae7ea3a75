//! restic's authenticated encryption: AES-256-CTR, then Poly1305-AES over the ciphertext.
//!
//! Sealed form: `iv(16) || ciphertext || tag(16)`.

use crate::error::MacError;
use aes::cipher::{BlockEncrypt, KeyInit, KeyIvInit, StreamCipher};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use poly1305::Poly1305;
use serde::{Deserialize, Serialize};

pub const OVERHEAD: usize = 32;
type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// A master key or a user key: encryption key plus the two halves of the MAC key.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    pub enc: [u8; 32],
    pub mac_k: [u8; 16],
    pub mac_r: [u8; 16],
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

/// The JSON form of a master key inside a key file.
#[derive(Serialize, Deserialize)]
struct MacJson {
    k: String,
    r: String,
}
#[derive(Serialize, Deserialize)]
struct KeyJson {
    mac: MacJson,
    encrypt: String,
}

fn b64_exact<const N: usize>(s: &str, what: &str) -> anyhow::Result<[u8; N]> {
    let v = B64
        .decode(s)
        .map_err(|e| anyhow::anyhow!("master key: invalid base64 in {what}: {e}"))?;
    v.try_into()
        .map_err(|v: Vec<u8>| anyhow::anyhow!("master key: {what} has {} bytes, want {N}", v.len()))
}

impl Key {
    pub fn random() -> Key {
        Key {
            enc: rand::random(),
            mac_k: rand::random(),
            mac_r: rand::random(),
        }
    }

    /// Splits 64 bytes of KDF output into a key.
    pub fn from_kdf(b: &[u8; 64]) -> Key {
        let mut k = Key {
            enc: [0; 32],
            mac_k: [0; 16],
            mac_r: [0; 16],
        };
        k.enc.copy_from_slice(&b[..32]);
        k.mac_k.copy_from_slice(&b[32..48]);
        k.mac_r.copy_from_slice(&b[48..64]);
        k
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&KeyJson {
            mac: MacJson {
                k: B64.encode(self.mac_k),
                r: B64.encode(self.mac_r),
            },
            encrypt: B64.encode(self.enc),
        })
        .expect("key JSON always serializes")
    }

    pub fn from_json(data: &[u8]) -> crate::Result<Key> {
        let j: KeyJson = serde_json::from_slice(data)
            .map_err(|e| anyhow::anyhow!("master key: invalid JSON: {e}"))?;
        let key = Key {
            enc: b64_exact(&j.encrypt, "encrypt")?,
            mac_k: b64_exact(&j.mac.k, "mac.k")?,
            mac_r: b64_exact(&j.mac.r, "mac.r")?,
        };
        if key.enc == [0; 32] || key.mac_k == [0; 16] || key.mac_r == [0; 16] {
            crate::error::bail!("master key: a key is all zeros");
        }
        Ok(key)
    }

    fn mac(&self, iv: &[u8; 16], ciphertext: &[u8]) -> [u8; 16] {
        let aes = aes::Aes128::new(&self.mac_k.into());
        let mut s = aes::Block::from(*iv);
        aes.encrypt_block(&mut s);
        let mut pkey = [0u8; 32];
        pkey[..16].copy_from_slice(&self.mac_r);
        pkey[16..].copy_from_slice(&s);
        // Poly1305 clamps r itself, so stored keys work whether or not they were clamped.
        let tag = Poly1305::new(&pkey.into()).compute_unpadded(ciphertext);
        tag.into()
    }

    /// Encrypts `plain` into a new buffer: iv || ciphertext || tag.
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plain.len() + OVERHEAD);
        self.seal_into(plain, &mut out);
        out
    }

    /// Appends the sealed form of `plain` to `out`.
    pub fn seal_into(&self, plain: &[u8], out: &mut Vec<u8>) {
        let mut iv: [u8; 16] = rand::random();
        while iv == [0u8; 16] {
            iv = rand::random();
        }
        out.reserve(plain.len() + OVERHEAD);
        out.extend_from_slice(&iv);
        let start = out.len();
        out.extend_from_slice(plain);
        Aes256Ctr::new(&self.enc.into(), &iv.into()).apply_keystream(&mut out[start..]);
        let tag = self.mac(&iv, &out[start..]);
        out.extend_from_slice(&tag);
    }

    /// Whether a sealed buffer's authentication tag is valid, without decrypting it (the tag
    /// covers the ciphertext, so this is the cost of Poly1305 alone).
    pub fn verify(&self, sealed: &[u8]) -> bool {
        if sealed.len() < OVERHEAD {
            return false;
        }
        let (iv, rest) = sealed.split_at(16);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        let Ok(iv) = <[u8; 16]>::try_from(iv) else {
            return false;
        };
        let want = self.mac(&iv, ct);
        want.iter().zip(tag).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    /// Verifies and decrypts a sealed buffer.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, MacError> {
        if sealed.len() < OVERHEAD {
            return Err(MacError);
        }
        let (iv, rest) = sealed.split_at(16);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        let iv: [u8; 16] = iv.try_into().map_err(|_| MacError)?;
        let want = self.mac(&iv, ct);
        // Constant-time comparison.
        let diff = want.iter().zip(tag).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(MacError);
        }
        let mut plain = ct.to_vec();
        Aes256Ctr::new(&self.enc.into(), &iv.into()).apply_keystream(&mut plain);
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn verify_agrees_with_open() {
        let k = Key::random();
        let mut sealed = k.seal(b"some blob");
        assert!(k.verify(&sealed));
        assert!(!k.verify(&sealed[..OVERHEAD - 1]));
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(!k.verify(&sealed));
        assert!(k.open(&sealed).is_err());
    }

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let k = Key::random();
        let s = k.seal(b"hello");
        assert_eq!(s.len(), 5 + OVERHEAD);
        assert_eq!(k.open(&s).unwrap(), b"hello");
        let mut bad = s.clone();
        bad[20] ^= 1;
        assert!(k.open(&bad).is_err());
        assert!(Key::random().open(&s).is_err());
        assert!(k.open(&s[..31]).is_err());
        assert_eq!(k.open(&k.seal(b"")).unwrap(), b"");
    }

    #[test]
    fn key_json_round_trip() {
        let k = Key::random();
        assert_eq!(Key::from_json(&k.to_json()).unwrap(), k);
        assert!(Key::from_json(b"{}").is_err());
    }

    /// Poly1305-AES test vector from Bernstein's paper (also used by restic's crypto tests).
    #[test]
    fn poly1305_aes_vector() {
        let key = Key {
            enc: [0; 32],
            mac_k: hex::decode("ec074c835580741701425b623235add6")
                .unwrap()
                .try_into()
                .unwrap(),
            mac_r: hex::decode("851fc40c3467ac0be05cc20404f3f700")
                .unwrap()
                .try_into()
                .unwrap(),
        };
        let iv: [u8; 16] = hex::decode("fb447350c4e868c52ac3275cf9d4327e")
            .unwrap()
            .try_into()
            .unwrap();
        let tag = key.mac(&iv, &hex::decode("f3f6").unwrap());
        assert_eq!(hex::encode(tag), "f4c633c3044fc145f84f335cb81953de");
    }

    proptest! {
        #[test]
        fn round_trip_any(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let k = Key::random();
            prop_assert_eq!(k.open(&k.seal(&data)).unwrap(), data);
        }
    }
}
