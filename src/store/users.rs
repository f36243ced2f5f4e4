//! Users.

use super::db::{params, Db, Row};
use serde::Serialize;

use super::{atomic, OptionalExt, Result, StoreError};
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

pub(crate) fn from_row(r: &Row) -> Result<User> {
    Ok(User { id: r.get(0)?, username: r.get(1)?, state: r.parse(2)?, created_at: r.get(3)? })
}

/// Creates an active user. Usernames are unique regardless of case (issue 7 point 9), so `sub`
/// and `user_login` name one person; the index of `0005_unique_names.sql` holds the same rule.
pub fn insert(db: &Db, username: &str, now: i64) -> Result<User> {
    let id = atomic(db, |tx| {
        let taken = tx.query_opt("SELECT username FROM users WHERE lower(username) = lower(?1)", params![username])?;
        if let Some(taken) = taken.map(|r| r.get::<String>(0)).transpose()? {
            return Err(StoreError::Conflict(format!(
                "username {username} is taken: user {taken} already exists (usernames are unique regardless of case)"
            )));
        }
        tx.query_one(
            "INSERT INTO users (username, state, created_at) VALUES (?1, 'active', ?2) RETURNING id",
            params![username, now],
        )
        .map_err(|e| match e {
            StoreError::Unique(_) => StoreError::Conflict(format!("username {username} is already taken")),
            other => other,
        })?
        .get(0)
    })?;
    get(db, id)
}

pub fn get(db: &Db, id: UserId) -> Result<User> {
    db.query_opt(&format!("SELECT {COLUMNS} FROM users WHERE id = ?1"), params![id])
        .or_not_found(|| format!("user {id} not found"))
        .and_then(|r| from_row(&r))
}

pub fn set_state(db: &Db, id: UserId, state: UserState) -> Result<User> {
    let n = db.execute("UPDATE users SET state = ?2 WHERE id = ?1", params![id, state.as_str()])?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("user {id} not found")));
    }
    get(db, id)
}

/// Every user, by id.
pub fn list(db: &Db, page: super::Page) -> Result<super::Listed<User>> {
    super::page::fetch(db, COLUMNS, "users", "id", params![], page, from_row)
}

/// The user with this username (compared regardless of case, as usernames are unique so).
pub fn find_by_username(db: &Db, username: &str) -> Result<Option<User>> {
    db.query_opt(&format!("SELECT {COLUMNS} FROM users WHERE lower(username) = lower(?1)"), params![username])?
        .map(|r| from_row(&r))
        .transpose()
}
