//! Reading the audit trail (issue 9 point 3): the instance's for the admin, a project's or a
//! group's for its Maintainers and Owners.

use super::editor::{self, Actor};
use super::job_token_scope::ScopeError;
use crate::store::allowlist::Node;
use crate::store::audit::{self, AuditEvent, Filter};
use crate::store::{Listed, Page, Result as StoreResult, Store};

/// Every event `filter` matches (the caller is the admin), newest first.
pub async fn instance_events(store: &Store, filter: Filter, page: Page) -> StoreResult<Listed<AuditEvent>> {
    store.read(move |c| audit::list(c, &filter, page)).await
}

/// The events that belong to `owner` and match `filter`, newest first. Reading them needs what
/// editing the owner's job token scope needs (Maintainer or Owner, or the admin); an owner the
/// actor cannot see is not found, one they see without the role is forbidden.
pub async fn events_of(
    store: &Store,
    actor: Actor,
    owner: Node,
    mut filter: Filter,
    page: Page,
) -> Result<Listed<AuditEvent>, ScopeError> {
    match owner {
        Node::Project(id) => filter.project_id = Some(id),
        Node::Group(id) => filter.group_id = Some(id),
    }
    store
        .read(move |c| {
            Ok(match editor::may_edit(c, actor, owner) {
                Ok(_) => audit::list(c, &filter, page).map_err(ScopeError::from),
                Err(refused) => Err(refused),
            })
        })
        .await?
}
