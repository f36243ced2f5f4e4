//! All SQL lives here: the connection pool, pragmas, migrations, and one module per aggregate.
//!
//! Functions take a backend-neutral [`Db`] handle (see [`db`] for the SQL rules that keep one
//! text valid on every backend) and return typed rows; callers reach them through
//! [`Store::read`] (inline reads) and [`Store::run`] (the blocking pool), the async boundaries.

pub mod allowlist;
pub mod clients;
pub mod db;
pub mod jobs;
pub mod keys;
mod migrate;
pub mod namespaces;
pub mod pats;
pub mod settings;
pub mod tokens;
pub mod users;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

pub use db::{atomic, Db, Dialect, Row, Value};
pub use migrate::{migrate, MIGRATIONS};
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
    pool: r2d2::Pool<Manager>,
    tokens: TokenWriter,
    path: Arc<PathBuf>,
}

thread_local! {
    /// One read-only connection per thread and database, for [`Store::read`].
    static READERS: RefCell<HashMap<PathBuf, Connection>> = RefCell::new(HashMap::new());
}

impl Store {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Migration { name: "create data directory".into(), reason: e.to_string() })?;
        }
        let mut conn = open_connection(path)?;
        migrate(&mut conn)?;
        drop(conn);
        let pool = r2d2::Pool::builder()
            .test_on_check_out(false)
            .max_size(8)
            .connection_timeout(Duration::from_secs(10))
            .build(Manager { path: path.to_owned() })?;
        let tokens = TokenWriter::start(open_connection(path)?);
        start_checkpointer(open_connection(path)?);
        Ok(Store { pool, tokens, path: Arc::new(path.to_owned()) })
    }

    /// Runs a read-only `f` right here, on this thread's own read-only connection.
    ///
    /// The hot paths (client authentication, token lookups, decisions) are a handful of
    /// indexed point reads of a few microseconds each; in WAL mode readers never wait for
    /// writers, so handing them to the blocking pool would cost more (two thread switches and
    /// a pool lock) than the queries. Anything that writes goes through [`Store::run`].
    /// `f` is `'static` and `Send` because a networked backend will run it on the blocking pool;
    /// on SQLite it runs inline, without a thread hop. `f` must not call `read` again.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.read_sync(f)
    }

    /// [`Store::read`] for code off the async runtime (CLI commands, start-up, key loading).
    pub fn read_sync<T>(&self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        READERS.with(|cell| {
            let mut readers = cell.borrow_mut();
            if let Some(conn) = readers.get(self.path.as_path()) {
                return in_read_transaction(conn, f);
            }
            let conn = open_connection(&self.path)?;
            conn.execute_batch("PRAGMA query_only = ON")?;
            let conn = readers.entry(self.path.as_ref().clone()).or_insert(conn);
            in_read_transaction(conn, f)
        })
    }

    /// Runs `f` with a pooled connection on actix's blocking thread pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        actix_web::web::block(move || {
            let conn = pool.get()?;
            reset(&conn)?;
            f(&Db::sqlite(&conn))
        })
        .await
        .map_err(|_| StoreError::Blocking)?
    }

    /// Runs `f` synchronously (CLI commands and start-up).
    pub fn run_sync<T>(&self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        let conn = self.pool.get()?;
        reset(&conn)?;
        f(&Db::sqlite(&conn))
    }

    pub fn tokens(&self) -> &TokenWriter {
        &self.tokens
    }
}

/// One read transaction: one snapshot and one lock round for all of `f`'s statements.
fn in_read_transaction<T>(conn: &Connection, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
    reset(conn)?;
    conn.prepare_cached("BEGIN")?.execute([])?;
    let result = f(&Db::sqlite(conn));
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
