#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(f) = cairn_core::format::indexfile::IndexFile::parse(data) {
        let mut idx = cairn_core::index::MasterIndex::new();
        idx.add_file(&f);
        idx.finish();
    }
});
