//! jobtoken on PostgreSQL, whatever `JOBTOKEN_TEST_BACKEND` says: the token lifecycle on one
//! server, two replicas sharing one database, and a database that goes away (503, then recovery).

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// The key-encryption key every replica of these tests shares (private keys live sealed in the
/// database on PostgreSQL).
fn shared_kek() -> &'static str {
    static KEK: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEK.get_or_init(random_key_encryption_key)
}

/// A server on a PostgreSQL database; `extra` adds settings.
fn start_on(url: &str, extra: &[(&str, &str)]) -> Server {
    let mut env = vec![("JOBTOKEN_DATABASE", url), ("JOBTOKEN_KEY_ENCRYPTION_KEY", shared_kek())];
    env.extend_from_slice(extra);
    Server::start_with(&env)
}

fn finish(s: &Server, w: &World, job: i64) {
    let finished = s.json("POST", &format!("/api/v1/jobs/{job}/finish"), w.runner.auth(), json!({"status": "success"}));
    assert_eq!(finished.status, 200, "{}", finished.text);
}

#[test]
fn a_token_minted_on_postgres_is_active_until_its_job_finishes() {
    let url = pg::database();
    let s = start_on(&url, &[]);
    let w = World::new(&s);
    let job = w.job(&s, false);
    let token = w.mint_ok(&s, job, &[]);
    let live = w.introspect(&s, &token);
    assert_eq!(live["active"], true, "{live}");
    assert_eq!(live["job_id"], job, "{live}");
    finish(&s, &w, job);
    assert_eq!(w.introspect(&s, &token)["active"], false);
    // The row really is in PostgreSQL.
    let rows = pg::connect(&url).query("SELECT count(*) FROM issued_tokens", &[]).unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 1);
}

#[test]
fn two_servers_on_one_database_share_tokens_jobs_and_their_end() {
    let url = pg::database();
    // No shared keys directory: the replicas share the keys sealed in the database.
    let a = start_on(&url, &[]);
    let b = start_on(&url, &[]);
    let w = World::new(&a);
    let job = w.job(&a, false);
    let token = w.mint_ok(&a, job, &[]);
    assert_eq!(w.introspect(&b, &token)["active"], true);
    finish(&b, &w, job);
    assert_eq!(w.introspect(&a, &token)["active"], false);
    assert_eq!(w.introspect(&b, &token)["active"], false);
    // Minting for the finished job is refused on both.
    assert_eq!(w.mint(&a, job, &[]).status, 400);
    assert_eq!(w.mint(&b, job, &[]).status, 400);
}

#[test]
fn a_database_that_goes_away_answers_503_quickly_and_service_resumes_when_it_returns() {
    let url = pg::database();
    let name = url.rsplit('/').next().unwrap().to_owned();
    let s = start_on(&url, &[]);
    let w = World::new(&s);
    let job = w.job(&s, false);
    w.mint_ok(&s, job, &[]);

    let mut admin = pg::connect(&pg::cluster().url("postgres"));
    admin.batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).unwrap();
    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", &[&name]).unwrap();

    let begun = Instant::now();
    let minted = w.mint(&s, job, &[]);
    assert_oauth_error(&minted, 503, "temporarily_unavailable");
    let listed = s.get(&format!("/api/v1/jobs/{job}"), Auth::Admin);
    assert_eq!(listed.status, 503, "{}", listed.text);
    assert_eq!(listed.json["error"], "unavailable", "{}", listed.text);
    assert!(listed.json["message"].is_string(), "{}", listed.text);
    let ready = s.get("/health/ready", Auth::None);
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(ready.json["checks"]["database"], "unavailable", "{}", ready.text);
    assert!(begun.elapsed() < Duration::from_secs(20), "503s took {:?}", begun.elapsed());
    assert!(!s.log().contains("panicked"), "{}", s.log());

    admin.batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).unwrap();
    assert!(eventually(Duration::from_secs(20), || w.mint(&s, job, &[]).status == 200), "{}", s.log());
    assert_eq!(s.get("/health/ready", Auth::None).status, 200);
}
