//! Personal access tokens: a user's credential for the job token scope API. Tokens arrive here
//! already hashed; only their SHA-256 is stored.

use serde::Serialize;

use super::db::{params, Db, Row};
use super::{OptionalExt, Result, StoreError};
use crate::domain::{UserId, UserState};

/// `last_used_at` is written at most this often per token, so authentication rarely writes.
pub const LAST_USED_GRANULARITY: i64 = 60;

/// A personal access token's metadata: never the token or its hash.
#[derive(Debug, Clone, Serialize)]
pub struct Pat {
    pub id: i64,
    pub user_id: UserId,
    pub name: String,
    #[serde(serialize_with = "crate::domain::time::ser")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::domain::time::ser_opt")]
    pub expires_at: Option<i64>,
    #[serde(serialize_with = "crate::domain::time::ser_opt")]
    pub last_used_at: Option<i64>,
    #[serde(serialize_with = "crate::domain::time::ser_opt")]
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, user_id, name, created_at, expires_at, last_used_at, revoked_at";

fn from_row(r: &Row) -> Result<Pat> {
    Ok(Pat {
        id: r.get(0)?,
        user_id: r.get(1)?,
        name: r.get(2)?,
        created_at: r.get(3)?,
        expires_at: r.get(4)?,
        last_used_at: r.get(5)?,
        revoked_at: r.get(6)?,
    })
}

pub fn insert(db: &Db, user: UserId, name: &str, hash: &[u8], expires_at: i64, now: i64) -> Result<Pat> {
    super::users::get(db, user)?;
    let id = db
        .query_one(
            "INSERT INTO personal_access_tokens (user_id, name, token_hash, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            params![user, name, hash, now, expires_at],
        )?
        .get(0)?;
    get(db, user, id)
}

/// The token `id` of `user`; another user's token is not found.
pub fn get(db: &Db, user: UserId, id: i64) -> Result<Pat> {
    db.query_opt(
        &format!("SELECT {COLUMNS} FROM personal_access_tokens WHERE id = ?1 AND user_id = ?2"),
        params![id, user],
    )
    .or_not_found(|| format!("personal access token {id} of user {user} not found"))
    .and_then(|r| from_row(&r))
}

/// One page of the tokens of `user` (revoked and expired ones included), ordered by id.
pub fn list(db: &Db, user: UserId, page: super::Page) -> Result<super::Listed<Pat>> {
    super::users::get(db, user)?;
    super::page::fetch(db, COLUMNS, "personal_access_tokens WHERE user_id = ?1", "id", params![user], page, from_row)
}

/// Revokes token `id` of `user` from `now` on. Revoking a revoked token keeps its first
/// `revoked_at`.
pub fn revoke(db: &Db, user: UserId, id: i64, now: i64) -> Result<()> {
    let n = db.execute(
        "UPDATE personal_access_tokens SET revoked_at = coalesce(revoked_at, ?3) WHERE id = ?1 AND user_id = ?2",
        params![id, user, now],
    )?;
    match n {
        0 => Err(StoreError::NotFound(format!("personal access token {id} of user {user} not found"))),
        _ => Ok(()),
    }
}

/// A token that may authenticate: not revoked, not expired.
#[derive(Debug, Clone)]
pub struct PatAuth {
    pub id: i64,
    pub user_id: UserId,
    pub user_state: UserState,
    pub last_used_at: Option<i64>,
}

impl PatAuth {
    /// True when `last_used_at` is older than [`LAST_USED_GRANULARITY`] at `now`.
    pub fn last_use_is_stale(&self, now: i64) -> bool {
        self.last_used_at.is_none_or(|at| now - at >= LAST_USED_GRANULARITY)
    }
}

/// The live token with this hash and its user's state, in one point lookup. A revoked token, an
/// expired one (`expires_at <= now`) and one without an expiry are `None`.
pub fn find_live(db: &Db, hash: &[u8], now: i64) -> Result<Option<PatAuth>> {
    db.query_opt(
        "SELECT p.id, p.user_id, u.state, p.last_used_at
         FROM personal_access_tokens p JOIN users u ON u.id = p.user_id
         WHERE p.token_hash = ?1 AND p.revoked_at IS NULL AND p.expires_at > ?2",
        params![hash, now],
    )?
    .map(|r| Ok(PatAuth { id: r.get(0)?, user_id: r.get(1)?, user_state: r.parse(2)?, last_used_at: r.get(3)? }))
    .transpose()
}

/// Records a use of token `id` at `now`, unless one was recorded less than
/// [`LAST_USED_GRANULARITY`] seconds earlier (so concurrent requests write once).
pub fn touch(db: &Db, id: i64, now: i64) -> Result<()> {
    db.execute(
        "UPDATE personal_access_tokens SET last_used_at = ?2
         WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?3)",
        // The bound is computed here: PostgreSQL cannot type `?2 - ?3` of two parameters.
        params![id, now, now - LAST_USED_GRANULARITY],
    )?;
    Ok(())
}
