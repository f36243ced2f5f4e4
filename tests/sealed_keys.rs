//! Private keys sealed in the database (issue 8, step 2b): with `JOBTOKEN_KEY_ENCRYPTION_KEY` set
//! (and always on PostgreSQL) the signing keys live in `signing_keys.sealed_private_key`, sealed
//! under that key, not in the keys directory; a wrong key or a storage switch is refused at
//! start-up; `jobtoken keys rewrap` moves them to a new key-encryption key.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::{
    cli_in, eventually, key_files, published_kids, random_key_encryption_key as random_key, sealed_key_rows, sql,
    temp_dir, verify_with_jwks, Server, World,
};
use serde_json::Value;

const KEK: &str = "JOBTOKEN_KEY_ENCRYPTION_KEY";

/// Asserts every key row holds a sealed key (jtk1 format, no PEM text) and no key file exists.
fn assert_sealed_in_the_database(dir: &std::path::Path) -> Vec<String> {
    let rows = sealed_key_rows(dir);
    assert!(rows.len() >= 2, "{rows:?}");
    for (kid, sealed) in &rows {
        let sealed = sealed.as_ref().unwrap_or_else(|| panic!("key {kid} has no sealed private key"));
        assert!(sealed.starts_with(b"jtk1"), "key {kid} is not sealed");
        let text = String::from_utf8_lossy(sealed);
        assert!(!text.contains("PRIVATE KEY") && !text.contains("MII"), "key {kid} is stored as PEM");
    }
    assert!(key_files(dir).iter().all(|(name, _)| !name.ends_with(".pem")), "{:?}", key_files(dir));
    rows.into_iter().map(|(kid, _)| kid).collect()
}

/// Runs `jobtoken keys rewrap` on `dir`'s database with the keys in the environment.
fn rewrap(dir: &std::path::Path, old: &str, new: &str) -> std::process::Output {
    cli_in(
        dir,
        &["keys", "rewrap"],
        &[("JOBTOKEN_KEY_ENCRYPTION_KEY_OLD", old), ("JOBTOKEN_KEY_ENCRYPTION_KEY_NEW", new)],
    )
    .output()
    .unwrap()
}

#[test]
fn with_a_key_encryption_key_keys_live_sealed_in_the_database_and_a_restart_loads_them() {
    // Arrange
    let key = random_key();
    let s = Server::start_with(&[(KEK, &key)]);
    let w = World::new(&s);
    let job = w.job(&s, false);

    // Act
    let before = w.mint_ok(&s, job, &[]);
    let kids = assert_sealed_in_the_database(&s.dir);
    let dir = s.stop();
    let s = Server::start_in(dir, &[(KEK, &key)]);

    // Assert: the restarted server publishes the same keys, verifies the old token, signs new ones.
    let mut published = published_kids(&s);
    published.sort();
    assert_eq!(published, kids);
    assert_eq!(verify_with_jwks(&s, &before)["job_id"], job);
    assert_eq!(w.introspect(&s, &before)["active"], true);
    let after = w.mint_ok(&s, job, &[]);
    assert_eq!(verify_with_jwks(&s, &after)["job_id"], job);
    assert!(!s.log().contains(&key[..16]), "the log shows the key-encryption key");
}

#[test]
fn a_wrong_key_encryption_key_at_start_up_is_refused_naming_the_setting_and_the_kid_not_the_key() {
    // Arrange
    let s = Server::start_with(&[(KEK, &random_key())]);
    let dir = s.stop();
    let rows_before = sealed_key_rows(&dir);
    let wrong = random_key();

    // Act
    let log = Server::start_expecting_failure_with(dir.clone(), &[(KEK, &wrong)]);

    // Assert
    assert!(log.contains("does not open under JOBTOKEN_KEY_ENCRYPTION_KEY"), "{log}");
    assert!(rows_before.iter().any(|(kid, _)| log.contains(kid.as_str())), "the refusal names no kid: {log}");
    assert!(!log.contains(&wrong[..16]), "{log}");
    assert_eq!(sealed_key_rows(&dir), rows_before, "a refused start changed the keys");
}

#[test]
fn keys_rewrap_reseals_every_key_so_the_new_key_starts_and_the_old_is_refused() {
    // Arrange
    let (old, new) = (random_key(), random_key());
    let s = Server::start_with(&[(KEK, &old)]);
    let w = World::new(&s);
    let job = w.job(&s, false);
    let token = w.mint_ok(&s, job, &[]);
    let dir = s.stop();
    // Every key, of both families (job tokens and ID tokens).
    let count = sealed_key_rows(&dir).len() + common::id_token_kids(&dir).len();

    // Act
    let first = rewrap(&dir, &old, &new);
    let second = rewrap(&dir, &old, &new);

    // Assert: counts printed, idempotent, no key on the output.
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(out.contains(&format!("rewrapped {count} signing key(s)")) && out.contains("0 already were"), "{out}");
    let again = String::from_utf8_lossy(&second.stdout);
    assert!(
        second.status.success()
            && again.contains(&format!(
                "rewrapped 0 signing key(s) under the new key-encryption key; {count} already were"
            )),
        "{again}"
    );
    for output in [&first, &second] {
        let shown = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(!shown.contains(&old[..16]) && !shown.contains(&new[..16]), "{shown}");
    }
    assert_sealed_in_the_database(&dir);
    let log = Server::start_expecting_failure_with(dir.clone(), &[(KEK, &old)]);
    assert!(log.contains("does not open under JOBTOKEN_KEY_ENCRYPTION_KEY"), "{log}");
    let s = Server::start_in(dir, &[(KEK, &new)]);
    assert_eq!(verify_with_jwks(&s, &token)["job_id"], job);
    assert_eq!(verify_with_jwks(&s, &w.mint_ok(&s, job, &[]))["job_id"], job);
}

#[test]
fn keys_rewrap_refuses_a_key_that_opens_under_neither_and_changes_nothing() {
    // Arrange
    let s = Server::start_with(&[(KEK, &random_key())]);
    let dir = s.stop();
    let before = sealed_key_rows(&dir);

    // Act
    let out = rewrap(&dir, &random_key(), &random_key());
    let weak = rewrap(&dir, &STANDARD.encode([7u8; 32]), &random_key());

    // Assert
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("opens under neither --from-key nor --to-key") && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    let stderr = String::from_utf8_lossy(&weak.stderr);
    assert!(!weak.status.success() && stderr.contains("JOBTOKEN_KEY_ENCRYPTION_KEY_OLD (--from-key)"), "{stderr}");
    assert_eq!(sealed_key_rows(&dir), before);
}

#[test]
fn rotation_with_database_storage_seals_new_keys_and_a_dropped_key_leaves_with_its_row() {
    // Arrange
    let key = random_key();
    let s = Server::start_with(&[(KEK, &key), ("JOBTOKEN_KEY_TICK_SECONDS", "1")]);
    let w = World::new(&s);
    let job = w.job(&s, false);

    // Act: rotate through the API and the CLI.
    let rotated = s.json("POST", "/api/v1/keys/rotate?force=true", common::Auth::Admin, Value::Null);
    let cli = cli_in(&s.dir, &["keys", "rotate", "--force"], &[(KEK, &key)]).output().unwrap();

    // Assert: four sealed keys, none in files; tokens verify against the JWKS.
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    assert_eq!(assert_sealed_in_the_database(&s.dir).len(), 4);
    assert!(eventually(Duration::from_secs(10), || published_kids(&s).len() == 4), "{:?}", published_kids(&s));
    let token = w.mint_ok(&s, job, &[]);
    assert_eq!(verify_with_jwks(&s, &token)["job_id"], job);
    // Retired keys that signed nothing are dropped once their grace has passed, sealed bytes too.
    sql(&s.dir, "UPDATE signing_keys SET retired_at = retired_at - 300 WHERE state = 'retired'");
    assert!(
        eventually(Duration::from_secs(10), || sealed_key_rows(&s.dir).len() == 2),
        "{:?}",
        sealed_key_rows(&s.dir)
    );
    assert_eq!(assert_sealed_in_the_database(&s.dir).len(), 2);
    assert_eq!(verify_with_jwks(&s, &w.mint_ok(&s, job, &[]))["job_id"], job);
}

#[test]
fn switching_an_installation_between_key_files_and_the_database_is_refused_naming_the_setting() {
    if common::sqlite_only(
        "switching_an_installation_between_key_files_and_the_database… (PostgreSQL has no key files)",
    ) {
        return;
    }
    // Arrange: one installation with key files, one with sealed keys.
    let files = Server::start().stop();
    let sealed = Server::start_with(&[(KEK, &random_key())]).stop();
    let (files_rows, sealed_rows) = (sealed_key_rows(&files), sealed_key_rows(&sealed));

    // Act
    let to_database = Server::start_expecting_failure_with(files.clone(), &[(KEK, &random_key())]);
    let to_files = Server::start_expecting_failure(sealed.clone());

    // Assert
    assert!(
        to_database.contains("lives in the keys directory, but JOBTOKEN_KEY_ENCRYPTION_KEY is set"),
        "{to_database}"
    );
    assert!(to_files.contains("is sealed in the database, but JOBTOKEN_KEY_ENCRYPTION_KEY is not set"), "{to_files}");
    assert_eq!(sealed_key_rows(&files), files_rows);
    assert_eq!(sealed_key_rows(&sealed), sealed_rows);
    assert!(key_files(&sealed).is_empty(), "{:?}", key_files(&sealed));
}

#[test]
fn a_postgresql_database_without_a_key_encryption_key_is_refused_at_start_up() {
    for url in
        ["postgres://jobtoken@127.0.0.1:1/jobtoken", "postgresql://jobtoken@127.0.0.1:1/jobtoken?sslmode=disable"]
    {
        // Arrange
        let dir = temp_dir();

        // Act
        let log = Server::start_expecting_failure_with(dir.clone(), &[("JOBTOKEN_DATABASE", url)]);

        // Assert
        assert!(log.contains("JOBTOKEN_KEY_ENCRYPTION_KEY is required with a PostgreSQL database"), "{log}");
        assert!(log.contains("openssl rand -base64 32"), "{log}");
        assert!(!dir.join("keys").exists() && !dir.join("postgres:").exists(), "something was created");
    }
}
