//! TLS to PostgreSQL as libpq's `sslmode` means it, against a cluster that demands TLS (see
//! tests/common/pg_tls.rs), whatever `JOBTOKEN_TEST_BACKEND` says.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

/// The key-encryption key of every server here (two may share a database).
fn kek() -> &'static str {
    static KEK: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEK.get_or_init(random_key_encryption_key)
}

/// A server on `url`; it must start and mint.
fn serves(url: &str) -> Server {
    let s = Server::start_with(&[("JOBTOKEN_DATABASE", url), ("JOBTOKEN_KEY_ENCRYPTION_KEY", kek())]);
    let w = World::new(&s);
    let job = w.job(&s, false);
    let token = w.mint_ok(&s, job, &[]);
    assert_eq!(w.introspect(&s, &token)["active"], true);
    s
}

/// `jobtoken serve` on `url` must refuse to start; returns what it logged.
fn refused(url: &str) -> String {
    Server::start_expecting_failure_with(
        temp_dir(),
        &[("JOBTOKEN_DATABASE", url), ("JOBTOKEN_KEY_ENCRYPTION_KEY", kek())],
    )
}

/// `url` (host 127.0.0.1) with its host replaced by `localhost`, the name on the certificate.
fn on_localhost(url: &str) -> String {
    url.replace("@127.0.0.1:", "@localhost:")
}

#[test]
fn sslmode_require_and_the_default_prefer_connect_encrypted_to_a_server_that_demands_tls() {
    let (required, preferred) = (pg_tls::database(), pg_tls::database());
    let _a = serves(&format!("{required}?sslmode=require"));
    let _b = serves(&preferred);
    // Every connection the two servers hold is encrypted (the harness's plain one is on `postgres`).
    let tls = pg_tls::cluster();
    let mut admin = pg::connect(&tls.cluster.url("postgres"));
    for url in [required, preferred] {
        let name = url.rsplit('/').next().unwrap().to_owned();
        let rows = admin
            .query("SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1", &[&name])
            .unwrap();
        assert!(!rows.is_empty() && rows.iter().all(|r| r.get::<_, bool>(0)), "{name}: {rows:?}");
    }
}

#[test]
fn sslmode_verify_full_with_the_right_ca_and_host_name_connects() {
    let tls = pg_tls::cluster();
    let url = on_localhost(&pg_tls::database());
    serves(&format!("{url}?sslmode=verify-full&sslrootcert={}", tls.ca.display()));
}

#[test]
fn sslmode_verify_full_with_a_wrong_ca_is_refused_at_start_up_with_the_reason() {
    let tls = pg_tls::cluster();
    let url = on_localhost(&pg_tls::database());
    let log = refused(&format!("{url}?sslmode=verify-full&sslrootcert={}", tls.other_ca.display()));
    assert!(log.contains("TLS handshake") && log.contains("UnknownIssuer"), "{log}");
}

#[test]
fn sslmode_verify_full_with_a_wrong_host_name_is_refused_but_verify_ca_accepts_it() {
    let tls = pg_tls::cluster();
    // The certificate names localhost, not 127.0.0.1.
    let url = pg_tls::database();
    let log = refused(&format!("{url}?sslmode=verify-full&sslrootcert={}", tls.ca.display()));
    assert!(log.contains("TLS handshake") && log.contains("not valid for name"), "{log}");
    serves(&format!("{url}?sslmode=verify-ca&sslrootcert={}", tls.ca.display()));
    let log = refused(&format!("{url}?sslmode=verify-ca&sslrootcert={}", tls.other_ca.display()));
    assert!(log.contains("UnknownIssuer"), "{log}");
}

#[test]
fn sslmode_disable_against_a_server_that_demands_tls_is_refused_at_start_up_with_the_reason() {
    let url = pg_tls::database();
    let log = refused(&format!("{url}?sslmode=disable"));
    assert!(log.contains("no pg_hba.conf entry") && log.contains("no encryption"), "{log}");
    assert!(log.contains("database unavailable"), "{log}");
}
