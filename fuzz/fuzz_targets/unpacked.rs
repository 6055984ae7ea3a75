#![no_main]
// Unpacked files after decryption: the v2 version byte and zstd payload.
// The body is shared with the stable runner: cairn_core::fuzzing::unpacked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cairn_core::fuzzing::unpacked(data);
});
