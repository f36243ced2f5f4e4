//! The backend-neutral database handle every store function speaks to.
//!
//! A [`Db`] is one connection of some backend (SQLite or PostgreSQL, see [`super::pg`]); store functions run SQL
//! through it with parameters as `&[&dyn ToValue]` (see [`params!`](crate::db_params)) and read
//! [`Row`]s of owned [`Value`]s. Nothing outside `src/store/` sees a backend type.
//!
//! # SQL that runs on every backend
//!
//! The same SQL text is meant to run on SQLite and on PostgreSQL, so it keeps to these rules:
//!
//! - Placeholders are only `?1 … ?N` (PostgreSQL translates them to `$1 … $N`).
//! - No `INSERT OR IGNORE`: use `INSERT … ON CONFLICT DO NOTHING`.
//! - No `last_insert_rowid()`: use `INSERT … RETURNING id` through [`Db::query_one`].
//! - No scalar two-argument `max(a, b)` / `min(a, b)`: use `CASE WHEN`.
//! - Booleans are bound and read as integers 0/1; times are `i64` unix seconds.
//! - Where a statement truly must differ, the store function branches on [`Db::dialect`].
//!
//! Errors come back as backend-neutral [`StoreError`]s: a unique or primary-key violation is
//! [`StoreError::Unique`], a trigger's refusal [`StoreError::Refused`], anything else
//! [`StoreError::Database`] (logged, never shown to clients).

use std::cell::{Cell, RefCell};
use std::str::FromStr;

use rusqlite::types::ToSqlOutput;

use super::pg::{PgConn, WRITER_LOCK};
use super::{Result, StoreError};

/// One SQL value, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Text(_) => "text",
            Value::Blob(_) => "a blob",
        }
    }
}

/// A SQL value borrowed from a parameter: binding copies nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRef<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl ValueRef<'_> {
    pub fn to_owned(self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Text(t) => Value::Text(t.to_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        }
    }
}

/// A Rust value that binds as a SQL parameter.
pub trait ToValue {
    fn value_ref(&self) -> ValueRef<'_>;

    fn to_value(&self) -> Value {
        self.value_ref().to_owned()
    }
}

impl ToValue for Value {
    fn value_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Int(*i),
            Value::Text(t) => ValueRef::Text(t),
            Value::Blob(b) => ValueRef::Blob(b),
        }
    }
}

impl ToValue for i64 {
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::Int(*self)
    }
}

impl ToValue for i32 {
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::Int(i64::from(*self))
    }
}

impl ToValue for bool {
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::Int(i64::from(*self))
    }
}

impl ToValue for str {
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl ToValue for String {
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl ToValue for [u8] {
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl ToValue for Vec<u8> {
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl<const N: usize> ToValue for [u8; N] {
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn value_ref(&self) -> ValueRef<'_> {
        self.as_ref().map_or(ValueRef::Null, ToValue::value_ref)
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn value_ref(&self) -> ValueRef<'_> {
        (**self).value_ref()
    }
}

/// Builds a parameter list, `&[&dyn ToValue]`, from expressions: `params![id, name]`.
#[macro_export]
macro_rules! db_params {
    () => { &[] as &[&dyn $crate::store::db::ToValue] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::store::db::ToValue),+] as &[&dyn $crate::store::db::ToValue] };
}
pub use crate::db_params as params;

/// A Rust value a column reads into.
pub trait FromValue: Sized {
    fn from_value(value: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

/// Any non-zero integer is true, as SQLite reads it.
impl FromValue for bool {
    fn from_value(value: &Value) -> Option<Self> {
        i64::from_value(value).map(|i| i != 0)
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Text(t) => Some(t.clone()),
            _ => None,
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Blob(b) => Some(b.clone()),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// One result row: its values in column order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    /// The raw value of column `idx`.
    pub fn value(&self, idx: usize) -> Result<&Value> {
        self.values.get(idx).ok_or_else(|| StoreError::Database(format!("column {idx} does not exist")))
    }

    /// Columns `range` as a row of their own, to read a joined row table by table.
    pub fn columns(&self, range: std::ops::Range<usize>) -> Result<Row> {
        match self.values.get(range.clone()) {
            Some(values) => Ok(Row { values: values.to_vec() }),
            None => Err(StoreError::Database(format!("columns {range:?} do not exist"))),
        }
    }

    /// Column `idx` as a `T`; a value of another type is a `Database` error.
    pub fn get<T: FromValue>(&self, idx: usize) -> Result<T> {
        let value = self.value(idx)?;
        T::from_value(value).ok_or_else(|| {
            StoreError::Database(format!(
                "column {idx}: cannot read {} as {}",
                value.kind(),
                std::any::type_name::<T>()
            ))
        })
    }

    /// A text column parsed into a `FromStr` domain value (enum-like columns).
    pub fn parse<T: FromStr>(&self, idx: usize) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        let text: String = self.get(idx)?;
        text.parse().map_err(|e| StoreError::Database(format!("column {idx}: {e}")))
    }

    /// A nullable text column parsed with `parse`; NULL is `None`.
    pub fn parse_opt_with<T, E: std::fmt::Display>(
        &self,
        idx: usize,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>> {
        match self.value(idx)? {
            Value::Null => Ok(None),
            Value::Text(text) => parse(text).map(Some).map_err(|e| StoreError::Database(format!("column {idx}: {e}"))),
            other => Err(StoreError::Database(format!("column {idx}: cannot read {} as text", other.kind()))),
        }
    }
}

/// The SQL dialect of a [`Db`], for the rare statement that must differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// How long (ms) a PostgreSQL write transaction may wait for its own process between statements
/// before the server ends its session. The transaction holds the writer lock every replica's
/// writers queue on: a replica that freezes mid-write (a paused VM, a partitioned host, SIGSTOP)
/// would otherwise stop every replica's minting until TCP gives up on it, hours later. Our
/// transactions never wait on anything between statements but this process's CPU.
pub const IDLE_WRITER_TIMEOUT_MS: u64 = 5_000;

/// A handle on one database connection.
pub struct Db<'a> {
    conn: Conn<'a>,
    /// Statements this handle may still run, when limited ([`Db::single_statement`]).
    budget: Cell<Option<u32>>,
    /// The catalog cache, on a read transaction's handle only ([`Db::with_catalog`]).
    catalog: Option<&'a super::cache::Catalog>,
    /// The `cache_version` counter of this handle's snapshot, once read.
    version: Cell<Option<i64>>,
}

enum Conn<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(RefCell<&'a mut PgConn>),
}

impl<'a> Db<'a> {
    /// A handle on a SQLite connection.
    pub(crate) fn sqlite(conn: &'a rusqlite::Connection) -> Db<'a> {
        Db { conn: Conn::Sqlite(conn), budget: Cell::new(None), catalog: None, version: Cell::new(None) }
    }

    /// A handle on a PostgreSQL connection (never on an async worker thread).
    pub(crate) fn postgres(conn: &'a mut PgConn) -> Db<'a> {
        Db {
            conn: Conn::Postgres(RefCell::new(conn)),
            budget: Cell::new(None),
            catalog: None,
            version: Cell::new(None),
        }
    }

    /// This handle, using `catalog` for cached lookups: only for a handle whose statements all
    /// run in one read transaction (one snapshot), see [`super::cache`].
    pub(crate) fn with_catalog(mut self, catalog: &'a super::cache::Catalog) -> Db<'a> {
        self.catalog = Some(catalog);
        self
    }

    /// The catalog cache and this snapshot's counter, when this handle may use the cache.
    pub(crate) fn catalog(&self) -> Result<Option<(&'a super::cache::Catalog, i64)>> {
        let Some(catalog) = self.catalog else { return Ok(None) };
        let version = match self.version.get() {
            Some(v) => v,
            None => {
                let v = super::cache::read_version(self)?;
                self.version.set(Some(v));
                v
            }
        };
        Ok(Some((catalog, version)))
    }

    /// This handle, allowed one statement only: a read that runs outside a transaction is one
    /// snapshot only while it is one statement, so a second one is refused (a bug, not a race).
    pub(crate) fn single_statement(&self) -> &Self {
        self.budget.set(Some(1));
        self
    }

    /// Counts one statement against the budget, if any.
    fn spend(&self) -> Result<()> {
        match self.budget.get() {
            None => Ok(()),
            Some(0) => Err(StoreError::Database("a single-statement read ran a second statement".into())),
            Some(n) => {
                self.budget.set(Some(n - 1));
                Ok(())
            }
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self.conn {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs one statement; returns how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn ToValue]) -> Result<u64> {
        self.spend()?;
        match &self.conn {
            Conn::Sqlite(c) => {
                let n = c.prepare_cached(sql)?.execute(rusqlite::params_from_iter(bind(params)))?;
                Ok(n as u64)
            }
            Conn::Postgres(c) => c.borrow_mut().execute(sql, params),
        }
    }

    /// Runs one query; returns every row.
    pub fn query(&self, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<Row>> {
        self.rows(sql, params, usize::MAX)
    }

    /// Runs one query; returns its first row, if any (stepping no further).
    pub fn query_opt(&self, sql: &str, params: &[&dyn ToValue]) -> Result<Option<Row>> {
        Ok(self.rows(sql, params, 1)?.pop())
    }

    /// At most `max` rows of one query.
    fn rows(&self, sql: &str, params: &[&dyn ToValue], max: usize) -> Result<Vec<Row>> {
        self.spend()?;
        match &self.conn {
            Conn::Postgres(c) => {
                Ok(c.borrow_mut().rows(sql, params, max)?.into_iter().map(|values| Row { values }).collect())
            }
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let width = stmt.column_count();
                let mut rows = stmt.query(rusqlite::params_from_iter(bind(params)))?;
                let mut out = Vec::new();
                while out.len() < max {
                    match rows.next()? {
                        Some(row) => out.push(sqlite_row(row, width)?),
                        None => break,
                    }
                }
                Ok(out)
            }
        }
    }

    /// Runs one query that yields at least one row; returns the first. No row is a `Database`
    /// error (use [`Db::query_opt`] where a missing row is an answer).
    pub fn query_one(&self, sql: &str, params: &[&dyn ToValue]) -> Result<Row> {
        self.query_opt(sql, params)?.ok_or_else(|| StoreError::Database("the query returned no row".into()))
    }

    /// Runs several statements without parameters (schema changes, pragmas).
    pub fn batch(&self, sql: &str) -> Result<()> {
        self.spend()?;
        match &self.conn {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(c) => c.borrow_mut().batch(sql),
        }
    }

    /// True while a transaction is open on this connection.
    pub(crate) fn in_transaction(&self) -> bool {
        match &self.conn {
            Conn::Sqlite(c) => !c.is_autocommit(),
            Conn::Postgres(c) => c.borrow().depth > 0,
        }
    }

    /// Opens a transaction (`outer`) or a savepoint. A PostgreSQL transaction takes the writer
    /// lock first, so that writers on every replica queue as SQLite's `BEGIN IMMEDIATE` makes them,
    /// and may sit idle for at most [`IDLE_WRITER_TIMEOUT_MS`] between statements.
    fn begin(&self, outer: bool) -> Result<()> {
        match &self.conn {
            Conn::Sqlite(_) => self.batch(if outer { "BEGIN IMMEDIATE" } else { "SAVEPOINT atomic" }),
            Conn::Postgres(c) => {
                let mut c = c.borrow_mut();
                if outer {
                    let begun = c.batch(&format!(
                        "BEGIN; SET LOCAL idle_in_transaction_session_timeout = {IDLE_WRITER_TIMEOUT_MS}; \
                         SELECT pg_advisory_xact_lock({WRITER_LOCK})"
                    ));
                    if let Err(e) = begun {
                        // BEGIN may have run before the lock wait failed (a statement timeout while
                        // another replica holds the writer lock): never hand the connection back
                        // inside an aborted transaction, or every later statement on it fails.
                        let _ = c.batch("ROLLBACK");
                        c.depth = 0;
                        c.failed = false;
                        return Err(e);
                    }
                    c.depth = 1;
                    c.failed = false;
                } else {
                    if let Err(e) = c.batch("SAVEPOINT atomic") {
                        c.failed = true;
                        return Err(e);
                    }
                    c.depth += 1;
                }
                Ok(())
            }
        }
    }

    /// Commits the transaction or releases the savepoint `begin` opened. A PostgreSQL
    /// transaction in which a statement failed is rolled back and reported, never committed.
    fn finish(&self, outer: bool) -> Result<()> {
        match &self.conn {
            Conn::Sqlite(_) => self.batch(if outer { "COMMIT" } else { "RELEASE atomic" }),
            Conn::Postgres(c) => {
                let mut c = c.borrow_mut();
                if outer && c.failed {
                    let rolled_back = c.batch("ROLLBACK");
                    c.depth = 0;
                    c.failed = false;
                    rolled_back?;
                    return Err(StoreError::Database("a statement failed inside the transaction".into()));
                }
                let done = c.batch(if outer { "COMMIT" } else { "RELEASE atomic" });
                if outer {
                    // COMMIT ends the transaction whether or not it succeeds.
                    c.depth = 0;
                    c.failed = false;
                } else if done.is_ok() {
                    c.depth -= 1;
                }
                done
            }
        }
    }

    /// Rolls back what `begin` opened.
    fn undo(&self, outer: bool) -> Result<()> {
        match &self.conn {
            Conn::Sqlite(_) => self.batch(if outer { "ROLLBACK" } else { "ROLLBACK TO atomic; RELEASE atomic" }),
            Conn::Postgres(c) => {
                let mut c = c.borrow_mut();
                let undone = c.batch(if outer { "ROLLBACK" } else { "ROLLBACK TO atomic; RELEASE atomic" });
                if outer {
                    c.depth = 0;
                    c.failed = false;
                } else if undone.is_ok() {
                    c.depth -= 1;
                    c.failed = false;
                }
                undone
            }
        }
    }

    /// Rolls back whatever transaction is open (a previous user panicked midway).
    pub(crate) fn reset(&self) -> Result<()> {
        if self.in_transaction() {
            log::error!("a connection came back inside a transaction; rolling it back");
            match &self.conn {
                Conn::Sqlite(_) => self.batch("ROLLBACK")?,
                Conn::Postgres(c) => {
                    let mut c = c.borrow_mut();
                    c.depth = 0;
                    c.failed = false;
                    c.batch("ROLLBACK")?;
                }
            }
        }
        Ok(())
    }

    /// Marks a read transaction opened outside `atomic` (PostgreSQL bookkeeping).
    pub(crate) fn entered(&self, open: bool) {
        if let Conn::Postgres(c) = &self.conn {
            let mut c = c.borrow_mut();
            c.depth = u32::from(open);
            c.failed = false;
        }
    }
}

/// Runs `f` atomically: in a new transaction that takes the write lock up front (SQLite:
/// `BEGIN IMMEDIATE`, so a read-then-write never fails on a stale snapshot), or in a savepoint
/// when the caller already holds a transaction. On error everything `f` wrote is rolled back.
pub fn atomic<T>(db: &Db, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
    let outer = !db.in_transaction();
    db.begin(outer)?;
    match f(db) {
        Ok(value) => match db.finish(outer) {
            Ok(()) => Ok(value),
            Err(e) => {
                // A failed COMMIT (say, SQLITE_BUSY) can leave the transaction open; never hand
                // the connection on inside it.
                if outer && db.in_transaction() {
                    if let Err(rollback) = db.batch("ROLLBACK") {
                        log::error!("rollback after a failed commit failed: {rollback}");
                    }
                }
                Err(e)
            }
        },
        Err(e) => {
            if let Err(rollback) = db.undo(outer) {
                log::error!("rollback failed: {rollback}");
            }
            Err(e)
        }
    }
}

/// [`atomic`] for a caller with its own error type `E` (one enum per use case): any `Err` of `f`,
/// a refusal or a store failure, rolls the transaction back and comes back unchanged.
pub fn atomic_with<T, E: From<StoreError>>(db: &Db, f: impl FnOnce(&Db) -> Result<T, E>) -> Result<T, E> {
    let mut refused = None;
    let done = atomic(db, |tx| {
        f(tx).map_err(|e| {
            refused = Some(e);
            StoreError::Refused("the caller refused the change".into())
        })
    });
    match (done, refused) {
        (_, Some(e)) => Err(e),
        (Ok(value), None) => Ok(value),
        (Err(e), None) => Err(e.into()),
    }
}

fn bind<'p>(params: &'p [&'p dyn ToValue]) -> impl Iterator<Item = Bind<'p>> + 'p {
    params.iter().map(|p| Bind(*p))
}

/// A parameter as SQLite binds it, borrowed.
struct Bind<'p>(&'p dyn ToValue);

impl rusqlite::ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0.value_ref() {
            ValueRef::Null => ToSqlOutput::Owned(rusqlite::types::Value::Null),
            ValueRef::Int(i) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(i)),
            ValueRef::Text(t) => ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Text(t.as_bytes())),
            ValueRef::Blob(b) => ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Blob(b)),
        })
    }
}

fn sqlite_row(row: &rusqlite::Row, width: usize) -> Result<Row> {
    use rusqlite::types::ValueRef as SqliteRef;
    let mut values = Vec::with_capacity(width);
    for idx in 0..width {
        values.push(match row.get_ref(idx)? {
            SqliteRef::Null => Value::Null,
            SqliteRef::Integer(i) => Value::Int(i),
            SqliteRef::Text(t) => Value::Text(
                std::str::from_utf8(t).map_err(|e| StoreError::Database(format!("column {idx}: {e}")))?.to_owned(),
            ),
            SqliteRef::Blob(b) => Value::Blob(b.to_vec()),
            SqliteRef::Real(_) => return Err(StoreError::Database(format!("column {idx}: REAL is not supported"))),
        });
    }
    Ok(Row { values })
}

/// SQLite errors in backend-neutral terms.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi;
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                    || f.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                StoreError::Unique(e.to_string())
            }
            rusqlite::Error::SqliteFailure(f, _) if f.extended_code == ffi::SQLITE_CONSTRAINT_TRIGGER => {
                StoreError::Refused(e.to_string())
            }
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(f.code, rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::NotADatabase) =>
            {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, flag INTEGER, data BLOB)")
            .unwrap();
        conn
    }

    #[test]
    fn values_round_trip_through_parameters_and_rows() {
        let conn = memory();
        let db = Db::sqlite(&conn);
        let row = db
            .query_one(
                "INSERT INTO t (name, flag, data) VALUES (?1, ?2, ?3) RETURNING id, name, flag, data",
                params!["a", true, [1u8, 2, 3]],
            )
            .unwrap();
        assert_eq!(row.get::<i64>(0).unwrap(), 1);
        assert_eq!(row.get::<String>(1).unwrap(), "a");
        assert!(row.get::<bool>(2).unwrap());
        assert_eq!(row.get::<Vec<u8>>(3).unwrap(), [1, 2, 3]);
        assert_eq!(row.get::<Option<i64>>(1).unwrap_err().to_string(), {
            "database error: column 1: cannot read text as core::option::Option<i64>"
        });
        let none: Option<&str> = None;
        assert_eq!(db.execute("UPDATE t SET name = ?1 WHERE id = ?2", params![none, 1i64]).unwrap(), 1);
        assert_eq!(db.query_one("SELECT name FROM t", params![]).unwrap().get::<Option<String>>(0).unwrap(), None);
    }

    #[test]
    fn a_unique_violation_is_told_apart_from_other_failures() {
        let conn = memory();
        let db = Db::sqlite(&conn);
        db.execute("INSERT INTO t (name) VALUES (?1)", params!["a"]).unwrap();
        let dup = db.execute("INSERT INTO t (name) VALUES (?1)", params!["a"]).unwrap_err();
        assert!(matches!(dup, StoreError::Unique(_)), "{dup:?}");
        let bad = db.execute("INSERT INTO nowhere (name) VALUES (?1)", params!["a"]).unwrap_err();
        assert!(matches!(bad, StoreError::Database(_)), "{bad:?}");
        assert!(db.query_opt("SELECT id FROM t WHERE name = ?1", params!["b"]).unwrap().is_none());
    }

    #[test]
    fn a_transaction_whose_commit_fails_is_rolled_back_not_left_open() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
        )
        .unwrap();
        let db = Db::sqlite(&conn);
        // The deferred foreign key is checked at COMMIT, which therefore fails.
        let failed = atomic(&db, |tx| tx.execute("INSERT INTO child (parent_id) VALUES (7)", params![]));
        assert!(matches!(failed, Err(StoreError::Database(_))), "{failed:?}");
        assert!(!db.in_transaction(), "the failed transaction must not stay open for the next user");
        atomic(&db, |tx| tx.execute("INSERT INTO parent (id) VALUES (1)", params![])).unwrap();
        assert_eq!(db.query_one("SELECT count(*) FROM child", params![]).unwrap().get::<i64>(0).unwrap(), 0);
        assert_eq!(db.query_one("SELECT count(*) FROM parent", params![]).unwrap().get::<i64>(0).unwrap(), 1);
    }

    #[test]
    fn a_single_statement_handle_refuses_a_second_statement() {
        let conn = memory();
        let db = Db::sqlite(&conn);
        let db = db.single_statement();
        assert_eq!(db.query_one("SELECT count(*) FROM t", params![]).unwrap().get::<i64>(0).unwrap(), 0);
        let second = db.query_opt("SELECT id FROM t", params![]).unwrap_err();
        assert!(second.to_string().contains("second statement"), "{second}");
        assert!(db.execute("INSERT INTO t (name) VALUES ('x')", params![]).is_err());
        assert_eq!(Db::sqlite(&conn).query_one("SELECT count(*) FROM t", params![]).unwrap().get::<i64>(0).unwrap(), 0);
    }

    #[test]
    fn atomic_rolls_back_everything_on_error_and_nests_as_a_savepoint() {
        let conn = memory();
        let db = Db::sqlite(&conn);
        let failed: Result<()> = atomic(&db, |tx| {
            tx.execute("INSERT INTO t (name) VALUES ('x')", params![])?;
            let inner: Result<()> = atomic(tx, |tx| {
                tx.execute("INSERT INTO t (name) VALUES ('y')", params![])?;
                Err(StoreError::Conflict("inner".into()))
            });
            assert!(inner.is_err());
            assert_eq!(tx.query_one("SELECT count(*) FROM t", params![])?.get::<i64>(0)?, 1);
            Err(StoreError::Conflict("outer".into()))
        });
        assert!(failed.is_err());
        assert!(!db.in_transaction());
        assert_eq!(db.query_one("SELECT count(*) FROM t", params![]).unwrap().get::<i64>(0).unwrap(), 0);
    }
}
