//! The `jobtoken` command line: serve, migrate, keys, token, demo.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::app::{self, AppState};
use crate::config::{
    secret_arg, Config, ConfigArgs, DbArgs, FileArgs, KeyStoreArgs, LogFormat, ServerArgs, SigningArgs,
    KEY_ENCRYPTION_KEY_ENV,
};
use crate::demo;
use crate::keys::{Alg, KeyEncryptionKey, KeyFamily};
use crate::secret::Secret;
use crate::service::now;
use crate::signing::{self, KeyRequest, KeyRing};
use crate::store::{settings, Store};
use crate::token::jws;

#[derive(Debug, Parser)]
#[command(name = "jobtoken", version, about = "OAuth2 authorization server minting short-lived JWTs for CI jobs")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (applies migrations and creates keys on first start).
    Serve {
        #[command(flatten)]
        file: FileArgs,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        key_store: KeyStoreArgs,
        #[command(flatten)]
        signing: SigningArgs,
        #[command(flatten)]
        server: ServerArgs,
        /// Load the README's demo data first (unless this database has it already) and print the
        /// `export` lines its walk-through and worked example use.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations (SQLite or PostgreSQL), print the ones applied, and exit.
    /// A database whose applied migrations were edited since is refused.
    Migrate {
        #[command(flatten)]
        file: FileArgs,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Move an existing SQLite installation into an empty PostgreSQL database, in one
    /// transaction: migrates the target first, refuses one that holds data, copies every table
    /// with its ids, moves the id sequences past them, checks the row counts, and seals the
    /// private keys of the keys directory (--keys-dir) into the database under
    /// JOBTOKEN_KEY_ENCRYPTION_KEY (required); keys already sealed in the SQLite database must
    /// open under it and are carried over. The source is only read and must be fully migrated.
    /// Stop the server first.
    MigrateData {
        #[command(flatten)]
        file: FileArgs,
        #[command(flatten)]
        key_store: KeyStoreArgs,
        /// The SQLite database file to move.
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL database to fill: `postgres://user@host:port/db` (libpq-style URL).
        #[arg(long)]
        to: String,
    },
    /// Manage signing keys.
    Keys {
        #[command(flatten)]
        file: FileArgs,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        key_store: KeyStoreArgs,
        #[command(flatten)]
        signing: SigningArgs,
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Inspect tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Load the README's demo data into the database (projects grp/app and grp/deploy, a Developer,
    /// a Maintainer with a personal access token, a runner, a registry and pending jobs) and print
    /// its `export` lines. A database that has it already is left as it is.
    Demo {
        #[command(flatten)]
        file: FileArgs,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List keys of both families (`family`: job or id_token) with their state, one JSON line
    /// each. Read-only: never creates, rotates or drops a key.
    List {
        /// Only this family's keys: job (job tokens) or id_token (ID tokens).
        #[arg(long)]
        family: Option<KeyFamily>,
    },
    /// Promote a family's next key, retire its active one, create a new next key.
    Rotate {
        /// Rotate even if the next key was published less than the JWKS cache lifetime ago.
        #[arg(long)]
        force: bool,
        /// Which keys: job (job tokens, the default) or id_token (ID tokens).
        #[arg(long, default_value = "job")]
        family: KeyFamily,
    },
    /// Change a family's signing algorithm in force for every process on this database:
    /// publishes a next key of ALG now; it starts signing once it has been published for the
    /// JWKS cache lifetime (at a running server's next key tick after that, or at the next
    /// rotation).
    SetAlgorithm {
        /// Which keys: job (job tokens, the default) or id_token (ID tokens: RS256 or ES256).
        #[arg(long, default_value = "job")]
        family: KeyFamily,
        /// ES256, RS256 or EdDSA (ID tokens: RS256 or ES256).
        alg: Alg,
    },
    /// Print the container registry's `rootcertbundle` (PEM on stdout): a self-signed
    /// certificate for every published ES256 or RS256 key, the next key included. Read-only.
    RegistryBundle,
    /// Re-seal every private key stored in the database from one key-encryption key to another,
    /// in one transaction. Keys already sealed under the new key are left alone, so running it
    /// twice is harmless; a key that opens under neither stops it with nothing changed. Prefer
    /// the environment variables: flags are visible in `ps`.
    Rewrap {
        /// The key-encryption key the keys are sealed under now.
        #[arg(long = "from-key", env = "JOBTOKEN_KEY_ENCRYPTION_KEY_OLD", hide_env_values = true, value_parser = secret_arg)]
        from_key: Secret,
        /// The key-encryption key to seal them under (`openssl rand -base64 32`).
        #[arg(long = "to-key", env = "JOBTOKEN_KEY_ENCRYPTION_KEY_NEW", hide_env_values = true, value_parser = secret_arg)]
        to_key: Secret,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a token's header and claims without checking anything (no trust).
    Decode {
        /// The token, or `-` to read it from standard input.
        token: String,
    },
    /// Verify a token offline against a JWKS (URL or file): signature, typ, exp/nbf, and
    /// optionally iss and aud. Exit code 0 when valid, 1 when not (with the reason), 2 on errors.
    Verify {
        /// The token, or `-` to read it from standard input.
        token: String,
        /// JWKS location: http(s) URL or a file path.
        #[arg(long)]
        jwks: String,
        /// Required `iss`. Without it, `--issuer` / `JOBTOKEN_ISSUER` is required when set.
        #[arg(long = "expect-issuer")]
        expect_issuer: Option<String>,
        /// The server's issuer, required as `iss` when --expect-issuer is not given.
        #[arg(long, env = "JOBTOKEN_ISSUER")]
        issuer: Option<String>,
        /// Required `aud` value.
        #[arg(long = "audience", visible_alias = "expect-audience")]
        expect_audience: Option<String>,
    },
}

/// Runs the parsed command; the error is what the operator sees. Starts the logger once the
/// configuration (and so the log format) is known.
pub fn run(cli: Cli) -> Result<(), String> {
    let args = |file, db, key_store, signing, server| ConfigArgs { file, db, key_store, signing, server };
    let (args, command) = match cli.command {
        Command::Token { command } => {
            crate::logging::init(LogFormat::Text);
            return token(command);
        }
        Command::Serve { file, db, key_store, signing, server, demo } => {
            (args(file, db, key_store, signing, server), Run::Serve { demo })
        }
        Command::Migrate { file, db } => {
            (args(file, db, Default::default(), Default::default(), Default::default()), Run::Migrate)
        }
        Command::MigrateData { file, key_store, from, to } => (
            args(file, Default::default(), key_store, Default::default(), Default::default()),
            Run::MigrateData { from, to },
        ),
        Command::Keys { file, db, key_store, signing, command } => {
            (args(file, db, key_store, signing, Default::default()), Run::Keys(command))
        }
        Command::Demo { file, db, server } => {
            (args(file, db, Default::default(), Default::default(), server), Run::Demo)
        }
    };
    let config = Config::from_args(args)?;
    crate::logging::init(config.log_format);
    for warning in &config.startup_warnings {
        log::warn!("{warning}");
    }
    match command {
        Run::Serve { demo } => serve(config, demo),
        Run::Migrate => migrate(&config),
        Run::MigrateData { from, to } => migrate_data(&config, &from, &to),
        Run::Keys(command) => keys(config, command),
        Run::Demo => {
            let store = Store::open(&config.database).map_err(|e| e.to_string())?;
            let loaded = demo::load(&store, now()).map_err(|e| demo::explain(&e))?;
            let admin = match config.admin_token {
                Some(_) => demo::AdminToken::Configured,
                None => demo::AdminToken::Stored,
            };
            println!("{}", loaded.instructions(&config.issuer, &admin));
            Ok(())
        }
    }
}

/// A command that needs the configuration, once its flags are taken out.
enum Run {
    Serve { demo: bool },
    Migrate,
    MigrateData { from: PathBuf, to: String },
    Keys(KeysCommand),
    Demo,
}

/// `jobtoken token decode|verify`: no configuration beyond the verify flags.
fn token(command: TokenCommand) -> Result<(), String> {
    match command {
        TokenCommand::Decode { token } => decode(&token_argument(token)?),
        TokenCommand::Verify { token, jwks, expect_issuer, issuer, expect_audience } => {
            let token = token_argument(token)?;
            let expect_issuer = expect_issuer.or(issuer);
            match crate::verify::verify_offline(
                &token,
                &jwks,
                expect_issuer.as_deref(),
                expect_audience.as_deref(),
                now(),
            ) {
                Ok(claims) => {
                    println!("{}", serde_json::to_string_pretty(&claims).map_err(|e| e.to_string())?);
                    Ok(())
                }
                Err(crate::verify::VerifyError::Invalid(reason)) => {
                    eprintln!("jobtoken: token is not valid: {reason}");
                    std::process::exit(1);
                }
                Err(crate::verify::VerifyError::Fetch(reason)) => {
                    eprintln!("jobtoken: {reason}");
                    std::process::exit(2);
                }
            }
        }
    }
}

/// The token as given, or read from standard input (trimmed) when it is `-`. A token is a few
/// kilobytes; more than 64 KiB on stdin is refused rather than read into memory.
fn token_argument(token: String) -> Result<String, String> {
    if token != "-" {
        return Ok(token);
    }
    use std::io::Read;
    const MAX: u64 = 64 * 1024;
    let mut text = String::new();
    std::io::stdin()
        .take(MAX + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("reading the token from standard input: {e}"))?;
    if text.len() as u64 > MAX {
        return Err("the token on standard input is longer than 64 KiB".into());
    }
    let token = text.trim();
    if token.is_empty() {
        return Err("no token on standard input".into());
    }
    Ok(token.to_owned())
}

/// `jobtoken migrate`: one line per migration applied, then the database's state.
fn migrate(config: &Config) -> Result<(), String> {
    let shown = crate::store::describe(&config.database);
    let applied = crate::store::migrate_database(&config.database).map_err(|e| format!("migrating {shown}: {e}"))?;
    for name in &applied {
        println!("applied {name}");
    }
    println!("database {shown} is up to date ({} migration(s) applied now)", applied.len());
    Ok(())
}

/// `jobtoken migrate-data`: prints what it moved, never a key.
fn migrate_data(config: &Config, from: &std::path::Path, to: &str) -> Result<(), String> {
    if !crate::store::pg::is_url(to) {
        return Err(format!("--to must be a postgres:// URL, not {to}"));
    }
    let shown = crate::store::pg::redact(to);
    let Some(kek) = &config.key_encryption_key else {
        return Err(format!(
            "{KEY_ENCRYPTION_KEY_ENV} is required: the signing keys move into the PostgreSQL database sealed under it. \
             Generate one with `openssl rand -base64 32` and give every replica the same value"
        ));
    };
    let keys_dir = config.keys_dir.clone();
    let seal = |kid: &str, stored: Option<&[u8]>| {
        crate::keys::storage::sealed_for_database(kek, &keys_dir, kid, stored).map_err(|e| e.to_string())
    };
    let moved = crate::store::transfer::sqlite_to_postgres(from, to, &seal)
        .map_err(|e| format!("migrate-data from {} to {shown}: {e}", from.display()))?;
    for (table, rows) in &moved.tables {
        println!("copied {rows} row(s) of {table}");
    }
    println!(
        "moved {} sequence(s) past the copied ids; sealed {} signing key(s) from {} and carried {} already sealed",
        moved.sequences,
        moved.keys_sealed,
        config.keys_dir.display(),
        moved.keys_carried
    );
    println!(
        "done: start jobtoken with JOBTOKEN_DATABASE={shown} and the same {KEY_ENCRYPTION_KEY_ENV}; the SQLite file \
         and keys directory were not changed"
    );
    Ok(())
}

fn open(config: &Config) -> Result<(Store, Arc<KeyRing>), String> {
    // Refused before the database is touched: PostgreSQL without a key-encryption key.
    config.key_storage()?;
    let store = Store::open(&config.database)
        .map_err(|e| format!("opening {}: {e}", crate::store::describe(&config.database)))?;
    let keys = KeyRing::open(&store, config, now()).map_err(|e| format!("loading signing keys: {e}"))?;
    Ok((store, Arc::new(keys)))
}

fn serve(config: Config, demo: bool) -> Result<(), String> {
    // Refused before anything is opened or bound: unreadable or mismatched certificate and key.
    let tls = config.tls.as_ref().map(crate::tls::server_config).transpose()?;
    let (store, keys) = open(&config)?;
    let (admin_hash, generated_admin) = admin_hash(&store, &config)?;
    let listener = TcpListener::bind(&config.bind).map_err(|e| format!("binding {}: {e}", config.bind))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let admin = match &config.admin_bind {
        Some(bind) => Some(TcpListener::bind(bind).map_err(|e| format!("binding the admin listener {bind}: {e}"))?),
        None => None,
    };
    let admin_addr = admin.as_ref().map(TcpListener::local_addr).transpose().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let config = config.bound_to(addr);
    if demo {
        let admin = match (&generated_admin, &config.admin_token) {
            (Some(token), _) => demo::AdminToken::Generated(token),
            (None, Some(_)) => demo::AdminToken::Configured,
            (None, None) => demo::AdminToken::Stored,
        };
        let loaded = demo::load(&store, now()).map_err(|e| demo::explain(&e))?;
        println!("{}", loaded.instructions(&config.issuer, &admin));
    }
    let issuer = config.issuer.clone();
    let served = store.clone();
    let (result, authlog) = actix_web::rt::System::new().block_on(async move {
        let store = served;
        let state = AppState::new(config, store.clone(), keys, admin_hash);
        let authlog = state.authlog.clone();
        authlog.start(store.clone());
        let running = match app::build(state, app::Listeners { public: listener, admin, tls }) {
            Ok(running) => running,
            Err(e) => return (Err(e.to_string()), authlog),
        };
        if let Some(admin_addr) = admin_addr {
            // Before the public line, which tells scripts (and the tests) the server is up.
            println!("jobtoken admin listening on {scheme}://{admin_addr}");
            log::info!("admin API and metrics listening on {admin_addr}");
        }
        println!("jobtoken listening on {scheme}://{addr} (issuer {issuer})");
        log::info!("listening on {addr}");
        (running.server.await.map_err(|e| e.to_string()), authlog)
    });
    // Off the runtime: the PostgreSQL client must not block inside it.
    authlog.shutdown(&store, now());
    log::info!("stopped");
    result
}

/// The admin credential's hash: from configuration, else the stored generated one, else a new
/// one generated now and printed once (and returned, for the demo's `ADMIN` export).
fn admin_hash(store: &Store, config: &Config) -> Result<([u8; 32], Option<Secret>), String> {
    if let Some(token) = &config.admin_token {
        return Ok((token.hash(), None));
    }
    let stored_hash = || -> Result<Option<[u8; 32]>, String> {
        let stored = store.run_sync(settings::admin_token_hash).map_err(|e| e.to_string())?;
        Ok(stored.and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok()))
    };
    if let Some(hash) = stored_hash()? {
        return Ok((hash, None));
    }
    let token = Secret::generate("jtadm_");
    let hash = token.hash();
    // Replicas starting at once on a new database: the first to store its hash wins, the others
    // adopt it (and print nothing), so every replica accepts the one credential that was shown.
    if !store.run_sync(|c| settings::claim_admin_token_hash(c, &hash)).map_err(|e| e.to_string())? {
        log::info!("another process generated the admin token; its output shows it");
        let hash = stored_hash()?.ok_or_else(|| "the generated admin token's hash vanished".to_owned())?;
        return Ok((hash, None));
    }
    println!("Generated admin token (shown once; store it now, only its hash is kept):\n  {}", token.expose());
    Ok((hash, Some(token)))
}

fn keys(config: Config, command: KeysCommand) -> Result<(), String> {
    if !matches!(command, KeysCommand::List { .. } | KeysCommand::Rewrap { .. }) {
        config.key_storage()?;
    }
    let store = Store::open(&config.database)
        .map_err(|e| format!("opening {}: {e}", crate::store::describe(&config.database)))?;
    let request = match command {
        KeysCommand::Rewrap { from_key, to_key } => return rewrap(&store, &from_key, &to_key),
        KeysCommand::RegistryBundle => return registry_bundle(&store, &config),
        KeysCommand::List { family } => return list_keys(&store, &config, family),
        KeysCommand::Rotate { force, family } => KeyRequest::Rotate { family, force },
        KeysCommand::SetAlgorithm { family, alg } => KeyRequest::SetAlgorithm { family, alg },
    };
    let done = signing::maintain(&store, &config, request, now()).map_err(|e| e.to_string())?;
    let family = match request {
        KeyRequest::SetAlgorithm { family, .. } => {
            let (what, alg) = match family {
                KeyFamily::Job => ("signing algorithm", done.alg.alg),
                KeyFamily::IdToken => ("ID-token signing algorithm", done.id_alg.alg),
            };
            println!(
                "{what} in force: {alg}; its next key signs once it has been published for {}s",
                crate::keys::jwks::MAX_AGE_SECS
            );
            family
        }
        KeyRequest::Rotate { family, .. } => {
            println!("rotated the {family} keys; a running server picks the change up within a minute");
            family
        }
        KeyRequest::Scheduled => KeyFamily::Job,
    };
    list_keys(&store, &config, Some(family))
}

/// Prints the stored keys of `family` (`None`: both), one JSON line each, changing nothing.
fn list_keys(store: &Store, config: &Config, family: Option<KeyFamily>) -> Result<(), String> {
    let listed = signing::stored_keys(store, config, family, now()).map_err(|e| e.to_string())?;
    if listed.is_empty() {
        eprintln!("no signing keys yet: `jobtoken serve` creates them on first start");
    }
    for k in listed {
        println!("{}", serde_json::to_string(&k).map_err(|e| e.to_string())?);
    }
    Ok(())
}

/// `jobtoken keys registry-bundle`: the PEM bundle on stdout, nothing else.
fn registry_bundle(store: &Store, config: &Config) -> Result<(), String> {
    let pem = signing::registry_bundle(store, config, now()).map_err(|e| match e {
        signing::KeyRingError::NoActiveKey => {
            "no signing keys yet: `jobtoken serve` creates them on first start".into()
        }
        other => other.to_string(),
    })?;
    if pem.is_empty() {
        return Err("no published signing key is one distribution can verify (ES256 or RS256); run `jobtoken keys \
                    set-algorithm ES256`"
            .into());
    }
    print!("{pem}");
    Ok(())
}

/// `jobtoken keys rewrap`: prints what it did, never a key.
fn rewrap(store: &Store, from_key: &Secret, to_key: &Secret) -> Result<(), String> {
    let parse = |setting: &str, text: &Secret| {
        KeyEncryptionKey::from_base64(text.expose()).map_err(|e| format!("{setting} {e}"))
    };
    let old = parse("JOBTOKEN_KEY_ENCRYPTION_KEY_OLD (--from-key)", from_key)?;
    let new = parse("JOBTOKEN_KEY_ENCRYPTION_KEY_NEW (--to-key)", to_key)?;
    let done = signing::rewrap(store, &old, &new).map_err(|e| e.to_string())?;
    println!(
        "rewrapped {} signing key(s) under the new key-encryption key; {} already were; now restart every replica \
         with {KEY_ENCRYPTION_KEY_ENV} set to the new key",
        done.resealed, done.unchanged
    );
    Ok(())
}

fn decode(token: &str) -> Result<(), String> {
    let decoded = jws::decode_unverified(token).map_err(|e| format!("not a JWS compact token: {e}"))?;
    let out = serde_json::json!({ "header": decoded.header, "claims": decoded.claims, "verified": false });
    println!("{}", serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?);
    Ok(())
}
