#![no_main]
// Pack headers: the decrypted entry list, and the tail-of-pack reader.
// The body is shared with the stable runner: cairn_core::fuzzing::pack_header.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cairn_core::fuzzing::pack_header(data);
});
