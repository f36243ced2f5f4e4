//! All SQL lives here: the connection pool, pragmas, migrations, and one module per aggregate.
//!
//! Functions take a backend-neutral [`Db`] handle (see [`db`] for the SQL rules that keep one
//! text valid on every backend) and return typed rows; callers reach them through
//! [`Store::read`] (inline reads) and [`Store::run`] (the blocking pool), the async boundaries.

pub mod allowlist;
pub mod audit;
pub mod cache;
pub mod clients;
pub mod db;
pub mod health;
pub mod id_token_sub;
pub mod jobs;
pub mod keys;
mod migrate;
pub mod namespaces;
pub mod page;
pub mod pats;
pub mod pg;
pub mod pgconnect;
pub mod sessions;
pub mod settings;
pub mod tokens;
pub mod transfer;
pub mod users;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

pub use db::{atomic, atomic_with, Db, Dialect, Row, Value};
pub use migrate::{migrate, MIGRATIONS, MIGRATIONS_POSTGRES};
pub use page::{Listed, Page};
pub use tokens::TokenWriter;

/// A storage failure. `NotFound` and `Conflict` carry a safe, client-facing sentence.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Input the store refuses on its own terms (a safe, client-facing sentence): a 422.
    #[error("{0}")]
    Invalid(String),
    /// A UNIQUE or PRIMARY KEY violation; store functions map the ones a client can cause to
    /// `Conflict`.
    #[error("unique constraint violated: {0}")]
    Unique(String),
    /// A trigger refused the change (the name rules of `0005_unique_names.sql`).
    #[error("refused by the database: {0}")]
    Refused(String),
    /// Any other database failure; logged, never shown to clients.
    #[error("database error: {0}")]
    Database(String),
    /// The database cannot be reached (no connection in time, cannot open).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("migration {name}: {reason}")]
    Migration { name: String, reason: String },
    #[error("the database writer has stopped")]
    WriterGone,
    #[error("blocking task failed")]
    Blocking,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Opens connections with the pragmas every connection needs.
#[derive(Debug, Clone)]
struct Manager {
    path: PathBuf,
}

/// Opens one connection: WAL, foreign keys on, a busy timeout so writers queue instead of failing.
/// `synchronous=NORMAL` in WAL mode survives a killed process (kill -9) without losing commits;
/// only an OS crash or power loss can drop the last transactions. Automatic checkpoints are off:
/// they would run (and fsync) inside whichever commit crossed the threshold, stalling the token
/// writer; a background thread checkpoints instead (see [`Store::open`]).
pub fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // Every query goes through `prepare_cached`; the default cache (16) is smaller than the
    // number of distinct statements the hot paths share, which would re-parse SQL per request.
    conn.set_prepared_statement_cache_capacity(256);
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -16000;
         PRAGMA wal_autocheckpoint = 0;",
    )?;
    Ok(conn)
}

impl r2d2::ManageConnection for Manager {
    type Connection = Connection;
    type Error = rusqlite::Error;

    fn connect(&self) -> rusqlite::Result<Connection> {
        open_connection(&self.path)
    }

    fn is_valid(&self, conn: &mut Connection) -> rusqlite::Result<()> {
        conn.execute_batch("")
    }

    fn has_broken(&self, _: &mut Connection) -> bool {
        false
    }
}

/// The database: a pool of connections plus the group-commit writer for issued tokens.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    tokens: TokenWriter,
    /// Rows of the catalog tables, for read transactions ([`cache`]).
    catalog: Arc<cache::Catalog>,
}

#[derive(Clone)]
enum Backend {
    Sqlite { pool: r2d2::Pool<Manager>, path: Arc<PathBuf> },
    Postgres { pool: r2d2::Pool<pg::Manager> },
}

/// Where `JOBTOKEN_DATABASE` points: a `postgres://` / `postgresql://` URL, or a SQLite file
/// (a path, optionally prefixed `sqlite:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    pub fn parse(setting: &Path) -> Location {
        let text = setting.to_string_lossy();
        if pg::is_url(&text) {
            return Location::Postgres(text.into_owned());
        }
        match text.strip_prefix("sqlite://").or_else(|| text.strip_prefix("sqlite:")) {
            Some(path) => Location::Sqlite(PathBuf::from(path)),
            None => Location::Sqlite(setting.to_owned()),
        }
    }
}

/// The database setting as it may be shown: a PostgreSQL URL's password is redacted.
pub fn describe(setting: &Path) -> String {
    match Location::parse(setting) {
        Location::Sqlite(path) => path.display().to_string(),
        Location::Postgres(url) => pg::redact(&url),
    }
}

/// A connection a single thread owns (the token writer's).
pub(crate) enum Owned {
    Sqlite(Connection),
    Postgres { conn: Option<Box<pg::PgConn>>, manager: Box<pg::Manager> },
}

impl Owned {
    /// Runs `f` on this connection; a lost PostgreSQL connection is reopened first.
    pub(crate) fn with<T>(&mut self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        match self {
            Owned::Sqlite(conn) => f(&Db::sqlite(conn)),
            Owned::Postgres { conn, manager } => {
                if conn.as_ref().is_none_or(|c| c.is_closed()) {
                    *conn = Some(Box::new(pg::PgConn::connect(&manager.target)?));
                }
                match conn.as_mut() {
                    Some(c) => {
                        let db = Db::postgres(c.as_mut());
                        db.reset()?;
                        f(&db)
                    }
                    None => Err(StoreError::Unavailable("no connection".into())),
                }
            }
        }
    }
}

thread_local! {
    /// One read-only connection per thread and database, for [`Store::read`].
    static READERS: RefCell<HashMap<PathBuf, Connection>> = RefCell::new(HashMap::new());
}

/// Connections per `jobtoken serve` to PostgreSQL: two per core. Each request holds one only for
/// its few statements, so more connections than that just queue inside PostgreSQL, whose
/// backends then compete with this process for the same cores (measured: benches/results/latest.md).
fn postgres_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    u32::try_from(cores * 2).unwrap_or(u32::MAX).clamp(4, 32)
}

impl Store {
    /// Opens the database `JOBTOKEN_DATABASE` names (see [`Location`]), creating a SQLite file
    /// if needed, and applies pending migrations.
    pub fn open(setting: &Path) -> Result<Store> {
        match Location::parse(setting) {
            Location::Sqlite(path) => Store::open_sqlite(&path),
            Location::Postgres(url) => Store::open_postgres(&url),
        }
    }

    fn open_sqlite(path: &Path) -> Result<Store> {
        let conn = create_sqlite(path)?;
        migrate::migrate_db(&Db::sqlite(&conn))?;
        drop(conn);
        let pool = r2d2::Pool::builder()
            .test_on_check_out(false)
            .max_size(8)
            .connection_timeout(Duration::from_secs(10))
            .build(Manager { path: path.to_owned() })?;
        let tokens = TokenWriter::start(Owned::Sqlite(open_connection(path)?));
        start_checkpointer(open_connection(path)?);
        Ok(Store {
            backend: Backend::Sqlite { pool, path: Arc::new(path.to_owned()) },
            tokens,
            catalog: Arc::default(),
        })
    }

    /// PostgreSQL: a pool whose checkouts give up after [`pg::CONNECT_TIMEOUT`] (the request
    /// then answers 503), and the token writer on its own connection.
    fn open_postgres(url: &str) -> Result<Store> {
        let manager = pg::Manager::new(url)?;
        let mut conn = pg::PgConn::connect(&manager.target)?;
        migrate::migrate_db(&Db::postgres(&mut conn))?;
        let pool = r2d2::Pool::builder()
            .test_on_check_out(false)
            .max_size(postgres_pool_size())
            .min_idle(Some(0))
            .connection_timeout(pg::CONNECT_TIMEOUT)
            .build_unchecked(manager.clone());
        let tokens = TokenWriter::start(Owned::Postgres { conn: Some(Box::new(conn)), manager: Box::new(manager) });
        Ok(Store { backend: Backend::Postgres { pool }, tokens, catalog: Arc::default() })
    }

    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite { .. } => Dialect::Sqlite,
            Backend::Postgres { .. } => Dialect::Postgres,
        }
    }

    /// Runs a read-only `f`: on SQLite right here, on this thread's own read-only connection; on
    /// PostgreSQL on the blocking pool (the client must not run on an async worker thread).
    ///
    /// The hot paths (client authentication, token lookups, decisions) are a handful of
    /// indexed point reads of a few microseconds each; in WAL mode readers never wait for
    /// writers, so handing them to the blocking pool would cost more (two thread switches and
    /// a pool lock) than the queries. Anything that writes goes through [`Store::run`].
    /// `f` must not call `read` again.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        match &self.backend {
            Backend::Sqlite { .. } => self.read_sync(f),
            Backend::Postgres { .. } => {
                let store = self.clone();
                actix_web::web::block(move || store.read_sync(f)).await.map_err(|_| StoreError::Blocking)?
            }
        }
    }

    /// [`Store::read`] for code off the async runtime (CLI commands, start-up, key loading).
    pub fn read_sync<T>(&self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        match &self.backend {
            Backend::Sqlite { path, .. } => READERS.with(|cell| {
                let mut readers = cell.borrow_mut();
                if let Some(conn) = readers.get(path.as_path()) {
                    return in_read_transaction(conn, &self.catalog, f);
                }
                let conn = open_connection(path)?;
                conn.execute_batch("PRAGMA query_only = ON")?;
                let conn = readers.entry(path.as_ref().clone()).or_insert(conn);
                in_read_transaction(conn, &self.catalog, f)
            }),
            Backend::Postgres { pool } => {
                let mut conn = pool.get()?;
                let db = Db::postgres(&mut conn).with_catalog(&self.catalog);
                db.reset()?;
                db.batch("BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
                db.entered(true);
                let result = f(&db);
                db.entered(false);
                db.batch("COMMIT")?;
                result
            }
        }
    }

    /// [`Store::read`] for an `f` that runs exactly one statement (client authentication): on
    /// PostgreSQL that statement runs on its own, its own snapshot, without the `BEGIN` and
    /// `COMMIT` round trips of a read transaction; a second statement is refused.
    pub async fn read_one<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        match &self.backend {
            Backend::Sqlite { .. } => self.read_sync(f),
            Backend::Postgres { .. } => self.run(move |db| f(db.single_statement())).await,
        }
    }

    /// Runs `f` with a pooled connection on actix's blocking thread pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.clone();
        actix_web::web::block(move || store.run_sync(f)).await.map_err(|_| StoreError::Blocking)?
    }

    /// Runs `f` synchronously (CLI commands and start-up).
    pub fn run_sync<T>(&self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        match &self.backend {
            Backend::Sqlite { pool, .. } => {
                let conn = pool.get()?;
                reset(&conn)?;
                f(&Db::sqlite(&conn))
            }
            Backend::Postgres { pool } => {
                let mut conn = pool.get()?;
                let db = Db::postgres(&mut conn);
                db.reset()?;
                f(&db)
            }
        }
    }

    pub fn tokens(&self) -> &TokenWriter {
        &self.tokens
    }
}

/// Applies pending migrations to the database `setting` names, creating a SQLite file if needed,
/// and returns the names of those applied (`jobtoken migrate`); starts nothing else.
pub fn migrate_database(setting: &Path) -> Result<Vec<&'static str>> {
    match Location::parse(setting) {
        Location::Sqlite(path) => migrate::migrate_db(&Db::sqlite(&create_sqlite(&path)?)),
        Location::Postgres(url) => {
            let mut conn = pg::PgConn::connect(&pg::Manager::new(&url)?.target)?;
            migrate::migrate_db(&Db::postgres(&mut conn))
        }
    }
}

/// Opens (creating it and its directory if needed) a SQLite database file.
fn create_sqlite(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Migration { name: "create data directory".into(), reason: e.to_string() })?;
    }
    Ok(open_connection(path)?)
}

/// One read transaction: one snapshot and one lock round for all of `f`'s statements.
fn in_read_transaction<T>(conn: &Connection, catalog: &cache::Catalog, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
    reset(conn)?;
    conn.prepare_cached("BEGIN")?.execute([])?;
    let result = f(&Db::sqlite(conn).with_catalog(catalog));
    conn.prepare_cached("COMMIT")?.execute([])?;
    result
}

/// Rolls back a transaction a previous user of `conn` left open (only a panic midway can), so
/// that its half-done writes are discarded rather than committed by the next user.
fn reset(conn: &Connection) -> Result<()> {
    if !conn.is_autocommit() {
        log::error!("a connection came back inside a transaction; rolling it back");
        conn.execute_batch("ROLLBACK")?;
    }
    Ok(())
}

/// Copies the WAL back into the database every second without blocking readers or writers
/// (PASSIVE), so the WAL stays small and commits never pay for a checkpoint.
fn start_checkpointer(conn: Connection) {
    let spawned = std::thread::Builder::new().name("wal-checkpoint".into()).spawn(move || loop {
        std::thread::sleep(Duration::from_secs(1));
        if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
            log::warn!("WAL checkpoint failed: {e}");
        }
    });
    if let Err(e) = spawned {
        log::error!("could not start the WAL checkpointer: {e}");
    }
}

/// Maps "no row" to a `NotFound` with the given sentence.
pub(crate) trait OptionalExt<T> {
    fn or_not_found(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> OptionalExt<T> for Result<Option<T>> {
    fn or_not_found(self, what: impl FnOnce() -> String) -> Result<T> {
        self?.ok_or_else(|| StoreError::NotFound(what()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store() -> (Store, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "jobtoken-store-{}-{}",
            std::process::id(),
            crate::secret::random_token(6)
        ));
        (Store::open(&dir.join("db")).unwrap(), dir)
    }

    #[test]
    fn a_transaction_left_open_by_a_panic_is_rolled_back_not_committed_by_the_next_user() {
        let (store, dir) = temp_store();
        let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.run_sync(|c| -> Result<()> {
                c.batch("BEGIN IMMEDIATE")?;
                users::insert(c, "half-done", 1)?;
                panic!("midway");
            })
        }));
        assert!(crashed.is_err());
        // The next user of any pooled connection must not see or commit the half-done write.
        for _ in 0..8 {
            let found = store.run_sync(|c| {
                c.query_one("SELECT count(*) FROM users WHERE username = 'half-done'", db::params![])?.get::<i64>(0)
            });
            assert_eq!(found.unwrap(), 0);
            store
                .run_sync(|c| {
                    atomic(c, |tx| users::insert(tx, &format!("u{}", crate::secret::random_token(4)), 1).map(drop))
                })
                .unwrap();
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn inline_reads_survive_a_panic_inside_the_read() {
        let (store, dir) = temp_store();
        let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.read_sync(|_| -> Result<()> { panic!("midway") })
        }));
        assert!(crashed.is_err());
        assert!(store.read_sync(settings::get).unwrap().job_token_elevation_allowed);
        let _ = std::fs::remove_dir_all(dir);
    }
}
