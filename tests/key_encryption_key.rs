//! `JOBTOKEN_KEY_ENCRYPTION_KEY` / `--key-encryption-key` (issue 8): the binary accepts the base64
//! of 32 random bytes, refuses a malformed or weak key before doing anything, names the setting
//! in the refusal, and never prints the key.
#![allow(clippy::unwrap_used)]

mod common;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::{cli_in, random_key_encryption_key as random_key, temp_dir, Server, World};

const SETTING: &str = "JOBTOKEN_KEY_ENCRYPTION_KEY (--key-encryption-key)";

/// Malformed and weak keys, each with the reason the refusal must give.
fn refused_keys() -> Vec<(String, &'static str)> {
    vec![
        ("correct horse battery staple".into(), "not valid base64"),
        (random_key()[..24].to_owned(), "decodes to 18 bytes"),
        ("0123456789abcdef".repeat(4), "decodes to 48 bytes"),
        (STANDARD.encode([0u8; 32]), "all the same"),
        (STANDARD.encode(&[0xf0u8, 0xf1, 0xf2].repeat(11)[..32]), "only 3 distinct values"),
        (STANDARD.encode("my passphrase is long enough, ok"), "printable text"),
        ("mysecretpassphrasethatiswaytoolongtoguessno".into(), "one case only"),
    ]
}

#[test]
fn serve_refuses_a_malformed_or_weak_key_encryption_key_naming_the_setting_and_not_the_value() {
    for (key, reason) in refused_keys() {
        // Arrange
        let dir = temp_dir();

        // Act
        let log = Server::start_expecting_failure_with(dir.clone(), &[("JOBTOKEN_KEY_ENCRYPTION_KEY", &key)]);

        // Assert: refused before touching anything, with the setting and the reason, not the key.
        assert!(log.contains(SETTING), "{log}");
        assert!(log.contains(reason), "{log} should say {reason:?}");
        assert!(!log.contains(&key[..16]), "the refusal repeats the key: {log}");
        assert!(!dir.join("db/jobtoken.db").exists(), "a database was created although the key was refused");
        assert!(!dir.join("keys").exists(), "signing keys were created although the key was refused");
        if common::on_postgres() {
            assert_eq!(common::key_rows(&dir), Vec::<String>::new(), "keys were stored although the key was refused");
        }
    }
}

#[test]
fn every_command_refuses_a_weak_key_encryption_key_given_as_a_flag() {
    let dir = temp_dir();
    let weak = STANDARD.encode([0x41u8; 32]);

    let out = cli_in(&dir, &["keys", "list", "--key-encryption-key", &weak], &[]).output().unwrap();

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(SETTING) && stderr.contains("all the same"), "{stderr}");
    assert!(!stderr.contains(&weak[..16]), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn serve_accepts_a_random_key_encryption_key_in_either_alphabet_and_never_prints_it() {
    let key = random_key();
    let url_safe = URL_SAFE_NO_PAD.encode(STANDARD.decode(&key).unwrap());
    for given in [key.clone(), url_safe.clone()] {
        // Arrange
        let s = Server::start_with(&[("JOBTOKEN_KEY_ENCRYPTION_KEY", &given), ("RUST_LOG", "debug")]);

        // Act: the server serves as before.
        let w = World::new(&s);
        let job = w.job(&s, false);
        let token = w.mint_ok(&s, job, &[]);

        // Assert
        assert_eq!(w.introspect(&s, &token)["active"], true);
        let log = s.log();
        assert!(!log.contains(&key[..16]) && !log.contains(&url_safe[..16]), "the log shows the key: {log}");
    }
}

#[test]
fn help_names_the_setting_but_never_shows_its_value_from_the_environment() {
    let dir = temp_dir();
    let key = random_key();

    let out = cli_in(&dir, &["serve", "--help"], &[("JOBTOKEN_KEY_ENCRYPTION_KEY", &key)]).output().unwrap();

    let help = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{help}");
    assert!(help.contains("--key-encryption-key") && help.contains("JOBTOKEN_KEY_ENCRYPTION_KEY"), "{help}");
    assert!(!help.contains(&key[..16]), "{help}");
}
