//! The admin API's wire shapes (SPEC Appendix A) against the real server.
#![allow(clippy::unwrap_used)]

mod common;

use common::{group, job_view, project, runner, user, Auth, Server, World};
use serde_json::{json, Value};

#[test]
fn users_are_created_read_blocked_and_reactivated() {
    let s = Server::start();

    let created = s.json("POST", "/api/v1/users", Auth::Admin, json!({"username": "alice"}));
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["id"].as_i64().expect("numeric id");
    assert_eq!(created.json["username"], "alice");
    assert_eq!(created.json["state"], "active");

    let read = s.get(&format!("/api/v1/users/{id}"), Auth::Admin);
    assert_eq!(read.status, 200);
    assert_eq!(
        (read.json["id"].as_i64(), &read.json["username"], &read.json["state"]),
        (Some(id), &json!("alice"), &json!("active"))
    );

    let blocked = s.json("PATCH", &format!("/api/v1/users/{id}"), Auth::Admin, json!({"state": "blocked"}));
    assert_eq!(blocked.status, 200, "{}", blocked.text);
    assert_eq!(blocked.json["state"], "blocked");
    assert_eq!(blocked.json["id"], json!(id));
    assert_eq!(s.get(&format!("/api/v1/users/{id}"), Auth::Admin).json["state"], "blocked");

    let active = s.json("PATCH", &format!("/api/v1/users/{id}"), Auth::Admin, json!({"state": "active"}));
    assert_eq!(active.status, 200);
    assert_eq!(s.get(&format!("/api/v1/users/{id}"), Auth::Admin).json["state"], "active");
}

#[test]
fn a_duplicate_username_is_a_conflict() {
    let s = Server::start();
    let first = user(&s, "alice");

    let again = s.json("POST", "/api/v1/users", Auth::Admin, json!({"username": "alice"}));

    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.json["error"], "conflict");
    assert!(again.json["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(s.get(&format!("/api/v1/users/{}", first + 1), Auth::Admin).status, 404, "no second user was made");
}

#[test]
fn nested_groups_carry_their_full_path_and_parent() {
    let s = Server::start();

    let a = s.json("POST", "/api/v1/groups", Auth::Admin, json!({"path": "a"}));
    assert_eq!(a.status, 201, "{}", a.text);
    let a_id = a.json["id"].as_i64().unwrap();
    let b = s.admin("POST", "/api/v1/groups", json!({"path": "b", "parent_id": a_id}));
    let b_id = b["id"].as_i64().unwrap();
    let c = s.json("POST", "/api/v1/groups", Auth::Admin, json!({"path": "c", "parent_id": b_id}));

    assert_eq!(a.json["full_path"], "a");
    assert_eq!(a.json["parent_id"], Value::Null);
    assert_eq!(b["full_path"], "a/b");
    assert_eq!(b["parent_id"], json!(a_id));
    assert_eq!(c.status, 201);
    assert_eq!(c.json["path"], "c");
    assert_eq!(c.json["full_path"], "a/b/c");
    assert_eq!(c.json["parent_id"], json!(b_id));
    let read = s.get(&format!("/api/v1/groups/{}", c.json["id"]), Auth::Admin);
    assert_eq!(read.status, 200);
    assert_eq!(read.json["full_path"], "a/b/c");
    assert_eq!(read.json["parent_id"], json!(b_id));
}

#[test]
fn a_duplicate_group_path_under_the_same_parent_is_a_conflict() {
    let s = Server::start();
    let a = group(&s, "a", None);
    group(&s, "b", Some(a));

    let again = s.json("POST", "/api/v1/groups", Auth::Admin, json!({"path": "b", "parent_id": a}));
    let elsewhere = s.json("POST", "/api/v1/groups", Auth::Admin, json!({"path": "b"}));

    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.json["error"], "conflict");
    assert_eq!(elsewhere.status, 201, "the same path under another parent is a different group");
    assert_eq!(elsewhere.json["full_path"], "b");
}

#[test]
fn a_new_project_is_private_with_an_hour_build_timeout_and_every_feature_enabled() {
    let s = Server::start();
    let a = group(&s, "a", None);
    let b = group(&s, "b", Some(a));

    let res = s.json("POST", "/api/v1/projects", Auth::Admin, json!({"path": "app", "namespace_id": b}));

    assert_eq!(res.status, 201, "{}", res.text);
    let p = &res.json;
    assert!(p["id"].is_i64());
    assert_eq!(p["path"], "app");
    assert_eq!(p["path_with_namespace"], "a/b/app");
    assert_eq!(p["visibility"], "private");
    assert_eq!(p["build_timeout"], 3600);
    assert_eq!(p["repository_access_level"], "enabled");
    assert_eq!(p["container_registry_access_level"], "enabled");
    assert_eq!(p["package_registry_access_level"], "enabled");
    let read = s.get(&format!("/api/v1/projects/{}", p["id"]), Auth::Admin);
    assert_eq!(read.status, 200);
    assert_eq!(&read.json, p);
}

#[test]
fn a_project_created_with_options_keeps_them() {
    let s = Server::start();
    let g = group(&s, "g", None);

    let res = s.json(
        "POST",
        "/api/v1/projects",
        Auth::Admin,
        json!({"path": "lib", "namespace_id": g, "visibility": "internal", "build_timeout": 600,
               "repository_access_level": "private", "container_registry_access_level": "disabled",
               "package_registry_access_level": "enabled"}),
    );

    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.json["visibility"], "internal");
    assert_eq!(res.json["build_timeout"], 600);
    assert_eq!(res.json["repository_access_level"], "private");
    assert_eq!(res.json["container_registry_access_level"], "disabled");
    assert_eq!(res.json["package_registry_access_level"], "enabled");
}

#[test]
fn patching_a_project_changes_the_given_fields_and_keeps_the_rest() {
    let s = Server::start();
    let g = group(&s, "g", None);
    let p = project(&s, "app", g, json!({}));

    let res = s.json(
        "PATCH",
        &format!("/api/v1/projects/{p}"),
        Auth::Admin,
        json!({"visibility": "public", "build_timeout": 120, "container_registry_access_level": "private"}),
    );

    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json["visibility"], "public");
    assert_eq!(res.json["build_timeout"], 120);
    assert_eq!(res.json["container_registry_access_level"], "private");
    assert_eq!(res.json["repository_access_level"], "enabled");
    assert_eq!(res.json["package_registry_access_level"], "enabled");
    assert_eq!(res.json["path_with_namespace"], "g/app");
    let read = s.get(&format!("/api/v1/projects/{p}"), Auth::Admin).json;
    assert_eq!(read, res.json);
}

#[test]
fn project_memberships_are_put_replaced_and_deleted() {
    let s = Server::start();
    let w = World::new(&s);
    let other = user(&s, "other");
    let path = format!("/api/v1/projects/{}/members/{other}", w.project);

    let put = s.json("PUT", &path, Auth::Admin, json!({"access_level": 20}));
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.json, json!({"user_id": other, "access_level": 20}));
    let replaced = s.json("PUT", &path, Auth::Admin, json!({"access_level": 40}));
    assert_eq!(replaced.json, json!({"user_id": other, "access_level": 40}));

    let deleted = s.json("DELETE", &path, Auth::Admin, Value::Null);
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert!(deleted.text.is_empty());

    let job = common::job_for(&s, w.project, other, true);
    assert_eq!(w.mint(&s, job, &[]).json["scope"], "", "a removed member holds nothing on a private project");
}

#[test]
fn deleting_a_missing_membership_is_not_found() {
    let s = Server::start();
    let w = World::new(&s);
    let other = user(&s, "other");

    let project =
        s.json("DELETE", &format!("/api/v1/projects/{}/members/{other}", w.project), Auth::Admin, Value::Null);
    let group = s.json("DELETE", &format!("/api/v1/groups/{}/members/{other}", w.group), Auth::Admin, Value::Null);

    assert_eq!(project.status, 404, "{}", project.text);
    assert_eq!(project.json["error"], "not_found");
    assert_eq!(group.status, 404, "{}", group.text);
    assert_eq!(group.json["error"], "not_found");
}

#[test]
fn group_memberships_are_put_and_deleted() {
    let s = Server::start();
    let w = World::new(&s);
    let other = user(&s, "other");
    let path = format!("/api/v1/groups/{}/members/{other}", w.group);

    let put = s.json("PUT", &path, Auth::Admin, json!({"access_level": 50}));
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.json, json!({"user_id": other, "access_level": 50}));
    let job = common::job_for(&s, w.project, other, true);
    assert_ne!(w.mint(&s, job, &[]).json["scope"], "", "a group Owner holds rights on the group's project");

    let deleted = s.json("DELETE", &path, Auth::Admin, Value::Null);
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(s.json("DELETE", &path, Auth::Admin, Value::Null).status, 404);
}

#[test]
fn a_runner_secret_is_shown_at_creation_and_never_again() {
    let s = Server::start();

    let created = s.json(
        "POST",
        "/api/v1/runners",
        Auth::Admin,
        json!({"runner_type": "instance", "maximum_timeout": 600, "description": "linux"}),
    );

    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["id"].as_i64().unwrap();
    let client_id = created.json["client_id"].as_str().unwrap();
    let secret = created.json["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 20, "a high-entropy secret: {secret}");
    assert_eq!(created.json["runner_type"], "instance");
    assert_eq!(created.json["maximum_timeout"], 600);
    assert_eq!(created.json["description"], "linux");
    assert_eq!(created.json["paused"], false);

    let read = s.get(&format!("/api/v1/runners/{id}"), Auth::Admin);
    assert_eq!(read.status, 200);
    assert_eq!(read.json["client_id"], client_id);
    assert!(read.json.get("client_secret").is_none(), "{}", read.text);
    assert!(!read.text.contains(secret));
}

#[test]
fn a_group_runner_without_group_id_is_unprocessable() {
    let s = Server::start();

    let res = s.json("POST", "/api/v1/runners", Auth::Admin, json!({"runner_type": "group"}));

    assert_eq!(res.status, 422, "{}", res.text);
    assert_eq!(res.json["error"], "unprocessable");
    assert!(res.json["message"].is_string());
}

#[test]
fn a_project_runner_without_project_ids_is_unprocessable() {
    let s = Server::start();

    let missing = s.json("POST", "/api/v1/runners", Auth::Admin, json!({"runner_type": "project"}));
    let empty = s.json("POST", "/api/v1/runners", Auth::Admin, json!({"runner_type": "project", "project_ids": []}));

    assert_eq!(missing.status, 422, "{}", missing.text);
    assert_eq!(missing.json["error"], "unprocessable");
    assert_eq!(empty.status, 422, "{}", empty.text);
}

#[test]
fn group_and_project_runners_record_what_they_serve() {
    let s = Server::start();
    let g = group(&s, "g", None);
    let p = project(&s, "app", g, json!({}));

    let by_group = s.json("POST", "/api/v1/runners", Auth::Admin, json!({"runner_type": "group", "group_id": g}));
    let by_project =
        s.json("POST", "/api/v1/runners", Auth::Admin, json!({"runner_type": "project", "project_ids": [p]}));

    assert_eq!(by_group.status, 201, "{}", by_group.text);
    assert_eq!(by_group.json["runner_type"], "group");
    assert_eq!(by_group.json["group_id"], json!(g));
    assert_eq!(by_project.status, 201, "{}", by_project.text);
    assert_eq!(by_project.json["runner_type"], "project");
    assert_eq!(by_project.json["project_ids"], json!([p]));
}

#[test]
fn a_resource_server_gets_working_credentials() {
    let s = Server::start();

    let res = s.json("POST", "/api/v1/resource_servers", Auth::Admin, json!({"name": "registry"}));

    assert_eq!(res.status, 201, "{}", res.text);
    assert!(res.json["id"].is_i64());
    let (id, secret) = (res.json["client_id"].as_str().unwrap(), res.json["client_secret"].as_str().unwrap());
    let introspect = s.form("/oauth/introspect", Auth::Basic(id, secret), &[("token", "x")]);
    assert_eq!(introspect.status, 200, "{}", introspect.text);
    assert_eq!(introspect.json, json!({"active": false}));
}

#[test]
fn a_pipeline_creates_pending_jobs_that_can_be_read() {
    let s = Server::start();
    let w = World::new(&s);

    let res = s.json(
        "POST",
        &format!("/api/v1/projects/{}/pipelines", w.project),
        Auth::Admin,
        json!({"user_id": w.user, "ref": "v1.0", "ref_type": "tag", "ref_protected": true, "sha": "abc123",
               "source": "web", "jobs": [{"name": "build"},
               {"name": "deploy", "stage": "deploy", "timeout": 900, "environment": "production"}]}),
    );

    assert_eq!(res.status, 201, "{}", res.text);
    let pipeline = res.json["id"].as_i64().unwrap();
    let jobs = res.json["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!((&jobs[0]["name"], &jobs[0]["status"]), (&json!("build"), &json!("pending")));
    assert_eq!((&jobs[1]["name"], &jobs[1]["status"]), (&json!("deploy"), &json!("pending")));
    let job = jobs[1]["id"].as_i64().unwrap();
    let read = s.get(&format!("/api/v1/jobs/{job}"), Auth::Admin);
    assert_eq!(read.status, 200);
    assert_eq!(read.json["id"], json!(job));
    assert_eq!(read.json["status"], "pending");
    assert_eq!(read.json["pipeline_id"], json!(pipeline));
    assert_eq!(read.json["runner_id"], Value::Null);
    assert_eq!(read.json["started_at"], Value::Null);
    assert_eq!(read.json["finished_at"], Value::Null);
}

#[test]
fn finishing_a_job_records_its_status_and_end() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    w.mint_ok(&s, job, &[]);

    let res = s.json("POST", &format!("/api/v1/jobs/{job}/finish"), Auth::Admin, json!({"status": "failed"}));

    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json["status"], "failed");
    let view = job_view(&s, job);
    assert_eq!(view["status"], "failed");
    assert!(view["finished_at"].is_string(), "{view}");
    assert_eq!(view["runner_id"], json!(w.runner.id));
}

#[test]
fn instance_settings_are_read_and_patched() {
    let s = Server::start();

    let defaults = s.get("/api/v1/settings", Auth::Admin);
    assert_eq!(defaults.status, 200);
    assert_eq!(defaults.json["enforce_job_token_allowlist"], false);
    assert_eq!(defaults.json["job_token_elevation_allowed"], true);

    let patched = s.json("PATCH", "/api/v1/settings", Auth::Admin, json!({"job_token_elevation_allowed": false}));
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.json["job_token_elevation_allowed"], false);
    assert_eq!(patched.json["enforce_job_token_allowlist"], false, "an absent field is unchanged");

    let enforced = s.json("PATCH", "/api/v1/settings", Auth::Admin, json!({"enforce_job_token_allowlist": true}));
    assert_eq!(enforced.json["enforce_job_token_allowlist"], true);
    assert_eq!(enforced.json["job_token_elevation_allowed"], false);
    let read = s.get("/api/v1/settings", Auth::Admin).json;
    assert_eq!(read["enforce_job_token_allowlist"], true);
    assert_eq!(read["job_token_elevation_allowed"], false);
}

#[test]
fn pausing_a_runner_is_shown_on_the_runner() {
    let s = Server::start();
    let r = runner(&s, json!({"runner_type": "instance"}));

    let res = s.json("PATCH", &format!("/api/v1/runners/{}", r.id), Auth::Admin, json!({"paused": true}));

    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json["paused"], true);
    assert_eq!(s.get(&format!("/api/v1/runners/{}", r.id), Auth::Admin).json["paused"], true);
}
