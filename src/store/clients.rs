//! OAuth clients: runners and resource servers. Secrets arrive here already hashed.

use serde::Serialize;

use super::db::{params, Db, Dialect, Row, Value};
use super::{atomic, namespaces, Listed, OptionalExt, Page, Result, StoreError};
use crate::domain::{GroupId, ProjectId, RunnerId, RunnerType};
use crate::policy::RunnerScope;

#[derive(Debug, Clone, Serialize)]
pub struct Runner {
    pub id: RunnerId,
    pub client_id: String,
    pub runner_type: RunnerType,
    pub group_id: Option<GroupId>,
    pub project_ids: Vec<ProjectId>,
    pub maximum_timeout: Option<i64>,
    pub description: String,
    pub paused: bool,
}

/// What a new runner serves and how it is limited.
#[derive(Debug, Clone)]
pub struct NewRunner {
    pub runner_type: RunnerType,
    pub group_id: Option<GroupId>,
    pub project_ids: Vec<ProjectId>,
    pub maximum_timeout: Option<i64>,
    pub description: String,
}

/// An authenticated runner, as the token endpoint sees it.
#[derive(Debug, Clone)]
pub struct RunnerAuth {
    pub id: RunnerId,
    pub client_id: String,
    pub runner_type: RunnerType,
    pub group_id: Option<GroupId>,
    pub maximum_timeout: Option<i64>,
    pub paused: bool,
}

pub fn insert_runner(db: &Db, new: &NewRunner, client_id: &str, secret_hash: &[u8], now: i64) -> Result<Runner> {
    if let Some(group) = new.group_id {
        namespaces::get_group(db, group)?;
    }
    for project in &new.project_ids {
        namespaces::get_project(db, *project)?;
    }
    let id = atomic(db, |tx| {
        let id: RunnerId = tx
            .query_one(
                "INSERT INTO runners (client_id, secret_hash, description, maximum_timeout, runner_type, group_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
                params![
                    client_id,
                    secret_hash,
                    new.description,
                    new.maximum_timeout,
                    new.runner_type.as_str(),
                    new.group_id,
                    now
                ],
            )?
            .get(0)?;
        for project in &new.project_ids {
            tx.execute(
                "INSERT INTO runner_projects (runner_id, project_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![id, project],
            )?;
        }
        Ok(id)
    })?;
    get_runner(db, id)
}

const RUNNER_COLUMNS: &str = "id, client_id, runner_type, group_id, maximum_timeout, description, paused";

/// A runner row; `project_ids` are filled in by the caller.
fn runner_from_row(r: &Row) -> Result<Runner> {
    Ok(Runner {
        id: r.get(0)?,
        client_id: r.get(1)?,
        runner_type: r.parse(2)?,
        group_id: r.get(3)?,
        project_ids: Vec::new(),
        maximum_timeout: r.get(4)?,
        description: r.get(5)?,
        paused: r.get(6)?,
    })
}

pub fn get_runner(db: &Db, id: RunnerId) -> Result<Runner> {
    let r = db
        .query_opt(&format!("SELECT {RUNNER_COLUMNS} FROM runners WHERE id = ?1"), params![id])
        .or_not_found(|| format!("runner {id} not found"))?;
    let project_ids = db
        .query("SELECT project_id FROM runner_projects WHERE runner_id = ?1 ORDER BY project_id", params![id])?
        .iter()
        .map(|p| p.get(0))
        .collect::<Result<_>>()?;
    Ok(Runner { project_ids, ..runner_from_row(&r)? })
}

/// One page of the runners, ordered by id, each with the projects it serves (one more query for
/// the whole page).
pub fn list_runners(db: &Db, page: Page) -> Result<Listed<Runner>> {
    let mut listed = super::page::fetch(db, RUNNER_COLUMNS, "runners", "id", params![], page, runner_from_row)?;
    let (Some(first), Some(last)) = (listed.items.first().map(|r| r.id), listed.items.last().map(|r| r.id)) else {
        return Ok(listed);
    };
    let rows = db.query(
        "SELECT runner_id, project_id FROM runner_projects WHERE runner_id >= ?1 AND runner_id <= ?2
         ORDER BY runner_id, project_id",
        params![first, last],
    )?;
    for row in rows {
        let (runner, project): (RunnerId, ProjectId) = (row.get(0)?, row.get(1)?);
        if let Some(r) = listed.items.iter_mut().find(|r| r.id == runner) {
            r.project_ids.push(project);
        }
    }
    Ok(listed)
}

/// Deletes runner `id` and its credentials in one transaction. Refused (`Conflict`, naming
/// them) while jobs it started are still running: their tokens are live, and finishing them
/// (which revokes the tokens) comes first. Finished jobs keep their history with no runner.
pub fn delete_runner(db: &Db, id: RunnerId) -> Result<()> {
    atomic(db, |tx| {
        get_runner(tx, id)?;
        let running: Vec<String> = tx
            .query(
                "SELECT CAST(id AS TEXT) FROM jobs WHERE runner_id = ?1 AND status IN ('pending', 'running') ORDER BY id",
                params![id],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect::<Result<_>>()?;
        if !running.is_empty() {
            let shown = running.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
            let more = if running.len() > 10 { format!(" and {} more", running.len() - 10) } else { String::new() };
            return Err(StoreError::Conflict(format!(
                "runner {id} cannot be deleted: it still runs {} job{} ({shown}{more}) that hold live tokens; \
                 finish them first",
                running.len(),
                if running.len() == 1 { "" } else { "s" },
            )));
        }
        tx.execute("UPDATE jobs SET runner_id = NULL WHERE runner_id = ?1", params![id])?;
        tx.execute("DELETE FROM runner_projects WHERE runner_id = ?1", params![id])?;
        tx.execute("DELETE FROM runners WHERE id = ?1", params![id])?;
        Ok(())
    })
}

/// The changeable fields of a runner; `None` leaves a field as it is. `maximum_timeout` is
/// `Some(None)` to clear the limit.
#[derive(Debug, Clone, Default)]
pub struct RunnerPatch {
    pub paused: Option<bool>,
    pub maximum_timeout: Option<Option<i64>>,
    pub description: Option<String>,
}

pub fn update_runner(db: &Db, id: RunnerId, patch: &RunnerPatch) -> Result<Runner> {
    atomic(db, |tx| {
        let current = get_runner(tx, id)?;
        tx.execute(
            "UPDATE runners SET paused = ?2, maximum_timeout = ?3, description = ?4 WHERE id = ?1",
            params![
                id,
                patch.paused.unwrap_or(current.paused),
                patch.maximum_timeout.unwrap_or(current.maximum_timeout),
                patch.description.as_ref().unwrap_or(&current.description),
            ],
        )?;
        get_runner(tx, id)
    })
}

/// What the runner serves, as far as `project_id` is concerned: a project runner's list is
/// loaded only for that project.
pub fn runner_scope(db: &Db, runner: &RunnerAuth, project_id: ProjectId) -> Result<RunnerScope> {
    Ok(match (runner.runner_type, runner.group_id) {
        (RunnerType::Instance, _) => RunnerScope::Instance,
        (RunnerType::Group, Some(group)) => RunnerScope::Group(group),
        (RunnerType::Group, None) => RunnerScope::Projects(Vec::new()),
        (RunnerType::Project, _) => {
            let found: Option<i64> = db
                .query_opt(
                    "SELECT project_id FROM runner_projects WHERE runner_id = ?1 AND project_id = ?2",
                    params![runner.id, project_id],
                )?
                .map(|r| r.get(0))
                .transpose()?;
            RunnerScope::Projects(found.into_iter().collect())
        }
    })
}

/// Replaces runner `id`'s secret hash: from the commit on, only the new secret authenticates.
pub fn set_runner_secret(db: &Db, id: RunnerId, secret_hash: &[u8]) -> Result<Runner> {
    let n = db.execute("UPDATE runners SET secret_hash = ?2 WHERE id = ?1", params![id, secret_hash])?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("runner {id} not found")));
    }
    get_runner(db, id)
}

/// A resource server without its secret. `audience` is empty when it has none of its own.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceServer {
    pub id: i64,
    pub name: String,
    pub client_id: String,
    pub audience: Vec<String>,
    pub disabled: bool,
    #[serde(serialize_with = "crate::domain::time::ser")]
    pub created_at: i64,
}

const RESOURCE_SERVER_COLUMNS: &str = "id, name, client_id, audience, disabled, created_at";

fn resource_server_from_row(r: &Row) -> Result<ResourceServer> {
    Ok(ResourceServer {
        id: r.get(0)?,
        name: r.get(1)?,
        client_id: r.get(2)?,
        audience: audience_col(r, 3)?,
        disabled: r.get(4)?,
        created_at: r.get(5)?,
    })
}

/// The audience column: a JSON array of URIs, or NULL for none.
fn audience_col(r: &Row, idx: usize) -> Result<Vec<String>> {
    Ok(r.parse_opt_with(idx, |text| serde_json::from_str(text))?.unwrap_or_default())
}

/// The column value for an audience: NULL when empty.
fn audience_value(audience: &[String]) -> Option<String> {
    (!audience.is_empty()).then(|| serde_json::Value::from(audience).to_string())
}

/// What a new resource server is called and which audience it serves (may be empty).
#[derive(Debug, Clone)]
pub struct NewResourceServer {
    pub name: String,
    pub audience: Vec<String>,
}

pub fn insert_resource_server(
    db: &Db,
    new: &NewResourceServer,
    client_id: &str,
    secret_hash: &[u8],
    now: i64,
) -> Result<ResourceServer> {
    let id = db
        .query_one(
            "INSERT INTO resource_servers (name, client_id, secret_hash, audience, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            params![new.name, client_id, secret_hash, audience_value(&new.audience), now],
        )?
        .get(0)?;
    get_resource_server(db, id)
}

pub fn get_resource_server(db: &Db, id: i64) -> Result<ResourceServer> {
    db.query_opt(&format!("SELECT {RESOURCE_SERVER_COLUMNS} FROM resource_servers WHERE id = ?1"), params![id])
        .or_not_found(|| format!("resource server {id} not found"))
        .and_then(|r| resource_server_from_row(&r))
}

/// One page of the resource servers, ordered by id.
pub fn list_resource_servers(db: &Db, page: Page) -> Result<Listed<ResourceServer>> {
    super::page::fetch(db, RESOURCE_SERVER_COLUMNS, "resource_servers", "id", params![], page, resource_server_from_row)
}

/// Whether an enabled resource server names `audience` in its audience: the container
/// registries `GET /jwt/auth` mints for (its `service` must be one). Resource servers are few;
/// their audiences are compared here, exactly, rather than matched inside JSON in SQL.
pub fn audience_registered(db: &Db, audience: &str) -> Result<bool> {
    let rows = db.query(
        &format!("SELECT {RESOURCE_SERVER_COLUMNS} FROM resource_servers WHERE audience IS NOT NULL ORDER BY id"),
        params![],
    )?;
    for row in &rows {
        let server = resource_server_from_row(row)?;
        if !server.disabled && server.audience.iter().any(|a| a == audience) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The changeable fields of a resource server; `None` leaves a field as it is, an empty
/// `audience` clears it.
#[derive(Debug, Clone, Default)]
pub struct ResourceServerPatch {
    pub name: Option<String>,
    pub audience: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

pub fn update_resource_server(db: &Db, id: i64, patch: &ResourceServerPatch) -> Result<ResourceServer> {
    atomic(db, |tx| {
        let current = get_resource_server(tx, id)?;
        tx.execute(
            "UPDATE resource_servers SET name = ?2, audience = ?3, disabled = ?4 WHERE id = ?1",
            params![
                id,
                patch.name.as_ref().unwrap_or(&current.name),
                audience_value(patch.audience.as_ref().unwrap_or(&current.audience)),
                patch.disabled.unwrap_or(current.disabled),
            ],
        )?;
        get_resource_server(tx, id)
    })
}

/// Deletes resource server `id`; its credentials stop working with the commit.
pub fn delete_resource_server(db: &Db, id: i64) -> Result<()> {
    match db.execute("DELETE FROM resource_servers WHERE id = ?1", params![id])? {
        0 => Err(StoreError::NotFound(format!("resource server {id} not found"))),
        _ => Ok(()),
    }
}

/// Replaces resource server `id`'s secret hash: from the commit on, only the new secret
/// authenticates.
pub fn set_resource_server_secret(db: &Db, id: i64, secret_hash: &[u8]) -> Result<ResourceServer> {
    match db.execute("UPDATE resource_servers SET secret_hash = ?2 WHERE id = ?1", params![id, secret_hash])? {
        0 => Err(StoreError::NotFound(format!("resource server {id} not found"))),
        _ => get_resource_server(db, id),
    }
}

// ---- client authentication ----

/// An authenticated resource server and the audience it serves (empty: none of its own).
#[derive(Debug, Clone)]
pub struct ResourceServerAuth {
    pub id: i64,
    pub audience: Vec<String>,
}

/// An OAuth client whose secret was accepted.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    Runner(RunnerAuth),
    ResourceServer(ResourceServerAuth),
}

/// One statement that yields exactly one row of the same shape for every client id: the
/// resource server (if enabled) or the runner with that id, else a row of NULLs with a zero hash.
/// Kind 0 is that dummy, 1 a runner, 2 a resource server. Both lookups always run, and both read
/// covering indexes (migration 0004), so a found client costs no extra table seek. The id is
/// bound through a subquery: with `?1` itself in the `ON` clauses SQLite re-plans the statement
/// on every execution (measured: 40 µs instead of 1.5 µs).
const CLIENT_AUTH_SQL: &str = "\
    SELECT CASE WHEN s.client_id IS NOT NULL THEN 2 WHEN r.client_id IS NOT NULL THEN 1 ELSE 0 END,
           coalesce(s.secret_hash, r.secret_hash, zeroblob(32)),
           coalesce(s.id, r.id, 0), r.runner_type, r.group_id, r.maximum_timeout, r.paused, s.audience
    FROM (SELECT ?1 AS client_id) AS k
    LEFT JOIN resource_servers AS s INDEXED BY resource_servers_client_auth
        ON s.client_id = k.client_id AND s.disabled = 0
    LEFT JOIN runners AS r INDEXED BY runners_client_auth ON r.client_id = k.client_id";

/// [`CLIENT_AUTH_SQL`] for PostgreSQL: no `INDEXED BY` (its planner picks the indexes) and a
/// literal zero hash instead of `zeroblob`.
const CLIENT_AUTH_SQL_POSTGRES: &str = "\
    SELECT CASE WHEN s.client_id IS NOT NULL THEN 2 WHEN r.client_id IS NOT NULL THEN 1 ELSE 0 END,
           coalesce(s.secret_hash, r.secret_hash, decode(repeat('00', 32), 'hex')),
           coalesce(s.id, r.id, 0), r.runner_type, r.group_id, r.maximum_timeout, r.paused, s.audience
    FROM (SELECT CAST(?1 AS TEXT) AS client_id) AS k
    LEFT JOIN resource_servers AS s ON s.client_id = k.client_id AND s.disabled = 0
    LEFT JOIN runners AS r ON r.client_id = k.client_id";

/// Looks `client_id` up among enabled resource servers and runners and lets `verify` judge the
/// stored secret hash. Every id (a runner's, a resource server's, a disabled or unknown one)
/// costs the same until `verify` has answered: one statement, one row, the hash read in place,
/// `verify` called once; only an accepted client's row is decoded further. An unknown id is
/// never accepted, whatever `verify` says about the dummy hash.
pub fn find_client_auth(db: &Db, client_id: &str, verify: impl FnOnce(&[u8]) -> bool) -> Result<Option<ClientAuth>> {
    let sql = match db.dialect() {
        Dialect::Sqlite => CLIENT_AUTH_SQL,
        Dialect::Postgres => CLIENT_AUTH_SQL_POSTGRES,
    };
    let row = db.query_one(sql, params![client_id])?;
    let kind: i64 = row.get(0)?;
    let stored = match row.value(1)? {
        Value::Blob(hash) => hash.as_slice(),
        _ => &[],
    };
    let accepted = verify(stored);
    Ok(match (accepted, kind) {
        (true, 1) => Some(ClientAuth::Runner(RunnerAuth {
            id: row.get(2)?,
            client_id: client_id.to_owned(),
            runner_type: row.parse(3)?,
            group_id: row.get(4)?,
            maximum_timeout: row.get(5)?,
            paused: row.get(6)?,
        })),
        (true, 2) => {
            Some(ClientAuth::ResourceServer(ResourceServerAuth { id: row.get(2)?, audience: audience_col(&row, 7)? }))
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate(&mut conn).unwrap();
        conn
    }

    fn server(conn: &Db, client_id: &str, audience: &[&str]) -> ResourceServer {
        let new = NewResourceServer { name: "r".into(), audience: audience.iter().map(|a| (*a).to_owned()).collect() };
        insert_resource_server(conn, &new, client_id, &[1; 32], 1).unwrap()
    }

    #[test]
    fn an_authenticated_resource_server_carries_its_audience() {
        let conn = db();
        let conn = Db::sqlite(&conn);
        let rs = server(&conn, "rs_a", &["https://a.example", "https://b.example"]);

        let found = find_client_auth(&conn, "rs_a", |hash| hash == [1; 32]).unwrap();

        let Some(ClientAuth::ResourceServer(auth)) = found else { panic!("not authenticated: {found:?}") };
        assert_eq!(auth.id, rs.id);
        assert_eq!(auth.audience, ["https://a.example", "https://b.example"]);
    }

    #[test]
    fn unknown_disabled_and_wrongly_verified_clients_are_all_judged_once_and_refused() {
        let conn = db();
        let conn = Db::sqlite(&conn);
        let rs = server(&conn, "rs_off", &[]);
        update_resource_server(&conn, rs.id, &ResourceServerPatch { disabled: Some(true), ..Default::default() })
            .unwrap();
        let runner = NewRunner {
            runner_type: RunnerType::Instance,
            group_id: None,
            project_ids: Vec::new(),
            maximum_timeout: None,
            description: String::new(),
        };
        insert_runner(&conn, &runner, "runner_a", &[2; 32], 1).unwrap();

        for (id, accept) in [("runner_x", true), ("rs_off", true), ("runner_a", false)] {
            let mut judged = Vec::new();
            let found = find_client_auth(&conn, id, |hash| {
                judged.push(hash.len());
                accept
            })
            .unwrap();
            assert!(found.is_none(), "{id}");
            assert_eq!(judged, [32], "{id}: one 32-byte hash judged");
        }
        let found = find_client_auth(&conn, "runner_a", |hash| hash == [2; 32]).unwrap();
        assert!(matches!(found, Some(ClientAuth::Runner(r)) if r.client_id == "runner_a"));
    }
}
