#![no_main]
// One blob as stored in a pack: declared lengths, decompression, verification.
// The body is shared with the stable runner: cairn_core::fuzzing::blob.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cairn_core::fuzzing::blob(data);
});
