//! Signing keys (SPEC §7): the key list, rotation, RFC 7638 kids, the three algorithms, and what
//! survives a restart.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{
    cli_in, decode, eventually, jwk_thumbprint, jwks, key_files, key_rows, published_kids, sql, verify_against,
    verify_with_jwks, Auth, Server, World,
};
use serde_json::{json, Value};

/// `GET /api/v1/keys`.
fn keys(s: &Server) -> Vec<Value> {
    let res = s.get("/api/v1/keys?family=job", Auth::Admin);
    assert_eq!(res.status, 200, "{}", res.text);
    res.json.as_array().unwrap().clone()
}

/// The kid of the one key in `state`.
fn kid_in(keys: &[Value], state: &str) -> String {
    let found: Vec<&Value> = keys.iter().filter(|k| k["state"] == state).collect();
    assert_eq!(found.len(), 1, "exactly one {state} key: {keys:?}");
    found[0]["kid"].as_str().unwrap().to_owned()
}

fn sorted(mut kids: Vec<String>) -> Vec<String> {
    kids.sort();
    kids
}

#[test]
fn a_fresh_server_lists_one_active_and_one_next_key_and_publishes_both() {
    let s = Server::start();

    let listed = keys(&s);

    assert_eq!(listed.len(), 2, "{listed:?}");
    let (active, next) = (kid_in(&listed, "active"), kid_in(&listed, "next"));
    assert_ne!(active, next);
    for key in &listed {
        assert_eq!(key["alg"], "ES256");
        assert_eq!(key["published"], true);
    }
    assert_eq!(published_kids(&s), sorted(vec![active, next]));
}

#[test]
fn rotation_retires_the_active_key_promotes_the_next_and_creates_a_new_next() {
    let s = Server::start();
    let before = keys(&s);
    let (old_active, old_next) = (kid_in(&before, "active"), kid_in(&before, "next"));

    let res = s.json("POST", "/api/v1/keys/rotate?force=true", Auth::Admin, Value::Null);

    assert_eq!(res.status, 200, "{}", res.text);
    let after = res.json.as_array().unwrap();
    assert_eq!(kid_in(after, "active"), old_next);
    let new_next = kid_in(after, "next");
    assert!(new_next != old_active && new_next != old_next);
    let old = after.iter().find(|k| k["kid"] == old_active.as_str()).expect("the old active key is still listed");
    assert_eq!(old["state"], "retired", "{after:?}");
    assert!(old["retired_at"].is_string(), "{old}");
    assert_eq!(
        keys(&s).iter().map(|k| (k["kid"].clone(), k["state"].clone())).collect::<Vec<_>>(),
        after.iter().map(|k| (k["kid"].clone(), k["state"].clone())).collect::<Vec<_>>()
    );
}

#[test]
fn a_token_minted_before_rotation_stays_valid_and_one_minted_after_uses_the_new_key() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    let before = keys(&s);
    let (old_active, old_next) = (kid_in(&before, "active"), kid_in(&before, "next"));
    let old_token = w.mint_ok(&s, job, &[]);
    assert_eq!(decode(&old_token).0["kid"], json!(old_active));

    let rotated = s.admin("POST", "/api/v1/keys/rotate?force=true", Value::Null);

    let rotated = rotated.as_array().unwrap();
    let retired = rotated.iter().find(|k| k["kid"] == old_active.as_str()).expect("the old active key is listed");
    assert_eq!(retired["state"], "retired");
    assert_eq!(retired["published"], true, "it signed a live token");
    assert!(published_kids(&s).contains(&old_active), "the retired key stays in the JWKS");
    assert_eq!(w.introspect(&s, &old_token)["active"], true);
    assert_eq!(verify_with_jwks(&s, &old_token)["job_id"], json!(job));

    let new_token = w.mint_ok(&s, job, &[]);
    assert_eq!(decode(&new_token).0["kid"], json!(old_next));
    assert_eq!(verify_with_jwks(&s, &new_token)["job_id"], json!(job));
    assert_eq!(w.introspect(&s, &new_token)["active"], true);
}

#[test]
fn after_two_rotations_both_retired_keys_that_signed_live_tokens_stay_published() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    let first = w.mint_ok(&s, job, &[]);
    s.admin("POST", "/api/v1/keys/rotate?force=true", Value::Null);
    let second = w.mint_ok(&s, job, &[]);

    let listed = s.admin("POST", "/api/v1/keys/rotate?force=true", Value::Null);

    let retired: Vec<&Value> = listed.as_array().unwrap().iter().filter(|k| k["state"] == "retired").collect();
    assert_eq!(retired.len(), 2, "{listed}");
    assert_eq!(published_kids(&s).len(), 4, "two retired, one active, one next");
    for token in [&first, &second] {
        assert_eq!(verify_with_jwks(&s, token)["job_id"], json!(job));
        assert_eq!(w.introspect(&s, token)["active"], true);
    }
    assert_eq!(decode(&w.mint_ok(&s, job, &[])).0["kid"], json!(kid_in(listed.as_array().unwrap(), "active")));
}

#[test]
fn a_retired_key_is_still_published_after_a_restart() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    let token = w.mint_ok(&s, job, &[]);
    s.admin("POST", "/api/v1/keys/rotate?force=true", Value::Null);
    let kids = published_kids(&s);
    let dir = s.stop();

    let s = Server::start_in(dir, &[]);

    assert_eq!(published_kids(&s), kids);
    assert_eq!(verify_with_jwks(&s, &token)["job_id"], json!(job));
    assert_eq!(w.introspect(&s, &token)["active"], true);
}

#[test]
fn a_retired_key_that_signed_nothing_leaves_the_jwks_once_its_grace_has_passed() {
    let s = Server::start_with(&[("JOBTOKEN_KEY_TICK_SECONDS", "1")]);
    let unused = kid_in(&keys(&s), "active");

    s.admin("POST", "/api/v1/keys/rotate?force=true", Value::Null);

    assert!(published_kids(&s).contains(&unused), "a token it signed may still be on its way to the database");
    sql(&s.dir, &format!("UPDATE signing_keys SET retired_at = retired_at - 300 WHERE kid = '{unused}'"));
    assert!(eventually(Duration::from_secs(10), || published_kids(&s).len() == 2), "{:?}", published_kids(&s));
    assert!(!published_kids(&s).contains(&unused), "no token needs {unused}");
    assert!(!keys(&s).iter().any(|k| k["kid"] == unused.as_str()), "and it is dropped");
    assert!(!key_files(&s.dir).iter().any(|(name, _)| name.contains(&unused)), "with its file");
}

/// Mints on a server with `JOBTOKEN_SIGNING_ALG=alg` and checks the token's header, its kid as
/// the RFC 7638 thumbprint of the published JWK, and its signature with josekit.
fn signs_with(alg: &str, kty: &str) {
    let s = Server::start_with(&[("JOBTOKEN_SIGNING_ALG", alg)]);
    let w = World::new(&s);
    let job = w.job(&s, true);

    let token = w.mint_ok(&s, job, &[]);

    let (header, _) = decode(&token);
    assert_eq!(header["alg"], alg);
    assert_eq!(header["typ"], "at+jwt");
    let kid = header["kid"].as_str().unwrap();
    let set = jwks(&s);
    let jwk = set["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).expect("kid is published");
    assert_eq!(jwk["kty"], kty);
    assert_eq!(jwk["alg"], alg);
    assert_eq!(jwk_thumbprint(jwk), kid, "kid is the RFC 7638 thumbprint of {jwk}");
    for key in set["keys"].as_array().unwrap() {
        assert_eq!(jwk_thumbprint(key), key["kid"].as_str().unwrap());
    }
    let claims = verify_with_jwks(&s, &token);
    assert_eq!(claims["job_id"], json!(job));
    assert_eq!(claims["iss"], json!(s.base));
    assert!(keys(&s).iter().all(|k| k["alg"] == alg));
    assert_eq!(w.introspect(&s, &token)["active"], true);
}

#[test]
fn an_es256_server_signs_tokens_whose_kid_is_the_thumbprint_of_the_published_key() {
    signs_with("ES256", "EC");
}

#[test]
fn an_rs256_server_signs_tokens_that_verify_against_its_jwks() {
    signs_with("RS256", "RSA");
}

#[test]
fn an_eddsa_server_signs_tokens_that_verify_against_its_jwks() {
    signs_with("EdDSA", "OKP");
}

#[test]
fn tokens_keys_and_clients_survive_a_restart() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    let token = w.mint_ok(&s, job, &[]);
    let kids = published_kids(&s);
    let listed = keys(&s);
    let dir = s.stop();

    let s = Server::start_in(dir, &[]);

    assert_eq!(w.introspect(&s, &token)["active"], true, "the recorded token is still live");
    assert_eq!(published_kids(&s), kids, "the same keys are published");
    assert_eq!(kid_in(&keys(&s), "active"), kid_in(&listed, "active"));
    assert_eq!(kid_in(&keys(&s), "next"), kid_in(&listed, "next"));
    assert_eq!(verify_with_jwks(&s, &token)["job_id"], json!(job));
    let again = w.mint_ok(&s, job, &[]);
    assert_eq!(decode(&again).0["kid"], decode(&token).0["kid"]);
    assert_eq!(decode(&again).1["exp"], decode(&token).1["exp"], "the job's clock did not restart");
}

#[test]
fn a_generated_admin_token_is_printed_once_and_still_works_after_a_restart() {
    let (s, printed) = Server::start_without_admin_token(common::temp_dir());
    let announced = printed.iter().position(|l| l.contains("admin token")).expect("the first start prints a token");
    let token = printed[announced + 1..].iter().map(|l| l.trim()).find(|l| !l.is_empty()).unwrap().to_owned();
    assert!(token.len() >= 20, "{token}");
    assert_eq!(s.get("/api/v1/settings", Auth::Bearer(&token)).status, 200);
    let dir = s.stop();

    let (s, printed) = Server::start_without_admin_token(dir);

    assert!(!printed.iter().any(|l| l.contains("admin token")), "no second token: {printed:?}");
    assert!(printed.iter().all(|l| !l.contains(&token)));
    assert_eq!(s.get("/api/v1/settings", Auth::Bearer(&token)).status, 200, "the first token still works");
    assert_eq!(s.get("/api/v1/settings", Auth::None).status, 401);
    assert!(!s.log().contains(&token), "the admin token is never logged");
}

#[test]
fn restarting_with_another_algorithm_warns_and_changes_no_key() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    let es256_token = w.mint_ok(&s, job, &[]);
    let dir = s.stop();
    let (rows, files) = (key_rows(&dir), key_files(&dir));

    let s = Server::start_in(dir, &[("JOBTOKEN_SIGNING_ALG", "EdDSA")]);
    let listed = keys(&s);

    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(key_rows(&s.dir), rows, "neither the start nor GET /api/v1/keys changed a key");
    assert_eq!(key_files(&s.dir), files);
    let log = s.log();
    let warning = log.lines().find(|l| l.contains("JOBTOKEN_SIGNING_ALG=EdDSA is ignored")).expect("a warning");
    assert!(warning.contains("ES256") && warning.contains("keys set-algorithm EdDSA"), "{warning}");
    assert_eq!(decode(&w.mint_ok(&s, job, &[])).0["alg"], "ES256", "the algorithm in force still signs");
    assert_eq!(w.introspect(&s, &es256_token)["active"], true);
}

#[test]
fn a_new_signing_algorithm_is_published_as_the_next_key_first_and_signs_only_after_the_cache_lifetime() {
    let s = Server::start_with(&[("JOBTOKEN_KEY_TICK_SECONDS", "1")]);
    let w = World::new(&s);
    let job = w.job(&s, true);
    let es256_token = w.mint_ok(&s, job, &[]);
    let es256_kid = kid_in(&keys(&s), "active");

    let out = cli_in(&s.dir, &["keys", "set-algorithm", "EdDSA"], &[]).output().unwrap();

    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("changed from ES256 to EdDSA"), "the change is logged");
    let next = kid_in(&keys(&s), "next");
    assert_eq!(keys(&s).iter().find(|k| k["kid"] == next.as_str()).unwrap()["alg"], "EdDSA");
    assert!(eventually(Duration::from_secs(10), || published_kids(&s).contains(&next)), "the server publishes it");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(kid_in(&keys(&s), "active"), es256_kid, "several key ticks later it still does not sign");
    assert_eq!(decode(&w.mint_ok(&s, job, &[])).0["alg"], "ES256");

    // The JWKS cache lifetime (300 s) counts from when the server published it, up to one key tick
    // (60 s) after another process created it: at 330 s it still does not sign.
    sql(&s.dir, &format!("UPDATE signing_keys SET created_at = created_at - 330 WHERE kid = '{next}'"));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(kid_in(&keys(&s), "active"), es256_kid, "300 s after creation is too early: {:?}", keys(&s));
    let early = s.json("POST", "/api/v1/keys/rotate", Auth::Admin, Value::Null);
    assert_eq!(early.status, 409, "{}", early.text);
    // Once it has been published for the cache lifetime after the last possible tick, the tick promotes it.
    sql(&s.dir, &format!("UPDATE signing_keys SET created_at = created_at - 30 WHERE kid = '{next}'"));
    assert!(eventually(Duration::from_secs(10), || kid_in(&keys(&s), "active") == next), "{:?}", keys(&s));
    let eddsa_token = w.mint_ok(&s, job, &[]);
    assert_eq!(decode(&eddsa_token).0["alg"], "EdDSA");
    assert_eq!(decode(&eddsa_token).0["kid"], json!(next));
    assert_eq!(verify_with_jwks(&s, &eddsa_token)["job_id"], json!(job));
    assert!(keys(&s).iter().filter(|k| k["state"] != "retired").all(|k| k["alg"] == "EdDSA"), "{:?}", keys(&s));
    assert_eq!(verify_with_jwks(&s, &es256_token)["job_id"], json!(job), "the retired ES256 key is still published");
    assert_eq!(w.introspect(&s, &es256_token)["active"], true);
}

#[cfg(unix)]
#[test]
fn private_keys_are_pem_files_readable_only_by_the_owner_and_never_served() {
    use std::os::unix::fs::PermissionsExt;
    // On PostgreSQL the keys are sealed in the database: tests/sealed_keys.rs checks them there.
    if common::sqlite_only("private_keys_are_pem_files_readable_only_by_the_owner… (PostgreSQL has no key files)") {
        return;
    }
    let s = Server::start();
    let kids = published_kids(&s);

    let files: Vec<_> = std::fs::read_dir(s.dir.join("keys")).unwrap().map(|e| e.unwrap().path()).collect();

    for kid in &kids {
        let file = files.iter().find(|f| f.to_string_lossy().contains(kid.as_str())).expect("a file per key");
        assert_eq!(std::fs::metadata(file).unwrap().permissions().mode() & 0o777, 0o600, "{file:?}");
        let pem = std::fs::read_to_string(file).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM: {file:?}");
        let body_line = pem.lines().nth(1).unwrap();
        for path in ["/.well-known/jwks.json", "/api/v1/keys", "/.well-known/openid-configuration"] {
            let served = s.get(path, Auth::Admin).text;
            assert!(!served.contains(body_line) && !served.contains("PRIVATE KEY"), "{path} leaks a key");
        }
        assert!(!s.log().contains(body_line), "the log leaks a key");
    }
}

#[test]
fn client_secrets_and_the_admin_token_are_stored_only_as_hashes() {
    let (s, printed) = Server::start_without_admin_token(common::temp_dir());
    let announced = printed.iter().position(|l| l.contains("admin token")).unwrap();
    let admin = printed[announced + 1..].iter().map(|l| l.trim()).find(|l| !l.is_empty()).unwrap().to_owned();
    let r = s.json("POST", "/api/v1/runners", Auth::Bearer(&admin), json!({"runner_type": "instance"}));
    let rs = s.json("POST", "/api/v1/resource_servers", Auth::Bearer(&admin), json!({"name": "registry"}));
    let secrets = [
        ("admin token", admin.clone()),
        ("runner secret", r.json["client_secret"].as_str().unwrap().to_owned()),
        ("resource server secret", rs.json["client_secret"].as_str().unwrap().to_owned()),
    ];
    let dir = s.stop();

    let stored = common::stored_bytes(&dir);

    assert!(!stored.is_empty());
    for (what, secret) in &secrets {
        let found = stored.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "the {what} is stored in clear");
    }
}

#[test]
fn rotating_a_next_key_younger_than_the_jwks_cache_lifetime_is_refused_unless_forced() {
    let s = Server::start();
    let before = s.admin("GET", "/api/v1/keys", Value::Null);

    let refused = s.json("POST", "/api/v1/keys/rotate", Auth::Admin, Value::Null);

    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.json["message"].as_str().unwrap().contains("force"), "{}", refused.text);
    assert_eq!(s.admin("GET", "/api/v1/keys", Value::Null), before, "a refused rotation changes nothing");
    let forced = s.json("POST", "/api/v1/keys/rotate?force=true", Auth::Admin, Value::Null);
    assert_eq!(forced.status, 200, "{}", forced.text);
    let bad = s.json("POST", "/api/v1/keys/rotate?force=maybe", Auth::Admin, Value::Null);
    assert_eq!(bad.status, 400, "{}", bad.text);
}

#[test]
fn concurrent_unforced_rotations_from_the_api_and_the_cli_give_exactly_one_success_and_409s() {
    let s = Server::start();
    let old_next = kid_in(&keys(&s), "next");
    // The next key has been published for the JWKS cache lifetime: one rotation may promote it,
    // and the next key that rotation creates is too young for any other.
    sql(&s.dir, "UPDATE signing_keys SET created_at = created_at - 360 WHERE state = 'next'");
    let barrier = std::sync::Barrier::new(8);

    let (api, cli): (Vec<u16>, Vec<Option<i32>>) = std::thread::scope(|scope| {
        let api: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    s.json("POST", "/api/v1/keys/rotate", Auth::Admin, Value::Null).status
                })
            })
            .collect();
        let cli: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    cli_in(&s.dir, &["keys", "rotate"], &[]).output().unwrap().status.code()
                })
            })
            .collect();
        (api.into_iter().map(|h| h.join().unwrap()).collect(), cli.into_iter().map(|h| h.join().unwrap()).collect())
    });

    let successes = api.iter().filter(|c| **c == 200).count() + cli.iter().filter(|c| **c == Some(0)).count();
    assert_eq!(successes, 1, "exactly one rotation: API {api:?}, CLI {cli:?}");
    assert!(api.iter().all(|c| *c == 200 || *c == 409), "the others are refused with 409: {api:?}");
    assert!(cli.iter().all(|c| *c == Some(0) || *c == Some(1)), "{cli:?}");
    let after = keys(&s);
    assert_eq!(kid_in(&after, "active"), old_next, "{after:?}");
    assert_eq!(after.iter().filter(|k| k["state"] == "retired").count(), 1, "one rotation, not several: {after:?}");
}

/// Mints for `job` on `threads` threads until `stop` is set; returns every token answered 200.
fn mint_until(s: &Server, w: &World, job: i64, threads: usize, stop: &AtomicBool) -> Vec<String> {
    mint_counting(s, w, job, threads, stop, &AtomicUsize::new(0))
}

/// [`mint_until`], counting the tokens answered 200 in `minted` as they come.
fn mint_counting(
    s: &Server,
    w: &World,
    job: i64,
    threads: usize,
    stop: &AtomicBool,
    minted: &AtomicUsize,
) -> Vec<String> {
    std::thread::scope(|scope| {
        let minters: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut got = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let res = w.mint(s, job, &[]);
                        if res.status == 200 {
                            got.push(res.json["access_token"].as_str().unwrap().to_owned());
                            minted.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    got
                })
            })
            .collect();
        minters.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

/// Every token verifies against the JWKS the server publishes now, and introspects active.
fn assert_all_answered(s: &Server, w: &World, tokens: &[String]) {
    let jwks = s.get("/.well-known/jwks.json", Auth::None).text;
    let unverified: Vec<String> = tokens.iter().filter_map(|t| verify_against(&jwks, t).err()).collect();
    assert!(unverified.is_empty(), "{} of {} tokens do not verify: {:?}", unverified.len(), tokens.len(), unverified);
    let inactive = tokens.iter().filter(|t| w.introspect(s, t)["active"] != true).count();
    assert_eq!(inactive, 0, "of {} tokens", tokens.len());
}

#[test]
fn forced_rotations_during_concurrent_minting_keep_the_key_of_every_token_that_got_a_200() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    // An operator forces two rotations from the CLI: the server signs on with the key it loaded
    // until its next key tick, though that key is retired now and has no recorded token yet.
    for _ in 0..2 {
        let out = cli_in(&s.dir, &["keys", "rotate", "--force"], &[]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let (stop, minted) = (AtomicBool::new(false), AtomicUsize::new(0));

    // Then forced rotations through the API, two back to back, while three runners mint: a key
    // is often retired moments after it started signing, its tokens still in the writer's queue.
    // They rotate for at least 1.5 s, and on until the runners have 50 tokens (however loaded
    // the machine), within a minute.
    let (tokens, rotations) = std::thread::scope(|scope| {
        let rotators: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    std::thread::sleep(Duration::from_millis(300));
                    let mut rotations = 0;
                    let started = Instant::now();
                    let until = started + Duration::from_millis(1500);
                    let deadline = started + Duration::from_secs(60);
                    while Instant::now() < until
                        || (minted.load(Ordering::SeqCst) < 50 || rotations < 2) && Instant::now() < deadline
                    {
                        let res = s.json("POST", "/api/v1/keys/rotate?force=true", Auth::Admin, Value::Null);
                        assert_eq!(res.status, 200, "{}", res.text);
                        rotations += 1;
                    }
                    stop.store(true, Ordering::Relaxed);
                    rotations
                })
            })
            .collect();
        let tokens = mint_counting(&s, &w, job, 3, &stop, &minted);
        (tokens, rotators.into_iter().map(|h| h.join().unwrap()).sum::<usize>())
    });
    let s = Server::start_in(s.stop(), &[]);

    assert!(rotations >= 4 && tokens.len() >= 50, "{rotations} rotations, {} tokens", tokens.len());
    let kids: std::collections::HashSet<Value> = tokens.iter().map(|t| decode(t).0["kid"].clone()).collect();
    assert!(kids.len() >= 3, "tokens of several keys: {}", kids.len());
    assert_all_answered(&s, &w, &tokens);
}

#[test]
fn two_servers_with_different_algorithms_on_one_database_never_rotate_against_each_other() {
    let es256 = Server::start_with(&[("JOBTOKEN_KEY_TICK_SECONDS", "1")]);
    let w = World::new(&es256);
    let job = w.job(&es256, true);
    let rows = key_rows(&es256.dir);

    let eddsa =
        Server::start_in(es256.dir.clone(), &[("JOBTOKEN_SIGNING_ALG", "EdDSA"), ("JOBTOKEN_KEY_TICK_SECONDS", "1")]);
    let from_eddsa = w.mint_ok(&eddsa, job, &[]);
    std::thread::sleep(Duration::from_secs(5));

    assert_eq!(key_rows(&es256.dir), rows, "five key ticks of each server later, no key changed");
    let log = es256.log();
    let changes: Vec<&str> = log
        .lines()
        .filter(|l| {
            let job_key = l.contains("signing key") && !l.contains("ID-token signing key");
            job_key && ["retired", "now active", "dropped", "created"].iter().any(|w| l.contains(w))
        })
        .collect();
    assert_eq!(changes.len(), 2, "only the first start's active and next keys: {changes:#?}");
    assert!(log.contains("JOBTOKEN_SIGNING_ALG=EdDSA is ignored"), "the mismatch is a warning");
    assert_eq!(decode(&from_eddsa).0["alg"], "ES256", "both sign with the algorithm in force");
    assert_eq!(decode(&w.mint_ok(&es256, job, &[])).0["kid"], decode(&from_eddsa).0["kid"]);
    assert_eq!(verify_with_jwks(&es256, &from_eddsa)["job_id"], json!(job));
}

#[test]
fn kill_9_during_a_rotation_loop_leaves_one_active_and_one_next_key_and_every_issued_token_verifies() {
    let s = Server::start_with(&[("JOBTOKEN_KEY_TICK_SECONDS", "1")]);
    let w = World::new(&s);
    let job = w.job(&s, true);
    let first_active = kid_in(&keys(&s), "active");
    let rotate = || cli_in(&s.dir, &["keys", "rotate", "--force"], &[("RUST_LOG", "warn")]);
    let started = Instant::now();
    assert!(rotate().output().unwrap().status.success());
    // Kill points spread over about twice the time a whole rotation takes.
    let span = (started.elapsed().as_micros() as u64 * 2).max(1);
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let stop = AtomicBool::new(false);

    let tokens = std::thread::scope(|scope| {
        let minted = scope.spawn(|| mint_until(&s, &w, job, 2, &stop));
        for _ in 0..16 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut child = rotate().stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
            std::thread::sleep(Duration::from_micros(seed % span));
            let _ = child.kill(); // SIGKILL, whether midway or already done
            child.wait().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        minted.join().unwrap()
    });
    let dir = s.stop(); // and kill -9 the server
    let s = Server::start_in(dir, &[]);

    let listed = keys(&s);
    kid_in(&listed, "active");
    kid_in(&listed, "next");
    assert_ne!(kid_in(&listed, "active"), first_active);
    // Its private key: a key file, or on PostgreSQL sealed in its row.
    let (files, sealed) = (key_files(&s.dir), common::sealed_key_rows(&s.dir));
    for kid in published_kids(&s) {
        let kept = if common::on_postgres() {
            sealed.iter().any(|(k, key)| *k == kid && key.is_some())
        } else {
            files.iter().any(|(name, _)| *name == format!("{kid}.pem"))
        };
        assert!(kept, "published {kid} has its private key");
    }
    assert!(!tokens.is_empty());
    assert_all_answered(&s, &w, &tokens);
}
