//! Signing keys: key material (generate, load, sign, verify), private key files, private keys
//! sealed under a key-encryption key, the pure rotation plan (SPEC §7), and the JWKS document.

pub mod files;
pub mod jwks;
pub mod material;
pub mod registry;
pub mod rotation;
pub mod sealed;
pub mod storage;

pub use jwks::JwksDocument;
pub use material::{jwk_thumbprint, Alg, KeyError, KeyPair, PublicKey, UnknownAlg};
pub use rotation::{KeyAction, KeyFamily, KeyMeta, KeyState, RotationPolicy};
pub use sealed::{KekError, KeyEncryptionKey, SealError};
pub use storage::{KeyStorage, StorageError};
