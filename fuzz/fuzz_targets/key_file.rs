#![no_main]
// Key files, the master key JSON inside them, and the config.
// The body is shared with the stable runner: cairn_core::fuzzing::key_file.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cairn_core::fuzzing::key_file(data);
});
