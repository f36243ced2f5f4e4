//! The key ring: the active signing key in memory, the published public keys and their JWKS,
//! and applying rotation plans (keys::rotation) to the database and the keys directory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;

use crate::config::Config;
use crate::keys::{
    files, rotation, Alg, JwksDocument, KeyAction, KeyMeta, KeyPair, KeyState, PublicKey, RotationPolicy,
};
use crate::store::{self, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("key {kid}: {reason}")]
    Key { kid: String, reason: String },
    #[error("no active signing key after applying the rotation plan")]
    NoActiveKey,
    #[error(
        "the next key was published {published}s ago; verifiers may cache the JWKS for {max_age}s, so it \
         can be promoted in {wait}s (or force the rotation)"
    )]
    TooSoon { published: i64, max_age: i64, wait: i64 },
}

/// The loaded view: replaced whole on every change, read lock-free apart from one Arc clone.
struct Loaded {
    active: Arc<KeyPair>,
    algs: HashMap<String, Alg>,
    jwks: Arc<JwksDocument>,
}

pub struct KeyRing {
    maintainer: Maintainer,
    loaded: RwLock<Arc<Loaded>>,
}

/// Plans and applies key changes.
struct Maintainer {
    dir: PathBuf,
    alg: Alg,
    rotate_every_secs: i64,
    /// Serializes plan-and-apply within this process.
    applying: Mutex<()>,
}

/// A key as `GET /api/v1/keys` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    pub kid: String,
    pub alg: Alg,
    pub state: KeyState,
    #[serde(serialize_with = "crate::domain::time::ser")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::domain::time::ser_opt")]
    pub activated_at: Option<i64>,
    #[serde(serialize_with = "crate::domain::time::ser_opt")]
    pub retired_at: Option<i64>,
    /// Whether the key is in the JWKS now.
    pub published: bool,
}

impl KeyRing {
    /// Creates the first keys if there are none, applies any due rotation, and loads the keys.
    pub fn open(store: &Store, config: &Config, now: i64) -> Result<KeyRing, KeyRingError> {
        let maintainer = Maintainer {
            dir: config.keys_dir.clone(),
            alg: config.signing_alg,
            rotate_every_secs: config.rotation_period_secs(),
            applying: Mutex::new(()),
        };
        let loaded = maintainer.apply_and_load(store, false, now)?;
        Ok(KeyRing { maintainer, loaded: RwLock::new(Arc::new(loaded)) })
    }

    fn current(&self) -> Arc<Loaded> {
        match self.loaded.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The key that signs new tokens.
    pub fn active(&self) -> Arc<KeyPair> {
        self.current().active.clone()
    }

    /// The algorithm of a published key, by kid: the key, never the token header, picks it.
    pub fn alg_of(&self, kid: &str) -> Option<Alg> {
        self.current().algs.get(kid).copied()
    }

    pub fn jwks(&self) -> Arc<JwksDocument> {
        self.current().jwks.clone()
    }

    /// Every algorithm a published key uses, for discovery.
    pub fn algorithms(&self) -> Vec<&'static str> {
        let mut algs: Vec<&'static str> = Alg::ALL.iter().map(|a| a.as_str()).collect();
        let used: Vec<Alg> = self.current().algs.values().copied().collect();
        algs.retain(|a| used.iter().any(|u| u.as_str() == *a) || *a == self.maintainer.alg.as_str());
        algs
    }

    /// Plans and applies a rotation (forced, or only what is due), then reloads.
    pub async fn rotate(self: &Arc<Self>, store: &Store, force: bool, now: i64) -> Result<(), KeyRingError> {
        let (ring, store) = (self.clone(), store.clone());
        actix_web::web::block(move || ring.rotate_sync(&store, force, now))
            .await
            .map_err(|_| KeyRingError::Store(StoreError::Blocking))?
    }

    /// A rotation asked for by an operator (API or CLI). Unless `force`d, it is refused while the
    /// `next` key is younger than the JWKS cache lifetime: promoting it would let it sign tokens
    /// that verifiers holding a cached JWKS cannot verify yet.
    pub fn rotate_manual(&self, store: &Store, force: bool, now: i64) -> Result<(), KeyRingError> {
        if !force {
            let metas = store.run_sync(|c| store::keys::list(c))?;
            let max_age = crate::keys::jwks::MAX_AGE_SECS;
            let wait = rotation::promotion_wait(&metas, now, max_age);
            if wait > 0 {
                return Err(KeyRingError::TooSoon { published: max_age - wait, max_age, wait });
            }
        }
        self.rotate_sync(store, true, now)
    }

    pub fn rotate_sync(&self, store: &Store, force: bool, now: i64) -> Result<(), KeyRingError> {
        let loaded = self.maintainer.apply_and_load(store, force, now)?;
        match self.loaded.write() {
            Ok(mut guard) => *guard = Arc::new(loaded),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(loaded),
        }
        Ok(())
    }

    pub async fn list(&self, store: &Store) -> Result<Vec<KeyView>, StoreError> {
        let metas = store.run(|c| store::keys::list(c)).await?;
        Ok(self.views(metas))
    }

    pub fn list_sync(&self, store: &Store) -> Result<Vec<KeyView>, StoreError> {
        let metas = store.run_sync(|c| store::keys::list(c))?;
        Ok(self.views(metas))
    }

    fn views(&self, metas: Vec<KeyMeta>) -> Vec<KeyView> {
        let published = self.current();
        metas
            .into_iter()
            .map(|k| KeyView {
                published: published.algs.contains_key(&k.kid),
                kid: k.kid,
                alg: k.alg,
                state: k.state,
                created_at: k.created_at,
                activated_at: k.activated_at,
                retired_at: k.retired_at,
            })
            .collect()
    }
}

impl Maintainer {
    fn policy(&self, force: bool) -> RotationPolicy {
        RotationPolicy { alg: self.alg, rotate_every_secs: Some(self.rotate_every_secs), force }
    }

    /// Plans against the database, writes new key files first (durably), then applies all
    /// metadata changes in one transaction, then loads what is published.
    fn apply_and_load(&self, store: &Store, force: bool, now: i64) -> Result<Loaded, KeyRingError> {
        let _guard = self.applying.lock().unwrap_or_else(|p| p.into_inner());
        let metas = store.run_sync(|c| store::keys::list(c))?;
        let actions = rotation::plan(&metas, now, &self.policy(force));
        if !actions.is_empty() {
            self.apply(store, &actions, now)?;
        }
        let metas = store.run_sync(|c| store::keys::list(c))?;
        self.load(&metas, now)
    }

    fn apply(&self, store: &Store, actions: &[KeyAction], now: i64) -> Result<(), KeyRingError> {
        let mut created: Vec<(String, Alg, KeyState)> = Vec::new();
        for action in actions {
            if let KeyAction::Create { state, alg } = action {
                let key = KeyPair::generate(*alg)
                    .map_err(|e| KeyRingError::Key { kid: "-".into(), reason: e.to_string() })?;
                files::write_private_key(&self.dir, key.kid(), &key.to_pkcs8_pem())
                    .map_err(|e| KeyRingError::Key { kid: key.kid().to_owned(), reason: e.to_string() })?;
                created.push((key.kid().to_owned(), *alg, *state));
            }
        }
        let mut dropped = Vec::new();
        store.run_sync(|conn| {
            store::atomic(conn, |tx| {
                let mut new_keys = created.iter();
                for action in actions {
                    match action {
                        KeyAction::Create { .. } => {
                            if let Some((kid, alg, state)) = new_keys.next() {
                                store::keys::insert(tx, kid, *alg, *state, now)?;
                                log::info!("created {state} signing key {kid} ({alg})");
                            }
                        }
                        KeyAction::Promote { kid } => {
                            store::keys::promote(tx, kid, now)?;
                            log::info!("signing key {kid} is now active");
                        }
                        KeyAction::Retire { kid } => {
                            store::keys::retire(tx, kid, now)?;
                            log::info!("signing key {kid} retired");
                        }
                        KeyAction::Drop { kid } => {
                            store::keys::delete(tx, kid)?;
                            dropped.push(kid.clone());
                            log::info!("signing key {kid} dropped: its last token has expired");
                        }
                    }
                }
                Ok(())
            })
        })?;
        for kid in dropped {
            if let Err(e) = files::remove_private_key(&self.dir, &kid) {
                log::warn!("removing key file {kid}: {e}");
            }
        }
        Ok(())
    }

    fn load(&self, metas: &[KeyMeta], now: i64) -> Result<Loaded, KeyRingError> {
        let mut active = None;
        let mut public: Vec<PublicKey> = Vec::new();
        let mut algs = HashMap::new();
        for meta in rotation::published(metas, now) {
            let pem = files::read_private_key(&self.dir, &meta.kid)
                .map_err(|e| KeyRingError::Key { kid: meta.kid.clone(), reason: e.to_string() })?;
            let pair = KeyPair::from_pkcs8_pem(meta.alg, &pem)
                .map_err(|e| KeyRingError::Key { kid: meta.kid.clone(), reason: e.to_string() })?;
            if pair.kid() != meta.kid {
                return Err(KeyRingError::Key { kid: meta.kid.clone(), reason: "file holds a different key".into() });
            }
            public.push(pair.public_key());
            algs.insert(meta.kid.clone(), meta.alg);
            if meta.state == KeyState::Active {
                active = Some(Arc::new(pair));
            }
        }
        Ok(Loaded {
            active: active.ok_or(KeyRingError::NoActiveKey)?,
            algs,
            jwks: Arc::new(JwksDocument::build(&public)),
        })
    }
}
