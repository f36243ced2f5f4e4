//! Who may edit a job token scope, and which sources they may add (SPEC §4.3, last paragraph).

use crate::store::Db;

use super::job_token_scope::ScopeError;
use crate::domain::{AccessLevel, UserId, Visibility};
use crate::store::allowlist::Node;
use crate::store::{namespaces, Result, StoreError};

/// Who edits job token scope settings: the admin, or a user by personal access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Admin,
    User(UserId),
}

impl From<Actor> for crate::store::audit::Actor {
    fn from(actor: Actor) -> Self {
        match actor {
            Actor::Admin => crate::store::audit::Actor::Admin,
            Actor::User(id) => crate::store::audit::Actor::User(id),
        }
    }
}

/// The owner's full path and its groups (root first, the group itself included for a group).
fn locate(conn: &Db, node: Node) -> Result<(String, Vec<i64>, Option<Visibility>)> {
    Ok(match node {
        Node::Project(id) => {
            let p = namespaces::get_project(conn, id)?;
            let ns = namespaces::get_group(conn, p.namespace_id)?;
            (p.path_with_namespace, ns.traversal_ids, Some(p.visibility))
        }
        Node::Group(id) => {
            let g = namespaces::get_group(conn, id)?;
            (g.full_path, g.traversal_ids, None)
        }
    })
}

fn access(conn: &Db, user: i64, node: Node, groups: &[i64]) -> Result<Option<AccessLevel>> {
    match node {
        Node::Project(id) => namespaces::effective_access(conn, user, id, groups),
        Node::Group(_) => namespaces::group_access(conn, user, groups),
    }
}

/// The node's path and whether the actor may edit it (Maintainer or Owner, directly or through
/// a group, or the admin); `None` when it does not exist or the actor cannot see it (SPEC §4.3):
/// a membership at any level on it or an ancestor, or a public or internal project (a user
/// actor is active: blocked users never authenticate).
fn visible(conn: &Db, actor: Actor, node: Node) -> Result<Option<(String, bool)>> {
    let (path, groups, visibility) = match locate(conn, node) {
        Ok(found) => found,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Actor::User(user) = actor else { return Ok(Some((path, true))) };
    let level = access(conn, user, node, &groups)?;
    let public = matches!(visibility, Some(Visibility::Public | Visibility::Internal));
    let edits = level.is_some_and(|l| l >= AccessLevel::Maintainer);
    Ok((level.is_some() || public).then_some((path, edits)))
}

/// Editing needs Maintainer or Owner on the owner, or the admin. An owner the caller cannot see
/// is [`ScopeError::NotFound`], the same as an unknown one; one they see but may not edit is
/// [`ScopeError::Forbidden`]. Returns the owner's full path.
pub fn may_edit(conn: &Db, actor: Actor, owner: Node) -> Result<String, ScopeError> {
    match visible(conn, actor, owner)? {
        None => Err(ScopeError::NotFound(owner)),
        Some((path, true)) => Ok(path),
        Some((path, false)) => Err(ScopeError::Forbidden(path)),
    }
}

/// Adding a source needs the editor to see it. A source the editor cannot see is reported
/// exactly as an unknown one. Returns the source's full path.
pub fn may_see(conn: &Db, actor: Actor, source: Node) -> Result<String, ScopeError> {
    visible(conn, actor, source)?.map(|(path, _)| path).ok_or(ScopeError::NotFound(source))
}
