//! The container registry's view of the signing keys: libtrust key ids and the `rootcertbundle`.
//!
//! Docker's distribution (2.8, Debian's `docker-registry`) verifies a registry token with the
//! key whose libtrust key id equals the header `kid`, among the public keys of the certificates
//! in its `rootcertbundle`. It reads that bundle only at start, so the bundle holds every key
//! the JWKS publishes — the `next` key a whole rotation period before it signs, the active key,
//! and retired keys still published — and a registry restarted with a fresh bundle once per
//! rotation period always knows the signing key. Distribution verifies ES256 and RS256, not
//! EdDSA: Ed25519 keys are left out of the bundle and never sign registry tokens.

use super::{Alg, KeyPair, PublicKey};

/// Whether distribution can verify tokens of `alg`.
pub fn registry_supports(alg: Alg) -> bool {
    matches!(alg, Alg::ES256 | Alg::RS256)
}

/// The libtrust key id of `key` (github.com/docker/libtrust `keyIDFromCryptoKey`): the first
/// 240 bits of the SHA-256 of the DER SubjectPublicKeyInfo, base32 (RFC 4648, no padding) in
/// 12 groups of 4 characters separated by `:`.
pub fn libtrust_key_id(key: &PublicKey) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, &key.spki_der());
    let encoded = base32(&digest.as_ref()[..30]);
    let groups: Vec<&str> = (0..encoded.len()).step_by(4).map(|i| &encoded[i..i + 4]).collect();
    groups.join(":")
}

/// RFC 4648 base32 of `bytes`, whose length is a multiple of 5 (no padding needed).
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len() * 8 / 5);
    for chunk in bytes.chunks(5) {
        let mut block = [0u8; 8];
        block[..chunk.len()].copy_from_slice(chunk);
        let bits = u64::from_be_bytes(block);
        for i in 0..(chunk.len() * 8).div_ceil(5) {
            out.push(ALPHABET[((bits >> (59 - 5 * i)) & 31) as usize] as char);
        }
    }
    out
}

/// The PEM bundle of self-signed certificates for `keys` (those distribution can verify), in
/// the order given. A key whose certificate cannot be made is logged and left out.
pub fn bundle<'a>(keys: impl IntoIterator<Item = &'a KeyPair>) -> String {
    let mut pem = String::new();
    for key in keys.into_iter().filter(|k| registry_supports(k.alg())) {
        match key.self_signed_certificate() {
            Ok(cert) => pem.push_str(&cert),
            Err(e) => log::error!("signing key {}: left out of the registry bundle: {e}", key.kid()),
        }
    }
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc_4648_vectors() {
        assert_eq!(base32(b"fooba"), "MZXW6YTB");
        assert_eq!(base32(b"foobarbaz!"), "MZXW6YTBOJRGC6RB");
    }

    #[test]
    fn libtrust_key_id_has_twelve_groups_of_four() {
        let key = KeyPair::generate(Alg::ES256).unwrap();
        let id = libtrust_key_id(&key.public_key());
        let groups: Vec<&str> = id.split(':').collect();
        assert_eq!(groups.len(), 12);
        assert!(groups.iter().all(|g| g.len() == 4 && g.bytes().all(|b| ALPHABET_CHARS.contains(&b))));
    }

    const ALPHABET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    /// The key id is computed over our own SubjectPublicKeyInfo encoding; it must be the one in
    /// the certificate (what distribution hashes), for every algorithm.
    #[test]
    fn spki_of_every_algorithm_equals_the_certificates() {
        for alg in Alg::ALL {
            let key = KeyPair::generate(alg).unwrap();
            let pem = key.self_signed_certificate().unwrap();
            let der = pem_body(&pem);
            let ours = key.public_key().spki_der();
            assert!(contains(&der, &ours), "{alg}: the certificate does not carry our SubjectPublicKeyInfo");
        }
    }

    #[test]
    fn the_bundle_leaves_out_ed25519_keys() {
        let es = KeyPair::generate(Alg::ES256).unwrap();
        let ed = KeyPair::generate(Alg::EdDSA).unwrap();
        let rs = KeyPair::generate(Alg::RS256).unwrap();
        let pem = bundle([&es, &ed, &rs]);
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 2);
    }

    fn pem_body(pem: &str) -> Vec<u8> {
        use base64::Engine as _;
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD.decode(body).unwrap()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }
}
