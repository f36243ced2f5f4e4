//! Credential lifecycle (issue 7 point 5): client registration, secret resets, and personal
//! access tokens that expire, can be revoked and record their last use.
//!
//! Every secret is generated here, shown once by the caller and stored only as its SHA-256.

use crate::store::Db;

use crate::domain::time::rfc3339;
use crate::domain::{RunnerId, UserId, UserState};
use crate::policy::{self, ExpiryRefused};
use crate::secret::{self, Secret};
use crate::store::audit::{audited, Actor, Event, Target};
use crate::store::clients::{self, NewResourceServer, NewRunner, ResourceServer, Runner};
use crate::store::pats::{self, Pat};
use crate::store::{Result as StoreResult, Store, StoreError};
use serde_json::json;

/// Prefixes of the secrets handed out, so that secret scanners can tell them apart.
const RUNNER_SECRET_PREFIX: &str = "jtrs_";
const RESOURCE_SERVER_SECRET_PREFIX: &str = "jtss_";
const PAT_PREFIX: &str = "jtpat_";

/// Registers a runner with a fresh `runner_…` client id and secret.
pub fn register_runner(conn: &Db, new: &NewRunner, now: i64) -> StoreResult<(Runner, Secret)> {
    let client_id = format!("runner_{}", secret::random_token(12));
    let client_secret = Secret::generate(RUNNER_SECRET_PREFIX);
    let runner = clients::insert_runner(conn, new, &client_id, &client_secret.hash(), now)?;
    Ok((runner, client_secret))
}

/// Registers a resource server with a fresh `rs_…` client id and secret.
pub fn register_resource_server(conn: &Db, new: &NewResourceServer, now: i64) -> StoreResult<(ResourceServer, Secret)> {
    let client_id = format!("rs_{}", secret::random_token(12));
    let client_secret = Secret::generate(RESOURCE_SERVER_SECRET_PREFIX);
    let server = clients::insert_resource_server(conn, new, &client_id, &client_secret.hash(), now)?;
    Ok((server, client_secret))
}

/// Creates a personal access token for `user` with the default lifetime (30 days), inside the
/// caller's transaction (the demo data). The token is returned this once.
pub fn register_pat(conn: &Db, actor: Actor, user: UserId, name: &str, now: i64) -> StoreResult<(Pat, Secret)> {
    insert_pat(conn, actor, user, name, now + policy::PAT_DEFAULT_LIFETIME, now)
}

/// Stores a new personal access token (hashed) with its audit event; the token is returned
/// this once.
fn insert_pat(
    db: &Db,
    actor: Actor,
    user: UserId,
    name: &str,
    expires_at: i64,
    now: i64,
) -> StoreResult<(Pat, Secret)> {
    let token = Secret::generate(PAT_PREFIX);
    let pat = audited(db, |tx| {
        let pat = pats::insert(tx, user, name, &token.hash(), expires_at, now)?;
        Ok((pat.clone(), pat_event(actor, "personal_access_token.created", &pat, now).after(&pat)))
    })?;
    Ok((pat, token))
}

/// Gives runner `id` a new secret; the old one stops authenticating with the commit, which
/// also records the reset (never the secret).
pub async fn reset_runner_secret(store: &Store, actor: Actor, id: RunnerId, now: i64) -> StoreResult<(Runner, Secret)> {
    let client_secret = Secret::generate(RUNNER_SECRET_PREFIX);
    let hash = client_secret.hash();
    let runner = store.run(move |c| super::admin::set_runner_secret(c, actor, id, &hash, now)).await?;
    Ok((runner, client_secret))
}

/// Gives resource server `id` a new secret; the old one stops authenticating with the commit,
/// which also records the reset (never the secret).
pub async fn reset_resource_server_secret(
    store: &Store,
    actor: Actor,
    id: i64,
    now: i64,
) -> StoreResult<(ResourceServer, Secret)> {
    let client_secret = Secret::generate(RESOURCE_SERVER_SECRET_PREFIX);
    let hash = client_secret.hash();
    let server = store.run(move |c| super::admin::set_resource_server_secret(c, actor, id, &hash, now)).await?;
    Ok((server, client_secret))
}

/// Why a personal access token was not created.
#[derive(Debug, thiserror::Error)]
pub enum PatError {
    #[error(transparent)]
    Expiry(#[from] ExpiryRefused),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a personal access token for `user`, valid until `expires_at` (default 30 days, at most
/// 365 days from `now`). The token is returned this once.
pub async fn create_pat(
    store: &Store,
    actor: Actor,
    user: UserId,
    name: String,
    expires_at: Option<i64>,
    now: i64,
) -> Result<(Pat, Secret), PatError> {
    let expires_at = policy::pat_expiry(expires_at, now)?;
    Ok(store.run(move |c| insert_pat(c, actor, user, &name, expires_at, now)).await?)
}

fn pat_event(actor: Actor, action: &'static str, pat: &Pat, now: i64) -> Event {
    Event::new(actor, action, Target::new("personal_access_token", pat.id, pat.name.clone()), now)
}

/// Revokes personal access token `id` of `user` from `now` on; revoking it again changes (and
/// records) nothing.
pub fn revoke_pat(db: &Db, actor: Actor, user: UserId, id: i64, now: i64) -> StoreResult<()> {
    audited(db, |tx| {
        let before = pats::get(tx, user, id)?;
        pats::revoke(tx, user, id, now)?;
        let after = pats::get(tx, user, id)?;
        let event = pat_event(actor, "personal_access_token.revoked", &after, now)
            .before(json!({ "revoked_at": before.revoked_at.map(rfc3339) }))
            .after(json!({ "revoked_at": after.revoked_at.map(rfc3339) }));
        Ok(((), event))
    })
}

/// The active user a personal access token authenticates at `now`: `None` for an unknown,
/// revoked or expired token and for a blocked user. The lookup is one inline read; a use is
/// written at most once per minute per token.
pub async fn authenticate_pat(store: &Store, token: &str, now: i64) -> StoreResult<Option<UserId>> {
    Ok(authenticate_pat_with_id(store, token, now).await?.map(|(user, _)| user))
}

/// [`authenticate_pat`], with the id of the token (the web console's session keeps it, so that
/// the session dies with the token).
pub async fn authenticate_pat_with_id(store: &Store, token: &str, now: i64) -> StoreResult<Option<(UserId, i64)>> {
    // Tokens are 256-bit random values: looking up their SHA-256 reveals nothing useful.
    let hash = secret::hash(token.as_bytes());
    let found = store.read(move |c| pats::find_live(c, &hash, now)).await?;
    let Some(pat) = found.filter(|p| p.user_state == UserState::Active) else { return Ok(None) };
    if pat.last_use_is_stale(now) {
        let id = pat.id;
        // Losing a last-use stamp must not lock the user out.
        if let Err(e) = store.run(move |c| pats::touch(c, id, now)).await {
            log::warn!("could not record the use of personal access token {id}: {e}");
        }
    }
    Ok(Some((pat.user_id, pat.id)))
}
