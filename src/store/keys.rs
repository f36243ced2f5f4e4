//! Signing key metadata. The private keys themselves live in the keys directory.

use rusqlite::{params, Connection};

use super::users::parse_col;
use super::{tokens, Result};
use crate::keys::{Alg, KeyMeta, KeyState};

/// Every key, oldest first, with the latest expiry of the tokens it signed.
pub fn list(conn: &Connection) -> Result<Vec<KeyMeta>> {
    let mut stmt = conn.prepare_cached(
        "SELECT kid, alg, state, created_at, activated_at, retired_at FROM signing_keys ORDER BY created_at, kid",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(KeyMeta {
                kid: r.get(0)?,
                alg: parse_col(r, 1)?,
                state: parse_col(r, 2)?,
                created_at: r.get(3)?,
                activated_at: r.get(4)?,
                retired_at: r.get(5)?,
                last_token_expires_at: None,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|mut k| {
            k.last_token_expires_at = tokens::last_expiry(conn, &k.kid)?;
            Ok(k)
        })
        .collect()
}

pub fn insert(conn: &Connection, kid: &str, alg: Alg, state: KeyState, now: i64) -> Result<()> {
    let activated = (state == KeyState::Active).then_some(now);
    conn.execute(
        "INSERT INTO signing_keys (kid, alg, state, created_at, activated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![kid, alg.as_str(), state.as_str(), now, activated],
    )?;
    Ok(())
}

pub fn promote(conn: &Connection, kid: &str, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE signing_keys SET state = 'active', activated_at = ?2 WHERE kid = ?1 AND state = 'next'",
        params![kid, now],
    )?;
    Ok(())
}

pub fn retire(conn: &Connection, kid: &str, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE signing_keys SET state = 'retired', retired_at = ?2 WHERE kid = ?1 AND state = 'active'",
        params![kid, now],
    )?;
    Ok(())
}

pub fn delete(conn: &Connection, kid: &str) -> Result<()> {
    conn.execute("DELETE FROM signing_keys WHERE kid = ?1", [kid])?;
    Ok(())
}
