//! Use cases that span store, keys and policy: load → decide (pure policy) → persist.
//! Handlers call these and only translate HTTP in and out.

pub mod authlog;
pub mod clients;
pub mod credentials;
pub mod decision;
pub mod editor;
pub mod exchange;
pub mod live;
pub mod mint;

/// The wall clock, read once per request at the edge and passed inwards.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
