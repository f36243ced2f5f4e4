//! Numbered SQL migrations, applied in order, each in its own transaction: `migrations/` on
//! SQLite, `migrations/postgres/` on PostgreSQL (each backend has its own list, both append-only).

use ring::digest::{digest, SHA256};
use rusqlite::Connection;

use super::db::{atomic, params, Db, Dialect};
use super::{Result, StoreError};

/// Every migration, in order. A test checks this list against the `migrations/` directory.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init.sql", include_str!("../../migrations/0001_init.sql")),
    ("0002_job_token_scope.sql", include_str!("../../migrations/0002_job_token_scope.sql")),
    ("0003_token_lineage.sql", include_str!("../../migrations/0003_token_lineage.sql")),
    ("0004_credentials.sql", include_str!("../../migrations/0004_credentials.sql")),
    ("0005_unique_names.sql", include_str!("../../migrations/0005_unique_names.sql")),
    ("0006_signing_alg.sql", include_str!("../../migrations/0006_signing_alg.sql")),
    ("0007_sealed_keys.sql", include_str!("../../migrations/0007_sealed_keys.sql")),
    ("0008_audit_events.sql", include_str!("../../migrations/0008_audit_events.sql")),
    ("0009_list_indexes.sql", include_str!("../../migrations/0009_list_indexes.sql")),
    ("0010_console_sessions.sql", include_str!("../../migrations/0010_console_sessions.sql")),
    ("0011_id_tokens.sql", include_str!("../../migrations/0011_id_tokens.sql")),
    ("0012_id_token_alg.sql", include_str!("../../migrations/0012_id_token_alg.sql")),
    ("0013_cache_version.sql", include_str!("../../migrations/0013_cache_version.sql")),
];

/// Every PostgreSQL migration, in order. A test checks this list against `migrations/postgres/`.
pub const MIGRATIONS_POSTGRES: &[(&str, &str)] = &[
    ("0001_schema.sql", include_str!("../../migrations/postgres/0001_schema.sql")),
    ("0002_audit_events.sql", include_str!("../../migrations/postgres/0002_audit_events.sql")),
    ("0003_list_indexes.sql", include_str!("../../migrations/postgres/0003_list_indexes.sql")),
    ("0004_console_sessions.sql", include_str!("../../migrations/postgres/0004_console_sessions.sql")),
    ("0005_id_tokens.sql", include_str!("../../migrations/postgres/0005_id_tokens.sql")),
    ("0006_id_token_alg.sql", include_str!("../../migrations/postgres/0006_id_token_alg.sql")),
    ("0007_cache_version.sql", include_str!("../../migrations/postgres/0007_cache_version.sql")),
];

/// Applies pending migrations to a SQLite connection.
pub fn migrate(conn: &mut Connection) -> Result<usize> {
    migrate_db(&Db::sqlite(conn)).map(|applied| applied.len())
}

/// The migrations of `db`'s backend, in order.
fn migrations_of(db: &Db) -> &'static [(&'static str, &'static str)] {
    match db.dialect() {
        Dialect::Sqlite => MIGRATIONS,
        Dialect::Postgres => MIGRATIONS_POSTGRES,
    }
}

/// The migrations not yet applied to `db`, by name, without applying anything (a database with
/// no `schema_migrations` table has them all pending). A landed migration whose text changed is
/// an error, as in [`migrate_db`].
pub(crate) fn pending(db: &Db) -> Result<Vec<&'static str>> {
    if !has_migrations_table(db)? {
        return Ok(migrations_of(db).iter().map(|(name, _)| *name).collect());
    }
    let mut pending = Vec::new();
    for (index, (name, sql)) in migrations_of(db).iter().enumerate() {
        let landed =
            db.query_opt("SELECT checksum FROM schema_migrations WHERE version = ?1", params![index as i64 + 1])?;
        match landed.map(|r| r.get::<Vec<u8>>(0)).transpose()? {
            Some(existing) if existing == digest(&SHA256, sql.as_bytes()).as_ref() => {}
            Some(_) => return Err(edited(name)),
            None => pending.push(*name),
        }
    }
    Ok(pending)
}

/// Whether `schema_migrations` exists yet (a new database has none).
fn has_migrations_table(db: &Db) -> Result<bool> {
    let sql = match db.dialect() {
        Dialect::Sqlite => "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
        Dialect::Postgres => {
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'"
        }
    };
    Ok(db.query_one(sql, params![])?.get::<i64>(0)? > 0)
}

fn edited(name: &str) -> StoreError {
    StoreError::Migration {
        name: name.into(),
        reason: "was edited after it was applied; migrations are append-only".into(),
    }
}

/// Applies pending migrations of `db`'s backend; returns the names of those it applied. A landed
/// migration whose text changed stops start-up: migrations are append-only.
pub(crate) fn migrate_db(db: &Db) -> Result<Vec<&'static str>> {
    let migrations = migrations_of(db);
    let blob = match db.dialect() {
        Dialect::Sqlite => "BLOB",
        Dialect::Postgres => "BYTEA",
    };
    // Under the writer lock: replicas starting at once on a new PostgreSQL database would
    // otherwise race in `CREATE TABLE IF NOT EXISTS` (which is not safe against itself there:
    // the loser fails on `pg_type_typname_nsp_index`) and all but one refuse to start.
    atomic(db, |tx| {
        // Checked first: PostgreSQL answers `IF NOT EXISTS` on an existing table with a NOTICE
        // that the client would log at every start.
        if has_migrations_table(tx)? {
            return Ok(());
        }
        tx.batch(&format!(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    INTEGER PRIMARY KEY,
                 name       TEXT NOT NULL,
                 checksum   {blob} NOT NULL,
                 applied_at BIGINT NOT NULL
             )"
        ))
    })?;
    let mut applied = Vec::new();
    for (index, (name, sql)) in migrations.iter().enumerate() {
        let version = index as i64 + 1;
        let checksum = digest(&SHA256, sql.as_bytes()).as_ref().to_vec();
        // One transaction per migration: its check, its SQL and its record commit together.
        let ran = atomic(db, |tx| {
            let landed = tx.query_opt("SELECT checksum FROM schema_migrations WHERE version = ?1", params![version])?;
            match landed.map(|r| r.get::<Vec<u8>>(0)).transpose()? {
                Some(existing) if existing == checksum => Ok(false),
                Some(_) => Err(edited(name)),
                None => {
                    if tx.dialect() == Dialect::Sqlite {
                        precheck(name, tx)?;
                    }
                    tx.batch(sql).map_err(|e| StoreError::Migration { name: (*name).into(), reason: e.to_string() })?;
                    tx.execute(
                        "INSERT INTO schema_migrations (version, name, checksum, applied_at)
                         VALUES (?1, ?2, ?3, ?4)",
                        params![version, name, checksum, crate::service::now()],
                    )?;
                    Ok(true)
                }
            }
        })?;
        if ran {
            log::info!("applied migration {name}");
            applied.push(*name);
        }
    }
    Ok(applied)
}

/// Data checks that must pass before a migration's SQL runs, by migration name. A failing check
/// stops start-up with a list of what to fix, instead of a bare constraint error (or worse, a
/// migration that silently picks a winner).
fn precheck(name: &str, db: &Db) -> Result<()> {
    let problems = match name {
        "0005_unique_names.sql" => name_conflicts(db)?,
        _ => return Ok(()),
    };
    if problems.is_empty() {
        return Ok(());
    }
    const SHOWN: usize = 20;
    let mut reason = format!(
        "the database has {} name conflict(s); usernames, group paths and project paths must be unique \
         regardless of case, and no project may have a group's path. Rename one of each and start again: {}",
        problems.len(),
        problems.iter().take(SHOWN).cloned().collect::<Vec<_>>().join("; ")
    );
    if problems.len() > SHOWN {
        reason.push_str(&format!("; and {} more", problems.len() - SHOWN));
    }
    Err(StoreError::Migration { name: name.into(), reason })
}

/// Every set of names that differ only in case, and every project whose path is a group's, as
/// sentences: `users "Alice" and "alice" differ only in case`.
fn name_conflicts(db: &Db) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for (what, table, column) in [
        ("users", "users", "username"),
        ("groups", "groups", "full_path"),
        ("projects", "projects", "path_with_namespace"),
    ] {
        let rows = db.query(
            &format!(
                "SELECT lower({column}), {column} FROM {table}
                 WHERE lower({column}) IN (SELECT lower({column}) FROM {table} GROUP BY 1 HAVING count(*) > 1)
                 ORDER BY 1, 2"
            ),
            params![],
        )?;
        let mut sets: Vec<(String, Vec<String>)> = Vec::new();
        for row in rows {
            let (folded, name) = (row.get::<String>(0)?, row.get::<String>(1)?);
            match sets.last_mut() {
                Some((last, names)) if *last == folded => names.push(format!("{name:?}")),
                _ => sets.push((folded, vec![format!("{name:?}")])),
            }
        }
        problems
            .extend(sets.into_iter().map(|(_, names)| format!("{what} {} differ only in case", names.join(" and "))));
    }
    let rows = db.query(
        "SELECT p.path_with_namespace, g.full_path FROM projects p
         JOIN groups g ON lower(g.full_path) = lower(p.path_with_namespace) ORDER BY 1, 2",
        params![],
    )?;
    for row in rows {
        let (project, group) = (row.get::<String>(0)?, row.get::<String>(1)?);
        problems.push(format!("project {project:?} has the path of group {group:?}"));
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `.sql` files in `dir`, sorted.
    fn sql_files(dir: &str) -> Vec<String> {
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn every_file_in_migrations_dir_is_listed_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let listed: Vec<&str> = MIGRATIONS.iter().map(|(n, _)| *n).collect();
        assert_eq!(sql_files(dir), listed);
        let listed: Vec<&str> = MIGRATIONS_POSTGRES.iter().map(|(n, _)| *n).collect();
        assert_eq!(sql_files(&format!("{dir}/postgres")), listed);
    }

    #[test]
    fn migrating_twice_applies_nothing_the_second_time() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), MIGRATIONS.len());
        assert_eq!(migrate(&mut conn).unwrap(), 0);
    }

    #[test]
    fn the_id_token_algorithm_migration_records_the_active_id_token_keys_algorithm_or_nothing() {
        let at = MIGRATIONS.iter().position(|(name, _)| *name == "0012_id_token_alg.sql").unwrap();
        for (keys, recorded) in [
            (
                "INSERT INTO signing_keys (kid, alg, state, created_at, activated_at, family) VALUES
                 ('j', 'EdDSA', 'active', 1, 1, 'job'), ('i', 'ES256', 'active', 1, 7, 'id_token'),
                 ('n', 'RS256', 'next', 2, NULL, 'id_token')",
                Some(("ES256".to_owned(), 7)),
            ),
            ("INSERT INTO signing_keys (kid, alg, state, created_at) VALUES ('j', 'ES256', 'active', 1)", None),
        ] {
            let conn = Connection::open_in_memory().unwrap();
            for (_, sql) in &MIGRATIONS[..at] {
                conn.execute_batch(sql).unwrap();
            }
            conn.execute_batch(keys).unwrap();
            conn.execute_batch(MIGRATIONS[at].1).unwrap();
            let got = conn
                .query_row("SELECT alg, changed_at FROM id_token_signing_algorithm", [], |r| Ok((r.get(0)?, r.get(1)?)))
                .ok();
            assert_eq!(got, recorded, "{keys}");
        }
    }

    #[test]
    fn an_edited_migration_stops_start_up() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.execute("UPDATE schema_migrations SET checksum = x'00' WHERE version = 1", []).unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }
}
