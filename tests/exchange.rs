//! RFC 8693 token exchange against the real server: a live job token buys a narrower token for
//! the same job — fewer scopes, one of its audiences — that never outlives it.
#![allow(clippy::unwrap_used)]

mod common;

use common::{assert_oauth_error, decode, exchange, verify_with_jwks, Auth, Server, World};
use serde_json::{json, Value};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// `aud` as a list, whichever of the two RFC 7519 shapes it has.
fn audiences(claims: &Value) -> Vec<String> {
    match &claims["aud"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(list) => list.iter().map(|a| a.as_str().unwrap().to_owned()).collect(),
        other => panic!("aud is neither a string nor an array: {other}"),
    }
}

/// A running job on an unprotected ref (so the parent lacks `write_package_registry`) and its
/// token for two audiences.
fn parent(s: &Server, w: &World) -> (i64, String) {
    let job = w.job(s, false);
    let token = w.mint_ok(s, job, &[("audience", "registry"), ("resource", "https://pkg.example")]);
    (job, token)
}

#[test]
fn an_exchange_narrows_scope_and_audience_keeps_the_parent_expiry_and_names_the_parent_as_actor() {
    let s = Server::start();
    let w = World::new(&s);
    let (job, parent_token) = parent(&s, &w);
    let (_, p) = decode(&parent_token);
    assert_eq!(p["scope"], "read_repository read_registry write_registry read_package_registry");
    assert_eq!(audiences(&p), ["registry", "https://pkg.example"]);

    let res =
        exchange(&s, &parent_token, &[("scope", "read_repository write_package_registry"), ("audience", "registry")]);

    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert_eq!(res.json["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(res.json["token_type"], "Bearer");
    assert_eq!(res.json["scope"], "read_repository", "a scope the parent lacks is dropped");
    let child = res.json["access_token"].as_str().unwrap();
    let (header, c) = decode(child);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(verify_with_jwks(&s, child), c, "the child is signed by a published key");
    assert_eq!(c["scope"], "read_repository");
    assert_eq!(audiences(&c), ["registry"], "one of the parent's audiences");
    assert_eq!(c["exp"], p["exp"], "never outlives the parent");
    let expires_in = res.json["expires_in"].as_i64().unwrap();
    let left = p["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap();
    assert!((left - 1..=left).contains(&expires_in), "expires_in {expires_in}, {left} s left");
    assert_eq!(c["act"]["sub"], p["sub"], "{c}");
    assert_ne!(c["jti"], p["jti"]);
    for same in ["iss", "sub", "job_id", "project_id", "project_path", "user_id", "ref_protected", "client_id"] {
        assert_eq!(c[same], p[same], "{same}");
    }

    let active = w.introspect(&s, child);
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["job_id"], json!(job));
    assert_eq!(active["scope"], "read_repository");
    assert_eq!(w.introspect(&s, &parent_token)["active"], true, "the parent lives on");

    // The child can only narrow further: the parent's other audience is out of its reach.
    let wider = exchange(&s, child, &[("audience", "https://pkg.example")]);
    assert_oauth_error(&wider, 400, "invalid_target");
    let wider = exchange(&s, child, &[("scope", "read_registry")]);
    match wider.status {
        200 => assert_eq!(wider.json["scope"], "", "read_registry was dropped from the child: {}", wider.text),
        _ => assert_oauth_error(&wider, 400, "invalid_scope"),
    }
}

#[test]
fn an_audience_the_parent_lacks_is_an_invalid_target() {
    let s = Server::start();
    let w = World::new(&s);
    let (_, parent_token) = parent(&s, &w);

    let res = exchange(&s, &parent_token, &[("audience", "elsewhere")]);

    assert_oauth_error(&res, 400, "invalid_target");
    let res = exchange(&s, &parent_token, &[("resource", "https://other.example")]);
    assert_oauth_error(&res, 400, "invalid_target");
}

#[test]
fn after_the_job_finishes_the_exchange_is_refused_and_the_child_is_inactive() {
    let s = Server::start();
    let w = World::new(&s);
    let (job, parent_token) = parent(&s, &w);
    let res = exchange(&s, &parent_token, &[]);
    assert_eq!(res.status, 200, "{}", res.text);
    let child = res.json["access_token"].as_str().unwrap().to_owned();
    assert_eq!(w.introspect(&s, &child)["active"], true);

    let finished = s.json("POST", &format!("/api/v1/jobs/{job}/finish"), w.runner.auth(), json!({"status": "success"}));
    assert_eq!(finished.status, 200, "{}", finished.text);

    assert_oauth_error(&exchange(&s, &parent_token, &[]), 400, "invalid_grant");
    assert_oauth_error(&exchange(&s, &child, &[]), 400, "invalid_grant");
    assert_eq!(w.introspect(&s, &child), json!({"active": false}));
}

#[test]
fn a_parent_revoked_by_its_runner_cannot_be_exchanged() {
    let s = Server::start();
    let w = World::new(&s);
    let (_, parent_token) = parent(&s, &w);

    let revoked = s.form("/oauth/revoke", w.runner.auth(), &[("token", &parent_token)]);
    assert_eq!(revoked.status, 200, "{}", revoked.text);

    assert_oauth_error(&exchange(&s, &parent_token, &[]), 400, "invalid_grant");
}

#[test]
fn a_garbage_subject_token_is_an_invalid_grant() {
    let s = Server::start();
    assert_oauth_error(&exchange(&s, "not-a-token", &[]), 400, "invalid_grant");
    assert_oauth_error(&exchange(&s, "eyJhbGciOiJFUzI1NiJ9.e30.AAAA", &[]), 400, "invalid_grant");
}

#[test]
fn a_missing_subject_token_type_is_an_invalid_request() {
    let s = Server::start();
    let w = World::new(&s);
    let (_, parent_token) = parent(&s, &w);

    let res =
        s.form("/oauth/token", Auth::None, &[("grant_type", TOKEN_EXCHANGE), ("subject_token", parent_token.as_str())]);

    assert_oauth_error(&res, 400, "invalid_request");
    let res =
        s.form("/oauth/token", Auth::None, &[("grant_type", TOKEN_EXCHANGE), ("subject_token_type", ACCESS_TOKEN)]);
    assert_oauth_error(&res, 400, "invalid_request");
}

#[test]
fn an_unsupported_requested_token_type_is_an_invalid_request() {
    let s = Server::start();
    let w = World::new(&s);
    let (_, parent_token) = parent(&s, &w);

    for unsupported in ["urn:ietf:params:oauth:token-type:refresh_token", "urn:ietf:params:oauth:token-type:id_token"] {
        let res = exchange(&s, &parent_token, &[("requested_token_type", unsupported)]);
        assert_oauth_error(&res, 400, "invalid_request");
    }
    let res = exchange(&s, &parent_token, &[("requested_token_type", ACCESS_TOKEN)]);
    assert_eq!(res.status, 200, "{}", res.text);
}
