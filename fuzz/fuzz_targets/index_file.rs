#![no_main]
// Index files, and an in-memory index built from them.
// The body is shared with the stable runner: cairn_core::fuzzing::index_file.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cairn_core::fuzzing::index_file(data);
});
