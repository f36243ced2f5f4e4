//! The whole job token lifecycle against the real server: mint → verify against JWKS →
//! introspect → finish → inactive.
#![allow(clippy::unwrap_used)]

mod common;

use common::{decode, verify_with_jwks, World};

use common::Server;
use serde_json::{json, Value};

#[test]
fn minted_token_verifies_against_jwks_with_the_spec_claims_and_dies_when_the_job_finishes() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);

    let res = w.mint(&s, job, &[]);
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert_eq!(res.json["token_type"], "Bearer");
    assert_eq!(
        res.json["scope"],
        "read_repository read_registry write_registry read_package_registry write_package_registry"
    );
    let token = res.json["access_token"].as_str().unwrap();

    let (header, _) = decode(token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    let claims = verify_with_jwks(&s, token);
    assert_eq!(claims["iss"], json!(s.base));
    assert_eq!(claims["aud"], json!(s.base));
    assert_eq!(claims["sub"], "project_path:grp/app:ref_type:branch:ref:main");
    assert_eq!(claims["job_id"], json!(job));
    assert_eq!(claims["project_id"], json!(w.project));
    assert_eq!(claims["namespace_id"], json!(w.group));
    assert_eq!(claims["namespace_path"], "grp");
    assert_eq!(claims["project_path"], "grp/app");
    assert_eq!(claims["user_id"], json!(w.user));
    assert_eq!(claims["user_login"], "dev");
    assert_eq!(claims["ref_protected"], json!(true));
    assert_eq!(claims["runner_id"], json!(w.runner.id));
    assert_eq!(claims["client_id"], json!(w.runner.client_id));
    assert_eq!(claims["project_visibility"], "private");
    assert!(claims["iat"].is_i64() && claims["nbf"].is_i64() && claims["exp"].is_i64(), "integer times");
    assert_eq!(claims["jti"].as_str().unwrap().chars().nth(14), Some('7'), "UUIDv7 jti");
    // runner timeout 600 < project build_timeout 3600: exp = started_at + 3600 + 3600
    let job_view = s.admin("GET", &format!("/api/v1/jobs/{job}"), Value::Null);
    assert_eq!(job_view["status"], "running");
    assert_eq!(job_view["runner_id"], json!(w.runner.id));
    let started = chrono::DateTime::parse_from_rfc3339(job_view["started_at"].as_str().unwrap()).unwrap().timestamp();
    assert_eq!(claims["exp"].as_i64().unwrap(), started + 7200);

    let active = w.introspect(&s, token);
    assert_eq!(active["active"], json!(true));
    assert_eq!(active["job_id"], json!(job));
    assert_eq!(active["scope"], res.json["scope"]);

    let finished = s.json("POST", &format!("/api/v1/jobs/{job}/finish"), w.runner.auth(), json!({"status": "success"}));
    assert_eq!(finished.status, 200, "{}", finished.text);
    assert_eq!(finished.json["status"], "success");

    assert_eq!(w.introspect(&s, token), json!({"active": false}));
    let again = w.mint(&s, job, &[]);
    assert_eq!(again.status, 400);
    assert_eq!(again.json["error"], "invalid_grant");
}

#[test]
fn a_second_token_for_a_running_job_keeps_the_first_expiry_and_only_its_runner_gets_it() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    let first = w.mint_ok(&s, job, &[]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = w.mint_ok(&s, job, &[]);
    assert_eq!(decode(&first).1["exp"], decode(&second).1["exp"]);
    assert_ne!(decode(&first).1["jti"], decode(&second).1["jti"]);

    let other = common::runner(&s, json!({"runner_type": "instance"}));
    let res =
        s.form("/oauth/token", other.auth(), &[("grant_type", "client_credentials"), ("job_id", &job.to_string())]);
    assert_eq!(res.status, 400);
    assert_eq!(res.json["error"], "invalid_grant");
}

#[test]
fn unprotected_ref_drops_protected_only_writes_and_scope_parameter_narrows() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, false);
    let res = w.mint(&s, job, &[]);
    assert_eq!(res.json["scope"], "read_repository read_registry write_registry read_package_registry");

    let narrowed = w.mint(&s, job, &[("scope", "read_repository write_package_registry")]);
    assert_eq!(narrowed.status, 200, "{}", narrowed.text);
    assert_eq!(narrowed.json["scope"], "read_repository");

    let unknown = w.mint(&s, job, &[("scope", "read_repository sudo")]);
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json["error"], "invalid_scope");
}

#[test]
fn audience_and_resource_become_aud() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    let token = w.mint_ok(&s, job, &[("audience", "registry"), ("resource", "https://pkg.example")]);
    assert_eq!(decode(&token).1["aud"], json!(["registry", "https://pkg.example"]));
    let bad = w.mint(&s, job, &[("resource", "not a uri")]);
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json["error"], "invalid_target");
}

#[test]
fn revoked_token_is_inactive_but_its_siblings_live_on() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    let a = w.mint_ok(&s, job, &[]);
    let b = w.mint_ok(&s, job, &[]);
    let res = s.form("/oauth/revoke", w.runner.auth(), &[("token", &a)]);
    assert_eq!(res.status, 200);
    assert_eq!(w.introspect(&s, &a)["active"], json!(false));
    assert_eq!(w.introspect(&s, &b)["active"], json!(true));
    let garbage = s.form("/oauth/revoke", w.runner.auth(), &[("token", "not-a-token")]);
    assert_eq!(garbage.status, 200);
}
