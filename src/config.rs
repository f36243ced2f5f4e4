//! Settings from `JOBTOKEN_*` environment variables and matching flags.

use std::path::PathBuf;

use clap::Args;

use crate::keys::{Alg, KeyEncryptionKey, KeyStorage};
use crate::secret::Secret;

/// Flags shared by every subcommand; each falls back to its environment variable.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Address to listen on (host:port). Port 0 picks a free port.
    #[arg(long, env = "JOBTOKEN_BIND", default_value = "127.0.0.1:8080", global = true)]
    pub bind: String,
    /// Issuer URL put in `iss` and discovery, exactly as given. Default: http://<bind>.
    #[arg(long, env = "JOBTOKEN_ISSUER", global = true)]
    pub issuer: Option<String>,
    /// The database: a SQLite file (a path, or `sqlite:PATH`) or a PostgreSQL URL
    /// (`postgres://user:password@host:port/db?sslmode=disable`).
    #[arg(long, env = "JOBTOKEN_DATABASE", default_value = "data/jobtoken.db", global = true)]
    pub database: PathBuf,
    /// Directory of private signing keys (PKCS#8 PEM, mode 0600).
    #[arg(long, env = "JOBTOKEN_KEYS_DIR", default_value = "keys", global = true)]
    pub keys_dir: PathBuf,
    /// Admin bearer token. When unset, one is generated on first start and printed once.
    #[arg(long, env = "JOBTOKEN_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub admin_token: Option<String>,
    /// Signing algorithm for new keys: ES256, RS256 or EdDSA.
    #[arg(long, env = "JOBTOKEN_SIGNING_ALG", default_value = "ES256", global = true)]
    pub signing_alg: Alg,
    /// `aud` of tokens minted without `audience`/`resource`. Default: the issuer.
    #[arg(long, env = "JOBTOKEN_DEFAULT_AUDIENCE", global = true)]
    pub default_audience: Option<String>,
    /// Days between scheduled key rotations.
    #[arg(long, env = "JOBTOKEN_KEY_ROTATION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650), global = true)]
    pub key_rotation_days: u32,
    /// Seconds between key maintenance ticks (scheduled rotation, drops, picking up other
    /// processes' key changes). For tests; at most 60, so a retired key's grace outlasts it.
    #[arg(long, env = "JOBTOKEN_KEY_TICK_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=crate::keys::jwks::MAX_KEY_TICK_SECS as u64), global = true, hide = true)]
    pub key_tick_seconds: u64,
    /// HTTP worker threads. Default: one per core.
    #[arg(long, env = "JOBTOKEN_WORKERS", global = true)]
    pub workers: Option<usize>,
    /// Key-encryption key sealing private keys stored in the database: base64 of 32 random
    /// bytes (`openssl rand -base64 32`), the same on every replica. Prefer the environment.
    #[arg(long, env = KEY_ENCRYPTION_KEY_ENV, hide_env_values = true, value_parser = secret_arg, global = true)]
    pub key_encryption_key: Option<Secret>,
}

/// The environment variable of the key-encryption key.
pub const KEY_ENCRYPTION_KEY_ENV: &str = "JOBTOKEN_KEY_ENCRYPTION_KEY";

/// Whether `JOBTOKEN_DATABASE` names a PostgreSQL database: a `postgres://` or `postgresql://`
/// URL (scheme case-insensitive); anything else is a SQLite path.
pub fn is_postgres_url(database: &str) -> bool {
    let lower = database.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// Takes a secret flag or variable as it is; `Secret` keeps it out of `Debug`.
pub(crate) fn secret_arg(value: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(value.to_owned()))
}

/// Resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: String,
    pub issuer: String,
    pub database: PathBuf,
    pub keys_dir: PathBuf,
    pub admin_token: Option<Secret>,
    pub signing_alg: Alg,
    pub default_audience: String,
    pub key_rotation_days: u32,
    /// Seconds between key maintenance ticks.
    pub key_tick_secs: u64,
    pub workers: usize,
    /// False when the issuer was derived from `bind` (it then follows the bound port).
    pub issuer_configured: bool,
    pub audience_configured: bool,
    /// Seals private keys stored in the database; `None` when not configured.
    pub key_encryption_key: Option<KeyEncryptionKey>,
}

impl Config {
    pub fn from_args(args: ConfigArgs) -> Result<Config, String> {
        let issuer_configured = args.issuer.is_some();
        let audience_configured = args.default_audience.is_some();
        let issuer = args.issuer.unwrap_or_else(|| format!("http://{}", args.bind));
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(format!("JOBTOKEN_ISSUER must be an http(s) URL, got {issuer:?}"));
        }
        if issuer.contains('?') || issuer.contains('#') {
            return Err("JOBTOKEN_ISSUER must not have a query or fragment (RFC 8414 §2)".into());
        }
        let admin_token = match args.admin_token {
            Some(t) if t.len() < 16 => return Err("JOBTOKEN_ADMIN_TOKEN must be at least 16 characters".into()),
            Some(t) => Some(Secret::new(t)),
            None => None,
        };
        let key_encryption_key = args
            .key_encryption_key
            .map(|text| KeyEncryptionKey::from_base64(text.expose()))
            .transpose()
            .map_err(|e| format!("{KEY_ENCRYPTION_KEY_ENV} (--key-encryption-key) {e}"))?;
        Ok(Config {
            bind: args.bind,
            default_audience: args.default_audience.unwrap_or_else(|| issuer.clone()),
            issuer,
            database: args.database,
            keys_dir: args.keys_dir,
            admin_token,
            signing_alg: args.signing_alg,
            key_rotation_days: args.key_rotation_days,
            key_tick_secs: args.key_tick_seconds,
            workers: args.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            issuer_configured,
            audience_configured,
            key_encryption_key,
        })
    }

    /// After binding: a derived issuer (and audience) names the address actually bound, so
    /// `JOBTOKEN_BIND=127.0.0.1:0` yields a usable issuer.
    pub fn bound_to(mut self, addr: std::net::SocketAddr) -> Config {
        if !self.issuer_configured {
            self.issuer = format!("http://{addr}");
            if !self.audience_configured {
                self.default_audience = self.issuer.clone();
            }
        }
        self
    }

    /// Whether the database is PostgreSQL (see [`is_postgres_url`]).
    pub fn database_is_postgres(&self) -> bool {
        self.database.to_str().is_some_and(is_postgres_url)
    }

    /// Where private signing keys live, the one place this is decided: sealed in the database
    /// under the key-encryption key when one is set (always on PostgreSQL, where every replica
    /// must read the same keys), else the keys directory. PostgreSQL without a key-encryption
    /// key is refused, naming the setting.
    pub fn key_storage(&self) -> Result<KeyStorage, String> {
        match &self.key_encryption_key {
            Some(kek) => Ok(KeyStorage::Database(Box::new(kek.clone()))),
            None if self.database_is_postgres() => Err(format!(
                "{KEY_ENCRYPTION_KEY_ENV} is required with a PostgreSQL database: every replica keeps the signing keys \
                 in the database, sealed under that key-encryption key. Generate one with `openssl rand -base64 32`, \
                 keep it in your secret store, and give every replica the same value"
            )),
            None => Ok(KeyStorage::Files(self.keys_dir.clone())),
        }
    }

    pub fn rotation_period_secs(&self) -> i64 {
        i64::from(self.key_rotation_days) * 86_400
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    use clap::Parser;

    use super::*;
    use crate::keys::sealed::tests::{key_renderings, random_kek_bytes};
    use crate::keys::sealed::{open, seal};

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        config: ConfigArgs,
    }

    fn parse(flags: &[&str]) -> (ConfigArgs, Result<Config, String>) {
        let args = Flags::try_parse_from([&["jobtoken"], flags].concat()).unwrap().config;
        (args.clone(), Config::from_args(args))
    }

    #[test]
    fn without_a_key_encryption_key_the_config_has_none() {
        let (_, config) = parse(&[]);

        assert!(config.unwrap().key_encryption_key.is_none());
    }

    #[test]
    fn a_good_key_encryption_key_is_parsed_into_the_config() {
        let bytes = random_kek_bytes();
        let sealed = seal(&KeyEncryptionKey::from_base64(&STANDARD.encode(bytes)).unwrap(), "kid", b"pem").unwrap();

        for text in [STANDARD.encode(bytes), URL_SAFE_NO_PAD.encode(bytes)] {
            let (_, config) = parse(&["--key-encryption-key", &text]);

            let kek = config.unwrap().key_encryption_key.unwrap();
            assert_eq!(open(&kek, "kid", &sealed).unwrap(), b"pem");
        }
    }

    #[test]
    fn a_wrong_or_weak_key_encryption_key_is_refused_naming_the_setting_and_not_the_value() {
        let refused = [
            ("", "is empty"),
            ("this is not base64", "not valid base64"),
            (&STANDARD.encode(&random_kek_bytes()[..24]), "decodes to 24 bytes"),
            (&STANDARD.encode([7u8; 32]), "all the same"),
            (&STANDARD.encode([1u8, 2, 3, 4].repeat(8)), "only 4 distinct values"),
            (&STANDARD.encode("a passphrase of 32 printable chr"), "printable text"),
            ("mysecretpassphrasethatiswaytoolongtoguessno", "one case only"),
        ];

        for (text, reason) in refused {
            let (_, config) = parse(&["--key-encryption-key", text]);

            let message = config.unwrap_err();
            assert!(message.starts_with("JOBTOKEN_KEY_ENCRYPTION_KEY (--key-encryption-key) "), "{message}");
            assert!(message.contains(reason), "{message} should say {reason:?}");
            assert!(text.len() < 8 || !message.contains(text.trim_end_matches('=')), "{message} repeats the value");
        }
    }

    #[test]
    fn key_storage_is_the_database_with_a_key_encryption_key_and_files_without_except_on_postgres() {
        let text = STANDARD.encode(random_kek_bytes());

        let sqlite = parse(&["--keys-dir", "k"]).1.unwrap().key_storage().unwrap();
        let sealed = parse(&["--key-encryption-key", &text]).1.unwrap().key_storage().unwrap();
        let postgres = parse(&["--database", "postgres://u@h/db", "--key-encryption-key", &text]).1.unwrap();
        let refused = parse(&["--database", "PostgreSQL://u@h/db"]).1.unwrap().key_storage().unwrap_err();

        assert!(matches!(sqlite, KeyStorage::Files(dir) if dir == std::path::Path::new("k")));
        assert!(matches!(sealed, KeyStorage::Database(_)));
        assert!(matches!(postgres.key_storage().unwrap(), KeyStorage::Database(_)));
        assert!(refused.contains("JOBTOKEN_KEY_ENCRYPTION_KEY is required") && refused.contains("openssl rand"));
        for sqlite in ["data/jobtoken.db", "sqlite:x.db", "/var/postgres/x.db", "postgres.db"] {
            assert!(!is_postgres_url(sqlite), "{sqlite}");
        }
    }

    #[test]
    fn debug_of_the_flags_and_the_config_never_shows_the_key_encryption_key() {
        let bytes = random_kek_bytes();
        let text = STANDARD.encode(bytes);

        let (args, config) = parse(&["--key-encryption-key", &text]);
        let shown = format!("{args:?} {args:#?} {:?} {:#?}", config.clone().unwrap(), config.unwrap());

        assert!(shown.contains("key_encryption_key"), "{shown}");
        assert!(!shown.contains(&text[..16]), "{shown}");
        for leak in key_renderings(&bytes) {
            assert!(!shown.contains(&leak), "{shown} contains {leak}");
        }
    }
}
