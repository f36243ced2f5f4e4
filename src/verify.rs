//! Offline verification of a job token against a JWKS, as a registry would do it
//! (`jobtoken token verify`).

use serde_json::{Map, Value};

use crate::keys::PublicKey;
use crate::token::{jws, TOKEN_TYPE};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The token is not valid; the reason says why.
    #[error("{0}")]
    Invalid(String),
    /// The JWKS could not be fetched or parsed.
    #[error("{0}")]
    Fetch(String),
}

/// Reads a JWKS from an http(s) URL or a file.
pub fn load_jwks(location: &str) -> Result<Vec<PublicKey>, VerifyError> {
    let body = if location.starts_with("http://") || location.starts_with("https://") {
        ureq::get(location)
            .call()
            .map_err(|e| VerifyError::Fetch(format!("fetching {location}: {e}")))?
            .body_mut()
            .read_to_string()
            .map_err(|e| VerifyError::Fetch(format!("reading {location}: {e}")))?
    } else {
        std::fs::read_to_string(location).map_err(|e| VerifyError::Fetch(format!("reading {location}: {e}")))?
    };
    let doc: Value =
        serde_json::from_str(&body).map_err(|e| VerifyError::Fetch(format!("{location} is not JSON: {e}")))?;
    let keys = doc["keys"].as_array().ok_or_else(|| VerifyError::Fetch(format!("{location} has no \"keys\" array")))?;
    // Keys this verifier cannot use (other algorithms, encryption keys) are skipped, as RFC 7517 §5 asks.
    Ok(keys.iter().filter_map(|k| PublicKey::from_jwk(k).ok()).collect())
}

/// Verifies signature (the key named by `kid` picks the algorithm), `typ`, `exp`, `nbf`, and the
/// expected issuer and audience when given. Returns the claims.
pub fn verify_offline(
    token: &str,
    jwks: &str,
    issuer: Option<&str>,
    audience: Option<&str>,
    now: i64,
) -> Result<Map<String, Value>, VerifyError> {
    let keys = load_jwks(jwks)?;
    check(token, &keys, issuer, audience, now).map_err(VerifyError::Invalid)
}

/// The checks, pure.
pub fn check(
    token: &str,
    keys: &[PublicKey],
    issuer: Option<&str>,
    audience: Option<&str>,
    now: i64,
) -> Result<Map<String, Value>, String> {
    let decoded =
        jws::verify(token, TOKEN_TYPE, |kid| keys.iter().find(|k| k.kid() == kid)).map_err(|e| e.to_string())?;
    let claims = decoded.claims;
    let int = |name: &str| {
        claims.get(name).and_then(Value::as_i64).ok_or_else(|| format!("{name} is missing or not an integer"))
    };
    if int("exp")? <= now {
        return Err("expired".into());
    }
    if int("nbf")? > now {
        return Err("not yet valid (nbf)".into());
    }
    if let Some(expected) = issuer {
        if claims.get("iss").and_then(Value::as_str) != Some(expected) {
            return Err(format!("iss is not {expected}"));
        }
    }
    if let Some(expected) = audience {
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => a == expected,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(expected)),
            _ => false,
        };
        if !ok {
            return Err(format!("aud does not include {expected}"));
        }
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Alg, KeyPair};
    use serde_json::json;

    fn token(key: &KeyPair, claims: Value) -> String {
        let header = json!({"alg": key.alg().as_str(), "typ": "at+jwt", "kid": key.kid()});
        jws::sign_compact(&header, claims.to_string().as_bytes(), key).unwrap()
    }

    #[test]
    fn checks_signature_times_issuer_and_audience() {
        let key = KeyPair::generate(Alg::ES256).unwrap();
        let keys = [key.public_key()];
        let t = token(&key, json!({"iss": "https://jt", "aud": ["reg", "pkg"], "exp": 200, "nbf": 100}));
        assert!(check(&t, &keys, Some("https://jt"), Some("pkg"), 150).is_ok());
        assert_eq!(check(&t, &keys, None, None, 200).unwrap_err(), "expired");
        assert!(check(&t, &keys, None, None, 99).unwrap_err().contains("nbf"));
        assert!(check(&t, &keys, Some("https://other"), None, 150).unwrap_err().contains("iss"));
        assert!(check(&t, &keys, None, Some("web"), 150).unwrap_err().contains("aud"));
        let other = KeyPair::generate(Alg::ES256).unwrap();
        assert!(check(&t, &[other.public_key()], None, None, 150).is_err(), "unknown kid");
    }
}
