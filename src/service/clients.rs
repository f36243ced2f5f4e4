//! OAuth client authentication: the one place client secrets are checked.

use rusqlite::Connection;

use crate::app::AppState;
use crate::secret;
use crate::store::clients::{find_resource_server_auth, find_runner_auth, RunnerAuth};
use crate::store::{Result as StoreResult, StoreError};

/// Client credentials presented to an OAuth endpoint.
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: String,
}

/// An authenticated OAuth client.
pub enum Client {
    Runner(RunnerAuth),
    ResourceServer,
}

/// Looks the client id up among runners and resource servers and compares the secret in
/// constant time. An unknown id takes the same path against a dummy hash, so unknown and known
/// clients take the same time to reject. `Ok(None)` means "reject"; the caller counts it.
pub fn check(conn: &Connection, creds: &ClientCredentials) -> StoreResult<Option<Client>> {
    let id = creds.client_id.as_str();
    let (server, runner) = (find_resource_server_auth(conn, id)?, find_runner_auth(conn, id)?);
    let stored = server.as_ref().map(|(_, h)| h.as_slice()).or(runner.as_ref().map(|r| r.secret_hash.as_slice()));
    if !secret::verify(&creds.secret, stored) {
        return Ok(None);
    }
    Ok(match (server, runner) {
        (Some(_), _) => Some(Client::ResourceServer),
        (None, runner) => runner.map(Client::Runner),
    })
}

/// [`check`] in its own read, counting a rejection as an `invalid_client` denial.
pub fn authenticate(state: &AppState, creds: &ClientCredentials) -> Result<Option<Client>, StoreError> {
    let client = state.store.read(|conn| check(conn, creds))?;
    if client.is_none() {
        state.metrics.deny("invalid_client");
    }
    Ok(client)
}
