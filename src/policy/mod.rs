//! Pure policy: plain data in, decisions out. No I/O, no clock, no actix.
//!
//! Every rule of SPEC §4 lives here exactly once and is unit-tested as a truth table.

mod allowlist;
pub mod autopopulate;
mod credentials;
mod decision;
pub mod id_token;
mod issuance;
mod online;
mod prevent_all;
pub mod registry;
mod rights;

pub use allowlist::{inbound_in_force, inbound_origin, InboundOrigin};
pub use credentials::{pat_expiry, ExpiryRefused, PAT_DEFAULT_LIFETIME, PAT_MAX_LIFETIME};
pub use decision::{
    decide, decide_for, decide_scope, out_of_scope_allowed, AllowlistLevel, CrossProjectInput, Decision, EntryGrant,
    GroupSourceEntry, Namespace, OutboundEntry, Rule,
};
pub use issuance::{mint_eligibility, runner_serves, token_expiry, MintRefusal, MintStep, RunnerScope};
pub use online::{audience_admits, cross_project_grant, Origin};
pub use rights::{
    effective_access, elevation_allowed, own_project_grant, rights, visibility_reads, ElevationBlock, OwnGrant,
    Principal, ProjectFacts,
};
