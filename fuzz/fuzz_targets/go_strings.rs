#![no_main]
// Go-quoted names and RFC 3339 times as restic writes them.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = cairn_core::format::gojson::go_unquote_inner(s);
        let _ = cairn_core::format::gotime::parse_rfc3339(s);
    }
    let q = cairn_core::format::gojson::go_quote_inner(data);
    assert_eq!(cairn_core::format::gojson::go_unquote_inner(&q).expect("unquote"), data);
});
