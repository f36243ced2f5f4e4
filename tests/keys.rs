//! Signing keys (SPEC §7): the key list, rotation, RFC 7638 kids, the three algorithms, and what
//! survives a restart.
#![allow(clippy::unwrap_used)]

mod common;

use common::{decode, jwk_thumbprint, jwks, published_kids, verify_with_jwks, Auth, Server, World};
use serde_json::{json, Value};

/// `GET /api/v1/keys`.
fn keys(s: &Server) -> Vec<Value> {
    let res = s.get("/api/v1/keys", Auth::Admin);
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
fn a_retired_key_that_signed_nothing_leaves_the_jwks() {
    let s = Server::start();
    let unused = kid_in(&keys(&s), "active");

    s.admin("POST", "/api/v1/keys/rotate?force=true", Value::Null);

    assert!(!published_kids(&s).contains(&unused), "no token needs {unused}");
    assert_eq!(published_kids(&s).len(), 2);
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
fn changing_the_algorithm_on_restart_switches_keys_and_keeps_old_tokens_valid() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    let es256_token = w.mint_ok(&s, job, &[]);
    let dir = s.stop();

    let s = Server::start_in(dir, &[("JOBTOKEN_SIGNING_ALG", "EdDSA")]);

    let listed = keys(&s);
    let active = listed.iter().find(|k| k["state"] == "active").unwrap();
    assert_eq!(active["alg"], "EdDSA");
    assert_eq!(listed.iter().find(|k| k["state"] == "next").unwrap()["alg"], "EdDSA");
    assert_eq!(w.introspect(&s, &es256_token)["active"], true);
    assert_eq!(verify_with_jwks(&s, &es256_token)["job_id"], json!(job), "the retired ES256 key is still published");
    let eddsa_token = w.mint_ok(&s, job, &[]);
    assert_eq!(decode(&eddsa_token).0["alg"], "EdDSA");
    assert_eq!(decode(&eddsa_token).0["kid"], active["kid"]);
    assert_eq!(verify_with_jwks(&s, &eddsa_token)["job_id"], json!(job));
}

#[cfg(unix)]
#[test]
fn private_keys_are_pem_files_readable_only_by_the_owner_and_never_served() {
    use std::os::unix::fs::PermissionsExt;
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

    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir.join("db")).unwrap() {
        stored.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }

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
