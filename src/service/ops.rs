//! Operations: readiness and key rotation asked for by an operator.

use std::sync::Arc;

use crate::keys::KeyFamily;
use crate::signing::{KeyRing, KeyRingError, KeyView};
use crate::store::{health, Store, StoreError};

/// What `/health/ready` reports.
#[derive(Debug, Clone, Copy)]
pub struct Readiness {
    pub database: bool,
    pub signing_key: bool,
}

impl Readiness {
    pub fn ready(self) -> bool {
        self.database && self.signing_key
    }
}

/// Ready when the database answers and the active signing key can still sign.
pub async fn readiness(store: &Store, keys: &KeyRing) -> Readiness {
    let database = store.run(health::ping).await.is_ok();
    // The key ring always holds an active key; ready means it can still sign.
    let signing_key = keys.active().sign(b"readiness").is_ok();
    Readiness { database, signing_key }
}

/// Why an operator's rotation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The next key is younger than the JWKS cache lifetime (a safe sentence for the client).
    #[error(transparent)]
    TooSoon(KeyRingError),
    /// Any other failure; the cause is for the log only.
    #[error("key rotation failed: {0}")]
    Failed(KeyRingError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Rotates `family` now (see [`KeyRing::rotate_manual`]) and lists that family's keys as they
/// then stand.
pub async fn rotate(
    keys: &Arc<KeyRing>,
    store: &Store,
    family: KeyFamily,
    force: bool,
    now: i64,
) -> Result<Vec<KeyView>, RotateError> {
    let (ring, rotated_in) = (keys.clone(), store.clone());
    let rotated = actix_web::web::block(move || ring.rotate_manual(&rotated_in, family, force, now))
        .await
        .map_err(|_| StoreError::Blocking)?;
    match rotated {
        Ok(()) => Ok(keys.list(store, Some(family)).await?),
        Err(e @ KeyRingError::TooSoon { .. }) => Err(RotateError::TooSoon(e)),
        Err(e) => Err(RotateError::Failed(e)),
    }
}

/// When `key`, if it is the `next` key, may be promoted by an unforced rotation: once it has
/// been published for the JWKS cache lifetime (the guard [`rotate`] applies; see
/// [`crate::keys::rotation::promotion_wait`]). `None` for any other key.
pub fn promotable_at(key: &KeyView) -> Option<i64> {
    (key.state == crate::keys::rotation::KeyState::Next)
        .then(|| key.created_at.saturating_add(crate::keys::jwks::MIN_PUBLISHED_SECS))
}
