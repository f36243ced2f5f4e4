//! Running jobtoken as a service, the parts that do not depend on the database backend (so not
//! in tests/on_postgres.rs): HTTPS with rustls, the TOML configuration file, per-subcommand help,
//! the log format setting, and `token decode -` / `token verify -` reading standard input.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{temp_dir, Auth, Server, World};
use serde_json::{json, Value};

/// Writes a self-signed certificate for 127.0.0.1 and its key into `dir`; returns their paths
/// and the certificate's PEM.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf, String) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key, made.cert.pem())
}

/// A client that trusts only `ca_pem` (none: the public web roots).
fn client(ca_pem: Option<&str>) -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let mut tls = TlsConfig::builder();
    if let Some(pem) = ca_pem {
        tls = tls.root_certs(RootCerts::Specific(Arc::new(vec![Certificate::from_pem(pem.as_bytes()).unwrap()])));
    }
    ureq::Agent::config_builder()
        .tls_config(tls.build())
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn get(agent: &ureq::Agent, url: &str, admin: bool) -> Result<(u16, Value), ureq::Error> {
    let mut req = agent.get(url);
    if admin {
        req = req.header("Authorization", format!("Bearer {}", common::ADMIN));
    }
    let mut res = req.call()?;
    let status = res.status().as_u16();
    let text = res.body_mut().read_to_string().unwrap_or_default();
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

#[test]
fn https_serves_a_client_that_trusts_the_certificate_on_both_listeners_and_fails_one_that_does_not() {
    let certs = temp_dir();
    let (cert, key, pem) = self_signed(&certs);
    let (s, admin) = Server::start_split(&[
        ("JOBTOKEN_TLS_CERT", cert.to_str().unwrap()),
        ("JOBTOKEN_TLS_KEY", key.to_str().unwrap()),
    ]);

    let (status, discovery) = get(&client(Some(&pem)), &s.url("/.well-known/openid-configuration"), false).unwrap();
    let (admin_status, _) = get(&client(Some(&pem)), &format!("{admin}/api/v1/settings"), true).unwrap();
    let untrusted = get(&client(None), &s.url("/health/live"), false);

    assert!(s.base.starts_with("https://127.0.0.1:") && admin.starts_with("https://"), "{} {admin}", s.base);
    assert_eq!(status, 200);
    assert_eq!(discovery["issuer"], json!(s.base), "the derived issuer is https");
    assert_eq!(discovery["token_endpoint"], json!(s.url("/oauth/token")));
    assert_eq!(admin_status, 200);
    assert!(untrusted.is_err(), "a client that does not trust the certificate must fail: {untrusted:?}");
    let _ = std::fs::remove_dir_all(certs);
}

#[test]
fn a_missing_unreadable_or_mismatched_certificate_or_key_stops_the_start_naming_the_file() {
    let certs = temp_dir();
    let (cert, key, _) = self_signed(&certs);
    let other = temp_dir();
    let (_, other_key, _) = self_signed(&other);
    let missing = certs.join("missing.pem");
    let not_pem = certs.join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let p = |p: &Path| p.to_str().unwrap().to_owned();

    for (cert, key, expected) in [
        (p(&missing), p(&key), format!("JOBTOKEN_TLS_CERT {}", missing.display())),
        (p(&cert), p(&not_pem), format!("JOBTOKEN_TLS_KEY {}", not_pem.display())),
        (p(&cert), p(&other_key), "do not make a usable pair".to_owned()),
    ] {
        let log = Server::start_expecting_failure_with(
            temp_dir(),
            &[("JOBTOKEN_TLS_CERT", &cert), ("JOBTOKEN_TLS_KEY", &key)],
        );

        assert!(log.contains(&expected), "{expected:?} not in {log}");
        assert!(!log.contains("PRIVATE KEY"), "{log}");
    }
    let log = Server::start_expecting_failure_with(temp_dir(), &[("JOBTOKEN_TLS_CERT", &p(&cert))]);
    assert!(log.contains("JOBTOKEN_TLS_KEY"), "a certificate without a key: {log}");
    let _ = std::fs::remove_dir_all(certs);
    let _ = std::fs::remove_dir_all(other);
}

#[test]
fn an_unknown_log_format_is_refused_at_start() {
    let log = Server::start_expecting_failure_with(temp_dir(), &[("JOBTOKEN_LOG_FORMAT", "xml")]);

    assert!(log.contains("JOBTOKEN_LOG_FORMAT") && log.contains("text or json"), "{log}");
}

/// Writes a configuration file with `mode`.
fn config_file(dir: &Path, text: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join("jobtoken.toml");
    std::fs::write(&file, text).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    file
}

#[test]
fn the_configuration_file_applies_below_the_environment() {
    let dir = temp_dir();
    let file = config_file(
        &dir,
        "issuer = \"https://from-file.example\"\ndefault_audience = \"https://registry.from-file.example\"\n\
         log_format = \"json\"\n",
        0o600,
    );
    let s = Server::start_with(&[
        ("JOBTOKEN_CONFIG", file.to_str().unwrap()),
        ("JOBTOKEN_ISSUER", "https://from-env.example"),
    ]);
    let w = World::new(&s);

    let issuer = s.get("/.well-known/openid-configuration", Auth::None).json["issuer"].clone();
    let claims = common::decode(&w.mint_ok(&s, w.job(&s, true), &[])).1;

    assert_eq!(issuer, "https://from-env.example", "the environment beats the file");
    assert_eq!(claims["aud"], "https://registry.from-file.example", "the file beats the default");
    let log = s.log();
    assert!(log.lines().all(|l| l.starts_with('{')), "log_format from the file: {log}");
    assert!(!log.contains("readable by group or others"), "{log}");
    let _ = std::fs::remove_dir_all(dir);
}

fn jobtoken(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobtoken"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_configuration_file_with_an_unknown_key_or_a_wrong_type_is_refused_with_the_file_line_and_key() {
    let dir = temp_dir();
    let db = dir.join("db.sqlite");
    let db_line = format!("database = {:?}\n", db.to_str().unwrap());

    for (text, key) in
        [(format!("{db_line}bindd = \"0.0.0.0:1\"\n"), "bindd"), (format!("{db_line}workers = \"two\"\n"), "workers")]
    {
        let file = config_file(&dir, &text, 0o600);

        let out = jobtoken(&["migrate", "--config", file.to_str().unwrap()], None);

        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(file.to_str().unwrap()) && err.contains("line 2") && err.contains(key), "{err}");
        assert!(!db.exists(), "nothing was done");
    }
    let file = config_file(&dir, &db_line, 0o644);
    let out = jobtoken(&["migrate", "--config", file.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("readable by group or others"), "{}", stderr(&out));
    assert!(db.exists(), "the file's database was migrated");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn each_subcommand_help_lists_only_its_own_flags() {
    let help = |args: &[&str]| {
        let out = jobtoken(args, None);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let server_flags = ["--bind", "--admin-token", "--tls-cert", "--admin-bind", "--access-log"];

    let decode = help(&["token", "decode", "--help"]);
    let verify = help(&["token", "verify", "--help"]);
    let migrate = help(&["migrate", "--help"]);
    let keys_list = help(&["keys", "list", "--help"]);
    let serve = help(&["serve", "--help"]);

    for flag in
        server_flags.iter().chain(&["--database", "--config", "--log-format", "--keys-dir", "--key-encryption-key"])
    {
        assert!(!decode.contains(flag), "{flag} in token decode --help:\n{decode}");
        assert!(!verify.contains(flag), "{flag} in token verify --help:\n{verify}");
    }
    assert!(verify.contains("--jwks") && verify.contains("--expect-issuer"), "{verify}");
    for flag in server_flags.iter().chain(&["--keys-dir", "--signing-alg"]) {
        assert!(!migrate.contains(flag), "{flag} in migrate --help:\n{migrate}");
    }
    assert!(["--database", "--config", "--log-format"].iter().all(|f| migrate.contains(f)), "{migrate}");
    for flag in server_flags {
        assert!(!keys_list.contains(flag), "{flag} in keys list --help:\n{keys_list}");
        assert!(serve.contains(flag), "{flag} missing from serve --help:\n{serve}");
    }
    assert!(keys_list.contains("--database") && keys_list.contains("--key-encryption-key"), "{keys_list}");
}

#[test]
fn token_decode_and_verify_read_the_token_from_stdin_when_it_is_a_dash() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    let token = w.mint_ok(&s, job, &[("audience", "registry")]);
    let piped = format!("  {token}\n");
    let jwks = s.url("/.well-known/jwks.json");

    let decoded = jobtoken(&["token", "decode", "-"], Some(&piped));
    let verified = jobtoken(
        &["token", "verify", "-", "--jwks", &jwks, "--expect-issuer", &s.base, "--audience", "registry"],
        Some(&piped),
    );
    let empty = jobtoken(&["token", "decode", "-"], Some("\n"));

    assert_eq!(decoded.status.code(), Some(0), "{}", stderr(&decoded));
    let out: Value = serde_json::from_slice(&decoded.stdout).unwrap();
    assert_eq!(out["claims"]["job_id"], json!(job));
    assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
    assert_eq!(serde_json::from_slice::<Value>(&verified.stdout).unwrap()["job_id"], json!(job));
    assert_eq!(empty.status.code(), Some(1));
    assert!(stderr(&empty).contains("no token on standard input"), "{}", stderr(&empty));
}

#[test]
fn a_flag_beats_the_environment_which_beats_the_configuration_file() {
    let dir = temp_dir();
    let db = |name: &str| dir.join(name);
    let file = config_file(&dir, &format!("database = {:?}\n", db("file.db").to_str().unwrap()), 0o600);
    let config = file.to_str().unwrap();
    let env_db = db("env.db");
    let run = |args: &[&str], env: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobtoken"));
        cmd.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
        if env {
            cmd.env("JOBTOKEN_DATABASE", &env_db);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };

    run(&["migrate", "--config", config], false);
    assert!(db("file.db").exists(), "the file's database without a flag or variable");
    run(&["migrate", "--config", config], true);
    assert!(env_db.exists(), "the environment over the file");
    run(&["migrate", "--config", config, "--database", db("flag.db").to_str().unwrap()], true);
    assert!(db("flag.db").exists(), "the flag over the environment");
    let _ = std::fs::remove_dir_all(dir);
}
