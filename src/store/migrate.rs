//! Numbered SQL migrations from `migrations/`, applied in order, each in its own transaction.

use ring::digest::{digest, SHA256};
use rusqlite::{params, Connection, OptionalExtension};

use super::{Result, StoreError};

/// Every migration, in order. A test checks this list against the `migrations/` directory.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init.sql", include_str!("../../migrations/0001_init.sql")),
    ("0002_job_token_scope.sql", include_str!("../../migrations/0002_job_token_scope.sql")),
    ("0003_token_lineage.sql", include_str!("../../migrations/0003_token_lineage.sql")),
    ("0004_credentials.sql", include_str!("../../migrations/0004_credentials.sql")),
    ("0005_unique_names.sql", include_str!("../../migrations/0005_unique_names.sql")),
    ("0006_signing_alg.sql", include_str!("../../migrations/0006_signing_alg.sql")),
];

/// Applies pending migrations. A landed migration whose text changed stops start-up: migrations
/// are append-only.
pub fn migrate(conn: &mut Connection) -> Result<usize> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             checksum   BLOB NOT NULL,
             applied_at INTEGER NOT NULL
         )",
    )?;
    let mut applied = 0;
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let version = index as i64 + 1;
        let checksum = digest(&SHA256, sql.as_bytes()).as_ref().to_vec();
        let tx = conn.transaction()?;
        let landed: Option<Vec<u8>> = tx
            .query_row("SELECT checksum FROM schema_migrations WHERE version = ?1", [version], |r| r.get(0))
            .optional()?;
        match landed {
            Some(existing) if existing == checksum => continue,
            Some(_) => {
                return Err(StoreError::Migration {
                    name: (*name).into(),
                    reason: "was edited after it was applied; migrations are append-only".into(),
                })
            }
            None => {
                precheck(name, &tx)?;
                tx.execute_batch(sql)
                    .map_err(|e| StoreError::Migration { name: (*name).into(), reason: e.to_string() })?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, checksum, applied_at)
                     VALUES (?1, ?2, ?3, strftime('%s', 'now'))",
                    params![version, name, checksum],
                )?;
                tx.commit()?;
                log::info!("applied migration {name}");
                applied += 1;
            }
        }
    }
    Ok(applied)
}

/// Data checks that must pass before a migration's SQL runs, by migration name. A failing check
/// stops start-up with a list of what to fix, instead of a bare constraint error (or worse, a
/// migration that silently picks a winner).
fn precheck(name: &str, conn: &Connection) -> Result<()> {
    let problems = match name {
        "0005_unique_names.sql" => name_conflicts(conn)?,
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
fn name_conflicts(conn: &Connection) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for (what, table, column) in [
        ("users", "users", "username"),
        ("groups", "groups", "full_path"),
        ("projects", "projects", "path_with_namespace"),
    ] {
        let mut stmt = conn.prepare(&format!(
            "SELECT lower({column}), {column} FROM {table}
             WHERE lower({column}) IN (SELECT lower({column}) FROM {table} GROUP BY 1 HAVING count(*) > 1)
             ORDER BY 1, 2"
        ))?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut sets: Vec<(String, Vec<String>)> = Vec::new();
        for row in rows {
            let (folded, name) = row?;
            match sets.last_mut() {
                Some((last, names)) if *last == folded => names.push(format!("{name:?}")),
                _ => sets.push((folded, vec![format!("{name:?}")])),
            }
        }
        problems
            .extend(sets.into_iter().map(|(_, names)| format!("{what} {} differ only in case", names.join(" and "))));
    }
    let mut stmt = conn.prepare(
        "SELECT p.path_with_namespace, g.full_path FROM projects p
         JOIN groups g ON lower(g.full_path) = lower(p.path_with_namespace) ORDER BY 1, 2",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (project, group) = row?;
        problems.push(format!("project {project:?} has the path of group {group:?}"));
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_migrations_dir_is_listed_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|(n, _)| *n).collect();
        assert_eq!(files, listed);
    }

    #[test]
    fn migrating_twice_applies_nothing_the_second_time() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), MIGRATIONS.len());
        assert_eq!(migrate(&mut conn).unwrap(), 0);
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
