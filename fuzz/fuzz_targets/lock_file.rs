#![no_main]
// Lock files after decryption: bounded decoding, parsing, describing.
// The body is shared with the stable runner: cairn_core::fuzzing::lock_file.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cairn_core::fuzzing::lock_file(data);
});
