//! Operations: health, metrics, the JWKS and discovery documents, and what the log must never hold.
#![allow(clippy::unwrap_used)]

mod common;

use common::{metric, mint_as, Auth, Client, Server, World, ADMIN};
use serde_json::{json, Value};

#[test]
fn liveness_answers_ok() {
    let s = Server::start();

    let res = s.get("/health/live", Auth::None);

    assert_eq!(res.status, 200, "{}", res.text);
}

#[test]
fn readiness_reports_the_database_and_the_signing_key_ok() {
    let s = Server::start();

    let res = s.get("/health/ready", Auth::None);

    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json["status"], "ok");
    assert_eq!(res.json["checks"]["database"], "ok");
    assert_eq!(res.json["checks"]["signing_key"], "ok");
}

#[test]
fn metrics_count_every_issued_token() {
    let s = Server::start();
    let w = World::new(&s);
    let (a, b) = (w.job(&s, true), w.job(&s, false));
    assert_eq!(metric(&s, "jobtoken_tokens_issued_total"), Some(0.0));

    w.mint_ok(&s, a, &[]);
    w.mint_ok(&s, a, &[]);
    w.mint_ok(&s, b, &[]);
    let refused = w.mint(&s, 999_999, &[]);

    assert_eq!(refused.status, 400);
    assert_eq!(metric(&s, "jobtoken_tokens_issued_total"), Some(3.0));
}

#[test]
fn metrics_count_a_bad_login_as_an_invalid_client_denial() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    let sample = "jobtoken_denials_total{reason=\"invalid_client\"}";
    assert!(metric(&s, sample).unwrap_or(0.0) == 0.0);

    let res = mint_as(&s, &Client { secret: "jtrs_wrong".into(), ..w.runner.clone() }, job, &[]);

    assert_eq!(res.status, 401);
    assert_eq!(metric(&s, sample), Some(1.0));
    let metrics = s.get("/metrics", Auth::None);
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain"), "{:?}", metrics.headers);
    assert_eq!(metric(&s, "jobtoken_tokens_issued_total"), Some(0.0));
}

#[test]
fn the_jwks_is_served_as_a_cacheable_jwk_set_with_an_etag() {
    let s = Server::start();

    let res = s.get("/.well-known/jwks.json", Auth::None);

    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("application/jwk-set+json"));
    let cache = res.header("cache-control").unwrap();
    let max_age: u64 = cache.strip_prefix("public, max-age=").expect(cache).parse().unwrap();
    assert!(max_age > 0);
    let etag = res.header("etag").expect("an ETag");
    assert!(etag.starts_with('"') && etag.ends_with('"'), "a strong ETag: {etag}");
    assert!(res.json["keys"].is_array());
}

#[test]
fn the_jwks_answers_not_modified_to_its_own_etag() {
    let s = Server::start();
    let first = s.get("/.well-known/jwks.json", Auth::None);
    let etag = first.header("etag").unwrap().to_owned();

    let same = s.get_with("/.well-known/jwks.json", Auth::None, &[("If-None-Match", &etag)]);
    let other = s.get_with("/.well-known/jwks.json", Auth::None, &[("If-None-Match", "\"something-else\"")]);

    assert_eq!(same.status, 304);
    assert!(same.text.is_empty());
    assert_eq!(same.header("etag"), Some(etag.as_str()));
    assert_eq!(other.status, 200);
    assert_eq!(other.text, first.text);
}

#[test]
fn the_jwks_answers_not_modified_to_its_etag_among_several() {
    let s = Server::start();
    let etag = s.get("/.well-known/jwks.json", Auth::None).header("etag").unwrap().to_owned();

    let res = s.get_with("/.well-known/jwks.json", Auth::None, &[("If-None-Match", &format!("\"x\", {etag}"))]);

    assert_eq!(res.status, 304);
}

#[test]
fn the_jwks_answers_not_modified_to_its_etag_as_a_weak_validator() {
    let s = Server::start();
    let etag = s.get("/.well-known/jwks.json", Auth::None).header("etag").unwrap().to_owned();

    // RFC 9110 §13.1.2: If-None-Match uses the weak comparison, so W/"…" matches "…" (proxies
    // that compress the body hand clients the weak form).
    let res = s.get_with("/.well-known/jwks.json", Auth::None, &[("If-None-Match", &format!("W/{etag}"))]);

    assert_eq!(res.status, 304, "If-None-Match: W/{etag} must match (weak comparison)");
}

#[test]
fn the_jwks_etag_changes_when_the_keys_rotate() {
    let s = Server::start();
    let before = s.get("/.well-known/jwks.json", Auth::None);
    let etag = before.header("etag").unwrap().to_owned();

    s.admin("POST", "/api/v1/keys/rotate?force=true", Value::Null);

    let after = s.get_with("/.well-known/jwks.json", Auth::None, &[("If-None-Match", &etag)]);
    assert_eq!(after.status, 200, "a cached set is stale after rotation");
    assert_ne!(after.header("etag"), Some(etag.as_str()));
    assert_ne!(after.text, before.text);
}

#[test]
fn the_discovery_keys_alias_serves_the_same_jwks() {
    let s = Server::start();

    let canonical = s.get("/.well-known/jwks.json", Auth::None);
    let alias = s.get("/oauth/discovery/keys", Auth::None);

    assert_eq!(alias.status, 200);
    assert_eq!(alias.text, canonical.text);
    assert_eq!(alias.header("content-type"), Some("application/jwk-set+json"));
    assert_eq!(alias.header("etag"), canonical.header("etag"));
}

#[test]
fn the_jwks_publishes_only_public_signing_keys() {
    let s = Server::start();

    let keys = s.get("/.well-known/jwks.json", Auth::None).json["keys"].as_array().unwrap().clone();

    assert_eq!(keys.len(), 2, "the active and the next key");
    for key in &keys {
        assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()), "{key}");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], "ES256");
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(key.get(private).is_none(), "{private} in {key}");
        }
    }
}

fn assert_discovery(s: &Server, doc: &Value) {
    let base = s.base.as_str();
    assert_eq!(doc["issuer"], json!(base), "issuer is the base URL exactly");
    assert_eq!(doc["jwks_uri"], json!(format!("{base}/.well-known/jwks.json")));
    assert_eq!(doc["token_endpoint"], json!(format!("{base}/oauth/token")));
    assert_eq!(doc["introspection_endpoint"], json!(format!("{base}/oauth/introspect")));
    assert_eq!(doc["revocation_endpoint"], json!(format!("{base}/oauth/revoke")));
    assert!(doc["grant_types_supported"].as_array().unwrap().contains(&json!("client_credentials")));
    assert!(doc["scopes_supported"].as_array().unwrap().contains(&json!("read_repository")));
    assert!(doc["authorization_details_types_supported"].as_array().unwrap().contains(&json!("ci_project_access")));
}

#[test]
fn both_discovery_documents_name_the_server_as_issuer_with_endpoints_under_it() {
    let s = Server::start();

    let oidc = s.get("/.well-known/openid-configuration", Auth::None);
    let rfc8414 = s.get("/.well-known/oauth-authorization-server", Auth::None);

    assert_eq!(oidc.status, 200);
    assert_eq!(rfc8414.status, 200);
    assert!(oidc.header("content-type").unwrap().starts_with("application/json"));
    assert_discovery(&s, &oidc.json);
    assert_discovery(&s, &rfc8414.json);
    let jwks_path = oidc.json["jwks_uri"].as_str().unwrap().strip_prefix(&s.base).unwrap().to_owned();
    assert_eq!(s.get(&jwks_path, Auth::None).status, 200, "jwks_uri resolves");
}

#[test]
fn a_configured_issuer_appears_exactly_in_discovery_and_tokens() {
    let issuer = "https://ci.example.com/jobtoken";
    let s = Server::start_with(&[("JOBTOKEN_ISSUER", issuer)]);
    let w = World::new(&s);

    let doc = s.get("/.well-known/openid-configuration", Auth::None).json;
    let token = w.mint_ok(&s, w.job(&s, true), &[]);

    assert_eq!(doc["issuer"], issuer);
    assert_eq!(doc["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));
    assert_eq!(common::decode(&token).1["iss"], issuer);
    assert_eq!(common::decode(&token).1["aud"], issuer);
}

#[test]
fn a_configured_default_audience_becomes_aud() {
    let s = Server::start_with(&[("JOBTOKEN_DEFAULT_AUDIENCE", "https://registry.example.com")]);
    let w = World::new(&s);

    let token = w.mint_ok(&s, w.job(&s, true), &[]);

    assert_eq!(common::decode(&token).1["aud"], "https://registry.example.com");
    assert_eq!(common::decode(&token).1["iss"], json!(s.base));
}

#[test]
fn secrets_never_appear_in_the_log() {
    secrets_stay_out_of_the_log_at("info");
}

#[test]
fn secrets_never_appear_in_the_debug_log() {
    secrets_stay_out_of_the_log_at("debug");
}

#[test]
fn secrets_never_appear_in_the_trace_log() {
    secrets_stay_out_of_the_log_at("trace");
}

/// Mints (Basic and client_secret_post), introspects, fails a login and an admin call, revokes
/// and finishes, all with `RUST_LOG=level`; then no secret or token is in the log.
fn secrets_stay_out_of_the_log_at(level: &str) {
    let s = Server::start_with(&[("RUST_LOG", level)]);
    let w = World::new(&s);
    let job = w.job(&s, true);
    let token = w.mint_ok(&s, job, &[]);
    let posted = s.form(
        "/oauth/token",
        Auth::None,
        &[
            ("grant_type", "client_credentials"),
            ("job_id", &job.to_string()),
            ("client_id", &w.runner.client_id),
            ("client_secret", &w.runner.secret),
        ],
    );
    assert_eq!(posted.status, 200, "{}", posted.text);
    let posted_token = posted.json["access_token"].as_str().unwrap().to_owned();
    assert_eq!(w.introspect(&s, &token)["active"], true);
    let wrong = mint_as(&s, &Client { secret: format!("{}-wrong", w.runner.secret), ..w.runner.clone() }, job, &[]);
    assert_eq!(wrong.status, 401);
    let bad_admin = s.get("/api/v1/settings", Auth::Bearer("wrong-admin-token-0123456789"));
    assert_eq!(bad_admin.status, 401);
    s.form("/oauth/revoke", w.runner.auth(), &[("token", &posted_token)]);
    s.json("POST", &format!("/api/v1/jobs/{job}/finish"), w.runner.auth(), json!({"status": "success"}));

    let log = s.log();

    assert!(!log.is_empty(), "the server logs at info");
    let signature = token.rsplit('.').next().unwrap();
    for (what, secret) in [
        ("runner secret", w.runner.secret.as_str()),
        ("resource server secret", w.registry.secret.as_str()),
        ("admin token", ADMIN),
        ("access token", token.as_str()),
        ("access token signature", signature),
        ("second access token", posted_token.as_str()),
        ("wrong secret", &format!("{}-wrong", w.runner.secret)),
        ("wrong admin token", "wrong-admin-token-0123456789"),
    ] {
        assert!(!log.contains(secret), "the {what} is in the log:\n{log}");
    }
}
