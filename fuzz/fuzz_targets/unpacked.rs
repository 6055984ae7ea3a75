#![no_main]
// Unpacked files after decryption: the v2 version byte and zstd payload.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cairn_core::format::unpacked::decode_plain(2, data.to_vec());
    let key = cairn_core::crypto::Key::from_kdf(&[9u8; 64]);
    let _ = cairn_core::format::unpacked::decode(2, &key, data);
});
