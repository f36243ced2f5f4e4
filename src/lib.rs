//! jobtoken: an OAuth2 authorization server that mints short-lived, scoped JWTs for CI jobs.
//!
//! Layers, from the edge inwards: `http` (thin handlers) → `service` (use cases) → `store`
//! (all SQL) and `keys`/`signing`/`token` (crypto) → `policy` (pure rules) → `domain` (values).

pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod error;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod policy;
pub mod secret;
pub mod service;
pub mod signing;
pub mod store;
pub mod token;
pub mod verify;
