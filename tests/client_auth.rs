//! Who may call what: the admin credential, runner and resource server client authentication.
#![allow(clippy::unwrap_used)]

mod common;

use common::{assert_oauth_error, decode, job_view, mint_as, runner, Auth, Res, Server, World};
use serde_json::{json, Value};

fn assert_unauthorized(res: &Res) {
    assert_eq!(res.status, 401, "{}", res.text);
    assert_eq!(res.json["error"], "unauthorized", "{}", res.text);
    assert!(res.json["message"].is_string(), "{}", res.text);
    assert!(res.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")), "{:?}", res.headers);
}

#[test]
fn the_admin_api_without_a_token_is_unauthorized_and_creates_nothing() {
    let s = Server::start();

    let read = s.get("/api/v1/settings", Auth::None);
    let create = s.json("POST", "/api/v1/users", Auth::None, json!({"username": "mallory"}));

    assert_unauthorized(&read);
    assert_unauthorized(&create);
    assert_eq!(s.get("/api/v1/users/1", Auth::Admin).status, 404, "no user was created");
}

#[test]
fn the_admin_api_with_a_wrong_token_is_unauthorized() {
    let s = Server::start();
    let w = World::new(&s);

    let wrong = s.get("/api/v1/settings", Auth::Bearer("test-admin-token-0123456780"));
    let prefix = s.get("/api/v1/settings", Auth::Bearer("test-admin-token"));
    let runner = s.get("/api/v1/settings", w.runner.auth());
    let rotate = s.json("POST", "/api/v1/keys/rotate", Auth::Bearer("nope"), Value::Null);

    for res in [&wrong, &prefix, &runner, &rotate] {
        assert_unauthorized(res);
    }
    let keys = s.get("/api/v1/keys", Auth::Admin).json;
    assert_eq!(keys.as_array().unwrap().iter().filter(|k| k["state"] == "retired").count(), 0, "no rotation");
}

#[test]
fn a_runner_with_a_wrong_secret_is_an_invalid_client() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    let wrong = common::Client { secret: format!("{}x", w.runner.secret), ..w.runner.clone() };

    let res = mint_as(&s, &wrong, job, &[]);

    assert_oauth_error(&res, 401, "invalid_client");
    assert!(res.header("www-authenticate").is_some(), "{:?}", res.headers);
    assert_eq!(job_view(&s, job)["status"], "pending");
}

#[test]
fn an_unknown_client_id_gets_the_same_answer_as_a_wrong_secret() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    let wrong_secret = common::Client { secret: "jtrs_wrong".into(), ..w.runner.clone() };
    let unknown = common::Client { client_id: "runner_doesnotexist".into(), ..wrong_secret.clone() };

    let a = mint_as(&s, &wrong_secret, job, &[]);
    let b = mint_as(&s, &unknown, job, &[]);

    assert_oauth_error(&b, 401, "invalid_client");
    assert_eq!(a.json, b.json);
    assert_eq!(a.header("www-authenticate"), b.header("www-authenticate"));
    assert!(b.header("www-authenticate").is_some());
}

#[test]
fn a_token_request_without_credentials_is_an_invalid_client() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);

    let res = s.form("/oauth/token", Auth::None, &[("grant_type", "client_credentials"), ("job_id", &job.to_string())]);

    assert_oauth_error(&res, 401, "invalid_client");
    assert!(res.header("www-authenticate").is_some());
    assert_eq!(job_view(&s, job)["status"], "pending");
}

#[test]
fn client_secret_post_mints_a_token() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);

    let res = s.form(
        "/oauth/token",
        Auth::None,
        &[
            ("grant_type", "client_credentials"),
            ("job_id", &job.to_string()),
            ("client_id", &w.runner.client_id),
            ("client_secret", &w.runner.secret),
        ],
    );

    assert_eq!(res.status, 200, "{}", res.text);
    let token = res.json["access_token"].as_str().unwrap();
    assert_eq!(decode(token).1["client_id"], json!(w.runner.client_id));
    assert_eq!(w.introspect(&s, token)["active"], true);
}

#[test]
fn basic_credentials_and_a_posted_secret_together_are_an_invalid_request() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);

    let res = w.mint(&s, job, &[("client_secret", &w.runner.secret)]);

    assert_oauth_error(&res, 400, "invalid_request");
    assert_eq!(job_view(&s, job)["status"], "pending");
}

#[test]
fn a_runner_cannot_introspect() {
    let s = Server::start();
    let w = World::new(&s);
    let token = w.mint_ok(&s, w.job(&s, true), &[]);

    let res = s.form("/oauth/introspect", w.runner.auth(), &[("token", &token)]);

    assert_oauth_error(&res, 400, "unauthorized_client");
    assert!(res.json.get("active").is_none(), "{}", res.text);
}

#[test]
fn the_admin_can_introspect() {
    let s = Server::start();
    let w = World::new(&s);
    let token = w.mint_ok(&s, w.job(&s, true), &[]);

    let res = s.form("/oauth/introspect", Auth::Admin, &[("token", &token)]);

    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json["active"], true);
}

#[test]
fn introspection_with_a_wrong_secret_is_an_invalid_client() {
    let s = Server::start();
    let w = World::new(&s);
    let token = w.mint_ok(&s, w.job(&s, true), &[]);

    let res = s.form("/oauth/introspect", Auth::Basic(&w.registry.client_id, "jtss_wrong"), &[("token", &token)]);

    assert_oauth_error(&res, 401, "invalid_client");
    assert!(res.header("www-authenticate").is_some(), "{:?}", res.headers);
    assert!(res.json.get("active").is_none());
}

#[test]
fn a_resource_server_cannot_mint() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);

    let res = mint_as(&s, &w.registry, job, &[]);

    assert_oauth_error(&res, 401, "invalid_client");
    assert_eq!(job_view(&s, job)["status"], "pending");
}

#[test]
fn a_runner_cannot_revoke_another_runners_token() {
    let s = Server::start();
    let w = World::new(&s);
    let token = w.mint_ok(&s, w.job(&s, true), &[]);
    let other = runner(&s, json!({"runner_type": "instance"}));

    let res = s.form("/oauth/revoke", other.auth(), &[("token", &token)]);

    assert!((400..500).contains(&res.status), "{} {}", res.status, res.text);
    assert_eq!(w.introspect(&s, &token)["active"], true, "the token survives");
}

#[test]
fn a_resource_server_cannot_revoke_but_the_admin_can() {
    let s = Server::start();
    let w = World::new(&s);
    let token = w.mint_ok(&s, w.job(&s, true), &[]);

    let by_registry = s.form("/oauth/revoke", w.registry.auth(), &[("token", &token)]);
    assert!((400..500).contains(&by_registry.status), "{} {}", by_registry.status, by_registry.text);
    assert_eq!(w.introspect(&s, &token)["active"], true);

    let by_admin = s.form("/oauth/revoke", Auth::Admin, &[("token", &token)]);
    assert_eq!(by_admin.status, 200, "{}", by_admin.text);
    assert_eq!(w.introspect(&s, &token)["active"], false);
}

#[test]
fn only_the_jobs_runner_or_the_admin_may_finish_it() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    let token = w.mint_ok(&s, job, &[]);
    let other = runner(&s, json!({"runner_type": "instance"}));
    let path = format!("/api/v1/jobs/{job}/finish");

    let by_other = s.json("POST", &path, other.auth(), json!({"status": "success"}));
    let anonymous = s.json("POST", &path, Auth::None, json!({"status": "success"}));

    assert_eq!(by_other.status, 403, "{}", by_other.text);
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
    assert_eq!(job_view(&s, job)["status"], "running");
    assert_eq!(w.introspect(&s, &token)["active"], true);
}
