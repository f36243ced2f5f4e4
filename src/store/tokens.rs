//! Issued tokens: the group-commit writer that records every token before its response leaves,
//! and the lookups introspection and revocation need.

use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;

use super::db::{atomic, params, Db, ToValue};
use super::{Dialect, Owned, Result, StoreError};
use crate::domain::{JobId, JobStatus, UserState};

/// One issued token's record.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// UUIDv7 bytes: time-ordered, so inserts append to the b-tree.
    pub jti: [u8; 16],
    pub job_id: JobId,
    pub kid: String,
    pub client_id: String,
    /// SHA-256 of the compact token.
    pub token_hash: [u8; 32],
    pub issued_at: i64,
    pub expires_at: i64,
    /// The token this one was exchanged from (RFC 8693); `None` for a runner-minted token.
    pub parent_jti: Option<[u8; 16]>,
}

/// Why one row was not recorded: the database was away (the request answers 503), or the row
/// itself failed (its job vanished, its key was dropped: the request fails).
#[derive(Debug, Clone)]
enum NotRecorded {
    Unavailable(String),
    Failed,
}

impl NotRecorded {
    fn of(e: &StoreError) -> NotRecorded {
        match e {
            StoreError::Unavailable(cause) => NotRecorded::Unavailable(cause.clone()),
            _ => NotRecorded::Failed,
        }
    }
}

type Reply = oneshot::Sender<Result<(), NotRecorded>>;

/// Records issued tokens on a dedicated connection, committing whatever has queued up in one
/// transaction (group commit): one fsync-free WAL commit covers many tokens under load, and
/// each caller is answered only after the commit that holds its row.
#[derive(Clone)]
pub struct TokenWriter {
    tx: mpsc::Sender<(IssuedToken, Reply)>,
}

/// Most rows one commit takes; bounds the latency a row can add to the ones behind it.
const MAX_BATCH: usize = 512;

impl TokenWriter {
    /// Starts the writer thread. It stops after the last `TokenWriter` clone is dropped and every
    /// queued record is committed, so a clean shutdown loses nothing.
    pub(crate) fn start(conn: Owned) -> TokenWriter {
        let (tx, rx) = mpsc::channel::<(IssuedToken, Reply)>();
        thread::Builder::new()
            .name("token-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .expect("spawning the token writer thread");
        TokenWriter { tx }
    }

    /// Durably records `token`; resolves once it is committed.
    pub async fn record(&self, token: IssuedToken) -> Result<()> {
        let (reply, done) = oneshot::channel();
        self.tx.send((token, reply)).map_err(|_| StoreError::WriterGone)?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(NotRecorded::Unavailable(cause))) => Err(StoreError::Unavailable(cause)),
            Ok(Err(NotRecorded::Failed)) => Err(StoreError::Conflict("the token could not be recorded".into())),
            Err(_) => Err(StoreError::WriterGone),
        }
    }
}

fn writer_loop(mut conn: Owned, rx: mpsc::Receiver<(IssuedToken, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let results = match conn.with(|db| Ok(insert_batch(db, &batch))) {
            Ok(results) => results,
            Err(e) => {
                log::error!("the token writer has no database connection: {e}");
                batch.iter().map(|_| Err(NotRecorded::of(&e))).collect()
            }
        };
        for ((_, reply), result) in batch.drain(..).zip(results) {
            let _ = reply.send(result);
        }
    }
}

/// Inserts each row, then commits once. A row that fails alone (say its job vanished) fails only
/// its own request; a failed commit fails them all.
///
/// A batch that fails because the database went away answers every request "unavailable" (503):
/// none of them was told its token exists, so a commit that did land only leaves rows of tokens
/// nobody holds.
///
/// On PostgreSQL the whole batch is first one multi-row `INSERT` in autocommit: one statement is
/// its own transaction, so the batch costs one round trip and one commit instead of a
/// `BEGIN`, the writer lock, a savepoint, insert and release per row, and a `COMMIT` (token rows
/// need no writer lock: nothing reads them to decide a write). Only if that statement fails do
/// the rows go one by one, so that a bad row fails alone.
fn insert_batch(db: &Db, batch: &[(IssuedToken, Reply)]) -> Vec<Result<(), NotRecorded>> {
    if db.dialect() == Dialect::Postgres && batch.len() > 1 {
        match insert_all(db, batch) {
            Ok(()) => return batch.iter().map(|_| Ok(())).collect(),
            Err(e @ StoreError::Unavailable(_)) => {
                log::error!("recording issued tokens failed: {e}");
                return batch.iter().map(|_| Err(NotRecorded::of(&e))).collect();
            }
            // Some row is bad: find it below, one row per savepoint.
            Err(e) => log::debug!("the batch insert of issued tokens failed, inserting row by row: {e}"),
        }
    }
    let attempt = atomic(db, |tx| {
        // On PostgreSQL a failed statement aborts the whole transaction; a savepoint per row
        // keeps a row's failure its own.
        let postgres = tx.dialect() == Dialect::Postgres;
        let results = batch.iter().map(|(t, _)| {
            let inserted = if postgres { atomic(tx, |tx| insert(tx, t)) } else { insert(tx, t) };
            inserted.map_err(|e| {
                log::error!("recording issued token failed: {e}");
                NotRecorded::of(&e)
            })
        });
        Ok(results.collect::<Vec<_>>())
    });
    match attempt {
        Ok(results) => results,
        Err(e) => {
            log::error!("committing issued tokens failed: {e}");
            batch.iter().map(|_| Err(NotRecorded::of(&e))).collect()
        }
    }
}

/// Columns of one `issued_tokens` row, in the order [`insert`] and [`insert_all`] bind them.
const COLUMNS: usize = 8;

/// Inserts every row of `batch` in one statement (all or none).
fn insert_all(db: &Db, batch: &[(IssuedToken, Reply)]) -> Result<()> {
    let mut sql = String::with_capacity(120 + batch.len() * 48);
    sql.push_str(
        "INSERT INTO issued_tokens (jti, job_id, kid, client_id, token_hash, issued_at, expires_at, parent_jti) VALUES ",
    );
    for row in 0..batch.len() {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..COLUMNS {
            if col > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("?{}", row * COLUMNS + col + 1));
        }
        sql.push(')');
    }
    let mut values: Vec<&dyn ToValue> = Vec::with_capacity(batch.len() * COLUMNS);
    for (t, _) in batch {
        values.extend_from_slice(params![
            t.jti,
            t.job_id,
            t.kid,
            t.client_id,
            t.token_hash,
            t.issued_at,
            t.expires_at,
            t.parent_jti
        ]);
    }
    db.execute(&sql, &values)?;
    Ok(())
}

/// Inserts one issued token's row.
pub fn insert(db: &Db, t: &IssuedToken) -> Result<()> {
    db.execute(
        "INSERT INTO issued_tokens (jti, job_id, kid, client_id, token_hash, issued_at, expires_at, parent_jti)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![t.jti, t.job_id, t.kid, t.client_id, t.token_hash, t.issued_at, t.expires_at, t.parent_jti],
    )?;
    Ok(())
}

/// What the server knows about a token it issued.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub job_id: JobId,
    pub kid: String,
    pub client_id: String,
    pub token_hash: Vec<u8>,
    pub expires_at: i64,
    /// When this token, or any token it was exchanged from, was revoked (the earliest).
    pub revoked_at: Option<i64>,
    pub job_status: JobStatus,
    /// The state of the user the job runs as, read with the token: a block counts at once.
    pub user_state: UserState,
    /// The token this one was exchanged from; `None` for a runner-minted token.
    pub parent_jti: Option<Vec<u8>>,
}

/// The token's record, with its job's status and its user's state. A token exchanged from
/// another one also reads its ancestors, so that revoking any of them revokes it too, even when
/// it was recorded after the revocation reached its ancestors' descendants.
pub fn find(db: &Db, jti: &[u8; 16]) -> Result<Option<TokenRecord>> {
    let row = db.query_opt(
        "SELECT t.job_id, t.kid, t.client_id, t.token_hash, t.expires_at, t.revoked_at,
                (SELECT status FROM jobs WHERE id = t.job_id),
                (SELECT state FROM users WHERE id =
                    (SELECT user_id FROM pipelines WHERE id = (SELECT pipeline_id FROM jobs WHERE id = t.job_id))),
                t.parent_jti
         FROM issued_tokens t WHERE t.jti = ?1",
        params![jti],
    )?;
    let Some(r) = row else { return Ok(None) };
    let mut record = TokenRecord {
        job_id: r.get(0)?,
        kid: r.get(1)?,
        client_id: r.get(2)?,
        token_hash: r.get(3)?,
        expires_at: r.get(4)?,
        revoked_at: r.get(5)?,
        job_status: r.parse(6)?,
        user_state: r.parse(7)?,
        parent_jti: r.get(8)?,
    };
    if record.revoked_at.is_none() {
        if let Some(parent) = &record.parent_jti {
            record.revoked_at = ancestor_revoked_at(db, parent)?;
        }
    }
    Ok(Some(record))
}

/// The earliest revocation among `jti` and the tokens it was exchanged from.
fn ancestor_revoked_at(db: &Db, jti: &[u8]) -> Result<Option<i64>> {
    db.query_one(
        "WITH RECURSIVE chain (jti, parent_jti, revoked_at) AS (
                 SELECT jti, parent_jti, revoked_at FROM issued_tokens WHERE jti = ?1
                 UNION ALL
                 SELECT t.jti, t.parent_jti, t.revoked_at FROM issued_tokens t, chain c WHERE t.jti = c.parent_jti
             )
             SELECT min(revoked_at) FROM chain",
        params![jti],
    )?
    .get(0)
}

/// One token of an exchange lineage, with its own revocation (not its ancestors').
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineageRow {
    pub jti: Vec<u8>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub parent_jti: Option<Vec<u8>>,
}

/// Most tokens exchanged from one token that [`lineage`] lists.
pub const MAX_LINEAGE_DESCENDANTS: i64 = 100;

/// `jti`'s exchange lineage: the token and the tokens it was exchanged from up to the
/// runner-minted root (root first), then the tokens exchanged from it at any depth, oldest first,
/// at most [`MAX_LINEAGE_DESCENDANTS`].
pub fn lineage(db: &Db, jti: &[u8; 16]) -> Result<Vec<LineageRow>> {
    let seed = match db.dialect() {
        Dialect::Sqlite => "?1",
        Dialect::Postgres => "CAST(?1 AS BYTEA)",
    };
    let row = |r: &super::db::Row| -> Result<LineageRow> {
        Ok(LineageRow {
            jti: r.get(0)?,
            issued_at: r.get(1)?,
            expires_at: r.get(2)?,
            revoked_at: r.get(3)?,
            parent_jti: r.get(4)?,
        })
    };
    let ancestors = db.query(
        "WITH RECURSIVE chain (jti, parent_jti, depth) AS (
             SELECT jti, parent_jti, 0 FROM issued_tokens WHERE jti = ?1
             UNION ALL
             SELECT t.jti, t.parent_jti, c.depth + 1 FROM issued_tokens t, chain c WHERE t.jti = c.parent_jti
         )
         SELECT t.jti, t.issued_at, t.expires_at, t.revoked_at, t.parent_jti
         FROM chain c JOIN issued_tokens t ON t.jti = c.jti ORDER BY c.depth DESC",
        params![jti],
    )?;
    let descendants = db.query(
        &format!(
            "WITH RECURSIVE tree (jti) AS (
                 SELECT {seed}
                 UNION
                 SELECT t.jti FROM issued_tokens t, tree WHERE t.parent_jti = tree.jti
             )
             SELECT t.jti, t.issued_at, t.expires_at, t.revoked_at, t.parent_jti
             FROM issued_tokens t WHERE t.jti IN (SELECT jti FROM tree) AND t.jti <> ?1
             ORDER BY t.issued_at, t.jti LIMIT ?2"
        ),
        params![jti, MAX_LINEAGE_DESCENDANTS],
    )?;
    ancestors.iter().chain(descendants.iter()).map(row).collect()
}

/// Marks a token and every token exchanged from it, at any depth, revoked (idempotent).
pub fn revoke(db: &Db, jti: &[u8; 16], now: i64) -> Result<()> {
    let sql = match db.dialect() {
        Dialect::Sqlite => {
            "WITH RECURSIVE tree (jti) AS (
                 SELECT ?1
                 UNION
                 SELECT t.jti FROM issued_tokens t, tree WHERE t.parent_jti = tree.jti
             )
             UPDATE issued_tokens SET revoked_at = ?2 WHERE jti IN tree AND revoked_at IS NULL"
        }
        // PostgreSQL has no `IN table`, and needs the seed's type spelled out.
        Dialect::Postgres => {
            "WITH RECURSIVE tree (jti) AS (
                 SELECT CAST(?1 AS BYTEA)
                 UNION
                 SELECT t.jti FROM issued_tokens t, tree WHERE t.parent_jti = tree.jti
             )
             UPDATE issued_tokens SET revoked_at = ?2
             WHERE jti IN (SELECT jti FROM tree) AND revoked_at IS NULL"
        }
    };
    db.execute(sql, params![jti, now])?;
    Ok(())
}

/// The latest expiry of any token `kid` signed, if it signed any.
pub fn last_expiry(db: &Db, kid: &str) -> Result<Option<i64>> {
    db.query_one("SELECT max(expires_at) FROM issued_tokens WHERE kid = ?1", params![kid])?.get(0)
}

/// What the API shows of an issued token: metadata only, never the token or its hash.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenMeta {
    /// The `jti` claim (a UUID).
    pub jti: String,
    pub kid: String,
    pub client_id: String,
    #[serde(serialize_with = "crate::domain::time::ser")]
    pub issued_at: i64,
    #[serde(serialize_with = "crate::domain::time::ser")]
    pub expires_at: i64,
    /// When this token itself was revoked (a job's finish revokes all its tokens).
    #[serde(serialize_with = "crate::domain::time::ser_opt")]
    pub revoked_at: Option<i64>,
    /// The `jti` of the token this one was exchanged from.
    pub parent_jti: Option<String>,
}

fn uuid_text(bytes: &[u8]) -> Result<String> {
    uuid::Uuid::from_slice(bytes)
        .map(|u| u.to_string())
        .map_err(|e| StoreError::Database(format!("a jti is not 16 bytes: {e}")))
}

/// One page of the tokens issued for job `job`, oldest first (a UUIDv7 `jti` is time-ordered).
/// An unknown job is `NotFound`.
pub fn list_for_job(db: &Db, job: JobId, page: super::Page) -> Result<super::Listed<TokenMeta>> {
    super::jobs::get_job(db, job)?;
    super::page::fetch(
        db,
        "jti, kid, client_id, issued_at, expires_at, revoked_at, parent_jti",
        "issued_tokens WHERE job_id = ?1",
        "jti",
        params![job],
        page,
        |r| {
            Ok(TokenMeta {
                jti: uuid_text(&r.get::<Vec<u8>>(0)?)?,
                kid: r.get(1)?,
                client_id: r.get(2)?,
                issued_at: r.get(3)?,
                expires_at: r.get(4)?,
                revoked_at: r.get(5)?,
                parent_jti: r.get::<Option<Vec<u8>>>(6)?.map(|p| uuid_text(&p)).transpose()?,
            })
        },
    )
}
