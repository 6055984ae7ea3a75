//! Unpacked files (index, snapshots, locks): sealed JSON, zstd-compressed in format v2.

use crate::crypto::Key;
use crate::format::limits;
use cairn_backend::FileType;

/// Seals JSON for storage; v2 repositories always get the compressed form (as restic ≥ 0.14).
pub fn encode(version: u32, key: &Key, json: &[u8]) -> crate::Result<Vec<u8>> {
    if version >= 2 {
        let mut plain = Vec::with_capacity(json.len() / 3 + 16);
        plain.push(2u8);
        let z = zstd::bulk::compress(json, 3)?;
        plain.extend_from_slice(&z);
        Ok(key.seal(&plain))
    } else {
        Ok(key.seal(json))
    }
}

/// Opens a stored unpacked file and returns its JSON bytes, bounded by the largest ceiling of
/// any unpacked file ([`limits::MAX_INDEX_FILE`]); [`decode_as`] applies the file's own.
pub fn decode(version: u32, key: &Key, sealed: &[u8]) -> crate::Result<Vec<u8>> {
    decode_as(FileType::Index, version, key, sealed)
}

/// Opens a stored unpacked file of `kind` and returns its JSON bytes: its stored size, and
/// what it decompresses to, must be within the ceiling for `kind` ([`limits::max_unpacked`]).
pub fn decode_as(kind: FileType, version: u32, key: &Key, sealed: &[u8]) -> crate::Result<Vec<u8>> {
    limits::check_stored(kind, sealed.len() as u64)?;
    let plain = key.open(sealed)?;
    decode_plain_as(kind, version, plain)
}

/// The decrypted form of [`decode`].
pub fn decode_plain(version: u32, plain: Vec<u8>) -> crate::Result<Vec<u8>> {
    decode_plain_as(FileType::Index, version, plain)
}

/// The decrypted form of [`decode_as`].
pub fn decode_plain_as(kind: FileType, version: u32, plain: Vec<u8>) -> crate::Result<Vec<u8>> {
    let limit = limits::max_unpacked(kind);
    let what = limits::unpacked_name(kind);
    let raw = |plain: Vec<u8>| {
        if plain.len() > limit {
            return Err(crate::Error::from(limits::LimitError::Stored {
                what,
                stored: plain.len() as u64,
                limit,
            }));
        }
        Ok(plain)
    };
    if version < 2 {
        return raw(plain);
    }
    match plain.first() {
        Some(b'{') | Some(b'[') => raw(plain),
        Some(2) => limits::decompress_capped(&plain[1..], limit, what),
        Some(v) => crate::error::bail!("unsupported encoding version byte {v:#04x}"),
        None => crate::error::bail!("empty file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_v1_v2() {
        let k = Key::random();
        for v in [1, 2] {
            let e = encode(v, &k, b"{\"a\":1}").unwrap();
            assert_eq!(decode(v, &k, &e).unwrap(), b"{\"a\":1}");
        }
        // v2 readers accept raw JSON too.
        let raw = k.seal(b"[1]");
        assert_eq!(decode(2, &k, &raw).unwrap(), b"[1]");
        assert!(decode(2, &k, &k.seal(b"\x07zz")).is_err());
    }
}
