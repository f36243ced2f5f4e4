//! Issue 7 point 9: names are unambiguous. Usernames, group full paths and project paths are
//! unique regardless of case, and a project never has a group's full path, so `sub`,
//! `project_path` and `namespace_path` name one thing; a database holding such conflicts is
//! refused at start-up with the conflicts named.
#![allow(clippy::unwrap_used)]

mod common;

use common::{group, project, user, Auth, Res, Server};
use serde_json::{json, Value};

/// A 409 `conflict` whose message names `path` (as asked) and `taken` (as it exists).
fn assert_conflict(res: &Res, asked: &str, taken: &str) {
    assert_eq!(res.status, 409, "{}", res.text);
    assert_eq!(res.json["error"], "conflict", "{}", res.text);
    let message = res.json["message"].as_str().unwrap_or_default();
    assert!(message.contains(asked) && message.contains(taken), "the message names both spellings: {message}");
}

/// Takes the stopped server's database back to the schema before `0005_unique_names.sql` (its
/// indexes, triggers and record gone), then runs `sql` on it, as the old schema allowed.
fn before_the_names_migration(dir: &std::path::Path, sql: &str) {
    let db = rusqlite::Connection::open(dir.join("db/jobtoken.db")).unwrap();
    db.execute_batch(
        "DROP INDEX users_username_nocase;
         DROP INDEX groups_full_path_nocase;
         DROP INDEX projects_path_nocase;
         DROP TRIGGER projects_path_not_a_group;
         DROP TRIGGER groups_path_not_a_project;
         DROP TRIGGER projects_path_not_a_group_on_update;
         DROP TRIGGER groups_path_not_a_project_on_update;
         DELETE FROM schema_migrations WHERE name = '0005_unique_names.sql';",
    )
    .unwrap();
    db.execute_batch(sql).unwrap();
}

#[test]
fn a_username_differing_only_in_case_is_a_conflict_and_creates_nothing() {
    let s = Server::start();
    let alice = user(&s, "alice");

    let res = s.json("POST", "/api/v1/users", Auth::Admin, json!({"username": "Alice"}));

    assert_conflict(&res, "Alice", "alice");
    assert_eq!(s.get(&format!("/api/v1/users/{}", alice + 1), Auth::Admin).status, 404, "no user was written");
    assert_eq!(
        s.json("POST", "/api/v1/users", Auth::Admin, json!({"username": "alice2"})).json["id"],
        json!(alice + 1)
    );
}

#[test]
fn a_group_path_differing_only_in_case_is_a_conflict_at_the_top_and_under_a_parent() {
    let s = Server::start();
    let grp = group(&s, "grp", None);
    let sub = group(&s, "sub", Some(grp));

    let top = s.json("POST", "/api/v1/groups", Auth::Admin, json!({"path": "GRP"}));
    let nested = s.json("POST", "/api/v1/groups", Auth::Admin, json!({"path": "Sub", "parent_id": grp}));

    assert_conflict(&top, "GRP", "grp");
    assert_conflict(&nested, "grp/Sub", "grp/sub");
    assert_eq!(s.get(&format!("/api/v1/groups/{}", sub + 1), Auth::Admin).status, 404, "no group was written");
}

#[test]
fn a_project_path_differing_only_in_case_is_a_conflict_and_creates_nothing() {
    let s = Server::start();
    let grp = group(&s, "grp", None);
    let app = project(&s, "app", grp, Value::Null);

    let res = s.json("POST", "/api/v1/projects", Auth::Admin, json!({"path": "App", "namespace_id": grp}));

    assert_conflict(&res, "grp/App", "grp/app");
    assert_eq!(s.get(&format!("/api/v1/projects/{}", app + 1), Auth::Admin).status, 404, "no project was written");
}

#[test]
fn a_group_cannot_take_the_full_path_of_an_existing_project() {
    let s = Server::start();
    let grp = group(&s, "grp", None);
    project(&s, "app", grp, Value::Null);

    let same = s.json("POST", "/api/v1/groups", Auth::Admin, json!({"path": "app", "parent_id": grp}));
    let other_case = s.json("POST", "/api/v1/groups", Auth::Admin, json!({"path": "APP", "parent_id": grp}));

    assert_conflict(&same, "grp/app", "project");
    assert_conflict(&other_case, "grp/APP", "grp/app");
    assert_eq!(s.get(&format!("/api/v1/groups/{}", grp + 1), Auth::Admin).status, 404, "no group was written");
}

#[test]
fn a_project_cannot_take_the_full_path_of_an_existing_group() {
    let s = Server::start();
    let grp = group(&s, "grp", None);
    let sub = group(&s, "tools", Some(grp));

    let same = s.json("POST", "/api/v1/projects", Auth::Admin, json!({"path": "tools", "namespace_id": grp}));
    let other_case = s.json("POST", "/api/v1/projects", Auth::Admin, json!({"path": "Tools", "namespace_id": grp}));

    assert_conflict(&same, "grp/tools", "group");
    assert_conflict(&other_case, "grp/Tools", "grp/tools");
    assert_eq!(s.get("/api/v1/projects/1", Auth::Admin).status, 404, "no project was written");
    let inside = s.json("POST", "/api/v1/projects", Auth::Admin, json!({"path": "tools", "namespace_id": sub}));
    assert_eq!(inside.status, 201, "grp/tools/tools is a different path: {}", inside.text);
}

#[test]
fn start_up_refuses_a_database_whose_names_conflict_and_names_every_conflict() {
    if common::sqlite_only("start_up_refuses_a_database_whose_names_conflict_and_names_every_conflict (rewinds the SQLite file to the schema before 0005)") {
        return;
    }
    // Arrange: a database at the schema before 0005, holding names that differ only in case and a
    // group with a project's path (as the old schema allowed).
    let s = Server::start();
    user(&s, "alice");
    let grp = group(&s, "grp", None);
    project(&s, "app", grp, Value::Null);
    let dir = s.stop();
    before_the_names_migration(
        &dir,
        "INSERT INTO users (username, state, created_at) VALUES ('Alice', 'active', 1);
         INSERT INTO groups (path, full_path, traversal_ids, created_at) VALUES ('GRP', 'GRP', '2', 1);
         INSERT INTO groups (path, parent_id, full_path, traversal_ids, created_at)
             VALUES ('App', 1, 'grp/App', '1 3', 1);",
    );

    // Act
    let log = Server::start_expecting_failure(dir.clone());

    // Assert: start-up fails naming each conflict, and the database was left as it was.
    assert!(log.contains("0005_unique_names.sql"), "{log}");
    assert!(log.contains(r#"users "Alice" and "alice" differ only in case"#), "{log}");
    assert!(log.contains(r#"groups "GRP" and "grp" differ only in case"#), "{log}");
    assert!(log.contains(r#"project "grp/app" has the path of group "grp/App""#), "{log}");
    let db = rusqlite::Connection::open(dir.join("db/jobtoken.db")).unwrap();
    let landed: i64 = db
        .query_row("SELECT count(*) FROM schema_migrations WHERE name = '0005_unique_names.sql'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(landed, 0, "the refused migration did not land");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn start_up_applies_the_names_migration_to_a_database_without_conflicts() {
    if common::sqlite_only("start_up_applies_the_names_migration_to_a_database_without_conflicts (rewinds the SQLite file to the schema before 0005)") {
        return;
    }
    let s = Server::start();
    user(&s, "alice");
    let dir = s.stop();
    before_the_names_migration(&dir, "INSERT INTO users (username, state, created_at) VALUES ('bob', 'active', 1);");

    let s = Server::start_in(dir, &[]);

    let res = s.json("POST", "/api/v1/users", Auth::Admin, json!({"username": "BOB"}));
    assert_conflict(&res, "BOB", "bob");
}
