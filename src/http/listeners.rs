//! Which listener serves which route when `JOBTOKEN_ADMIN_BIND` gives the admin API its own
//! (like Hydra's public and admin ports). Unset, one listener serves everything.
//!
//! | route | public listener | admin listener |
//! | --- | --- | --- |
//! | `/oauth/*`, `/.well-known/*`, any other non-API route | yes | 404 |
//! | `/ui/*` (the web console) but its admin pages | yes | yes |
//! | `/ui/admin/*` (the console's admin pages) | 404 | yes |
//! | `POST /api/v1/job_token/authorize` (resource servers' decisions) | yes | yes |
//! | `POST /api/v1/jobs/{id}/finish` (runners finishing their job) | yes | yes |
//! | `/api/v1/{projects,groups}/{id}/job_token_scope` and below (Maintainers with PATs) | yes | yes |
//! | `GET /api/v1/{projects,groups}/{id}/audit_events` (Maintainers with PATs) | yes | yes |
//! | `POST /api/v1/tokens/inspect` (Maintainers with PATs) | yes | yes |
//! | `/health/live`, `/health/ready` | yes | yes |
//! | `/metrics` | 404 | yes |
//! | every other `/api/v1/*` route (the admin API) | 404 | yes |
//!
//! Credentials are checked as everywhere else: the split decides where a route is reachable,
//! not who may call it. A hidden route answers the same 404 as a route that does not exist,
//! before authentication, so the public side tells nothing about the admin API.
//!
//! The admin token belongs on the admin listener: when split, the console on the public listener
//! refuses admin-token sign-in (the same answer as an invalid token) and ignores admin sessions
//! ([`admin_token_accepted`]), so the admin token is only ever typed into the admin listener.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest};

use crate::app::AppState;

/// Where a route is served when the listeners are split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Public,
    Admin,
    Both,
}

/// `/api/v1` routes the public side needs (see the table above); a path equal to one of these
/// or under it (`prefix/…`) is served on both listeners.
const PUBLIC_API: &[&str] = &[
    "/api/v1/job_token/authorize",
    "/api/v1/jobs/{id}/finish",
    "/api/v1/projects/{id}/job_token_scope",
    "/api/v1/groups/{id}/job_token_scope",
    "/api/v1/projects/{id}/audit_events",
    "/api/v1/groups/{id}/audit_events",
    "/api/v1/tokens/inspect",
];

/// The console's admin pages.
const CONSOLE_ADMIN: &str = "/ui/admin/";

/// The table: where the route with this pattern (`None`: no route matched) is served.
pub fn side(pattern: Option<&str>) -> Side {
    let Some(pattern) = pattern else { return Side::Both };
    if pattern == "/metrics" {
        return Side::Admin;
    }
    if pattern.starts_with("/health/") {
        return Side::Both;
    }
    if pattern.starts_with(CONSOLE_ADMIN) {
        return Side::Admin;
    }
    if pattern == crate::ui::PREFIX || pattern.starts_with("/ui/") {
        return Side::Both;
    }
    if !pattern.starts_with(super::auth::API_PREFIX) {
        return Side::Public;
    }
    let public =
        PUBLIC_API.iter().any(|p| pattern.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')));
    if public {
        Side::Both
    } else {
        Side::Admin
    }
}

/// Whether the request came in on the admin listener (`false` when the listeners are not split).
fn on_admin_listener(req: &HttpRequest) -> bool {
    let admin = req.app_data::<web::Data<AppState>>().and_then(|s| s.admin_addr);
    admin.is_some_and(|addr| req.app_config().local_addr() == addr)
}

/// Whether the admin token (a sign-in with it, a session opened with it) is accepted on the
/// listener this request came in on: always with one listener; when split, on the admin one only.
pub fn admin_token_accepted(req: &HttpRequest) -> bool {
    let split = req.app_data::<web::Data<AppState>>().is_some_and(|s| s.admin_addr.is_some());
    !split || on_admin_listener(req)
}

/// Middleware, mounted only when the listeners are split: a route not served on the listener
/// the request came in on is a plain 404.
pub async fn split<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let on_admin = on_admin_listener(req.request());
    let served = match side(req.match_pattern().as_deref()) {
        Side::Both => true,
        Side::Admin => on_admin,
        Side::Public => !on_admin,
    };
    if served {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    let (req, _) = req.into_parts();
    let res = super::not_found(req.clone()).await;
    Ok(ServiceResponse::new(req, res).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_api_metrics_and_admin_pages_are_admin_side_and_what_runners_registries_and_maintainers_use_is_on_both()
    {
        let cases = [
            ("/oauth/token", Side::Public),
            ("/.well-known/jwks.json", Side::Public),
            ("/jwt/auth", Side::Public),
            ("/ui/", Side::Both),
            ("/ui", Side::Both),
            ("/ui/login", Side::Both),
            ("/ui/projects/{full_path:.+}", Side::Both),
            ("/ui/admin/keys", Side::Admin),
            ("/ui/admin/runners/{id}/{action}", Side::Admin),
            ("/uix", Side::Public),
            ("/metrics", Side::Admin),
            ("/health/ready", Side::Both),
            ("/api/v1/users", Side::Admin),
            ("/api/v1/jobs/{id}", Side::Admin),
            ("/api/v1/keys/rotate", Side::Admin),
            ("/api/v1/job_token/authorize", Side::Both),
            ("/api/v1/jobs/{id}/finish", Side::Both),
            ("/api/v1/projects/{id}/job_token_scope", Side::Both),
            ("/api/v1/groups/{id}/job_token_scope/allowlist/{source_project_id}", Side::Both),
            ("/api/v1/projects/{id}/job_token_scope_extra", Side::Admin),
            ("/api/v1/groups/{id}/audit_events", Side::Both),
            ("/api/v1/audit_events", Side::Admin),
            ("/api/v1/tokens/inspect", Side::Both),
            ("/api/v1/keys/registry_bundle.pem", Side::Admin),
        ];

        for (pattern, expected) in cases {
            assert_eq!(side(Some(pattern)), expected, "{pattern}");
        }
        assert_eq!(side(None), Side::Both);
    }
}
