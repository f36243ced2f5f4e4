//! Signing keys: key material (generate, load, sign, verify), private key files, the pure
//! rotation plan (SPEC §7), and the JWKS document.

pub mod files;
pub mod jwks;
pub mod material;
pub mod rotation;

pub use jwks::JwksDocument;
pub use material::{jwk_thumbprint, Alg, KeyError, KeyPair, PublicKey, UnknownAlg};
pub use rotation::{KeyAction, KeyMeta, KeyState, RotationPolicy};
