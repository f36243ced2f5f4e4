//! The compact JWS parser and verifier, on arbitrary bytes: never panics, and never accepts a
//! token its one key did not sign.
#![no_main]

use std::sync::OnceLock;

use jobtoken::keys::{Alg, KeyPair, PublicKey};
use jobtoken::token::{jws, Claims, TOKEN_TYPE};
use libfuzzer_sys::fuzz_target;

/// One real key, so inputs that name it reach the algorithm check and the signature check.
fn key() -> &'static PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| KeyPair::generate(Alg::ES256).map(|k| k.public_key()).expect("generating a key"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let _ = jws::decode_unverified(token);
    let _ = jws::decode_unverified_as::<Claims>(token);
    let verified = jws::verify(token, TOKEN_TYPE, |kid| (kid == key().kid()).then(key));
    assert!(verified.is_err(), "the fuzzer cannot forge an ES256 signature: {token}");
});
