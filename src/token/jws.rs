//! JWS compact serialization (RFC 7515 §7.1) over [`KeyPair`] and [`PublicKey`].
//!
//! Security invariants of [`verify`]:
//! - the key, found by `kid`, picks the algorithm; a header `alg` that differs from the key's is
//!   rejected before any signature check (so no `none`, and no HMAC keyed with a public key);
//! - `crit` is rejected, since no extension is understood (RFC 7515 §4.1.11);
//! - `typ` must be the expected one, so other JWTs signed by the same key don't pass;
//! - header members such as `jku`, `jwk`, `x5u`, `x5c` are ignored and never fetch or supply keys.

use std::borrow::Borrow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::keys::{Alg, KeyError, KeyPair, PublicKey};

/// Longest token accepted (and produced), in bytes. Longer input is rejected before decoding.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Why a token was rejected. The messages name the check that failed, never key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLarge,
    #[error("malformed JWS: {0}")]
    Malformed(&'static str),
    #[error("unsecured JWS (alg \"none\") is never accepted")]
    Unsecured,
    #[error("the header lists critical extensions (crit); none are supported")]
    UnsupportedCrit,
    #[error("wrong typ {found:?}: expected {expected:?}")]
    WrongTyp { expected: String, found: Option<String> },
    #[error("the header has no kid")]
    MissingKid,
    #[error("unknown kid {0:?}")]
    UnknownKid(String),
    #[error("header alg {header:?} is not the key's algorithm {key}")]
    AlgMismatch { header: String, key: Alg },
    #[error("the signature does not verify")]
    BadSignature,
}

/// The JOSE header members this server reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Header {
    /// As the token states it; [`verify`] only checks it against the key's algorithm.
    pub alg: String,
    /// Names the verification key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The token's media type; `at+jwt` for job tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// The names listed in `crit`, empty when absent; [`verify`] rejects any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub crit: Vec<String>,
}

/// A structurally valid compact JWS. From [`decode_unverified`] nothing in it is authenticated;
/// from [`verify`] the signature has been checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The decoded JOSE header.
    pub header: Header,
    /// The claims object, unvalidated: checking `exp`, `aud` etc. is the caller's job.
    pub claims: Map<String, Value>,
    /// The decoded signature bytes.
    pub signature: Vec<u8>,
    /// Length of `header.claims`, the signing input, at the start of the token.
    signing_input_len: usize,
}

/// Signs `claims` (a serialized JSON object) under `header` with `key`, giving
/// `base64url(header) . base64url(claims) . base64url(signature)`.
///
/// The header must be a JSON object whose `alg` is the key's algorithm and whose `kid`, if
/// present, is the key's kid, so a token never claims a key or algorithm that did not sign it.
pub fn sign_compact(header: &Value, claims: &[u8], key: &KeyPair) -> Result<String, KeyError> {
    sign_naming(header, claims, key, key.kid())
}

/// [`sign_compact`] for a container registry token, whose `kid` (if present) must be the key's
/// libtrust key id ([`crate::keys::registry::libtrust_key_id`]): distribution finds keys by it.
pub fn sign_compact_for_registry(header: &Value, claims: &[u8], key: &KeyPair) -> Result<String, KeyError> {
    sign_naming(header, claims, key, &crate::keys::registry::libtrust_key_id(&key.public_key()))
}

/// Signs, checking that the header's `alg` is the key's and its `kid` (if any) is `kid`.
fn sign_naming(header: &Value, claims: &[u8], key: &KeyPair, kid: &str) -> Result<String, KeyError> {
    let members = header.as_object().ok_or_else(|| KeyError::Header("not a JSON object".into()))?;
    if members.get("alg").and_then(Value::as_str) != Some(key.alg().as_str()) {
        return Err(KeyError::Header(format!("alg must be {}", key.alg())));
    }
    if members.get("kid").is_some_and(|named| named.as_str() != Some(kid)) {
        return Err(KeyError::Header("kid is not the signing key's".into()));
    }
    let header_json = header.to_string();
    let mut token = String::with_capacity((header_json.len() + claims.len()) * 4 / 3 + 360);
    URL_SAFE_NO_PAD.encode_string(header_json, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(claims, &mut token);
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    if token.len() > MAX_TOKEN_LEN {
        return Err(KeyError::Sign(format!("the token would be longer than {MAX_TOKEN_LEN} bytes")));
    }
    Ok(token)
}

/// Splits and decodes a compact JWS without checking the signature.
///
/// Accepts only: at most [`MAX_TOKEN_LEN`] bytes; exactly three parts; each strict base64url
/// without padding; a header that is a JSON object with a string `alg`, string `kid`/`typ` when
/// present, and `crit` (when present) a non-empty array of strings; claims that are a JSON object.
/// A member named twice keeps its last value (RFC 7515 §5.2). Never panics.
pub fn decode_unverified(token: &str) -> Result<Decoded, JwsError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwsError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed("expected three dot-separated parts"));
    };
    let header = parse_header(&b64(header_b64, "header is not base64url without padding")?)?;
    let claims = match serde_json::from_slice(&b64(claims_b64, "claims are not base64url without padding")?) {
        Ok(Value::Object(claims)) => claims,
        _ => return Err(JwsError::Malformed("claims are not a JSON object")),
    };
    let signature = b64(signature_b64, "signature is not base64url without padding")?;
    Ok(Decoded { header, claims, signature, signing_input_len: header_b64.len() + 1 + claims_b64.len() })
}

/// Decodes the header and the claims straight into `T`, without checking the signature: for
/// callers that authenticate the token some other way (introspection matches it against its
/// issuance record) and want typed claims without an intermediate JSON tree.
pub fn decode_unverified_as<T: serde::de::DeserializeOwned>(token: &str) -> Result<(Header, T), JwsError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwsError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed("expected three dot-separated parts"));
    };
    let header = parse_header(&b64(header_b64, "header is not base64url without padding")?)?;
    let claims = serde_json::from_slice(&b64(claims_b64, "claims are not base64url without padding")?)
        .map_err(|_| JwsError::Malformed("claims do not have the expected shape"))?;
    Ok((header, claims))
}

/// Decodes and verifies a compact JWS: `typ` must be `expected_typ` (case-insensitively, with or
/// without `application/`, RFC 7515 §4.1.9), `kid` must name a key `lookup` knows, header `alg`
/// must equal that key's algorithm, and the signature must verify under that key.
pub fn verify<K: Borrow<PublicKey>>(
    token: &str,
    expected_typ: &str,
    lookup: impl Fn(&str) -> Option<K>,
) -> Result<Decoded, JwsError> {
    let decoded = decode_unverified(token)?;
    let header = &decoded.header;
    if !header.crit.is_empty() {
        return Err(JwsError::UnsupportedCrit);
    }
    if header.alg.eq_ignore_ascii_case("none") {
        return Err(JwsError::Unsecured);
    }
    if !header.typ.as_deref().is_some_and(|typ| same_media_type(typ, expected_typ)) {
        return Err(JwsError::WrongTyp {
            expected: expected_typ.to_owned(),
            found: header.typ.as_deref().map(shorten),
        });
    }
    let kid = header.kid.as_deref().ok_or(JwsError::MissingKid)?;
    let key = lookup(kid).ok_or_else(|| JwsError::UnknownKid(shorten(kid)))?;
    let key: &PublicKey = key.borrow();
    // The key, not the header, picks the algorithm.
    if header.alg != key.alg().as_str() {
        return Err(JwsError::AlgMismatch { header: shorten(&header.alg), key: key.alg() });
    }
    let signing_input =
        token.as_bytes().get(..decoded.signing_input_len).ok_or(JwsError::Malformed("no signing input"))?;
    if !key.verify(signing_input, &decoded.signature) {
        return Err(JwsError::BadSignature);
    }
    Ok(decoded)
}

fn parse_header(bytes: &[u8]) -> Result<Header, JwsError> {
    let Ok(Value::Object(members)) = serde_json::from_slice::<Value>(bytes) else {
        return Err(JwsError::Malformed("header is not a JSON object"));
    };
    let string = |name: &str| match members.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JwsError::Malformed("header alg, kid and typ must be strings")),
    };
    let alg = string("alg")?.ok_or(JwsError::Malformed("header has no alg"))?;
    let crit = match members.get("crit") {
        None => Vec::new(),
        Some(Value::Array(names)) if !names.is_empty() => names
            .iter()
            .map(|name| name.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(JwsError::Malformed("crit must be a non-empty array of strings"))?,
        Some(_) => return Err(JwsError::Malformed("crit must be a non-empty array of strings")),
    };
    Ok(Header { alg, kid: string("kid")?, typ: string("typ")?, crit })
}

/// Strict base64url without padding: no `=`, no `+` or `/`, no whitespace, canonical last char.
fn b64(part: &str, error: &'static str) -> Result<Vec<u8>, JwsError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| JwsError::Malformed(error))
}

/// `typ` comparison per RFC 7515 §4.1.9: case-insensitive, `application/` optional.
fn same_media_type(found: &str, expected: &str) -> bool {
    fn short(media_type: &str) -> &str {
        match (media_type.get(..12), media_type.get(12..)) {
            (Some(prefix), Some(rest)) if prefix.eq_ignore_ascii_case("application/") && !rest.contains('/') => rest,
            _ => media_type,
        }
    }
    short(found).eq_ignore_ascii_case(short(expected))
}

/// Untrusted header values in errors (and so in logs) are cut short.
fn shorten(value: &str) -> String {
    value.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::keys::material::test_key;

    const TYP: &str = "at+jwt";

    fn header_for(key: &KeyPair) -> Value {
        json!({"alg": key.alg().as_str(), "typ": TYP, "kid": key.kid()})
    }

    fn claims() -> Vec<u8> {
        json!({"sub": "project_path:g/p:ref_type:branch:ref:main", "exp": 1_800_000_000, "job_id": 7})
            .to_string()
            .into_bytes()
    }

    fn token(alg: Alg) -> String {
        let key = test_key(alg);
        sign_compact(&header_for(key), &claims(), key).unwrap()
    }

    fn published() -> HashMap<String, PublicKey> {
        Alg::ALL.into_iter().map(|alg| (test_key(alg).kid().to_owned(), test_key(alg).public_key())).collect()
    }

    fn check(token: &str) -> Result<Decoded, JwsError> {
        let keys = published();
        verify(token, TYP, |kid| keys.get(kid))
    }

    fn enc(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A token with the given header over the standard claims, signed by `sign`.
    fn forge(header: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let input = format!("{}.{}", enc(header.to_string()), enc(claims()));
        let sig = sign(input.as_bytes());
        format!("{input}.{}", enc(sig))
    }

    #[test]
    fn tokens_round_trip_for_every_alg() {
        for alg in Alg::ALL {
            let key = test_key(alg);
            let token = token(alg);
            let decoded = check(&token).unwrap();
            assert_eq!(decoded.header.alg, alg.as_str());
            assert_eq!(decoded.header.kid.as_deref(), Some(key.kid()));
            assert_eq!(decoded.header.typ.as_deref(), Some(TYP));
            assert_eq!(Value::Object(decoded.claims.clone()), serde_json::from_slice::<Value>(&claims()).unwrap());
            assert_eq!(decode_unverified(&token).unwrap(), decoded);
            assert_eq!(token.matches('.').count(), 2);
        }
    }

    #[test]
    fn josekit_verifies_our_tokens_with_the_published_jwk() {
        for alg in Alg::ALL {
            let token = token(alg);
            let jwk = josekit::jwk::Jwk::from_bytes(test_key(alg).public_key().jwk().to_string()).unwrap();
            let verifier: Box<dyn josekit::jws::JwsVerifier> = match alg {
                Alg::ES256 => Box::new(josekit::jws::ES256.verifier_from_jwk(&jwk).unwrap()),
                Alg::EdDSA => Box::new(josekit::jws::EdDSA.verifier_from_jwk(&jwk).unwrap()),
                Alg::RS256 => Box::new(josekit::jws::RS256.verifier_from_jwk(&jwk).unwrap()),
            };
            let (payload, header) = josekit::jws::deserialize_compact(&token, &*verifier).unwrap();
            assert_eq!(payload, claims(), "{alg}");
            assert_eq!(header.token_type(), Some(TYP));
            let tampered = format!("{}x", &token[..token.len() - 1]);
            assert!(josekit::jws::deserialize_compact(&tampered, &*verifier).is_err());
        }
    }

    #[test]
    fn sign_compact_refuses_a_header_that_names_another_alg_or_key() {
        let key = test_key(Alg::ES256);
        let other = test_key(Alg::EdDSA);
        for header in [
            json!({"alg": "HS256", "typ": TYP, "kid": key.kid()}),
            json!({"alg": "none", "typ": TYP}),
            json!({"typ": TYP, "kid": key.kid()}),
            json!({"alg": "ES256", "typ": TYP, "kid": other.kid()}),
            json!({"alg": "ES256", "kid": 1}),
            json!(["ES256"]),
        ] {
            assert!(matches!(sign_compact(&header, &claims(), key), Err(KeyError::Header(_))), "{header}");
        }
        let huge = vec![b'a'; MAX_TOKEN_LEN];
        assert!(sign_compact(&header_for(key), &huge, key).is_err());
    }

    #[test]
    fn alg_none_is_rejected() {
        let kid = test_key(Alg::ES256).kid();
        for none in ["none", "None", "NONE"] {
            let header = json!({"alg": none, "typ": TYP, "kid": kid});
            let unsigned = forge(&header, |_| Vec::new());
            assert!(unsigned.ends_with('.'));
            assert_eq!(check(&unsigned).unwrap_err(), JwsError::Unsecured, "{none}");
            let with_es256_sig = forge(&header, |input| test_key(Alg::ES256).sign(input).unwrap());
            assert_eq!(check(&with_es256_sig).unwrap_err(), JwsError::Unsecured, "{none}");
        }
    }

    #[test]
    fn hs256_keyed_with_the_public_key_is_rejected_for_asymmetric_kids() {
        use ring::hmac;
        for alg in [Alg::ES256, Alg::RS256, Alg::EdDSA] {
            let public = test_key(alg).public_key();
            let jwk = public.jwk();
            let raw_member = if alg == Alg::RS256 { "n" } else { "x" };
            let candidates: Vec<Vec<u8>> = vec![
                jwk.to_string().into_bytes(),
                URL_SAFE_NO_PAD.decode(jwk[raw_member].as_str().unwrap()).unwrap(),
                jwk[raw_member].as_str().unwrap().as_bytes().to_vec(),
            ];
            for secret in candidates {
                let header = json!({"alg": "HS256", "typ": TYP, "kid": public.kid()});
                let forged = forge(&header, |input| {
                    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &secret), input).as_ref().to_vec()
                });
                assert_eq!(
                    check(&forged).unwrap_err(),
                    JwsError::AlgMismatch { header: "HS256".into(), key: alg },
                    "{alg}"
                );
            }
        }
    }

    #[test]
    fn a_header_alg_other_than_the_keys_is_rejected_even_with_a_valid_signature() {
        for alg in Alg::ALL {
            let key = test_key(alg);
            for claimed in Alg::ALL.into_iter().filter(|a| *a != alg) {
                let header = json!({"alg": claimed.as_str(), "typ": TYP, "kid": key.kid()});
                let token = forge(&header, |input| key.sign(input).unwrap());
                assert_eq!(check(&token).unwrap_err(), JwsError::AlgMismatch { header: claimed.to_string(), key: alg });
            }
            let lowercase = json!({"alg": alg.as_str().to_lowercase(), "typ": TYP, "kid": key.kid()});
            let token = forge(&lowercase, |input| key.sign(input).unwrap());
            assert!(matches!(check(&token).unwrap_err(), JwsError::AlgMismatch { .. }));
        }
    }

    #[test]
    fn unknown_or_missing_kid_is_rejected() {
        let key = test_key(Alg::ES256);
        let unknown = json!({"alg": "ES256", "typ": TYP, "kid": "not-a-published-key"});
        let token = forge(&unknown, |input| key.sign(input).unwrap());
        assert!(matches!(check(&token).unwrap_err(), JwsError::UnknownKid(_)));
        let missing = json!({"alg": "ES256", "typ": TYP});
        let token = forge(&missing, |input| key.sign(input).unwrap());
        assert_eq!(check(&token).unwrap_err(), JwsError::MissingKid);
        let empty = HashMap::<String, PublicKey>::new();
        assert!(matches!(verify(&self::token(Alg::ES256), TYP, |kid| empty.get(kid)), Err(JwsError::UnknownKid(_))));
    }

    #[test]
    fn a_signature_by_another_key_under_a_published_kid_is_rejected() {
        for alg in Alg::ALL {
            let impostor = KeyPair::generate(alg).unwrap();
            let header = header_for(test_key(alg));
            let token = forge(&header, |input| impostor.sign(input).unwrap());
            assert_eq!(check(&token).unwrap_err(), JwsError::BadSignature, "{alg}");
        }
    }

    #[test]
    fn typ_must_match_case_insensitively_with_optional_application_prefix() {
        let key = test_key(Alg::EdDSA);
        let with_typ = |typ: Value| {
            let header = json!({"alg": "EdDSA", "typ": typ, "kid": key.kid()});
            forge(&header, |input| key.sign(input).unwrap())
        };
        for ok in ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+Jwt"] {
            assert!(check(&with_typ(json!(ok))).is_ok(), "{ok}");
            let keys = published();
            assert!(verify(&with_typ(json!(ok)), "application/at+jwt", |kid| keys.get(kid)).is_ok(), "{ok}");
        }
        for bad in ["JWT", "jwt", "application/jwt", "at+jwt ", "text/at+jwt", "application/x/at+jwt", ""] {
            assert!(matches!(check(&with_typ(json!(bad))).unwrap_err(), JwsError::WrongTyp { .. }), "{bad}");
        }
        let no_typ = forge(&json!({"alg": "EdDSA", "kid": key.kid()}), |input| key.sign(input).unwrap());
        assert!(matches!(check(&no_typ).unwrap_err(), JwsError::WrongTyp { found: None, .. }));
        assert!(matches!(check(&with_typ(json!(1))).unwrap_err(), JwsError::Malformed(_)));
    }

    #[test]
    fn crit_is_rejected() {
        let key = test_key(Alg::ES256);
        let header = json!({"alg": "ES256", "typ": TYP, "kid": key.kid(), "crit": ["exp"], "exp": 1});
        let token = forge(&header, |input| key.sign(input).unwrap());
        assert_eq!(check(&token).unwrap_err(), JwsError::UnsupportedCrit);
        for bad in [json!([]), json!("exp"), json!([1])] {
            let header = json!({"alg": "ES256", "typ": TYP, "kid": key.kid(), "crit": bad});
            let token = forge(&header, |input| key.sign(input).unwrap());
            assert!(matches!(check(&token).unwrap_err(), JwsError::Malformed(_)), "{bad}");
        }
    }

    #[test]
    fn structurally_broken_tokens_are_malformed() {
        let good = token(Alg::ES256);
        let parts: Vec<&str> = good.split('.').collect();
        let key = test_key(Alg::ES256);
        let signed = |header: &str, claims: &str| {
            let input = format!("{}.{}", enc(header), enc(claims));
            format!("{input}.{}", enc(key.sign(input.as_bytes()).unwrap()))
        };
        let header = header_for(key).to_string();
        let cases = [
            good[..good.len() - 1].to_owned(),                   // truncated signature
            good[..good.rfind('.').unwrap()].to_owned(),         // two parts
            parts[0].to_owned(),                                 // one part
            String::new(),                                       // empty
            format!("{good}."),                                  // extra dot at the end
            format!(".{good}"),                                  // extra dot at the start
            format!("{}.{}..{}", parts[0], parts[1], parts[2]),  // extra dot inside
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),  // padding on the header
            format!("{}.{}=.{}", parts[0], parts[1], parts[2]),  // padding on the claims
            format!("{}.{}.{}==", parts[0], parts[1], parts[2]), // padding on the signature
            format!("{}.{}.{}", parts[0], parts[1], parts[2].replace('-', "+").replace('_', "/") + "+/"), // std alphabet
            format!("{} .{}.{}", parts[0], parts[1], parts[2]),                                           // whitespace
            signed("not json", "{}"),                                   // non-JSON header
            signed("[\"ES256\"]", "{}"),                                // header not an object
            signed(r#"{"typ":"at+jwt"}"#, "{}"),                        // header without alg
            signed(r#"{"alg":256}"#, "{}"),                             // alg not a string
            signed(&header, "[1,2]"),                                   // claims not an object
            signed(&header, "eyJ"),                                     // claims not JSON
            format!("{}.{}.{}", enc([0xff, 0xfe]), parts[1], parts[2]), // header not UTF-8
        ];
        // Cut at a base64 group boundary, the signature decodes but is too short.
        assert_eq!(check(&good[..good.len() - 2]).unwrap_err(), JwsError::BadSignature);
        for case in cases {
            assert!(
                matches!(decode_unverified(&case), Err(JwsError::Malformed(_))),
                "decoded {case:?}: {:?}",
                decode_unverified(&case)
            );
            assert!(check(&case).is_err(), "{case:?}");
        }
    }

    #[test]
    fn a_non_canonical_last_base64_character_is_rejected() {
        let good = token(Alg::EdDSA);
        let (rest, sig) = good.rsplit_once('.').unwrap();
        // A 64-byte signature is 86 characters; the last carries 2 unused bits that must be zero.
        let last = sig.chars().last().unwrap();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = alphabet.find(last).unwrap();
        let sibling = alphabet.chars().nth(index ^ 1).unwrap();
        let changed = format!("{rest}.{}{sibling}", &sig[..sig.len() - 1]);
        assert!(matches!(decode_unverified(&changed), Err(JwsError::Malformed(_))));
    }

    #[test]
    fn oversized_tokens_are_rejected_before_decoding() {
        let big = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(decode_unverified(&big).unwrap_err(), JwsError::TooLarge);
        let padded_claims = json!({"pad": "x".repeat(MAX_TOKEN_LEN)}).to_string();
        let key = test_key(Alg::ES256);
        let input = format!("{}.{}", enc(header_for(key).to_string()), enc(padded_claims));
        let token = format!("{input}.{}", enc(key.sign(input.as_bytes()).unwrap()));
        assert_eq!(check(&token).unwrap_err(), JwsError::TooLarge);
    }

    /// Deterministic xorshift, so a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, bound: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % bound.max(1) as u64) as usize
        }
    }

    fn mutate(rng: &mut Rng, token: &str) -> String {
        const CHARS: &[char] = &['A', 'z', '0', '-', '_', '.', '=', '+', '/', ' ', '\0', 'é', '"', '{', '}'];
        let mut chars: Vec<char> = token.chars().collect();
        for _ in 0..=rng.below(3) {
            let at = rng.below(chars.len() + 1);
            let ch = CHARS[rng.below(CHARS.len())];
            match rng.below(7) {
                0 if at < chars.len() => chars[at] = ch,
                1 if at < chars.len() => {
                    chars.remove(at);
                }
                2 => chars.insert(at, ch),
                3 => chars.truncate(at),
                4 if at < chars.len() => {
                    let replacement = if chars[at] == 'A' { 'B' } else { 'A' };
                    chars[at] = replacement;
                }
                5 => {
                    let mut parts: Vec<String> =
                        chars.iter().collect::<String>().split('.').map(str::to_owned).collect();
                    let (i, j) = (rng.below(parts.len()), rng.below(parts.len()));
                    parts.swap(i, j);
                    chars = parts.join(".").chars().collect();
                }
                _ => {
                    let tail: Vec<char> = chars[at.min(chars.len())..].to_vec();
                    chars.extend(tail);
                }
            }
        }
        chars.into_iter().collect()
    }

    #[test]
    fn random_and_mutated_input_never_panics_and_never_verifies() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let keys = published();
        let lookup = |kid: &str| keys.get(kid);
        let valid: Vec<String> = Alg::ALL.into_iter().map(token).collect();
        let mut mutated_checked = 0;
        for round in 0..2400 {
            let input = match round % 4 {
                0 => {
                    let bytes: Vec<u8> = (0..rng.below(300)).map(|_| rng.below(256) as u8).collect();
                    String::from_utf8_lossy(&bytes).into_owned()
                }
                1 => {
                    let alphabet = b"ABCxyz019-_.=+/ ";
                    (0..rng.below(400)).map(|_| alphabet[rng.below(alphabet.len())] as char).collect()
                }
                2 => {
                    // Well-formed parts that may decode: random JSON-ish headers over real keys.
                    let alg = ["none", "HS256", "ES256", "RS256", "EdDSA", "es256"][rng.below(6)];
                    let kid = test_key(Alg::ALL[rng.below(3)]).kid();
                    let forged = json!({"alg": alg, "typ": TYP, "kid": kid});
                    let sig: Vec<u8> = (0..[0, 64, 256][rng.below(3)]).map(|_| rng.below(256) as u8).collect();
                    format!("{}.{}.{}", enc(forged.to_string()), enc(claims()), enc(sig))
                }
                _ => valid[rng.below(valid.len())].clone(),
            };
            let input = if round % 4 == 3 { mutate(&mut rng, &input) } else { input };
            let _ = decode_unverified(&input);
            let result = verify(&input, TYP, lookup);
            if !valid.contains(&input) {
                assert!(result.is_err(), "verified a forged or mutated token: {input:?}");
                mutated_checked += 1;
            }
        }
        assert!(mutated_checked > 2000);
        for token in &valid {
            assert!(verify(token, TYP, lookup).is_ok());
        }
    }
}
