//! Trust at the seams, against the real server: every online answer stays within what the
//! token itself carries and what is still true — exchanged tokens, blocked users, revoked
//! ancestors, audience-bound resource servers — and oversized tokens are refused clearly.
#![allow(clippy::unwrap_used)]

mod common;

use common::{
    assert_oauth_error, authorize, decode, exchange, group, job_for, mint_as, project, project_member, resource_server,
    runner, user, Auth, Client, Server,
};
use serde_json::{json, Value};

/// Private `grp/a` (the source, whose job's token is minted by an instance runner) and private
/// `grp/b` (the target, which admits `grp/a` with default permissions); `dev` is a Developer on both.
struct Fixture {
    a: i64,
    b: i64,
    dev: i64,
    runner: Client,
    registry: Client,
    job: i64,
}

fn fixture(s: &Server) -> Fixture {
    let dev = user(s, "dev");
    let grp = group(s, "grp", None);
    let a = project(s, "a", grp, json!({"visibility": "private"}));
    let b = project(s, "b", grp, json!({"visibility": "private"}));
    project_member(s, a, dev, 30);
    project_member(s, b, dev, 30);
    let res = s.json(
        "POST",
        &format!("/api/v1/projects/{b}/job_token_scope/allowlist"),
        Auth::Admin,
        json!({"source_project_id": a}),
    );
    assert_eq!(res.status, 201, "{}", res.text);
    let runner = runner(s, json!({"runner_type": "instance"}));
    let registry = resource_server(s, "registry");
    let job = job_for(s, a, dev, true);
    Fixture { a, b, dev, runner, registry, job }
}

impl Fixture {
    fn mint(&self, s: &Server, extra: &[(&str, &str)]) -> String {
        let res = mint_as(s, &self.runner, self.job, extra);
        assert_eq!(res.status, 200, "{}", res.text);
        res.json["access_token"].as_str().unwrap().to_owned()
    }

    fn decide(&self, s: &Server, token: &str, project: i64, scope: &str) -> Value {
        authorize(s, &self.registry, token, json!(project), scope)
    }

    fn allowed(&self, s: &Server, token: &str, project: i64, scope: &str) -> bool {
        self.decide(s, token, project, scope)["allowed"].as_bool().unwrap()
    }

    fn active(&self, s: &Server, token: &str) -> bool {
        let res = s.form("/oauth/introspect", self.registry.auth(), &[("token", token)]);
        assert_eq!(res.status, 200, "{}", res.text);
        res.json["active"].as_bool().unwrap()
    }
}

fn exchange_ok(s: &Server, subject: &str, extra: &[(&str, &str)]) -> String {
    let res = exchange(s, subject, extra);
    assert_eq!(res.status, 200, "{}", res.text);
    res.json["access_token"].as_str().unwrap().to_owned()
}

fn revoke(s: &Server, token: &str) {
    let res = s.form("/oauth/revoke", Auth::Admin, &[("token", token)]);
    assert_eq!(res.status, 200, "{}", res.text);
}

// ---- 1. online answers honour the token ----

#[test]
fn an_exchanged_token_without_authorization_details_is_denied_on_other_projects_its_parent_may_reach() {
    let s = Server::start();
    let f = fixture(&s);
    let parent = f.mint(&s, &[]);
    assert!(f.allowed(&s, &parent, f.b, "read_repository"), "the runner-minted token gets the live decision");

    let child = exchange_ok(&s, &parent, &[("scope", "read_repository")]);

    let d = f.decide(&s, &child, f.b, "read_repository");
    assert_eq!(d["allowed"], json!(false), "{d}");
    assert_eq!(d["granted_scopes"], json!([]), "{d}");
    let reason = d["reason"].as_str().unwrap();
    assert!(reason.contains("grp/a") && reason.contains("grp/b") && reason.contains("authorization_details"), "{d}");
    assert!(f.allowed(&s, &child, f.a, "read_repository"), "on its own project the child's scope answers");
    assert!(!f.allowed(&s, &child, f.a, "write_registry"), "the child's scope no longer carries write_registry");
}

#[test]
fn an_exchanged_token_answers_on_another_project_only_for_the_actions_it_carries_and_while_still_granted() {
    let s = Server::start();
    let f = fixture(&s);
    let details =
        json!([{"type": "ci_project_access", "project_id": f.b, "actions": ["read_repository", "read_registry"]}]);
    let parent = f.mint(&s, &[("authorization_details", &details.to_string())]);
    let narrowed = json!([{"type": "ci_project_access", "project_id": f.b, "actions": ["read_registry"]}]);

    let child = exchange_ok(&s, &parent, &[("authorization_details", &narrowed.to_string())]);

    let d = f.decide(&s, &child, f.b, "read_registry");
    assert_eq!(d["allowed"], json!(true), "{d}");
    assert_eq!(d["granted_scopes"], json!(["read_registry"]), "never more than the token carries: {d}");
    assert!(!f.allowed(&s, &child, f.b, "read_repository"), "dropped by the exchange");
    assert!(!f.allowed(&s, &child, f.b, "write_registry"), "never carried, though the allowlist would admit it");
    assert!(f.allowed(&s, &parent, f.b, "write_registry"), "the runner-minted parent still gets the live decision");

    let removed = s.json(
        "DELETE",
        &format!("/api/v1/projects/{}/job_token_scope/allowlist/{}", f.b, f.a),
        Auth::Admin,
        Value::Null,
    );
    assert_eq!(removed.status, 204, "{}", removed.text);
    assert!(!f.allowed(&s, &child, f.b, "read_registry"), "what it carries counts only while still true");
}

// ---- 3. a blocked user holds nothing ----

#[test]
fn blocking_the_user_makes_their_tokens_inactive_denied_and_unexchangeable_at_once() {
    let s = Server::start();
    let f = fixture(&s);
    let parent = f.mint(&s, &[]);
    let child = exchange_ok(&s, &parent, &[]);
    assert!(f.active(&s, &parent) && f.active(&s, &child));

    let blocked = s.json("PATCH", &format!("/api/v1/users/{}", f.dev), Auth::Admin, json!({"state": "blocked"}));

    assert_eq!(blocked.status, 200, "{}", blocked.text);
    assert!(!f.active(&s, &parent), "introspection: inactive");
    assert!(!f.active(&s, &child), "the exchanged token too");
    let d = f.decide(&s, &parent, f.b, "read_repository");
    assert_eq!(d["allowed"], json!(false), "{d}");
    assert!(d["reason"].as_str().unwrap().contains("blocked"), "{d}");
    assert!(!f.allowed(&s, &parent, f.a, "read_repository"), "not even on its own project");
    assert_oauth_error(&exchange(&s, &parent, &[]), 400, "invalid_grant");
}

// ---- 4. revocation covers descendants ----

#[test]
fn revoking_a_token_revokes_every_token_exchanged_from_it_at_any_depth_and_nothing_above() {
    let s = Server::start();
    let f = fixture(&s);
    let root = f.mint(&s, &[]);
    let child = exchange_ok(&s, &root, &[]);
    let grandchild = exchange_ok(&s, &child, &[]);
    let sibling = exchange_ok(&s, &root, &[]);

    revoke(&s, &child);

    assert!(!f.active(&s, &child));
    assert!(!f.active(&s, &grandchild), "a descendant of the revoked token");
    assert!(!f.allowed(&s, &grandchild, f.a, "read_repository"));
    assert_oauth_error(&exchange(&s, &grandchild, &[]), 400, "invalid_grant");
    assert!(f.active(&s, &root), "the parent is not revoked");
    assert!(f.active(&s, &sibling), "nor its other children");

    revoke(&s, &root);

    assert!(!f.active(&s, &sibling));
}

#[test]
fn a_token_exchanged_after_its_ancestor_was_revoked_cannot_exist_and_chained_exchanges_nest_act() {
    let s = Server::start();
    let f = fixture(&s);
    let root = f.mint(&s, &[]);
    let child = exchange_ok(&s, &root, &[]);
    let grandchild = exchange_ok(&s, &child, &[]);
    let (_, root_claims) = decode(&root);
    let (_, claims) = decode(&grandchild);
    let actor = json!({"sub": root_claims["sub"], "client_id": root_claims["client_id"]});
    assert_eq!(claims["act"], json!({"sub": actor["sub"], "client_id": actor["client_id"], "act": actor}));

    revoke(&s, &root);

    assert_oauth_error(&exchange(&s, &child, &[]), 400, "invalid_grant");
    assert!(!f.active(&s, &grandchild));
}

// ---- 8. bounded tokens ----

#[test]
fn a_token_that_would_not_fit_an_http_header_is_an_invalid_request_naming_the_limit() {
    let s = Server::start();
    let f = fixture(&s);
    let audiences: Vec<String> = (0..16).map(|i| format!("https://registry-{i}.example/{}", "p".repeat(400))).collect();
    let mut extra: Vec<(&str, &str)> = audiences.iter().map(|a| ("audience", a.as_str())).collect();

    let res = mint_as(&s, &f.runner, f.job, &extra);

    assert_oauth_error(&res, 400, "invalid_request");
    let description = res.json["error_description"].as_str().unwrap();
    assert!(
        description.contains("5120 bytes") && description.contains("aud "),
        "names the limit and the cause: {description}"
    );
    extra.truncate(4);
    let fits = mint_as(&s, &f.runner, f.job, &extra);
    assert_eq!(fits.status, 200, "four such audiences fit: {}", fits.text);
    assert!(fits.json["access_token"].as_str().unwrap().len() <= 5120);
}

// ---- 2. audience is a boundary ----

#[test]
fn a_resource_server_with_an_audience_introspects_only_tokens_for_it_or_the_default_audience() {
    let s = Server::start();
    let f = fixture(&s);
    let r = s.admin("POST", "/api/v1/resource_servers", json!({"name": "pkg", "audience": "https://pkg.example"}));
    let pkg = Client {
        id: r["id"].as_i64().unwrap(),
        client_id: r["client_id"].as_str().unwrap().into(),
        secret: r["client_secret"].as_str().unwrap().into(),
    };
    let introspect = |token: &str| {
        let res = s.form("/oauth/introspect", pkg.auth(), &[("token", token)]);
        assert_eq!(res.status, 200, "{}", res.text);
        res.json["active"].as_bool().unwrap()
    };
    let for_pkg = f.mint(&s, &[("audience", "https://pkg.example")]);
    let for_default = f.mint(&s, &[]);
    let for_other = f.mint(&s, &[("audience", "https://other.example")]);

    assert!(introspect(&for_pkg), "its own audience");
    assert!(introspect(&for_default), "the default audience is accepted by every resource server");
    assert!(!introspect(&for_other), "another audience is none of its business");
    assert!(f.active(&s, &for_other), "a resource server without an audience still sees it");
    let d = authorize(&s, &pkg, &for_other, json!(f.a), "read_repository");
    assert_eq!(d["allowed"], json!(false), "{d}");
    assert!(d["reason"].as_str().unwrap().contains("https://pkg.example"), "{d}");
}

// ---- 1. … and what is still true on the token's own project ----

#[test]
fn a_right_lost_after_mint_is_lost_online_on_the_tokens_own_project_and_in_exchanges() {
    let s = Server::start();
    let f = fixture(&s);
    let token = f.mint(&s, &[]);
    assert!(f.allowed(&s, &token, f.a, "write_package_registry"));

    let patched = s.json(
        "PATCH",
        &format!("/api/v1/projects/{}", f.a),
        Auth::Admin,
        json!({"package_registry_access_level": "disabled"}),
    );

    assert_eq!(patched.status, 200, "{}", patched.text);
    let d = f.decide(&s, &token, f.a, "write_package_registry");
    assert_eq!(d["allowed"], json!(false), "{d}");
    assert!(d["reason"].as_str().unwrap().contains("no longer holds write_package_registry"), "{d}");
    assert!(f.allowed(&s, &token, f.a, "read_repository"), "rights the token still holds stay");
    let res = s.form("/oauth/introspect", f.registry.auth(), &[("token", token.as_str())]);
    assert_eq!(res.json["active"], json!(true), "{}", res.text);
    assert_eq!(res.json["scope"], "read_repository read_registry write_registry", "{}", res.text);
    let child = exchange(&s, &token, &[]);
    assert_eq!(child.status, 200, "{}", child.text);
    assert_eq!(child.json["scope"], "read_repository read_registry write_registry", "{}", child.text);

    let removed = s.json("DELETE", &format!("/api/v1/projects/{}/members/{}", f.a, f.dev), Auth::Admin, Value::Null);

    assert_eq!(removed.status, 204, "{}", removed.text);
    assert!(!f.allowed(&s, &token, f.a, "read_repository"), "the user no longer reads grp/a");
}

#[test]
fn a_token_exchange_presenting_wrong_client_credentials_is_invalid_client() {
    let s = Server::start();
    let f = fixture(&s);
    let token = f.mint(&s, &[]);
    let fields = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("subject_token", token.as_str()),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
    ];

    let wrong = s.form("/oauth/token", Auth::Basic("rs_nope", "bad"), &fields);
    let right = s.form("/oauth/token", f.runner.auth(), &fields);

    assert_oauth_error(&wrong, 401, "invalid_client");
    assert_eq!(right.status, 200, "valid credentials are accepted, though not needed: {}", right.text);
}

#[test]
fn a_group_or_project_whose_full_path_would_exceed_255_characters_is_refused() {
    let s = Server::start();
    let segment = "g".repeat(200);
    let top = group(&s, &segment, None);

    let deep = s.json("POST", "/api/v1/groups", Auth::Admin, json!({"path": "x".repeat(60), "parent_id": top}));
    let project = s.json("POST", "/api/v1/projects", Auth::Admin, json!({"path": "p".repeat(60), "namespace_id": top}));

    for res in [&deep, &project] {
        assert_eq!(res.status, 422, "{}", res.text);
        assert!(res.json["message"].as_str().unwrap().contains("limited to 255"), "{}", res.text);
    }
    let fits = s.json("POST", "/api/v1/projects", Auth::Admin, json!({"path": "p".repeat(54), "namespace_id": top}));
    assert_eq!(fits.status, 201, "exactly 255 characters fit: {}", fits.text);
}
