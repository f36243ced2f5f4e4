//! No leaks through errors (issue 7, point 6): an owner the caller cannot see is the same 404 as
//! one that does not exist; `/api/v1` authenticates before it parses anything; a wrong method is a
//! 405 with `Allow`, `HEAD` works wherever `GET` does; query and path errors are JSON errors.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{
    assert_api_error, concrete, group, group_member, personal_access_token, project, project_member, user, Auth, Res,
    Server,
};
use jobtoken::http::ROUTES;
use serde_json::{json, Value};

const MISSING: i64 = 987_654;

/// The job token scope routes of one owner kind (`"projects"` or `"groups"`).
fn scope_routes(kind: &str) -> Vec<(&'static str, &'static str)> {
    let prefix = format!("/api/v1/{kind}/{{id}}/job_token_scope");
    ROUTES.iter().copied().filter(|(_, path)| path.starts_with(&prefix)).collect()
}

/// A body that would succeed for an editor, so only the owner check can refuse it.
fn valid_body(method: &str, path: &str, project: i64, group: i64) -> Value {
    match method {
        "POST" if path.ends_with("/groups_allowlist") => json!({"source_group_id": group}),
        "POST" if path.ends_with("/allowlist") => json!({"source_project_id": project}),
        "POST" if path.ends_with("/outbound") => json!({"target_project_id": project, "scopes": ["read_repository"]}),
        "PATCH" if path.ends_with("/job_token_scope") => json!({"inbound_enabled": true}),
        "PATCH" => json!({"scopes": ["read_repository"]}),
        _ => Value::Null,
    }
}

/// Calls every job token scope route of `kind` on `owner` (other ids: `project`, `group`).
fn call_all(s: &Server, auth: Auth, kind: &str, owner: i64, project: i64, group: i64) -> Vec<(String, Res)> {
    scope_routes(kind)
        .into_iter()
        .map(|(method, path)| {
            let tail = path.split("job_token_scope").nth(1).unwrap_or_default();
            let source = if tail.contains("group") { group } else { project };
            let url = concrete(&path.replacen("{id}", &owner.to_string(), 1), &source.to_string());
            let res = match method {
                "GET" => s.get(&url, auth),
                m => s.json(m, &url, auth, valid_body(m, path, project, group)),
            };
            (format!("{method} {path}"), res)
        })
        .collect()
}

/// Everything the admin sees of a project's job token scope.
fn scope_snapshot(s: &Server, owner: i64) -> Vec<Value> {
    ["", "/allowlist", "/groups_allowlist", "/outbound"]
        .iter()
        .map(|tail| s.admin("GET", &format!("/api/v1/projects/{owner}/job_token_scope{tail}"), Value::Null))
        .collect()
}

/// Two private worlds: `secretgrp/vault`, which the test's user never sees, and `mine/app`.
struct Worlds {
    secret: i64,
    vault: i64,
    mine: i64,
    app: i64,
}

fn worlds(s: &Server) -> Worlds {
    let secret = group(s, "secretgrp", None);
    let vault = project(s, "vault", secret, json!({"visibility": "private"}));
    let mine = group(s, "mine", None);
    let app = project(s, "app", mine, json!({"visibility": "private"}));
    Worlds { secret, vault, mine, app }
}

#[test]
fn an_owner_the_caller_cannot_see_is_the_same_404_as_one_that_does_not_exist() {
    let s = Server::start();
    let Worlds { secret, vault, mine, app } = worlds(&s);
    let outsider = user(&s, "outsider");
    group_member(&s, mine, outsider, 50);
    let pat = personal_access_token(&s, outsider);
    let before = scope_snapshot(&s, vault);

    for (kind, hidden) in [("projects", vault), ("groups", secret)] {
        let unseen = call_all(&s, Auth::Bearer(&pat), kind, hidden, app, mine);
        let missing = call_all(&s, Auth::Bearer(&pat), kind, MISSING, app, mine);

        assert!(unseen.len() >= 8, "{kind}: too few job token scope routes: {}", unseen.len());
        for ((route, unseen), (_, missing)) in unseen.iter().zip(&missing) {
            assert_api_error(unseen, 404);
            assert_eq!(unseen.text, missing.text, "{route}: an unseen owner answers like a missing one");
            assert!(!unseen.text.contains("secretgrp") && !unseen.text.contains("vault"), "{route}: {}", unseen.text);
        }
    }
    assert_eq!(scope_snapshot(&s, vault), before, "nothing changed");
}

#[test]
fn an_owner_the_caller_sees_but_may_not_edit_is_a_403() {
    let s = Server::start();
    let other = group(&s, "other", None);
    let public = project(&s, "open", other, json!({"visibility": "public"}));
    let internal = project(&s, "inner", other, json!({"visibility": "internal"}));
    let mine = group(&s, "mine", None);
    let app = project(&s, "app", mine, json!({"visibility": "private"}));
    let guest = user(&s, "guest");
    group_member(&s, mine, guest, 50);
    group_member(&s, other, guest, 10);
    let stranger = user(&s, "stranger");
    project_member(&s, app, stranger, 50);
    let (guest_pat, stranger_pat) = (personal_access_token(&s, guest), personal_access_token(&s, stranger));

    let by_guest = call_all(&s, Auth::Bearer(&guest_pat), "groups", other, app, mine);
    let on_public = call_all(&s, Auth::Bearer(&stranger_pat), "projects", public, app, mine);
    let on_internal = call_all(&s, Auth::Bearer(&stranger_pat), "projects", internal, app, mine);

    for (route, res) in by_guest.iter().chain(&on_public).chain(&on_internal) {
        assert_api_error(res, 403);
        assert!(res.json["message"].as_str().unwrap().contains("other"), "{route}: names what it sees: {}", res.text);
    }
}

#[test]
fn a_source_the_editor_cannot_see_is_refused_exactly_like_an_unknown_one() {
    let s = Server::start();
    let Worlds { secret, vault, app, .. } = worlds(&s);
    let editor = user(&s, "editor");
    project_member(&s, app, editor, 40);
    let pat = personal_access_token(&s, editor);
    let before = scope_snapshot(&s, app);
    let scope = format!("/api/v1/projects/{app}/job_token_scope");
    let cases = [
        ("/allowlist", json!({"source_project_id": vault}), json!({"source_project_id": MISSING})),
        ("/groups_allowlist", json!({"source_group_id": secret}), json!({"source_group_id": MISSING})),
        (
            "/outbound",
            json!({"target_project_id": vault, "scopes": ["read_repository"]}),
            json!({"target_project_id": MISSING, "scopes": ["read_repository"]}),
        ),
        (
            "/outbound",
            json!({"target_group_id": secret, "scopes": ["read_repository"]}),
            json!({"target_group_id": MISSING, "scopes": ["read_repository"]}),
        ),
    ];

    for (tail, unseen, missing) in cases {
        let unseen = s.json("POST", &format!("{scope}{tail}"), Auth::Bearer(&pat), unseen);
        let missing = s.json("POST", &format!("{scope}{tail}"), Auth::Bearer(&pat), missing);

        assert_api_error(&unseen, 404);
        assert_eq!(unseen.text, missing.text, "{tail}: an unseen source answers like a missing one");
        assert!(!unseen.text.contains("secretgrp") && !unseen.text.contains("vault"), "{}", unseen.text);
    }
    assert_eq!(scope_snapshot(&s, app), before, "nothing was added");
}

/// A 401 of the JSON API, with its challenge.
fn assert_unauthorized(what: &str, res: &Res) {
    assert_eq!(res.status, 401, "{what}: {}", res.text);
    assert_eq!(res.json["error"], "unauthorized", "{what}: {}", res.text);
    assert!(res.header("www-authenticate").is_some(), "{what}: {:?}", res.headers);
}

#[test]
fn every_api_route_refuses_a_caller_without_valid_credentials_before_parsing_path_or_body() {
    let s = Server::start();
    let garbage = [Auth::None, Auth::Bearer("jtpat_garbage"), Auth::Basic("runner_nobody", "jtrs_nothing")];

    for (method, path) in ROUTES.iter().filter(|(_, p)| p.starts_with("/api/v1/")) {
        let url = concrete(path, "not-a-number");
        for auth in garbage {
            let res = match *method {
                "GET" => s.get(&url, auth),
                m => s.raw(m, &url, auth, "application/json", b"{\"unterminated".to_vec()),
            };
            assert_unauthorized(&format!("{method} {url}"), &res);
        }
    }
    assert_unauthorized("an unknown API path", &s.get("/api/v1/no/such/route", Auth::None));
    let encoded = s.raw("POST", "/%61pi/v1/jobs/abc/finish", Auth::None, "application/json", b"{".to_vec());
    assert_unauthorized("a percent-encoded API path", &encoded);
    assert_eq!(s.get("/%61pi/v1/settings", Auth::Admin).status, 200, "the router's path is the one authenticated");
}

#[test]
fn the_decision_and_finish_endpoints_authenticate_before_reading_their_bodies() {
    let s = Server::start();
    let oversized = vec![b'['; 300 * 1024];
    let cases: [(&str, &str, Vec<u8>); 4] = [
        ("/api/v1/job_token/authorize", "application/json", b"{not json".to_vec()),
        ("/api/v1/job_token/authorize", "text/plain", br#"{"token":"x","project":1,"scope":"read_api"}"#.to_vec()),
        ("/api/v1/job_token/authorize", "application/json", oversized),
        ("/api/v1/jobs/abc/finish", "application/json", br#"{"status":"success"}"#.to_vec()),
    ];

    for (path, content_type, body) in cases {
        let anonymous = s.raw("POST", path, Auth::None, content_type, body.clone());
        let as_admin = s.raw("POST", path, Auth::Admin, content_type, body);

        assert_unauthorized(path, &anonymous);
        assert!((400..500).contains(&as_admin.status) && as_admin.status != 401, "{path}: {}", as_admin.text);
    }
}

/// Methods of each path in the routes table.
fn methods_by_path() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let mut out: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (method, path) in ROUTES {
        out.entry(*path).or_default().insert(*method);
    }
    out
}

#[test]
fn a_wrong_method_on_a_known_path_is_a_405_whose_allow_lists_the_paths_methods() {
    let s = Server::start();

    for (path, methods) in methods_by_path() {
        let wrong = ["PUT", "DELETE", "PATCH", "POST", "GET"].into_iter().find(|m| !methods.contains(m)).unwrap();
        let url = concrete(path, "1");
        let res = match wrong {
            "GET" => s.get(&url, Auth::Admin),
            m => s.json(m, &url, Auth::Admin, json!({})),
        };

        assert_api_error(&res, 405);
        assert_eq!(res.json["error"], "method_not_allowed", "{wrong} {path}: {}", res.text);
        let mut expected = methods.clone();
        if methods.contains("GET") {
            expected.insert("HEAD");
        }
        let allow: BTreeSet<&str> = res.header("allow").unwrap_or_default().split(", ").collect();
        assert_eq!(allow, expected, "{wrong} {path}: Allow");
    }
    let unknown = s.get("/no/such/route", Auth::None);
    assert_api_error(&unknown, 404);
    assert_api_error(&s.json("PUT", "/api/v1/no/such/route", Auth::Admin, json!({})), 404);
}

#[test]
fn head_answers_wherever_get_does_with_the_same_status_and_headers_and_no_body() {
    let s = Server::start();
    let stable = ["content-type", "cache-control", "etag", "www-authenticate", "pragma"];

    for (_, path) in ROUTES.iter().filter(|(m, _)| *m == "GET") {
        let url = concrete(path, "1");
        for auth in [Auth::Admin, Auth::None] {
            let get = s.get(&url, auth);
            let head = s.head(&url, auth);

            assert_eq!(head.status, get.status, "HEAD {url}: {}", get.text);
            assert!(head.text.is_empty(), "HEAD {url} has no body: {}", head.text);
            for name in stable {
                assert_eq!(head.header(name), get.header(name), "HEAD {url}: {name}");
            }
        }
    }
    assert_eq!(s.head("/no/such/route", Auth::None).status, 404);
}

#[test]
fn query_string_and_path_errors_answer_the_json_error_shape_and_change_nothing() {
    let s = Server::start();
    let keys = s.admin("GET", "/api/v1/keys", Value::Null);

    let maybe = s.json("POST", "/api/v1/keys/rotate?force=maybe", Auth::Admin, Value::Null);
    let unknown = s.json("POST", "/api/v1/keys/rotate?forse=true", Auth::Admin, Value::Null);
    let project = s.get("/api/v1/projects/abc", Auth::Admin);
    let member = s.json("DELETE", "/api/v1/projects/1/members/x", Auth::Admin, Value::Null);
    let scope = s.get("/api/v1/groups/-/job_token_scope", Auth::Admin);

    assert_api_error(&maybe, 400);
    assert_api_error(&unknown, 400);
    assert_api_error(&project, 404);
    assert_api_error(&member, 404);
    assert_api_error(&scope, 404);
    assert_eq!(s.admin("GET", "/api/v1/keys", Value::Null), keys, "no rotation happened");
}
