//! Key files (`keys/<id>`): a master key sealed with a password-derived key (scrypt).

use crate::crypto::Key;
use crate::format::gotime;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyFile {
    #[serde(default)]
    pub created: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub hostname: String,
    pub kdf: String,
    #[serde(rename = "N")]
    pub n: u64,
    pub r: u32,
    pub p: u32,
    pub salt: String,
    pub data: String,
}

/// scrypt cost parameters.
#[derive(Clone, Copy, Debug)]
pub struct KdfParams {
    pub n: u64,
    pub r: u32,
    pub p: u32,
}

impl Default for KdfParams {
    /// What restic's calibration yields on ordinary machines (N=2^15, r=8); p=1 keeps opening fast.
    fn default() -> Self {
        KdfParams {
            n: 32768,
            r: 8,
            p: 1,
        }
    }
}

fn derive(password: &[u8], salt: &[u8], p: KdfParams) -> anyhow::Result<Key> {
    if p.n < 2
        || !p.n.is_power_of_two()
        || p.r < 1
        || p.p < 1
        || (p.r as u64 * p.p as u64) >= 1 << 30
    {
        anyhow::bail!(
            "key file: invalid scrypt parameters N={} r={} p={}",
            p.n,
            p.r,
            p.p
        );
    }
    let log_n = p.n.trailing_zeros() as u8;
    let params = scrypt::Params::new(log_n, p.r, p.p, 64)
        .map_err(|e| anyhow::anyhow!("key file: invalid scrypt parameters: {e}"))?;
    let mut out = [0u8; 64];
    scrypt::scrypt(password, salt, &params, &mut out)
        .map_err(|e| anyhow::anyhow!("key file: scrypt failed: {e}"))?;
    Ok(Key::from_kdf(&out))
}

impl KeyFile {
    /// Wraps `master` with a key derived from `password`.
    pub fn create(
        password: &[u8],
        master: &Key,
        params: KdfParams,
        username: &str,
        hostname: &str,
    ) -> crate::Result<KeyFile> {
        let salt: [u8; 64] = {
            let mut s = [0u8; 64];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut s);
            s
        };
        let user_key = derive(password, &salt, params)?;
        let sealed = user_key.seal(&master.to_json());
        Ok(KeyFile {
            created: gotime::format_rfc3339_nano(&chrono::Local::now().fixed_offset()),
            username: username.to_string(),
            hostname: hostname.to_string(),
            kdf: "scrypt".into(),
            n: params.n,
            r: params.r,
            p: params.p,
            salt: B64.encode(salt),
            data: B64.encode(sealed),
        })
    }

    pub fn parse(bytes: &[u8]) -> crate::Result<KeyFile> {
        serde_json::from_slice(bytes).map_err(|e| anyhow::anyhow!("invalid key file: {e}").into())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("key file serializes")
    }

    /// Opens the master key; `Ok(None)` means the password does not fit this key file.
    pub fn open(&self, password: &[u8]) -> crate::Result<Option<Key>> {
        if self.kdf != "scrypt" {
            crate::error::bail!("key file: unknown KDF {:?}", self.kdf);
        }
        let salt = B64
            .decode(&self.salt)
            .map_err(|e| anyhow::anyhow!("key file: invalid salt: {e}"))?;
        if salt.len() != 64 {
            crate::error::bail!("key file: salt has {} bytes, want 64", salt.len());
        }
        let data = B64
            .decode(&self.data)
            .map_err(|e| anyhow::anyhow!("key file: invalid data: {e}"))?;
        let user_key = derive(
            password,
            &salt,
            KdfParams {
                n: self.n,
                r: self.r,
                p: self.p,
            },
        )?;
        match user_key.open(&data) {
            Ok(plain) => Ok(Some(Key::from_json(&plain)?)),
            Err(_) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_and_open() {
        let master = Key::random();
        let p = KdfParams {
            n: 1024,
            r: 8,
            p: 1,
        };
        let kf = KeyFile::create(b"secret", &master, p, "u", "h").unwrap();
        let parsed = KeyFile::parse(&kf.to_bytes()).unwrap();
        assert_eq!(parsed.open(b"secret").unwrap(), Some(master));
        assert_eq!(parsed.open(b"wrong").unwrap(), None);
        let text = String::from_utf8(kf.to_bytes()).unwrap();
        assert!(text.starts_with("{\"created\":"), "{text}");
        assert!(text.contains("\"N\":1024"));
    }
}
