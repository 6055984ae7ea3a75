#![no_main]
// Key files and the master key JSON inside them (scrypt itself is not fuzzed: too slow).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cairn_core::format::keyfile::KeyFile::parse(data);
    let _ = cairn_core::crypto::Key::from_json(data);
    let _ = serde_json::from_slice::<cairn_core::format::config::Config>(data).map(|c| c.validate());
});
