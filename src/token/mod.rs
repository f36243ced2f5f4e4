//! Job tokens: the claim set (SPEC §5), pure encoding, and the JWS layer.

pub mod claims;
pub mod details;
pub mod id_token;
pub mod jws;

pub use claims::{subject, Audience, Claims};

use crate::keys::{KeyError, KeyPair};

/// The `typ` of every job token (RFC 9068 §2.1).
pub const TOKEN_TYPE: &str = "at+jwt";

/// Longest token this server issues, in bytes. A token travels in an `Authorization` header —
/// as `Bearer <token>`, or base64-encoded inside HTTP Basic when a registry client logs in with
/// it (4/3 of its size) — and common proxies refuse a header line over 8 KB (nginx's
/// `large_client_header_buffers`, Apache's `LimitRequestFieldSize`). 5 KiB keeps both forms
/// under 7 KB.
pub const MAX_ISSUED_TOKEN_LEN: usize = 5 * 1024;

/// Why a token could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The request asked for more than fits: the caller's fault, a 400.
    #[error(
        "the token would be {len} bytes, over the limit of {MAX_ISSUED_TOKEN_LEN} bytes that keeps it within an \
         8 KB HTTP header; its largest variable claims: {parts}"
    )]
    TooLarge { len: usize, parts: String },
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Signs `claims` with `key`: header `{"alg", "typ": "at+jwt", "kid"}`, the key choosing `alg`.
pub fn encode(claims: &Claims, key: &KeyPair) -> Result<String, EncodeError> {
    let header = serde_json::json!({ "alg": key.alg().as_str(), "typ": TOKEN_TYPE, "kid": key.kid() });
    let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Sign(e.to_string()))?;
    let token = jws::sign_compact(&header, &payload, key)?;
    match token.len() {
        len if len > MAX_ISSUED_TOKEN_LEN => Err(EncodeError::TooLarge { len, parts: largest_parts(claims) }),
        _ => Ok(token),
    }
}

/// The claims a request can make large, biggest first, with their JSON sizes: what to ask less of.
fn largest_parts(claims: &Claims) -> String {
    let size = |v: serde_json::Result<Vec<u8>>| v.map_or(0, |bytes| bytes.len());
    let mut parts = [
        ("authorization_details", size(serde_json::to_vec(&claims.authorization_details))),
        ("aud", size(serde_json::to_vec(&claims.aud))),
        ("act (the exchange chain)", claims.act.as_ref().map_or(0, |act| size(serde_json::to_vec(act)))),
        ("sub", claims.sub.len()),
    ];
    parts.sort_by_key(|part| std::cmp::Reverse(part.1));
    parts.iter().filter(|(_, n)| *n > 0).map(|(name, n)| format!("{name} {n} bytes")).collect::<Vec<_>>().join(", ")
}
