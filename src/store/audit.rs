//! Audit events (issue 9 point 3): who changed what, from what, to what, and when.
//!
//! [`record`] is called by the use case inside the SAME transaction as the change it records
//! (`atomic`), so a refused or failed change records nothing and every recorded event has its
//! change. The table is append-only: triggers refuse UPDATE and DELETE on both backends
//! (`migrations/0008_audit_events.sql`, `migrations/postgres/0002_audit_events.sql`).
//!
//! `before` and `after` hold public fields only. Callers pass the API's own response rows (which
//! never carry a secret, a hash or key material) or a JSON object they build from public fields.

use serde::Serialize;
use serde_json::Value as Json;

use super::db::{params, Db, Row, ToValue, Value};
use super::{Listed, Page, Result, StoreError};
use crate::domain::UserId;

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The admin credential.
    Admin,
    /// A user by personal access token.
    User(UserId),
    /// A runner by its client credentials.
    Runner(i64),
    /// The server itself (the scheduled key rotation).
    System,
    /// An operator at the command line (`jobtoken keys …`).
    Cli,
}

impl Actor {
    pub fn kind(self) -> &'static str {
        match self {
            Actor::Admin => "admin",
            Actor::User(_) => "user",
            Actor::Runner(_) => "runner",
            Actor::System => "system",
            Actor::Cli => "cli",
        }
    }

    fn id(self) -> Option<i64> {
        match self {
            Actor::User(id) | Actor::Runner(id) => Some(id),
            Actor::Admin | Actor::System | Actor::Cli => None,
        }
    }

    /// The actor's name as recorded: a user's username, a runner's client id, else its kind.
    fn name(self, db: &Db) -> Result<String> {
        let found = match self {
            Actor::User(id) => db.query_opt("SELECT username FROM users WHERE id = ?1", params![id])?,
            Actor::Runner(id) => db.query_opt("SELECT client_id FROM runners WHERE id = ?1", params![id])?,
            Actor::Admin | Actor::System | Actor::Cli => None,
        };
        Ok(match found {
            Some(row) => row.get(0)?,
            None => self.kind().to_owned(),
        })
    }
}

/// What a change was made to: `target_type` (`project`, `group`, `user`, `runner`, …), its id and
/// its path or name when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: &'static str,
    pub id: Option<i64>,
    pub path: Option<String>,
}

impl Target {
    pub fn new(kind: &'static str, id: impl Into<Option<i64>>, path: impl Into<Option<String>>) -> Target {
        Target { kind, id: id.into(), path: path.into() }
    }
}

/// One change to record.
#[derive(Debug, Clone)]
pub struct Event {
    pub actor: Actor,
    /// Dotted, past tense: `job_token_scope.allowlist.added`, `user.state_changed`, ….
    pub action: &'static str,
    pub target: Target,
    /// The project the event belongs to (its Maintainers' list), if any.
    pub project_id: Option<i64>,
    /// The group the event belongs to (its Maintainers' list), if any.
    pub group_id: Option<i64>,
    pub before: Option<Json>,
    pub after: Option<Json>,
    pub at: i64,
}

impl Event {
    pub fn new(actor: Actor, action: &'static str, target: Target, at: i64) -> Event {
        Event { actor, action, target, project_id: None, group_id: None, before: None, after: None, at }
    }

    /// The event belongs to project `id`.
    pub fn of_project(mut self, id: i64) -> Event {
        self.project_id = Some(id);
        self
    }

    /// The event belongs to group `id`.
    pub fn of_group(mut self, id: i64) -> Event {
        self.group_id = Some(id);
        self
    }

    /// The state before the change (public fields only).
    pub fn before(mut self, value: impl Serialize) -> Event {
        self.before = Some(to_json(value));
        self
    }

    /// The state after the change (public fields only).
    pub fn after(mut self, value: impl Serialize) -> Event {
        self.after = Some(to_json(value));
        self
    }
}

fn to_json(value: impl Serialize) -> Json {
    serde_json::to_value(value).unwrap_or(Json::Null)
}

/// Appends `event`. Call it inside the transaction of the change it records.
pub fn record(db: &Db, event: &Event) -> Result<()> {
    let name = event.actor.name(db)?;
    let text = |v: &Option<Json>| v.as_ref().map(Json::to_string);
    db.execute(
        "INSERT INTO audit_events (created_at, actor_type, actor_id, actor_name, action, target_type, target_id,
             target_path, project_id, group_id, before_json, after_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            event.at,
            event.actor.kind(),
            event.actor.id(),
            name,
            event.action,
            event.target.kind,
            event.target.id,
            event.target.path,
            event.project_id,
            event.group_id,
            text(&event.before),
            text(&event.after)
        ],
    )?;
    Ok(())
}

/// Which events a list shows; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub target_type: Option<String>,
    pub target_id: Option<i64>,
    /// `(actor_type, actor_id)`; `None` as id matches every actor of that type.
    pub actor: Option<(String, Option<i64>)>,
    /// Strictly after, in unix seconds.
    pub created_after: Option<i64>,
    /// Strictly before, in unix seconds.
    pub created_before: Option<i64>,
    pub project_id: Option<i64>,
    pub group_id: Option<i64>,
}

/// The author of an event, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Author {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Option<i64>,
    pub name: String,
}

/// `before` and `after` of an event.
#[derive(Debug, Clone, Serialize)]
pub struct Details {
    pub before: Option<Json>,
    pub after: Option<Json>,
}

/// A recorded event, in the shape of GitLab's audit events.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub author: Author,
    pub entity_type: String,
    pub entity_id: Option<i64>,
    pub entity_path: Option<String>,
    pub action: String,
    pub project_id: Option<i64>,
    pub group_id: Option<i64>,
    pub details: Details,
    #[serde(serialize_with = "crate::domain::time::ser")]
    pub created_at: i64,
}

const COLUMNS: &str = "id, created_at, actor_type, actor_id, actor_name, action, target_type, target_id, target_path, \
     project_id, group_id, before_json, after_json";

fn json_col(r: &Row, idx: usize) -> Result<Option<Json>> {
    r.parse_opt_with(idx, |text| serde_json::from_str::<Json>(text))
}

fn from_row(r: &Row) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: r.get(0)?,
        created_at: r.get(1)?,
        author: Author { kind: r.get(2)?, id: r.get(3)?, name: r.get(4)? },
        action: r.get(5)?,
        entity_type: r.get(6)?,
        entity_id: r.get(7)?,
        entity_path: r.get(8)?,
        project_id: r.get(9)?,
        group_id: r.get(10)?,
        details: Details { before: json_col(r, 11)?, after: json_col(r, 12)? },
    })
}

/// One page of the events `filter` matches, newest first (by id, so the order is stable), and
/// how many it matches in all.
pub fn list(db: &Db, filter: &Filter, page: Page) -> Result<Listed<AuditEvent>> {
    let mut clauses: Vec<String> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    let mut add = |clause: &str, value: Value| {
        values.push(value);
        clauses.push(format!("{clause} ?{}", values.len()));
    };
    if let Some(t) = &filter.target_type {
        add("target_type =", Value::Text(t.clone()));
    }
    if let Some(id) = filter.target_id {
        add("target_id =", Value::Int(id));
    }
    if let Some((kind, id)) = &filter.actor {
        add("actor_type =", Value::Text(kind.clone()));
        if let Some(id) = id {
            add("actor_id =", Value::Int(*id));
        }
    }
    if let Some(at) = filter.created_after {
        add("created_at >", Value::Int(at));
    }
    if let Some(at) = filter.created_before {
        add("created_at <", Value::Int(at));
    }
    if let Some(id) = filter.project_id {
        add("project_id =", Value::Int(id));
    }
    if let Some(id) = filter.group_id {
        add("group_id =", Value::Int(id));
    }
    let condition = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
    let bound: Vec<&dyn ToValue> = values.iter().map(|v| v as &dyn ToValue).collect();
    let total: i64 = db.query_one(&format!("SELECT count(*) FROM audit_events {condition}"), &bound)?.get(0)?;
    let (limit, offset) = (Value::Int(page.limit()), Value::Int(page.offset()));
    let mut paged = bound.clone();
    paged.push(&limit);
    paged.push(&offset);
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_events {condition} ORDER BY id DESC LIMIT ?{} OFFSET ?{}",
        bound.len() + 1,
        bound.len() + 2
    );
    let items = db.query(&sql, &paged)?.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    let total = u64::try_from(total).map_err(|_| StoreError::Database("negative count".into()))?;
    Ok(Listed { total, items })
}

/// Runs `change` in one transaction and records the event it returns in that same transaction.
/// An event whose `before` equals its `after` changed nothing and is not recorded.
pub fn audited<T>(db: &Db, change: impl FnOnce(&Db) -> Result<(T, Event)>) -> Result<T> {
    super::atomic(db, |tx| {
        let (value, event) = change(tx)?;
        if event.before.is_none() || event.before != event.after {
            record(tx, &event)?;
        }
        Ok(value)
    })
}
