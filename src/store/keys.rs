//! Signing key metadata, and the private keys sealed under the key-encryption key when keys are
//! stored in the database (`sealed_private_key`; NULL for a key kept in the keys directory).

use super::db::{params, Db};
use super::{tokens, Result};
use crate::keys::{Alg, KeyFamily, KeyMeta, KeyState};

/// Every job-token key, oldest first, with the latest expiry of the tokens it signed.
pub fn list(db: &Db) -> Result<Vec<KeyMeta>> {
    list_family(db, KeyFamily::Job)
}

/// Every key of `family`, oldest first, with the latest expiry of the tokens it signed (ID
/// tokens are not recorded: none for an ID-token key).
pub fn list_family(db: &Db, family: KeyFamily) -> Result<Vec<KeyMeta>> {
    let rows = db.query(
        "SELECT kid, alg, state, created_at, activated_at, retired_at FROM signing_keys WHERE family = ?1
         ORDER BY created_at, kid",
        params![family.as_str()],
    )?;
    rows.iter()
        .map(|r| {
            let kid: String = r.get(0)?;
            Ok(KeyMeta {
                last_token_expires_at: tokens::last_expiry(db, &kid)?,
                kid,
                alg: r.parse(1)?,
                state: r.parse(2)?,
                created_at: r.get(3)?,
                activated_at: r.get(4)?,
                retired_at: r.get(5)?,
            })
        })
        .collect()
}

/// Inserts a key's metadata and, for database key storage, its sealed private key: one row, so
/// there is never metadata without its key.
pub fn insert(db: &Db, kid: &str, alg: Alg, state: KeyState, now: i64, sealed: Option<&[u8]>) -> Result<()> {
    insert_in(db, KeyFamily::Job, kid, alg, state, now, sealed)
}

/// [`insert`], for a key of `family`.
pub fn insert_in(
    db: &Db,
    family: KeyFamily,
    kid: &str,
    alg: Alg,
    state: KeyState,
    now: i64,
    sealed: Option<&[u8]>,
) -> Result<()> {
    let activated = (state == KeyState::Active).then_some(now);
    db.execute(
        "INSERT INTO signing_keys (kid, alg, state, created_at, activated_at, sealed_private_key, family)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![kid, alg.as_str(), state.as_str(), now, activated, sealed, family.as_str()],
    )?;
    Ok(())
}

/// Every key's kid with its sealed private key (`None`: the key lives in the keys directory).
pub fn sealed_private_keys(db: &Db) -> Result<Vec<(String, Option<Vec<u8>>)>> {
    let rows = db.query("SELECT kid, sealed_private_key FROM signing_keys ORDER BY created_at, kid", params![])?;
    rows.iter().map(|r| Ok((r.get(0)?, r.get(1)?))).collect()
}

/// Replaces the sealed private key of `kid` (`jobtoken keys rewrap`).
pub fn set_sealed_private_key(db: &Db, kid: &str, sealed: &[u8]) -> Result<()> {
    db.execute("UPDATE signing_keys SET sealed_private_key = ?2 WHERE kid = ?1", params![kid, sealed])?;
    Ok(())
}

pub fn promote(db: &Db, kid: &str, now: i64) -> Result<()> {
    db.execute(
        "UPDATE signing_keys SET state = 'active', activated_at = ?2 WHERE kid = ?1 AND state = 'next'",
        params![kid, now],
    )?;
    Ok(())
}

pub fn retire(db: &Db, kid: &str, now: i64) -> Result<()> {
    db.execute(
        "UPDATE signing_keys SET state = 'retired', retired_at = ?2 WHERE kid = ?1 AND state = 'active'",
        params![kid, now],
    )?;
    Ok(())
}

pub fn delete(db: &Db, kid: &str) -> Result<()> {
    db.execute("DELETE FROM signing_keys WHERE kid = ?1", params![kid])?;
    Ok(())
}

/// The table that records `family`'s algorithm in force (`0006_signing_alg.sql`,
/// `0012_id_token_alg.sql`).
fn algorithm_table(family: KeyFamily) -> &'static str {
    match family {
        KeyFamily::Job => "signing_algorithm",
        KeyFamily::IdToken => "id_token_signing_algorithm",
    }
}

/// The signing algorithm in force for `family`, once recorded.
pub fn algorithm(db: &Db, family: KeyFamily) -> Result<Option<Alg>> {
    let table = algorithm_table(family);
    db.query_opt(&format!("SELECT alg FROM {table} WHERE id = 1"), params![])?.map(|r| r.parse(0)).transpose()
}

/// Records `alg` as `family`'s signing algorithm in force.
pub fn set_algorithm(db: &Db, family: KeyFamily, alg: Alg, now: i64) -> Result<()> {
    let table = algorithm_table(family);
    db.execute(
        &format!(
            "INSERT INTO {table} (id, alg, changed_at) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET alg = excluded.alg, changed_at = excluded.changed_at"
        ),
        params![alg.as_str(), now],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn record(db: &Db, kid: &str) -> Result<u64> {
        db.execute(
            "INSERT INTO issued_tokens (jti, job_id, kid, client_id, token_hash, issued_at, expires_at)
             VALUES (randomblob(16), 1, ?1, 'runner', x'00', 1, 2)",
            params![kid],
        )
    }

    #[test]
    fn a_token_whose_signing_key_was_dropped_cannot_be_recorded() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate(&mut conn).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        let conn = Db::sqlite(&conn);
        insert(&conn, "kept", Alg::ES256, KeyState::Active, 1, None).unwrap();
        insert(&conn, "dropped", Alg::ES256, KeyState::Next, 1, Some(b"sealed")).unwrap();
        delete(&conn, "dropped").unwrap();

        assert_eq!(sealed_private_keys(&conn).unwrap(), vec![("kept".to_owned(), None)], "dropped with its row");
        assert_eq!(record(&conn, "kept").unwrap(), 1);
        let refused = record(&conn, "dropped").unwrap_err();
        assert!(refused.to_string().contains("has been dropped"), "{refused}");
        assert!(record(&conn, "never-existed").is_err());
    }

    #[test]
    fn the_algorithm_in_force_is_recorded_once_and_changed_in_place() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate(&mut conn).unwrap();
        let conn = Db::sqlite(&conn);
        assert_eq!(algorithm(&conn, KeyFamily::Job).unwrap(), None, "a new database has none");
        assert_eq!(algorithm(&conn, KeyFamily::IdToken).unwrap(), None);
        set_algorithm(&conn, KeyFamily::Job, Alg::ES256, 1).unwrap();
        set_algorithm(&conn, KeyFamily::Job, Alg::EdDSA, 2).unwrap();
        set_algorithm(&conn, KeyFamily::IdToken, Alg::RS256, 2).unwrap();
        assert_eq!(algorithm(&conn, KeyFamily::Job).unwrap(), Some(Alg::EdDSA));
        assert_eq!(algorithm(&conn, KeyFamily::IdToken).unwrap(), Some(Alg::RS256), "each family its own");
        assert!(set_algorithm(&conn, KeyFamily::IdToken, Alg::EdDSA, 3).is_err(), "ID tokens: RS256 or ES256");
    }
}
