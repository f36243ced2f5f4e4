//! The `jobtoken` command line (SPEC §8): `token verify` as a registry would run it (exit 0
//! valid, 1 invalid, 2 when the JWKS cannot be had), `token decode`, and `keys list|rotate` on a
//! stopped server's database and keys.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{b64url, decode, Server, World};
use serde_json::{json, Value};

/// Runs the binary with a clean environment plus `env`.
fn jobtoken(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobtoken"));
    cmd.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `token verify TOKEN --jwks JWKS --expect-issuer ISSUER --expect-audience AUDIENCE`.
fn verify(token: &str, jwks: &str, issuer: &str, audience: &str) -> Output {
    jobtoken(&["token", "verify", token, "--jwks", jwks, "--expect-issuer", issuer, "--expect-audience", audience], &[])
}

fn running_token(s: &Server) -> (i64, String) {
    let w = World::new(s);
    let job = w.job(s, true);
    (job, w.mint_ok(s, job, &[("audience", "registry")]))
}

#[test]
fn token_verify_accepts_a_valid_token_from_a_jwks_url_or_file_and_prints_its_claims() {
    let s = Server::start();
    let (job, token) = running_token(&s);
    let jwks_url = s.url("/.well-known/jwks.json");

    let out = verify(&token, &jwks_url, &s.base, "registry");

    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let claims: Value = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    assert_eq!(claims, decode(&token).1);
    assert_eq!(claims["job_id"], json!(job));

    // Offline, from a saved JWKS, with the server gone.
    let file = s.dir.join("jwks.json");
    std::fs::write(&file, s.get("/.well-known/jwks.json", common::Auth::None).text).unwrap();
    let base = s.base.clone();
    s.stop();
    let out = verify(&token, file.to_str().unwrap(), &base, "registry");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(serde_json::from_str::<Value>(&stdout(&out)).unwrap()["job_id"], json!(job));
}

#[test]
fn token_verify_refuses_a_wrong_audience_or_issuer_with_the_reason() {
    let s = Server::start();
    let (_, token) = running_token(&s);
    let jwks_url = s.url("/.well-known/jwks.json");

    let out = verify(&token, &jwks_url, &s.base, "somewhere-else");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("aud"), "the reason names aud: {}", stderr(&out));
    assert!(stdout(&out).is_empty(), "no claims for an invalid token: {}", stdout(&out));

    let out = verify(&token, &jwks_url, "https://evil.example", "registry");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("iss"), "the reason names iss: {}", stderr(&out));
}

#[test]
fn token_verify_takes_the_issuer_and_audience_from_issuer_and_audience_flags() {
    let s = Server::start();
    let (_, token) = running_token(&s);
    let jwks_url = s.url("/.well-known/jwks.json");
    let run = |issuer: &str, audience: &str| {
        jobtoken(&["token", "verify", &token, "--jwks", &jwks_url, "--issuer", issuer, "--audience", audience], &[])
    };

    assert_eq!(run(&s.base, "registry").status.code(), Some(0));
    let wrong_issuer = run("https://evil.example", "registry");
    assert_eq!(wrong_issuer.status.code(), Some(1));
    assert!(stderr(&wrong_issuer).contains("iss"), "{}", stderr(&wrong_issuer));
    assert_eq!(run(&s.base, "elsewhere").status.code(), Some(1));
}

#[test]
fn token_verify_refuses_a_tampered_token() {
    let s = Server::start();
    let (job, token) = running_token(&s);
    let parts: Vec<&str> = token.split('.').collect();
    let (_, mut claims) = decode(&token);
    claims["job_id"] = json!(job + 1);
    let tampered = format!("{}.{}.{}", parts[0], b64url(claims.to_string().as_bytes()), parts[2]);

    let out = verify(&tampered, &s.url("/.well-known/jwks.json"), &s.base, "registry");

    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(!stderr(&out).trim().is_empty());
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    let out = verify("not-a-token", &s.url("/.well-known/jwks.json"), &s.base, "registry");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[test]
fn token_verify_exits_2_when_the_jwks_cannot_be_fetched() {
    let s = Server::start();
    let (_, token) = running_token(&s);

    let out = verify(&token, "http://127.0.0.1:1/jwks", &s.base, "registry");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("127.0.0.1:1"), "{}", stderr(&out));

    let missing = s.dir.join("no-such-jwks.json");
    let out = verify(&token, missing.to_str().unwrap(), &s.base, "registry");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn token_decode_prints_header_and_claims_unverified() {
    let s = Server::start();
    let (job, token) = running_token(&s);

    let out = jobtoken(&["token", "decode", &token], &[]);

    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed: Value = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    let (header, claims) = decode(&token);
    assert_eq!(printed["verified"], json!(false));
    assert_eq!(printed["header"], header);
    assert_eq!(printed["header"]["typ"], "at+jwt");
    assert_eq!(printed["claims"], claims);
    assert_eq!(printed["claims"]["job_id"], json!(job));

    let out = jobtoken(&["token", "decode", "not-a-token"], &[]);
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// `keys list` (or `keys rotate`) on `dir`: the JSON lines it printed, and any other lines.
fn keys(dir: &Path, command: &[&str]) -> (Vec<Value>, Vec<String>) {
    let args: Vec<&str> = ["keys"].into_iter().chain(command.iter().copied()).collect();
    let out = common::cli_in(dir, &args, &[("RUST_LOG", "warn")]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let (json, other): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with('{'));
    (json.iter().map(|l| serde_json::from_str(l).unwrap()).collect(), other.iter().map(|l| l.to_string()).collect())
}

fn kid_in(keys: &[Value], state: &str) -> String {
    let found: Vec<&Value> = keys.iter().filter(|k| k["state"] == state).collect();
    assert_eq!(found.len(), 1, "exactly one {state} key: {keys:?}");
    found[0]["kid"].as_str().unwrap().to_owned()
}

#[test]
fn keys_list_and_rotate_work_on_a_stopped_servers_directory() {
    let s = Server::start();
    let served = s.get("/api/v1/keys?family=job", common::Auth::Admin).json;
    let both = s.get("/api/v1/keys", common::Auth::Admin).json;
    let dir = s.stop();

    let (all, other) = keys(&dir, &["list"]);
    assert!(other.is_empty(), "only JSON lines: {other:?}");
    assert_eq!(json!(all), both, "keys list shows what GET /api/v1/keys shows, both families");
    let families: Vec<&str> = all.iter().map(|k| k["family"].as_str().unwrap()).collect();
    assert_eq!(families, ["job", "job", "id_token", "id_token"], "a family column, job-token keys first");
    let (listed, _) = keys(&dir, &["list", "--family", "job"]);
    assert_eq!(listed.len(), 2, "{listed:?}");
    let (active, next) = (kid_in(&listed, "active"), kid_in(&listed, "next"));
    assert_eq!(active, kid_in(served.as_array().unwrap(), "active"));
    assert_eq!(next, kid_in(served.as_array().unwrap(), "next"));
    assert!(listed.iter().all(|k| k["alg"] == "ES256"), "{listed:?}");

    // The next key was created a moment ago: verifiers' cached JWKS may not hold it yet.
    let refused = common::cli_in(&dir, &["keys", "rotate"], &[]).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("force"), "{}", stderr(&refused));
    let (unchanged, _) = keys(&dir, &["list", "--family", "job"]);
    assert_eq!(kid_in(&unchanged, "active"), active, "a refused rotation changes nothing");

    let (rotated, _) = keys(&dir, &["rotate", "--force"]);
    assert_eq!(kid_in(&rotated, "active"), next, "the next key is active: {rotated:?}");
    let new_next = kid_in(&rotated, "next");
    assert!(new_next != active && new_next != next);

    let (after, _) = keys(&dir, &["list", "--family", "job"]);
    assert_eq!(kid_in(&after, "active"), next);
    assert_eq!(kid_in(&after, "next"), new_next);

    // A server started on the directory signs with the key the CLI promoted.
    let s = Server::start_in(dir, &[]);
    let (_, token) = running_token(&s);
    assert_eq!(decode(&token).0["kid"], json!(next));
}

#[test]
fn keys_list_changes_nothing_even_when_rotations_and_drops_are_due_or_the_environment_is_stale() {
    let s = Server::start();
    running_token(&s);
    s.admin("POST", "/api/v1/keys/rotate?force=true", Value::Null);
    let dir = s.stop();
    // A month later: the active key is due for rotation, the retired one's tokens have expired.
    common::sql(
        &dir,
        "UPDATE signing_keys SET created_at = created_at - 3000000, activated_at = activated_at - 3000000,
                                 retired_at = retired_at - 3000000;
         UPDATE issued_tokens SET expires_at = expires_at - 3000000;",
    );
    let (rows, files) = (common::key_rows(&dir), common::key_files(&dir));
    assert_eq!(rows.len(), 3, "{rows:?}");

    for env in [vec![], vec![("JOBTOKEN_SIGNING_ALG", "RS256"), ("JOBTOKEN_KEY_ROTATION_DAYS", "1")]] {
        let out = common::cli_in(&dir, &["keys", "list"], &env).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out).lines().count(), 5, "three job-token keys, two ID-token keys: {}", stdout(&out));
        assert_eq!(common::key_rows(&dir), rows, "keys list changed key metadata ({env:?})");
        assert_eq!(common::key_files(&dir), files, "keys list changed key files ({env:?})");
    }
}

#[test]
fn keys_list_on_an_empty_database_creates_no_key() {
    let dir = common::temp_dir();

    let out = common::cli_in(&dir, &["keys", "list"], &[]).output().unwrap();

    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "no keys to list");
    assert!(stderr(&out).contains("no signing keys yet"), "{}", stderr(&out));
    assert!(common::key_rows(&dir).is_empty());
    assert!(common::key_files(&dir).is_empty(), "{:?}", common::key_files(&dir));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn keys_rotate_and_set_algorithm_take_a_family_and_leave_the_other_alone() {
    let dir = Server::start().stop();
    let (ids, _) = keys(&dir, &["list", "--family", "id_token"]);
    assert!(ids.iter().all(|k| k["family"] == "id_token" && k["alg"] == "RS256"), "{ids:?}");
    let (jobs, _) = keys(&dir, &["list", "--family", "job"]);

    let (rotated, _) = keys(&dir, &["rotate", "--family", "id_token", "--force"]);
    assert!(rotated.iter().all(|k| k["family"] == "id_token"), "{rotated:?}");
    assert_eq!(kid_in(&rotated, "active"), kid_in(&ids, "next"), "the next ID-token key is active");
    assert_eq!(keys(&dir, &["list", "--family", "job"]).0, jobs, "job-token keys untouched");

    let (changed, said) = keys(&dir, &["set-algorithm", "--family", "id_token", "ES256"]);
    assert!(said.iter().any(|l| l.contains("ID-token signing algorithm in force: ES256")), "{said:?}");
    let next: Vec<&Value> = changed.iter().filter(|k| k["state"] == "next").collect();
    assert_eq!(next.len(), 1, "{changed:?}");
    assert_eq!(next[0]["alg"], "ES256", "a next key of the new algorithm is published: {changed:?}");
    assert_eq!(keys(&dir, &["list", "--family", "job"]).0, jobs, "job-token keys untouched");

    for (args, says) in [
        (&["keys", "set-algorithm", "--family", "id_token", "EdDSA"][..], "RS256 or ES256"),
        (&["keys", "rotate", "--family", "nope"][..], "job or id_token"),
    ] {
        let refused = common::cli_in(&dir, args, &[]).output().unwrap();
        assert!(!refused.status.success(), "{args:?}");
        assert!(stderr(&refused).contains(says), "{args:?}: {}", stderr(&refused));
    }
    let (unchanged, _) = keys(&dir, &["list", "--family", "id_token"]);
    assert_eq!(unchanged, changed, "a refused command changes nothing");
}
