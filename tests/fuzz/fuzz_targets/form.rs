//! The OAuth form parser, on arbitrary bytes: never panics; a parsed form answers every lookup.
#![no_main]

use jobtoken::http::form::{form_unescape, Form};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = form_unescape(text);
    }
    let Ok(form) = Form::parse(data) else { return };
    for name in ["grant_type", "job_id", "scope", "audience", "resource", "authorization_details", "token"] {
        let _ = form.one(name);
        let _ = form.required(name);
        assert!(form.all(name).iter().all(|v| !v.is_empty()), "empty values count as omitted");
    }
});
