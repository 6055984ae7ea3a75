//! Key files: each must be what its name says (the SHA-256 of its bytes) and a key file
//! restic could use. Works without the password, so that a repository whose only key is
//! damaged can still be told apart from a wrong password.

use super::Problem;
use crate::format::keyfile::KeyFile;
use crate::Id;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use cairn_backend::{Backend, FileType, Handle};

/// Why a key file's bytes are not a usable key file, if they are not.
pub fn key_file_fault(bytes: &[u8]) -> Option<String> {
    let kf = match KeyFile::parse(bytes) {
        Ok(k) => k,
        Err(e) => return Some(e.to_string()),
    };
    if kf.kdf != "scrypt" {
        return Some(format!("unknown KDF {:?}", kf.kdf));
    }
    if kf.n < 2 || !kf.n.is_power_of_two() || kf.r < 1 || kf.p < 1 {
        return Some(format!(
            "invalid scrypt parameters N={} r={} p={}",
            kf.n, kf.r, kf.p
        ));
    }
    match B64.decode(&kf.salt) {
        Ok(s) if s.len() == 64 => {}
        Ok(s) => return Some(format!("salt has {} bytes, want 64", s.len())),
        Err(e) => return Some(format!("invalid salt: {e}")),
    }
    match B64.decode(&kf.data) {
        // iv + sealed master key JSON + tag: far more than the overhead.
        Ok(d) if d.len() > crate::crypto::OVERHEAD => None,
        Ok(d) => Some(format!("data has only {} bytes", d.len())),
        Err(e) => Some(format!("invalid data: {e}")),
    }
}

/// Checks every file in `keys/`.
pub fn check_key_files(backend: &dyn Backend) -> crate::Result<Vec<Problem>> {
    let mut out = Vec::new();
    let listing = backend
        .list(FileType::Key)
        .map_err(|e| anyhow::Error::new(e).context("listing keys"))?;
    for f in listing {
        let h = Handle::new(FileType::Key, &f.name);
        if let Err(e) = crate::format::limits::check_stored(FileType::Key, f.size) {
            out.push(Problem::KeyFile {
                name: f.name,
                reason: format!("not read: {e}"),
            });
            continue;
        }
        let cap = crate::format::limits::max_stored(crate::format::limits::MAX_KEY_FILE) as u64;
        let bytes = match backend.load_capped(&h, cap) {
            Ok(b) => b,
            Err(e) => {
                out.push(Problem::KeyFile {
                    name: f.name,
                    reason: format!("cannot be read: {e}"),
                });
                continue;
            }
        };
        let reason = if Id::hash(&bytes).to_hex() != f.name {
            Some("content does not match its name (file damaged)".to_string())
        } else {
            key_file_fault(&bytes).map(|r| format!("invalid key file: {r}"))
        };
        if let Some(reason) = reason {
            out.push(Problem::KeyFile {
                name: f.name,
                reason,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key;
    use crate::format::keyfile::KdfParams;

    #[test]
    fn finds_damaged_and_invalid_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let be = cairn_backend::LocalBackend::new(dir.path());
        be.create().unwrap();
        let kf = KeyFile::create(
            b"pw",
            &Key::random(),
            KdfParams { n: 2, r: 1, p: 1 },
            "u",
            "h",
        )
        .unwrap();
        let good = kf.to_bytes();
        let good_id = Id::hash(&good).to_hex();
        be.save(&Handle::new(FileType::Key, &good_id), &good)
            .unwrap();
        assert!(check_key_files(&be).unwrap().is_empty());

        // A flipped bit: the name no longer fits.
        let mut bad = good.clone();
        bad[40] ^= 1;
        let bad_name = Id::hash(b"something else").to_hex();
        be.save(&Handle::new(FileType::Key, &bad_name), &bad)
            .unwrap();
        // Named correctly, but with a short salt.
        let mut short = kf.clone();
        short.salt = B64.encode([1u8; 16]);
        let short = short.to_bytes();
        let short_id = Id::hash(&short).to_hex();
        be.save(&Handle::new(FileType::Key, &short_id), &short)
            .unwrap();

        let found = check_key_files(&be).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().any(|p| matches!(p,
            Problem::KeyFile { name, reason } if *name == bad_name && reason.contains("does not match"))));
        assert!(found.iter().any(|p| matches!(p,
            Problem::KeyFile { name, reason } if *name == short_id && reason.contains("salt has 16 bytes"))));
        assert!(key_file_fault(b"{").is_some());
        assert!(key_file_fault(&good).is_none());
    }
}
