#![no_main]
// Pack headers: the decrypted entry list, and the tail-of-pack reader with a fixed key.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cairn_core::format::pack::parse_header_plain(data);
    let key = cairn_core::crypto::Key::from_kdf(&[7u8; 64]);
    let _ = cairn_core::format::pack::parse_header_from_tail(&key, data, data.len() as u64);
});
