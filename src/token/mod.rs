//! Job tokens: the claim set (SPEC §5), pure encoding, and the JWS layer.

pub mod claims;
pub mod details;
pub mod jws;

pub use claims::{subject, Audience, Claims};

use crate::keys::{KeyError, KeyPair};

/// The `typ` of every job token (RFC 9068 §2.1).
pub const TOKEN_TYPE: &str = "at+jwt";

/// Signs `claims` with `key`: header `{"alg", "typ": "at+jwt", "kid"}`, the key choosing `alg`.
pub fn encode(claims: &Claims, key: &KeyPair) -> Result<String, KeyError> {
    let header = serde_json::json!({ "alg": key.alg().as_str(), "typ": TOKEN_TYPE, "kid": key.kid() });
    let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Sign(e.to_string()))?;
    jws::sign_compact(&header, &payload, key)
}
