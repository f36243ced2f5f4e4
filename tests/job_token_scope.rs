//! The job token scope against the real server (SPEC §4.3–§4.5): the live decision endpoint,
//! who may edit allowlists, their limits and validation, `authorization_details` at mint time,
//! the authorization log, autopopulate, and the log surviving a clean shutdown.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{
    decode, group, group_member, job_for, mint_as, personal_access_token, project, project_member, resource_server,
    runner, user, Auth, Client, Res, Server,
};
use serde_json::{json, Value};

const DEFAULTS: [&str; 5] =
    ["read_repository", "read_registry", "write_registry", "read_package_registry", "write_package_registry"];
const VISIBILITY_READS: [&str; 4] = ["read_repository", "read_registry", "read_package_registry", "read_api"];

/// Group `grp` with private projects `grp/a` (the source: its job's token, minted by an instance
/// runner) and `grp/b` (the target); the pipeline user `dev` is a Developer on both.
struct Fixture {
    grp: i64,
    a: i64,
    b: i64,
    dev: i64,
    runner: Client,
    registry: Client,
    job: i64,
    token: String,
}

fn fixture(s: &Server) -> Fixture {
    fixture_with(s, true)
}

fn fixture_with(s: &Server, protected: bool) -> Fixture {
    let dev = user(s, "dev");
    let grp = group(s, "grp", None);
    let a = project(s, "a", grp, json!({"visibility": "private"}));
    let b = project(s, "b", grp, json!({"visibility": "private"}));
    project_member(s, a, dev, 30);
    project_member(s, b, dev, 30);
    let runner = runner(s, json!({"runner_type": "instance"}));
    let registry = resource_server(s, "registry");
    let job = job_for(s, a, dev, protected);
    let token = mint_token(s, &runner, job, &[]);
    Fixture { grp, a, b, dev, runner, registry, job, token }
}

fn mint_token(s: &Server, runner: &Client, job: i64, extra: &[(&str, &str)]) -> String {
    let res = mint_as(s, runner, job, extra);
    assert_eq!(res.status, 200, "{}", res.text);
    res.json["access_token"].as_str().unwrap().to_owned()
}

impl Fixture {
    /// Asks the decision endpoint, as the registry, whether `token` may use `scope` on `project`.
    fn ask(&self, s: &Server, token: &str, project: Value, scope: &str) -> Value {
        common::authorize(s, &self.registry, token, project, scope)
    }

    /// The decision for the fixture's token from `grp/a`.
    fn decide(&self, s: &Server, project: i64, scope: &str) -> Value {
        self.ask(s, &self.token, json!(project), scope)
    }

    fn allowed(&self, s: &Server, project: i64, scope: &str) -> bool {
        let d = self.decide(s, project, scope);
        d["allowed"].as_bool().unwrap_or_else(|| panic!("no boolean allowed: {d}"))
    }
}

fn scope_path(project: i64) -> String {
    format!("/api/v1/projects/{project}/job_token_scope")
}

fn allowlist_path(project: i64) -> String {
    format!("/api/v1/projects/{project}/job_token_scope/allowlist")
}

/// Adds an entry to `owner`'s project allowlist as the admin; asserts 201.
fn admit(s: &Server, owner: i64, body: Value) -> Value {
    let res = s.json("POST", &allowlist_path(owner), Auth::Admin, body);
    assert_eq!(res.status, 201, "{}", res.text);
    res.json
}

fn patch_scope(s: &Server, project: i64, body: Value) -> Value {
    s.admin("PATCH", &scope_path(project), body)
}

/// Every entry of a paged list, page by page (100 a page) until `X-Next-Page` is empty.
fn all_pages(s: &Server, path: &str) -> Value {
    let mut rows = Vec::new();
    for page in 1.. {
        let res = s.get(&format!("{path}?per_page=100&page={page}"), Auth::Admin);
        assert_eq!(res.status, 200, "{}", res.text);
        rows.extend(res.json.as_array().unwrap().iter().cloned());
        if res.header("x-next-page").unwrap_or_default().is_empty() {
            break;
        }
    }
    Value::Array(rows)
}

/// A project's project and group allowlist entries (every page), as the admin sees them.
fn entries(s: &Server, owner: i64) -> (Value, Value) {
    let projects = all_pages(s, &allowlist_path(owner));
    let groups = all_pages(s, &format!("/api/v1/projects/{owner}/job_token_scope/groups_allowlist"));
    (projects, groups)
}

/// Runs `act`, which must be refused, and asserts `owner`'s allowlists did not change.
fn refused_without_change(s: &Server, owner: i64, act: impl FnOnce() -> Res) -> Res {
    let before = entries(s, owner);
    let res = act();
    assert!(res.status >= 400, "expected a refusal: {} {}", res.status, res.text);
    assert_eq!(entries(s, owner), before, "a rejected request changed the allowlist");
    res
}

fn names(v: &Value) -> BTreeSet<String> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(|x| x.as_str().unwrap().to_owned()).collect()
}

fn set(scopes: &[&str]) -> BTreeSet<String> {
    scopes.iter().map(|s| (*s).to_owned()).collect()
}

fn assert_api_error(res: &Res, status: u16) {
    assert_eq!(res.status, status, "{}", res.text);
    assert!(res.json["error"].is_string() && res.json["message"].is_string(), "error shape: {}", res.text);
}

/// Polls a project's authorization log (up to ~3 s, 100 ms steps) until `done` holds; returns it.
fn poll_authorizations(s: &Server, target: i64, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let rows = s.admin("GET", &format!("/api/v1/projects/{target}/job_token_scope/authorizations"), Value::Null);
        let rows = rows.as_array().unwrap().clone();
        if done(&rows) || Instant::now() >= deadline {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn rows_for(rows: &[Value], source: i64) -> Vec<&Value> {
    rows.iter().filter(|r| r["source_project_id"] == json!(source)).collect()
}

// ---- 1. the decision endpoint ----

#[test]
fn the_decision_endpoint_answers_resource_servers_and_the_admin_only() {
    let s = Server::start();
    let f = fixture(&s);
    let body = json!({"token": f.token, "project": f.b, "scope": "read_repository"});

    let anonymous = s.json("POST", "/api/v1/job_token/authorize", Auth::None, body.clone());
    let wrong_secret =
        s.json("POST", "/api/v1/job_token/authorize", Auth::Basic(&f.registry.client_id, "nope"), body.clone());
    let as_runner = s.json("POST", "/api/v1/job_token/authorize", f.runner.auth(), body.clone());
    let as_registry = s.json("POST", "/api/v1/job_token/authorize", f.registry.auth(), body.clone());
    let as_admin = s.json("POST", "/api/v1/job_token/authorize", Auth::Admin, body);

    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
    assert_eq!(wrong_secret.status, 401, "{}", wrong_secret.text);
    assert_eq!(as_runner.status, 401, "a runner is not a resource server: {}", as_runner.text);
    assert_eq!(as_registry.status, 200, "{}", as_registry.text);
    assert_eq!(as_admin.status, 200, "{}", as_admin.text);
}

#[test]
fn by_default_a_private_target_denies_another_projects_token_with_a_reason_naming_both() {
    let s = Server::start();
    let f = fixture(&s);

    let d = f.decide(&s, f.b, "read_repository");

    assert_eq!(d["allowed"], json!(false), "{d}");
    let reason = d["reason"].as_str().unwrap();
    assert!(reason.contains("grp/a") && reason.contains("grp/b"), "{reason}");
    assert_eq!(d["source_project"], "grp/a");
    assert_eq!(d["target_project"], "grp/b");
    assert_eq!(d["granted_scopes"], json!([]));
}

#[test]
fn an_allowlist_entry_admits_the_source_with_the_default_set_within_the_users_rights() {
    let s = Server::start();
    let f = fixture(&s);

    let entry = admit(&s, f.b, json!({"source_project_id": f.a}));
    let d = f.decide(&s, f.b, "read_repository");

    assert_eq!(entry["default_permissions"], json!(true), "{entry}");
    assert_eq!(d["allowed"], json!(true), "{d}");
    assert_eq!(names(&d["granted_scopes"]), set(&DEFAULTS), "{d}");
    assert!(d["reason"].as_str().unwrap().contains("grp/b"), "{d}");
    assert!(!f.allowed(&s, f.b, "api"), "default permissions never include elevated scopes");
}

#[test]
fn an_unprotected_job_loses_protected_only_scopes_on_the_target() {
    let s = Server::start();
    let f = fixture_with(&s, false);
    admit(&s, f.b, json!({"source_project_id": f.a}));

    let d = f.decide(&s, f.b, "write_package_registry");

    assert_eq!(d["allowed"], json!(false), "{d}");
    assert!(d["reason"].as_str().unwrap().contains("grp/b"), "{d}");
    let granted = f.decide(&s, f.b, "write_registry");
    assert_eq!(granted["allowed"], json!(true), "write_registry is open to unprotected jobs: {granted}");
    assert_eq!(
        names(&granted["granted_scopes"]),
        set(&["read_repository", "read_registry", "write_registry", "read_package_registry"])
    );
}

#[test]
fn the_users_rights_on_the_target_cap_what_the_entry_grants() {
    let s = Server::start();
    let f = fixture(&s);
    project_member(&s, f.b, f.dev, 20);
    admit(&s, f.b, json!({"source_project_id": f.a}));

    let d = f.decide(&s, f.b, "read_repository");

    assert_eq!(d["allowed"], json!(true), "{d}");
    assert_eq!(names(&d["granted_scopes"]), set(&["read_repository", "read_registry", "read_package_registry"]));
    assert!(!f.allowed(&s, f.b, "write_registry"), "a Reporter cannot push images");
}

#[test]
fn an_entry_with_narrow_scopes_denies_the_others_with_a_reason() {
    let s = Server::start();
    let f = fixture(&s);

    admit(&s, f.b, json!({"source_project_id": f.a, "scopes": ["read_repository"]}));

    assert!(f.allowed(&s, f.b, "read_repository"));
    let d = f.decide(&s, f.b, "write_package_registry");
    assert_eq!(d["allowed"], json!(false), "{d}");
    let reason = d["reason"].as_str().unwrap();
    assert!(reason.contains("grp/a") && reason.contains("grp/b"), "{reason}");
    assert_eq!(d["granted_scopes"], json!([]));
}

#[test]
fn turning_the_targets_inbound_allowlist_off_gives_default_permissions() {
    let s = Server::start();
    let f = fixture(&s);

    let view = patch_scope(&s, f.b, json!({"inbound_enabled": false}));
    let d = f.decide(&s, f.b, "read_repository");

    assert_eq!(view["inbound_enabled"], json!(false), "{view}");
    assert_eq!(view["inbound_setting"], json!(false), "{view}");
    assert_eq!(d["allowed"], json!(true), "{d}");
    assert_eq!(names(&d["granted_scopes"]), set(&DEFAULTS));
    assert!(!f.allowed(&s, f.b, "read_api"), "read_api is beyond the default set");
}

#[test]
fn an_enforced_instance_allowlist_overrides_a_projects_inbound_false_and_cannot_be_turned_off() {
    let s = Server::start();
    let f = fixture(&s);
    patch_scope(&s, f.b, json!({"inbound_enabled": false}));
    assert!(f.allowed(&s, f.b, "read_repository"));

    s.admin("PATCH", "/api/v1/settings", json!({"enforce_job_token_allowlist": true}));

    assert!(!f.allowed(&s, f.b, "read_repository"), "enforcement beats the project's inbound false");
    let view = s.admin("GET", &scope_path(f.b), Value::Null);
    assert_eq!(view["inbound_enabled"], json!(true), "effective: {view}");
    assert_eq!(view["inbound_setting"], json!(false), "explicit: {view}");
    let refused = s.json("PATCH", &scope_path(f.b), Auth::Admin, json!({"inbound_enabled": false}));
    assert_api_error(&refused, 409);
}

#[test]
fn an_entry_on_the_targets_parent_group_admits_the_source() {
    let s = Server::start();
    let f = fixture(&s);

    let res = s.json(
        "POST",
        &format!("/api/v1/groups/{}/job_token_scope/allowlist", f.grp),
        Auth::Admin,
        json!({"source_project_id": f.a}),
    );

    assert_eq!(res.status, 201, "{}", res.text);
    let d = f.decide(&s, f.b, "read_repository");
    assert_eq!(d["allowed"], json!(true), "{d}");
    assert_eq!(names(&d["granted_scopes"]), set(&DEFAULTS));
}

#[test]
fn a_groups_allowlist_entry_naming_the_sources_group_admits_every_project_in_it_at_any_depth() {
    let s = Server::start();
    let f = fixture(&s);
    let sub = group(&s, "sub", Some(f.grp));
    let deep = project(&s, "deep", sub, json!({"visibility": "private"}));
    let other = group(&s, "other", None);
    let outsider = project(&s, "z", other, json!({"visibility": "private"}));
    let token_of = |p: i64| {
        project_member(&s, p, f.dev, 30);
        mint_token(&s, &f.runner, job_for(&s, p, f.dev, true), &[])
    };
    let (deep_token, outsider_token) = (token_of(deep), token_of(outsider));

    let res = s.json(
        "POST",
        &format!("/api/v1/projects/{}/job_token_scope/groups_allowlist", f.b),
        Auth::Admin,
        json!({"source_group_id": f.grp}),
    );

    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(f.decide(&s, f.b, "read_repository")["allowed"], json!(true), "grp/a is in grp");
    assert_eq!(f.ask(&s, &deep_token, json!(f.b), "read_repository")["allowed"], json!(true), "grp/sub/deep");
    assert_eq!(f.ask(&s, &outsider_token, json!(f.b), "read_repository")["allowed"], json!(false), "other/z");
}

#[test]
fn a_project_level_entry_beats_a_group_level_entry_even_with_narrower_scopes() {
    let s = Server::start();
    let f = fixture(&s);
    let on_group = s.json(
        "POST",
        &format!("/api/v1/groups/{}/job_token_scope/allowlist", f.grp),
        Auth::Admin,
        json!({"source_project_id": f.a}),
    );
    assert_eq!(on_group.status, 201, "{}", on_group.text);
    assert!(f.allowed(&s, f.b, "write_registry"), "the group entry grants default permissions");

    admit(&s, f.b, json!({"source_project_id": f.a, "scopes": ["read_repository"]}));

    assert!(f.allowed(&s, f.b, "read_repository"));
    assert!(!f.allowed(&s, f.b, "write_registry"), "the project-level entry decides");
    assert_eq!(names(&f.decide(&s, f.b, "read_repository")["granted_scopes"]), set(&["read_repository"]));
}

#[test]
fn an_unknown_target_project_is_denied_not_an_error() {
    let s = Server::start();
    let f = fixture(&s);

    let by_id = f.ask(&s, &f.token, json!(987_654), "read_repository");
    let by_path = f.ask(&s, &f.token, json!("grp/nope"), "read_repository");

    for d in [by_id, by_path] {
        assert_eq!(d["allowed"], json!(false), "{d}");
        assert_eq!(d["granted_scopes"], json!([]), "{d}");
        assert!(d["reason"].is_string(), "{d}");
    }
}

#[test]
fn the_target_can_be_named_by_its_full_path() {
    let s = Server::start();
    let f = fixture(&s);
    admit(&s, f.b, json!({"source_project_id": f.a, "scopes": ["read_repository"]}));

    let d = f.ask(&s, &f.token, json!("grp/b"), "read_repository");

    assert_eq!(d["allowed"], json!(true), "{d}");
    assert_eq!(d["target_project"], "grp/b");
    assert_eq!(f.ask(&s, &f.token, json!("grp/b"), "write_registry")["allowed"], json!(false));
}

#[test]
fn the_tokens_own_project_is_decided_by_the_tokens_own_scope_not_the_allowlist() {
    let s = Server::start();
    let f = fixture(&s);
    let narrow = mint_token(&s, &f.runner, f.job, &[("scope", "read_repository")]);

    let full = f.ask(&s, &f.token, json!(f.a), "write_registry");
    let narrowed = f.ask(&s, &narrow, json!(f.a), "write_registry");

    assert_eq!(full["allowed"], json!(true), "grp/a's allowlist is on and lists nobody: {full}");
    assert_eq!(narrowed["allowed"], json!(false), "the token does not carry write_registry: {narrowed}");
    assert_eq!(f.ask(&s, &narrow, json!("grp/a"), "read_repository")["allowed"], json!(true));
    assert_eq!(f.ask(&s, &f.token, json!(f.a), "api")["allowed"], json!(false), "api is not in the token");
}

#[test]
fn out_of_scope_on_a_public_target_only_visibility_reads_pass_even_for_a_maintainer() {
    let s = Server::start();
    let f = fixture(&s);
    let public = project(&s, "pub", f.grp, json!({"visibility": "public"}));
    project_member(&s, public, f.dev, 40);

    let read = f.decide(&s, public, "read_repository");
    let write = f.decide(&s, public, "write_registry");

    assert_eq!(read["allowed"], json!(true), "{read}");
    assert_eq!(names(&read["granted_scopes"]), set(&VISIBILITY_READS));
    assert_eq!(write["allowed"], json!(false), "membership never passes out of scope: {write}");
    let reason = write["reason"].as_str().unwrap();
    assert!(reason.contains("grp/a") && reason.contains("grp/pub"), "{reason}");
}

#[test]
fn a_finished_jobs_token_is_denied() {
    let s = Server::start();
    let f = fixture(&s);
    admit(&s, f.b, json!({"source_project_id": f.a}));
    assert!(f.allowed(&s, f.b, "read_repository"));

    let finished = s.json("POST", &format!("/api/v1/jobs/{}/finish", f.job), Auth::Admin, json!({"status": "success"}));

    assert_eq!(finished.status, 200, "{}", finished.text);
    let d = f.decide(&s, f.b, "read_repository");
    assert_eq!(d["allowed"], json!(false), "{d}");
    assert_eq!(d["granted_scopes"], json!([]));
}

#[test]
fn an_outbound_allowlist_limits_private_targets_to_its_entries_and_their_scopes() {
    let s = Server::start();
    let f = fixture(&s);
    let public = project(&s, "pub", f.grp, json!({"visibility": "public"}));
    admit(&s, f.b, json!({"source_project_id": f.a}));
    assert!(f.allowed(&s, f.b, "read_repository"));

    patch_scope(&s, f.a, json!({"outbound_enabled": true}));

    let d = f.decide(&s, f.b, "read_repository");
    assert_eq!(d["allowed"], json!(false), "no outbound entry covers grp/b: {d}");
    let reason = d["reason"].as_str().unwrap();
    assert!(reason.contains("grp/a") && reason.contains("grp/b"), "{reason}");
    assert!(f.allowed(&s, public, "read_repository"), "public targets keep their visibility reads");

    let res = s.json(
        "POST",
        &format!("/api/v1/projects/{}/job_token_scope/outbound", f.a),
        Auth::Admin,
        json!({"target_project_id": f.b, "scopes": ["read_repository"]}),
    );

    assert_eq!(res.status, 201, "{}", res.text);
    assert!(f.allowed(&s, f.b, "read_repository"));
    assert!(!f.allowed(&s, f.b, "write_registry"), "the outbound entry lists read_repository only");
}

#[test]
fn a_duplicate_outbound_entry_is_a_conflict_that_keeps_the_first_and_later_additions_work() {
    let s = Server::start();
    let f = fixture(&s);
    let outbound = format!("/api/v1/projects/{}/job_token_scope/outbound", f.a);
    let first =
        s.json("POST", &outbound, Auth::Admin, json!({"target_project_id": f.b, "scopes": ["read_repository"]}));
    assert_eq!(first.status, 201, "{}", first.text);
    let before = s.admin("GET", &outbound, Value::Null);

    let again = s.json("POST", &outbound, Auth::Admin, json!({"target_project_id": f.b, "scopes": ["api"]}));

    assert_api_error(&again, 409);
    assert_eq!(s.admin("GET", &outbound, Value::Null), before, "the refused duplicate changed the outbound entries");
    let other =
        s.json("POST", &outbound, Auth::Admin, json!({"target_group_id": f.grp, "scopes": ["read_repository"]}));
    assert_eq!(other.status, 201, "{}", other.text);
    assert_eq!(s.admin("GET", &outbound, Value::Null).as_array().unwrap().len(), 2);
    assert!(!s.log().contains("transaction is aborted"), "{}", s.log());
}

// ---- 2. who may edit ----

#[test]
fn a_developer_may_neither_read_nor_edit_the_job_token_scope() {
    let s = Server::start();
    let f = fixture(&s);
    let pat = personal_access_token(&s, f.dev);
    let me = Auth::Bearer(&pat);

    let get = s.get(&scope_path(f.b), me);
    let patch = s.json("PATCH", &scope_path(f.b), me, json!({"inbound_enabled": false}));
    let post =
        refused_without_change(&s, f.b, || s.json("POST", &allowlist_path(f.b), me, json!({"source_project_id": f.a})));

    assert_api_error(&get, 403);
    assert_api_error(&patch, 403);
    assert_api_error(&post, 403);
    assert_eq!(s.admin("GET", &scope_path(f.b), Value::Null)["inbound_setting"], Value::Null, "PATCH changed nothing");
}

#[test]
fn a_maintainer_of_the_project_may_read_and_edit_its_job_token_scope() {
    let s = Server::start();
    let f = fixture(&s);
    let maintainer = user(&s, "maintainer");
    project_member(&s, f.b, maintainer, 40);
    project_member(&s, f.a, maintainer, 10);
    let pat = personal_access_token(&s, maintainer);
    let me = Auth::Bearer(&pat);

    let get = s.get(&scope_path(f.b), me);
    let patch = s.json("PATCH", &scope_path(f.b), me, json!({"inbound_enabled": true}));
    let post = s.json("POST", &allowlist_path(f.b), me, json!({"source_project_id": f.a}));

    assert_eq!(get.status, 200, "{}", get.text);
    assert_eq!(patch.status, 200, "{}", patch.text);
    assert_eq!(patch.json["inbound_setting"], json!(true));
    assert_eq!(post.status, 201, "a Guest membership on grp/a lets the editor see it: {}", post.text);
    assert_eq!(post.json["added_by"], json!(maintainer));
    assert!(f.allowed(&s, f.b, "read_repository"));
}

#[test]
fn a_maintainer_of_the_projects_group_may_edit_without_being_a_project_member() {
    let s = Server::start();
    let f = fixture(&s);
    let lead = user(&s, "lead");
    group_member(&s, f.grp, lead, 40);
    let pat = personal_access_token(&s, lead);

    let patch = s.json("PATCH", &scope_path(f.b), Auth::Bearer(&pat), json!({"inbound_enabled": false}));
    let post = s.json("POST", &allowlist_path(f.b), Auth::Bearer(&pat), json!({"source_project_id": f.a}));

    assert_eq!(patch.status, 200, "{}", patch.text);
    assert_eq!(post.status, 201, "{}", post.text);
}

#[test]
fn a_maintainer_cannot_add_a_private_source_they_cannot_see() {
    let s = Server::start();
    let f = fixture(&s);
    let hidden = project(&s, "c", f.grp, json!({"visibility": "private"}));
    let maintainer = user(&s, "maintainer");
    project_member(&s, f.b, maintainer, 40);
    let pat = personal_access_token(&s, maintainer);

    let res = refused_without_change(&s, f.b, || {
        s.json("POST", &allowlist_path(f.b), Auth::Bearer(&pat), json!({"source_project_id": hidden}))
    });

    assert_api_error(&res, 404);
}

#[test]
fn anyone_who_may_edit_may_add_a_public_source() {
    let s = Server::start();
    let f = fixture(&s);
    let elsewhere = group(&s, "elsewhere", None);
    let public = project(&s, "open", elsewhere, json!({"visibility": "public"}));
    let maintainer = user(&s, "maintainer");
    project_member(&s, f.b, maintainer, 40);
    let pat = personal_access_token(&s, maintainer);

    let res = s.json("POST", &allowlist_path(f.b), Auth::Bearer(&pat), json!({"source_project_id": public}));

    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.json["source_project_id"], json!(public));
}

#[test]
fn a_blocked_users_token_and_garbage_tokens_are_unauthorized() {
    let s = Server::start();
    let f = fixture(&s);
    let maintainer = user(&s, "maintainer");
    project_member(&s, f.b, maintainer, 40);
    let pat = personal_access_token(&s, maintainer);
    assert_eq!(s.get(&scope_path(f.b), Auth::Bearer(&pat)).status, 200);

    s.admin("PATCH", &format!("/api/v1/users/{maintainer}"), json!({"state": "blocked"}));

    assert_api_error(&s.get(&scope_path(f.b), Auth::Bearer(&pat)), 401);
    let post = refused_without_change(&s, f.b, || {
        s.json("POST", &allowlist_path(f.b), Auth::Bearer(&pat), json!({"source_project_id": f.a}))
    });
    assert_api_error(&post, 401);
    assert_api_error(&s.get(&scope_path(f.b), Auth::Bearer("jtpat_garbage")), 401);
    assert_api_error(&s.get(&scope_path(f.b), Auth::None), 401);
}

// ---- 3. limits and validation ----

#[test]
fn a_project_cannot_list_itself() {
    let s = Server::start();
    let f = fixture(&s);

    let res = refused_without_change(&s, f.b, || {
        s.json("POST", &allowlist_path(f.b), Auth::Admin, json!({"source_project_id": f.b}))
    });

    assert_api_error(&res, 409);
}

#[test]
fn a_duplicate_entry_is_a_conflict() {
    let s = Server::start();
    let f = fixture(&s);
    admit(&s, f.b, json!({"source_project_id": f.a, "scopes": ["read_repository"]}));

    let res = refused_without_change(&s, f.b, || {
        s.json("POST", &allowlist_path(f.b), Auth::Admin, json!({"source_project_id": f.a}))
    });

    assert_api_error(&res, 409);
    assert_eq!(names(&f.decide(&s, f.b, "read_repository")["granted_scopes"]), set(&["read_repository"]));
}

/// The duplicate is refused by the database's unique index inside the edit's transaction: on
/// PostgreSQL that statement's failure must not poison the rest (a 500, or the next edit failing).
#[test]
fn concurrent_identical_entries_give_one_201_and_409s_never_a_500_and_later_edits_work() {
    let s = Server::start();
    let f = fixture(&s);
    let group_path = format!("/api/v1/projects/{}/job_token_scope/groups_allowlist", f.b);
    let barrier = std::sync::Barrier::new(6);

    let statuses: Vec<(u16, u16)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let project = s.json("POST", &allowlist_path(f.b), Auth::Admin, json!({"source_project_id": f.a}));
                    let group = s.json("POST", &group_path, Auth::Admin, json!({"source_group_id": f.grp}));
                    for res in [&project, &group] {
                        if res.status != 201 {
                            assert_api_error(res, 409);
                        }
                    }
                    (project.status, group.status)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });

    for pick in [|p: &(u16, u16)| p.0, |p: &(u16, u16)| p.1] {
        let created = statuses.iter().map(pick).filter(|status| *status == 201).count();
        assert_eq!(created, 1, "one addition wins, the others are conflicts: {statuses:?}");
    }
    let (projects, groups) = entries(&s, f.b);
    assert_eq!(projects.as_array().unwrap().len(), 1, "{projects}");
    assert_eq!(groups.as_array().unwrap().len(), 1, "{groups}");
    let third = project(&s, "c", f.grp, json!({}));
    admit(&s, f.b, json!({"source_project_id": third}));
    assert!(!s.log().contains("panicked") && !s.log().contains("transaction is aborted"), "{}", s.log());
}

#[test]
fn an_unknown_source_is_not_found() {
    let s = Server::start();
    let f = fixture(&s);

    let project = refused_without_change(&s, f.b, || {
        s.json("POST", &allowlist_path(f.b), Auth::Admin, json!({"source_project_id": 987_654}))
    });
    let group = refused_without_change(&s, f.b, || {
        s.json(
            "POST",
            &format!("/api/v1/projects/{}/job_token_scope/groups_allowlist", f.b),
            Auth::Admin,
            json!({"source_group_id": 987_654}),
        )
    });

    assert_api_error(&project, 404);
    assert_api_error(&group, 404);
}

#[test]
fn an_unknown_scope_is_unprocessable() {
    let s = Server::start();
    let f = fixture(&s);

    let res = refused_without_change(&s, f.b, || {
        s.json("POST", &allowlist_path(f.b), Auth::Admin, json!({"source_project_id": f.a, "scopes": ["sudo"]}))
    });

    assert_api_error(&res, 422);
}

#[test]
fn scopes_together_with_default_permissions_is_unprocessable() {
    let s = Server::start();
    let f = fixture(&s);

    let res = refused_without_change(&s, f.b, || {
        s.json(
            "POST",
            &allowlist_path(f.b),
            Auth::Admin,
            json!({"source_project_id": f.a, "scopes": ["read_repository"], "default_permissions": true}),
        )
    });

    assert_api_error(&res, 422);
}

#[test]
fn elevated_scopes_are_refused_while_the_instance_forbids_elevation() {
    let s = Server::start();
    let f = fixture(&s);
    s.admin("PATCH", "/api/v1/settings", json!({"job_token_elevation_allowed": false}));
    let elevated = json!({"source_project_id": f.a, "scopes": ["read_repository", "api"]});

    let res = refused_without_change(&s, f.b, || s.json("POST", &allowlist_path(f.b), Auth::Admin, elevated.clone()));

    assert_api_error(&res, 409);
    assert!(res.json["message"].as_str().unwrap().contains("instance"), "{}", res.text);
    s.admin("PATCH", "/api/v1/settings", json!({"job_token_elevation_allowed": true}));
    assert_eq!(s.json("POST", &allowlist_path(f.b), Auth::Admin, elevated).status, 201, "allowed again");
}

#[test]
fn elevated_scopes_are_refused_while_a_group_forbids_elevation_naming_the_group() {
    let s = Server::start();
    let f = fixture(&s);
    admit(&s, f.b, json!({"source_project_id": f.a, "scopes": ["read_repository"]}));

    let view = s.admin(
        "PATCH",
        &format!("/api/v1/groups/{}/job_token_scope", f.grp),
        json!({"job_token_elevation_allowed": false}),
    );

    assert_eq!(view["job_token_elevation_allowed"], json!(false), "{view}");
    let update = refused_without_change(&s, f.b, || {
        s.json(
            "PATCH",
            &format!("{}/{}", allowlist_path(f.b), f.a),
            Auth::Admin,
            json!({"scopes": ["write_repository"]}),
        )
    });
    assert_api_error(&update, 409);
    let message = update.json["message"].as_str().unwrap();
    assert!(message.contains("grp") && !message.contains("instance"), "names the group: {message}");
    let third = project(&s, "c", f.grp, json!({}));
    let add = refused_without_change(&s, f.b, || {
        s.json("POST", &allowlist_path(f.b), Auth::Admin, json!({"source_project_id": third, "scopes": ["api"]}))
    });
    assert_api_error(&add, 409);
}

#[test]
fn the_201st_project_entry_is_refused_while_a_group_entry_still_fits() {
    let s = Server::start();
    let f = fixture(&s);
    let sources = group(&s, "src", None);
    for i in 0..200 {
        let p = project(&s, &format!("p{i}"), sources, json!({}));
        admit(&s, f.b, json!({"source_project_id": p, "scopes": ["read_repository"]}));
    }

    let over = refused_without_change(&s, f.b, || {
        s.json("POST", &allowlist_path(f.b), Auth::Admin, json!({"source_project_id": f.a}))
    });
    let group_entry = s.json(
        "POST",
        &format!("/api/v1/projects/{}/job_token_scope/groups_allowlist", f.b),
        Auth::Admin,
        json!({"source_group_id": f.grp}),
    );

    assert_api_error(&over, 422);
    assert!(over.json["message"].as_str().unwrap().contains("200"), "names the limit: {}", over.text);
    assert_eq!(group_entry.status, 201, "group entries are counted apart: {}", group_entry.text);
    assert_eq!(entries(&s, f.b).0.as_array().unwrap().len(), 200);
}

#[test]
fn patching_an_entry_changes_the_decision_and_deleting_it_denies_again() {
    let s = Server::start();
    let f = fixture(&s);
    admit(&s, f.b, json!({"source_project_id": f.a}));
    assert!(f.allowed(&s, f.b, "write_registry"));
    let entry = format!("{}/{}", allowlist_path(f.b), f.a);

    let patched = s.json("PATCH", &entry, Auth::Admin, json!({"scopes": ["read_repository"]}));

    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.json["scopes"], json!(["read_repository"]));
    assert!(f.allowed(&s, f.b, "read_repository"));
    assert!(!f.allowed(&s, f.b, "write_registry"));

    let deleted = s.json("DELETE", &entry, Auth::Admin, Value::Null);

    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert!(!f.allowed(&s, f.b, "read_repository"));
    assert_api_error(&s.json("DELETE", &entry, Auth::Admin, Value::Null), 404);
}

// ---- 4. authorization_details at mint ----

const ASK_B: &str =
    r#"[{"type":"ci_project_access","project_path":"grp/b","actions":["read_repository","write_package_registry"]}]"#;

#[test]
fn requested_authorization_details_carry_what_the_target_admits_and_nothing_more() {
    let s = Server::start();
    let f = fixture(&s);
    admit(&s, f.b, json!({"source_project_id": f.a, "scopes": ["read_repository"]}));

    let res = mint_as(&s, &f.runner, f.job, &[("authorization_details", ASK_B)]);

    assert_eq!(res.status, 200, "{}", res.text);
    let expected = json!([{"type": "ci_project_access", "project_id": f.b, "project_path": "grp/b",
                           "actions": ["read_repository"]}]);
    assert_eq!(res.json["authorization_details"], expected, "{}", res.text);
    let (_, claims) = decode(res.json["access_token"].as_str().unwrap());
    assert_eq!(claims["authorization_details"], expected);
}

#[test]
fn a_target_that_does_not_admit_the_source_leaves_no_authorization_details() {
    let s = Server::start();
    let f = fixture(&s);

    let res = mint_as(&s, &f.runner, f.job, &[("authorization_details", ASK_B)]);

    assert_eq!(res.status, 200, "{}", res.text);
    assert!(res.json.get("authorization_details").is_none(), "{}", res.text);
    let (_, claims) = decode(res.json["access_token"].as_str().unwrap());
    assert!(claims.get("authorization_details").is_none(), "{claims}");
}

#[test]
fn malformed_authorization_details_are_an_invalid_request() {
    let s = Server::start();
    let f = fixture(&s);
    let other_type = r#"[{"type":"payment_initiation","project_path":"grp/b","actions":["read_repository"]}]"#;

    for bad in ["[{not json", other_type] {
        let res = mint_as(&s, &f.runner, f.job, &[("authorization_details", bad)]);
        common::assert_oauth_error(&res, 400, "invalid_request");
    }
}

#[test]
fn an_outbound_entry_naming_a_project_appears_in_the_token_without_asking() {
    let s = Server::start();
    let f = fixture(&s);
    admit(&s, f.b, json!({"source_project_id": f.a}));
    patch_scope(&s, f.a, json!({"outbound_enabled": true}));
    let res = s.json(
        "POST",
        &format!("/api/v1/projects/{}/job_token_scope/outbound", f.a),
        Auth::Admin,
        json!({"target_project_id": f.b, "scopes": ["read_repository"]}),
    );
    assert_eq!(res.status, 201, "{}", res.text);

    let token = mint_token(&s, &f.runner, f.job, &[]);

    let (_, claims) = decode(&token);
    assert_eq!(
        claims["authorization_details"],
        json!([{"type": "ci_project_access", "project_id": f.b, "project_path": "grp/b", "actions": ["read_repository"]}])
    );
}

#[test]
fn discovery_advertises_the_ci_project_access_type() {
    let s = Server::start();

    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let res = s.get(path, Auth::None);
        assert_eq!(res.status, 200, "{}", res.text);
        assert_eq!(res.json["authorization_details_types_supported"], json!(["ci_project_access"]), "{path}");
    }
}

// ---- 5. authorization log and autopopulate ----

#[test]
fn an_allowed_decision_is_logged_once_per_pair_and_a_denied_one_not_at_all() {
    let s = Server::start();
    let f = fixture(&s);
    let c = project(&s, "c", f.grp, json!({"visibility": "private"}));
    project_member(&s, c, f.dev, 30);
    let c_token = mint_token(&s, &f.runner, job_for(&s, c, f.dev, true), &[]);
    admit(&s, f.b, json!({"source_project_id": f.a}));

    assert!(f.allowed(&s, f.b, "read_repository"));
    assert_eq!(f.ask(&s, &c_token, json!(f.b), "read_repository")["allowed"], json!(false));

    let rows = poll_authorizations(&s, f.b, |rows| !rows_for(rows, f.a).is_empty());
    let logged = rows_for(&rows, f.a);
    assert_eq!(logged.len(), 1, "{rows:?}");
    assert!(logged[0]["count"].as_i64().unwrap() >= 1, "{rows:?}");
    assert_eq!(logged[0]["source_project_path"], "grp/a");
    assert!(logged[0]["last_authorized_at"].is_string() || logged[0]["last_authorized_at"].is_number());

    assert!(f.allowed(&s, f.b, "read_repository"));
    assert!(f.allowed(&s, f.b, "write_registry"));
    std::thread::sleep(Duration::from_millis(1200)); // one writer tick: nothing new may appear

    let rows = poll_authorizations(&s, f.b, |_| true);
    assert_eq!(rows_for(&rows, f.a).len(), 1, "same pair, one row: {rows:?}");
    assert!(rows_for(&rows, c).is_empty(), "a denied decision is not logged: {rows:?}");
    assert_eq!(rows.len(), 1, "{rows:?}");
}

#[test]
fn a_cross_project_grant_at_mint_is_logged() {
    let s = Server::start();
    let f = fixture(&s);
    admit(&s, f.b, json!({"source_project_id": f.a, "scopes": ["read_repository"]}));

    mint_token(&s, &f.runner, f.job, &[("authorization_details", ASK_B)]);

    let rows = poll_authorizations(&s, f.b, |rows| !rows_for(rows, f.a).is_empty());
    assert_eq!(rows_for(&rows, f.a).len(), 1, "{rows:?}");
}

#[test]
fn autopopulate_creates_entries_with_exactly_the_logged_scopes_and_its_removal_restores_the_inbound_setting() {
    let s = Server::start();
    let f = fixture(&s);
    let c = project(&s, "c", f.grp, json!({"visibility": "private"}));
    project_member(&s, c, f.dev, 30);
    let c_token = mint_token(&s, &f.runner, job_for(&s, c, f.dev, true), &[]);
    let manual = admit(&s, f.b, json!({"source_project_id": c, "scopes": ["read_repository"]}));
    patch_scope(&s, f.b, json!({"inbound_enabled": false}));
    assert!(f.allowed(&s, f.b, "read_repository"));
    assert!(f.allowed(&s, f.b, "read_package_registry"));
    assert_eq!(f.ask(&s, &c_token, json!(f.b), "read_repository")["allowed"], json!(true));
    let logged = poll_authorizations(&s, f.b, |rows| rows.len() == 2);
    assert_eq!(logged.len(), 2, "both sources are logged: {logged:?}");

    let res = s.json("POST", &format!("/api/v1/projects/{}/job_token_scope/autopopulate", f.b), Auth::Admin, json!({}));

    assert_eq!(res.status, 200, "{}", res.text);
    let added = res.json["added"].as_array().unwrap();
    assert_eq!(added.len(), 1, "grp/c is already listed: {}", res.text);
    assert_eq!(added[0]["source_project_id"], json!(f.a), "{}", res.text);
    assert_eq!(added[0]["autopopulated"], json!(true), "{}", res.text);
    assert_eq!(names(&added[0]["scopes"]), set(&["read_repository", "read_package_registry"]), "{}", res.text);
    assert_eq!(added[0]["default_permissions"], json!(false), "{}", res.text);
    let view = s.admin("GET", &scope_path(f.b), Value::Null);
    assert_eq!(view["inbound_setting"], json!(true), "{view}");
    assert_eq!(view["inbound_enabled"], json!(true), "{view}");
    assert!(f.allowed(&s, f.b, "read_package_registry"));
    assert!(!f.allowed(&s, f.b, "write_registry"), "grp/a never used write_registry, so its entry lacks it");
    assert_eq!(entries(&s, f.b).0.as_array().unwrap().len(), 2);

    let removed =
        s.json("DELETE", &format!("/api/v1/projects/{}/job_token_scope/autopopulated", f.b), Auth::Admin, Value::Null);

    assert_eq!(removed.status, 204, "{}", removed.text);
    let left = entries(&s, f.b).0;
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
    assert_eq!(left[0]["source_project_id"], json!(c));
    assert_eq!(left[0]["autopopulated"], json!(false));
    assert_eq!(left[0]["created_at"], manual["created_at"]);
    let view = s.admin("GET", &scope_path(f.b), Value::Null);
    assert_eq!(view["inbound_setting"], json!(false), "the setting autopopulate replaced is back: {view}");
    assert!(f.allowed(&s, f.b, "write_registry"), "with the allowlist off again, grp/a is in scope");
}

#[test]
fn removing_autopopulated_entries_keeps_an_inbound_setting_changed_by_hand_since() {
    let s = Server::start();
    let f = fixture(&s);
    patch_scope(&s, f.b, json!({"inbound_enabled": false}));
    assert!(f.allowed(&s, f.b, "read_repository"));
    poll_authorizations(&s, f.b, |rows| !rows.is_empty());
    let res = s.json("POST", &format!("/api/v1/projects/{}/job_token_scope/autopopulate", f.b), Auth::Admin, json!({}));
    assert_eq!(res.status, 200, "{}", res.text);
    patch_scope(&s, f.b, json!({"inbound_enabled": true}));

    let removed =
        s.json("DELETE", &format!("/api/v1/projects/{}/job_token_scope/autopopulated", f.b), Auth::Admin, Value::Null);

    assert_eq!(removed.status, 204, "{}", removed.text);
    let view = s.admin("GET", &scope_path(f.b), Value::Null);
    assert_eq!(view["inbound_setting"], json!(true), "an explicit choice made after autopopulate stays: {view}");
}

#[test]
fn autopopulate_creates_no_entry_for_accesses_visibility_reads_alone_allowed() {
    let s = Server::start();
    let f = fixture(&s);
    let public = project(&s, "pub", f.grp, json!({"visibility": "public"}));
    project_member(&s, public, f.dev, 30);
    patch_scope(&s, public, json!({"inbound_enabled": false}));
    assert!(f.allowed(&s, public, "read_repository"));
    assert!(f.allowed(&s, public, "read_registry"));
    let logged = poll_authorizations(&s, public, |rows| !rows_for(rows, f.a).is_empty());
    assert_eq!(logged.len(), 1, "the access is in the log: {logged:?}");
    assert_eq!(logged[0]["scopes"], json!([]), "visibility reads needed no entry: {logged:?}");

    let res =
        s.json("POST", &format!("/api/v1/projects/{public}/job_token_scope/autopopulate"), Auth::Admin, json!({}));

    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json["added"], json!([]), "{}", res.text);
    assert_eq!(entries(&s, public).0, json!([]));
    assert!(f.allowed(&s, public, "read_repository"), "the visibility reads still pass");
}

#[test]
fn with_outbound_on_an_uncovered_public_target_gets_only_visibility_reads_no_writes() {
    let s = Server::start();
    let f = fixture(&s);
    let public = project(&s, "pub", f.grp, json!({"visibility": "public"}));
    project_member(&s, public, f.dev, 30);
    admit(&s, public, json!({"source_project_id": f.a}));
    assert!(f.allowed(&s, public, "write_registry"), "the entry admits grp/a with default permissions");

    patch_scope(&s, f.a, json!({"outbound_enabled": true}));

    let d = f.decide(&s, public, "write_registry");
    assert_eq!(d["allowed"], json!(false), "{d}");
    assert!(d["reason"].as_str().unwrap().contains("outbound allowlist does not include grp/pub"), "{d}");
    let read = f.decide(&s, public, "read_repository");
    assert_eq!(read["allowed"], json!(true), "{read}");
    assert_eq!(names(&read["granted_scopes"]), set(&VISIBILITY_READS), "{read}");
}

// ---- 6. the log survives a clean shutdown ----

#[test]
fn the_authorization_log_survives_a_clean_shutdown() {
    let s = Server::start();
    let f = fixture(&s);
    admit(&s, f.b, json!({"source_project_id": f.a}));
    assert!(f.allowed(&s, f.b, "read_repository"));
    let rows = poll_authorizations(&s, f.b, |rows| !rows_for(rows, f.a).is_empty());
    assert_eq!(rows_for(&rows, f.a)[0]["count"], json!(1), "{rows:?}");
    // The pair was just written: the next count waits five minutes in memory, unless shutdown flushes it.
    assert!(f.allowed(&s, f.b, "read_repository"));

    let dir = s.terminate();
    let s = Server::start_in(dir, &[]);

    let rows = s.admin("GET", &format!("/api/v1/projects/{}/job_token_scope/authorizations", f.b), Value::Null);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows_for(rows, f.a).len(), 1, "{rows:?}");
    assert_eq!(rows_for(rows, f.a)[0]["count"], json!(2), "the pending count was written at shutdown: {rows:?}");
}
