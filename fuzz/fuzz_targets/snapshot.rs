#![no_main]
// Snapshot files: parse, re-serialize, parse again.
// The body is shared with the stable runner: cairn_core::fuzzing::snapshot.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cairn_core::fuzzing::snapshot(data);
});
