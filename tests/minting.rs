//! Who gets a token for which job, with which scopes and which expiry (SPEC §4.1, §4.2, §5).
#![allow(clippy::unwrap_used)]

mod common;

use common::{
    assert_oauth_error, decode, group, group_member, job_for, job_view, mint_as, pipeline_jobs, project,
    project_member, runner, user, Auth, Server, World,
};
use serde_json::{json, Value};

const DEFAULT_PROTECTED: &str =
    "read_repository read_registry write_registry read_package_registry write_package_registry";
const READS: &str = "read_repository read_registry read_package_registry";

fn started_at(s: &Server, job: i64) -> i64 {
    let view = job_view(s, job);
    chrono::DateTime::parse_from_rfc3339(view["started_at"].as_str().unwrap()).unwrap().timestamp()
}

// ---- who gets a token ----

#[test]
fn a_blocked_user_gets_no_token() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    s.admin("PATCH", &format!("/api/v1/users/{}", w.user), json!({"state": "blocked"}));

    let res = w.mint(&s, job, &[]);

    assert_oauth_error(&res, 400, "invalid_grant");
    let view = job_view(&s, job);
    assert_eq!(view["status"], "pending", "a refused request does not start the job");
    assert_eq!(view["runner_id"], Value::Null);
}

#[test]
fn a_user_blocked_while_the_job_runs_gets_no_further_token() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    w.mint_ok(&s, job, &[]);
    s.admin("PATCH", &format!("/api/v1/users/{}", w.user), json!({"state": "blocked"}));

    let res = w.mint(&s, job, &[]);

    assert_oauth_error(&res, 400, "invalid_grant");
}

#[test]
fn a_project_runner_gets_no_token_for_a_project_it_does_not_serve() {
    let s = Server::start();
    let w = World::new(&s);
    let elsewhere = project(&s, "elsewhere", w.group, json!({}));
    let r = runner(&s, json!({"runner_type": "project", "project_ids": [elsewhere]}));
    let job = w.job(&s, true);

    let refused = mint_as(&s, &r, job, &[]);

    assert_oauth_error(&refused, 400, "invalid_grant");
    assert_eq!(job_view(&s, job)["status"], "pending");
    let own = job_for(&s, elsewhere, w.user, true);
    assert_eq!(mint_as(&s, &r, own, &[]).status, 200, "it serves its own project");
}

#[test]
fn a_group_runner_serves_projects_in_subgroups_at_any_depth() {
    let s = Server::start();
    let u = user(&s, "dev");
    let top = group(&s, "top", None);
    let mid = group(&s, "mid", Some(top));
    let deep = group(&s, "deep", Some(mid));
    let in_top = project(&s, "a", top, json!({}));
    let in_deep = project(&s, "b", deep, json!({}));
    let r = runner(&s, json!({"runner_type": "group", "group_id": top}));

    let direct = mint_as(&s, &r, job_for(&s, in_top, u, true), &[]);
    let nested = mint_as(&s, &r, job_for(&s, in_deep, u, true), &[]);

    assert_eq!(direct.status, 200, "{}", direct.text);
    assert_eq!(nested.status, 200, "{}", nested.text);
    assert_eq!(decode(nested.json["access_token"].as_str().unwrap()).1["project_path"], "top/mid/deep/b");
}

#[test]
fn a_group_runner_does_not_serve_projects_outside_its_group() {
    let s = Server::start();
    let u = user(&s, "dev");
    let top = group(&s, "top", None);
    let mid = group(&s, "mid", Some(top));
    let other = group(&s, "other", None);
    let in_top = project(&s, "a", top, json!({}));
    let in_other = project(&s, "b", other, json!({}));
    let mid_runner = runner(&s, json!({"runner_type": "group", "group_id": mid}));
    let (job_in_top, job_in_other) = (job_for(&s, in_top, u, true), job_for(&s, in_other, u, true));

    let parent = mint_as(&s, &mid_runner, job_in_top, &[]);
    let sibling = mint_as(&s, &mid_runner, job_in_other, &[]);

    assert_oauth_error(&parent, 400, "invalid_grant");
    assert_oauth_error(&sibling, 400, "invalid_grant");
    assert_eq!(job_view(&s, job_in_top)["status"], "pending");
    assert_eq!(job_view(&s, job_in_other)["status"], "pending");
}

#[test]
fn a_paused_runner_cannot_start_a_pending_job() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    s.admin("PATCH", &format!("/api/v1/runners/{}", w.runner.id), json!({"paused": true}));

    let res = w.mint(&s, job, &[]);

    assert_oauth_error(&res, 400, "invalid_grant");
    assert_eq!(job_view(&s, job)["status"], "pending");
    s.admin("PATCH", &format!("/api/v1/runners/{}", w.runner.id), json!({"paused": false}));
    assert_eq!(w.mint(&s, job, &[]).status, 200, "unpaused, it may start the job");
}

#[test]
fn a_finished_job_gets_no_token() {
    let s = Server::start();
    let w = World::new(&s);
    let never_started = w.job(&s, true);
    s.admin("POST", &format!("/api/v1/jobs/{never_started}/finish"), json!({"status": "canceled"}));

    let res = w.mint(&s, never_started, &[]);

    assert_oauth_error(&res, 400, "invalid_grant");
    assert_eq!(job_view(&s, never_started)["status"], "canceled");
}

#[test]
fn an_unknown_job_gets_no_token() {
    let s = Server::start();
    let w = World::new(&s);

    let res = w.mint(&s, 999_999, &[]);

    assert_oauth_error(&res, 400, "invalid_grant");
}

#[test]
fn a_missing_non_numeric_or_non_positive_job_id_is_an_invalid_request() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);

    let missing = s.form("/oauth/token", w.runner.auth(), &[("grant_type", "client_credentials")]);
    assert_oauth_error(&missing, 400, "invalid_request");
    for bad in ["abc", "-5", "0", "1.5", " 1", "0x1", "99999999999999999999999", &format!("{job}abc")] {
        let res = s.form("/oauth/token", w.runner.auth(), &[("grant_type", "client_credentials"), ("job_id", bad)]);
        assert_oauth_error(&res, 400, "invalid_request");
    }
    let repeated = s.form(
        "/oauth/token",
        w.runner.auth(),
        &[("grant_type", "client_credentials"), ("job_id", &job.to_string()), ("job_id", &job.to_string())],
    );
    assert_oauth_error(&repeated, 400, "invalid_request");
    assert_eq!(job_view(&s, job)["status"], "pending");
}

#[test]
fn an_unknown_grant_type_is_unsupported() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);

    let password = s.form("/oauth/token", w.runner.auth(), &[("grant_type", "password"), ("job_id", &job.to_string())]);
    let missing = s.form("/oauth/token", w.runner.auth(), &[("job_id", &job.to_string())]);

    assert_oauth_error(&password, 400, "unsupported_grant_type");
    assert_oauth_error(&missing, 400, "invalid_request");
    assert_eq!(job_view(&s, job)["status"], "pending");
}

#[test]
fn racing_runners_bind_a_pending_job_to_exactly_one_of_them() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    let runners: Vec<_> = (0..6).map(|_| runner(&s, json!({"runner_type": "instance"}))).collect();

    let statuses: Vec<(i64, u16)> = std::thread::scope(|scope| {
        let handles: Vec<_> = runners.iter().map(|r| scope.spawn(|| (r.id, mint_as(&s, r, job, &[]).status))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let winners: Vec<i64> = statuses.iter().filter(|(_, status)| *status == 200).map(|(id, _)| *id).collect();
    assert_eq!(winners.len(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|(_, status)| *status == 200 || *status == 400), "{statuses:?}");
    let view = job_view(&s, job);
    assert_eq!(view["status"], "running");
    assert_eq!(view["runner_id"], json!(winners[0]));
}

#[test]
fn a_tag_job_with_an_environment_carries_them_in_its_claims() {
    let s = Server::start();
    let w = World::new(&s);
    let p = s.admin(
        "POST",
        &format!("/api/v1/projects/{}/pipelines", w.project),
        json!({"user_id": w.user, "ref": "v1.2.0", "ref_type": "tag", "ref_protected": true, "sha": "ABCDEF01",
               "source": "web", "jobs": [{"name": "deploy", "environment": "production"}, {"name": "test"}]}),
    );
    let (deploy, test) = (p["jobs"][0]["id"].as_i64().unwrap(), p["jobs"][1]["id"].as_i64().unwrap());

    let with_env = decode(&w.mint_ok(&s, deploy, &[])).1;
    let without_env = decode(&w.mint_ok(&s, test, &[])).1;

    assert_eq!(with_env["sub"], "project_path:grp/app:ref_type:tag:ref:v1.2.0");
    assert_eq!(with_env["ref"], "v1.2.0");
    assert_eq!(with_env["ref_type"], "tag");
    assert_eq!(with_env["pipeline_source"], "web");
    assert_eq!(with_env["sha"], "abcdef01");
    assert_eq!(with_env["pipeline_id"], p["id"]);
    assert_eq!(with_env["environment"], "production");
    assert!(without_env.get("environment").is_none_or(Value::is_null), "{without_env}");
}

// ---- which scopes ----

#[test]
fn the_scope_parameter_narrows_and_silently_drops_ungranted_scopes() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);

    let res = w.mint(&s, job, &[("scope", "write_package_registry read_repository api")]);

    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json["scope"], "read_repository write_package_registry");
    let claims = decode(res.json["access_token"].as_str().unwrap()).1;
    assert_eq!(claims["scope"], "read_repository write_package_registry");
}

#[test]
fn an_unknown_requested_scope_is_an_invalid_scope() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);

    let res = w.mint(&s, job, &[("scope", "read_repository admin")]);

    assert_oauth_error(&res, 400, "invalid_scope");
    assert_eq!(job_view(&s, job)["status"], "pending");
}

fn scope_for_member(level: i64, protected: bool) -> Value {
    let s = Server::start();
    let w = World::new(&s);
    let member = user(&s, "member");
    project_member(&s, w.project, member, level);
    let job = job_for(&s, w.project, member, protected);
    let res = w.mint(&s, job, &[]);
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(decode(res.json["access_token"].as_str().unwrap()).1["scope"], res.json["scope"]);
    res.json["scope"].clone()
}

#[test]
fn a_guest_member_gets_a_token_with_an_empty_scope() {
    assert_eq!(scope_for_member(10, true), "");
}

#[test]
fn a_reporter_gets_only_the_read_scopes() {
    assert_eq!(scope_for_member(20, true), READS);
}

#[test]
fn a_developer_and_above_get_the_default_scopes_on_a_protected_ref() {
    assert_eq!(scope_for_member(30, true), DEFAULT_PROTECTED);
    assert_eq!(scope_for_member(50, true), DEFAULT_PROTECTED);
}

#[test]
fn a_maintainer_of_an_ancestor_group_gets_what_a_direct_developer_gets() {
    let s = Server::start();
    let root = group(&s, "root", None);
    let sub = group(&s, "sub", Some(root));
    let p = project(&s, "app", sub, json!({}));
    let (direct, inherited) = (user(&s, "direct"), user(&s, "inherited"));
    project_member(&s, p, direct, 30);
    group_member(&s, root, inherited, 40);
    let r = runner(&s, json!({"runner_type": "instance"}));

    let via_group = mint_as(&s, &r, job_for(&s, p, inherited, true), &[]);
    let via_project = mint_as(&s, &r, job_for(&s, p, direct, true), &[]);

    assert_eq!(via_group.status, 200, "{}", via_group.text);
    assert_eq!(via_group.json["scope"], DEFAULT_PROTECTED);
    assert_eq!(via_group.json["scope"], via_project.json["scope"]);
}

#[test]
fn a_non_member_of_a_public_project_gets_only_the_reads_its_enabled_features_allow() {
    let s = Server::start();
    let w = World::new(&s);
    let public =
        project(&s, "site", w.group, json!({"visibility": "public", "container_registry_access_level": "private"}));
    let outsider = user(&s, "outsider");

    let res = w.mint(&s, job_for(&s, public, outsider, true), &[]);

    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json["scope"], "read_repository read_package_registry");
}

#[test]
fn a_non_member_of_an_internal_project_gets_the_reads_of_its_enabled_features() {
    let s = Server::start();
    let w = World::new(&s);
    let internal =
        project(&s, "tools", w.group, json!({"visibility": "internal", "package_registry_access_level": "disabled"}));
    let outsider = user(&s, "outsider");

    let res = w.mint(&s, job_for(&s, internal, outsider, true), &[]);

    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json["scope"], "read_repository read_registry");
}

#[test]
fn a_non_member_of_a_private_project_gets_an_empty_scope() {
    let s = Server::start();
    let w = World::new(&s);
    let outsider = user(&s, "outsider");

    let res = w.mint(&s, job_for(&s, w.project, outsider, true), &[]);

    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json["scope"], "");
}

#[test]
fn a_disabled_feature_grants_even_a_developer_nothing_on_it() {
    let s = Server::start();
    let w = World::new(&s);
    s.admin(
        "PATCH",
        &format!("/api/v1/projects/{}", w.project),
        json!({"container_registry_access_level": "disabled"}),
    );

    let res = w.mint(&s, w.job(&s, true), &[]);

    assert_eq!(res.json["scope"], "read_repository read_package_registry write_package_registry");
}

#[test]
fn configured_job_token_scopes_with_write_repository_reach_a_protected_developer_job() {
    let s = Server::start();
    let w = World::new(&s);

    let patched = s.json(
        "PATCH",
        &format!("/api/v1/projects/{}/job_token_scope", w.project),
        Auth::Admin,
        json!({"job_token_scopes": ["read_repository", "write_repository"]}),
    );

    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.json["job_token_scopes"], json!(["read_repository", "write_repository"]));
    let res = w.mint(&s, w.job(&s, true), &[]);
    assert_eq!(res.json["scope"], "read_repository write_repository");
    let unprotected = w.mint(&s, w.job(&s, false), &[]);
    assert_eq!(unprotected.json["scope"], "read_repository", "write_repository is protected-only");
}

#[test]
fn elevated_scopes_are_refused_while_the_instance_forbids_elevation_and_accepted_after() {
    let s = Server::start();
    let w = World::new(&s);
    let path = format!("/api/v1/projects/{}/job_token_scope", w.project);
    let elevated = json!({"job_token_scopes": ["read_repository", "write_repository"]});
    s.admin("PATCH", "/api/v1/settings", json!({"job_token_elevation_allowed": false}));

    let refused = s.json("PATCH", &path, Auth::Admin, elevated.clone());

    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.json["error"], "conflict");
    assert!(refused.json["message"].as_str().unwrap().contains("instance"), "{}", refused.text);
    let unchanged = s.get(&path, Auth::Admin).json;
    assert!(!unchanged["job_token_scopes"].as_array().unwrap().contains(&json!("write_repository")));

    s.admin("PATCH", "/api/v1/settings", json!({"job_token_elevation_allowed": true}));
    let accepted = s.json("PATCH", &path, Auth::Admin, elevated);
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    assert_eq!(accepted.json["job_token_scopes"], json!(["read_repository", "write_repository"]));
}

#[test]
fn elevated_scopes_are_clipped_at_mint_time_once_the_instance_forbids_elevation() {
    let s = Server::start();
    let w = World::new(&s);
    s.admin(
        "PATCH",
        &format!("/api/v1/projects/{}/job_token_scope", w.project),
        json!({"job_token_scopes": ["read_repository", "write_repository"]}),
    );
    s.admin("PATCH", "/api/v1/settings", json!({"job_token_elevation_allowed": false}));

    let res = w.mint(&s, w.job(&s, true), &[]);

    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json["scope"], "read_repository");
}

#[test]
fn elevated_scopes_are_refused_while_an_ancestor_group_forbids_elevation_naming_that_group() {
    let s = Server::start();
    let w = World::new(&s);
    let sub = group(&s, "sub", Some(w.group));
    let p = project(&s, "lib", sub, json!({}));
    project_member(&s, p, w.user, 30);
    let forbid = s.json(
        "PATCH",
        &format!("/api/v1/groups/{}/job_token_scope", w.group),
        Auth::Admin,
        json!({"job_token_elevation_allowed": false}),
    );
    assert_eq!(forbid.status, 200, "{}", forbid.text);

    let refused = s.json(
        "PATCH",
        &format!("/api/v1/projects/{p}/job_token_scope"),
        Auth::Admin,
        json!({"job_token_scopes": ["read_repository", "write_repository"]}),
    );

    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.json["message"].as_str().unwrap().contains("grp"), "names the group: {}", refused.text);
    let res = w.mint(&s, job_for(&s, p, w.user, true), &[]);
    assert_eq!(res.json["scope"], DEFAULT_PROTECTED, "the project keeps the default set");
}

#[test]
fn an_unknown_scope_name_in_job_token_scopes_is_unprocessable() {
    let s = Server::start();
    let w = World::new(&s);
    let path = format!("/api/v1/projects/{}/job_token_scope", w.project);
    let before = s.get(&path, Auth::Admin).json;

    let res = s.json("PATCH", &path, Auth::Admin, json!({"job_token_scopes": ["read_repository", "sudo"]}));

    assert_eq!(res.status, 422, "{}", res.text);
    assert_eq!(res.json["error"], "unprocessable");
    assert_eq!(s.get(&path, Auth::Admin).json, before);
}

// ---- expiry ----

/// Mints for a fresh job with the given runner and job timeouts on a project with
/// `build_timeout`; returns `exp - started_at`.
fn lifetime(runner_timeout: Option<i64>, job_timeout: Option<i64>, build_timeout: i64) -> i64 {
    let s = Server::start();
    let u = user(&s, "dev");
    let g = group(&s, "g", None);
    let p = project(&s, "app", g, json!({"build_timeout": build_timeout}));
    project_member(&s, p, u, 30);
    let r = runner(&s, json!({"runner_type": "instance", "maximum_timeout": runner_timeout}));
    let job = match job_timeout {
        Some(t) => pipeline_jobs(&s, p, u, true, json!([{"name": "build", "timeout": t}]))[0],
        None => pipeline_jobs(&s, p, u, true, json!([{"name": "build"}]))[0],
    };
    let res = mint_as(&s, &r, job, &[]);
    assert_eq!(res.status, 200, "{}", res.text);
    let claims = decode(res.json["access_token"].as_str().unwrap()).1;
    let exp = claims["exp"].as_i64().unwrap();
    assert_eq!(res.json["expires_in"].as_i64().unwrap(), exp - claims["iat"].as_i64().unwrap());
    exp - started_at(&s, job)
}

#[test]
fn expiry_uses_the_runner_timeout_when_it_exceeds_the_build_timeout() {
    assert_eq!(lifetime(Some(7200), None, 3600), 7200 + 3600);
}

#[test]
fn expiry_uses_the_job_timeout_when_it_exceeds_the_runner_timeout() {
    assert_eq!(lifetime(Some(600), Some(5000), 3600), 5000 + 3600);
}

#[test]
fn expiry_uses_the_job_timeout_instead_of_the_build_timeout_even_when_smaller() {
    assert_eq!(lifetime(Some(900), Some(300), 3600), 900 + 3600);
    assert_eq!(lifetime(None, Some(300), 3600), 300 + 3600);
}

#[test]
fn expiry_falls_back_to_the_build_timeout_when_runner_and_job_set_none() {
    assert_eq!(lifetime(None, None, 1800), 1800 + 3600);
}
