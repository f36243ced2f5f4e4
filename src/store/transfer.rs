//! `jobtoken migrate-data`: a one-shot move of a SQLite installation into an empty PostgreSQL
//! database.
//!
//! The tables, their columns and the order they are filled in come from the source's schema
//! (`sqlite_master`, `pragma_table_info`, `pragma_foreign_key_list`), never from a list kept by
//! hand: a table a migration adds is copied without a change here, and a source column the
//! target lacks stops the move before anything is written. The source is only read, in one
//! snapshot; it must be fully migrated (`jobtoken migrate` on it first), so that a failed move
//! leaves it exactly as it was. The target is migrated first, must hold no data, and is filled in
//! ONE transaction: every row with its id, then every identity sequence moved past its
//! column's largest id, then the row counts checked table by table. Any failure rolls it all back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::db::{atomic, params, Db, ToValue, Value};
use super::{migrate, pg, Result, StoreError};

/// Tables the target's schema fills itself (the instance settings row, the catalog cache's
/// counter): replaced by the source's rows instead of counting as data.
const SEEDED: &[&str] = &["instance_settings", "cache_version"];

/// References held by triggers rather than foreign keys, as (table, table it needs first): a
/// token row needs its signing key's row (`issued_tokens_need_their_key`).
const TRIGGER_REFERENCES: &[(&str, &str)] = &[("issued_tokens", "signing_keys")];

/// Rows per INSERT statement (the widest table has 16 columns: far below PostgreSQL's 65,535
/// parameters).
const BATCH: usize = 500;

/// How a signing key's private key is stored in the target, given its kid and what the source
/// stores (`None`: the key lives in the keys directory). Never returns key material in an error.
pub type SealKey<'a> = dyn Fn(&str, Option<&[u8]>) -> std::result::Result<Vec<u8>, String> + 'a;

/// What a move did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Moved {
    /// Every copied table with its row count, in the order they were filled.
    pub tables: Vec<(String, u64)>,
    /// Sequences moved past their column's largest id.
    pub sequences: usize,
    /// Private keys sealed from the keys directory.
    pub keys_sealed: usize,
    /// Private keys already sealed in the source, carried over as they are.
    pub keys_carried: usize,
}

/// Why a move did not happen; the target then holds no copied row.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("{0}")]
    Refused(String),
    #[error("signing key {kid}: {reason}")]
    Key { kid: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One source table: its columns, the ones of its primary key, and the tables it references.
#[derive(Debug)]
struct Table {
    name: String,
    columns: Vec<String>,
    key: Vec<String>,
    needs: BTreeSet<String>,
}

/// Moves the SQLite database at `from` into the empty PostgreSQL database `to`.
pub fn sqlite_to_postgres(from: &Path, to: &str, seal: &SealKey) -> std::result::Result<Moved, MoveError> {
    let refused = |why: String| MoveError::Refused(why);
    if !from.is_file() {
        return Err(refused(format!("the source {} is not a file", from.display())));
    }
    let source = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| refused(format!("the source {} cannot be opened: {e}", from.display())))?;
    source.busy_timeout(std::time::Duration::from_secs(10)).map_err(StoreError::from)?;
    // One snapshot of the source for the whole move (a server still running would go on writing).
    source.execute_batch("BEGIN").map_err(StoreError::from)?;
    let pending = migrate::pending(&Db::sqlite(&source))?;
    if !pending.is_empty() {
        return Err(refused(format!(
            "the source {} is not fully migrated (pending: {}); run `JOBTOKEN_DATABASE={} jobtoken migrate` first \
             (migrate-data never writes to the source)",
            from.display(),
            pending.join(", "),
            from.display()
        )));
    }
    let tables = in_dependency_order(source_tables(&source)?)?;
    let sealed = seal_keys(&source, seal)?;

    let mut conn = pg::PgConn::connect(&pg::Manager::new(to)?.target)?;
    let target = Db::postgres(&mut conn);
    // Refused before the schema is touched, then again under lock in the transaction.
    if let Some(occupied) = occupied(&target)? {
        return Err(refused(not_empty(&occupied)));
    }
    migrate::migrate_db(&target)?;
    check_columns(&target, &tables).map_err(refused)?;

    let copied = atomic(&target, |tx| {
        let names: Vec<String> = target_tables(tx)?.into_iter().map(|t| quote(&t)).collect();
        tx.batch(&format!("LOCK TABLE {} IN EXCLUSIVE MODE", names.join(", ")))?;
        if let Some(occupied) = occupied(tx)? {
            return Err(StoreError::Invalid(not_empty(&occupied)));
        }
        let mut moved = Moved::default();
        for table in &tables {
            if SEEDED.contains(&table.name.as_str()) {
                tx.execute(&format!("DELETE FROM {}", quote(&table.name)), params![])?;
            }
            let rows = copy_table(&source, tx, table, &sealed)?;
            moved.tables.push((table.name.clone(), rows));
        }
        moved.sequences = move_sequences(tx)?;
        for (name, copied) in &moved.tables {
            let count = |db: &Db| -> Result<u64> {
                let n: i64 = db.query_one(&format!("SELECT count(*) FROM {}", quote(name)), params![])?.get(0)?;
                Ok(n.unsigned_abs())
            };
            let (in_source, in_target) = (count(&Db::sqlite(&source))?, count(tx)?);
            if in_source != in_target || in_target != *copied {
                return Err(StoreError::Invalid(format!(
                    "table {name}: {in_source} row(s) in the source, {copied} copied, {in_target} in the target; \
                     nothing was written"
                )));
            }
        }
        Ok(moved)
    });
    let mut moved = copied.map_err(|e| match e {
        StoreError::Invalid(why) => MoveError::Refused(why),
        other => MoveError::Store(other),
    })?;
    moved.keys_sealed = sealed.values().filter(|(from_file, _)| *from_file).count();
    moved.keys_carried = sealed.len() - moved.keys_sealed;
    Ok(moved)
}

fn not_empty(occupied: &[String]) -> String {
    format!(
        "the target database already holds data (in {}); migrate-data only fills an empty database, and wrote nothing",
        occupied.join(", ")
    )
}

/// `"name"`, an identifier quoted for SQL on both backends.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every table of the source except the migrations' own record, with its columns and references.
fn source_tables(source: &Connection) -> Result<Vec<Table>> {
    let db = Db::sqlite(source);
    let names = db.query(
        "SELECT name FROM sqlite_master
         WHERE type = 'table' AND name NOT LIKE 'sqlite~_%' ESCAPE '~' AND name <> 'schema_migrations' ORDER BY name",
        params![],
    )?;
    let mut tables = Vec::with_capacity(names.len());
    for row in names {
        let name: String = row.get(0)?;
        let mut columns = Vec::new();
        let mut key = Vec::new();
        for col in db.query("SELECT name, pk FROM pragma_table_info(?1) ORDER BY cid", params![name])? {
            let (column, pk): (String, i64) = (col.get(0)?, col.get(1)?);
            if pk > 0 {
                key.push((pk, column.clone()));
            }
            columns.push(column);
        }
        key.sort();
        let key = key.into_iter().map(|(_, column)| column).collect();
        let mut needs: BTreeSet<String> = BTreeSet::new();
        for fk in db.query("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?1)", params![name])? {
            needs.insert(fk.get(0)?);
        }
        needs.extend(TRIGGER_REFERENCES.iter().filter(|(t, _)| *t == name).map(|(_, n)| (*n).to_owned()));
        needs.remove(&name);
        tables.push(Table { name, columns, key, needs });
    }
    Ok(tables)
}

/// `tables` with every table after the ones it references (ties by name).
fn in_dependency_order(mut tables: Vec<Table>) -> Result<Vec<Table>> {
    let mut ordered: Vec<Table> = Vec::with_capacity(tables.len());
    let mut placed: BTreeSet<String> = BTreeSet::new();
    while !tables.is_empty() {
        let ready = tables.iter().position(|t| t.needs.iter().all(|n| placed.contains(n)));
        let Some(ready) = ready else {
            let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
            return Err(StoreError::Invalid(format!(
                "the source's tables {} reference each other or a missing table; no order fills them",
                names.join(", ")
            )));
        };
        let table = tables.remove(ready);
        placed.insert(table.name.clone());
        ordered.push(table);
    }
    Ok(ordered)
}

/// The sealed private key for the target of every signing key, by kid, with whether it came
/// from the keys directory: all sealed before anything is written.
fn seal_keys(source: &Connection, seal: &SealKey) -> std::result::Result<HashMap<String, (bool, Vec<u8>)>, MoveError> {
    let db = Db::sqlite(source);
    let mut sealed = HashMap::new();
    for row in db.query("SELECT kid, sealed_private_key FROM signing_keys ORDER BY kid", params![])? {
        let (kid, stored): (String, Option<Vec<u8>>) = (row.get(0)?, row.get(1)?);
        let bytes = seal(&kid, stored.as_deref()).map_err(|reason| MoveError::Key { kid: kid.clone(), reason })?;
        sealed.insert(kid, (stored.is_none(), bytes));
    }
    Ok(sealed)
}

/// The base tables of the target's schema.
fn target_tables(db: &Db) -> Result<Vec<String>> {
    db.query("SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1", params![])?
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The target's tables that hold data (the migrations' record and the seeded tables aside), or
/// `None` when it holds none.
fn occupied(db: &Db) -> Result<Option<Vec<String>>> {
    let mut occupied = Vec::new();
    for table in target_tables(db)? {
        if table == "schema_migrations" || SEEDED.contains(&table.as_str()) {
            continue;
        }
        if db.query_opt(&format!("SELECT 1 FROM {} LIMIT 1", quote(&table)), params![])?.is_some() {
            occupied.push(table);
        }
    }
    Ok((!occupied.is_empty()).then_some(occupied))
}

/// Refuses a source column the target lacks (the schemas drifted apart).
fn check_columns(db: &Db, tables: &[Table]) -> std::result::Result<(), String> {
    let rows = db
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema()",
            params![],
        )
        .map_err(|e| e.to_string())?;
    let mut target: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in rows {
        let (table, column): (String, String) =
            (row.get(0).map_err(|e| e.to_string())?, row.get(1).map_err(|e| e.to_string())?);
        target.entry(table).or_default().insert(column);
    }
    let missing: Vec<String> = tables
        .iter()
        .flat_map(|t| {
            let have = target.get(&t.name);
            t.columns
                .iter()
                .filter(move |c| have.is_none_or(|h| !h.contains(*c)))
                .map(move |c| format!("{}.{c}", t.name))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the PostgreSQL schema lacks {} of the source; nothing was copied (does this build's migrations/postgres \
         match its SQLite migrations?)",
        missing.join(", ")
    ))
}

/// Copies every row of `table`, in primary-key order (a group after its parent), in batches.
fn copy_table(
    source: &Connection,
    target: &Db,
    table: &Table,
    sealed: &HashMap<String, (bool, Vec<u8>)>,
) -> Result<u64> {
    let columns: Vec<String> = table.columns.iter().map(|c| quote(c)).collect();
    let order = if table.key.is_empty() {
        "rowid".to_owned()
    } else {
        table.key.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ")
    };
    let select = format!("SELECT {} FROM {} ORDER BY {order}", columns.join(", "), quote(&table.name));
    // The signing keys' private keys as the target keeps them.
    let keys = (table.name == "signing_keys").then(|| {
        let at = |name: &str| table.columns.iter().position(|c| c == name);
        (at("kid"), at("sealed_private_key"))
    });
    let mut stmt = source.prepare(&select)?;
    let mut rows = stmt.query([])?;
    let width = columns.len();
    let mut batch: Vec<Value> = Vec::with_capacity(width * BATCH);
    let mut copied = 0u64;
    while let Some(row) = rows.next()? {
        let start = batch.len();
        for idx in 0..width {
            batch.push(match row.get_ref(idx)? {
                rusqlite::types::ValueRef::Null => Value::Null,
                rusqlite::types::ValueRef::Integer(i) => Value::Int(i),
                rusqlite::types::ValueRef::Text(t) => Value::Text(
                    String::from_utf8(t.to_vec())
                        .map_err(|_| StoreError::Invalid(format!("table {}: text that is not UTF-8", table.name)))?,
                ),
                rusqlite::types::ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                rusqlite::types::ValueRef::Real(_) => {
                    return Err(StoreError::Invalid(format!("table {}: a real number where none belongs", table.name)))
                }
            });
        }
        if let Some((Some(kid_at), Some(sealed_at))) = keys {
            let Value::Text(kid) = &batch[start + kid_at] else {
                return Err(StoreError::Invalid("signing_keys: a key without a kid".into()));
            };
            let bytes = sealed
                .get(kid)
                .map(|(_, b)| b.clone())
                .ok_or_else(|| StoreError::Invalid(format!("signing key {kid} appeared after the keys were sealed")))?;
            batch[start + sealed_at] = Value::Blob(bytes);
        }
        copied += 1;
        if batch.len() == width * BATCH {
            insert(target, &table.name, &columns, &batch)?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        insert(target, &table.name, &columns, &batch)?;
    }
    Ok(copied)
}

/// One multi-row INSERT of `values` (whole rows of `columns`).
fn insert(db: &Db, table: &str, columns: &[String], values: &[Value]) -> Result<()> {
    let width = columns.len();
    let tuples: Vec<String> = (0..values.len() / width)
        .map(|row| {
            let marks: Vec<String> = (1..=width).map(|col| format!("?{}", row * width + col)).collect();
            format!("({})", marks.join(", "))
        })
        .collect();
    let sql = format!("INSERT INTO {} ({}) VALUES {}", quote(table), columns.join(", "), tuples.join(", "));
    let params: Vec<&dyn ToValue> = values.iter().map(|v| v as &dyn ToValue).collect();
    db.execute(&sql, &params)?;
    Ok(())
}

/// Moves every identity (or serial) sequence of the target past its column's largest value, so
/// that the next insert does not collide with a copied id; returns how many.
fn move_sequences(db: &Db) -> Result<usize> {
    let rows = db.query(
        "SELECT table_name::text, column_name::text,
                pg_get_serial_sequence(quote_ident(table_name), column_name)
         FROM information_schema.columns
         WHERE table_schema = current_schema() AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')
         ORDER BY 1, 2",
        params![],
    )?;
    let mut moved = 0;
    for row in rows {
        let (table, column, sequence): (String, String, Option<String>) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let Some(sequence) = sequence else { continue };
        db.query_one(
            &format!(
                "SELECT setval(CAST(?1 AS text)::regclass, COALESCE((SELECT max({}) FROM {}), 0) + 1, false)",
                quote(&column),
                quote(&table)
            ),
            params![sequence],
        )?;
        moved += 1;
    }
    Ok(moved)
}
