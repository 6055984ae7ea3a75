#![no_main]
// Go-quoted names and RFC 3339 times as restic writes them.
// The body is shared with the stable runner: cairn_core::fuzzing::go_strings.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cairn_core::fuzzing::go_strings(data);
});
