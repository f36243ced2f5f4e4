//! Route modules, one per area. Handlers stay thin: extract → call one service function (or,
//! for the admin API's plain reads and writes, one store function) → respond. Each module holds
//! the one `From` mapping of its use cases' error enums to `ApiError` or `OAuthError`.

pub mod access;
pub(crate) mod admin;
pub(crate) mod audit;
pub mod auth;
mod decision;
pub mod form;
pub(crate) mod input;
mod inspect;
mod job_token_scope;
pub mod listeners;
mod oauth;
mod ops;
pub mod page;
pub mod refs;
mod registry;
mod wellknown;

pub use wellknown::discovery_document;

use std::future::ready;

use actix_web::http::{header, Method};
use actix_web::{error, guard, web, HttpRequest, HttpResponse, Route};

use crate::error::ApiError;

/// Declares every route once: `ROUTES` (what the openapi test compares) and `configure`.
macro_rules! routes {
    ($($method:ident $path:literal => $handler:path),* $(,)?) => {
        /// Every mounted (method, path), in the notation of `openapi.yaml`.
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        /// Mounts every route, one resource per path (see [`mount`]).
        pub fn routes(cfg: &mut web::ServiceConfig) {
            mount(cfg, vec![$(($path, Method::$method, web::route().to($handler))),*]);
        }
    };
}

/// Groups the table by path into one `web::Resource` each, in the order paths first appear (the
/// router tries resources in that order). A `GET` route answers `HEAD` too (actix sends no body
/// for it); any other method on a known path is a 405 whose `Allow` lists the path's methods.
fn mount(cfg: &mut web::ServiceConfig, table: Vec<(&'static str, Method, Route)>) {
    let mut paths: Vec<(&'static str, Vec<(Method, Route)>)> = Vec::new();
    for (path, method, route) in table {
        match paths.iter_mut().find(|(p, _)| *p == path) {
            Some((_, routes)) => routes.push((method, route)),
            None => paths.push((path, vec![(method, route)])),
        }
    }
    for (path, routes) in paths {
        let mut allowed: Vec<String> = Vec::new();
        let mut resource = web::resource(path);
        for (method, route) in routes {
            allowed.push(method.to_string());
            resource = resource.route(match method {
                Method::GET => {
                    allowed.push(Method::HEAD.to_string());
                    route.guard(guard::Any(guard::Get()).or(guard::Head()))
                }
                other => route.guard(guard::Method(other)),
            });
        }
        let allow = allowed.join(", ");
        cfg.service(resource.default_service(web::to(move || ready(method_not_allowed(&allow)))));
    }
}

routes! {
    // Static paths first, the hottest at the top: the router (and the metrics middleware's
    // pattern lookup) tries resources in this order, and every dynamic path costs a regex match.
    POST "/oauth/token" => oauth::token,
    POST "/oauth/introspect" => oauth::introspect,
    POST "/api/v1/job_token/authorize" => decision::authorize,
    POST "/api/v1/tokens/inspect" => inspect::inspect,
    GET "/.well-known/jwks.json" => wellknown::jwks,
    POST "/oauth/revoke" => oauth::revoke,
    GET "/oauth/discovery/keys" => wellknown::jwks,
    GET "/.well-known/openid-configuration" => wellknown::discovery,
    GET "/.well-known/oauth-authorization-server" => wellknown::discovery,
    GET "/jwt/auth" => registry::auth,
    GET "/health/live" => ops::live,
    GET "/health/ready" => ops::ready,
    GET "/metrics" => ops::metrics,
    GET "/api/v1/keys" => ops::list_keys,
    GET "/api/v1/keys/registry_bundle.pem" => registry::bundle,
    POST "/api/v1/keys/rotate" => ops::rotate_keys,
    POST "/api/v1/users" => admin::create_user,
    GET "/api/v1/users" => admin::list_users,
    POST "/api/v1/groups" => admin::create_group,
    GET "/api/v1/groups" => admin::list_groups,
    POST "/api/v1/projects" => admin::create_project,
    GET "/api/v1/projects" => admin::list_projects,
    POST "/api/v1/runners" => admin::create_runner,
    GET "/api/v1/runners" => admin::list_runners,
    POST "/api/v1/resource_servers" => admin::create_resource_server,
    GET "/api/v1/resource_servers" => admin::list_resource_servers,
    GET "/api/v1/settings" => admin::get_settings,
    PATCH "/api/v1/settings" => admin::update_settings,
    GET "/api/v1/users/{id}" => admin::get_user,
    PATCH "/api/v1/users/{id}" => admin::update_user,
    GET "/api/v1/groups/{id}" => admin::get_group,
    DELETE "/api/v1/groups/{id}" => admin::delete_group,
    GET "/api/v1/groups/{id}/members" => admin::list_group_members,
    PUT "/api/v1/groups/{id}/members/{user_id}" => admin::put_group_member,
    DELETE "/api/v1/groups/{id}/members/{user_id}" => admin::delete_group_member,
    GET "/api/v1/projects/{id}" => admin::get_project,
    PATCH "/api/v1/projects/{id}" => admin::update_project,
    DELETE "/api/v1/projects/{id}" => admin::delete_project,
    GET "/api/v1/projects/{id}/members" => admin::list_project_members,
    PUT "/api/v1/projects/{id}/members/{user_id}" => admin::put_project_member,
    DELETE "/api/v1/projects/{id}/members/{user_id}" => admin::delete_project_member,
    POST "/api/v1/projects/{id}/pipelines" => admin::create_pipeline,
    GET "/api/v1/projects/{id}/pipelines" => admin::list_pipelines,
    GET "/api/v1/projects/{id}/job_token_scope" => job_token_scope::get_project,
    PATCH "/api/v1/projects/{id}/job_token_scope" => job_token_scope::patch_project,
    GET "/api/v1/projects/{id}/job_token_scope/allowlist" => job_token_scope::list_pp,
    POST "/api/v1/projects/{id}/job_token_scope/allowlist" => job_token_scope::add_pp,
    GET "/api/v1/projects/{id}/job_token_scope/allowlist/{source_project_id}" => job_token_scope::get_pp,
    PATCH "/api/v1/projects/{id}/job_token_scope/allowlist/{source_project_id}" => job_token_scope::update_pp,
    DELETE "/api/v1/projects/{id}/job_token_scope/allowlist/{source_project_id}" => job_token_scope::remove_pp,
    GET "/api/v1/projects/{id}/job_token_scope/groups_allowlist" => job_token_scope::list_pg,
    POST "/api/v1/projects/{id}/job_token_scope/groups_allowlist" => job_token_scope::add_pg,
    GET "/api/v1/projects/{id}/job_token_scope/groups_allowlist/{source_group_id}" => job_token_scope::get_pg,
    PATCH "/api/v1/projects/{id}/job_token_scope/groups_allowlist/{source_group_id}" => job_token_scope::update_pg,
    DELETE "/api/v1/projects/{id}/job_token_scope/groups_allowlist/{source_group_id}" => job_token_scope::remove_pg,
    GET "/api/v1/projects/{id}/job_token_scope/outbound" => job_token_scope::list_outbound,
    POST "/api/v1/projects/{id}/job_token_scope/outbound" => job_token_scope::add_outbound,
    GET "/api/v1/projects/{id}/job_token_scope/outbound/projects/{target_id}" => job_token_scope::get_outbound_project,
    DELETE "/api/v1/projects/{id}/job_token_scope/outbound/projects/{target_id}" => job_token_scope::remove_outbound_project,
    GET "/api/v1/projects/{id}/job_token_scope/outbound/groups/{target_id}" => job_token_scope::get_outbound_group,
    DELETE "/api/v1/projects/{id}/job_token_scope/outbound/groups/{target_id}" => job_token_scope::remove_outbound_group,
    GET "/api/v1/projects/{id}/job_token_scope/authorizations" => job_token_scope::authorizations,
    POST "/api/v1/projects/{id}/job_token_scope/autopopulate" => job_token_scope::autopopulate,
    DELETE "/api/v1/projects/{id}/job_token_scope/autopopulated" => job_token_scope::remove_autopopulated,
    GET "/api/v1/groups/{id}/job_token_scope" => job_token_scope::get_group,
    PATCH "/api/v1/groups/{id}/job_token_scope" => job_token_scope::patch_group,
    GET "/api/v1/groups/{id}/job_token_scope/allowlist" => job_token_scope::list_gp,
    POST "/api/v1/groups/{id}/job_token_scope/allowlist" => job_token_scope::add_gp,
    GET "/api/v1/groups/{id}/job_token_scope/allowlist/{source_project_id}" => job_token_scope::get_gp,
    PATCH "/api/v1/groups/{id}/job_token_scope/allowlist/{source_project_id}" => job_token_scope::update_gp,
    DELETE "/api/v1/groups/{id}/job_token_scope/allowlist/{source_project_id}" => job_token_scope::remove_gp,
    GET "/api/v1/groups/{id}/job_token_scope/groups_allowlist" => job_token_scope::list_gg,
    POST "/api/v1/groups/{id}/job_token_scope/groups_allowlist" => job_token_scope::add_gg,
    GET "/api/v1/groups/{id}/job_token_scope/groups_allowlist/{source_group_id}" => job_token_scope::get_gg,
    PATCH "/api/v1/groups/{id}/job_token_scope/groups_allowlist/{source_group_id}" => job_token_scope::update_gg,
    DELETE "/api/v1/groups/{id}/job_token_scope/groups_allowlist/{source_group_id}" => job_token_scope::remove_gg,
    POST "/api/v1/users/{id}/personal_access_tokens" => admin::create_pat,
    GET "/api/v1/users/{id}/personal_access_tokens" => admin::list_pats,
    GET "/api/v1/users/{id}/personal_access_tokens/{pat_id}" => admin::get_pat,
    DELETE "/api/v1/users/{id}/personal_access_tokens/{pat_id}" => admin::revoke_pat,
    GET "/api/v1/runners/{id}" => admin::get_runner,
    PATCH "/api/v1/runners/{id}" => admin::update_runner,
    DELETE "/api/v1/runners/{id}" => admin::delete_runner,
    POST "/api/v1/runners/{id}/reset_secret" => admin::reset_runner_secret,
    GET "/api/v1/resource_servers/{id}" => admin::get_resource_server,
    PATCH "/api/v1/resource_servers/{id}" => admin::update_resource_server,
    DELETE "/api/v1/resource_servers/{id}" => admin::delete_resource_server,
    POST "/api/v1/resource_servers/{id}/reset_secret" => admin::reset_resource_server_secret,
    GET "/api/v1/pipelines/{id}" => admin::get_pipeline,
    GET "/api/v1/pipelines/{id}/jobs" => admin::list_jobs,
    GET "/api/v1/jobs/{id}" => admin::get_job,
    GET "/api/v1/jobs/{id}/tokens" => admin::list_job_tokens,
    GET "/api/v1/audit_events" => audit::list,
    GET "/api/v1/projects/{id}/audit_events" => audit::list_project,
    GET "/api/v1/groups/{id}/audit_events" => audit::list_group,
    POST "/api/v1/jobs/{id}/finish" => admin::finish_job,
    // The web console (HTML, not part of openapi.yaml: tests/openapi.rs leaves `/ui` out).
    GET "/ui" => crate::ui::home::root,
    GET "/ui/" => crate::ui::home::show,
    GET "/ui/login" => crate::ui::login::show,
    POST "/ui/login" => crate::ui::login::submit,
    POST "/ui/logout" => crate::ui::login::logout,
    GET "/ui/assets/console.css" => crate::ui::assets::css,
    GET "/ui/tokens" => crate::ui::tokens::show,
    POST "/ui/tokens" => crate::ui::tokens::inspect,
    GET "/ui/projects/{full_path:.+}" => crate::ui::project::show,
    POST "/ui/projects/{full_path:.+}" => crate::ui::project::act,
    GET "/ui/groups/{full_path:.+}" => crate::ui::groups::show,
    POST "/ui/groups/{full_path:.+}" => crate::ui::groups::act,
    GET "/ui/admin/keys" => crate::ui::admin::keys,
    POST "/ui/admin/keys/rotate" => crate::ui::admin::rotate,
    GET "/ui/admin/settings" => crate::ui::admin::settings,
    POST "/ui/admin/settings" => crate::ui::admin::save_settings,
    GET "/ui/admin/audit" => crate::ui::admin::audit,
    GET "/ui/admin/runners" => crate::ui::admin::runners,
    POST "/ui/admin/runners" => crate::ui::admin::create_runner,
    POST "/ui/admin/runners/{id}/{action}" => crate::ui::admin::runner_action,
    GET "/ui/admin/resource_servers" => crate::ui::admin::resource_servers,
    POST "/ui/admin/resource_servers" => crate::ui::admin::create_resource_server,
    POST "/ui/admin/resource_servers/{id}/{action}" => crate::ui::admin::resource_server_action,
}

/// Largest JSON body the API accepts.
pub const MAX_JSON_BYTES: usize = 256 * 1024;

/// Extractor settings that turn malformed input into the API's error shape.
pub fn extractors(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::JsonConfig::default().limit(MAX_JSON_BYTES).error_handler(json_error))
        .app_data(
            web::PathConfig::default()
                .error_handler(|_, _| ApiError::NotFound("no such resource (ids are positive integers)".into()).into()),
        )
        .app_data(
            web::QueryConfig::default()
                .error_handler(|e, _| ApiError::BadRequest(format!("invalid query string: {e}")).into()),
        );
}

fn json_error(err: error::JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    match err {
        error::JsonPayloadError::Overflow { limit } | error::JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge(limit).into()
        }
        error::JsonPayloadError::ContentType => ApiError::BadRequest("the body must be application/json".into()).into(),
        error::JsonPayloadError::Deserialize(e) => ApiError::BadRequest(format!("invalid JSON body: {e}")).into(),
        _ => ApiError::BadRequest("the request body could not be read".into()).into(),
    }
}

/// Unknown routes.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    let err = ApiError::NotFound(format!("no route for {} {}", req.method(), req.path()));
    error::ResponseError::error_response(&err)
}

/// A known path asked with a method it does not have (RFC 9110 §15.5.6).
fn method_not_allowed(allow: &str) -> HttpResponse {
    let err = ApiError::MethodNotAllowed(format!("this path accepts {allow}"));
    let mut res = error::ResponseError::error_response(&err);
    if let Ok(value) = header::HeaderValue::from_str(allow) {
        res.headers_mut().insert(header::ALLOW, value);
    }
    res
}
