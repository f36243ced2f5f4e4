//! OAuth client authentication: the one place client secrets are checked.

use crate::app::AppState;
use crate::secret;
use crate::store::clients::find_client_auth;
pub use crate::store::clients::{ClientAuth as Client, ResourceServerAuth, RunnerAuth};
use crate::store::{Db, Result as StoreResult, StoreError};

/// Client credentials presented to an OAuth endpoint.
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: String,
}

/// Looks the client id up among runners and enabled resource servers and compares the secret in
/// constant time. Unknown ids, disabled resource servers and wrong secrets do the same work (one
/// statement yielding one row, one hash, one comparison) and take the same time to reject.
/// `Ok(None)` means "reject"; the caller counts it.
pub fn check(db: &Db, creds: &ClientCredentials) -> StoreResult<Option<Client>> {
    find_client_auth(db, &creds.client_id, |stored| secret::verify(&creds.secret, Some(stored)))
}

/// [`check`] in its own read, counting a rejection as an `invalid_client` denial.
pub async fn authenticate(state: &AppState, creds: ClientCredentials) -> Result<Option<Client>, StoreError> {
    let client = state.store.read_one(move |db| check(db, &creds)).await?;
    if client.is_none() {
        state.metrics.deny("invalid_client");
    }
    Ok(client)
}
