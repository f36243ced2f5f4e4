//! Job token scope storage: allowlist entries, outbound entries, the authorization log, and the
//! per-project / per-group settings (SPEC §4.3–§4.5).

use serde::Serialize;

use super::cache::{cached, Key as CacheKey};
use super::db::{params, Db, Row};
use super::{atomic, atomic_with, Listed, Page, Result, StoreError};
use crate::domain::{GroupId, ProjectId, ScopeSet, UserId};

/// Entries per owner, counted apart for project and group sources (SPEC §4.3).
pub const MAX_ENTRIES: i64 = 200;

pub use crate::policy::Namespace as Node;

fn kind(node: Node) -> &'static str {
    match node {
        Node::Project(_) => "project",
        Node::Group(_) => "group",
    }
}

/// The node's kind as a number, for cache keys.
fn kind_code(node: Node) -> i64 {
    match node {
        Node::Project(_) => 0,
        Node::Group(_) => 1,
    }
}

fn id(node: Node) -> i64 {
    match node {
        Node::Project(id) | Node::Group(id) => id,
    }
}

fn node(kind: &str, id: i64) -> Result<Node> {
    match kind {
        "project" => Ok(Node::Project(id)),
        "group" => Ok(Node::Group(id)),
        other => Err(StoreError::Database(format!("unknown namespace kind {other:?}"))),
    }
}

/// What an entry grants: listed scopes, or `None` for default permissions.
pub type EntryScopes = Option<ScopeSet>;

fn scopes_to_sql(scopes: EntryScopes) -> Option<String> {
    scopes.map(ScopeSet::to_space_separated)
}

fn scopes_from_sql(text: Option<String>, idx: usize) -> Result<EntryScopes> {
    text.map(|t| ScopeSet::parse_space_separated(&t).map_err(|e| StoreError::Database(format!("column {idx}: {e}"))))
        .transpose()
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    #[serde(skip)]
    pub owner: Node,
    #[serde(skip)]
    pub source: Node,
    /// `None`: default permissions.
    #[serde(skip)]
    pub scopes: EntryScopes,
    pub autopopulated: bool,
    pub added_by: Option<UserId>,
    #[serde(serialize_with = "crate::domain::time::ser")]
    pub created_at: i64,
}

const ENTRY_COLUMNS: &str = "owner_kind, owner_id, source_kind, source_id, scopes, autopopulated, added_by, created_at";

fn entry_from_row(r: &Row) -> Result<Entry> {
    Ok(Entry {
        owner: node(&r.get::<String>(0)?, r.get(1)?)?,
        source: node(&r.get::<String>(2)?, r.get(3)?)?,
        scopes: scopes_from_sql(r.get(4)?, 4)?,
        autopopulated: r.get(5)?,
        added_by: r.get(6)?,
        created_at: r.get(7)?,
    })
}

/// Adds an entry. A duplicate is a `Conflict`; the 201st entry of its kind is [`InsertError::Full`].
pub fn insert_entry(
    db: &Db,
    owner: Node,
    source: Node,
    scopes: EntryScopes,
    autopopulated: bool,
    added_by: Option<UserId>,
    now: i64,
) -> Result<Entry, InsertError> {
    atomic_with(db, |tx| {
        let count = count_entries(tx, owner, kind(source))?;
        if count >= MAX_ENTRIES {
            return Err(InsertError::Full(LimitReached { kind: kind(source), limit: MAX_ENTRIES }));
        }
        tx.execute(
            &format!("INSERT INTO allowlist_entries ({ENTRY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
            params![
                kind(owner),
                id(owner),
                kind(source),
                id(source),
                scopes_to_sql(scopes),
                autopopulated,
                added_by,
                now
            ],
        )
        .map_err(|e| match e {
            StoreError::Unique(_) => {
                StoreError::Conflict(format!("the {} {} is already on the allowlist", kind(source), id(source)))
            }
            other => other,
        })?;
        Ok(get_entry(tx, owner, source)?.ok_or_else(|| StoreError::NotFound("entry vanished".into()))?)
    })
}

/// Why an entry was not added.
#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    #[error("the limit of {} {} entries is reached", .0.limit, .0.kind)]
    Full(LimitReached),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The entry limit of one kind was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitReached {
    pub kind: &'static str,
    pub limit: i64,
}

pub fn count_entries(db: &Db, owner: Node, source_kind: &str) -> Result<i64> {
    db.query_one(
        "SELECT count(*) FROM allowlist_entries WHERE owner_kind = ?1 AND owner_id = ?2 AND source_kind = ?3",
        params![kind(owner), id(owner), source_kind],
    )?
    .get(0)
}

pub fn get_entry(db: &Db, owner: Node, source: Node) -> Result<Option<Entry>> {
    let key = || CacheKey::ids("allowlist_entry", vec![kind_code(owner), id(owner), kind_code(source), id(source)]);
    cached(db, key, || load_entry(db, owner, source))
}

fn load_entry(db: &Db, owner: Node, source: Node) -> Result<Option<Entry>> {
    db.query_opt(
        &format!(
            "SELECT {ENTRY_COLUMNS} FROM allowlist_entries
             WHERE owner_kind = ?1 AND owner_id = ?2 AND source_kind = ?3 AND source_id = ?4"
        ),
        params![kind(owner), id(owner), kind(source), id(source)],
    )?
    .map(|r| entry_from_row(&r))
    .transpose()
}

/// The entries of `owner` whose source is one of `sources` (point lookups on the primary key).
pub fn entries_for_sources(db: &Db, owner: Node, sources: &[Node]) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for source in sources {
        if let Some(entry) = get_entry(db, owner, *source)? {
            out.push(entry);
        }
    }
    Ok(out)
}

/// One page of `owner`'s entries whose source is of `source_kind`, by source id.
pub fn list_entries(db: &Db, owner: Node, source_kind: &str, page: Page) -> Result<Listed<Entry>> {
    super::page::fetch(
        db,
        ENTRY_COLUMNS,
        "allowlist_entries WHERE owner_kind = ?1 AND owner_id = ?2 AND source_kind = ?3",
        "source_id",
        params![kind(owner), id(owner), source_kind],
        page,
        entry_from_row,
    )
}

pub fn update_entry(db: &Db, owner: Node, source: Node, scopes: EntryScopes) -> Result<Entry> {
    let n = db.execute(
        "UPDATE allowlist_entries SET scopes = ?5
         WHERE owner_kind = ?1 AND owner_id = ?2 AND source_kind = ?3 AND source_id = ?4",
        params![kind(owner), id(owner), kind(source), id(source), scopes_to_sql(scopes)],
    )?;
    if n == 0 {
        return Err(not_on_allowlist(source));
    }
    get_entry(db, owner, source)?.ok_or_else(|| not_on_allowlist(source))
}

pub fn delete_entry(db: &Db, owner: Node, source: Node) -> Result<()> {
    let n = db.execute(
        "DELETE FROM allowlist_entries WHERE owner_kind = ?1 AND owner_id = ?2 AND source_kind = ?3 AND source_id = ?4",
        params![kind(owner), id(owner), kind(source), id(source)],
    )?;
    match n {
        0 => Err(not_on_allowlist(source)),
        _ => Ok(()),
    }
}

/// Every autopopulated entry of `owner` (at most 400: the per-owner limits), by source.
pub fn autopopulated_entries(db: &Db, owner: Node) -> Result<Vec<Entry>> {
    db.query(
        &format!(
            "SELECT {ENTRY_COLUMNS} FROM allowlist_entries
             WHERE owner_kind = ?1 AND owner_id = ?2 AND autopopulated = 1 ORDER BY source_kind DESC, source_id"
        ),
        params![kind(owner), id(owner)],
    )?
    .iter()
    .map(entry_from_row)
    .collect()
}

pub fn delete_autopopulated(db: &Db, owner: Node) -> Result<u64> {
    db.execute(
        "DELETE FROM allowlist_entries WHERE owner_kind = ?1 AND owner_id = ?2 AND autopopulated = 1",
        params![kind(owner), id(owner)],
    )
}

/// The `NotFound` of an entry that does not exist.
pub fn not_on_allowlist(source: Node) -> StoreError {
    StoreError::NotFound(format!("the {} {} is not on the allowlist", kind(source), id(source)))
}

// ---- outbound entries ----

#[derive(Debug, Clone, Serialize)]
pub struct OutboundEntry {
    #[serde(skip)]
    pub project_id: ProjectId,
    #[serde(skip)]
    pub target: Node,
    pub scopes: ScopeSet,
    #[serde(serialize_with = "crate::domain::time::ser")]
    pub created_at: i64,
}

pub fn insert_outbound(db: &Db, project: ProjectId, target: Node, scopes: ScopeSet, now: i64) -> Result<()> {
    db.execute(
        "INSERT INTO outbound_entries (project_id, target_kind, target_id, scopes, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![project, kind(target), id(target), scopes.to_space_separated(), now],
    )
    .map_err(|e| match e {
        StoreError::Unique(_) => {
            StoreError::Conflict(format!("the {} {} is already an outbound target", kind(target), id(target)))
        }
        other => other,
    })?;
    Ok(())
}

fn outbound_from_row(r: &Row) -> Result<OutboundEntry> {
    Ok(OutboundEntry {
        project_id: r.get(0)?,
        target: node(&r.get::<String>(1)?, r.get(2)?)?,
        scopes: scopes_from_sql(Some(r.get(3)?), 3)?.unwrap_or_default(),
        created_at: r.get(4)?,
    })
}

/// The outbound entries of `project` that name projects (what minting adds to a token).
pub fn outbound_projects(db: &Db, project: ProjectId) -> Result<Vec<OutboundEntry>> {
    cached(db, || CacheKey::ids("outbound_projects", vec![project]), || load_outbound_projects(db, project))
}

fn load_outbound_projects(db: &Db, project: ProjectId) -> Result<Vec<OutboundEntry>> {
    db.query(
        "SELECT project_id, target_kind, target_id, scopes, created_at FROM outbound_entries
         WHERE project_id = ?1 AND target_kind = 'project'",
        params![project],
    )?
    .iter()
    .map(outbound_from_row)
    .collect()
}

pub fn list_outbound(db: &Db, project: ProjectId) -> Result<Vec<OutboundEntry>> {
    db.query(
        "SELECT project_id, target_kind, target_id, scopes, created_at FROM outbound_entries
         WHERE project_id = ?1 ORDER BY target_kind, target_id",
        params![project],
    )?
    .iter()
    .map(outbound_from_row)
    .collect()
}

/// One page of `project`'s outbound entries: project targets, then group targets, each by id.
pub fn list_outbound_page(db: &Db, project: ProjectId, page: Page) -> Result<Listed<OutboundEntry>> {
    super::page::fetch(
        db,
        "project_id, target_kind, target_id, scopes, created_at",
        "outbound_entries WHERE project_id = ?1",
        "target_kind DESC, target_id",
        params![project],
        page,
        outbound_from_row,
    )
}

/// The outbound entries of `project` that cover one of `targets` (point lookups).
pub fn outbound_covering(db: &Db, project: ProjectId, targets: &[Node]) -> Result<Vec<OutboundEntry>> {
    let key = || {
        let mut ids = vec![project];
        ids.extend(targets.iter().flat_map(|t| [kind_code(*t), id(*t)]));
        CacheKey::ids("outbound_covering", ids)
    };
    cached(db, key, || load_outbound_covering(db, project, targets))
}

fn load_outbound_covering(db: &Db, project: ProjectId, targets: &[Node]) -> Result<Vec<OutboundEntry>> {
    let mut out = Vec::new();
    for t in targets {
        let found = db.query_opt(
            "SELECT project_id, target_kind, target_id, scopes, created_at FROM outbound_entries
             WHERE project_id = ?1 AND target_kind = ?2 AND target_id = ?3",
            params![project, kind(*t), id(*t)],
        )?;
        if let Some(row) = found {
            out.push(outbound_from_row(&row)?);
        }
    }
    Ok(out)
}

pub fn delete_outbound(db: &Db, project: ProjectId, target: Node) -> Result<()> {
    let n = db.execute(
        "DELETE FROM outbound_entries WHERE project_id = ?1 AND target_kind = ?2 AND target_id = ?3",
        params![project, kind(target), id(target)],
    )?;
    match n {
        0 => Err(not_an_outbound_target(target)),
        _ => Ok(()),
    }
}

/// The `NotFound` of an outbound entry that does not exist.
pub fn not_an_outbound_target(target: Node) -> StoreError {
    StoreError::NotFound(format!("the {} {} is not an outbound target", kind(target), id(target)))
}

// ---- settings ----

/// An explicit change of the project's inbound setting; autopopulate no longer owns it.
pub fn set_project_inbound(db: &Db, project: ProjectId, value: Option<bool>) -> Result<()> {
    db.execute(
        "UPDATE projects SET inbound_enabled = ?2, autopopulate_switched_inbound = 0, inbound_before_autopopulate = NULL
         WHERE id = ?1",
        params![project, value],
    )?;
    Ok(())
}

/// Autopopulate switches the project's inbound allowlist on, remembering the setting it
/// replaced (once: a second autopopulate keeps the first one's memory). An explicit `true` is
/// left alone and not remembered.
pub fn switch_inbound_on_for_autopopulate(db: &Db, project: ProjectId) -> Result<()> {
    db.execute(
        "UPDATE projects SET inbound_before_autopopulate = CASE autopopulate_switched_inbound
                                 WHEN 1 THEN inbound_before_autopopulate ELSE inbound_enabled END,
                             autopopulate_switched_inbound = 1, inbound_enabled = 1
         WHERE id = ?1 AND (autopopulate_switched_inbound = 1 OR inbound_enabled IS NULL OR inbound_enabled = 0)",
        params![project],
    )?;
    Ok(())
}

/// Puts back the inbound setting autopopulate replaced, if it still owns it.
pub fn restore_inbound_after_autopopulate(db: &Db, project: ProjectId) -> Result<()> {
    db.execute(
        "UPDATE projects SET inbound_enabled = inbound_before_autopopulate, autopopulate_switched_inbound = 0,
                             inbound_before_autopopulate = NULL
         WHERE id = ?1 AND autopopulate_switched_inbound = 1",
        params![project],
    )?;
    Ok(())
}

pub fn set_project_outbound(db: &Db, project: ProjectId, value: bool) -> Result<()> {
    db.execute("UPDATE projects SET outbound_enabled = ?2 WHERE id = ?1", params![project, value])?;
    Ok(())
}

pub fn set_group_inbound(db: &Db, group: GroupId, value: Option<bool>) -> Result<()> {
    db.execute("UPDATE groups SET inbound_enabled = ?2 WHERE id = ?1", params![group, value])?;
    Ok(())
}

pub fn set_group_elevation(db: &Db, group: GroupId, value: Option<bool>) -> Result<()> {
    db.execute("UPDATE groups SET job_token_elevation_allowed = ?2 WHERE id = ?1", params![group, value])?;
    Ok(())
}

// ---- authorization log ----

#[derive(Debug, Clone, Serialize)]
pub struct Authorization {
    pub source_project_id: ProjectId,
    pub source_project_path: String,
    #[serde(serialize_with = "crate::domain::time::ser")]
    pub last_authorized_at: i64,
    pub count: i64,
    /// The scopes the source used that only an allowlist entry grants (visibility reads left out).
    pub scopes: ScopeSet,
}

/// Accesses of `target` by jobs of `source` to add to the authorization log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    pub target: ProjectId,
    pub source: ProjectId,
    pub last_authorized_at: i64,
    pub count: i64,
    pub scopes: ScopeSet,
}

/// Adds `count` authorizations of (target, source) seen up to `at`.
pub fn log_authorizations(db: &Db, rows: &[LogRow]) -> Result<()> {
    atomic(db, |tx| {
        for row in rows {
            // Inside the write transaction: a union that no other writer can interleave with.
            let logged: Option<String> = tx
                .query_opt(
                    "SELECT scopes FROM authorization_log WHERE target_project_id = ?1 AND source_project_id = ?2",
                    params![row.target, row.source],
                )?
                .map(|r| r.get(0))
                .transpose()?;
            let scopes = scopes_from_sql(logged, 0)?.unwrap_or_default().union(row.scopes);
            tx.execute(
                "INSERT INTO authorization_log (target_project_id, source_project_id, last_authorized_at, count, scopes)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (target_project_id, source_project_id) DO UPDATE SET
                     last_authorized_at = CASE WHEN excluded.last_authorized_at > authorization_log.last_authorized_at
                                               THEN excluded.last_authorized_at
                                               ELSE authorization_log.last_authorized_at END,
                     count = authorization_log.count + excluded.count,
                     scopes = excluded.scopes",
                params![
                row.target,
                row.source,
                row.last_authorized_at,
                row.count,
                    scopes.to_space_separated()
                ],
            )?;
        }
        Ok(())
    })
}

const AUTHORIZATION_COLUMNS: &str =
    "l.source_project_id, p.path_with_namespace, l.last_authorized_at, l.count, l.scopes";
const AUTHORIZATIONS_OF: &str =
    "authorization_log l JOIN projects p ON p.id = l.source_project_id WHERE l.target_project_id = ?1";

fn authorization_from_row(r: &Row) -> Result<Authorization> {
    Ok(Authorization {
        source_project_id: r.get(0)?,
        source_project_path: r.get(1)?,
        last_authorized_at: r.get(2)?,
        count: r.get(3)?,
        scopes: scopes_from_sql(Some(r.get(4)?), 4)?.unwrap_or_default(),
    })
}

/// The whole authorization log of `target`, by source path (what autopopulate reads).
pub fn list_authorizations(db: &Db, target: ProjectId) -> Result<Vec<Authorization>> {
    let sql = format!("SELECT {AUTHORIZATION_COLUMNS} FROM {AUTHORIZATIONS_OF} ORDER BY p.path_with_namespace");
    db.query(&sql, params![target])?.iter().map(authorization_from_row).collect()
}

/// One page of `target`'s authorization log, by source project id.
pub fn list_authorizations_page(db: &Db, target: ProjectId, page: Page) -> Result<Listed<Authorization>> {
    let order = "l.source_project_id";
    super::page::fetch(
        db,
        AUTHORIZATION_COLUMNS,
        AUTHORIZATIONS_OF,
        order,
        params![target],
        page,
        authorization_from_row,
    )
}
