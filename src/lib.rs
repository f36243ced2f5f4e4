//! jobtoken: an OAuth2 authorization server that mints short-lived, scoped JWTs for CI jobs.
//!
//! Layers, from the edge inwards: `http` (thin handlers) → `store` (all SQL) and `keys`/`token`
//! (crypto) → `policy` (pure rules) → `domain` (parsed values).

pub mod domain;
pub mod keys;
pub mod policy;
pub mod token;
