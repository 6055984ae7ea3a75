//! Unpacked files (index, snapshots, locks): sealed JSON, zstd-compressed in format v2.

use crate::crypto::Key;

/// Seals JSON for storage; v2 repositories always get the compressed form (as restic ≥ 0.14).
pub fn encode(version: u32, key: &Key, json: &[u8]) -> anyhow::Result<Vec<u8>> {
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

/// Opens a stored unpacked file and returns its JSON bytes.
pub fn decode(version: u32, key: &Key, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
    let plain = key.open(sealed)?;
    decode_plain(version, plain)
}

pub fn decode_plain(version: u32, plain: Vec<u8>) -> anyhow::Result<Vec<u8>> {
    if version < 2 {
        return Ok(plain);
    }
    match plain.first() {
        Some(b'{') | Some(b'[') => Ok(plain),
        Some(2) => {
            let out = zstd::stream::decode_all(&plain[1..])
                .map_err(|e| anyhow::anyhow!("decompressing: {e}"))?;
            Ok(out)
        }
        Some(v) => anyhow::bail!("unsupported encoding version byte {v:#04x}"),
        None => anyhow::bail!("empty file"),
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
