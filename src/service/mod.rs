//! Use cases that span store, keys and policy: load → decide (pure policy) → persist.
//! Handlers call these and only translate HTTP in and out.
//!
//! Services take what they use (`&Store`, `&KeyRing`, or [`Deps`] for the token use cases that
//! need most of it) and never import `crate::http` or `crate::app` (tests/layering.rs checks).

pub mod admin;
pub mod audit;
pub mod authlog;
pub mod clients;
pub mod console;
pub mod credentials;
pub mod decision;
pub mod editor;
pub mod exchange;
pub mod id_token_sub;
pub mod inspect;
pub mod job_token_scope;
pub mod jobs;
pub mod live;
pub mod mint;
pub mod ops;
pub mod registry;
pub mod tokens;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::signing::KeyRing;
use crate::store::{atomic_with, Db, Store, StoreError};

/// What the token use cases (mint, exchange, the decision endpoint) work with: the store, the
/// signing keys, the issuer settings, the counters and the authorization log. Borrowed from the
/// application state by the caller; nothing of HTTP.
#[derive(Clone, Copy)]
pub struct Deps<'a> {
    pub store: &'a Store,
    pub keys: &'a KeyRing,
    pub config: &'a Config,
    pub metrics: &'a Metrics,
    pub authlog: &'a authlog::AuthLog,
}

impl<'a> Deps<'a> {
    /// Who asks, for [`live::live_for`]: a resource server with `audience` (empty: any token).
    pub fn asker<'b>(self, audience: &'b [String]) -> live::Asker<'b>
    where
        'a: 'b,
    {
        live::Asker { audience, default_audience: &self.config.default_audience }
    }
}

/// The wall clock, read once per request at the edge and passed inwards.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Runs `f` in one write transaction on the blocking pool. `f` fails with the use case's own
/// error `E`; any `Err` (a refusal or a store failure) rolls the whole transaction back.
pub(crate) async fn transaction<T, E, F>(store: &Store, f: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: FnOnce(&Db) -> Result<T, E> + Send + 'static,
{
    store.run(move |c| Ok(atomic_with(c, f))).await.map_err(E::from)?
}
