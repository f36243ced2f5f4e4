//! Introspection (RFC 7662) and revocation (RFC 7009) of job tokens: who may ask, and what they
//! are told.

use super::clients::Client;
use super::live::{self, Asker, LiveError};
use crate::metrics::Metrics;
use crate::signing::KeyRing;
use crate::store::{tokens, Store, StoreError};
use crate::token::Claims;

/// Who calls introspection or revocation, authenticated by the caller.
pub enum Caller {
    Admin,
    Client(Client),
}

/// Why an introspection or revocation request was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenRequestError {
    #[error("only resource servers and the admin may introspect")]
    RunnerIntrospects,
    #[error("resource servers may not revoke tokens")]
    ResourceServerRevokes,
    #[error("the token was not issued to this client")]
    OtherClientsToken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The audience a caller may introspect for: none for the admin (any token), a resource server's
/// own; runners may not introspect.
pub fn introspection_audience(caller: &Caller) -> Result<Vec<String>, TokenRequestError> {
    match caller {
        Caller::Admin => Ok(Vec::new()),
        Caller::Client(Client::ResourceServer(server)) => Ok(server.audience.clone()),
        Caller::Client(Client::Runner(_)) => Err(TokenRequestError::RunnerIntrospects),
    }
}

/// The claims of `token` as still true for a caller with `audience` ([`live::introspect`]), or
/// `None` when it is not active for it (counted and logged; the caller sees `active: false`).
pub async fn introspect(
    store: &Store,
    keys: &KeyRing,
    metrics: &Metrics,
    token: &str,
    asker: Asker<'_>,
    now: i64,
) -> Result<Option<Claims>, TokenRequestError> {
    match live::introspect(store, keys, token, asker, now).await {
        Ok(claims) => Ok(Some(claims)),
        Err(LiveError::Inactive(inactive)) => {
            metrics.deny(inactive.reason());
            log::debug!("introspection: inactive token ({inactive})");
            Ok(None)
        }
        Err(LiveError::Store(e)) => Err(e.into()),
    }
}

/// Resource servers may not revoke; the admin and runners may.
pub fn may_revoke(caller: &Caller) -> Result<(), TokenRequestError> {
    match caller {
        Caller::Client(Client::ResourceServer(_)) => Err(TokenRequestError::ResourceServerRevokes),
        Caller::Admin | Caller::Client(Client::Runner(_)) => Ok(()),
    }
}

/// Revokes `token` at `now`: the admin any token, a runner only the ones issued to it. An invalid
/// or unknown token is not an error (RFC 7009 §2.2).
pub async fn revoke(
    store: &Store,
    keys: &KeyRing,
    caller: &Caller,
    token: &str,
    now: i64,
) -> Result<(), TokenRequestError> {
    may_revoke(caller)?;
    let found = match live::authentic(store, keys, token).await {
        Ok(found) => found,
        Err(LiveError::Inactive(_)) => return Ok(()),
        Err(LiveError::Store(e)) => return Err(e.into()),
    };
    if let Caller::Client(Client::Runner(runner)) = caller {
        if runner.client_id != found.record.client_id {
            return Err(TokenRequestError::OtherClientsToken);
        }
    }
    let jti = found.jti;
    store.run(move |conn| tokens::revoke(conn, &jti, now)).await?;
    Ok(())
}
