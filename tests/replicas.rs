//! Many replicas on one PostgreSQL database (issue 8, points 3–5), whatever
//! `JOBTOKEN_TEST_BACKEND` says: two or three real `jobtoken serve` processes with the same
//! issuer, algorithm and key-encryption key. One issuer on every host; rotation seen by every
//! replica before any signs with the new key; scheduled rotation once; concurrent minting and
//! background writers with nothing lost; kill -9 of one replica; PostgreSQL stopped under load.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// The issuer every replica is configured with, explicitly (README: never the bind default).
const ISSUER: &str = "https://jobtoken.replicas.test";

/// No request may take longer than this, whatever the database does (issue 8, point 4).
const BOUND: Duration = Duration::from_secs(10);

/// The key-encryption key every replica of these tests shares.
fn shared_kek() -> &'static str {
    static KEK: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEK.get_or_init(random_key_encryption_key)
}

/// `n` replicas on the database `url`: same issuer, algorithm, key-encryption key; a one-second
/// key tick so that they pick up each other's key changes quickly. `extra` adds settings.
fn replicas(url: &str, n: usize, extra: &[(&str, &str)]) -> Vec<Server> {
    let mut env = vec![
        ("JOBTOKEN_DATABASE", url),
        ("JOBTOKEN_KEY_ENCRYPTION_KEY", shared_kek()),
        ("JOBTOKEN_ISSUER", ISSUER),
        ("JOBTOKEN_SIGNING_ALG", "ES256"),
        ("JOBTOKEN_KEY_TICK_SECONDS", "1"),
    ];
    env.extend_from_slice(extra);
    // One at a time: the first creates the keys, the others load them (a concurrent first start
    // is covered by the writer lock as well, but the drills are about what follows).
    (0..n).map(|_| Server::start_with(&env)).collect()
}

/// Two replicas on `url`, the small world made through the first, and a job of it.
fn two_replicas_and_a_job(url: &str) -> (Vec<Server>, World, i64) {
    let rs = replicas(url, 2, &[]);
    let w = World::new(&rs[0]);
    let job = w.job(&rs[0], false);
    (rs, w, job)
}

/// `jobtoken ARGS` against the replicas' database with their key-encryption key.
fn cli(url: &str, args: &[&str]) -> std::process::Output {
    let dir = temp_dir();
    cli_in(&dir, args, &[("JOBTOKEN_DATABASE", url), ("JOBTOKEN_KEY_ENCRYPTION_KEY", shared_kek())]).output().unwrap()
}

fn finish(s: &Server, w: &World, job: i64) {
    let finished = s.json("POST", &format!("/api/v1/jobs/{job}/finish"), w.runner.auth(), json!({"status": "success"}));
    assert_eq!(finished.status, 200, "{}", finished.text);
}

/// A token's jti as the hex of the 16 bytes `issued_tokens.jti` holds.
fn jti_hex(token: &str) -> String {
    decode(token).1["jti"].as_str().unwrap().replace('-', "")
}

/// The hex jtis of every recorded token.
fn recorded_jtis(url: &str) -> BTreeSet<String> {
    let rows = pg::connect(url).query("SELECT encode(jti, 'hex') FROM issued_tokens", &[]).unwrap();
    rows.iter().map(|r| r.get::<_, String>(0)).collect()
}

fn key_count(url: &str) -> i64 {
    pg::connect(url).query_one("SELECT count(*) FROM signing_keys WHERE family = 'job'", &[]).unwrap().get(0)
}

fn kid_in_state(url: &str, state: &str) -> String {
    pg::connect(url)
        .query_one("SELECT kid FROM signing_keys WHERE state = $1 AND family = 'job'", &[&state])
        .unwrap()
        .get(0)
}

/// Pretends the next key has been published for longer than the JWKS cache lifetime plus a key
/// tick (instead of waiting six minutes) — only once `every` replica publishes it, which is what
/// the passing of that time guarantees.
fn age_next_key_once_published(url: &str, every: &[&Server]) {
    let next = kid_in_state(url, "next");
    for s in every {
        assert!(
            eventually(Duration::from_secs(10), || published_kids(s).contains(&next)),
            "replica {} never published the next key {next}:\n{}",
            s.base,
            s.log()
        );
    }
    let mut db = pg::connect(url);
    db.execute("UPDATE signing_keys SET created_at = created_at - 400 WHERE state = 'next'", &[]).unwrap();
}

/// Waits (up to 10 s) until every replica signs with `kid`.
fn every_replica_signs_with(rs: &[Server], w: &World, job: i64, kid: &str) {
    for s in rs {
        assert!(
            eventually(Duration::from_secs(10), || decode(&w.mint_ok(s, job, &[])).0["kid"] == kid),
            "replica {} never signed with the rotated key {kid}:\n{}",
            s.base,
            s.log()
        );
    }
}

/// Sets the flag the load threads stop on when dropped, so that a failing assertion of the
/// driving thread ends the load instead of leaving `thread::scope` waiting for it forever.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn tokens_issued(s: &Server) -> f64 {
    metric(s, "jobtoken_tokens_issued_total").unwrap_or(0.0)
}

// ---- 1. one issuer on every host ----

#[test]
fn every_replica_serves_the_same_jwks_and_discovery_and_sees_every_revocation_at_once() {
    let url = pg::database();
    let rs = replicas(&url, 2, &[]);
    let (a, b) = (&rs[0], &rs[1]);

    let (ja, jb) = (a.get("/.well-known/jwks.json", Auth::None), b.get("/.well-known/jwks.json", Auth::None));
    assert_eq!((ja.status, jb.status), (200, 200));
    assert_eq!(ja.text, jb.text, "JWKS bodies differ");
    assert!(ja.header("etag").is_some());
    assert_eq!(ja.header("etag"), jb.header("etag"), "ETags differ");
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let (da, db) = (a.get(path, Auth::None), b.get(path, Auth::None));
        assert_eq!(da.status, 200, "{}", da.text);
        assert_eq!(da.json, db.json, "{path} differs");
        assert_eq!(da.json["issuer"], ISSUER);
    }

    let w = World::new(a);
    // Minted on A, introspected on B; the job finished on B is over on A at once (no poll).
    let job = w.job(a, false);
    let token = w.mint_ok(a, job, &[]);
    assert_eq!(decode(&token).1["iss"], ISSUER);
    assert_eq!(verify_with_jwks(b, &token)["jti"], decode(&token).1["jti"]);
    assert_eq!(w.introspect(b, &token)["active"], true);
    finish(b, &w, job);
    assert_eq!(w.introspect(a, &token)["active"], false, "finished on B, still active on A");

    // Revoked on A: inactive on B at once.
    let job = w.job(a, false);
    let token = w.mint_ok(a, job, &[]);
    assert_eq!(w.introspect(b, &token)["active"], true);
    let revoked = a.form("/oauth/revoke", w.runner.auth(), &[("token", &token)]);
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(w.introspect(b, &token)["active"], false, "revoked on A, still active on B");

    // A descendant exchanged on B dies when its parent is revoked on A.
    let parent = w.mint_ok(a, job, &[]);
    let child = exchange(b, &parent, &[]);
    assert_eq!(child.status, 200, "{}", child.text);
    let child = child.json["access_token"].as_str().unwrap().to_owned();
    assert_eq!(w.introspect(a, &child)["active"], true);
    let revoked = a.form("/oauth/revoke", w.runner.auth(), &[("token", &parent)]);
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(w.introspect(b, &child)["active"], false, "the parent revoked on A, its child still active on B");
    assert_eq!(w.introspect(a, &child)["active"], false);
    assert_oauth_error(&exchange(b, &child, &[]), 400, "invalid_grant");
}

#[test]
fn replicas_migrating_a_new_database_at_once_all_succeed() {
    for _ in 0..3 {
        let url = pg::database();
        let migrating: Vec<_> = (0..6)
            .map(|_| {
                cli_in(&temp_dir(), &["migrate"], &[("JOBTOKEN_DATABASE", url.as_str())])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in migrating {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "a concurrent migrate failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

#[test]
fn three_replicas_started_at_once_on_an_empty_database_all_serve_one_issuer() {
    let url = pg::database();
    let env = [
        ("JOBTOKEN_DATABASE", url.as_str()),
        ("JOBTOKEN_KEY_ENCRYPTION_KEY", shared_kek()),
        ("JOBTOKEN_ISSUER", ISSUER),
        ("JOBTOKEN_KEY_TICK_SECONDS", "1"),
    ];
    // Migrations, the algorithm in force and the first keys are all decided by whichever
    // replica comes first; the others must wait for it, not fail or make keys of their own.
    let rs: Vec<Server> = std::thread::scope(|scope| {
        let starting: Vec<_> = (0..3).map(|_| scope.spawn(|| Server::start_with(&env))).collect();
        starting.into_iter().map(|s| s.join().unwrap()).collect()
    });
    assert_eq!(key_count(&url), 2, "one active and one next key, not one pair per replica");
    let first = jwks(&rs[0]);
    for s in &rs[1..] {
        assert_eq!(jwks(s), first);
    }
    let w = World::new(&rs[2]);
    let token = w.mint_ok(&rs[1], w.job(&rs[0], false), &[]);
    assert_eq!(w.introspect(&rs[0], &token)["active"], true);
}

#[test]
fn replicas_started_at_once_without_an_admin_token_all_accept_the_one_they_printed() {
    let url = pg::database();
    let env = [("JOBTOKEN_DATABASE", url.as_str()), ("JOBTOKEN_KEY_ENCRYPTION_KEY", shared_kek())];
    let started: Vec<(Server, Vec<String>)> = std::thread::scope(|scope| {
        let starting: Vec<_> =
            (0..4).map(|_| scope.spawn(|| Server::start_without_admin_token_with(temp_dir(), &env))).collect();
        starting.into_iter().map(|s| s.join().unwrap()).collect()
    });
    let printed: BTreeSet<String> = started
        .iter()
        .flat_map(|(_, lines)| {
            lines.iter().filter_map(|l| l.trim().strip_prefix("jtadm_").map(|t| format!("jtadm_{t}")))
        })
        .collect();
    assert_eq!(printed.len(), 1, "one admin token is generated and shown, not one per replica: {printed:?}");
    let token = printed.first().unwrap();
    for (s, _) in &started {
        let res = s.get("/api/v1/settings", Auth::Bearer(token));
        assert_eq!(res.status, 200, "replica {} refuses the admin token shown: {}", s.base, res.text);
    }
}

// ---- 2. rotation: published everywhere before it signs anywhere ----

#[test]
fn a_key_rotated_by_the_cli_or_by_one_replica_is_in_every_replicas_jwks_before_any_replica_signs_with_it() {
    let url = pg::database();
    let (rs, w, job) = two_replicas_and_a_job(&url);
    let done = AtomicBool::new(false);
    let kids_signed = Mutex::new(BTreeSet::new());

    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&done);
        // Two minters per replica. Before each mint on X, the JWKS of the other replica Y; the
        // token X answers must verify against it: a verifier that fetched Y's JWKS before the
        // token existed never meets an unknown kid.
        for (x, y) in [(0, 1), (1, 0), (0, 1), (1, 0)] {
            let (rs, w, done, kids_signed) = (&rs, &w, &done, &kids_signed);
            scope.spawn(move || {
                let mut minted = 0;
                while !done.load(Ordering::Relaxed) || minted < 5 {
                    let jwks = rs[y].get("/.well-known/jwks.json", Auth::None);
                    assert_eq!(jwks.status, 200, "{}", jwks.text);
                    let token = w.mint_ok(&rs[x], job, &[]);
                    if let Err(unknown) = verify_against(&jwks.text, &token) {
                        panic!("a token of replica {x} does not verify against replica {y}'s earlier JWKS: {unknown}");
                    }
                    kids_signed.lock().unwrap().insert(decode(&token).0["kid"].as_str().unwrap().to_owned());
                    minted += 1;
                }
            });
        }

        // The CLI rotates (against the database, no server involved)...
        let first = kid_in_state(&url, "active");
        age_next_key_once_published(&url, &[&rs[0], &rs[1]]);
        let out = cli(&url, &["keys", "rotate"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let second = kid_in_state(&url, "active");
        assert_ne!(first, second);
        every_replica_signs_with(&rs, &w, job, &second);

        // ...then the admin route on replica A.
        age_next_key_once_published(&url, &[&rs[0], &rs[1]]);
        let rotated = rs[0].json("POST", "/api/v1/keys/rotate", Auth::Admin, Value::Null);
        assert_eq!(rotated.status, 200, "{}", rotated.text);
        let third = kid_in_state(&url, "active");
        assert_ne!(second, third);
        every_replica_signs_with(&rs, &w, job, &third);
        done.store(true, Ordering::Relaxed);
        let signed = kids_signed.lock().unwrap().clone();
        assert!(signed.contains(&first) && signed.contains(&second), "{signed:?}");
    });
    // Both replicas settle on one JWKS again.
    assert!(eventually(Duration::from_secs(10), || jwks(&rs[0]) == jwks(&rs[1])));
}

/// An unforced rotation asked of a replica is refused while the next key is younger than its
/// publication time recorded in the database — whatever that replica itself has loaded.
#[test]
fn a_replica_refuses_to_promote_a_next_key_the_database_says_was_published_too_recently() {
    let url = pg::database();
    let rs = replicas(&url, 2, &[]);
    // Rotated by the CLI: B's rotation request comes right after, with a next key seconds old.
    age_next_key_once_published(&url, &[&rs[0], &rs[1]]);
    let out = cli(&url, &["keys", "rotate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let before = key_count(&url);
    let refused = rs[1].json("POST", "/api/v1/keys/rotate", Auth::Admin, Value::Null);
    assert_api_error(&refused, 409);
    assert_eq!(key_count(&url), before, "a refused rotation changed the keys");
}

// ---- 3. scheduled rotation exactly once ----

#[test]
fn a_rotation_due_on_three_replicas_happens_exactly_once() {
    let url = pg::database();
    let rs = replicas(&url, 3, &[]);
    let refs: Vec<&Server> = rs.iter().collect();
    let active = kid_in_state(&url, "active");
    assert_eq!(key_count(&url), 2);

    // The active key has served its 30-day period (and the next one has been published longer
    // than the cache lifetime): every replica's next key tick (1 s) finds the rotation due.
    age_next_key_once_published(&url, &refs);
    pg::connect(&url)
        .execute("UPDATE signing_keys SET activated_at = activated_at - 31 * 86400 WHERE state = 'active'", &[])
        .unwrap();
    assert!(eventually(Duration::from_secs(15), || key_count(&url) > 2), "no replica rotated:\n{}", rs[0].log());
    // Let every replica tick a few more times over the same due rotation.
    let ticks = Instant::now();
    assert!(eventually(Duration::from_secs(15), || rs.iter().all(|s| published_kids(s) == published_kids(&rs[0]))
        && ticks.elapsed() > Duration::from_secs(3)));

    let rows = pg::connect(&url)
        .query("SELECT kid, state FROM signing_keys WHERE family = 'job' ORDER BY created_at, kid", &[])
        .unwrap();
    let states: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(states.len(), 3, "one rotation adds exactly one key: {states:?}");
    assert!(states.contains(&(active.clone(), "retired".into())), "{states:?}");
    let retirements: usize = rs.iter().map(|s| s.log().matches(&format!("signing key {active} retired")).count()).sum();
    assert_eq!(retirements, 1, "the key was retired by more than one replica");
}

// ---- 4. concurrent minting, background writers ----

#[test]
fn concurrent_minting_on_two_replicas_records_every_token_and_the_counts_add_up() {
    let url = pg::database();
    let rs = replicas(&url, 2, &[]);
    let w = World::new(&rs[0]);
    let jobs: Vec<i64> = (0..4).map(|_| w.job(&rs[0], false)).collect();
    let answered = Mutex::new(Vec::new());

    std::thread::scope(|scope| {
        for t in 0..8 {
            let (rs, w, jobs, answered) = (&rs, &w, &jobs, &answered);
            scope.spawn(move || {
                let s = &rs[t % 2];
                for i in 0..40 {
                    let res = w.mint(s, jobs[(t + i) % jobs.len()], &[]);
                    assert!(res.status < 500, "{} {}", res.status, res.text);
                    assert_eq!(res.status, 200, "{}", res.text);
                    answered.lock().unwrap().push(res.json["access_token"].as_str().unwrap().to_owned());
                }
            });
        }
    });

    let answered = answered.into_inner().unwrap();
    assert_eq!(answered.len(), 320);
    let recorded = recorded_jtis(&url);
    let answered_jtis: BTreeSet<String> = answered.iter().map(|t| jti_hex(t)).collect();
    assert_eq!(answered_jtis.len(), 320, "jtis are unique across replicas");
    assert_eq!(recorded, answered_jtis, "every token answered 200 is recorded, and only those");
    let issued: f64 = rs.iter().map(tokens_issued).sum();
    assert_eq!(issued, 320.0, "jobtoken_tokens_issued_total summed over replicas");
}

#[test]
fn the_authorization_log_counts_every_decision_made_on_either_replica() {
    let url = pg::database();
    let rs = replicas(&url, 2, &[]);
    let s = &rs[0];
    let w = World::new(s);
    let target = project(s, "target", w.group, json!({"visibility": "private"}));
    project_member(s, target, w.user, 30);
    let admitted = s.json(
        "POST",
        &format!("/api/v1/projects/{target}/job_token_scope/allowlist"),
        Auth::Admin,
        json!({"source_project_id": w.project}),
    );
    assert_eq!(admitted.status, 201, "{}", admitted.text);
    let token = w.mint_ok(s, w.job(s, true), &[]);

    // Both replicas count the same (target, source) pair; each writes its first sight at once
    // and the rest on shutdown, into the one row.
    let per_replica = [7, 5];
    for (s, n) in rs.iter().zip(per_replica) {
        for _ in 0..n {
            let d = authorize(s, &w.registry, &token, json!(target), "read_repository");
            assert_eq!(d["allowed"], true, "{d}");
        }
    }
    for s in rs {
        s.terminate();
    }
    let row = pg::connect(&url)
        .query_one(
            "SELECT count FROM authorization_log WHERE target_project_id = $1 AND source_project_id = $2",
            &[&target, &w.project],
        )
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), per_replica.iter().sum::<i64>(), "counts lost between two writers");
}

/// The catalog cache (src/store/cache.rs) on two replicas: every change made through one replica,
/// or straight in the database, is seen by the other's next request, although that replica
/// answered the same question a moment before from its cache.
#[test]
fn a_change_through_one_replica_or_in_the_database_is_seen_by_the_other_replicas_next_request() {
    let url = pg::database();
    let rs = replicas(&url, 2, &[]);
    let (a, b) = (&rs[0], &rs[1]);
    let w = World::new(a);
    let target = project(a, "target", w.group, json!({"visibility": "private"}));
    project_member(a, target, w.user, 30);
    let token = w.mint_ok(a, w.job(a, true), &[]);
    let allowed = |s: &Server, scope: &str| authorize(s, &w.registry, &token, json!(target), scope)["allowed"] == true;
    let change = |s: &Server, method: &str, path: &str, body: Value| {
        let res = s.json(method, path, Auth::Admin, body);
        assert!(res.status < 300, "{method} {path}: {}", res.text);
    };
    assert!(!allowed(b, "read_repository"), "not on the allowlist yet (and now cached on B)");

    let entries = format!("/api/v1/projects/{target}/job_token_scope/allowlist");
    change(a, "POST", &entries, json!({"source_project_id": w.project}));
    assert!(allowed(b, "read_repository"), "the entry added on A is seen by B");
    assert!(allowed(b, "write_registry"));

    change(a, "PUT", &format!("/api/v1/projects/{target}/members/{}", w.user), json!({"access_level": 20}));
    assert!(!allowed(b, "write_registry"), "the membership lowered on A is seen by B");

    change(b, "PATCH", "/api/v1/settings", json!({"enforce_job_token_allowlist": true}));
    change(b, "DELETE", &format!("{entries}/{}", w.project), Value::Null);
    assert!(!allowed(a, "read_repository"), "the entry removed on B is gone on A");

    pg::connect(&url)
        .execute(
            "INSERT INTO allowlist_entries (owner_kind, owner_id, source_kind, source_id, scopes, autopopulated, created_at)
             VALUES ('project', $1, 'project', $2, NULL, 0, 0)",
            &[&target, &w.project],
        )
        .unwrap();
    assert!(allowed(a, "read_repository") && allowed(b, "read_repository"), "a row written in psql is seen by both");

    change(a, "PATCH", &format!("/api/v1/users/{}", w.user), json!({"state": "blocked"}));
    assert_eq!(w.introspect(b, &token)["active"], false, "the user blocked on A is blocked on B");
    assert!(!allowed(b, "read_repository"));
}

// ---- 5. kill -9 of one replica ----

#[test]
fn killing_one_replica_loses_no_token_it_answered_and_the_other_keeps_serving() {
    let url = pg::database();
    let (rs, w, job) = two_replicas_and_a_job(&url);
    let done = AtomicBool::new(false);
    let answered: Mutex<BTreeMap<usize, Vec<String>>> = Mutex::new(BTreeMap::new());
    let b_after_kill = Mutex::new(0usize);
    let killed = AtomicBool::new(false);

    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&done);
        for t in 0..4 {
            let (rs, w, done, answered, killed, b_after_kill) = (&rs, &w, &done, &answered, &killed, &b_after_kill);
            scope.spawn(move || {
                let x = t % 2;
                let id = job.to_string();
                let fields = [("grant_type", "client_credentials"), ("job_id", id.as_str())];
                while !done.load(Ordering::Relaxed) {
                    let was_killed = killed.load(Ordering::SeqCst);
                    let Some(res) = rs[x].try_form("/oauth/token", w.runner.auth(), &fields) else {
                        assert_eq!(x, 0, "replica B failed at the transport level");
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    assert!(res.status < 500, "replica {x}: {} {}", res.status, res.text);
                    assert_eq!(res.status, 200, "replica {x}: {}", res.text);
                    let token = res.json["access_token"].as_str().unwrap().to_owned();
                    answered.lock().unwrap().entry(x).or_default().push(token);
                    if x == 1 && was_killed {
                        *b_after_kill.lock().unwrap() += 1;
                    }
                }
            });
        }
        let load = |n: usize| {
            eventually(Duration::from_secs(30), || {
                answered.lock().unwrap().values().all(|v| v.len() >= n) && answered.lock().unwrap().len() == 2
            })
        };
        assert!(load(20), "no load on both replicas");
        rs[0].kill9();
        killed.store(true, Ordering::SeqCst);
        assert!(
            eventually(Duration::from_secs(30), || *b_after_kill.lock().unwrap() >= 50),
            "B stopped answering after A died:\n{}",
            rs[1].log()
        );
        done.store(true, Ordering::Relaxed);
    });

    let answered = answered.into_inner().unwrap();
    let recorded = recorded_jtis(&url);
    for (x, tokens) in &answered {
        for token in tokens {
            assert!(recorded.contains(&jti_hex(token)), "a token replica {x} answered is not recorded");
        }
    }
    let b = &rs[1];
    for token in answered[&0].iter().rev().take(20) {
        assert_eq!(w.introspect(b, token)["active"], true, "a token minted on A before it died, on B");
    }
}

/// A replica that freezes (SIGSTOP: a paused VM, a partitioned host) in the middle of a write
/// keeps its transaction, and the writer lock, open: the database must end that session so
/// that the others go on minting within the bound.
#[test]
fn a_frozen_replica_does_not_hold_up_the_others_past_the_bound() {
    let url = pg::database();
    let (rs, w, job) = two_replicas_and_a_job(&url);
    let done = AtomicBool::new(false);
    let frozen = AtomicBool::new(false);
    let b_answers: Mutex<Vec<(u16, Duration, bool)>> = Mutex::new(Vec::new());

    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&done);
        for t in 0..6 {
            let (rs, w, done, frozen, b_answers) = (&rs, &w, &done, &frozen, &b_answers);
            scope.spawn(move || {
                let x = t % 2;
                let id = job.to_string();
                let fields = [("grant_type", "client_credentials"), ("job_id", id.as_str())];
                while !done.load(Ordering::Relaxed) {
                    if x == 0 && frozen.load(Ordering::SeqCst) {
                        return; // its requests would hang until the process goes on
                    }
                    let after = frozen.load(Ordering::SeqCst);
                    let begun = Instant::now();
                    let res = rs[x].try_form("/oauth/token", w.runner.auth(), &fields);
                    if x == 1 {
                        let status = res.map_or(0, |r| r.status);
                        b_answers.lock().unwrap().push((status, begun.elapsed(), after));
                    }
                }
            });
        }
        let b_ok_after = || b_answers.lock().unwrap().iter().filter(|a| a.0 == 200 && a.2).count();
        assert!(eventually(Duration::from_secs(30), || b_answers.lock().unwrap().len() >= 20), "no load");
        // Under load A is almost always inside a write, holding the writer lock, when it freezes.
        frozen.store(true, Ordering::SeqCst);
        rs[0].signal("STOP");
        let b_went_on = eventually(Duration::from_secs(30), || b_ok_after() >= 50);
        // Thaw A before anything can fail, so that every load thread finishes.
        done.store(true, Ordering::Relaxed);
        rs[0].signal("CONT");
        assert!(b_went_on, "B stopped minting while A is frozen:\n{}", rs[1].log());
    });
    for (status, took, _) in b_answers.into_inner().unwrap() {
        assert!(took < BOUND, "a mint on B took {took:?} while A was frozen");
        assert!(status == 200 || status == 503, "B answered {status}");
    }
}

// ---- 6. PostgreSQL stopped and started under load ----

/// The answer to one request during the outage drill: path, status, body, how long it took.
type Answer = (&'static str, u16, Value, Duration);

#[test]
fn postgresql_stopped_and_started_under_load_gives_200_or_503_never_a_500_and_service_resumes() {
    // Its own cluster: stopping it must not disturb the other tests of this binary.
    let cluster = pg::private_cluster();
    let url = cluster.new_database("");
    let (rs, w, job) = two_replicas_and_a_job(&url);
    let sample = w.mint_ok(&rs[0], job, &[]);
    let done = AtomicBool::new(false);
    let answers: Mutex<Vec<Answer>> = Mutex::new(Vec::new());
    let minted: Mutex<Vec<String>> = Mutex::new(Vec::new());

    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&done);
        for t in 0..12 {
            let (rs, w, done, answers, minted, sample) = (&rs, &w, &done, &answers, &minted, &sample);
            scope.spawn(move || {
                let s = &rs[t % 2];
                while !done.load(Ordering::Relaxed) {
                    let begun = Instant::now();
                    let (path, res) = match t / 2 {
                        0 => ("/oauth/token", w.mint(s, job, &[])),
                        1 => {
                            ("/oauth/introspect", s.form("/oauth/introspect", w.registry.auth(), &[("token", sample)]))
                        }
                        2 => ("/api/v1/jobs/{id}", s.get(&format!("/api/v1/jobs/{job}"), Auth::Admin)),
                        3 => {
                            let body = json!({"token": sample, "project": w.project, "scope": "read_repository"});
                            (
                                "/api/v1/job_token/authorize",
                                s.json("POST", "/api/v1/job_token/authorize", w.registry.auth(), body),
                            )
                        }
                        4 => ("/oauth/token (exchange)", exchange(s, sample, &[])),
                        _ => ("/.well-known/jwks.json", s.get("/.well-known/jwks.json", Auth::None)),
                    };
                    let took = begun.elapsed();
                    if path.starts_with("/oauth/token") && res.status == 200 {
                        minted.lock().unwrap().push(res.json["access_token"].as_str().unwrap().to_owned());
                    }
                    answers.lock().unwrap().push((path, res.status, res.json, took));
                }
            });
        }
        let served = |n: usize| {
            let before = answers.lock().unwrap().iter().filter(|a| a.1 == 200).count();
            eventually(Duration::from_secs(30), || {
                answers.lock().unwrap().iter().filter(|a| a.1 == 200).count() >= before + n
            })
        };
        assert!(served(30), "no load");

        cluster.stop();
        for s in &rs {
            let ready = s.get("/health/ready", Auth::None);
            assert_eq!(ready.status, 503, "{}", ready.text);
            assert_api_error_or_checks(&ready);
        }
        let outage = answers.lock().unwrap().len();
        assert!(
            eventually(Duration::from_secs(30), || answers.lock().unwrap()[outage..]
                .iter()
                .filter(|a| a.1 == 503)
                .count()
                >= 12),
            "no 503s during the outage"
        );
        cluster.start_again();

        for s in &rs {
            assert!(
                eventually(Duration::from_secs(30), || s.get("/health/ready", Auth::None).status == 200),
                "replica {} did not become ready again:\n{}",
                s.base,
                s.log()
            );
        }
        for s in &rs {
            assert!(
                eventually(Duration::from_secs(30), || w.mint(s, job, &[]).status == 200),
                "replica {} does not mint again without a restart:\n{}",
                s.base,
                s.log()
            );
        }
        assert!(served(30), "service did not resume under load:\n{}", rs[0].log());
        done.store(true, Ordering::Relaxed);
    });

    let answers = answers.into_inner().unwrap();
    for (path, status, body, took) in &answers {
        assert!(*took < BOUND, "{path} took {took:?}");
        match status {
            200 => {}
            503 if path.starts_with("/oauth/") => assert_eq!(body["error"], "temporarily_unavailable", "{body}"),
            503 => assert!(body["error"].is_string() && body["message"].is_string(), "{body}"),
            other => panic!("{path} answered {other} during the outage: {body}"),
        }
    }
    for path in ["/oauth/token", "/oauth/introspect", "/api/v1/jobs/{id}"] {
        assert!(answers.iter().any(|a| a.0 == path && a.1 == 503), "{path} never saw the outage");
    }
    let recorded = recorded_jtis(&url);
    for token in minted.into_inner().unwrap() {
        assert!(recorded.contains(&jti_hex(&token)), "a token answered 200 around the outage is not recorded");
    }
    for s in &rs {
        assert!(!s.log().contains("panicked"), "{}", s.log());
    }
}

/// `/health/ready` while the database is away: 503 with its checks.
fn assert_api_error_or_checks(ready: &Res) {
    assert_eq!(ready.json["checks"]["database"], "unavailable", "{}", ready.text);
}

#[test]
fn replicas_configured_with_different_id_token_algorithms_sign_with_the_one_the_database_records() {
    let url = pg::database();
    let first = replicas(&url, 1, &[("JOBTOKEN_ID_TOKEN_SIGNING_ALG", "ES256")]).remove(0);
    let second = replicas(&url, 1, &[("JOBTOKEN_ID_TOKEN_SIGNING_ALG", "RS256")]).remove(0);
    assert!(second.log().contains("JOBTOKEN_ID_TOKEN_SIGNING_ALG=RS256 is ignored"), "{}", second.log());
    let w = World::new(&first);
    let job = w.job(&first, true);

    // Several key ticks: neither replica rotates the family towards its own setting.
    std::thread::sleep(Duration::from_secs(3));
    for s in [&first, &second] {
        let subject = w.mint_ok(s, job, &[]);
        let extra =
            [("requested_token_type", "urn:ietf:params:oauth:token-type:id_token"), ("audience", "sts.amazonaws.com")];
        let res = exchange(s, &subject, &extra);
        assert_eq!(res.status, 200, "{}", res.text);
        assert_eq!(decode(res.json["access_token"].as_str().unwrap()).0["alg"], "ES256", "replica {}", s.base);
        let doc = s.get("/.well-known/openid-configuration", Auth::None).json;
        assert_eq!(doc["id_token_signing_alg_values_supported"], json!(["ES256"]), "replica {}", s.base);
    }
    let mut db = pg::connect(&url);
    let recorded: String = db.query_one("SELECT alg FROM id_token_signing_algorithm", &[]).unwrap().get(0);
    assert_eq!(recorded, "ES256", "the first start's configuration");
    let algs = db.query("SELECT DISTINCT alg FROM signing_keys WHERE family = 'id_token'", &[]).unwrap();
    let algs: Vec<String> = algs.iter().map(|r| r.get(0)).collect();
    assert_eq!(algs, ["ES256"], "no ID-token key of the ignored setting was ever made");
}
