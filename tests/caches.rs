//! The catalog cache never lies (issue 12, point 4): every change through the API to data the
//! servers cache (allowlists, project and group settings, memberships, instance settings) is seen
//! by the very next request, and what is never cached (a finished job, a revoked token, a blocked
//! user, a paused runner, a reset secret, a disabled resource server) takes effect at once too.
//! Each test first asks the same question once, so that a stale cache would answer the old way.
#![allow(clippy::unwrap_used)]

mod common;

use common::{group, job_for, mint_as, project, project_member, resource_server, runner, user, Auth, Client, Server};
use serde_json::{json, Value};

/// Group `top` with subgroup `top/mid`; private projects `top/mid/a` (the source: its job's
/// token) and `top/b` (the target); `dev` is a Developer on both.
struct Fixture {
    top: i64,
    mid: i64,
    a: i64,
    b: i64,
    dev: i64,
    runner: Client,
    registry: Client,
    job: i64,
    token: String,
}

fn fixture(s: &Server) -> Fixture {
    let dev = user(s, "dev");
    let top = group(s, "top", None);
    let mid = group(s, "mid", Some(top));
    let a = project(s, "a", mid, json!({"visibility": "private"}));
    let b = project(s, "b", top, json!({"visibility": "private"}));
    project_member(s, a, dev, 30);
    project_member(s, b, dev, 30);
    let runner = runner(s, json!({"runner_type": "instance"}));
    let registry = resource_server(s, "registry");
    let job = job_for(s, a, dev, true);
    let token = mint(s, &runner, job);
    Fixture { top, mid, a, b, dev, runner, registry, job, token }
}

fn mint(s: &Server, runner: &Client, job: i64) -> String {
    let res = mint_as(s, runner, job, &[]);
    assert_eq!(res.status, 200, "{}", res.text);
    res.json["access_token"].as_str().unwrap().to_owned()
}

impl Fixture {
    fn decide(&self, s: &Server, scope: &str) -> Value {
        common::authorize(s, &self.registry, &self.token, json!(self.b), scope)
    }

    fn allowed(&self, s: &Server, scope: &str) -> bool {
        let d = self.decide(s, scope);
        d["allowed"].as_bool().unwrap_or_else(|| panic!("no boolean allowed: {d}"))
    }

    fn introspect(&self, s: &Server, token: &str) -> Value {
        let res = s.form("/oauth/introspect", self.registry.auth(), &[("token", token)]);
        assert_eq!(res.status, 200, "{}", res.text);
        res.json
    }

    fn scope_of(&self, s: &Server, token: &str) -> Vec<String> {
        let v = self.introspect(s, token);
        v["scope"].as_str().unwrap_or_default().split(' ').filter(|x| !x.is_empty()).map(str::to_owned).collect()
    }
}

fn change(s: &Server, method: &str, path: &str, body: Value) {
    let res = s.json(method, path, Auth::Admin, body);
    assert!(res.status < 300, "{method} {path}: {} {}", res.status, res.text);
}

#[test]
fn adding_and_removing_a_project_allowlist_entry_flips_the_decision_at_once() {
    let s = Server::start();
    let f = fixture(&s);
    assert!(!f.allowed(&s, "read_repository"), "not on grp/b's allowlist yet");

    change(
        &s,
        "POST",
        &format!("/api/v1/projects/{}/job_token_scope/allowlist", f.b),
        json!({"source_project_id": f.a}),
    );
    assert!(f.allowed(&s, "read_repository"), "the new entry is seen by the next decision");

    change(&s, "DELETE", &format!("/api/v1/projects/{}/job_token_scope/allowlist/{}", f.b, f.a), Value::Null);
    assert!(!f.allowed(&s, "read_repository"), "the removed entry is gone for the next decision");
}

#[test]
fn an_entry_on_the_targets_group_naming_the_sources_group_and_its_removal_are_seen_at_once() {
    let s = Server::start();
    let f = fixture(&s);
    assert!(!f.allowed(&s, "read_repository"));

    let path = format!("/api/v1/groups/{}/job_token_scope/groups_allowlist", f.top);
    change(&s, "POST", &path, json!({"source_group_id": f.mid}));
    assert!(f.allowed(&s, "read_repository"), "both hierarchies walked with the new entry");

    change(&s, "PATCH", &format!("{path}/{}", f.mid), json!({"scopes": ["read_registry"]}));
    assert!(!f.allowed(&s, "read_repository"), "the narrowed entry no longer grants read_repository");
    assert!(f.allowed(&s, "read_registry"));

    change(&s, "DELETE", &format!("{path}/{}", f.mid), Value::Null);
    assert!(!f.allowed(&s, "read_registry"));
}

#[test]
fn project_and_group_inbound_settings_are_seen_by_the_next_decision() {
    let s = Server::start();
    let f = fixture(&s);
    assert!(!f.allowed(&s, "read_repository"));

    let group_scope = format!("/api/v1/groups/{}/job_token_scope", f.top);
    let project_scope = format!("/api/v1/projects/{}/job_token_scope", f.b);
    change(&s, "PATCH", &group_scope, json!({"inbound_enabled": false}));
    assert!(f.allowed(&s, "read_repository"), "the target inherits its group's inbound allowlist off");

    change(&s, "PATCH", &project_scope, json!({"inbound_enabled": true}));
    assert!(!f.allowed(&s, "read_repository"), "the target's own setting turns it on again");

    change(&s, "PATCH", &project_scope, json!({"inbound_enabled": null}));
    assert!(f.allowed(&s, "read_repository"), "inherited from the group again");

    change(&s, "PATCH", "/api/v1/settings", json!({"enforce_job_token_allowlist": true}));
    assert!(!f.allowed(&s, "read_repository"), "the instance enforces the allowlist");
}

#[test]
fn a_membership_change_or_removal_is_seen_by_the_next_decision_and_introspection() {
    let s = Server::start();
    let f = fixture(&s);
    change(
        &s,
        "POST",
        &format!("/api/v1/projects/{}/job_token_scope/allowlist", f.b),
        json!({"source_project_id": f.a}),
    );
    assert!(f.allowed(&s, "write_registry"), "a Developer on grp/b may push images");
    assert!(f.scope_of(&s, &f.token).contains(&"write_registry".to_owned()));

    change(&s, "PUT", &format!("/api/v1/projects/{}/members/{}", f.b, f.dev), json!({"access_level": 20}));
    assert!(!f.allowed(&s, "write_registry"), "a Reporter may not");
    assert!(f.allowed(&s, "read_repository"));

    change(&s, "DELETE", &format!("/api/v1/projects/{}/members/{}", f.b, f.dev), Value::Null);
    assert!(!f.allowed(&s, "read_repository"), "no member, no access to a private target");

    change(&s, "PUT", &format!("/api/v1/groups/{}/members/{}", f.top, f.dev), json!({"access_level": 30}));
    assert!(f.allowed(&s, "read_repository"), "a group membership above the target counts at once");

    change(&s, "DELETE", &format!("/api/v1/projects/{}/members/{}", f.a, f.dev), Value::Null);
    change(&s, "DELETE", &format!("/api/v1/groups/{}/members/{}", f.top, f.dev), Value::Null);
    assert!(
        !f.scope_of(&s, &f.token).contains(&"write_registry".to_owned()),
        "introspection caps the scope at today's rights on the own project"
    );
}

#[test]
fn a_project_feature_change_is_seen_by_the_next_introspection() {
    let s = Server::start();
    let f = fixture(&s);
    assert!(f.scope_of(&s, &f.token).contains(&"read_repository".to_owned()));

    change(&s, "PATCH", &format!("/api/v1/projects/{}", f.a), json!({"repository_access_level": "disabled"}));

    let scope = f.scope_of(&s, &f.token);
    assert!(!scope.contains(&"read_repository".to_owned()), "the repository is off: {scope:?}");
}

#[test]
fn a_blocked_user_gets_no_token_and_their_token_is_inactive_at_once() {
    let s = Server::start();
    let f = fixture(&s);
    assert_eq!(f.introspect(&s, &f.token)["active"], json!(true));
    mint(&s, &f.runner, f.job);

    change(&s, "PATCH", &format!("/api/v1/users/{}", f.dev), json!({"state": "blocked"}));

    assert_eq!(f.introspect(&s, &f.token)["active"], json!(false));
    assert!(!f.allowed(&s, "read_repository"));
    let refused = mint_as(&s, &f.runner, f.job, &[]);
    assert_eq!(refused.status, 400, "{}", refused.text);
}

#[test]
fn a_finished_job_and_a_revoked_token_are_inactive_at_once() {
    let s = Server::start();
    let f = fixture(&s);
    let other_job = job_for(&s, f.a, f.dev, true);
    let other = mint(&s, &f.runner, other_job);
    assert_eq!(f.introspect(&s, &other)["active"], json!(true));
    assert_eq!(f.introspect(&s, &f.token)["active"], json!(true));

    let revoked = s.form("/oauth/revoke", Auth::Admin, &[("token", &other)]);
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let finished =
        s.json("POST", &format!("/api/v1/jobs/{}/finish", f.job), f.runner.auth(), json!({"status": "success"}));
    assert_eq!(finished.status, 200, "{}", finished.text);

    assert_eq!(f.introspect(&s, &other)["active"], json!(false), "revoked");
    assert_eq!(f.introspect(&s, &f.token)["active"], json!(false), "its job finished");
    assert_eq!(f.decide(&s, "read_repository")["allowed"], json!(false));
    assert_eq!(mint_as(&s, &f.runner, f.job, &[]).status, 400, "no token for a finished job");
}

#[test]
fn a_paused_runner_starts_no_job_and_a_reset_secret_is_refused_on_its_next_mint() {
    let s = Server::start();
    let f = fixture(&s);
    let job = job_for(&s, f.a, f.dev, true);

    change(&s, "PATCH", &format!("/api/v1/runners/{}", f.runner.id), json!({"paused": true}));
    assert_eq!(mint_as(&s, &f.runner, job, &[]).status, 400, "a paused runner starts no job");
    change(&s, "PATCH", &format!("/api/v1/runners/{}", f.runner.id), json!({"paused": false}));
    mint(&s, &f.runner, job);

    let reset = s.json("POST", &format!("/api/v1/runners/{}/reset_secret", f.runner.id), Auth::Admin, Value::Null);
    assert_eq!(reset.status, 200, "{}", reset.text);
    assert_eq!(mint_as(&s, &f.runner, job, &[]).status, 401, "the old secret is dead at once");
    let renewed = Client { secret: reset.json["client_secret"].as_str().unwrap().into(), ..f.runner.clone() };
    mint(&s, &renewed, job);
}

#[test]
fn a_disabled_resource_server_is_refused_on_its_next_request() {
    let s = Server::start();
    let f = fixture(&s);
    assert_eq!(f.introspect(&s, &f.token)["active"], json!(true));

    change(&s, "PATCH", &format!("/api/v1/resource_servers/{}", f.registry.id), json!({"disabled": true}));

    let res = s.form("/oauth/introspect", f.registry.auth(), &[("token", &f.token)]);
    assert_eq!(res.status, 401, "{}", res.text);
    let body = json!({"token": f.token, "project": f.b, "scope": "read_repository"});
    let res = s.json("POST", "/api/v1/job_token/authorize", f.registry.auth(), body);
    assert_eq!(res.status, 401, "{}", res.text);
}

#[test]
fn a_project_created_after_a_decision_named_it_by_path_is_found_at_once() {
    let s = Server::start();
    let f = fixture(&s);
    let ask = |s: &Server| common::authorize(s, &f.registry, &f.token, json!("top/c"), "read_repository");
    let before = ask(&s);
    assert_eq!(before["allowed"], json!(false), "{before}");

    let c = project(&s, "c", f.top, json!({"visibility": "private"}));
    project_member(&s, c, f.dev, 30);
    change(&s, "PATCH", &format!("/api/v1/projects/{c}/job_token_scope"), json!({"inbound_enabled": false}));

    let after = ask(&s);
    assert_eq!(after["allowed"], json!(true), "{after}");
    assert_eq!(after["target_project"], json!("top/c"));
}
