//! Audit events (issue 9 point 3): every change records one append-only event with its actor,
//! target, before and after, in the change's own transaction; refused changes record nothing;
//! the admin and the owners' Maintainers read them, filtered and paginated; no secret is ever in
//! one.
#![allow(clippy::unwrap_used)]

mod common;

use common::{cli_in, database_of, group, personal_access_token, project, project_member, user, Auth, Server};
use serde_json::{json, Value};

/// Every event `path` lists (all pages), newest first.
fn events(s: &Server, path: &str, auth: Auth) -> Vec<Value> {
    let mut all = Vec::new();
    for page in 1.. {
        let sep = if path.contains('?') { '&' } else { '?' };
        let res = s.get(&format!("{path}{sep}per_page=100&page={page}"), auth);
        assert_eq!(res.status, 200, "{path}: {}", res.text);
        let items = res.json.as_array().unwrap().clone();
        all.extend(items);
        if res.header("x-next-page").unwrap_or("").is_empty() {
            return all;
        }
    }
    unreachable!()
}

/// The admin's list, filtered by `query` (e.g. `action`-free filters like `target_type=user`).
fn admin_events(s: &Server, query: &str) -> Vec<Value> {
    match query {
        "" => events(s, "/api/v1/audit_events", Auth::Admin),
        query => events(s, &format!("/api/v1/audit_events?{query}"), Auth::Admin),
    }
}

/// The events with `action`, newest first.
fn with_action<'a>(events: &'a [Value], action: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["action"] == action).collect()
}

fn total(s: &Server) -> u64 {
    let res = s.get("/api/v1/audit_events?per_page=1", Auth::Admin);
    assert_eq!(res.status, 200, "{}", res.text);
    res.header("x-total").unwrap().parse().unwrap()
}

fn one<'a>(events: &'a [Value], action: &str) -> &'a Value {
    let found = with_action(events, action);
    assert_eq!(found.len(), 1, "exactly one {action}: {events:#?}");
    found[0]
}

#[test]
fn admin_changes_each_record_one_event_with_the_admin_as_author_and_their_before_and_after() {
    let s = Server::start();
    let alice = user(&s, "alice");
    s.admin("PATCH", &format!("/api/v1/users/{alice}"), json!({"state": "blocked"}));
    s.admin("PATCH", "/api/v1/settings", json!({"enforce_job_token_allowlist": true}));
    let grp = group(&s, "grp", None);
    let app = project(&s, "app", grp, json!({}));
    s.admin("PATCH", &format!("/api/v1/projects/{app}"), json!({"visibility": "internal"}));
    project_member(&s, app, alice, 30);
    project_member(&s, app, alice, 40);
    s.admin("DELETE", &format!("/api/v1/projects/{app}/members/{alice}"), Value::Null);
    s.admin("PUT", &format!("/api/v1/groups/{grp}/members/{alice}"), json!({"access_level": 20}));

    // Everything but the first start's keys (the system's: job-token and ID-token keys).
    let all = admin_events(&s, "actor=admin");
    assert_eq!(all.len(), admin_events(&s, "").len() - 2);
    for e in &all {
        assert_eq!(e["author"], json!({"type": "admin", "id": null, "name": "admin"}), "{e}");
        assert!(e["created_at"].as_str().unwrap().ends_with('Z'), "{e}");
    }
    let created = one(&all, "user.created");
    assert_eq!((created["entity_type"].clone(), created["entity_id"].clone()), (json!("user"), json!(alice)));
    assert_eq!(created["entity_path"], "alice");
    assert_eq!(created["details"]["after"]["username"], "alice");
    let blocked = one(&all, "user.state_changed");
    assert_eq!(blocked["details"], json!({"before": {"state": "active"}, "after": {"state": "blocked"}}));
    let settings = one(&all, "instance_settings.updated");
    assert_eq!(settings["details"]["before"]["enforce_job_token_allowlist"], false);
    assert_eq!(settings["details"]["after"]["enforce_job_token_allowlist"], true);
    assert_eq!(one(&all, "group.created")["group_id"], grp);
    assert_eq!(one(&all, "project.created")["entity_path"], "grp/app");
    let updated = one(&all, "project.updated");
    assert_eq!(updated["details"]["before"]["visibility"], "private");
    assert_eq!(updated["details"]["after"]["visibility"], "internal");
    let added = one(&all, "project.member.added");
    assert_eq!(added["details"]["before"], Value::Null);
    assert_eq!(added["details"]["after"], json!({"user_id": alice, "username": "alice", "access_level": 30}));
    assert_eq!((added["entity_type"].clone(), added["project_id"].clone()), (json!("project"), json!(app)));
    let changed = one(&all, "project.member.updated");
    assert_eq!(changed["details"]["before"]["access_level"], 30);
    assert_eq!(changed["details"]["after"]["access_level"], 40);
    let removed = one(&all, "project.member.removed");
    assert_eq!(
        (removed["details"]["before"]["access_level"].clone(), removed["details"]["after"].clone()),
        (json!(40), Value::Null)
    );
    assert_eq!(one(&all, "group.member.added")["group_id"], grp);
    // Newest first, by id.
    let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
}

#[test]
fn a_change_that_changes_nothing_records_nothing() {
    let s = Server::start();
    let alice = user(&s, "alice");
    let before = total(&s);
    s.admin("PATCH", &format!("/api/v1/users/{alice}"), json!({"state": "active"}));
    s.admin("PATCH", "/api/v1/settings", json!({}));
    assert_eq!(total(&s), before);
}

#[test]
fn credential_changes_are_recorded_without_their_secrets() {
    let s = Server::start();
    let alice = user(&s, "alice");
    let mut secrets = Vec::new();
    let pat = s.admin("POST", &format!("/api/v1/users/{alice}/personal_access_tokens"), json!({"name": "ci"}));
    secrets.push(pat["token"].as_str().unwrap().to_owned());
    let pat_id = pat["id"].as_i64().unwrap();
    s.admin("DELETE", &format!("/api/v1/users/{alice}/personal_access_tokens/{pat_id}"), Value::Null);
    let runner = s.admin("POST", "/api/v1/runners", json!({"runner_type": "instance", "description": "r1"}));
    let runner_id = runner["id"].as_i64().unwrap();
    secrets.push(runner["client_secret"].as_str().unwrap().to_owned());
    s.admin("PATCH", &format!("/api/v1/runners/{runner_id}"), json!({"paused": true}));
    let reset = s.admin("POST", &format!("/api/v1/runners/{runner_id}/reset_secret"), Value::Null);
    secrets.push(reset["client_secret"].as_str().unwrap().to_owned());
    let rs = s.admin("POST", "/api/v1/resource_servers", json!({"name": "registry"}));
    let rs_id = rs["id"].as_i64().unwrap();
    secrets.push(rs["client_secret"].as_str().unwrap().to_owned());
    s.admin("PATCH", &format!("/api/v1/resource_servers/{rs_id}"), json!({"name": "registry-2"}));
    let reset = s.admin("POST", &format!("/api/v1/resource_servers/{rs_id}/reset_secret"), Value::Null);
    secrets.push(reset["client_secret"].as_str().unwrap().to_owned());
    s.admin("DELETE", &format!("/api/v1/resource_servers/{rs_id}"), Value::Null);

    let all = admin_events(&s, "");
    let created = one(&all, "personal_access_token.created");
    assert_eq!((created["entity_id"].clone(), created["entity_path"].clone()), (json!(pat_id), json!("ci")));
    let revoked = one(&all, "personal_access_token.revoked");
    assert_eq!(revoked["details"]["before"]["revoked_at"], Value::Null);
    assert!(revoked["details"]["after"]["revoked_at"].is_string(), "{revoked}");
    assert_eq!(one(&all, "runner.created")["entity_id"], runner_id);
    let paused = one(&all, "runner.updated");
    assert_eq!(
        (paused["details"]["before"]["paused"].clone(), paused["details"]["after"]["paused"].clone()),
        (json!(false), json!(true))
    );
    one(&all, "runner.secret_reset");
    one(&all, "resource_server.created");
    assert_eq!(one(&all, "resource_server.updated")["details"]["after"]["name"], "registry-2");
    one(&all, "resource_server.secret_reset");
    let deleted = one(&all, "resource_server.deleted");
    assert_eq!(
        (deleted["details"]["before"]["name"].clone(), deleted["details"]["after"].clone()),
        (json!("registry-2"), Value::Null)
    );

    // No secret, in the API's view or in the table itself.
    let listed = serde_json::to_string(&all).unwrap();
    let stored = stored_audit_text(&s);
    for secret in &secrets {
        assert!(!listed.contains(secret.as_str()), "a secret is in an audit event");
        assert!(!stored.contains(secret.as_str()), "a secret is in the audit table");
    }
    for word in ["secret_hash", "token_hash", "client_secret"] {
        assert!(!stored.contains(word), "{word} in the audit table");
    }
}

/// Every column of every audit row, as text, read from the database directly.
fn stored_audit_text(s: &Server) -> String {
    let url = database_of(&s.dir);
    let sql = "SELECT coalesce(actor_name, '') || ' ' || action || ' ' || coalesce(target_path, '') || ' ' || \
               coalesce(before_json, '') || ' ' || coalesce(after_json, '') FROM audit_events";
    if url.starts_with("postgres") {
        let rows = common::pg::connect(&url).query(sql, &[]).unwrap();
        return rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>().join("\n");
    }
    let conn = rusqlite::Connection::open(&url).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("\n")
}

/// Runs one statement on the server's database directly; the database's answer.
fn try_sql(s: &Server, statement: &str) -> Result<u64, String> {
    let url = database_of(&s.dir);
    if url.starts_with("postgres") {
        return common::pg::connect(&url).execute(statement, &[]).map_err(|e| format!("{e:?}"));
    }
    let conn = rusqlite::Connection::open(&url).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    conn.execute(statement, []).map(|n| n as u64).map_err(|e| e.to_string())
}

#[test]
fn the_database_refuses_to_update_or_delete_audit_events() {
    let s = Server::start();
    user(&s, "alice");
    let before = admin_events(&s, "");
    assert!(!before.is_empty());
    for statement in [
        "UPDATE audit_events SET action = 'nothing.happened'",
        "UPDATE audit_events SET after_json = NULL WHERE action = 'user.created'",
        "DELETE FROM audit_events",
        "DELETE FROM audit_events WHERE action = 'user.created'",
    ] {
        let refused = try_sql(&s, statement).unwrap_err();
        assert!(refused.contains("append-only"), "{statement}: {refused}");
    }
    if common::on_postgres() {
        assert!(try_sql(&s, "TRUNCATE audit_events").unwrap_err().contains("append-only"));
    }
    assert_eq!(admin_events(&s, ""), before);
}

/// Projects `grp/app` (private; a Maintainer and a Developer) and `grp/src` (the Maintainer is a
/// Developer there), their tokens, and `other/lib` the Maintainer does not belong to.
struct Team {
    grp: i64,
    app: i64,
    lib: i64,
    src: i64,
    maintainer: i64,
    maintainer_pat: String,
    developer_pat: String,
}

fn team(s: &Server) -> Team {
    let grp = group(s, "grp", None);
    let app = project(s, "app", grp, json!({}));
    let src = project(s, "src", grp, json!({}));
    let other = group(s, "other", None);
    let lib = project(s, "lib", other, json!({}));
    let maintainer = user(s, "maya");
    let developer = user(s, "dev");
    project_member(s, app, maintainer, 40);
    project_member(s, src, maintainer, 30);
    project_member(s, app, developer, 30);
    // Guest on the group: it sees the group (to list it as a source) but may not edit it.
    s.admin("PUT", &format!("/api/v1/groups/{grp}/members/{maintainer}"), json!({"access_level": 10}));
    Team {
        grp,
        app,
        lib,
        src,
        maintainer,
        maintainer_pat: personal_access_token(s, maintainer),
        developer_pat: personal_access_token(s, developer),
    }
}

#[test]
fn job_token_scope_edits_record_the_maintainer_as_author_on_the_project() {
    let s = Server::start();
    let t = team(&s);
    let pat = Auth::Bearer(&t.maintainer_pat);
    let scope = format!("/api/v1/projects/{}/job_token_scope", t.app);
    let ok = |res: common::Res| assert!(res.status < 300, "{}", res.text);
    ok(s.json("PATCH", &scope, pat, json!({"inbound_enabled": false})));
    ok(s.json(
        "POST",
        &format!("{scope}/allowlist"),
        pat,
        json!({"source_project_id": t.src, "scopes": ["read_repository"]}),
    ));
    ok(s.json("PATCH", &format!("{scope}/allowlist/{}", t.src), pat, json!({"default_permissions": true})));
    ok(s.json("DELETE", &format!("{scope}/allowlist/{}", t.src), pat, Value::Null));
    ok(s.json("POST", &format!("{scope}/groups_allowlist"), pat, json!({"source_group_id": t.grp})));
    ok(s.json(
        "POST",
        &format!("{scope}/outbound"),
        pat,
        json!({"target_project_id": t.src, "scopes": ["read_repository"]}),
    ));
    ok(s.json("DELETE", &format!("{scope}/outbound/projects/{}", t.src), pat, Value::Null));

    let all = events(&s, &format!("/api/v1/projects/{}/audit_events", t.app), pat);
    let scoped: Vec<Value> = all.iter().filter(|e| e["author"]["type"] == "user").cloned().collect();
    assert_eq!(scoped.len(), 7, "{scoped:#?}");
    for e in &scoped {
        assert_eq!(e["author"], json!({"type": "user", "id": t.maintainer, "name": "maya"}));
        assert_eq!((e["entity_type"].clone(), e["entity_id"].clone()), (json!("project"), json!(t.app)));
        assert_eq!((e["entity_path"].clone(), e["project_id"].clone()), (json!("grp/app"), json!(t.app)));
    }
    let settings = one(&scoped, "job_token_scope.settings.updated");
    assert_eq!(settings["details"]["before"]["inbound_setting"], Value::Null);
    assert_eq!(settings["details"]["after"]["inbound_setting"], false);
    let added = one(&scoped, "job_token_scope.allowlist.added");
    assert_eq!(added["details"]["before"], Value::Null);
    assert_eq!(added["details"]["after"]["source_path"], "grp/src");
    assert_eq!(added["details"]["after"]["scopes"], json!(["read_repository"]));
    let updated = one(&scoped, "job_token_scope.allowlist.updated");
    assert_eq!(updated["details"]["before"]["default_permissions"], false);
    assert_eq!(updated["details"]["after"]["default_permissions"], true);
    let removed = one(&scoped, "job_token_scope.allowlist.removed");
    assert_eq!(
        (removed["details"]["before"]["source_id"].clone(), removed["details"]["after"].clone()),
        (json!(t.src), Value::Null)
    );
    assert_eq!(one(&scoped, "job_token_scope.groups_allowlist.added")["details"]["after"]["source_path"], "grp");
    assert_eq!(one(&scoped, "job_token_scope.outbound.added")["details"]["after"]["target_path"], "grp/src");
    assert_eq!(one(&scoped, "job_token_scope.outbound.removed")["details"]["after"], Value::Null);

    // A group's settings, by the admin, land on the group's list.
    s.admin(
        "PATCH",
        &format!("/api/v1/groups/{}/job_token_scope", t.grp),
        json!({"job_token_elevation_allowed": false}),
    );
    let on_group = events(&s, &format!("/api/v1/groups/{}/audit_events", t.grp), Auth::Admin);
    let changed = one(&on_group, "job_token_scope.settings.updated");
    assert_eq!((changed["entity_type"].clone(), changed["group_id"].clone()), (json!("group"), json!(t.grp)));
    assert_eq!(changed["details"]["after"]["job_token_elevation_allowed"], false);
}

#[test]
fn refused_changes_record_nothing() {
    let s = Server::start();
    let t = team(&s);
    let scope = format!("/api/v1/projects/{}/job_token_scope", t.app);
    s.admin("POST", &format!("{scope}/allowlist"), json!({"source_project_id": t.src}));
    let before = total(&s);
    let refusals = [
        // duplicate entry: 409
        s.json("POST", &format!("{scope}/allowlist"), Auth::Admin, json!({"source_project_id": t.src})),
        // a Developer may not edit: 403
        s.json("PATCH", &scope, Auth::Bearer(&t.developer_pat), json!({"outbound_enabled": true})),
        // unknown scope: 422
        s.json("PATCH", &scope, Auth::Admin, json!({"job_token_scopes": ["nope"]})),
        // a member who is not a user: 404
        s.json("PUT", &format!("/api/v1/projects/{}/members/999", t.app), Auth::Admin, json!({"access_level": 30})),
        // removing a member that is not one: 404
        s.json("DELETE", &format!("/api/v1/projects/{}/members/999", t.lib), Auth::Admin, Value::Null),
        // a taken username: 409
        s.json("POST", "/api/v1/users", Auth::Admin, json!({"username": "MAYA"})),
    ];
    for res in refusals {
        assert!((400..500).contains(&res.status), "{}", res.text);
    }
    s.admin("PATCH", "/api/v1/settings", json!({"job_token_elevation_allowed": false}));
    let elevated = s.json("PATCH", &scope, Auth::Admin, json!({"job_token_scopes": ["api"]}));
    assert_eq!(elevated.status, 409, "{}", elevated.text);
    assert_eq!(total(&s), before + 1, "only the settings change is recorded");
}

#[test]
fn a_developer_cannot_read_a_projects_events_and_a_maintainer_sees_only_their_projects() {
    let s = Server::start();
    let t = team(&s);
    s.admin(
        "POST",
        &format!("/api/v1/projects/{}/job_token_scope/allowlist", t.lib),
        json!({"source_project_id": t.src}),
    );
    let app_events = format!("/api/v1/projects/{}/audit_events", t.app);
    let developer = s.get(&app_events, Auth::Bearer(&t.developer_pat));
    common::assert_api_error(&developer, 403);
    let mine = events(&s, &app_events, Auth::Bearer(&t.maintainer_pat));
    assert!(!mine.is_empty());
    assert!(mine.iter().all(|e| e["project_id"] == t.app), "{mine:#?}");
    // A project they cannot see is not found; Developer on grp/src is 403; the instance list is the admin's.
    common::assert_api_error(
        &s.get(&format!("/api/v1/projects/{}/audit_events", t.lib), Auth::Bearer(&t.maintainer_pat)),
        404,
    );
    common::assert_api_error(
        &s.get(&format!("/api/v1/projects/{}/audit_events", t.src), Auth::Bearer(&t.maintainer_pat)),
        403,
    );
    assert_eq!(s.get("/api/v1/audit_events", Auth::Bearer(&t.maintainer_pat)).status, 401);
    common::assert_api_error(
        &s.get(&format!("/api/v1/groups/{}/audit_events", t.grp), Auth::Bearer(&t.maintainer_pat)),
        403,
    );
    // The admin sees the other project's events there.
    let lib = events(&s, &format!("/api/v1/projects/{}/audit_events", t.lib), Auth::Admin);
    assert_eq!(with_action(&lib, "job_token_scope.allowlist.added").len(), 1);
}

#[test]
fn the_admin_list_filters_by_target_actor_and_time_and_is_paginated() {
    let s = Server::start();
    let t = team(&s);
    let pat = Auth::Bearer(&t.maintainer_pat);
    let scope = format!("/api/v1/projects/{}/job_token_scope", t.app);
    assert_eq!(s.json("PATCH", &scope, pat, json!({"outbound_enabled": true})).status, 200);

    let users = admin_events(&s, "target_type=user");
    assert_eq!(users.len(), 2, "{users:#?}");
    assert!(users.iter().all(|e| e["entity_type"] == "user"));
    let maya = admin_events(&s, &format!("target_type=user&target_id={}", t.maintainer));
    assert_eq!(maya.len(), 1);
    assert_eq!(maya[0]["entity_path"], "maya");
    let by_maya = admin_events(&s, &format!("actor=user:{}", t.maintainer));
    assert_eq!(by_maya.len(), 1, "{by_maya:#?}");
    assert_eq!(by_maya[0]["action"], "job_token_scope.settings.updated");
    assert_eq!(admin_events(&s, "actor=user").len(), 1);
    let by_admin = admin_events(&s, "actor=admin");
    assert!(by_admin.len() > 5 && by_admin.iter().all(|e| e["author"]["type"] == "admin"));
    assert!(admin_events(&s, "created_before=2000-01-01").is_empty());
    let all = admin_events(&s, "");
    assert_eq!(admin_events(&s, "created_after=2000-01-01T00:00:00Z").len(), all.len());
    assert!(admin_events(&s, "created_after=2999-01-01").is_empty());

    let first = s.get("/api/v1/audit_events?per_page=2", Auth::Admin);
    assert_eq!(first.header("x-total").unwrap(), all.len().to_string());
    assert_eq!(first.header("x-page"), Some("1"));
    assert_eq!(first.header("x-next-page"), Some("2"));
    assert_eq!(first.json.as_array().unwrap().len(), 2);
    let second = s.get("/api/v1/audit_events?per_page=2&page=2", Auth::Admin);
    assert_eq!(second.json[0]["id"], all[2]["id"]);
    assert!(second.header("link").unwrap().contains("rel=\"next\""));

    for bad in [
        "created_after=yesterday",
        "created_before=2027-13-01",
        "actor=root",
        "actor=user:x",
        "target_id=abc",
        "per_page=0",
        "target_typ=user",
        "action=user.created",
    ] {
        common::assert_api_error(&s.get(&format!("/api/v1/audit_events?{bad}"), Auth::Admin), 400);
    }
    // GitLab's names for the target filters.
    let gitlab = s.get("/api/v1/audit_events?entity_type=user&per_page=100", Auth::Admin);
    assert_eq!(gitlab.status, 200, "{}", gitlab.text);
    let users = admin_events(&s, "target_type=user");
    assert_eq!(gitlab.json.as_array().unwrap().len(), users.len());
    assert!(users.iter().all(|e| e["entity_type"] == "user"), "{users:#?}");
}

#[test]
fn key_changes_name_who_made_them_and_never_key_material() {
    let s = Server::start();
    let started = admin_events(&s, "target_type=signing_keys");
    let first = one(&started, "signing_keys.scheduled_change");
    assert_eq!(first["author"]["type"], "system");
    assert_eq!(first["details"]["after"]["keys"].as_array().unwrap().len(), 2, "{first}");
    s.admin("POST", "/api/v1/keys/rotate?force=true", Value::Null);
    let out = cli_in(&s.dir, &["keys", "rotate", "--force"], &[]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli_in(&s.dir, &["keys", "set-algorithm", "EdDSA"], &[]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let keys = admin_events(&s, "target_type=signing_keys");
    let forced: Vec<&Value> = with_action(&keys, "signing_keys.rotation_forced");
    assert_eq!(forced.len(), 2, "{keys:#?}");
    assert_eq!(forced[0]["author"]["type"], "cli");
    assert_eq!(forced[1]["author"]["type"], "admin");
    let before: Vec<Value> = forced[1]["details"]["before"]["keys"].as_array().unwrap().clone();
    let after: Vec<Value> = forced[1]["details"]["after"]["keys"].as_array().unwrap().clone();
    assert!(before.iter().any(|k| k["state"] == "next"));
    assert!(after.iter().any(|k| k["state"] == "retired"), "{after:?}");
    let changed = one(&keys, "signing_keys.algorithm_changed");
    assert_eq!(changed["author"]["type"], "cli");
    assert_eq!(changed["details"]["after"]["algorithm"], "EdDSA");
    assert_eq!(admin_events(&s, "actor=cli").len(), 2);
    let text = stored_audit_text(&s);
    assert!(!text.contains("PRIVATE KEY") && !text.contains("\"d\""), "key material in the audit table");
}

#[test]
fn autopopulate_and_its_removal_each_record_the_entries_they_changed() {
    let s = Server::start();
    let dev = user(&s, "dev");
    let grp = group(&s, "grp", None);
    let a = project(&s, "a", grp, json!({"visibility": "private"}));
    let b = project(&s, "b", grp, json!({"visibility": "private"}));
    project_member(&s, a, dev, 30);
    project_member(&s, b, dev, 30);
    let runner = common::runner(&s, json!({"runner_type": "instance"}));
    let job = common::job_for(&s, a, dev, true);
    let scope = format!("/api/v1/projects/{b}/job_token_scope");
    s.admin("POST", &format!("{scope}/allowlist"), json!({"source_project_id": a, "scopes": ["read_repository"]}));
    let ask = json!([{"type": "ci_project_access", "project_id": b, "actions": ["read_repository"]}]).to_string();
    let minted = common::mint_as(&s, &runner, job, &[("authorization_details", ask.as_str())]);
    assert_eq!(minted.status, 200, "{}", minted.text);
    let logged = common::eventually(std::time::Duration::from_secs(10), || {
        !s.admin("GET", &format!("{scope}/authorizations"), Value::Null).as_array().unwrap().is_empty()
    });
    assert!(logged, "the cross-project grant is logged");
    s.admin("DELETE", &format!("{scope}/allowlist/{a}"), Value::Null);

    s.admin("POST", &format!("{scope}/autopopulate"), json!({}));
    s.admin("DELETE", &format!("{scope}/autopopulated"), Value::Null);

    let all = events(&s, &format!("/api/v1/projects/{b}/audit_events"), Auth::Admin);
    let populated = one(&all, "job_token_scope.autopopulated");
    let added = populated["details"]["after"]["added"].as_array().unwrap();
    assert_eq!(added.len(), 1, "{populated}");
    assert_eq!((added[0]["source_id"].clone(), added[0]["autopopulated"].clone()), (json!(a), json!(true)));
    let removed = one(&all, "job_token_scope.autopopulated.removed");
    assert_eq!(removed["details"]["before"]["autopopulated"][0]["source_path"], "grp/a", "{removed}");
    assert_eq!(removed["details"]["after"]["autopopulated"], json!([]));
}

#[test]
fn the_demo_data_is_recorded_as_the_operators_changes() {
    let (s, _) = Server::start_demo(common::temp_dir(), Some(common::ADMIN));
    let by_cli = admin_events(&s, "actor=cli");
    for action in ["user.created", "group.created", "project.created", "personal_access_token.created"] {
        assert!(!with_action(&by_cli, action).is_empty(), "{action} by cli: {by_cli:#?}");
    }
    assert_eq!(with_action(&by_cli, "project.member.added").len(), 2, "{by_cli:#?}");
    let pat = one(&by_cli, "personal_access_token.created");
    assert_eq!(pat["author"]["type"], "cli", "{pat}");
}
