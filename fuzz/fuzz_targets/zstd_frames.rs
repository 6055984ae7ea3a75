#![no_main]
// zstd frames through the bounded decoder: never more output than the ceiling.
// The body is shared with the stable runner: cairn_core::fuzzing::zstd_frames.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cairn_core::fuzzing::zstd_frames(data);
});
