//! `jobtoken migrate` on PostgreSQL and `jobtoken migrate-data` from SQLite to PostgreSQL,
//! through the binary, whatever `JOBTOKEN_TEST_BACKEND` says.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use serde_json::json;

const ISSUER: &str = "https://jobtoken.migrate.test";

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// `jobtoken ARGS` with a clean environment plus `env`.
fn jobtoken(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_jobtoken"));
    cmd.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn migrate_data(from: &Path, to: &str, keys_dir: &Path, kek: Option<&str>) -> Output {
    let keys = keys_dir.display().to_string();
    let mut env = vec![("JOBTOKEN_KEYS_DIR", keys.as_str())];
    if let Some(kek) = kek {
        env.push(("JOBTOKEN_KEY_ENCRYPTION_KEY", kek));
    }
    jobtoken(&["migrate-data", "--from", from.to_str().unwrap(), "--to", to], &env)
}

/// Row count of every table of the SQLite file (the migrations' record aside), by name.
fn sqlite_counts(file: &Path) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(file).unwrap();
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .filter(|n: &String| n != "schema_migrations")
        .collect();
    names
        .into_iter()
        .map(|n| {
            let count = conn.query_row(&format!("SELECT count(*) FROM \"{n}\""), [], |r| r.get(0)).unwrap();
            (n, count)
        })
        .collect()
}

/// Row count of every table of the PostgreSQL database (the migrations' record aside), by name.
fn pg_counts(url: &str) -> Vec<(String, i64)> {
    let mut client = pg::connect(url);
    let names: Vec<String> = client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()
             AND tablename <> 'schema_migrations' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    names
        .into_iter()
        .map(|n| {
            let count: i64 = client.query_one(&format!("SELECT count(*) FROM \"{n}\""), &[]).unwrap().get(0);
            (n, count)
        })
        .collect()
}

#[test]
fn migrate_on_postgres_applies_the_schema_once_says_what_it_applied_and_refuses_an_edited_migration() {
    let url = pg::database();
    let env = [("JOBTOKEN_DATABASE", url.as_str())];

    let first = jobtoken(&["migrate"], &env);
    let second = jobtoken(&["migrate"], &env);
    pg::connect(&url).batch_execute("UPDATE schema_migrations SET checksum = '\\x00' WHERE version = 1").unwrap();
    let edited = jobtoken(&["migrate"], &env);

    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("applied 0001_schema.sql"), "{}", text(&first.stdout));
    assert!(text(&first.stdout).contains("applied 0002_audit_events.sql"), "{}", text(&first.stdout));
    let all = format!("({} migration(s) applied now)", jobtoken::store::MIGRATIONS_POSTGRES.len());
    assert!(text(&first.stdout).contains(&all), "{}", text(&first.stdout));
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(!text(&second.stdout).contains("applied 0001"), "{}", text(&second.stdout));
    assert!(text(&second.stdout).contains("(0 migration(s) applied now)"), "{}", text(&second.stdout));
    assert!(!edited.status.success());
    assert!(text(&edited.stderr).contains("0001_schema.sql") && text(&edited.stderr).contains("append-only"));
    let tables = pg_counts(&url);
    assert!(tables.iter().any(|(t, _)| t == "issued_tokens"), "the schema is there: {tables:?}");
}

/// Everything the SQLite installation held before the move, to check after it.
struct Before {
    dir: PathBuf,
    file: PathBuf,
    w: World,
    kids: Vec<String>,
    /// (token, active before the move)
    tokens: Vec<(String, bool)>,
    pat: String,
    maintained: i64,
    max_project: i64,
}

/// A SQLite server with users, groups, projects, an allowlist entry, runners, resource servers
/// and a PAT; tokens minted (one revoked, one exchanged child, one of a finished job); stopped.
fn sqlite_installation() -> Before {
    let dir = temp_dir();
    let file = dir.join("db/jobtoken.db");
    let db = file.display().to_string();
    let s = Server::start_in(dir.clone(), &[("JOBTOKEN_DATABASE", &db), ("JOBTOKEN_ISSUER", ISSUER)]);
    let w = World::new(&s);
    let sub = group(&s, "sub", Some(w.group));
    let other = project(&s, "other", sub, json!({}));
    let allowed = s.json(
        "POST",
        &format!("/api/v1/projects/{other}/job_token_scope/allowlist"),
        Auth::Admin,
        json!({"source_project_id": w.project}),
    );
    assert!(allowed.status < 300, "{}", allowed.text);
    project_member(&s, other, w.user, 40);
    let pat = personal_access_token(&s, w.user);
    runner(&s, json!({"runner_type": "group", "group_id": sub}));
    resource_server(&s, "second");

    let job = w.job(&s, false);
    let live = w.mint_ok(&s, job, &[("audience", "registry")]);
    let revoked = w.mint_ok(&s, job, &[]);
    assert_eq!(s.form("/oauth/revoke", w.runner.auth(), &[("token", &revoked)]).status, 200);
    let child = exchange(&s, &live, &[("audience", "registry")]);
    assert_eq!(child.status, 200, "{}", child.text);
    let child = child.json["access_token"].as_str().unwrap().to_owned();
    let done = w.job(&s, false);
    let finished = w.mint_ok(&s, done, &[]);
    let end = s.json("POST", &format!("/api/v1/jobs/{done}/finish"), w.runner.auth(), json!({"status": "success"}));
    assert_eq!(end.status, 200, "{}", end.text);

    let tokens: Vec<(String, bool)> = [live, revoked, child, finished]
        .into_iter()
        .map(|t| {
            let active = w.introspect(&s, &t)["active"].as_bool().unwrap();
            (t, active)
        })
        .collect();
    assert_eq!(tokens.iter().map(|(_, a)| *a).collect::<Vec<_>>(), [true, false, true, false]);
    let kids = published_kids(&s);
    s.terminate();
    Before { dir, file, w, kids, tokens, pat, maintained: other, max_project: other }
}

#[test]
fn migrate_data_moves_a_sqlite_installation_to_postgres_with_its_keys_tokens_secrets_and_ids() {
    let before = sqlite_installation();
    let url = pg::database();
    let kek = random_key_encryption_key();
    let sqlite_before = sqlite_counts(&before.file);
    let key_files_before = key_files(&before.dir);

    let moved = migrate_data(&before.file, &url, &before.dir.join("keys"), Some(&kek));

    assert!(moved.status.success(), "{}\n{}", text(&moved.stdout), text(&moved.stderr));
    let said = text(&moved.stdout);
    assert!(said.contains("sealed 4 signing key(s)"), "{said}");
    assert!(said.contains("copied 4 row(s) of issued_tokens"), "{said}");
    // Every table of either schema holds the same rows on both sides: a table the copy missed
    // (or one only PostgreSQL has) fails here.
    assert_eq!(pg_counts(&url), sqlite_before, "every table copied");
    assert_eq!(sqlite_counts(&before.file), sqlite_before, "the source is unchanged");
    assert_eq!(key_files(&before.dir), key_files_before, "the keys directory is unchanged");
    assert!(!said.contains(&kek), "{said}");

    // A server on PostgreSQL with no keys directory of its own: the keys came sealed.
    let s = Server::start_with(&[
        ("JOBTOKEN_DATABASE", &url),
        ("JOBTOKEN_KEY_ENCRYPTION_KEY", &kek),
        ("JOBTOKEN_ISSUER", ISSUER),
    ]);
    let w = &before.w;
    assert_eq!(published_kids(&s), before.kids, "the same JWKS");
    for (token, active) in &before.tokens {
        assert_eq!(w.introspect(&s, token)["active"], json!(active), "{token}");
    }
    let maintained = format!("/api/v1/projects/{}/job_token_scope", before.maintained);
    assert_eq!(s.get(&maintained, Auth::Bearer(&before.pat)).status, 200, "the PAT still authenticates");
    // The runner's secret still authenticates, and new rows take ids past the copied ones.
    let job = w.job(&s, false);
    let fresh = w.mint_ok(&s, job, &[]);
    assert_eq!(w.introspect(&s, &fresh)["active"], true);
    let created = s.json("POST", "/api/v1/projects", Auth::Admin, json!({"path": "new", "namespace_id": w.group}));
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(created.json["id"].as_i64().unwrap() > before.max_project, "{}", created.text);
    let user = s.json("POST", "/api/v1/users", Auth::Admin, json!({"username": "newcomer"}));
    assert_eq!(user.status, 201, "{}", user.text);
    let rs = s.json("POST", "/api/v1/resource_servers", Auth::Admin, json!({"name": "third"}));
    assert_eq!(rs.status, 201, "{}", rs.text);

    // The target now holds data: a second move is refused and writes nothing.
    let counts = pg_counts(&url);
    let again = migrate_data(&before.file, &url, &before.dir.join("keys"), Some(&kek));
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already holds data"), "{}", text(&again.stderr));
    assert_eq!(pg_counts(&url), counts, "nothing written");
}

#[test]
fn migrate_data_refuses_a_source_not_fully_migrated_a_missing_key_encryption_key_or_a_key_sealed_under_another() {
    let before = sqlite_installation();
    let keys = before.dir.join("keys");
    let kek = random_key_encryption_key();

    let url = pg::database();
    let no_kek = migrate_data(&before.file, &url, &keys, None);
    assert!(!no_kek.status.success());
    assert!(text(&no_kek.stderr).contains("JOBTOKEN_KEY_ENCRYPTION_KEY is required"), "{}", text(&no_kek.stderr));

    // A key file missing from the keys directory: refused before anything is written.
    let empty_keys = temp_dir();
    let no_file = migrate_data(&before.file, &url, &empty_keys, Some(&kek));
    assert!(!no_file.status.success());
    assert!(text(&no_file.stderr).contains("signing key"), "{}", text(&no_file.stderr));
    assert!(pg_counts(&url).is_empty(), "the target schema was not even created");

    // A source one migration behind.
    let behind = temp_dir().join("behind.db");
    std::fs::copy(&before.file, &behind).unwrap();
    let conn = rusqlite::Connection::open(&behind).unwrap();
    conn.execute("DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)", [])
        .unwrap();
    drop(conn);
    let stale = migrate_data(&behind, &url, &keys, Some(&kek));
    assert!(!stale.status.success());
    let said = text(&stale.stderr);
    assert!(said.contains("not fully migrated") && said.contains("jobtoken migrate"), "{said}");

    // Keys sealed in the SQLite database under another key-encryption key.
    let sealed_dir = temp_dir();
    let sealed_db = sealed_dir.join("db/jobtoken.db");
    let other_kek = random_key_encryption_key();
    let s = Server::start_in(
        sealed_dir.clone(),
        &[("JOBTOKEN_DATABASE", sealed_db.to_str().unwrap()), ("JOBTOKEN_KEY_ENCRYPTION_KEY", &other_kek)],
    );
    s.terminate();
    let wrong = migrate_data(&sealed_db, &url, &keys, Some(&kek));
    assert!(!wrong.status.success());
    assert!(text(&wrong.stderr).contains("does not open"), "{}", text(&wrong.stderr));
    assert!(pg_counts(&url).iter().all(|(t, n)| *n == 0 || t == "instance_settings"), "nothing copied");

    // The same keys carried over under the key-encryption key they are sealed under.
    let carried = migrate_data(&sealed_db, &url, &keys, Some(&other_kek));
    assert!(carried.status.success(), "{}", text(&carried.stderr));
    assert!(text(&carried.stdout).contains("sealed 0 signing key(s)"), "{}", text(&carried.stdout));
    assert!(text(&carried.stdout).contains("carried 4 already sealed"), "{}", text(&carried.stdout));
}
