#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = cairn_core::format::snapshot::Snapshot::parse(data) {
        cairn_core::format::snapshot::Snapshot::parse(&s.to_json()).expect("re-parse");
    }
});
