//! The key ring: the active signing key in memory, the published public keys and their JWKS,
//! and applying rotation plans (keys::rotation) to the database and the key storage
//! ([`KeyStorage`]: the keys directory, or sealed in the database).
//!
//! Every key change, in any process on the database, is one [`KeyRequest`] run as one
//! `BEGIN IMMEDIATE` transaction that reads the key metadata and the algorithm in force, checks
//! the guard, plans and writes; key files are written before it and removed after it, sealed keys
//! are inserted with their metadata. Listing keys ([`stored_keys`], [`KeyRing::list`]) only reads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;

use crate::config::Config;
use crate::store::Db;

use crate::keys::rotation::AlgInForce;
use crate::keys::sealed::{self, Rewrapped};
use crate::keys::{
    rotation, Alg, JwksDocument, KeyAction, KeyEncryptionKey, KeyFamily, KeyMeta, KeyPair, KeyState, KeyStorage,
    PublicKey, RotationPolicy, SealError, StorageError,
};
use crate::store::audit::{self, Actor as AuditActor, Event, Target};
use crate::store::{self, Store, StoreError};

/// What key events are recorded against: the instance's signing keys (`signing_keys`), or its
/// ID-token signing keys (`id_token_signing_keys`, which also prefixes their actions).
fn keys_target_of(family: KeyFamily) -> &'static str {
    match family {
        KeyFamily::Job => "signing_keys",
        KeyFamily::IdToken => "id_token_signing_keys",
    }
}

fn keys_target() -> Target {
    Target::new(keys_target_of(KeyFamily::Job), None, None)
}

/// The public facts of the stored keys for an audit event: kid (a public thumbprint), algorithm
/// and state. Never key material.
fn keys_json(keys: &[KeyMeta]) -> serde_json::Value {
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| serde_json::json!({ "kid": k.kid, "alg": k.alg.as_str(), "state": k.state.as_str() }))
        .collect();
    serde_json::json!({ "keys": keys })
}

/// `keys` with the recorded algorithm in force, when known.
fn keys_json_with_alg(mut keys: serde_json::Value, alg: Option<Option<crate::keys::Alg>>) -> serde_json::Value {
    if let Some(alg) = alg {
        keys["algorithm"] = serde_json::Value::from(alg.map(|a| a.as_str()));
    }
    keys
}

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The configuration names no usable key storage (PostgreSQL without a key-encryption key).
    #[error("{0}")]
    Config(String),
    #[error("key {kid}: {reason}")]
    Key { kid: String, reason: String },
    #[error("no active signing key after applying the rotation plan")]
    NoActiveKey,
    #[error(
        "the next key was created {published}s ago (every replica publishes it within a minute of that); \
         verifiers may cache the JWKS for {max_age}s, so it can be promoted in {wait}s (or force the rotation)"
    )]
    TooSoon { published: i64, max_age: i64, wait: i64 },
    #[error("the signing keys kept changing under this process; try again")]
    Contended,
    /// `keys set-algorithm --family id_token EdDSA`: cloud federation takes RS256 or ES256 only.
    #[error(
        "{family} keys cannot use {alg}: ID tokens are signed with RS256 or ES256 (what cloud federation accepts)"
    )]
    AlgNotForFamily { family: KeyFamily, alg: Alg },
}

/// What key maintenance is asked to do. Every request runs as one pass of
/// [`Maintainer::maintain`]: one `BEGIN IMMEDIATE` transaction that reads the key metadata and
/// the algorithm in force, decides, and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRequest {
    /// Start-up and the key tick: what the schedule says is due, repairs, and drops (both
    /// families).
    Scheduled,
    /// An operator's rotation of one family (`POST /api/v1/keys/rotate`, `jobtoken keys
    /// rotate`). Unless `force`d, refused while that family's next key is younger than the JWKS
    /// cache lifetime. The other family gets what is scheduled.
    Rotate { family: KeyFamily, force: bool },
    /// `jobtoken keys set-algorithm [--family F] ALG`: the one way to change a family's algorithm
    /// in force. It records ALG and publishes a next key of it; that key signs once the cache
    /// lifetime has passed.
    SetAlgorithm { family: KeyFamily, alg: Alg },
}

impl KeyRequest {
    /// What this request asks of `family`: itself, or what is scheduled when it is about the
    /// other family.
    fn for_family(self, family: KeyFamily) -> KeyRequest {
        match self {
            KeyRequest::Rotate { family: f, .. } | KeyRequest::SetAlgorithm { family: f, .. } if f != family => {
                KeyRequest::Scheduled
            }
            other => other,
        }
    }
}

/// The loaded view: replaced whole on every change, read lock-free apart from one Arc clone.
struct Loaded {
    active: Arc<KeyPair>,
    algs: HashMap<String, Alg>,
    /// The published keys by kid, for the rare caller that checks a signature itself.
    public: HashMap<String, PublicKey>,
    jwks: Arc<JwksDocument>,
    /// The container registry's `rootcertbundle`: a certificate for every published key it can
    /// verify ([`crate::keys::registry`]).
    registry_bundle: Arc<str>,
    /// The algorithm in force when this view was loaded.
    alg: Alg,
    /// The ID-token algorithm in force when this view was loaded.
    id_alg: Alg,
    /// The active ID-token key (`None` only on a database no maintenance pass of this version
    /// has run on).
    id_active: Option<Arc<KeyPair>>,
    /// The algorithms of the published ID-token keys.
    id_algs: Vec<Alg>,
}

pub struct KeyRing {
    maintainer: Maintainer,
    loaded: RwLock<Arc<Loaded>>,
    /// Serializes maintain-load-replace within this process (the transaction serializes
    /// processes): one process never generates keys twice for one change, and a slower request
    /// never replaces a newer loaded view with its older one.
    applying: Mutex<()>,
}

/// Plans and applies key changes.
struct Maintainer {
    storage: KeyStorage,
    /// This process's `JOBTOKEN_SIGNING_ALG`: recorded by the first start, otherwise only
    /// compared with the algorithm in force.
    configured_alg: Alg,
    rotate_every_secs: i64,
    /// `JOBTOKEN_ID_TOKEN_SIGNING_ALG`: recorded by the first start, otherwise only compared
    /// with the ID-token algorithm in force.
    id_alg: Alg,
    /// `JOBTOKEN_ID_TOKEN_TTL`: how long after its retirement an ID-token key may still be needed.
    id_ttl_secs: i64,
}

/// What a maintenance pass left behind: the job-token key metadata after it, and each family's
/// algorithm in force.
pub struct Maintained {
    pub keys: Vec<KeyMeta>,
    pub alg: AlgInForce,
    pub id_alg: AlgInForce,
}

/// The outcome of one maintenance transaction.
enum Pass {
    /// The plan creates keys of these algorithms that have not been generated yet: generate
    /// them outside the transaction (key files before metadata) and run the pass again.
    NeedKeys(Vec<Alg>),
    /// An unforced rotation asked for too early, or a stored key this process cannot use;
    /// nothing was written.
    Refused(KeyRingError),
    /// The plan was applied; `used` are the kids of generated keys it inserted.
    Applied { keys: Vec<KeyMeta>, alg: AlgInForce, id_alg: AlgInForce, dropped: Vec<String>, used: Vec<String> },
}

/// What one family's part of a maintenance pass plans, before anything is written.
struct FamilyPlan {
    family: KeyFamily,
    /// What the pass does for this family.
    request: KeyRequest,
    /// The family's keys before the pass.
    keys: Vec<KeyMeta>,
    actions: Vec<KeyAction>,
    alg: AlgInForce,
    /// `Some(previous)` when `keys set-algorithm` changes (or first records) the algorithm.
    changed_from: Option<Option<Alg>>,
    /// The recorded algorithm before the pass.
    recorded: Option<Alg>,
}

/// One family's plan, or why the request is refused.
enum Planned {
    Plan(Box<FamilyPlan>),
    Refused(KeyRingError),
}

/// A generated key not yet committed, with what its row stores (sealed bytes, or `None` when its
/// file is written).
struct Fresh {
    pair: KeyPair,
    sealed: Option<Vec<u8>>,
}

/// A maintenance pass that finds the plan changed since the keys were generated runs again;
/// this bounds how often.
const MAX_PASSES: usize = 4;

/// A key as `GET /api/v1/keys` and `jobtoken keys list` show it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    /// `job` (job tokens) or `id_token` (ID tokens).
    pub family: KeyFamily,
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

impl KeyView {
    fn of(family: KeyFamily, meta: KeyMeta, published: bool) -> KeyView {
        KeyView {
            family,
            published,
            kid: meta.kid,
            alg: meta.alg,
            state: meta.state,
            created_at: meta.created_at,
            activated_at: meta.activated_at,
            retired_at: meta.retired_at,
        }
    }

    /// The views of `family`'s `metas`, `published` as the JWKS built from them at `now` would
    /// publish.
    pub fn all(family: KeyFamily, metas: Vec<KeyMeta>, now: i64) -> Vec<KeyView> {
        let published: Vec<String> = rotation::published(&metas, now).map(|k| k.kid.clone()).collect();
        metas
            .into_iter()
            .map(|k| {
                let shown = published.contains(&k.kid);
                KeyView::of(family, k, shown)
            })
            .collect()
    }
}

/// The keys of `family` (`None`: both, job-token keys first) as stored, read in one read
/// transaction; writes nothing, creates nothing (issue 7, point 7a: listing keys never changes
/// them).
pub fn stored_keys(
    store: &Store,
    config: &Config,
    family: Option<KeyFamily>,
    now: i64,
) -> Result<Vec<KeyView>, StoreError> {
    let ttl = config.id_token_ttl_secs;
    let listed = store.read_sync(|db| {
        let mut listed = Vec::new();
        for f in KeyFamily::ALL.into_iter().filter(|f| family.is_none_or(|want| want == *f)) {
            listed.extend(KeyView::all(f, family_keys(db, f, ttl)?, now));
        }
        Ok(listed)
    })?;
    Ok(listed)
}

/// `family`'s keys, oldest first. A retired ID-token key may be needed until the longest ID
/// token it may have signed has expired (ID tokens are not recorded, so that is its retirement
/// plus `id_ttl_secs`).
fn family_keys(db: &Db, family: KeyFamily, id_ttl_secs: i64) -> Result<Vec<KeyMeta>, StoreError> {
    match family {
        KeyFamily::Job => store::keys::list(db),
        KeyFamily::IdToken => {
            let mut keys = store::keys::list_family(db, KeyFamily::IdToken)?;
            for key in &mut keys {
                key.last_token_expires_at = key.retired_at.map(|at| at.saturating_add(id_ttl_secs));
            }
            Ok(keys)
        }
    }
}

/// The container registry's `rootcertbundle` (PEM) for the keys the stored metadata publishes at
/// `now`, read from the database and the key storage without changing anything (the CLI's
/// `keys registry-bundle`). Fails when there is no active key yet.
pub fn registry_bundle(store: &Store, config: &Config, now: i64) -> Result<String, KeyRingError> {
    let maintainer = Maintainer::new(config)?;
    let metas = store.read_sync(store::keys::list)?;
    let (recorded, id_recorded) = store.read_sync(|db| {
        Ok((store::keys::algorithm(db, KeyFamily::Job)?, store::keys::algorithm(db, KeyFamily::IdToken)?))
    })?;
    let alg = rotation::algorithm_in_force(recorded, config.signing_alg).alg;
    let id_alg = rotation::algorithm_in_force(id_recorded, config.id_token_alg).alg;
    Ok(maintainer.load_retrying(store, &metas, (alg, id_alg), now)?.registry_bundle.to_string())
}

/// Runs one maintenance request against the database and the keys directory without loading the
/// keys (the CLI's `keys rotate` and `keys set-algorithm`).
pub fn maintain(store: &Store, config: &Config, request: KeyRequest, now: i64) -> Result<Maintained, KeyRingError> {
    let maintained = Maintainer::new(config)?.maintain(store, request, AuditActor::Cli, now)?;
    warn_if_ignored(&maintained);
    Ok(maintained)
}

/// The one warning a process with another `JOBTOKEN_SIGNING_ALG` (or
/// `JOBTOKEN_ID_TOKEN_SIGNING_ALG`) than the one in force gets.
fn warn_if_ignored(maintained: &Maintained) {
    if let Some(configured) = maintained.alg.ignored {
        log::warn!(
            "JOBTOKEN_SIGNING_ALG={configured} is ignored: the database records {} as the signing algorithm in \
             force, and every process on it signs with that; run `jobtoken keys set-algorithm {configured}` to \
             change it",
            maintained.alg.alg
        );
    }
    if let Some(configured) = maintained.id_alg.ignored {
        log::warn!(
            "JOBTOKEN_ID_TOKEN_SIGNING_ALG={configured} is ignored: the database records {} as the ID-token \
             signing algorithm in force, and every process on it signs ID tokens with that; run `jobtoken keys \
             set-algorithm --family id_token {configured}` to change it",
            maintained.id_alg.alg
        );
    }
}

/// What `jobtoken keys rewrap` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewrapCount {
    /// Keys opened under the old key-encryption key and sealed under the new one.
    pub resealed: usize,
    /// Keys already sealed under the new key, left alone.
    pub unchanged: usize,
}

/// Why `jobtoken keys rewrap` changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum RewrapError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "signing key {kid} lives in the keys directory, not sealed in the database: there is nothing to rewrap; \
         nothing was changed"
    )]
    NotSealed { kid: String },
    #[error("signing key {kid} opens under neither --from-key nor --to-key ({reason}); nothing was changed")]
    OpensUnderNeither { kid: String, reason: SealError },
}

/// Re-seals every stored private key from `old` to `new` in one transaction (see
/// [`crate::keys::sealed`] for the procedure). Keys already under `new` are left alone; any key
/// that is not sealed, or opens under neither, refuses the whole run before anything is written.
pub fn rewrap(store: &Store, old: &KeyEncryptionKey, new: &KeyEncryptionKey) -> Result<RewrapCount, RewrapError> {
    let outcome = store.run_sync(|conn| {
        store::atomic(conn, |tx| {
            let mut resealed = Vec::new();
            let mut unchanged = 0;
            for (kid, stored) in store::keys::sealed_private_keys(tx)? {
                let Some(stored) = stored else { return Ok(Err(RewrapError::NotSealed { kid })) };
                match sealed::rewrap(old, new, &kid, &stored) {
                    Ok(Rewrapped::Resealed(bytes)) => resealed.push((kid, bytes)),
                    Ok(Rewrapped::AlreadyUnderNewKey) => unchanged += 1,
                    Err(reason) => return Ok(Err(RewrapError::OpensUnderNeither { kid, reason })),
                }
            }
            for (kid, bytes) in &resealed {
                store::keys::set_sealed_private_key(tx, kid, bytes)?;
            }
            if !resealed.is_empty() {
                let kids: Vec<&str> = resealed.iter().map(|(kid, _)| kid.as_str()).collect();
                let event = Event::new(AuditActor::Cli, "signing_keys.rewrapped", keys_target(), crate::service::now())
                    .after(serde_json::json!({ "resealed": kids }));
                audit::record(tx, &event)?;
            }
            Ok(Ok(RewrapCount { resealed: resealed.len(), unchanged }))
        })
    })?;
    match &outcome {
        Ok(count) => log::info!(
            "keys rewrap: {} signing key(s) resealed under the new key-encryption key, {} already were",
            count.resealed,
            count.unchanged
        ),
        Err(refused) => log::warn!("keys rewrap refused: {refused}"),
    }
    outcome
}

impl KeyRing {
    /// Records the algorithm in force on a new database, creates the first keys if there are
    /// none, applies any due rotation, and loads the keys.
    pub fn open(store: &Store, config: &Config, now: i64) -> Result<KeyRing, KeyRingError> {
        let maintainer = Maintainer::new(config)?;
        let maintained = maintainer.maintain(store, KeyRequest::Scheduled, AuditActor::System, now)?;
        warn_if_ignored(&maintained);
        let loaded =
            maintainer.load_retrying(store, &maintained.keys, (maintained.alg.alg, maintained.id_alg.alg), now)?;
        Ok(KeyRing { maintainer, loaded: RwLock::new(Arc::new(loaded)), applying: Mutex::new(()) })
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

    /// A published public key, by kid (inspection tells a bad signature from a foreign token).
    pub fn public_key(&self, kid: &str) -> Option<PublicKey> {
        self.current().public.get(kid).cloned()
    }

    pub fn jwks(&self) -> Arc<JwksDocument> {
        self.current().jwks.clone()
    }

    /// The container registry's `rootcertbundle` (PEM) for the keys published now.
    pub fn registry_bundle(&self) -> Arc<str> {
        self.current().registry_bundle.clone()
    }

    /// The key that signs ID tokens, once one exists.
    pub fn id_token_key(&self) -> Option<Arc<KeyPair>> {
        self.current().id_active.clone()
    }

    /// The ID-token algorithms for discovery: those of the published ID-token keys, and the
    /// one in force.
    pub fn id_token_algorithms(&self) -> Vec<&'static str> {
        let current = self.current();
        let mut algs: Vec<&'static str> = Alg::ALL.iter().map(|a| a.as_str()).collect();
        algs.retain(|a| current.id_algs.iter().any(|u| u.as_str() == *a) || *a == current.id_alg.as_str());
        algs
    }

    /// Every algorithm a published key uses, and the one in force, for discovery.
    pub fn algorithms(&self) -> Vec<&'static str> {
        let current = self.current();
        let mut algs: Vec<&'static str> = Alg::ALL.iter().map(|a| a.as_str()).collect();
        algs.retain(|a| current.algs.values().any(|u| u.as_str() == *a) || *a == current.alg.as_str());
        algs
    }

    /// The key tick: applies what is due, then reloads (picking up other processes' changes).
    pub async fn tick(self: &Arc<Self>, store: &Store, now: i64) -> Result<(), KeyRingError> {
        let (ring, store) = (self.clone(), store.clone());
        actix_web::web::block(move || ring.apply(&store, KeyRequest::Scheduled, AuditActor::System, now))
            .await
            .map_err(|_| KeyRingError::Store(StoreError::Blocking))?
    }

    /// A rotation of `family` asked for by an operator (API). Unless `force`d, it is refused
    /// while that family's `next` key is younger than the JWKS cache lifetime: promoting it would
    /// let it sign tokens that verifiers holding a cached JWKS cannot verify yet. The check and
    /// the rotation are one transaction, so of concurrent rotations (any process) only one passes
    /// the check. The rotation is recorded as the admin's (the API's only caller).
    pub fn rotate_manual(&self, store: &Store, family: KeyFamily, force: bool, now: i64) -> Result<(), KeyRingError> {
        self.apply(store, KeyRequest::Rotate { family, force }, AuditActor::Admin, now)
    }

    /// Runs `request` (audited as `by`'s), then replaces the loaded view.
    fn apply(&self, store: &Store, request: KeyRequest, by: AuditActor, now: i64) -> Result<(), KeyRingError> {
        let _guard = self.applying.lock().unwrap_or_else(|p| p.into_inner());
        let maintained = self.maintainer.maintain(store, request, by, now)?;
        let algs = (maintained.alg.alg, maintained.id_alg.alg);
        let loaded = self.maintainer.load_retrying(store, &maintained.keys, algs, now)?;
        match self.loaded.write() {
            Ok(mut guard) => *guard = Arc::new(loaded),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(loaded),
        }
        Ok(())
    }

    /// The stored keys of `family` (`None`: both, job-token keys first), `published` as this
    /// process's JWKS has them.
    pub async fn list(&self, store: &Store, family: Option<KeyFamily>) -> Result<Vec<KeyView>, StoreError> {
        let metas = store
            .run(move |db| {
                let mut metas = Vec::new();
                for f in KeyFamily::ALL.into_iter().filter(|f| family.is_none_or(|want| want == *f)) {
                    metas.extend(store::keys::list_family(db, f)?.into_iter().map(|k| (f, k)));
                }
                Ok(metas)
            })
            .await?;
        let published = self.current();
        Ok(metas
            .into_iter()
            .map(|(f, k)| {
                let shown = published.public.contains_key(&k.kid);
                KeyView::of(f, k, shown)
            })
            .collect())
    }
}

impl Maintainer {
    fn new(config: &Config) -> Result<Maintainer, KeyRingError> {
        Ok(Maintainer {
            storage: config.key_storage().map_err(KeyRingError::Config)?,
            configured_alg: config.signing_alg,
            rotate_every_secs: config.rotation_period_secs(),
            id_alg: config.id_token_alg,
            id_ttl_secs: config.id_token_ttl_secs,
        })
    }

    fn policy(&self, alg: Alg, force: bool) -> RotationPolicy {
        RotationPolicy {
            alg,
            rotate_every_secs: Some(self.rotate_every_secs),
            force,
            min_published_secs: crate::keys::jwks::MIN_PUBLISHED_SECS,
        }
    }

    /// Runs `request`: generates the keys the plan needs first (key files written durably, or
    /// keys sealed, outside any transaction), then in one `BEGIN IMMEDIATE` transaction re-reads the key metadata and the
    /// algorithm in force, checks the rotation guard, re-plans and writes every metadata change.
    /// A concurrent change between the two is caught by the re-read: the pass runs again with
    /// what it found. Key files of dropped keys are removed after the commit; generated keys the
    /// final plan did not use are orphans nobody references, and are removed as well.
    fn maintain(
        &self,
        store: &Store,
        request: KeyRequest,
        by: AuditActor,
        now: i64,
    ) -> Result<Maintained, KeyRingError> {
        let mut fresh: Vec<Fresh> = Vec::new();
        for _ in 0..MAX_PASSES {
            // On a failed transaction the generated key files stay: whether a failed COMMIT
            // committed is not worth betting a key on, and an orphan key file is harmless.
            let pass = store.run_sync(|conn| store::atomic(conn, |tx| self.pass(tx, request, by, &fresh, now)))?;
            match pass {
                Pass::NeedKeys(algs) => self.generate(&mut fresh, &algs)?,
                Pass::Refused(refusal) => {
                    self.discard(&fresh, &[]);
                    return Err(refusal);
                }
                Pass::Applied { keys, alg, id_alg, dropped, used } => {
                    self.discard(&fresh, &used);
                    for kid in dropped {
                        self.storage.forget(&kid);
                    }
                    return Ok(Maintained { keys, alg, id_alg });
                }
            }
        }
        self.discard(&fresh, &[]);
        Err(KeyRingError::Contended)
    }

    /// One maintenance transaction (see [`Maintainer::maintain`]).
    /// Every change it makes is one audit event of `by`'s, in the same transaction (key ids,
    /// algorithms and states only: never key material).
    fn pass(
        &self,
        tx: &Db,
        request: KeyRequest,
        by: AuditActor,
        fresh: &[Fresh],
        now: i64,
    ) -> Result<Pass, StoreError> {
        for (kid, sealed) in store::keys::sealed_private_keys(tx)? {
            if let Err(refused) = self.storage.check(&kid, sealed.as_deref()) {
                return Ok(Pass::Refused(refused.into()));
            }
        }
        let job = match self.plan_family(tx, KeyFamily::Job, request, now)? {
            Planned::Plan(plan) => plan,
            Planned::Refused(refusal) => return Ok(Pass::Refused(refusal)),
        };
        let id = match self.plan_family(tx, KeyFamily::IdToken, request, now)? {
            Planned::Plan(plan) => plan,
            Planned::Refused(refusal) => return Ok(Pass::Refused(refusal)),
        };
        let needed: Vec<Alg> = job
            .actions
            .iter()
            .chain(&id.actions)
            .filter_map(|a| match a {
                KeyAction::Create { alg, .. } => Some(*alg),
                _ => None,
            })
            .collect();
        let Some(picked) = pick(fresh, &needed) else { return Ok(Pass::NeedKeys(needed)) };
        let mut new_keys = picked.iter().map(|&i| &fresh[i]);
        let (mut dropped, mut used) = (Vec::new(), Vec::new());
        let mut job_keys = Vec::new();
        for plan in [&job, &id] {
            let keys = self.apply_family(tx, plan, by, &mut new_keys, &mut dropped, &mut used, now)?;
            if plan.family == KeyFamily::Job {
                job_keys = keys;
            }
        }
        Ok(Pass::Applied { keys: job_keys, alg: job.alg, id_alg: id.alg, dropped, used })
    }

    /// `family`'s part of a pass: its algorithm in force (recorded, or this process's
    /// configuration on a database that has none yet; changed by `set-algorithm`), the rotation
    /// guard of an unforced rotation, and the plan. Writes nothing.
    fn plan_family(&self, tx: &Db, family: KeyFamily, request: KeyRequest, now: i64) -> Result<Planned, StoreError> {
        let request = request.for_family(family);
        let configured = match family {
            KeyFamily::Job => self.configured_alg,
            KeyFamily::IdToken => self.id_alg,
        };
        let recorded = store::keys::algorithm(tx, family)?;
        let mut alg = rotation::algorithm_in_force(recorded, configured);
        let changed_from = match request {
            KeyRequest::SetAlgorithm { alg: wanted, .. } if !family.allows(wanted) => {
                return Ok(Planned::Refused(KeyRingError::AlgNotForFamily { family, alg: wanted }))
            }
            KeyRequest::SetAlgorithm { alg: wanted, .. } if alg.record || wanted != alg.alg => {
                let previous = (!alg.record).then_some(alg.alg);
                alg = AlgInForce { alg: wanted, record: true, ignored: None };
                Some(previous)
            }
            _ => None,
        };
        let keys = family_keys(tx, family, self.id_ttl_secs)?;
        let force = match request {
            KeyRequest::Rotate { force: false, .. } => {
                let max_age = crate::keys::jwks::MIN_PUBLISHED_SECS;
                let wait = rotation::promotion_wait(&keys, now, max_age);
                if wait > 0 {
                    let refusal = KeyRingError::TooSoon { published: max_age - wait, max_age, wait };
                    return Ok(Planned::Refused(refusal));
                }
                true
            }
            KeyRequest::Rotate { force: true, .. } => true,
            KeyRequest::Scheduled | KeyRequest::SetAlgorithm { .. } => false,
        };
        let actions = rotation::plan(&keys, now, &self.policy(alg.alg, force));
        Ok(Planned::Plan(Box::new(FamilyPlan { family, request, keys, actions, alg, changed_from, recorded })))
    }

    /// Writes `plan`: the algorithm when it is recorded now, the key changes (created keys take
    /// the next of `new_keys`), and one audit event of `by`'s when anything changed. Returns the
    /// family's keys after it.
    #[allow(clippy::too_many_arguments)]
    fn apply_family<'a>(
        &self,
        tx: &Db,
        plan: &FamilyPlan,
        by: AuditActor,
        new_keys: &mut impl Iterator<Item = &'a Fresh>,
        dropped: &mut Vec<String>,
        used: &mut Vec<String>,
        now: i64,
    ) -> Result<Vec<KeyMeta>, StoreError> {
        let (family, alg) = (plan.family, plan.alg.alg);
        let what = match family {
            KeyFamily::Job => "signing algorithm",
            KeyFamily::IdToken => "ID-token signing algorithm",
        };
        if plan.alg.record {
            store::keys::set_algorithm(tx, family, alg, now)?;
            match plan.changed_from {
                Some(Some(previous)) => log::warn!(
                    "{what} changed from {previous} to {alg} by `keys set-algorithm`: a next key of it is published \
                     now and signs after the JWKS cache lifetime"
                ),
                _ => log::info!("{what} in force recorded: {alg}"),
            }
        }
        apply_actions(tx, family, &plan.actions, new_keys, dropped, used, now)?;
        let keys = if plan.actions.is_empty() { plan.keys.clone() } else { family_keys(tx, family, self.id_ttl_secs)? };
        if !plan.actions.is_empty() || plan.changed_from.is_some() {
            let action = match (family, plan.request) {
                (KeyFamily::Job, KeyRequest::Scheduled) => "signing_keys.scheduled_change",
                (KeyFamily::Job, KeyRequest::Rotate { force: false, .. }) => "signing_keys.rotated",
                (KeyFamily::Job, KeyRequest::Rotate { force: true, .. }) => "signing_keys.rotation_forced",
                (KeyFamily::Job, KeyRequest::SetAlgorithm { .. }) => "signing_keys.algorithm_changed",
                (KeyFamily::IdToken, KeyRequest::Scheduled) => "id_token_signing_keys.scheduled_change",
                (KeyFamily::IdToken, KeyRequest::Rotate { force: false, .. }) => "id_token_signing_keys.rotated",
                (KeyFamily::IdToken, KeyRequest::Rotate { force: true, .. }) => "id_token_signing_keys.rotation_forced",
                (KeyFamily::IdToken, KeyRequest::SetAlgorithm { .. }) => "id_token_signing_keys.algorithm_changed",
            };
            let target = keys_target_of(family);
            let previous = plan.changed_from.map(|_| plan.recorded);
            let event = Event::new(by, action, Target::new(target, None, None), now)
                .before(keys_json_with_alg(keys_json(&plan.keys), previous))
                .after(keys_json_with_alg(keys_json(&keys), Some(Some(alg))));
            audit::record(tx, &event)?;
        }
        Ok(keys)
    }

    /// Generates keys until `fresh` holds one per entry of `algs`, each kept by the storage
    /// (written to its file, or sealed).
    fn generate(&self, fresh: &mut Vec<Fresh>, algs: &[Alg]) -> Result<(), KeyRingError> {
        for alg in algs {
            let have = fresh.iter().filter(|k| k.pair.alg() == *alg).count();
            let want = algs.iter().filter(|a| *a == alg).count();
            if have >= want {
                continue;
            }
            let key =
                KeyPair::generate(*alg).map_err(|e| KeyRingError::Key { kid: "-".into(), reason: e.to_string() })?;
            let sealed = self.storage.keep(&key)?;
            fresh.push(Fresh { pair: key, sealed });
        }
        Ok(())
    }

    /// Removes the files of generated keys that no committed metadata names.
    fn discard(&self, fresh: &[Fresh], used: &[String]) {
        for key in fresh.iter().filter(|k| !used.iter().any(|u| u == k.pair.kid())) {
            self.storage.forget(key.pair.kid());
        }
    }

    /// Loads what `metas` publishes at `now`. A key file (or row) can vanish between reading the
    /// metadata and reading the key only when another process dropped that key meanwhile; the
    /// metadata is then read again, once.
    /// `algs`: the algorithms in force, job tokens' and ID tokens'.
    fn load_retrying(
        &self,
        store: &Store,
        metas: &[KeyMeta],
        algs: (Alg, Alg),
        now: i64,
    ) -> Result<Loaded, KeyRingError> {
        match self.load(store, metas, algs, now) {
            Err(KeyRingError::Key { kid, reason } | KeyRingError::Storage(StorageError::Key { kid, reason })) => {
                log::warn!("key {kid}: {reason}; reading the key metadata again");
                let metas = store.read_sync(store::keys::list)?;
                self.load(store, &metas, algs, now)
            }
            other => other,
        }
    }

    fn load(&self, store: &Store, metas: &[KeyMeta], algs: (Alg, Alg), now: i64) -> Result<Loaded, KeyRingError> {
        let (alg, id_alg) = algs;
        let sealed: HashMap<String, Option<Vec<u8>>> = match self.storage {
            KeyStorage::Files(_) => HashMap::new(),
            KeyStorage::Database(_) => store.read_sync(store::keys::sealed_private_keys)?.into_iter().collect(),
        };
        let mut active = None;
        let mut public: Vec<PublicKey> = Vec::new();
        let mut pairs: Vec<Arc<KeyPair>> = Vec::new();
        let mut algs = HashMap::new();
        for meta in rotation::published(metas, now) {
            let row = match (&self.storage, sealed.get(&meta.kid)) {
                (KeyStorage::Files(_), _) => None,
                (KeyStorage::Database(_), Some(row)) => row.as_deref(),
                (KeyStorage::Database(_), None) => {
                    return Err(KeyRingError::Key { kid: meta.kid.clone(), reason: "its row is gone".into() })
                }
            };
            let pem = self.storage.private_key(&meta.kid, row)?;
            let pair = KeyPair::from_pkcs8_pem(meta.alg, &pem)
                .map_err(|e| KeyRingError::Key { kid: meta.kid.clone(), reason: e.to_string() })?;
            if pair.kid() != meta.kid {
                return Err(KeyRingError::Key {
                    kid: meta.kid.clone(),
                    reason: "stored key is a different key".into(),
                });
            }
            public.push(pair.public_key());
            algs.insert(meta.kid.clone(), meta.alg);
            let pair = Arc::new(pair);
            if meta.state == KeyState::Active {
                active = Some(pair.clone());
            }
            pairs.push(pair);
        }
        let id_metas = store.read_sync(|db| family_keys(db, KeyFamily::IdToken, self.id_ttl_secs))?;
        let (mut id_active, mut id_algs) = (None, Vec::new());
        for meta in rotation::published(&id_metas, now) {
            let row = match &self.storage {
                KeyStorage::Files(_) => None,
                KeyStorage::Database(_) => sealed.get(&meta.kid).and_then(|row| row.as_deref()),
            };
            let pem = self.storage.private_key(&meta.kid, row)?;
            let pair = KeyPair::from_pkcs8_pem(meta.alg, &pem)
                .map_err(|e| KeyRingError::Key { kid: meta.kid.clone(), reason: e.to_string() })?;
            if pair.kid() != meta.kid {
                return Err(KeyRingError::Key {
                    kid: meta.kid.clone(),
                    reason: "stored key is a different key".into(),
                });
            }
            public.push(pair.public_key());
            id_algs.push(meta.alg);
            if meta.state == KeyState::Active {
                id_active = Some(Arc::new(pair));
            }
        }
        Ok(Loaded {
            active: active.ok_or(KeyRingError::NoActiveKey)?,
            algs,
            jwks: Arc::new(JwksDocument::build(&public)),
            public: public.into_iter().map(|k| (k.kid().to_owned(), k)).collect(),
            registry_bundle: crate::keys::registry::bundle(pairs.iter().map(|p| p.as_ref())).into(),
            alg,
            id_alg,
            id_active,
            id_algs,
        })
    }
}

/// Writes one family's planned key changes; created keys take the next of `new_keys`.
fn apply_actions<'a>(
    tx: &Db,
    family: KeyFamily,
    actions: &[KeyAction],
    new_keys: &mut impl Iterator<Item = &'a Fresh>,
    dropped: &mut Vec<String>,
    used: &mut Vec<String>,
    now: i64,
) -> Result<(), StoreError> {
    let what = match family {
        KeyFamily::Job => "signing key",
        KeyFamily::IdToken => "ID-token signing key",
    };
    for action in actions {
        match action {
            KeyAction::Create { state, alg } => {
                if let Some(key) = new_keys.next() {
                    let kid = key.pair.kid();
                    store::keys::insert_in(tx, family, kid, *alg, *state, now, key.sealed.as_deref())?;
                    used.push(kid.to_owned());
                    log::info!("created {state} {what} {kid} ({alg})");
                }
            }
            KeyAction::Promote { kid } => {
                store::keys::promote(tx, kid, now)?;
                log::info!("{what} {kid} is now active");
            }
            KeyAction::Retire { kid } => {
                store::keys::retire(tx, kid, now)?;
                log::info!("{what} {kid} retired");
            }
            KeyAction::Drop { kid } => {
                store::keys::delete(tx, kid)?;
                dropped.push(kid.clone());
                log::info!("{what} {kid} dropped: no token it signed can still be answered");
            }
        }
    }
    Ok(())
}

/// Indexes into `fresh`, one distinct key per entry of `needed` with its algorithm, or `None`
/// when `fresh` lacks some.
fn pick(fresh: &[Fresh], needed: &[Alg]) -> Option<Vec<usize>> {
    let mut picked: Vec<usize> = Vec::with_capacity(needed.len());
    for alg in needed {
        let i = (0..fresh.len()).find(|i| !picked.contains(i) && fresh[*i].pair.alg() == *alg)?;
        picked.push(i);
    }
    Some(picked)
}
