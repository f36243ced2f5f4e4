//! The web console's sign-in sessions. Session ids arrive here already hashed; only their
//! SHA-256 is stored.

use super::db::{params, Db};
use super::Result;
use crate::domain::{UserId, UserState};

/// Who a session is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// A user, by the personal access token they signed in with.
    User { user_id: UserId, pat_id: i64 },
    /// The admin; the fingerprint of the admin token at sign-in.
    Admin { fingerprint: Vec<u8> },
}

/// A stored session with what decides whether it is still alive: its times, and for a user the
/// state of their token and account.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub holder: Holder,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// For a user: the token is neither revoked nor expired at the `now` of the read.
    pub pat_live: bool,
    pub user_state: Option<UserState>,
}

pub fn insert(db: &Db, id_hash: &[u8], holder: &Holder, now: i64) -> Result<()> {
    let (user, pat, fingerprint): (Option<i64>, Option<i64>, Option<Vec<u8>>) = match holder {
        Holder::User { user_id, pat_id } => (Some(*user_id), Some(*pat_id), None),
        Holder::Admin { fingerprint } => (None, None, Some(fingerprint.clone())),
    };
    db.execute(
        "INSERT INTO console_sessions (id_hash, user_id, pat_id, admin_fingerprint, created_at, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![id_hash, user, pat, fingerprint, now],
    )?;
    Ok(())
}

/// The session with this id hash, with its token's liveness at `now` and its user's state.
pub fn find(db: &Db, id_hash: &[u8], now: i64) -> Result<Option<SessionRow>> {
    let row = db.query_opt(
        "SELECT s.user_id, s.pat_id, s.admin_fingerprint, s.created_at, s.last_seen_at,
                CASE WHEN p.id IS NOT NULL AND p.revoked_at IS NULL AND p.expires_at > ?2 THEN 1 ELSE 0 END,
                u.state
         FROM console_sessions s
         LEFT JOIN personal_access_tokens p ON p.id = s.pat_id
         LEFT JOIN users u ON u.id = s.user_id
         WHERE s.id_hash = ?1",
        params![id_hash, now],
    )?;
    let Some(r) = row else { return Ok(None) };
    let user: Option<i64> = r.get(0)?;
    let pat: Option<i64> = r.get(1)?;
    let fingerprint: Option<Vec<u8>> = r.get(2)?;
    let holder = match (user, pat) {
        (Some(user_id), Some(pat_id)) => Holder::User { user_id, pat_id },
        _ => Holder::Admin { fingerprint: fingerprint.unwrap_or_default() },
    };
    let state: Option<String> = r.get(6)?;
    Ok(Some(SessionRow {
        holder,
        created_at: r.get(3)?,
        last_seen_at: r.get(4)?,
        pat_live: r.get::<i64>(5)? == 1,
        user_state: state.and_then(|s| s.parse::<UserState>().ok()),
    }))
}

/// Records activity at `now`.
pub fn touch(db: &Db, id_hash: &[u8], now: i64) -> Result<()> {
    db.execute("UPDATE console_sessions SET last_seen_at = ?2 WHERE id_hash = ?1", params![id_hash, now])?;
    Ok(())
}

pub fn delete(db: &Db, id_hash: &[u8]) -> Result<()> {
    db.execute("DELETE FROM console_sessions WHERE id_hash = ?1", params![id_hash])?;
    Ok(())
}

/// Drops every session that can no longer be used at `now` (idle or too old).
pub fn delete_expired(db: &Db, idle_before: i64, created_before: i64) -> Result<u64> {
    db.execute(
        "DELETE FROM console_sessions WHERE last_seen_at < ?1 OR created_at < ?2",
        params![idle_before, created_before],
    )
}
