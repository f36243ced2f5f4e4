//! The `{id}` of every project and group route: a numeric id, or the project's or group's
//! URL-encoded full path (`/api/v1/projects/grp%2Fapp`). An id is taken as it is (no query); a
//! path is resolved once, here, through the store's lookups by path (the decision endpoint's too).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use serde::Deserialize;

use super::auth::{caller_of, ApiCaller};
use crate::app::AppState;
use crate::domain::{GroupId, ProjectId};
use crate::error::ApiError;
use crate::store::namespaces::{self, MAX_FULL_PATH_LEN};

/// Extractor: the project an `{id}` segment names, by id or URL-encoded full path. An unknown
/// path is a 404, like an unknown id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectRef(pub ProjectId);

/// Extractor: the group an `{id}` segment names, by id or URL-encoded full path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupRef(pub GroupId);

impl ProjectRef {
    /// The project's id (as `web::Path<ProjectId>::into_inner` gave it).
    pub fn into_inner(self) -> ProjectId {
        self.0
    }
}

impl GroupRef {
    /// The group's id (as `web::Path<GroupId>::into_inner` gave it).
    pub fn into_inner(self) -> GroupId {
        self.0
    }
}

#[derive(Deserialize)]
struct IdSegment {
    id: String,
}

/// What an `{id}` segment says: an id, or a full path (percent-decoded).
#[derive(Debug, PartialEq, Eq)]
enum Named {
    Id(i64),
    Path(String),
}

fn named(segment: &str) -> Option<Named> {
    if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
        return segment.parse().ok().map(Named::Id);
    }
    (!segment.is_empty() && segment.len() <= MAX_FULL_PATH_LEN).then(|| Named::Path(segment.to_owned()))
}

#[derive(Clone, Copy)]
enum Kind {
    Project,
    Group,
}

type Resolving = Pin<Box<dyn Future<Output = Result<i64, ApiError>>>>;

/// Resolves the request's `{id}` segment to the id of a project or group.
fn resolve(req: &HttpRequest, kind: Kind) -> Resolving {
    let noun = match kind {
        Kind::Project => "project",
        Kind::Group => "group",
    };
    let segment = req.match_info().load::<IdSegment>().map(|s| s.id).unwrap_or_default();
    let not_found = |shown: &str| {
        // A user sees the job token scope's own "project not found", which does not echo the
        // path; the admin is told which path was not found.
        let admin = caller_of(req).is_some_and(|c| matches!(*c, ApiCaller::Admin));
        ApiError::NotFound(if admin { format!("{noun} {shown} not found") } else { format!("{noun} not found") })
    };
    let path = match named(&segment) {
        Some(Named::Id(id)) => return Box::pin(std::future::ready(Ok(id))),
        Some(Named::Path(path)) => path,
        None => return Box::pin(std::future::ready(Err(not_found(&segment)))),
    };
    let missing = not_found(&path);
    let state = req.app_data::<web::Data<AppState>>().cloned();
    Box::pin(async move {
        let state = state.ok_or_else(|| ApiError::Internal("no application state".into()))?;
        let found = state
            .store
            .read(move |db| match kind {
                Kind::Project => Ok(namespaces::find_project_by_path(db, &path)?.map(|p| p.id)),
                Kind::Group => Ok(namespaces::find_group_by_path(db, &path)?.map(|g| g.id)),
            })
            .await?;
        found.ok_or(missing)
    })
}

impl FromRequest for ProjectRef {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<ProjectRef, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let resolving = resolve(req, Kind::Project);
        Box::pin(async move { resolving.await.map(ProjectRef) })
    }
}

impl FromRequest for GroupRef {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<GroupRef, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let resolving = resolve(req, Kind::Group);
        Box::pin(async move { resolving.await.map(GroupRef) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_an_id_and_anything_else_a_path() {
        assert_eq!(named("42"), Some(Named::Id(42)));
        assert_eq!(named("grp/app"), Some(Named::Path("grp/app".into())));
        assert_eq!(named("-1"), Some(Named::Path("-1".into())));
        assert_eq!(named("99999999999999999999"), None);
        assert_eq!(named(""), None);
        assert_eq!(named(&"a".repeat(MAX_FULL_PATH_LEN + 1)), None);
    }
}
