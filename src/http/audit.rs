//! The audit trail (issue 9 point 3): `GET /api/v1/audit_events` for the admin, and
//! `GET /api/v1/{projects,groups}/{id}/audit_events` for the Maintainers and Owners of that
//! project or group. Newest first, paginated (`page`, `per_page`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::auth::{Actor, Admin};
use super::input;
use super::page::{self, Pagination};
use super::refs::{GroupRef, ProjectRef};
use crate::app::AppState;
use crate::error::ApiError;
use crate::service::audit as service;
use crate::store::allowlist::Node;
use crate::store::audit::Filter;

type Reply = Result<HttpResponse, ApiError>;

/// The filters of every audit list; any other parameter is a 400 (a misspelt filter must not
/// silently list everything). `entity_type`/`entity_id` are GitLab's names for the target filters.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(alias = "entity_type")]
    pub(crate) target_type: Option<String>,
    #[serde(alias = "entity_id")]
    pub(crate) target_id: Option<i64>,
    /// `admin`, `system`, `cli`, `user`, `runner`, or `user:<id>` / `runner:<id>`.
    pub(crate) actor: Option<String>,
    pub(crate) created_after: Option<String>,
    pub(crate) created_before: Option<String>,
    /// Read by [`Pagination`]; named here only so that they are not unknown.
    #[serde(rename = "page")]
    pub(crate) _page: Option<String>,
    #[serde(rename = "per_page")]
    pub(crate) _per_page: Option<String>,
}

impl AuditQuery {
    /// The store's filter, or a 400 naming the bad value; the console's audit page parses its
    /// form with this too.
    pub(crate) fn filter(&self) -> Result<Filter, ApiError> {
        let instant = |what, text: &Option<String>| text.as_deref().map(|t| input::instant(what, t)).transpose();
        Ok(Filter {
            target_type: self.target_type.clone(),
            target_id: self.target_id,
            actor: self.actor.as_deref().map(actor).transpose()?,
            created_after: instant("created_after", &self.created_after)?,
            created_before: instant("created_before", &self.created_before)?,
            project_id: None,
            group_id: None,
        })
    }
}

/// `admin` | `system` | `cli` | `user` | `runner` | `user:<id>` | `runner:<id>`.
fn actor(text: &str) -> Result<(String, Option<i64>), ApiError> {
    let bad = || {
        ApiError::BadRequest(
            "actor must be admin, system, cli, user, runner, user:<id> or runner:<id> (e.g. user:5)".into(),
        )
    };
    let (kind, id) = match text.split_once(':') {
        Some((kind, id)) => (kind, Some(id.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(bad)?)),
        None => (text, None),
    };
    match (kind, id) {
        ("admin" | "system" | "cli", None) | ("user" | "runner", _) => Ok((kind.to_owned(), id)),
        _ => Err(bad()),
    }
}

pub async fn list(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    Pagination(page): Pagination,
    query: web::Query<AuditQuery>,
) -> Reply {
    let listed = service::instance_events(&state.store, query.filter()?, page).await?;
    Ok(page::respond(&req, page, listed))
}

pub async fn list_project(
    actor: Actor,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: ProjectRef,
    Pagination(page): Pagination,
    query: web::Query<AuditQuery>,
) -> Reply {
    let owner = Node::Project(id.into_inner());
    let listed = service::events_of(&state.store, actor, owner, query.filter()?, page).await?;
    Ok(page::respond(&req, page, listed))
}

pub async fn list_group(
    actor: Actor,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: GroupRef,
    Pagination(page): Pagination,
    query: web::Query<AuditQuery>,
) -> Reply {
    let owner = Node::Group(id.into_inner());
    let listed = service::events_of(&state.store, actor, owner, query.filter()?, page).await?;
    Ok(page::respond(&req, page, listed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_are_a_kind_or_a_kind_and_a_positive_id() {
        assert_eq!(actor("admin").unwrap(), ("admin".into(), None));
        assert_eq!(actor("user:5").unwrap(), ("user".into(), Some(5)));
        assert_eq!(actor("runner").unwrap(), ("runner".into(), None));
        for bad in ["", "root", "admin:1", "user:", "user:x", "user:0", "user:-3"] {
            assert!(actor(bad).is_err(), "{bad:?}");
        }
    }
}
