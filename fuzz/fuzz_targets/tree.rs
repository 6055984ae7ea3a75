#![no_main]
// Tree blobs: parse, re-serialize, parse again.
// The body is shared with the stable runner: cairn_core::fuzzing::tree.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cairn_core::fuzzing::tree(data);
});
