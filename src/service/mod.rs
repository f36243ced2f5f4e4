//! Use cases that span store, keys and policy: load → decide (pure policy) → persist.
//! Handlers call these and only translate HTTP in and out.
//!
//! Services take what they use (`&Store`, `&KeyRing`, or [`Deps`] for the token use cases that
//! need most of it) and never import `crate::http` or `crate::app` (tests/layering.rs checks).

pub mod authlog;
pub mod clients;
pub mod credentials;
pub mod decision;
pub mod editor;
pub mod exchange;
pub mod live;
pub mod mint;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::signing::KeyRing;
use crate::store::Store;

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

impl Deps<'_> {
    /// Who asks, for [`live::live_for`]: a resource server with `audience` (empty: any token).
    pub fn asker<'b>(&'b self, audience: &'b [String]) -> live::Asker<'b> {
        live::Asker { audience, default_audience: &self.config.default_audience }
    }
}

/// The wall clock, read once per request at the edge and passed inwards.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
