//! Settings from `JOBTOKEN_*` environment variables and matching flags, over an optional TOML
//! configuration file (`--config` / `JOBTOKEN_CONFIG`): flags > environment > file > defaults.
//!
//! Each subcommand flattens only the groups of flags it uses (so its `--help` lists only its own
//! flags); a group a subcommand does not take stays at its defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use crate::keys::{Alg, KeyEncryptionKey, KeyStorage};
use crate::secret::Secret;

/// What every command that reads the configuration takes: the TOML file and the log format.
#[derive(Debug, Clone, Default, Args)]
pub struct FileArgs {
    /// TOML configuration file; its keys are the JOBTOKEN_* names in lower case without the
    /// prefix (`bind = "0.0.0.0:8080"`). Flags and environment variables override it.
    #[arg(long = "config", env = "JOBTOKEN_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log line format: text (default) or json (one JSON object per line).
    #[arg(long, env = "JOBTOKEN_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
}

/// The database.
#[derive(Debug, Clone, Default, Args)]
pub struct DbArgs {
    /// The database: a SQLite file (a path, or `sqlite:PATH`) or a PostgreSQL URL
    /// (`postgres://user:password@host:port/db?sslmode=disable`). Default: data/jobtoken.db.
    #[arg(long, env = "JOBTOKEN_DATABASE", global = true)]
    pub database: Option<PathBuf>,
}

/// Where the private signing keys are kept.
#[derive(Debug, Clone, Default, Args)]
pub struct KeyStoreArgs {
    /// Directory of private signing keys (PKCS#8 PEM, mode 0600). Default: keys.
    #[arg(long, env = "JOBTOKEN_KEYS_DIR", global = true)]
    pub keys_dir: Option<PathBuf>,
    /// Key-encryption key sealing private keys stored in the database: base64 of 32 random
    /// bytes (`openssl rand -base64 32`), the same on every replica. Prefer the environment.
    #[arg(long, env = KEY_ENCRYPTION_KEY_ENV, hide_env_values = true, value_parser = secret_arg, global = true)]
    pub key_encryption_key: Option<Secret>,
}

/// How new signing keys are made and rotated.
#[derive(Debug, Clone, Default, Args)]
pub struct SigningArgs {
    /// Signing algorithm for new keys: ES256 (default), RS256 or EdDSA.
    #[arg(long, env = "JOBTOKEN_SIGNING_ALG", global = true)]
    pub signing_alg: Option<Alg>,
    /// Days between scheduled key rotations (1–3650). Default: 30.
    #[arg(long, env = "JOBTOKEN_KEY_ROTATION_DAYS", value_parser = clap::value_parser!(u32).range(1..=3650), global = true)]
    pub key_rotation_days: Option<u32>,
    /// Algorithm of the ID-token key family (token exchange for an ID token): RS256 (default)
    /// or ES256. Separate from the job-token keys, since cloud federation accepts no EdDSA.
    #[arg(long, env = "JOBTOKEN_ID_TOKEN_SIGNING_ALG", global = true)]
    pub id_token_signing_alg: Option<Alg>,
    /// Lifetime of ID tokens in seconds (60–3599), never past the subject token's expiry.
    /// Default: 300.
    #[arg(long, env = "JOBTOKEN_ID_TOKEN_TTL", global = true)]
    pub id_token_ttl: Option<i64>,
}

/// The HTTP server.
#[derive(Debug, Clone, Default, Args)]
pub struct ServerArgs {
    /// Address to listen on (host:port). Port 0 picks a free port. Default: 127.0.0.1:8080.
    #[arg(long, env = "JOBTOKEN_BIND")]
    pub bind: Option<String>,
    /// Issuer URL put in `iss` and discovery, exactly as given. Default: http://<bind>, or
    /// https://<bind> with TLS.
    #[arg(long, env = "JOBTOKEN_ISSUER")]
    pub issuer: Option<String>,
    /// Admin bearer token. When unset, one is generated on first start and printed once.
    #[arg(long, env = "JOBTOKEN_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// `aud` of tokens minted without `audience`/`resource`. Default: the issuer.
    #[arg(long, env = "JOBTOKEN_DEFAULT_AUDIENCE")]
    pub default_audience: Option<String>,
    /// Seconds between key maintenance ticks (scheduled rotation, drops, picking up other
    /// processes' key changes). For tests; at most 60, so a retired key's grace outlasts it.
    #[arg(long, env = "JOBTOKEN_KEY_TICK_SECONDS", value_parser = clap::value_parser!(u64).range(1..=crate::keys::jwks::MAX_KEY_TICK_SECS as u64), hide = true)]
    pub key_tick_seconds: Option<u64>,
    /// HTTP worker threads. Default: one per core.
    #[arg(long, env = "JOBTOKEN_WORKERS")]
    pub workers: Option<usize>,
    /// One access-log line per request (target jobtoken::access): true (default) or false.
    #[arg(long, env = "JOBTOKEN_ACCESS_LOG", value_parser = clap::builder::BoolishValueParser::new())]
    pub access_log: Option<bool>,
    /// Separate listener (host:port) for the admin API and /metrics; the public listener then
    /// answers 404 for them. Unset: everything on --bind.
    #[arg(long, env = "JOBTOKEN_ADMIN_BIND")]
    pub admin_bind: Option<String>,
    /// PEM certificate chain: serve HTTPS (both listeners) with this and --tls-key.
    #[arg(long, env = "JOBTOKEN_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "JOBTOKEN_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
}

/// Every setting a command may take; the groups it does not flatten stay `Default`.
#[derive(Debug, Clone, Default)]
pub struct ConfigArgs {
    pub file: FileArgs,
    pub db: DbArgs,
    pub key_store: KeyStoreArgs,
    pub signing: SigningArgs,
    pub server: ServerArgs,
}

/// The configuration file: the environment variables' names in lower case without the prefix.
/// Unknown keys and wrong types are refused (with the file's line and the key).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<String>,
    issuer: Option<String>,
    database: Option<PathBuf>,
    keys_dir: Option<PathBuf>,
    admin_token: Option<String>,
    signing_alg: Option<String>,
    default_audience: Option<String>,
    key_rotation_days: Option<u32>,
    id_token_signing_alg: Option<String>,
    id_token_ttl: Option<i64>,
    key_tick_seconds: Option<u64>,
    workers: Option<usize>,
    key_encryption_key: Option<String>,
    log_format: Option<String>,
    access_log: Option<bool>,
    admin_bind: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

impl FileConfig {
    /// Reads and parses `path`. A file readable by group or others is used, with a warning
    /// (it may hold the admin token and the key-encryption key).
    fn read(path: &Path) -> Result<(FileConfig, Option<String>), String> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading the configuration file {shown}: {e}"))?;
        let file: FileConfig =
            toml::from_str(&text).map_err(|e| format!("configuration file {shown}: {}", e.to_string().trim_end()))?;
        Ok((file, readable_by_others(path)))
    }
}

#[cfg(unix)]
fn readable_by_others(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "the configuration file {} is readable by group or others (mode {mode:o}); it may hold secrets: \
             chmod 600 it",
            path.display()
        )
    })
}

#[cfg(not(unix))]
fn readable_by_others(_: &Path) -> Option<String> {
    None
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// env_logger's human format.
    #[default]
    Text,
    /// One JSON object per line: `ts`, `level`, `target`, `msg` and any fields.
    Json,
}

impl LogFormat {
    pub fn parse(value: &str) -> Result<LogFormat, String> {
        match value {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "JOBTOKEN_LOG_FORMAT (--log-format, log_format) must be text or json, not {:?}",
                other.chars().take(40).collect::<String>()
            )),
        }
    }
}

/// Serve HTTPS with this certificate chain and key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
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
    /// The ID-token key family's algorithm: RS256 or ES256.
    pub id_token_alg: Alg,
    /// ID-token lifetime in seconds.
    pub id_token_ttl_secs: i64,
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
    pub log_format: LogFormat,
    /// One access-log line per request.
    pub access_log: bool,
    /// The admin listener's address, when the admin API and metrics have their own.
    pub admin_bind: Option<String>,
    /// HTTPS on every listener, when set.
    pub tls: Option<TlsFiles>,
    /// Said once the logger is up (it starts after the configuration, in its format).
    pub startup_warnings: Vec<String>,
}

impl Config {
    /// Resolves the settings: flags and environment (already merged by clap), then the
    /// configuration file named by `--config` / `JOBTOKEN_CONFIG`, then the defaults.
    pub fn from_args(args: ConfigArgs) -> Result<Config, String> {
        let (file, warning) = match &args.file.config {
            Some(path) => FileConfig::read(path)?,
            None => (FileConfig::default(), None),
        };
        let mut config = Config::resolve(args, file)?;
        config.startup_warnings.extend(warning);
        Ok(config)
    }

    fn resolve(args: ConfigArgs, file: FileConfig) -> Result<Config, String> {
        let ConfigArgs { file: flags, db, key_store, signing, server } = args;
        let tls = match (server.tls_cert.or(file.tls_cert), server.tls_key.or(file.tls_key)) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => return Err("JOBTOKEN_TLS_CERT and JOBTOKEN_TLS_KEY must be set together".into()),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let bind = server.bind.or(file.bind).unwrap_or_else(|| "127.0.0.1:8080".into());
        let issuer = server.issuer.or(file.issuer);
        let issuer_configured = issuer.is_some();
        let default_audience = server.default_audience.or(file.default_audience);
        let audience_configured = default_audience.is_some();
        let issuer = issuer.unwrap_or_else(|| format!("{scheme}://{bind}"));
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(format!("JOBTOKEN_ISSUER must be an http(s) URL, got {issuer:?}"));
        }
        if issuer.contains('?') || issuer.contains('#') {
            return Err("JOBTOKEN_ISSUER must not have a query or fragment (RFC 8414 §2)".into());
        }
        let admin_token = match server.admin_token.or(file.admin_token) {
            Some(t) if t.len() < 16 => return Err("JOBTOKEN_ADMIN_TOKEN must be at least 16 characters".into()),
            Some(t) => Some(Secret::new(t)),
            None => None,
        };
        let key_encryption_key = key_store
            .key_encryption_key
            .or(file.key_encryption_key.map(Secret::new))
            .map(|text| KeyEncryptionKey::from_base64(text.expose()))
            .transpose()
            .map_err(|e| format!("{KEY_ENCRYPTION_KEY_ENV} (--key-encryption-key) {e}"))?;
        let signing_alg = match (signing.signing_alg, file.signing_alg) {
            (Some(alg), _) => alg,
            (None, Some(name)) => name.parse().map_err(|e| format!("signing_alg in the configuration file: {e}"))?,
            (None, None) => Alg::ES256,
        };
        let id_token_alg = match (signing.id_token_signing_alg, file.id_token_signing_alg) {
            (Some(alg), _) => alg,
            (None, Some(name)) => {
                name.parse().map_err(|e| format!("id_token_signing_alg in the configuration file: {e}"))?
            }
            (None, None) => Alg::RS256,
        };
        if !matches!(id_token_alg, Alg::RS256 | Alg::ES256) {
            return Err(format!(
                "JOBTOKEN_ID_TOKEN_SIGNING_ALG must be RS256 or ES256 (cloud federation accepts no {id_token_alg})"
            ));
        }
        let id_token_ttl_secs = signing.id_token_ttl.or(file.id_token_ttl).unwrap_or(300);
        if !(60..=3599).contains(&id_token_ttl_secs) {
            return Err(format!(
                "JOBTOKEN_ID_TOKEN_TTL must be 60 to 3599 seconds (GCP refuses an hour or more), not {id_token_ttl_secs}"
            ));
        }
        let key_rotation_days = signing.key_rotation_days.or(file.key_rotation_days).unwrap_or(30);
        if !(1..=3650).contains(&key_rotation_days) {
            return Err(format!("key_rotation_days must be 1 to 3650, not {key_rotation_days}"));
        }
        let max_tick = crate::keys::jwks::MAX_KEY_TICK_SECS as u64;
        let key_tick_secs = server.key_tick_seconds.or(file.key_tick_seconds).unwrap_or(60);
        if !(1..=max_tick).contains(&key_tick_secs) {
            return Err(format!("key_tick_seconds must be 1 to {max_tick}, not {key_tick_secs}"));
        }
        let workers = match server.workers.or(file.workers) {
            Some(0) => return Err("JOBTOKEN_WORKERS must be at least 1".into()),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(2, |n| n.get()),
        };
        let log_format = match flags.log_format.or(file.log_format) {
            Some(value) => LogFormat::parse(&value)?,
            None => LogFormat::Text,
        };
        let admin_bind = server.admin_bind.or(file.admin_bind).filter(|a| !a.is_empty());
        Ok(Config {
            bind,
            default_audience: default_audience.unwrap_or_else(|| issuer.clone()),
            issuer,
            database: db.database.or(file.database).unwrap_or_else(|| PathBuf::from("data/jobtoken.db")),
            keys_dir: key_store.keys_dir.or(file.keys_dir).unwrap_or_else(|| PathBuf::from("keys")),
            admin_token,
            signing_alg,
            id_token_alg,
            id_token_ttl_secs,
            key_rotation_days,
            key_tick_secs,
            workers,
            issuer_configured,
            audience_configured,
            key_encryption_key,
            log_format,
            access_log: server.access_log.or(file.access_log).unwrap_or(true),
            admin_bind,
            tls,
            startup_warnings: Vec::new(),
        })
    }

    /// After binding: a derived issuer (and audience) names the address actually bound, so
    /// `JOBTOKEN_BIND=127.0.0.1:0` yields a usable issuer.
    pub fn bound_to(mut self, addr: SocketAddr) -> Config {
        if !self.issuer_configured {
            let scheme = if self.tls.is_some() { "https" } else { "http" };
            self.issuer = format!("{scheme}://{addr}");
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
        file: FileArgs,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        key_store: KeyStoreArgs,
        #[command(flatten)]
        server: ServerArgs,
    }

    fn parse(flags: &[&str]) -> (ConfigArgs, Result<Config, String>) {
        let Flags { file, db, key_store, server } = Flags::try_parse_from([&["jobtoken"], flags].concat()).unwrap();
        let args = ConfigArgs { file, db, key_store, server, ..ConfigArgs::default() };
        (args.clone(), Config::from_args(args))
    }

    fn with_file(flags: &[&str], toml: &str) -> Result<Config, String> {
        let (args, _) = parse(flags);
        let file: FileConfig = toml::from_str(toml).map_err(|e| e.to_string())?;
        Config::resolve(args, file)
    }

    #[test]
    fn flags_override_the_file_and_the_file_overrides_the_defaults() {
        let file = "bind = \"0.0.0.0:9000\"\nworkers = 3\nlog_format = \"json\"\naccess_log = false";

        let from_file = with_file(&[], file).unwrap();
        let flagged = with_file(&["--bind", "127.0.0.1:7000", "--log-format", "text"], file).unwrap();
        let defaults = with_file(&[], "").unwrap();

        assert_eq!((from_file.bind.as_str(), from_file.workers), ("0.0.0.0:9000", 3));
        assert_eq!((from_file.log_format, from_file.access_log), (LogFormat::Json, false));
        assert_eq!(from_file.issuer, "http://0.0.0.0:9000");
        assert_eq!(
            (flagged.bind.as_str(), flagged.workers, flagged.log_format),
            ("127.0.0.1:7000", 3, LogFormat::Text)
        );
        assert_eq!((defaults.bind.as_str(), defaults.access_log), ("127.0.0.1:8080", true));
    }

    #[test]
    fn tls_makes_the_derived_issuer_https() {
        let config = with_file(&["--tls-cert", "c.pem", "--tls-key", "k.pem"], "bind = \"127.0.0.1:8443\"").unwrap();

        assert_eq!(config.issuer, "https://127.0.0.1:8443");
        assert_eq!(config.bound_to("127.0.0.1:9443".parse().unwrap()).issuer, "https://127.0.0.1:9443");
        assert!(with_file(&[], "tls_cert = \"c.pem\"").unwrap_err().contains("JOBTOKEN_TLS_KEY"));
    }

    #[test]
    fn an_unknown_log_format_or_file_value_is_refused_by_name() {
        assert!(with_file(&["--log-format", "xml"], "").unwrap_err().contains("text or json"));
        assert!(with_file(&[], "signing_alg = \"HS256\"").unwrap_err().contains("signing_alg"));
        assert!(with_file(&[], "key_rotation_days = 0").unwrap_err().contains("key_rotation_days"));
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
            // `=`: a URL-safe key may start with `-`, which clap would take for a flag.
            let (_, config) = parse(&[&format!("--key-encryption-key={text}")]);

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
