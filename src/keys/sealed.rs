//! Private signing keys sealed at rest under a key-encryption key (KEK), for key storage shared
//! by many replicas (issue 8; the anchor is ORY Hydra's `secrets.system`, which encrypts the JWKs
//! Hydra keeps in its database).
//!
//! # The key-encryption key
//!
//! `JOBTOKEN_KEY_ENCRYPTION_KEY` (flag `--key-encryption-key`; prefer the environment, a flag is
//! visible in `ps`) is the base64 of exactly 32 random bytes, in the standard or the URL-safe
//! alphabet, padding optional. Generate one with either of:
//!
//! ```text
//! openssl rand -base64 32
//! head -c32 /dev/urandom | base64
//! ```
//!
//! Every replica of one installation must be given the same KEK. It is used directly as the
//! AES-256-GCM key (no derivation: it already is 256 uniformly random bits).
//!
//! ## Which keys are refused (the rule)
//!
//! A KEK is refused, with an error that names the setting and never its value, when:
//! - it is empty, is not base64, or does not decode to exactly 32 bytes;
//! - its 32 bytes are all equal, or take fewer than 16 distinct values;
//! - its 32 bytes are all printable ASCII (`0x20..=0x7e`): the base64 of a passphrase, not of
//!   random bytes;
//! - its base64 text has no upper-case or no lower-case letter: typed text (a passphrase used
//!   as if it were base64), not the output of a random generator.
//!
//! Thirty-two random bytes trip one of these rules with a probability below 10⁻⁹ (the letter-case
//! rule dominates at about 4 × 10⁻¹⁰; printable bytes, about 2 × 10⁻¹⁴); should it ever happen,
//! generate another key.
//!
//! # The sealed format (version 1)
//!
//! ```text
//! b"jtk1" || nonce (12 bytes) || AES-256-GCM ciphertext of the PKCS#8 PEM || tag (16 bytes)
//! associated data: b"jtk1" || kid (UTF-8)
//! ```
//!
//! Security invariants:
//! - the nonce is 96 fresh bits from the operating system's generator for every seal, so two
//!   seals of the same key differ; keys are sealed a few times a month, far below the 2³² seals
//!   under one KEK that random 96-bit nonces allow;
//! - the `kid` (and the version) is authenticated as associated data, so a sealed key copied to
//!   another key's row does not open;
//! - [`open`] authenticates before it returns anything: a wrong KEK, a wrong kid, a truncated or
//!   altered value, or an unknown version is an error, never a panic and never garbage.
//!
//! # Rotating the key-encryption key (`jobtoken keys rewrap`)
//!
//! `jobtoken keys rewrap --from-key OLD --to-key NEW` opens every stored private key under OLD and
//! seals it under NEW in one transaction ([`rewrap`]); a key already sealed under NEW is left as
//! it is, so running it twice is harmless; a key that opens under neither stops it with nothing
//! changed (see [`crate::keys::storage`] for where keys are stored). The procedure:
//!
//! 1. generate NEW (`openssl rand -base64 32`) and put it in your secret store next to OLD;
//! 2. run `jobtoken keys rewrap --from-key OLD --to-key NEW` once, against the shared database;
//! 3. restart every replica with `JOBTOKEN_KEY_ENCRYPTION_KEY=NEW` (a rolling restart is fine:
//!    running replicas keep the keys they have loaded and keep signing; a replica still on OLD
//!    refuses to change keys, since they no longer open under its KEK); do not rotate signing keys
//!    until the last replica runs with NEW;
//! 4. run the same `rewrap` again, which reseals any key a replica still on OLD created
//!    meanwhile and otherwise changes nothing; then destroy OLD.

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom as _, SystemRandom};

/// The first bytes of a version-1 sealed key.
pub const VERSION: &[u8; 4] = b"jtk1";
/// Bytes a sealed key adds to the private key: version, nonce and tag.
pub const OVERHEAD: usize = VERSION.len() + NONCE_LEN + TAG_LEN;
const TAG_LEN: usize = 16;
const KEK_LEN: usize = 32;
const MIN_DISTINCT_BYTES: usize = 16;

/// Standard or URL-safe base64, with or without padding.
const BASE64_FORMS: [GeneralPurpose; 2] = [
    GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    ),
    GeneralPurpose::new(
        &alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    ),
];

/// A key-encryption key: 32 random bytes, held only as an AES-256-GCM key.
///
/// Security invariant: neither `Debug` nor any other method reveals its bytes.
#[derive(Clone)]
pub struct KeyEncryptionKey {
    key: LessSafeKey,
}

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey(<redacted>)")
    }
}

/// Why a key-encryption key was refused. The message never contains the key; the caller
/// prefixes the name of the setting it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KekError {
    #[error("is empty; generate a key with `openssl rand -base64 32`")]
    Empty,
    #[error("is not valid base64 (standard or URL-safe alphabet, padding optional); generate a key with `openssl rand -base64 32`")]
    NotBase64,
    #[error("must be the base64 of exactly 32 bytes, but decodes to {0} bytes; generate a key with `openssl rand -base64 32`")]
    WrongLength(usize),
    #[error("is weak: its 32 bytes are all the same; generate a key with `openssl rand -base64 32`")]
    AllBytesEqual,
    #[error("is weak: its 32 bytes take only {0} distinct values (random bytes take about 30); generate a key with `openssl rand -base64 32`")]
    FewDistinctBytes(usize),
    #[error("is weak: it is the base64 of printable text such as a passphrase, not of random bytes; generate a key with `openssl rand -base64 32`")]
    PrintableText,
    #[error("is weak: its base64 uses letters of one case only, like typed text rather than random bytes; generate a key with `openssl rand -base64 32`")]
    SingleLetterCase,
}

impl KeyEncryptionKey {
    /// Parses the base64 of 32 random bytes (surrounding whitespace ignored) and refuses weak
    /// keys by the rule in the module documentation.
    pub fn from_base64(text: &str) -> Result<KeyEncryptionKey, KekError> {
        let text = text.trim_ascii();
        if text.is_empty() {
            return Err(KekError::Empty);
        }
        let bytes = BASE64_FORMS.iter().find_map(|form| form.decode(text).ok()).ok_or(KekError::NotBase64)?;
        if bytes.len() != KEK_LEN {
            return Err(KekError::WrongLength(bytes.len()));
        }
        let mut seen = [false; 256];
        for &b in &bytes {
            seen[usize::from(b)] = true;
        }
        let distinct = seen.iter().filter(|&&s| s).count();
        if distinct == 1 {
            return Err(KekError::AllBytesEqual);
        }
        if distinct < MIN_DISTINCT_BYTES {
            return Err(KekError::FewDistinctBytes(distinct));
        }
        if bytes.iter().all(|b| (0x20..=0x7e).contains(b)) {
            return Err(KekError::PrintableText);
        }
        if !text.bytes().any(|c| c.is_ascii_uppercase()) || !text.bytes().any(|c| c.is_ascii_lowercase()) {
            return Err(KekError::SingleLetterCase);
        }
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| KekError::WrongLength(bytes.len()))?;
        Ok(KeyEncryptionKey { key: LessSafeKey::new(key) })
    }
}

/// Why a private key could not be sealed or opened. No variant carries key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("sealed private key is truncated ({0} bytes; a sealed key has at least {OVERHEAD})")]
    Truncated(usize),
    #[error("sealed private key has an unknown format (expected version jtk1)")]
    UnknownVersion,
    /// AES-GCM cannot tell these apart, and must not: the tag simply does not verify.
    #[error(
        "sealed private key does not open: the key-encryption key is not the one it was sealed \
         under, or it was sealed for another kid, or it was altered"
    )]
    DoesNotOpen,
    #[error("the operating system's random number generator failed")]
    Random,
    #[error("private key is too large to seal")]
    TooLarge,
}

/// What [`rewrap`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrapped {
    /// Opened under the old KEK; here it is sealed under the new one (store it).
    Resealed(Vec<u8>),
    /// It already opens under the new KEK; leave the row as it is.
    AlreadyUnderNewKey,
}

/// Seals `private_key` (PKCS#8 PEM bytes) for the key `kid` under `kek`, with a fresh nonce.
pub fn seal(kek: &KeyEncryptionKey, kid: &str, private_key: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).map_err(|_| SealError::Random)?;
    let mut body = private_key.to_vec();
    kek.key
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), associated_data(kid), &mut body)
        .map_err(|_| SealError::TooLarge)?;
    let mut sealed = Vec::with_capacity(VERSION.len() + NONCE_LEN + body.len());
    sealed.extend_from_slice(VERSION);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&body);
    Ok(sealed)
}

/// Opens a key sealed by [`seal`] for `kid` under `kek`; authenticated before anything is
/// returned.
pub fn open(kek: &KeyEncryptionKey, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    let header = &sealed[..sealed.len().min(VERSION.len())];
    if header != &VERSION[..header.len()] {
        return Err(SealError::UnknownVersion);
    }
    if sealed.len() < OVERHEAD {
        return Err(SealError::Truncated(sealed.len()));
    }
    let (nonce, body) = sealed[VERSION.len()..].split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Truncated(sealed.len()))?;
    let mut body = body.to_vec();
    let len = kek.key.open_in_place(nonce, associated_data(kid), &mut body).map_err(|_| SealError::DoesNotOpen)?.len();
    body.truncate(len);
    Ok(body)
}

/// Reseals a key from `old` to `new` (for `jobtoken keys rewrap`). A key that does not open
/// under `old` but does under `new` was already rewrapped: [`Rewrapped::AlreadyUnderNewKey`].
pub fn rewrap(
    old: &KeyEncryptionKey,
    new: &KeyEncryptionKey,
    kid: &str,
    sealed: &[u8],
) -> Result<Rewrapped, SealError> {
    match open(old, kid, sealed) {
        Ok(private_key) => seal(new, kid, &private_key).map(Rewrapped::Resealed),
        Err(SealError::DoesNotOpen) if open(new, kid, sealed).is_ok() => Ok(Rewrapped::AlreadyUnderNewKey),
        Err(e) => Err(e),
    }
}

/// `b"jtk1" || kid`: binds the format version and the row's kid to the ciphertext.
fn associated_data(kid: &str) -> Aad<Vec<u8>> {
    let mut aad = Vec::with_capacity(VERSION.len() + kid.len());
    aad.extend_from_slice(VERSION);
    aad.extend_from_slice(kid.as_bytes());
    Aad::from(aad)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

    use super::*;
    use crate::keys::material::test_key;
    use crate::keys::{Alg, KeyPair};

    /// 32 random bytes that pass every rule (retried in the ~10⁻⁹ case they do not).
    pub(crate) fn random_kek_bytes() -> [u8; 32] {
        loop {
            let mut bytes = [0u8; 32];
            SystemRandom::new().fill(&mut bytes).unwrap();
            if KeyEncryptionKey::from_base64(&STANDARD.encode(bytes)).is_ok() {
                return bytes;
            }
        }
    }

    fn kek() -> KeyEncryptionKey {
        KeyEncryptionKey::from_base64(&STANDARD.encode(random_kek_bytes())).unwrap()
    }

    fn pem() -> Vec<u8> {
        test_key(Alg::ES256).to_pkcs8_pem().into_bytes()
    }

    /// A key with `distinct` distinct byte values, none printable (so only that rule can trip).
    fn bytes_with_distinct_values(distinct: u8) -> [u8; 32] {
        std::array::from_fn(|i| 0x80 + (i as u8 % distinct))
    }

    #[test]
    fn a_sealed_key_opens_to_the_same_bytes_for_every_algorithm() {
        let kek = kek();
        for alg in Alg::ALL {
            let pem = test_key(alg).to_pkcs8_pem();

            let sealed = seal(&kek, "kid-1", pem.as_bytes()).unwrap();

            assert!(sealed.starts_with(b"jtk1"));
            assert_eq!(sealed.len(), pem.len() + OVERHEAD);
            assert!(!sealed.windows(10).any(|w| pem.as_bytes().windows(10).any(|p| p == w)), "plaintext leaked");
            let opened = open(&kek, "kid-1", &sealed).unwrap();
            assert_eq!(opened, pem.as_bytes());
            assert!(KeyPair::from_pkcs8_pem(alg, std::str::from_utf8(&opened).unwrap()).is_ok());
        }
    }

    #[test]
    fn a_sealed_key_does_not_open_under_another_key_encryption_key() {
        let sealed = seal(&kek(), "kid-1", &pem()).unwrap();

        assert_eq!(open(&kek(), "kid-1", &sealed), Err(SealError::DoesNotOpen));
    }

    #[test]
    fn a_sealed_key_does_not_open_for_another_kid() {
        let kek = kek();
        let sealed = seal(&kek, "kid-1", &pem()).unwrap();

        for other in ["kid-2", "kid-", "kid-1 ", "", "KID-1"] {
            assert_eq!(open(&kek, other, &sealed), Err(SealError::DoesNotOpen), "{other:?}");
        }
    }

    #[test]
    fn every_truncation_of_a_sealed_key_fails_to_open() {
        let kek = kek();
        let sealed = seal(&kek, "kid-1", &pem()).unwrap();

        for len in 0..sealed.len() {
            let result = open(&kek, "kid-1", &sealed[..len]);
            assert!(result.is_err(), "truncated to {len} bytes opened");
            if len < OVERHEAD {
                assert_eq!(result, Err(SealError::Truncated(len)));
            }
        }
    }

    #[test]
    fn every_single_bit_flip_of_a_sealed_key_fails_to_open() {
        let kek = kek();
        let sealed = seal(&kek, "kid-1", &pem()).unwrap();

        for i in 0..sealed.len() {
            for bit in 0..8 {
                let mut altered = sealed.clone();
                altered[i] ^= 1 << bit;
                let expected = if i < VERSION.len() { SealError::UnknownVersion } else { SealError::DoesNotOpen };
                assert_eq!(open(&kek, "kid-1", &altered), Err(expected), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn bytes_of_another_version_or_format_are_refused_as_unknown() {
        let kek = kek();
        let mut sealed = seal(&kek, "kid-1", &pem()).unwrap();
        sealed[3] = b'2';

        assert_eq!(open(&kek, "kid-1", &sealed), Err(SealError::UnknownVersion));
        assert_eq!(open(&kek, "kid-1", &pem()), Err(SealError::UnknownVersion));
        assert_eq!(open(&kek, "kid-1", b"jt"), Err(SealError::Truncated(2)));
    }

    #[test]
    fn two_seals_of_the_same_key_differ_and_both_open() {
        let kek = kek();

        let a = seal(&kek, "kid-1", &pem()).unwrap();
        let b = seal(&kek, "kid-1", &pem()).unwrap();

        assert_ne!(a, b);
        assert_ne!(a[4..16], b[4..16], "nonces must differ");
        assert_eq!(open(&kek, "kid-1", &a).unwrap(), open(&kek, "kid-1", &b).unwrap());
    }

    #[test]
    fn a_rewrapped_key_opens_under_the_new_key_and_no_longer_under_the_old() {
        let (old, new) = (kek(), kek());
        let sealed = seal(&old, "kid-1", &pem()).unwrap();

        let Rewrapped::Resealed(rewrapped) = rewrap(&old, &new, "kid-1", &sealed).unwrap() else {
            panic!("expected the key to be resealed");
        };

        assert_eq!(open(&new, "kid-1", &rewrapped).unwrap(), pem());
        assert_eq!(open(&old, "kid-1", &rewrapped), Err(SealError::DoesNotOpen));
        assert_eq!(rewrap(&old, &new, "kid-1", &rewrapped), Ok(Rewrapped::AlreadyUnderNewKey));
    }

    #[test]
    fn rewrap_refuses_a_key_that_opens_under_neither_key_or_for_another_kid() {
        let (old, new) = (kek(), kek());
        let sealed = seal(&kek(), "kid-1", &pem()).unwrap();
        let mine = seal(&old, "kid-1", &pem()).unwrap();

        assert_eq!(rewrap(&old, &new, "kid-1", &sealed), Err(SealError::DoesNotOpen));
        assert_eq!(rewrap(&old, &new, "kid-2", &mine), Err(SealError::DoesNotOpen));
        assert_eq!(rewrap(&old, &new, "kid-1", &mine[..20]), Err(SealError::Truncated(20)));
    }

    #[test]
    fn good_keys_parse_in_either_alphabet_with_or_without_padding() {
        let bytes = random_kek_bytes();
        let probe = seal(&KeyEncryptionKey::from_base64(&STANDARD.encode(bytes)).unwrap(), "k", b"x").unwrap();

        for form in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            let text = form.encode(bytes);
            for written in [text.clone(), format!("{text}\n"), format!("  {text} ")] {
                let kek = KeyEncryptionKey::from_base64(&written).unwrap();
                assert_eq!(open(&kek, "k", &probe).unwrap(), b"x", "{written:?} is another key");
            }
        }
    }

    #[test]
    fn malformed_and_weak_keys_are_refused_with_the_reason() {
        let cases: Vec<(String, KekError)> = vec![
            (String::new(), KekError::Empty),
            ("  \n".into(), KekError::Empty),
            ("not base64 at all!".into(), KekError::NotBase64),
            (format!("{}+_", &STANDARD_NO_PAD.encode(random_kek_bytes())[..41]), KekError::NotBase64),
            (STANDARD.encode(&random_kek_bytes()[..16]), KekError::WrongLength(16)),
            (STANDARD.encode([random_kek_bytes(), random_kek_bytes()].concat()), KekError::WrongLength(64)),
            (STANDARD.encode([random_kek_bytes().as_slice(), &[1]].concat()), KekError::WrongLength(33)),
            // 64 hex digits: a common mistake (`openssl rand -hex 32`).
            ("0123456789abcdef".repeat(4), KekError::WrongLength(48)),
            (STANDARD.encode([0u8; 32]), KekError::AllBytesEqual),
            (STANDARD.encode([0xa7u8; 32]), KekError::AllBytesEqual),
            (STANDARD.encode(bytes_with_distinct_values(2)), KekError::FewDistinctBytes(2)),
            (STANDARD.encode(bytes_with_distinct_values(15)), KekError::FewDistinctBytes(15)),
            (STANDARD.encode("correct horse battery staple 123"), KekError::PrintableText),
            (STANDARD.encode("Tr0ub4dor&3-Tr0ub4dor&3-Xyz!qwer"), KekError::PrintableText),
            ("mysecretpassphrasethatiswaytoolongtoguessno".into(), KekError::SingleLetterCase),
            ("MYSECRETPASSPHRASETHATISWAYTOOLONGTOGUESSNA".into(), KekError::SingleLetterCase),
        ];

        for (text, expected) in cases {
            assert_eq!(KeyEncryptionKey::from_base64(&text).map(|_| ()), Err(expected), "{text:?}");
        }
        assert!(KeyEncryptionKey::from_base64(&STANDARD.encode(bytes_with_distinct_values(16))).is_ok());
    }

    #[test]
    fn refusals_never_repeat_the_key() {
        let weak = [
            STANDARD.encode([0x41u8; 32]),
            STANDARD.encode(bytes_with_distinct_values(3)),
            STANDARD.encode("correct horse battery staple 123"),
            "mysecretpassphrasethatiswaytoolongtoguessno".into(),
            STANDARD.encode(&random_kek_bytes()[..20]),
            "s3cr3t passphrase".into(),
        ];

        for text in weak {
            let message = KeyEncryptionKey::from_base64(&text).unwrap_err().to_string();
            assert!(!message.contains(text.trim_end_matches('=')), "{message}");
            assert!(!message.contains("passphrase t") && !message.contains("horse"), "{message}");
        }
    }

    #[test]
    fn debug_of_a_key_encryption_key_shows_no_key_material() {
        let bytes = random_kek_bytes();
        let kek = KeyEncryptionKey::from_base64(&URL_SAFE_NO_PAD.encode(bytes)).unwrap();

        let shown = format!("{kek:?} {kek:#?}");

        assert_eq!(format!("{kek:?}"), "KeyEncryptionKey(<redacted>)");
        for leak in key_renderings(&bytes) {
            assert!(!shown.contains(&leak), "{shown} contains {leak}");
        }
    }

    /// Every way a key's bytes might appear in text: base64 in each form, hex, `Debug` of bytes.
    pub(crate) fn key_renderings(bytes: &[u8; 32]) -> Vec<String> {
        let mut out: Vec<String> =
            [STANDARD_NO_PAD, URL_SAFE_NO_PAD].iter().map(|f| f.encode(bytes)[..16].to_owned()).collect();
        out.push(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()[..16].to_owned());
        out.push(format!("{:?}", &bytes[..4]).trim_end_matches(']').to_owned());
        out
    }
}
