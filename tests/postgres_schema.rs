//! The PostgreSQL schema (`migrations/postgres/0001_schema.sql`) on a throwaway cluster: it has
//! every table and column of the SQLite schema the real binary creates, and it enforces what the
//! store relies on (case-insensitive names, no project at a group's path, no token without its
//! key, identity ids from 1), also between concurrent transactions, which SQLite never has.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

use common::pg;
use postgres::error::SqlState;

/// A fresh database with every PostgreSQL migration applied, in order: its URL and a connection.
fn schema() -> (String, postgres::Client) {
    let url = pg::database();
    let mut conn = pg::connect(&url);
    for (_, sql) in jobtoken::store::MIGRATIONS_POSTGRES {
        conn.batch_execute(sql).unwrap();
    }
    (url, conn)
}

/// What the server said, for assertions and failure messages (`Display` says only "db error").
fn said(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => err.to_string(),
    }
}

/// One column as both dialects can describe it.
#[derive(Debug, PartialEq)]
struct Column {
    name: String,
    /// The PostgreSQL type that holds SQLite's class: `bigint` (64-bit, as SQLite's INTEGER),
    /// `bytea` or `text` (byte-ordered: any collation but "C" shows as `text collate …`).
    class: String,
    not_null: bool,
    /// The default as written, with PostgreSQL's casts (`'active'::text`) taken off.
    default: Option<String>,
}

/// Every table of a SQLite database that `jobtoken migrate` created, with its columns in order;
/// `schema_migrations` belongs to the migration runner, not to the schema, and is left out.
fn sqlite_tables() -> BTreeMap<String, Vec<Column>> {
    let dir = common::temp_dir();
    // The SQLite side of the comparison is always SQLite, whatever JOBTOKEN_TEST_BACKEND says.
    let file = dir.join("db/jobtoken.db");
    let out = common::cli_in(&dir, &["migrate"], &[("JOBTOKEN_DATABASE", file.to_str().unwrap())]).output().unwrap();
    assert!(out.status.success(), "jobtoken migrate: {}", String::from_utf8_lossy(&out.stderr));
    let conn = rusqlite::Connection::open(dir.join("db/jobtoken.db")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT m.name, c.name, c.type, c.\"notnull\", c.pk, c.dflt_value
             FROM sqlite_master m, pragma_table_info(m.name) c
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> 'schema_migrations'
             ORDER BY m.name, c.cid",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            let declared: String = r.get(2)?;
            let class = match declared.as_str() {
                "INTEGER" => "bigint",
                "BLOB" => "bytea",
                "TEXT" => "text",
                other => panic!("unexpected SQLite type {other}"),
            };
            let column = Column {
                name: r.get(1)?,
                class: class.into(),
                // A primary key column cannot be NULL in either (WITHOUT ROWID or INTEGER PRIMARY KEY).
                not_null: r.get::<_, i64>(3)? == 1 || r.get::<_, i64>(4)? > 0,
                default: r.get(5)?,
            };
            Ok((r.get::<_, String>(0)?, column))
        })
        .unwrap();
    let mut tables: BTreeMap<String, Vec<Column>> = BTreeMap::new();
    for row in rows {
        let (table, column) = row.unwrap();
        tables.entry(table).or_default().push(column);
    }
    std::fs::remove_dir_all(&dir).unwrap();
    tables
}

/// Every table of the public schema of a PostgreSQL database, with its columns in order.
fn postgres_tables(conn: &mut postgres::Client) -> BTreeMap<String, Vec<Column>> {
    let rows = conn
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text, column_default::text,
                    collation_name::text
             FROM information_schema.columns WHERE table_schema = 'public'
             ORDER BY table_name, ordinal_position",
            &[],
        )
        .unwrap();
    let mut tables: BTreeMap<String, Vec<Column>> = BTreeMap::new();
    for row in rows {
        // information_schema names a column's collation only when it is explicit.
        let class = match (row.get::<_, String>(2), row.get::<_, Option<String>>(5)) {
            (text, collation) if text == "text" && collation.as_deref() != Some("C") => {
                format!("text collate {}", collation.as_deref().unwrap_or("default"))
            }
            (data_type, _) => data_type,
        };
        let default = row.get::<_, Option<String>>(4).map(|d| d.trim_end_matches("::text").to_owned());
        let column = Column { name: row.get(1), class, not_null: row.get::<_, String>(3) == "NO", default };
        tables.entry(row.get(0)).or_default().push(column);
    }
    tables
}

#[test]
fn every_sqlite_table_has_the_same_columns_in_postgres_with_compatible_types_nullability_and_defaults() {
    let sqlite = sqlite_tables();
    let (_, mut conn) = schema();
    let postgres = postgres_tables(&mut conn);

    // `signing_keys.sealed_private_key` is on both since SQLite's 0007_sealed_keys.sql.
    assert_eq!(
        sqlite["signing_keys"].iter().find(|c| c.name == "sealed_private_key"),
        Some(&Column { name: "sealed_private_key".into(), class: "bytea".into(), not_null: false, default: None })
    );
    assert!(sqlite.len() >= 17, "the SQLite schema lost tables: {:?}", sqlite.keys());
    assert_eq!(sqlite.keys().collect::<Vec<_>>(), postgres.keys().collect::<Vec<_>>(), "the same tables");
    for (table, columns) in &sqlite {
        assert_eq!(columns, &postgres[table], "columns of {table}, in order");
    }
}

#[test]
fn every_sqlite_index_exists_in_postgres_on_its_table_with_its_uniqueness_and_condition() {
    let dir = common::temp_dir();
    let file = dir.join("db/jobtoken.db");
    let on_sqlite = [("JOBTOKEN_DATABASE", file.to_str().unwrap())];
    assert!(common::cli_in(&dir, &["migrate"], &on_sqlite).output().unwrap().status.success());
    let sqlite = rusqlite::Connection::open(dir.join("db/jobtoken.db")).unwrap();
    let mut stmt = sqlite
        .prepare(
            "SELECT m.name, m.tbl_name, l.\"unique\", l.partial FROM sqlite_master m, pragma_index_list(m.tbl_name) l
             WHERE m.type = 'index' AND m.sql IS NOT NULL AND l.name = m.name ORDER BY m.name",
        )
        .unwrap();
    let indexes: Vec<(String, String, bool, bool)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? == 1, r.get::<_, i64>(3)? == 1)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(indexes.len() >= 15, "{indexes:?}");
    let (_, mut conn) = schema();
    for (name, table, unique, partial) in indexes {
        let row = conn
            .query_opt(
                "SELECT t.relname::text, i.indisunique, i.indpred IS NOT NULL
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
                 WHERE c.relname = $1",
                &[&name],
            )
            .unwrap()
            .unwrap_or_else(|| panic!("index {name} is missing in PostgreSQL"));
        let found: (String, bool, bool) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(found, (table, unique, partial), "index {name}: table, unique, partial");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_instance_settings_row_is_seeded_with_its_defaults_and_stays_the_only_one() {
    let (_, mut conn) = schema();
    let rows = conn
        .query("SELECT id, enforce_job_token_allowlist, job_token_elevation_allowed, admin_token_hash FROM instance_settings", &[])
        .unwrap();
    assert_eq!(rows.len(), 1);
    let seeded: (i64, i64, i64, Option<Vec<u8>>) = (rows[0].get(0), rows[0].get(1), rows[0].get(2), rows[0].get(3));
    assert_eq!(seeded, (1, 0, 1, None));
    let second = conn.execute("INSERT INTO instance_settings (id) VALUES (2)", &[]).unwrap_err();
    assert_eq!(second.code(), Some(&SqlState::CHECK_VIOLATION), "{}", said(&second));
    assert!(conn.query("SELECT alg FROM signing_algorithm", &[]).unwrap().is_empty(), "no algorithm until first start");
}

#[test]
fn identity_ids_start_at_one_and_count_up() {
    let (_, mut conn) = schema();
    let first: i64 =
        conn.query_one("INSERT INTO users (username, created_at) VALUES ('a', 0) RETURNING id", &[]).unwrap().get(0);
    let second: i64 =
        conn.query_one("INSERT INTO users (username, created_at) VALUES ('b', 0) RETURNING id", &[]).unwrap().get(0);
    let group: i64 = conn
        .query_one(
            "INSERT INTO groups (path, full_path, traversal_ids, created_at) VALUES ('g', 'g', '1', 0) RETURNING id",
            &[],
        )
        .unwrap()
        .get(0);
    let runner: i64 = conn
        .query_one(
            "INSERT INTO runners (client_id, secret_hash, runner_type, created_at) VALUES ('r', '\\x00', 'instance', 0)
             RETURNING id",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!((first, second, group, runner), (1, 2, 1, 1));
}

#[test]
fn usernames_group_paths_and_project_paths_that_differ_only_in_case_conflict() {
    let (_, mut conn) = schema();
    conn.batch_execute(
        "INSERT INTO users (username, created_at) VALUES ('Alice', 0);
         INSERT INTO groups (path, full_path, traversal_ids, created_at) VALUES ('Grp', 'Grp', '1', 0);
         INSERT INTO projects (path, namespace_id, path_with_namespace, visibility, created_at)
             VALUES ('App', 1, 'Grp/App', 'private', 0);",
    )
    .unwrap();
    for statement in [
        "INSERT INTO users (username, created_at) VALUES ('alice', 0)",
        "INSERT INTO groups (path, full_path, traversal_ids, created_at) VALUES ('grp', 'grp', '2', 0)",
        "INSERT INTO projects (path, namespace_id, path_with_namespace, visibility, created_at)
             VALUES ('app', 1, 'Grp/app', 'private', 0)",
    ] {
        let refused = conn.execute(statement, &[]).unwrap_err();
        assert_eq!(refused.code(), Some(&SqlState::UNIQUE_VIOLATION), "{statement}: {}", said(&refused));
    }
    let users: i64 = conn.query_one("SELECT count(*) FROM users", &[]).unwrap().get(0);
    assert_eq!(users, 1);
    // Names that differ in more than case are fine.
    conn.execute("INSERT INTO users (username, created_at) VALUES ('alice2', 0)", &[]).unwrap();
}

#[test]
fn a_project_cannot_take_a_groups_full_path_nor_a_group_a_projects() {
    let (_, mut conn) = schema();
    conn.batch_execute(
        "INSERT INTO groups (path, full_path, traversal_ids, created_at) VALUES ('grp', 'grp', '1', 0);
         INSERT INTO groups (path, parent_id, full_path, traversal_ids, created_at) VALUES ('sub', 1, 'grp/sub', '1 2', 0);
         INSERT INTO projects (path, namespace_id, path_with_namespace, visibility, created_at)
             VALUES ('app', 1, 'grp/app', 'private', 0);",
    )
    .unwrap();
    let project_at_group = conn
        .execute(
            "INSERT INTO projects (path, namespace_id, path_with_namespace, visibility, created_at)
             VALUES ('SUB', 1, 'grp/SUB', 'private', 0)",
            &[],
        )
        .unwrap_err();
    assert_eq!(project_at_group.code(), Some(&SqlState::UNIQUE_VIOLATION), "{}", said(&project_at_group));
    assert!(said(&project_at_group).contains("name conflict: a group has this path"), "{}", said(&project_at_group));
    let group_at_project = conn
        .execute(
            "INSERT INTO groups (path, parent_id, full_path, traversal_ids, created_at) VALUES ('App', 1, 'grp/App', '1 3', 0)",
            &[],
        )
        .unwrap_err();
    assert_eq!(group_at_project.code(), Some(&SqlState::UNIQUE_VIOLATION), "{}", said(&group_at_project));
    let renamed = conn.execute("UPDATE projects SET path_with_namespace = 'grp/sub' WHERE id = 1", &[]).unwrap_err();
    assert_eq!(renamed.code(), Some(&SqlState::UNIQUE_VIOLATION), "{}", said(&renamed));
    // A project beside the group, not at its path, is fine.
    conn.execute(
        "INSERT INTO projects (path, namespace_id, path_with_namespace, visibility, created_at)
         VALUES ('sub2', 1, 'grp/sub2', 'private', 0)",
        &[],
    )
    .unwrap();
}

/// Runs `statement` on its own connection in a thread; its result arrives on the receiver.
fn in_background(url: &str, statement: &'static str) -> mpsc::Receiver<Result<u64, postgres::Error>> {
    let mut conn = pg::connect(url);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(conn.execute(statement, &[])).unwrap());
    rx
}

#[test]
fn a_project_inserted_while_a_group_of_its_path_is_uncommitted_waits_and_is_refused() {
    let (url, mut conn) = schema();
    conn.batch_execute("INSERT INTO groups (path, full_path, traversal_ids, created_at) VALUES ('grp', 'grp', '1', 0)")
        .unwrap();
    let mut tx = conn.transaction().unwrap();
    tx.execute(
        "INSERT INTO groups (path, parent_id, full_path, traversal_ids, created_at) VALUES ('x', 1, 'grp/x', '1 2', 0)",
        &[],
    )
    .unwrap();

    let project = in_background(
        &url,
        "INSERT INTO projects (path, namespace_id, path_with_namespace, visibility, created_at)
         VALUES ('X', 1, 'grp/X', 'private', 0)",
    );
    assert!(
        project.recv_timeout(Duration::from_millis(500)).is_err(),
        "the project insert waits for the group's transaction"
    );
    tx.commit().unwrap();

    let refused = project.recv_timeout(Duration::from_secs(10)).unwrap().unwrap_err();
    assert_eq!(refused.code(), Some(&SqlState::UNIQUE_VIOLATION), "{}", said(&refused));
    let projects: i64 = conn.query_one("SELECT count(*) FROM projects", &[]).unwrap().get(0);
    assert_eq!(projects, 0);
}

/// A key row, a pipeline and a job to hang tokens on.
const KEY_AND_JOB: &str = "
    INSERT INTO signing_keys (kid, alg, state, created_at) VALUES ('k1', 'ES256', 'active', 0);
    INSERT INTO users (username, created_at) VALUES ('dev', 0);
    INSERT INTO groups (path, full_path, traversal_ids, created_at) VALUES ('grp', 'grp', '1', 0);
    INSERT INTO projects (path, namespace_id, path_with_namespace, visibility, created_at)
        VALUES ('app', 1, 'grp/app', 'private', 0);
    INSERT INTO pipelines (project_id, user_id, ref, ref_type, ref_protected, sha, source, created_at)
        VALUES (1, 1, 'main', 'branch', 0, 'abc', 'push', 0);
    INSERT INTO jobs (pipeline_id, name, stage) VALUES (1, 'build', 'test');";

const TOKEN_OF_K1: &str = "INSERT INTO issued_tokens (jti, job_id, kid, client_id, token_hash, issued_at, expires_at)
     VALUES ('\\x01', 1, 'k1', 'runner', '\\x02', 0, 60)";

#[test]
fn a_token_row_needs_its_signing_key_row() {
    let (_, mut conn) = schema();
    conn.batch_execute(KEY_AND_JOB).unwrap();
    conn.execute(TOKEN_OF_K1, &[]).unwrap();

    let orphan = conn
        .execute(
            "INSERT INTO issued_tokens (jti, job_id, kid, client_id, token_hash, issued_at, expires_at)
             VALUES ('\\x03', 1, 'gone', 'runner', '\\x04', 0, 60)",
            &[],
        )
        .unwrap_err();
    assert_eq!(orphan.code(), Some(&SqlState::FOREIGN_KEY_VIOLATION), "{}", said(&orphan));
    assert!(said(&orphan).contains("the signing key of this token has been dropped"), "{}", said(&orphan));
    let tokens: i64 = conn.query_one("SELECT count(*) FROM issued_tokens", &[]).unwrap().get(0);
    assert_eq!(tokens, 1);
}

#[test]
fn a_token_inserted_while_its_key_is_being_dropped_waits_and_is_refused() {
    let (url, mut conn) = schema();
    conn.batch_execute(KEY_AND_JOB).unwrap();
    // The drop as the store must do it: lock the key row, see no unexpired token, delete.
    let mut dropping = conn.transaction().unwrap();
    dropping.query("SELECT kid FROM signing_keys WHERE kid = 'k1' FOR UPDATE", &[]).unwrap();
    dropping.execute("DELETE FROM signing_keys WHERE kid = 'k1'", &[]).unwrap();

    let token = in_background(&url, TOKEN_OF_K1);
    assert!(token.recv_timeout(Duration::from_millis(500)).is_err(), "the token insert waits for the drop");
    dropping.commit().unwrap();

    let refused = token.recv_timeout(Duration::from_secs(10)).unwrap().unwrap_err();
    assert_eq!(refused.code(), Some(&SqlState::FOREIGN_KEY_VIOLATION), "{}", said(&refused));
}

#[test]
fn a_key_drop_that_locks_the_key_waits_for_an_uncommitted_token_of_it() {
    let (url, mut conn) = schema();
    conn.batch_execute(KEY_AND_JOB).unwrap();
    let mut token = conn.transaction().unwrap();
    token.execute(TOKEN_OF_K1, &[]).unwrap();

    let lock = in_background(&url, "SELECT kid FROM signing_keys WHERE kid = 'k1' FOR UPDATE");
    assert!(
        lock.recv_timeout(Duration::from_millis(500)).is_err(),
        "the drop's lock waits for the token's transaction"
    );
    token.commit().unwrap();
    lock.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
    // Now the drop's next statement sees the token and keeps the key.
    let unexpired: i64 = conn.query_one("SELECT count(*) FROM issued_tokens WHERE kid = 'k1'", &[]).unwrap().get(0);
    assert_eq!(unexpired, 1);
}

#[test]
fn booleans_enumerations_and_the_one_active_key_are_checked() {
    let (_, mut conn) = schema();
    conn.batch_execute("INSERT INTO signing_keys (kid, alg, state, created_at) VALUES ('k1', 'ES256', 'active', 0)")
        .unwrap();
    for (statement, code) in [
        ("INSERT INTO signing_keys (kid, alg, state, created_at) VALUES ('k2', 'ES256', 'active', 0)", SqlState::UNIQUE_VIOLATION),
        ("INSERT INTO signing_keys (kid, alg, state, created_at) VALUES ('k3', 'HS256', 'next', 0)", SqlState::CHECK_VIOLATION),
        ("INSERT INTO runners (client_id, secret_hash, runner_type, created_at, paused) VALUES ('r', '\\x00', 'instance', 0, 2)", SqlState::CHECK_VIOLATION),
        ("INSERT INTO runners (client_id, secret_hash, runner_type, created_at) VALUES ('r', '\\x00', 'group', 0)", SqlState::CHECK_VIOLATION),
        ("INSERT INTO users (username, state, created_at) VALUES ('u', 'deleted', 0)", SqlState::CHECK_VIOLATION),
    ] {
        let refused = conn.execute(statement, &[]).unwrap_err();
        assert_eq!(refused.code(), Some(&code), "{statement}: {}", said(&refused));
    }
    // Any number of retired keys, one next key beside the active one.
    conn.batch_execute(
        "INSERT INTO signing_keys (kid, alg, state, created_at) VALUES ('k4', 'RS256', 'retired', 0), ('k5', 'EdDSA', 'retired', 0);
         INSERT INTO signing_keys (kid, alg, state, created_at, sealed_private_key) VALUES ('k6', 'EdDSA', 'next', 0, '\\xdeadbeef');",
    )
    .unwrap();
}

#[test]
fn text_orders_byte_by_byte_as_in_sqlite_even_where_the_database_collates_otherwise() {
    let url = pg::database_with("TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'");
    let mut conn = pg::connect(&url);
    conn.batch_execute(jobtoken::store::MIGRATIONS_POSTGRES[0].1).unwrap();
    conn.batch_execute("INSERT INTO users (username, created_at) VALUES ('b', 0), ('B_x', 0), ('a', 0), ('Ab', 0)")
        .unwrap();
    // The database's own collation would put 'a' before 'Ab' before 'b' before 'B_x'.
    let collated: Vec<String> = conn
        .query("SELECT x FROM (VALUES ('b'), ('B_x'), ('a'), ('Ab')) v(x) ORDER BY x", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(collated, ["a", "Ab", "b", "B_x"], "the database collates by ICU en-US");
    let ordered: Vec<String> =
        conn.query("SELECT username FROM users ORDER BY username", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(ordered, ["Ab", "B_x", "a", "b"]);
}

#[test]
fn every_caller_gets_a_database_of_its_own() {
    let (first, mut one) = schema();
    let second = pg::database();
    assert_ne!(first, second);
    assert!(
        second.starts_with(&format!("postgres://{}@127.0.0.1:{}/jt_", pg::SUPERUSER, pg::cluster().port)),
        "{second}"
    );
    one.execute("INSERT INTO users (username, created_at) VALUES ('only-here', 0)", &[]).unwrap();
    let mut two = pg::connect(&second);
    let tables: i64 = two
        .query_one("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'", &[])
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "the second database is empty");
}

/// Run by [`the_cluster_is_stopped_and_removed_when_the_test_binary_exits`] in a child process of
/// this binary: starts the cluster and prints its port and directory.
#[test]
#[ignore = "run by the_cluster_is_stopped_and_removed_when_the_test_binary_exits"]
fn child_process_starts_a_cluster() {
    if std::env::var_os("JOBTOKEN_PG_CHILD").is_none() {
        return;
    }
    let started = std::time::Instant::now();
    let url = pg::database();
    let created = started.elapsed();
    let db = std::time::Instant::now();
    pg::database();
    let cluster = pg::cluster();
    println!(
        "CLUSTER {} {} started_in={:?} first_database_in={:?} next_database_in={:?} {url}",
        cluster.port,
        cluster.dir.display(),
        cluster.started_in,
        created - cluster.started_in,
        db.elapsed()
    );
}

#[test]
fn the_cluster_is_stopped_and_removed_when_the_test_binary_exits() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_process_starts_a_cluster", "--ignored", "--nocapture", "--test-threads=1"])
        .env("JOBTOKEN_PG_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find_map(|l| Some(&l[l.find("CLUSTER ")? + 8..])).unwrap_or_else(|| panic!("{stdout}"));
    eprintln!("{line}");
    let mut fields = line.split(' ');
    let port: u16 = fields.next().unwrap().parse().unwrap();
    let dir = std::path::PathBuf::from(fields.next().unwrap());

    let gone = common::eventually(Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && !dir.exists()
    });
    assert!(gone, "the child's cluster on port {port} in {} outlived it", dir.display());
}

#[test]
fn the_id_token_algorithm_migration_records_the_active_id_token_keys_algorithm_or_nothing() {
    let migrations = jobtoken::store::MIGRATIONS_POSTGRES;
    let at = migrations.iter().position(|(name, _)| *name == "0006_id_token_alg.sql").unwrap();
    for (keys, recorded) in [
        (
            "INSERT INTO signing_keys (kid, alg, state, created_at, activated_at, family) VALUES
             ('j', 'EdDSA', 'active', 1, 1, 'job'), ('i', 'ES256', 'active', 1, 7, 'id_token'),
             ('n', 'RS256', 'next', 2, NULL, 'id_token')",
            vec![("ES256".to_owned(), 7)],
        ),
        ("INSERT INTO signing_keys (kid, alg, state, created_at) VALUES ('j', 'ES256', 'active', 1)", vec![]),
    ] {
        let mut conn = pg::connect(&pg::database());
        for (_, sql) in &migrations[..at] {
            conn.batch_execute(sql).unwrap();
        }
        conn.batch_execute(keys).unwrap();
        conn.batch_execute(migrations[at].1).unwrap();
        let rows = conn.query("SELECT alg, changed_at FROM id_token_signing_algorithm", &[]).unwrap();
        let got: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(got, recorded, "{keys}");
        let eddsa = conn.execute("UPDATE id_token_signing_algorithm SET alg = 'EdDSA'", &[]);
        assert!(got.is_empty() || eddsa.is_err(), "ID tokens: RS256 or ES256 only");
    }
}
