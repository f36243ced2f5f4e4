//! Settings from `JOBTOKEN_*` environment variables and matching flags.

use std::path::PathBuf;

use clap::Args;

use crate::keys::Alg;
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
    /// SQLite database file.
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
    #[arg(long, env = "JOBTOKEN_KEY_TICK_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=60), global = true, hide = true)]
    pub key_tick_seconds: u64,
    /// HTTP worker threads. Default: one per core.
    #[arg(long, env = "JOBTOKEN_WORKERS", global = true)]
    pub workers: Option<usize>,
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

    pub fn rotation_period_secs(&self) -> i64 {
        i64::from(self.key_rotation_days) * 86_400
    }
}
