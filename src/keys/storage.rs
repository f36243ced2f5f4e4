//! Where private signing keys live: one choice per process, made by [`crate::config::Config::key_storage`].
//!
//! - [`KeyStorage::Files`]: PKCS#8 PEM files in the keys directory (SPEC §7; the SQLite default).
//!   A key's file is written before its metadata is committed.
//! - [`KeyStorage::Database`]: the PKCS#8 PEM sealed (AES-256-GCM, [`super::sealed`]) under the
//!   key-encryption key, in `signing_keys.sealed_private_key`, inserted with the key's metadata in
//!   one statement; dropping a key's row drops its sealed bytes. Required on PostgreSQL, chosen on
//!   SQLite by setting `JOBTOKEN_KEY_ENCRYPTION_KEY`.
//!
//! Security invariant: a database's keys are all of one storage, the one this process uses, and
//! (database storage) all open under this process's key-encryption key; [`KeyStorage::check`]
//! refuses anything else before a key is created, changed or loaded, so a process with the wrong
//! setting never adds a key the others cannot read.

use std::path::{Path, PathBuf};

use super::sealed::{self, KeyEncryptionKey};
use super::{files, KeyPair};
use crate::config::KEY_ENCRYPTION_KEY_ENV;

/// Where this process keeps private keys.
#[derive(Debug, Clone)]
pub enum KeyStorage {
    /// The keys directory.
    Files(PathBuf),
    /// Sealed in the database under this key-encryption key (boxed: an AES key schedule is large).
    Database(Box<KeyEncryptionKey>),
}

/// Why a key cannot be stored or read. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("key {kid}: {reason}")]
    Key { kid: String, reason: String },
    #[error(
        "signing key {kid} is sealed in the database, but {KEY_ENCRYPTION_KEY_ENV} is not set, so this process \
         would keep keys in the keys directory; set {KEY_ENCRYPTION_KEY_ENV} to the key-encryption key the \
         database's keys are sealed under"
    )]
    SealedButNoKek { kid: String },
    #[error(
        "signing key {kid} lives in the keys directory, but {KEY_ENCRYPTION_KEY_ENV} is set, which keeps keys \
         sealed in the database; this installation keeps its keys in files, so unset {KEY_ENCRYPTION_KEY_ENV} \
         (switching an installation's key storage is refused rather than done silently)"
    )]
    FileButKek { kid: String },
    #[error(
        "signing key {kid} does not open under {KEY_ENCRYPTION_KEY_ENV}: it is not the key-encryption key the \
         database's keys are sealed under (after `jobtoken keys rewrap`, use the new one), or the stored key was \
         altered"
    )]
    WrongKek { kid: String },
}

impl KeyStorage {
    /// Keeps a freshly generated key before its metadata is committed: writes its file (durably)
    /// and returns `None`, or seals it and returns the bytes to insert with its metadata.
    pub fn keep(&self, key: &KeyPair) -> Result<Option<Vec<u8>>, StorageError> {
        let kid = key.kid();
        let failed = |reason: String| StorageError::Key { kid: kid.to_owned(), reason };
        match self {
            KeyStorage::Files(dir) => {
                files::write_private_key(dir, kid, &key.to_pkcs8_pem()).map_err(|e| failed(e.to_string()))?;
                Ok(None)
            }
            KeyStorage::Database(kek) => {
                sealed::seal(kek, kid, key.to_pkcs8_pem().as_bytes()).map(Some).map_err(|e| failed(e.to_string()))
            }
        }
    }

    /// Forgets a key whose metadata is gone (dropped) or was never committed. Database storage
    /// has nothing to do: the sealed bytes went with the row, or never reached it.
    pub fn forget(&self, kid: &str) {
        if let KeyStorage::Files(dir) = self {
            if let Err(e) = files::remove_private_key(dir, kid) {
                log::warn!("removing key file {kid}: {e}");
            }
        }
    }

    /// Refuses a stored key this process cannot use: a key of the other storage, or (database
    /// storage) one that does not open under this key-encryption key.
    pub fn check(&self, kid: &str, sealed: Option<&[u8]>) -> Result<(), StorageError> {
        match (self, sealed) {
            (KeyStorage::Files(_), None) => Ok(()),
            _ => self.private_key(kid, sealed).map(drop),
        }
    }

    /// The PKCS#8 PEM of `kid`, given the row's sealed bytes.
    pub fn private_key(&self, kid: &str, sealed: Option<&[u8]>) -> Result<String, StorageError> {
        let failed = |reason: String| StorageError::Key { kid: kid.to_owned(), reason };
        match (self, sealed) {
            (KeyStorage::Files(_), Some(_)) => Err(StorageError::SealedButNoKek { kid: kid.to_owned() }),
            (KeyStorage::Files(dir), None) => files::read_private_key(dir, kid).map_err(|e| failed(e.to_string())),
            (KeyStorage::Database(_), None) => Err(StorageError::FileButKek { kid: kid.to_owned() }),
            (KeyStorage::Database(kek), Some(bytes)) => match sealed::open(kek, kid, bytes) {
                Ok(pem) => String::from_utf8(pem).map_err(|_| failed("sealed private key is not PEM text".into())),
                Err(sealed::SealError::DoesNotOpen) => Err(StorageError::WrongKek { kid: kid.to_owned() }),
                Err(e) => Err(failed(e.to_string())),
            },
        }
    }
}

/// A key of a SQLite installation as a PostgreSQL database keeps it (`jobtoken migrate-data`):
/// a key from `keys_dir` is sealed under `kek`; a key already sealed must open under `kek` and is
/// carried over as it is (under another key-encryption key, `jobtoken keys rewrap` it first).
pub fn sealed_for_database(
    kek: &KeyEncryptionKey,
    keys_dir: &Path,
    kid: &str,
    stored: Option<&[u8]>,
) -> Result<Vec<u8>, StorageError> {
    match stored {
        Some(sealed) => {
            KeyStorage::Database(Box::new(kek.clone())).check(kid, Some(sealed))?;
            Ok(sealed.to_vec())
        }
        None => {
            let pem = KeyStorage::Files(keys_dir.to_owned()).private_key(kid, None)?;
            sealed::seal(kek, kid, pem.as_bytes())
                .map_err(|e| StorageError::Key { kid: kid.to_owned(), reason: e.to_string() })
        }
    }
}
