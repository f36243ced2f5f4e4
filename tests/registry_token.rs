//! `GET /jwt/auth` and the registry bundle over HTTP, without a registry: the token's claims,
//! the repository → project mapping, refusals, and who may read the bundle. (tests/registry.rs
//! runs the real registry.)
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};

const SERVICE: &str = "https://registry.example";

fn registered(s: &Server) -> i64 {
    let r = s.admin("POST", "/api/v1/resource_servers", json!({"name": "docker-registry", "audience": [SERVICE]}));
    r["id"].as_i64().unwrap()
}

fn query(service: &str, scopes: &[&str]) -> String {
    let mut q: Vec<(&str, &str)> = vec![("service", service)];
    q.extend(scopes.iter().map(|s| ("scope", *s)));
    format!("/jwt/auth?{}", serde_urlencoded::to_string(&q).unwrap())
}

fn ask(s: &Server, auth: Auth, scopes: &[&str]) -> Res {
    s.get(&query(SERVICE, scopes), auth)
}

/// The `access` claim of a 200 answer.
fn access(res: &Res) -> Value {
    assert_eq!(res.status, 200, "{}", res.text);
    decode(res.json["token"].as_str().unwrap()).1["access"].clone()
}

fn job_token(s: &Server, w: &World, protected: bool) -> String {
    w.mint_ok(s, w.job(s, protected), &[])
}

#[test]
fn a_job_token_gets_a_registry_token_with_the_distribution_claims() {
    let s = Server::start();
    let w = World::new(&s);
    registered(&s);
    let token = job_token(&s, &w, true);

    let res = ask(&s, Auth::Basic("gitlab-ci-token", &token), &["repository:grp/app:pull,push"]);

    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert_eq!(res.json["token"], res.json["access_token"]);
    assert!(res.json["issued_at"].is_string());
    let (header, claims) = decode(res.json["token"].as_str().unwrap());
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"].as_str().unwrap().split(':').count(), 12, "a libtrust key id: {header}");
    let issuer = s.get("/.well-known/openid-configuration", Auth::None).json["issuer"].clone();
    assert_eq!(claims["iss"], issuer);
    assert_eq!(claims["aud"], SERVICE);
    assert_eq!(claims["sub"], decode(&token).1["sub"]);
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!(lifetime > 0 && lifetime <= 300, "{claims}");
    assert_eq!(res.json["expires_in"].as_i64().unwrap(), lifetime);
    assert!(claims["nbf"].is_i64() && claims["jti"].is_string());
    assert_eq!(claims["access"], json!([{"type": "repository", "name": "grp/app", "actions": ["pull", "push"]}]));
}

#[test]
fn a_repository_belongs_to_the_longest_project_path_that_prefixes_it_at_a_slash() {
    let s = Server::start();
    let w = World::new(&s);
    registered(&s);
    project(&s, "app2", w.group, json!({}));
    let token = job_token(&s, &w, true);

    let granted = access(&ask(
        &s,
        Auth::Basic("gitlab-ci-token", &token),
        &["repository:grp/app/cache:push", "repository:grp/app2:pull", "repository:grp/application:pull"],
    ));

    // grp/app2 is another (private) project; grp/application is nobody's.
    assert_eq!(granted, json!([{"type": "repository", "name": "grp/app/cache", "actions": ["push"]}]));
}

#[test]
fn delete_and_the_catalog_are_granted_to_the_admin_only() {
    let s = Server::start();
    let w = World::new(&s);
    registered(&s);
    let token = job_token(&s, &w, true);
    let scopes = ["repository:grp/app:pull,delete,*", "registry:catalog:*"];

    let job = access(&ask(&s, Auth::Basic("gitlab-ci-token", &token), &scopes));
    let admin = access(&ask(&s, Auth::Basic("admin", ADMIN), &scopes));

    assert_eq!(job, json!([{"type": "repository", "name": "grp/app", "actions": ["pull"]}]));
    assert_eq!(
        admin,
        json!([
            {"type": "repository", "name": "grp/app", "actions": ["pull", "delete", "*"]},
            {"type": "registry", "name": "catalog", "actions": ["*"]},
        ])
    );
}

#[test]
fn a_valid_token_with_nothing_granted_gets_an_empty_access_list() {
    let s = Server::start();
    let w = World::new(&s);
    registered(&s);
    let other = group(&s, "other", None);
    project(&s, "secret", other, json!({}));
    let token = job_token(&s, &w, true);

    assert_eq!(access(&ask(&s, Auth::Basic("gitlab-ci-token", &token), &["repository:other/secret:pull"])), json!([]));
    assert_eq!(access(&ask(&s, Auth::None, &["repository:grp/app:pull"])), json!([]));
}

#[test]
fn only_a_registered_enabled_registry_gets_tokens() {
    let s = Server::start();
    let w = World::new(&s);
    let token = job_token(&s, &w, true);

    let res = ask(&s, Auth::Basic("gitlab-ci-token", &token), &["repository:grp/app:pull"]);
    assert_eq!(res.status, 400, "{}", res.text);
    assert_eq!(res.json["error"], "unknown_service");

    let id = registered(&s);
    assert_eq!(ask(&s, Auth::Basic("gitlab-ci-token", &token), &["repository:grp/app:pull"]).status, 200);
    s.admin("PATCH", &format!("/api/v1/resource_servers/{id}"), json!({"disabled": true}));
    let res = ask(&s, Auth::Basic("gitlab-ci-token", &token), &["repository:grp/app:pull"]);
    assert_eq!(res.json["error"], "unknown_service", "{}", res.text);
}

#[test]
fn dead_and_foreign_job_tokens_are_401_with_the_reason() {
    let s = Server::start();
    let w = World::new(&s);
    registered(&s);
    let job = w.job(&s, true);
    let token = w.mint_ok(&s, job, &[]);
    let elsewhere = w.mint_ok(&s, job, &[("audience", "https://other-registry.example")]);

    let res = ask(&s, Auth::Basic("gitlab-ci-token", &elsewhere), &["repository:grp/app:pull"]);
    assert_eq!(res.status, 401, "{}", res.text);
    assert!(res.json["message"].as_str().unwrap().contains("audience"), "{}", res.text);

    let res = ask(&s, Auth::Basic("gitlab-ci-token", "not-a-token"), &["repository:grp/app:pull"]);
    assert_eq!(res.status, 401, "{}", res.text);
    assert_eq!(res.header("www-authenticate"), Some("Basic realm=\"jobtoken\""));

    s.admin("POST", &format!("/api/v1/jobs/{job}/finish"), json!({"status": "success"}));
    let res = ask(&s, Auth::Basic("gitlab-ci-token", &token), &["repository:grp/app:pull"]);
    assert_eq!(res.status, 401, "{}", res.text);
    // Finishing the job revoked its tokens.
    assert!(res.json["message"].as_str().unwrap().starts_with("the job token is not active"), "{}", res.text);

    let res = ask(&s, Auth::Bearer(&token), &["repository:grp/app:pull"]);
    assert_eq!(res.status, 401, "{}", res.text);
}

#[test]
fn malformed_requests_are_400_and_change_nothing() {
    let s = Server::start();
    registered(&s);
    for path in [
        "/jwt/auth".to_owned(),
        "/jwt/auth?scope=repository:grp/app:pull".to_owned(),
        format!("/jwt/auth?service={SERVICE}&service={SERVICE}"),
        query(SERVICE, &["repository:grp/app"]),
        query(SERVICE, &["repository:GRP/App:pull"]),
        query(SERVICE, &["repository:grp/app:pull,,push"]),
        query(SERVICE, &[&"repository:a:pull ".repeat(33)]),
    ] {
        let res = s.get(&path, Auth::None);
        assert_eq!(res.status, 400, "{path}: {}", res.text);
        assert_eq!(res.json["error"], "invalid_request", "{path}: {}", res.text);
    }
}

#[test]
fn cross_project_pulls_follow_the_allowlist_and_are_logged() {
    let s = Server::start();
    let w = World::new(&s);
    registered(&s);
    let deploy = project(&s, "deploy", w.group, json!({}));
    project_member(&s, deploy, w.user, 30);
    let token = w.mint_ok(&s, job_for(&s, deploy, w.user, true), &[]);
    let scope = ["repository:grp/app:pull,push"];

    assert_eq!(access(&ask(&s, Auth::Basic("gitlab-ci-token", &token), &scope)), json!([]));
    let allowlist = format!("/api/v1/projects/{}/job_token_scope/allowlist", w.project);
    s.admin("POST", &allowlist, json!({"source_project_id": deploy, "scopes": ["read_registry"]}));

    let granted = access(&ask(&s, Auth::Basic("gitlab-ci-token", &token), &scope));
    assert_eq!(granted, json!([{"type": "repository", "name": "grp/app", "actions": ["pull"]}]));

    // The allowed pull is in grp/app's authorization log (written within a second or so).
    let path = format!("/api/v1/projects/{}/job_token_scope/authorizations", w.project);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let logged = loop {
        let rows = s.admin("GET", &path, Value::Null);
        let found = rows.as_array().unwrap().iter().any(|r| r["source_project_id"] == json!(deploy));
        if found || std::time::Instant::now() >= deadline {
            break found;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(logged, "the registry pull is not in the authorization log");
}

#[test]
fn the_bundle_holds_the_active_and_the_next_key_for_the_admin_only() {
    let s = Server::start();

    assert_eq!(s.get("/api/v1/keys/registry_bundle.pem", Auth::None).status, 401);
    let res = s.get("/api/v1/keys/registry_bundle.pem", Auth::Admin);
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.header("content-type"), Some("application/x-pem-file"));
    assert_eq!(res.text.matches("-----BEGIN CERTIFICATE-----").count(), 2, "{}", res.text);

    let out = cli_in(&s.dir, &["keys", "registry-bundle"], &[]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap().matches("-----BEGIN CERTIFICATE-----").count(), 2);
}

#[test]
fn with_eddsa_in_force_the_registry_service_refuses_clearly() {
    let s = Server::start_with(&[("JOBTOKEN_SIGNING_ALG", "EdDSA")]);
    registered(&s);

    let res = ask(&s, Auth::None, &["repository:grp/app:pull"]);
    assert_eq!(res.status, 503, "{}", res.text);
    assert_eq!(res.json["error"], "unsupported_signing_key");
    assert_eq!(s.get("/api/v1/keys/registry_bundle.pem", Auth::Admin).status, 409);
}
