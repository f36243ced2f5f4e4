//! Signing key metadata. The private keys themselves live in the keys directory.

use rusqlite::{params, Connection, OptionalExtension};

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

/// The signing algorithm in force for the instance, once recorded.
pub fn algorithm(conn: &Connection) -> Result<Option<Alg>> {
    Ok(conn
        .prepare_cached("SELECT alg FROM signing_algorithm WHERE id = 1")?
        .query_row([], |r| parse_col(r, 0))
        .optional()?)
}

/// Records `alg` as the signing algorithm in force.
pub fn set_algorithm(conn: &Connection, alg: Alg, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO signing_algorithm (id, alg, changed_at) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET alg = excluded.alg, changed_at = excluded.changed_at",
        params![alg.as_str(), now],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(conn: &Connection, kid: &str) -> rusqlite::Result<usize> {
        conn.execute(
            "INSERT INTO issued_tokens (jti, job_id, kid, client_id, token_hash, issued_at, expires_at)
             VALUES (randomblob(16), 1, ?1, 'runner', x'00', 1, 2)",
            [kid],
        )
    }

    #[test]
    fn a_token_whose_signing_key_was_dropped_cannot_be_recorded() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate(&mut conn).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        insert(&conn, "kept", Alg::ES256, KeyState::Active, 1).unwrap();
        insert(&conn, "dropped", Alg::ES256, KeyState::Next, 1).unwrap();
        delete(&conn, "dropped").unwrap();

        assert_eq!(record(&conn, "kept").unwrap(), 1);
        let refused = record(&conn, "dropped").unwrap_err();
        assert!(refused.to_string().contains("has been dropped"), "{refused}");
        assert!(record(&conn, "never-existed").is_err());
    }

    #[test]
    fn the_algorithm_in_force_is_recorded_once_and_changed_in_place() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate(&mut conn).unwrap();
        assert_eq!(algorithm(&conn).unwrap(), None, "a new database has none");
        set_algorithm(&conn, Alg::ES256, 1).unwrap();
        set_algorithm(&conn, Alg::EdDSA, 2).unwrap();
        assert_eq!(algorithm(&conn).unwrap(), Some(Alg::EdDSA));
    }
}
