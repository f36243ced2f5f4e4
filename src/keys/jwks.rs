//! The JWKS document (RFC 7517 §5) served at the well-known URL, built once per key change.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use super::material::PublicKey;

/// How long verifiers may cache the JWKS (`Cache-Control: max-age`). A `next` key is published
/// at least this long before it signs: the rotation plan never promotes a younger one unless
/// forced (scheduled rotation and a change of algorithm wait), and a manual rotation of a
/// younger `next` key is refused with 409 unless forced.
pub const MAX_AGE_SECS: i64 = 300;

/// Longest key tick a server runs with (`JOBTOKEN_KEY_TICK_SECONDS` is at most this): a key
/// another process created is in every serving process's JWKS within it.
pub const MAX_KEY_TICK_SECS: i64 = 60;

/// How long a `next` key must exist before it may sign: until every serving process has
/// published it (one key tick) and every verifier's cached JWKS has expired since (the max-age).
pub const MIN_PUBLISHED_SECS: i64 = MAX_AGE_SECS + MAX_KEY_TICK_SECS;

/// A serialized JWK Set and its strong ETag.
///
/// Security invariant: built only from [`PublicKey`]s, whose JWKs carry public members only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksDocument {
    /// Compact JSON: `{"keys":[...]}`.
    pub body: Vec<u8>,
    /// A strong ETag, quotes included: the base64url SHA-256 of `body`.
    pub etag: String,
}

impl JwksDocument {
    /// Serializes `keys` in the given order.
    pub fn build(keys: &[PublicKey]) -> JwksDocument {
        let jwks: Vec<Value> = keys.iter().map(PublicKey::jwk).collect();
        let body = serde_json::json!({ "keys": jwks }).to_string().into_bytes();
        let digest = ring::digest::digest(&ring::digest::SHA256, &body);
        let etag = format!("\"{}\"", URL_SAFE_NO_PAD.encode(digest));
        JwksDocument { body, etag }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::keys::material::{test_key, Alg};

    fn all_public() -> Vec<PublicKey> {
        Alg::ALL.into_iter().map(|alg| test_key(alg).public_key()).collect()
    }

    #[test]
    fn body_lists_the_public_jwks_in_order_and_nothing_private() {
        let keys = all_public();
        let doc = JwksDocument::build(&keys);
        let parsed: Value = serde_json::from_slice(&doc.body).unwrap();
        assert_eq!(parsed.as_object().unwrap().len(), 1);
        let listed = parsed["keys"].as_array().unwrap();
        assert_eq!(listed.len(), 3);
        for (jwk, key) in listed.iter().zip(&keys) {
            assert_eq!(jwk, &key.jwk());
            assert_eq!(PublicKey::from_jwk(jwk).unwrap(), *key);
            for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
                assert!(jwk.get(private).is_none(), "{private} in {jwk}");
            }
        }
        let text = std::str::from_utf8(&doc.body).unwrap();
        assert!(!text.contains(' ') && !text.contains('\n'), "not compact: {text}");
        for alg in Alg::ALL {
            let pem = test_key(alg).to_pkcs8_pem();
            let body_line = pem.lines().nth(1).unwrap();
            assert!(!text.contains(&body_line[..20]));
        }
    }

    #[test]
    fn etag_is_strong_stable_and_changes_with_the_key_set() {
        let keys = all_public();
        let doc = JwksDocument::build(&keys);
        assert!(doc.etag.starts_with('"') && doc.etag.ends_with('"') && !doc.etag.starts_with("W/"));
        assert_eq!(doc.etag.len(), 45);
        assert_eq!(JwksDocument::build(&keys).etag, doc.etag);
        assert_ne!(JwksDocument::build(&keys[..2]).etag, doc.etag);
        let reordered = [keys[1].clone(), keys[0].clone(), keys[2].clone()];
        assert_ne!(JwksDocument::build(&reordered).etag, doc.etag);
        assert_ne!(JwksDocument::build(&[]).etag, doc.etag);
        assert_eq!(JwksDocument::build(&[]).body, br#"{"keys":[]}"#);
    }
}
