//! High-entropy secrets: generation, hashing, constant-time comparison.
//!
//! Secrets are 256 random bits, shown once, and stored only as SHA-256. Because they are
//! uniformly random, an unsalted fast hash is the right tool (no password stretching needed).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

/// A secret value. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// `prefix` + 43 base64url characters of randomness (prefixes let secret scanners spot leaks).
    pub fn generate(prefix: &str) -> Secret {
        Secret(format!("{prefix}{}", random_token(32)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> [u8; 32] {
        hash(self.0.as_bytes())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// `n` random bytes, base64url without padding.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // SystemRandom only fails when the OS has no entropy source at all; nothing can run then.
    SystemRandom::new().fill(&mut bytes).expect("operating system random number generator failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash(value: &[u8]) -> [u8; 32] {
    let d = digest(&SHA256, value);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Compares a presented secret with a stored hash in constant time. When the client is unknown,
/// pass `None`: the same hashing and comparison run against a fixed dummy so that unknown and
/// known clients take the same time to reject.
pub fn verify(presented: &str, stored_hash: Option<&[u8]>) -> bool {
    const DUMMY: [u8; 32] = [0x5a; 32];
    let computed = hash(presented.as_bytes());
    let (expected, known) = match stored_hash {
        Some(h) if h.len() == 32 => (h, true),
        _ => (&DUMMY[..], false),
    };
    let equal: bool = computed.ct_eq(expected).into();
    equal & known
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_prefixed_random_and_verify_against_their_hash() {
        let a = Secret::generate("jts_");
        let b = Secret::generate("jts_");
        assert!(a.expose().starts_with("jts_"));
        assert_eq!(a.expose().len(), 4 + 43);
        assert_ne!(a, b);
        assert!(verify(a.expose(), Some(&a.hash())));
        assert!(!verify(b.expose(), Some(&a.hash())));
    }

    #[test]
    fn unknown_client_never_verifies_even_with_the_dummy_preimage() {
        assert!(!verify("anything", None));
        assert!(!verify("", Some(&[0u8; 31])));
    }

    #[test]
    fn debug_output_redacts_the_value() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
