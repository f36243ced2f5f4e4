//! Who may edit a job token scope, and which sources they may add (SPEC §4.3, last paragraph).

use rusqlite::Connection;

use crate::domain::{AccessLevel, Visibility};
use crate::error::ApiError;
use crate::http::auth::Actor;
use crate::store::allowlist::Node;
use crate::store::{namespaces, Result, StoreError};

/// The owner's full path and its groups (root first, the group itself included for a group).
fn locate(conn: &Connection, node: Node) -> Result<(String, Vec<i64>, Option<Visibility>)> {
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

fn access(conn: &Connection, user: i64, node: Node, groups: &[i64]) -> Result<Option<AccessLevel>> {
    match node {
        Node::Project(id) => namespaces::effective_access(conn, user, id, groups),
        Node::Group(_) => namespaces::group_access(conn, user, groups),
    }
}

/// Editing needs Maintainer or Owner on the owner (directly or through a group), or the admin.
/// An unknown owner is a 404 for everyone.
pub fn may_edit(conn: &Connection, actor: Actor, owner: Node) -> Result<Result<String, ApiError>> {
    let (path, groups, _) = locate(conn, owner)?;
    let Actor::User(user) = actor else { return Ok(Ok(path)) };
    match access(conn, user, owner, &groups)? {
        Some(level) if level >= AccessLevel::Maintainer => Ok(Ok(path)),
        _ => Ok(Err(ApiError::Forbidden(format!(
            "editing the job token scope of {path} needs the Maintainer or Owner role on it"
        )))),
    }
}

/// Adding a source needs the editor to see it: a membership on it or an ancestor, or a public
/// or internal source project. A source the editor cannot see is reported as not found.
pub fn may_see(conn: &Connection, actor: Actor, source: Node) -> Result<Result<String, ApiError>> {
    let not_found = || match source {
        Node::Project(id) => ApiError::NotFound(format!("project {id} not found")),
        Node::Group(id) => ApiError::NotFound(format!("group {id} not found")),
    };
    let (path, groups, visibility) = match locate(conn, source) {
        Ok(found) => found,
        Err(StoreError::NotFound(_)) => return Ok(Err(not_found())),
        Err(e) => return Err(e),
    };
    let Actor::User(user) = actor else { return Ok(Ok(path)) };
    let visible = matches!(visibility, Some(Visibility::Public | Visibility::Internal))
        || access(conn, user, source, &groups)?.is_some();
    Ok(if visible { Ok(path) } else { Err(not_found()) })
}
