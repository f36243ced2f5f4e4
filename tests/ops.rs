//! Operations: health, metrics, the JWKS and discovery documents, what the log must never hold,
//! the access log and request ids, and the admin listener split.
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

    assert_eq!(keys.len(), 4, "the active and the next key of job tokens and of ID tokens");
    for key in &keys {
        assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()), "{key}");
        assert_eq!(key["use"], "sig");
        assert!(key["alg"] == "ES256" || key["alg"] == "RS256", "{key}");
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

/// The log's lines as JSON objects; panics on a line that is not one.
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

#[test]
fn json_logs_are_one_object_per_line_and_each_request_has_an_access_line_without_its_token() {
    let s = Server::start_with(&[("JOBTOKEN_LOG_FORMAT", "json")]);
    let w = World::new(&s);
    let job = w.job(&s, true);

    let token = w.mint_ok(&s, job, &[]);
    let with_query = s.get(&format!("/.well-known/jwks.json?access_token={token}"), Auth::None);

    assert_eq!(with_query.status, 200);
    let lines = json_lines(&s.log());
    for line in &lines {
        for field in ["ts", "level", "target", "msg"] {
            assert!(line[field].is_string(), "{field} in {line}");
        }
    }
    let access: Vec<&Value> = lines.iter().filter(|l| l["target"] == "jobtoken::access").collect();
    let mint = access.iter().find(|l| l["route"] == "/oauth/token").expect("an access line for the mint");
    assert_eq!(mint["method"], "POST");
    assert_eq!(mint["path"], "/oauth/token");
    assert_eq!(mint["status"], 200);
    assert_eq!(mint["client"], json!(w.runner.client_id));
    assert!(mint["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{mint}");
    assert!(mint["request_id"].as_str().is_some_and(|id| id.len() == 36), "{mint}");
    assert!(mint["remote"].as_str().is_some_and(|r| r.starts_with("127.0.0.1:")), "{mint}");
    let admin_call = access.iter().find(|l| l["route"] == "/api/v1/projects/{id}/pipelines").unwrap();
    assert_eq!(admin_call["client"], "admin");
    let jwks = access.iter().find(|l| l["route"] == "/.well-known/jwks.json").unwrap();
    assert_eq!(jwks["path"], "/.well-known/jwks.json", "no query string");
    let log = s.log();
    for (what, secret) in [("token", token.as_str()), ("runner secret", &w.runner.secret), ("admin token", ADMIN)] {
        assert!(!log.contains(secret), "the {what} is in the log:\n{log}");
    }
}

#[test]
fn the_text_log_has_an_access_line_per_request_unless_turned_off() {
    let on = Server::start();
    let off = Server::start_with(&[("JOBTOKEN_ACCESS_LOG", "false")]);

    for s in [&on, &off] {
        assert_eq!(s.get("/health/live", Auth::None).status, 200);
        assert_eq!(s.get("/no/such/route", Auth::None).status, 404);
    }

    let access =
        |s: &Server| s.log().lines().filter(|l| l.contains("jobtoken::access")).map(str::to_owned).collect::<Vec<_>>();
    let lines = access(&on);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("route=/health/live") && lines[0].contains("status=200"), "{}", lines[0]);
    assert!(lines[1].contains("route=unmatched") && lines[1].contains("status=404"), "{}", lines[1]);
    assert!(lines.iter().all(|l| l.contains("request_id=")), "{lines:?}");
    assert!(access(&off).is_empty(), "{:?}", access(&off));
}

#[test]
fn a_sane_request_id_is_echoed_and_any_other_replaced_by_a_new_one_on_every_response() {
    let s = Server::start();

    let honoured = s.get_with("/health/live", Auth::None, &[("X-Request-Id", "build-42.retry-1")]);
    let too_long = s.get_with("/health/live", Auth::None, &[("X-Request-Id", &"x".repeat(129))]);
    let spaced = s.get_with("/health/live", Auth::None, &[("X-Request-Id", "two words")]);
    let none = s.get("/api/v1/settings", Auth::None);
    let other = s.get("/health/live", Auth::None);

    assert_eq!(honoured.header("x-request-id"), Some("build-42.retry-1"));
    assert_eq!(none.status, 401, "even a refused request gets one");
    let made: Vec<&str> =
        [&too_long, &spaced, &none, &other].iter().map(|r| r.header("x-request-id").unwrap()).collect();
    for id in &made {
        assert_eq!(id.len(), 36, "a UUID: {id}");
        assert_eq!(id.as_bytes()[14], b'4', "version 4: {id}");
    }
    assert_ne!(made[2], made[3], "each request its own id");
    assert!(s.log().contains("request_id=build-42.retry-1"), "the log carries the id");
}

#[test]
fn metrics_show_the_process_and_the_build() {
    let s = Server::start();

    let text = s.get("/metrics", Auth::None).text;

    assert!(metric(&s, "process_resident_memory_bytes").is_some_and(|b| b > 0.0), "{text}");
    assert!(metric(&s, "process_open_fds").is_some_and(|n| n > 0.0), "{text}");
    assert!(text.contains("process_cpu_seconds_total"), "{text}");
    let build = text.lines().find(|l| l.starts_with("jobtoken_build_info{")).expect(&text);
    assert!(build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))) && build.ends_with(" 1"), "{build}");
}

#[test]
fn with_an_admin_listener_the_admin_api_and_metrics_leave_the_public_one() {
    let (mut s, admin) = Server::start_split(&[]);
    let public = std::mem::replace(&mut s.base, admin.clone());
    let w = World::new(&s);
    let job = w.job(&s, true);
    let user_pat = common::personal_access_token(&s, w.user);
    s.base = public.clone();
    let admin_side = s.at(&admin);

    // The admin API and metrics: on the admin listener only, a plain 404 (before any credential) on the public one.
    assert_eq!(s.get("/api/v1/settings", Auth::Admin).status, 404);
    assert_eq!(s.get("/api/v1/settings", Auth::None).status, 404);
    assert_eq!(s.get("/metrics", Auth::None).status, 404);
    assert_eq!(admin_side.send("GET", "/api/v1/settings", Auth::Admin, None).status, 200);
    assert_eq!(admin_side.send("GET", "/metrics", Auth::None, None).status, 200);
    // OAuth, JWKS and discovery: public only.
    assert_eq!(s.get("/.well-known/jwks.json", Auth::None).status, 200);
    assert_eq!(admin_side.send("GET", "/.well-known/jwks.json", Auth::None, None).status, 404);
    assert_eq!(admin_side.send("POST", "/oauth/token", w.runner.auth(), None).status, 404);
    // What runners, registries and maintainers need stays public; health is on both.
    let token = w.mint_ok(&s, job, &[]);
    assert_eq!(common::authorize(&s, &w.registry, &token, json!(w.project), "read_repository")["allowed"], true);
    let scope = s.get(&format!("/api/v1/projects/{}/job_token_scope", w.project), Auth::Bearer(&user_pat));
    assert_eq!(scope.status, 403, "a Developer is refused, by the route itself: {}", scope.text);
    let finished = s.json("POST", &format!("/api/v1/jobs/{job}/finish"), w.runner.auth(), json!({"status": "success"}));
    assert_eq!(finished.status, 200, "{}", finished.text);
    assert_eq!(s.get("/health/ready", Auth::None).status, 200);
    assert_eq!(admin_side.send("GET", "/health/ready", Auth::None, None).status, 200);
}
