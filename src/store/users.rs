//! Users.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{atomic, is_unique_violation, OptionalExt, Result, StoreError};
use crate::domain::{UserId, UserState};

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub state: UserState,
    #[serde(serialize_with = "crate::domain::time::ser")]
    pub created_at: i64,
}

const COLUMNS: &str = "id, username, state, created_at";

fn from_row(r: &Row) -> rusqlite::Result<User> {
    Ok(User { id: r.get(0)?, username: r.get(1)?, state: parse_col(r, 2)?, created_at: r.get(3)? })
}

/// Reads a text column into a `FromStr` domain value.
pub(crate) fn parse_col<T: std::str::FromStr>(r: &Row, idx: usize) -> rusqlite::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = r.get(idx)?;
    text.parse().map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e)))
}

/// Creates an active user. Usernames are unique regardless of case (issue 7 point 9), so `sub`
/// and `user_login` name one person; the index of `0005_unique_names.sql` holds the same rule.
pub fn insert(conn: &Connection, username: &str, now: i64) -> Result<User> {
    let id = atomic(conn, |tx| {
        let taken: Option<String> = tx
            .prepare_cached("SELECT username FROM users WHERE lower(username) = lower(?1)")?
            .query_row([username], |r| r.get(0))
            .optional()?;
        if let Some(taken) = taken {
            return Err(StoreError::Conflict(format!(
                "username {username} is taken: user {taken} already exists (usernames are unique regardless of case)"
            )));
        }
        tx.execute("INSERT INTO users (username, state, created_at) VALUES (?1, 'active', ?2)", params![username, now])
            .map_err(|e| match is_unique_violation(&e) {
                true => StoreError::Conflict(format!("username {username} is already taken")),
                false => e.into(),
            })?;
        Ok(tx.last_insert_rowid())
    })?;
    get(conn, id)
}

pub fn get(conn: &Connection, id: UserId) -> Result<User> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE id = ?1"))?
        .query_row([id], from_row)
        .or_not_found(|| format!("user {id} not found"))
}

pub fn set_state(conn: &Connection, id: UserId, state: UserState) -> Result<User> {
    let n = conn.execute("UPDATE users SET state = ?2 WHERE id = ?1", params![id, state.as_str()])?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("user {id} not found")));
    }
    get(conn, id)
}
