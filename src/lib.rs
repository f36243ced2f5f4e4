//! jobtoken: an OAuth2 authorization server that mints short-lived, scoped JWTs for CI jobs.
//!
//! Layers, from the edge inwards: `http` (thin handlers) → `service` (use cases) → `store`
//! (all SQL) and `keys`/`signing`/`token` (crypto) → `policy` (pure rules) → `domain` (values).
//! Imports point inwards only: nothing below `http` names `http` or `app` (tests/layering.rs).
//! Each use case fails with its own error enum, mapped once to one of the two response shapes
//! of `error` by the `http` module that calls it.

pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod error;
pub mod http;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod policy;
pub mod secret;
pub mod service;
pub mod signing;
pub mod store;
pub mod tls;
pub mod token;
pub mod ui;
pub mod verify;
