//! The black-box suites again, on PostgreSQL: each suite file is compiled once more here as a
//! module, and `common::on_postgres()` is true in this binary (its crate name), so every server
//! and CLI run of these tests gets a fresh database on one throwaway cluster (tests/common/pg.rs)
//! with a key-encryption key. A failure reads `on_postgres … admin_api::<test>`: the suite and the
//! backend. `cargo test` runs the suites on SQLite in their own binaries and here on PostgreSQL,
//! so the one command covers both backends.
//!
//! Not here: suites that never start a server (`properties`, `store_portability`) and the ones
//! about PostgreSQL itself, which always run on it (`postgres`, `postgres_schema`).
#![allow(clippy::unwrap_used)]
// Each suite declares `mod common;`: every module here has its own copy of the harness, by design
// (tests/common/pg.rs makes the copies share one cluster).
#![allow(clippy::duplicate_mod)]

#[path = "admin_api.rs"]
mod admin_api;
#[path = "audit.rs"]
mod audit;
#[path = "bad_input.rs"]
mod bad_input;
#[path = "browser.rs"]
mod browser;
#[path = "caches.rs"]
mod caches;
#[path = "cli.rs"]
mod cli;
#[path = "client_auth.rs"]
mod client_auth;
#[path = "console.rs"]
mod console;
#[path = "crash.rs"]
mod crash;
#[path = "credentials.rs"]
mod credentials;
#[path = "exchange.rs"]
mod exchange;
#[path = "id_tokens.rs"]
mod id_tokens;
#[path = "inspect.rs"]
mod inspect;
#[path = "interop.rs"]
mod interop;
#[path = "job_token_scope.rs"]
mod job_token_scope;
#[path = "key_encryption_key.rs"]
mod key_encryption_key;
#[path = "keys.rs"]
mod keys;
#[path = "lifecycle.rs"]
mod lifecycle;
#[path = "lists.rs"]
mod lists;
#[path = "minting.rs"]
mod minting;
#[path = "names.rs"]
mod names;
#[path = "no_leaks.rs"]
mod no_leaks;
#[path = "openapi.rs"]
mod openapi;
#[path = "ops.rs"]
mod ops;
#[path = "readme.rs"]
mod readme;
#[path = "registry_token.rs"]
mod registry_token;
#[path = "sealed_keys.rs"]
mod sealed_keys;
#[path = "seams.rs"]
mod seams;
#[path = "wellknown.rs"]
mod wellknown;
