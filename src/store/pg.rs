//! The PostgreSQL side of [`Db`](super::Db): connections with their own prepared-statement
//! cache, `?N` → `$N` placeholder translation, value conversion and error mapping.
//!
//! The client is the synchronous `postgres` crate: it drives its own small runtime and must never
//! be called on an async worker thread, so [`Store`](super::Store) runs every PostgreSQL closure on
//! the blocking pool (or on plain threads: the CLI and the token writer).

use std::collections::HashMap;
use std::error::Error;
use std::time::Duration;

use bytes::BytesMut;
use postgres::types::{FromSql, IsNull, ToSql, Type};
use postgres::{Client, Statement};

use super::db::{ToValue, Value, ValueRef};
use super::pgconnect::Target;
use super::{Result, StoreError};

/// How long opening a connection (and waiting for a pooled one) may take before the database
/// counts as unavailable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The advisory-lock class that serialises writers (as SQLite's `BEGIN IMMEDIATE` does); 5001
/// belongs to the schema's name triggers.
pub const WRITER_LOCK: i64 = 5002;

/// True when `location` names a PostgreSQL database (`postgres://…` or `postgresql://…`).
pub fn is_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// `url` with any password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = rest.split_once('/').map_or((rest, None), |(a, t)| (a, Some(t)));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = tail.map(|t| format!("/{t}")).unwrap_or_default();
    let tail = match tail.find("password=") {
        Some(at) => format!("{}password=***", &tail[..at]),
        None => tail,
    };
    format!("{scheme}://{authority}{tail}")
}

/// One PostgreSQL connection with its statement cache and transaction bookkeeping.
pub struct PgConn {
    client: Client,
    /// Prepared statements by their SQLite-style text: translated and prepared once.
    statements: HashMap<String, Statement>,
    /// Open transaction levels: 1 in a transaction, more inside savepoints.
    pub(crate) depth: u32,
    /// A statement failed inside the open transaction (PostgreSQL then refuses everything until
    /// a rollback, and a later COMMIT would quietly roll back).
    pub(crate) failed: bool,
}

impl PgConn {
    /// Opens a connection; any failure to connect (refused, timed out, the database not
    /// accepting connections) means the database is unavailable.
    pub fn connect(target: &Target) -> Result<PgConn> {
        let client = target.connect().map_err(|e| StoreError::Unavailable(with_causes(&e)))?;
        Ok(PgConn { client, statements: HashMap::new(), depth: 0, failed: false })
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(stmt) = self.statements.get(sql) {
            return Ok(stmt.clone());
        }
        let stmt = self.client.prepare(&translate(sql)).map_err(|e| self.note(e))?;
        self.statements.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }

    pub fn execute(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<u64> {
        let stmt = self.statement(sql)?;
        let binds: Vec<Bind> = params.iter().map(|p| Bind(p.value_ref())).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = binds.iter().map(|b| b as &(dyn ToSql + Sync)).collect();
        self.client.execute(&stmt, &refs).map_err(|e| self.note(e))
    }

    pub fn rows(&mut self, sql: &str, params: &[&dyn ToValue], max: usize) -> Result<Vec<Vec<Value>>> {
        let stmt = self.statement(sql)?;
        let binds: Vec<Bind> = params.iter().map(|p| Bind(p.value_ref())).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = binds.iter().map(|b| b as &(dyn ToSql + Sync)).collect();
        let rows = self.client.query(&stmt, &refs).map_err(|e| self.note(e))?;
        let mut out = Vec::with_capacity(rows.len().min(max));
        for row in rows.into_iter().take(max) {
            let mut values = Vec::with_capacity(row.len());
            for idx in 0..row.len() {
                let value: PgValue =
                    row.try_get(idx).map_err(|e| StoreError::Database(format!("column {idx}: {e}")))?;
                values.push(value.0);
            }
            out.push(values);
        }
        Ok(out)
    }

    pub fn batch(&mut self, sql: &str) -> Result<()> {
        self.client.batch_execute(sql).map_err(|e| self.note(e))
    }

    /// Maps `e`, remembering that the open transaction (if any) has failed.
    fn note(&mut self, e: postgres::Error) -> StoreError {
        if self.depth > 0 {
            self.failed = true;
        }
        map_error(e)
    }
}

/// `e` with its causes (the client's own text for a refused connection is only "db error" or
/// "error performing TLS handshake").
fn with_causes(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Opens pooled PostgreSQL connections.
#[derive(Debug, Clone)]
pub struct Manager {
    pub target: Target,
}

impl Manager {
    /// Parses a libpq-style URL: TLS as `sslmode` says, the time bounds of
    /// [`pgconnect`](super::pgconnect).
    pub fn new(url: &str) -> Result<Manager> {
        Ok(Manager { target: Target::parse(url)? })
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = StoreError;

    fn connect(&self) -> Result<PgConn> {
        PgConn::connect(&self.target)
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<()> {
        conn.batch("")
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.is_closed()
    }
}

/// `?N` placeholders as PostgreSQL's `$N`; quoted text, identifiers and comments are left alone.
pub fn translate(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '-' && chars.peek() == Some(&'-') => {
                out.push(c);
                for rest in chars.by_ref() {
                    out.push(rest);
                    if rest == '\n' {
                        break;
                    }
                }
            }
            None if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
            None => out.push(c),
        }
    }
    out
}

/// A parameter as PostgreSQL binds it: integers fit whichever integer or boolean type the
/// statement expects; NULL binds as any type.
#[derive(Debug)]
struct Bind<'a>(ValueRef<'a>);

impl ToSql for Bind<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self.0 {
            ValueRef::Null => Ok(IsNull::Yes),
            ValueRef::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                _ => Err(format!("cannot bind an integer as {ty}").into()),
            },
            ValueRef::Text(t) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => t.to_sql(ty, out),
                _ => Err(format!("cannot bind text as {ty}").into()),
            },
            ValueRef::Blob(b) => match *ty {
                Type::BYTEA => b.to_sql(ty, out),
                _ => Err(format!("cannot bind a blob as {ty}").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// A column as a neutral [`Value`]: integers and booleans (0/1) as `Int`, text, bytea; NULL of
/// any type.
struct PgValue(Value);

impl<'a> FromSql<'a> for PgValue {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(PgValue(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Value::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::BOOL => Value::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => Value::Text(String::from_sql(ty, raw)?),
            Type::BYTEA => Value::Blob(<Vec<u8>>::from_sql(ty, raw)?),
            _ => return Err(format!("cannot read {ty}").into()),
        }))
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(PgValue(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// PostgreSQL errors in backend-neutral terms: 23505 is `Unique`; a refusal raised by a trigger
/// (PL/pgSQL) is `Refused`; a lost or refused connection is `Unavailable`, and so is a statement
/// cut by `statement_timeout` (57014) or `lock_timeout` (55P03): the database is too busy or
/// blocked to answer within the bound, which the client should retry, not a fault of its request.
pub fn map_error(e: postgres::Error) -> StoreError {
    use postgres::error::SqlState;
    let text = e.to_string();
    match e.as_db_error() {
        Some(db) if *db.code() == SqlState::UNIQUE_VIOLATION => StoreError::Unique(db.message().to_owned()),
        Some(db) if db.where_().is_some_and(|w| w.contains("PL/pgSQL")) => StoreError::Refused(db.message().to_owned()),
        Some(db) if *db.code() == SqlState::QUERY_CANCELED || *db.code() == SqlState::LOCK_NOT_AVAILABLE => {
            log::warn!("database statement cut short ({}): {}", db.code().code(), db.message());
            StoreError::Unavailable(db.message().to_owned())
        }
        Some(db) if db.code().code().starts_with("08") || db.code().code().starts_with("57P") => {
            StoreError::Unavailable(db.message().to_owned())
        }
        Some(db) if *db.code() == SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT => {
            log::warn!("database session ended: {}", db.message());
            StoreError::Unavailable(db.message().to_owned())
        }
        Some(db) => StoreError::Database(format!("{}: {}", db.code().code(), db.message())),
        None if e.is_closed() || e.source().is_some_and(|s| s.is::<std::io::Error>()) => StoreError::Unavailable(text),
        None if text.contains("timed out") || text.contains("connect") => StoreError::Unavailable(text),
        None => StoreError::Database(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars_outside_quotes_and_comments() {
        assert_eq!(
            translate("SELECT '?1', \"a?2\", x FROM t WHERE a = ?1 AND b = ?12 -- ?3\n AND c = ?3"),
            "SELECT '?1', \"a?2\", x FROM t WHERE a = $1 AND b = $12 -- ?3\n AND c = $3"
        );
    }

    #[test]
    fn a_password_in_a_database_url_is_redacted() {
        assert_eq!(
            redact("postgres://jt:s3cret@db:5432/jt?sslmode=disable"),
            "postgres://jt:***@db:5432/jt?sslmode=disable"
        );
        assert_eq!(redact("postgres://db/jt?user=a&password=s3cret"), "postgres://db/jt?user=a&password=***");
        assert_eq!(redact("postgresql://jt@db/jt"), "postgresql://jt@db/jt");
    }
}
