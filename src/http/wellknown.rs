//! Public verification material: JWKS and discovery documents.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::app::AppState;
use crate::domain::CATALOG;
use crate::keys::jwks::MAX_AGE_SECS;

/// `Cache-Control` of the public documents, built once.
fn public_cache_control() -> HeaderValue {
    static VALUE: std::sync::OnceLock<HeaderValue> = std::sync::OnceLock::new();
    VALUE
        .get_or_init(|| {
            HeaderValue::from_str(&format!("public, max-age={MAX_AGE_SECS}"))
                .unwrap_or_else(|_| HeaderValue::from_static("public"))
        })
        .clone()
}

/// The published JWKS document's bytes, shared with the key ring (no copy per request).
struct JwksBytes(std::sync::Arc<crate::keys::jwks::JwksDocument>);

impl AsRef<[u8]> for JwksBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0.body
    }
}

pub async fn jwks(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let doc = state.keys.jwks();
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        // RFC 9110 §13.1.2: If-None-Match uses the weak comparison, so `W/"x"` matches `"x"`.
        .is_some_and(|v| v.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == doc.etag));
    let mut res = if matches { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    res.insert_header((header::ETAG, doc.etag.clone()))
        .insert_header((header::CACHE_CONTROL, public_cache_control()))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")));
    if matches {
        return res.finish();
    }
    res.content_type("application/jwk-set+json").body(bytes::Bytes::from_owner(JwksBytes(doc)))
}

/// The discovery document (RFC 8414 and OpenID Connect Discovery share it).
pub fn discovery_document(issuer: &str, algs: &[&str]) -> Value {
    let base = issuer.trim_end_matches('/');
    let scopes: Vec<&str> = CATALOG.iter().map(|row| row.name).collect();
    json!({
        "issuer": issuer,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "token_endpoint": format!("{base}/oauth/token"),
        "introspection_endpoint": format!("{base}/oauth/introspect"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "grant_types_supported": ["client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"],
        // No authorization endpoint: tokens are issued to runners at the token endpoint. Like
        // GitHub Actions' and GitLab's CI issuers, the document names `id_token` so that strict
        // OpenID discovery consumers (cloud federation) accept it.
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": scopes,
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "job_id", "pipeline_id",
            "project_id", "project_path", "namespace_id", "namespace_path", "user_id", "user_login", "ref",
            "ref_type", "ref_protected", "pipeline_source", "sha", "runner_id", "project_visibility",
            "environment", "authorization_details"
        ],
        "id_token_signing_alg_values_supported": algs,
        "authorization_details_types_supported": ["ci_project_access"],
    })
}

pub async fn discovery(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, public_cache_control()))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")))
        .content_type("application/json")
        .body(state.discovery.clone())
}
