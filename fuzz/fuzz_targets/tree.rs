#![no_main]
// Tree blobs: parse, and anything that parses must re-serialize and parse to the same tree.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(t) = cairn_core::format::tree::Tree::parse(data) {
        let again = cairn_core::format::tree::Tree::parse(&t.to_json()).expect("re-parse");
        assert_eq!(again.nodes.len(), t.nodes.len());
    }
});
