//! The `authorization_details` parser (RFC 9396), on arbitrary text: never panics, and never
//! accepts more entries than the limit.
#![no_main]

use jobtoken::token::details;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(entries) = details::parse(text) {
        assert!(entries.len() <= details::MAX_DETAILS);
        assert!(entries.iter().all(|e| !e.actions.is_empty()));
    }
});
