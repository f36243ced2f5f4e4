//! Credential lifecycle (issue 7 point 5, and the stored half of point 2): personal access tokens
//! expire, are listed and revoked; runner and resource server secrets are reset; resource servers
//! are read, listed, patched (audience, disabled) and deleted.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::{DateTime, Utc};
use common::{
    assert_oauth_error, group, mint_as, personal_access_token, project, project_member, resource_server, runner, user,
    Auth, Client, Res, Server, World,
};
use serde_json::{json, Value};

fn now() -> i64 {
    Utc::now().timestamp()
}

fn timestamp(value: &Value) -> i64 {
    DateTime::parse_from_rfc3339(value.as_str().unwrap()).unwrap().timestamp()
}

fn pats_path(user: i64) -> String {
    format!("/api/v1/users/{user}/personal_access_tokens")
}

fn create_pat(s: &Server, user: i64, body: Value) -> Res {
    s.json("POST", &pats_path(user), Auth::Admin, body)
}

/// A user who maintains a project, so that a token of theirs can read its job token scope.
fn maintainer(s: &Server) -> (i64, String) {
    let g = group(s, "grp", None);
    let p = project(s, "app", g, json!({}));
    let u = user(s, "maintainer");
    project_member(s, p, u, 40);
    (u, format!("/api/v1/projects/{p}/job_token_scope"))
}

fn assert_api_error(res: &Res, status: u16, code: &str) {
    assert_eq!(res.status, status, "{}", res.text);
    assert_eq!(res.json["error"], code, "{}", res.text);
    assert!(res.json["message"].is_string(), "{}", res.text);
}

// ---- personal access tokens ----

#[test]
fn a_personal_access_token_lives_thirty_days_by_default_and_its_creation_shows_it_once() {
    let s = Server::start();
    let u = user(&s, "dev");
    let before = now();

    let res = create_pat(&s, u, json!({"name": "ci"}));

    assert_eq!(res.status, 201, "{}", res.text);
    assert!(res.json["token"].as_str().unwrap().starts_with("jtpat_"));
    assert_eq!(res.json["name"], "ci");
    assert_eq!(res.json["user_id"], u);
    let (created, expires) = (timestamp(&res.json["created_at"]), timestamp(&res.json["expires_at"]));
    assert!((before..=now()).contains(&created), "{}", res.text);
    assert_eq!(expires - created, 30 * 86_400, "{}", res.text);
}

#[test]
fn a_personal_access_token_may_live_up_to_a_year_given_as_a_date_or_a_date_time() {
    let s = Server::start();
    let u = user(&s, "dev");
    let date = (Utc::now() + chrono::Duration::days(364)).format("%Y-%m-%d").to_string();
    let instant = (Utc::now() + chrono::Duration::days(2)).format("%Y-%m-%dT%H:%M:%S+02:00").to_string();

    let by_date = create_pat(&s, u, json!({"name": "a", "expires_at": date}));
    let by_instant = create_pat(&s, u, json!({"name": "b", "expires_at": instant}));

    assert_eq!(by_date.status, 201, "{}", by_date.text);
    assert_eq!(by_date.json["expires_at"], format!("{date}T00:00:00Z"), "a date means midnight UTC that day");
    assert_eq!(by_instant.status, 201, "{}", by_instant.text);
    assert_eq!(timestamp(&by_instant.json["expires_at"]), DateTime::parse_from_rfc3339(&instant).unwrap().timestamp());
}

#[test]
fn a_personal_access_token_expiry_in_the_past_or_beyond_a_year_is_refused_naming_the_limit() {
    let s = Server::start();
    let u = user(&s, "dev");
    let too_far = (Utc::now() + chrono::Duration::days(366)).format("%Y-%m-%d").to_string();
    let yesterday = (Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();

    let far = create_pat(&s, u, json!({"name": "a", "expires_at": too_far}));
    let past = create_pat(&s, u, json!({"name": "a", "expires_at": yesterday}));
    let garbage = create_pat(&s, u, json!({"name": "a", "expires_at": "next week"}));
    let wrong_type = create_pat(&s, u, json!({"name": "a", "expires_at": 1_900_000_000}));

    for res in [&far, &past] {
        assert_api_error(res, 400, "invalid_request");
        assert!(res.json["message"].as_str().unwrap().contains("365 days"), "{}", res.text);
    }
    assert_api_error(&garbage, 400, "invalid_request");
    assert!(garbage.json["message"].as_str().unwrap().contains("ISO 8601"), "{}", garbage.text);
    assert_api_error(&wrong_type, 400, "invalid_request");
    assert_eq!(s.admin("GET", &pats_path(u), Value::Null), json!([]), "nothing was created");
}

#[test]
fn the_list_of_personal_access_tokens_shows_metadata_only() {
    let s = Server::start();
    let u = user(&s, "dev");
    let other = user(&s, "other");
    let first = create_pat(&s, u, json!({"name": "first"})).json;
    create_pat(&s, other, json!({"name": "not mine"}));
    let second = create_pat(&s, u, json!({"name": "second"})).json;

    let res = s.get(&pats_path(u), Auth::Admin);

    assert_eq!(res.status, 200, "{}", res.text);
    let list = res.json.as_array().unwrap();
    assert_eq!(list.iter().map(|p| p["id"].clone()).collect::<Vec<_>>(), [first["id"].clone(), second["id"].clone()]);
    let mut keys: Vec<&String> = list[0].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["created_at", "expires_at", "id", "last_used_at", "name", "revoked_at", "user_id"]);
    assert_eq!(list[0]["expires_at"], first["expires_at"]);
    assert!(list[0]["last_used_at"].is_null() && list[0]["revoked_at"].is_null());
    assert!(!res.text.contains(first["token"].as_str().unwrap()), "the token is never shown again");
    assert_eq!(s.get(&pats_path(999), Auth::Admin).status, 404);
}

#[test]
fn a_revoked_personal_access_token_authenticates_nothing_from_that_moment() {
    let s = Server::start();
    let (u, scope) = maintainer(&s);
    let created = create_pat(&s, u, json!({"name": "ci"})).json;
    let token = created["token"].as_str().unwrap();
    assert_eq!(s.get(&scope, Auth::Bearer(token)).status, 200, "the token works before");

    let revoke = s.json("DELETE", &format!("{}/{}", pats_path(u), created["id"]), Auth::Admin, Value::Null);

    assert_eq!(revoke.status, 204, "{}", revoke.text);
    assert_api_error(&s.get(&scope, Auth::Bearer(token)), 401, "unauthorized");
    let listed = s.admin("GET", &pats_path(u), Value::Null);
    assert!(listed[0]["revoked_at"].is_string(), "{listed}");
}

#[test]
fn an_expired_personal_access_token_authenticates_nothing() {
    let s = Server::start();
    let (u, scope) = maintainer(&s);
    let expires = Utc::now().timestamp() + 2;
    let at = DateTime::from_timestamp(expires, 0).unwrap().to_rfc3339();
    let token =
        create_pat(&s, u, json!({"name": "short", "expires_at": at})).json["token"].as_str().unwrap().to_owned();
    let before = s.get(&scope, Auth::Bearer(&token));

    std::thread::sleep(std::time::Duration::from_millis(((expires - now() + 1).max(0) as u64) * 1000 + 100));
    let after = s.get(&scope, Auth::Bearer(&token));

    assert_eq!(before.status, 200, "{}", before.text);
    assert_api_error(&after, 401, "unauthorized");
}

#[test]
fn revoking_another_users_token_is_not_found_and_changes_nothing() {
    let s = Server::start();
    let (owner, scope) = maintainer(&s);
    let other = user(&s, "other");
    let created = create_pat(&s, owner, json!({"name": "ci"})).json;

    let res = s.json("DELETE", &format!("{}/{}", pats_path(other), created["id"]), Auth::Admin, Value::Null);
    let missing = s.json("DELETE", &format!("{}/999", pats_path(owner)), Auth::Admin, Value::Null);

    assert_api_error(&res, 404, "not_found");
    assert_api_error(&missing, 404, "not_found");
    assert_eq!(s.get(&scope, Auth::Bearer(created["token"].as_str().unwrap())).status, 200, "still valid");
    let own = s.json("DELETE", &format!("{}/{}", pats_path(owner), created["id"]), Auth::Admin, Value::Null);
    assert_eq!(own.status, 204, "its own user's path revokes it: {}", own.text);
}

#[test]
fn last_used_at_records_the_first_use_and_is_rewritten_at_most_once_a_minute() {
    let s = Server::start();
    let (u, scope) = maintainer(&s);
    let token = personal_access_token(&s, u);
    let before = now();

    assert_eq!(s.get(&scope, Auth::Bearer(&token)).status, 200);
    let first = s.admin("GET", &pats_path(u), Value::Null)[0]["last_used_at"].clone();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(s.get(&scope, Auth::Bearer(&token)).status, 200);
    let second = s.admin("GET", &pats_path(u), Value::Null)[0]["last_used_at"].clone();

    assert!(first.is_string(), "the use was recorded: {first}\n{}", s.log());
    assert!((before..=now()).contains(&timestamp(&first)));
    assert_eq!(second, first, "a second use within a minute writes nothing");
}

#[test]
fn personal_access_token_routes_are_for_the_admin_only() {
    let s = Server::start();
    let (u, _) = maintainer(&s);
    let token = personal_access_token(&s, u);
    let me = Auth::Bearer(&token);

    let list = s.get(&pats_path(u), me);
    let create = s.json("POST", &pats_path(u), me, json!({"name": "more"}));
    let revoke = s.json("DELETE", &format!("{}/1", pats_path(u)), me, Value::Null);

    for res in [&list, &create, &revoke] {
        assert_api_error(res, 401, "unauthorized");
    }
    assert_eq!(s.admin("GET", &pats_path(u), Value::Null).as_array().unwrap().len(), 1);
}

// ---- secret resets ----

#[test]
fn resetting_a_runner_secret_shows_the_new_one_once_and_kills_the_old_one_at_once() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);

    let res = s.json("POST", &format!("/api/v1/runners/{}/reset_secret", w.runner.id), Auth::Admin, Value::Null);

    assert_eq!(res.status, 200, "{}", res.text);
    let new = Client { secret: res.json["client_secret"].as_str().unwrap().to_owned(), ..w.runner.clone() };
    assert_ne!(new.secret, w.runner.secret);
    assert_eq!(res.json["client_id"], w.runner.client_id.as_str());
    assert_oauth_error(&mint_as(&s, &w.runner, job, &[]), 401, "invalid_client");
    assert_eq!(mint_as(&s, &new, job, &[]).status, 200);
    assert!(s.get(&format!("/api/v1/runners/{}", w.runner.id), Auth::Admin).json.get("client_secret").is_none());
}

#[test]
fn resetting_a_resource_server_secret_kills_the_old_one_at_once() {
    let s = Server::start();
    let old = resource_server(&s, "registry");

    let res = s.json("POST", &format!("/api/v1/resource_servers/{}/reset_secret", old.id), Auth::Admin, Value::Null);

    assert_eq!(res.status, 200, "{}", res.text);
    let new = Client { secret: res.json["client_secret"].as_str().unwrap().to_owned(), ..old.clone() };
    assert_ne!(new.secret, old.secret);
    assert_oauth_error(&s.form("/oauth/introspect", old.auth(), &[("token", "x")]), 401, "invalid_client");
    assert_eq!(s.form("/oauth/introspect", new.auth(), &[("token", "x")]).json, json!({"active": false}));
}

#[test]
fn resetting_the_secret_of_a_missing_client_is_not_found() {
    let s = Server::start();

    let runner = s.json("POST", "/api/v1/runners/77/reset_secret", Auth::Admin, Value::Null);
    let server = s.json("POST", "/api/v1/resource_servers/77/reset_secret", Auth::Admin, Value::Null);
    let anonymous = s.json("POST", "/api/v1/runners/77/reset_secret", Auth::None, Value::Null);

    assert_api_error(&runner, 404, "not_found");
    assert_api_error(&server, 404, "not_found");
    assert_api_error(&anonymous, 401, "unauthorized");
}

// ---- resource servers ----

#[test]
fn resource_servers_are_read_listed_by_id_and_patched_without_their_secrets() {
    let s = Server::start();
    let a = resource_server(&s, "registry");
    let b = resource_server(&s, "pages");

    let got = s.get(&format!("/api/v1/resource_servers/{}", a.id), Auth::Admin);
    let patched = s.json("PATCH", &format!("/api/v1/resource_servers/{}", b.id), Auth::Admin, json!({"name": "docs"}));
    let list = s.get("/api/v1/resource_servers", Auth::Admin);

    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.json["client_id"], a.client_id.as_str());
    assert_eq!(got.json["name"], "registry");
    assert_eq!(got.json["disabled"], false);
    assert_eq!(got.json["audience"], json!([]));
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.json["name"], "docs");
    assert_eq!(list.status, 200, "{}", list.text);
    let names: Vec<&Value> = list.json.as_array().unwrap().iter().map(|r| &r["name"]).collect();
    assert_eq!(names, [&json!("registry"), &json!("docs")]);
    assert_eq!(list.json[0]["id"], a.id);
    for text in [&got.text, &list.text, &patched.text] {
        assert!(!text.contains("secret"), "no secret or hash is returned: {text}");
        assert!(!text.contains(&a.secret) && !text.contains(&b.secret));
    }
    assert_api_error(&s.get("/api/v1/resource_servers/999", Auth::Admin), 404, "not_found");
    assert_api_error(&s.get("/api/v1/resource_servers", Auth::None), 401, "unauthorized");
}

#[test]
fn a_disabled_resource_server_authenticates_nothing_until_it_is_enabled_again() {
    let s = Server::start();
    let w = World::new(&s);
    let path = format!("/api/v1/resource_servers/{}", w.registry.id);
    let decide = || {
        s.raw(
            "POST",
            "/api/v1/job_token/authorize",
            w.registry.auth(),
            "application/json",
            json!({"token": "x", "project": w.project, "scope": "read_repository"}).to_string().into_bytes(),
        )
    };

    let disabled = s.json("PATCH", &path, Auth::Admin, json!({"disabled": true}));
    let introspect = s.form("/oauth/introspect", w.registry.auth(), &[("token", "x")]);
    let decision = decide();
    let unknown = s.form("/oauth/introspect", Auth::Basic("rs_unknownunknown", &w.registry.secret), &[("token", "x")]);
    s.admin("PATCH", &path, json!({"disabled": false}));
    let enabled = s.form("/oauth/introspect", w.registry.auth(), &[("token", "x")]);

    assert_eq!(disabled.json["disabled"], true, "{}", disabled.text);
    assert_oauth_error(&introspect, 401, "invalid_client");
    assert_eq!(introspect.json, unknown.json, "a disabled client looks like an unknown one");
    assert_api_error(&decision, 401, "unauthorized");
    assert_eq!(enabled.json, json!({"active": false}), "{}", enabled.text);
    assert_eq!(decide().status, 200);
}

#[test]
fn a_deleted_resource_server_is_gone_and_its_credential_fails() {
    let s = Server::start();
    let rs = resource_server(&s, "registry");
    let path = format!("/api/v1/resource_servers/{}", rs.id);

    let deleted = s.json("DELETE", &path, Auth::Admin, Value::Null);

    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_api_error(&s.get(&path, Auth::Admin), 404, "not_found");
    assert_api_error(&s.json("DELETE", &path, Auth::Admin, Value::Null), 404, "not_found");
    assert_oauth_error(&s.form("/oauth/introspect", rs.auth(), &[("token", "x")]), 401, "invalid_client");
    assert_eq!(s.admin("GET", "/api/v1/resource_servers", Value::Null), json!([]));
}

#[test]
fn a_resource_server_audience_is_stored_returned_replaced_and_cleared() {
    let s = Server::start();
    let created = s.admin("POST", "/api/v1/resource_servers", json!({"name": "r", "audience": "https://r.example"}));
    let path = format!("/api/v1/resource_servers/{}", created["id"]);
    let two = json!(["https://r.example/v2", "spiffe://ci/registry"]);

    let read = s.admin("GET", &path, Value::Null);
    let replaced = s.admin("PATCH", &path, json!({"audience": two}));
    let renamed = s.admin("PATCH", &path, json!({"name": "registry"}));
    let cleared_by_null = s.admin("PATCH", &path, json!({"audience": null}));
    s.admin("PATCH", &path, json!({"audience": "https://again.example"}));
    let cleared_by_empty = s.admin("PATCH", &path, json!({"audience": []}));

    assert_eq!(created["audience"], json!(["https://r.example"]));
    assert_eq!(read["audience"], json!(["https://r.example"]));
    assert_eq!(replaced["audience"], two);
    assert_eq!(renamed["audience"], two, "an absent audience is kept");
    assert_eq!(cleared_by_null["audience"], json!([]));
    assert_eq!(cleared_by_empty["audience"], json!([]));
    assert_eq!(s.admin("GET", "/api/v1/resource_servers", Value::Null)[0]["audience"], json!([]));
}

#[test]
fn an_invalid_audience_is_refused_and_changes_nothing() {
    let s = Server::start();
    let created = s.admin("POST", "/api/v1/resource_servers", json!({"name": "r", "audience": "https://r.example"}));
    let path = format!("/api/v1/resource_servers/{}", created["id"]);
    let long = format!("https://{}", "a".repeat(510));
    let many: Vec<String> = (0..17).map(|i| format!("https://{i}.example")).collect();
    let bad = [
        json!("registry"),
        json!("/relative"),
        json!("https://r.example/#fragment"),
        json!(["https://a.example", "https://a.example"]),
        json!(long),
        json!(many),
        json!(42),
        json!([true]),
    ];

    for audience in bad {
        let patch = s.json("PATCH", &path, Auth::Admin, json!({"audience": audience, "name": "changed"}));
        let post = s.json("POST", "/api/v1/resource_servers", Auth::Admin, json!({"name": "n", "audience": audience}));
        for res in [&patch, &post] {
            assert!(res.status == 400 || res.status == 422, "{audience}: {} {}", res.status, res.text);
            assert!(res.json["message"].as_str().unwrap().contains("audience"), "{}", res.text);
        }
    }
    let after = s.admin("GET", &path, Value::Null);
    assert_eq!(after["audience"], json!(["https://r.example"]));
    assert_eq!(after["name"], "r");
    assert_eq!(s.admin("GET", "/api/v1/resource_servers", Value::Null).as_array().unwrap().len(), 1);
}

#[test]
fn after_a_reset_only_the_new_runner_secret_may_finish_its_job() {
    let s = Server::start();
    let w = World::new(&s);
    let r = runner(&s, json!({"runner_type": "instance"}));
    let job = w.job(&s, true);
    assert_eq!(mint_as(&s, &r, job, &[]).status, 200);

    let reset = s.admin("POST", &format!("/api/v1/runners/{}/reset_secret", r.id), Value::Null);
    let new = Client { secret: reset["client_secret"].as_str().unwrap().to_owned(), ..r.clone() };
    let finish =
        |c: &Client| s.json("POST", &format!("/api/v1/jobs/{job}/finish"), c.auth(), json!({"status": "success"}));

    assert_api_error(&finish(&r), 401, "unauthorized");
    assert_eq!(finish(&new).status, 200);
}

#[test]
fn a_resource_server_with_an_audience_is_told_no_for_a_token_minted_for_another_audience() {
    let s = Server::start();
    let w = World::new(&s);
    let registry =
        s.admin("POST", "/api/v1/resource_servers", json!({"name": "r", "audience": "https://registry.example"}));
    let asker = Client {
        id: registry["id"].as_i64().unwrap(),
        client_id: registry["client_id"].as_str().unwrap().into(),
        secret: registry["client_secret"].as_str().unwrap().into(),
    };
    let job = w.job(&s, true);
    let elsewhere = w.mint_ok(&s, job, &[("audience", "https://elsewhere.example")]);
    let for_registry = w.mint_ok(&s, job, &[("audience", "https://registry.example")]);
    let decide = |token: &str| {
        let body = json!({"token": token, "project": w.project, "scope": "read_repository"});
        s.raw("POST", "/api/v1/job_token/authorize", asker.auth(), "application/json", body.to_string().into_bytes())
    };

    let refused = decide(&elsewhere);
    let admitted = decide(&for_registry);

    assert_eq!(refused.status, 200, "{}", refused.text);
    assert_eq!(refused.json["allowed"], false, "{}", refused.text);
    assert!(refused.json["reason"].as_str().unwrap().contains("https://registry.example"), "{}", refused.text);
    assert_eq!(admitted.json["allowed"], true, "{}", admitted.text);
}
