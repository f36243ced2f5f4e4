//! OAuth clients: runners and resource servers. Secrets arrive here already hashed.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::users::parse_col;
use super::{atomic, namespaces, OptionalExt, Result};
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

/// A runner as the token endpoint sees it after looking up its client id.
#[derive(Debug, Clone)]
pub struct RunnerAuth {
    pub id: RunnerId,
    pub client_id: String,
    pub secret_hash: Vec<u8>,
    pub runner_type: RunnerType,
    pub group_id: Option<GroupId>,
    pub maximum_timeout: Option<i64>,
    pub paused: bool,
}

pub fn insert_runner(
    conn: &Connection,
    new: &NewRunner,
    client_id: &str,
    secret_hash: &[u8],
    now: i64,
) -> Result<Runner> {
    if let Some(group) = new.group_id {
        namespaces::get_group(conn, group)?;
    }
    for project in &new.project_ids {
        namespaces::get_project(conn, *project)?;
    }
    let id = atomic(conn, |tx| {
        tx.execute(
        "INSERT INTO runners (client_id, secret_hash, description, maximum_timeout, runner_type, group_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![client_id, secret_hash, new.description, new.maximum_timeout, new.runner_type.as_str(), new.group_id, now],
    )?;
        let id = tx.last_insert_rowid();
        for project in &new.project_ids {
            tx.execute(
                "INSERT OR IGNORE INTO runner_projects (runner_id, project_id) VALUES (?1, ?2)",
                params![id, project],
            )?;
        }
        Ok(id)
    })?;
    get_runner(conn, id)
}

pub fn get_runner(conn: &Connection, id: RunnerId) -> Result<Runner> {
    let mut runner = conn
        .prepare_cached(
            "SELECT id, client_id, runner_type, group_id, maximum_timeout, description, paused FROM runners WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok(Runner {
                id: r.get(0)?,
                client_id: r.get(1)?,
                runner_type: parse_col(r, 2)?,
                group_id: r.get(3)?,
                project_ids: Vec::new(),
                maximum_timeout: r.get(4)?,
                description: r.get(5)?,
                paused: r.get(6)?,
            })
        })
        .or_not_found(|| format!("runner {id} not found"))?;
    let mut stmt =
        conn.prepare_cached("SELECT project_id FROM runner_projects WHERE runner_id = ?1 ORDER BY project_id")?;
    runner.project_ids = stmt.query_map([id], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(runner)
}

/// The changeable fields of a runner; `None` leaves a field as it is. `maximum_timeout` is
/// `Some(None)` to clear the limit.
#[derive(Debug, Clone, Default)]
pub struct RunnerPatch {
    pub paused: Option<bool>,
    pub maximum_timeout: Option<Option<i64>>,
    pub description: Option<String>,
}

pub fn update_runner(conn: &Connection, id: RunnerId, patch: &RunnerPatch) -> Result<Runner> {
    atomic(conn, |tx| {
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

fn runner_auth_from_row(r: &Row) -> rusqlite::Result<RunnerAuth> {
    Ok(RunnerAuth {
        id: r.get(0)?,
        client_id: r.get(1)?,
        secret_hash: r.get(2)?,
        runner_type: parse_col(r, 3)?,
        group_id: r.get(4)?,
        maximum_timeout: r.get(5)?,
        paused: r.get(6)?,
    })
}

const RUNNER_AUTH_COLUMNS: &str = "id, client_id, secret_hash, runner_type, group_id, maximum_timeout, paused";

pub fn find_runner_auth(conn: &Connection, client_id: &str) -> Result<Option<RunnerAuth>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {RUNNER_AUTH_COLUMNS} FROM runners WHERE client_id = ?1"))?
        .query_row([client_id], runner_auth_from_row)
        .optional()?)
}

/// What the runner serves, as far as `project_id` is concerned: a project runner's list is
/// loaded only for that project.
pub fn runner_scope(conn: &Connection, runner: &RunnerAuth, project_id: ProjectId) -> Result<RunnerScope> {
    Ok(match (runner.runner_type, runner.group_id) {
        (RunnerType::Instance, _) => RunnerScope::Instance,
        (RunnerType::Group, Some(group)) => RunnerScope::Group(group),
        (RunnerType::Group, None) => RunnerScope::Projects(Vec::new()),
        (RunnerType::Project, _) => {
            let found: Option<i64> = conn
                .prepare_cached("SELECT project_id FROM runner_projects WHERE runner_id = ?1 AND project_id = ?2")?
                .query_row([runner.id, project_id], |r| r.get(0))
                .optional()?;
            RunnerScope::Projects(found.into_iter().collect())
        }
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct ResourceServer {
    pub id: i64,
    pub name: String,
    pub client_id: String,
}

pub fn insert_resource_server(
    conn: &Connection,
    name: &str,
    client_id: &str,
    secret_hash: &[u8],
    now: i64,
) -> Result<ResourceServer> {
    conn.execute(
        "INSERT INTO resource_servers (name, client_id, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![name, client_id, secret_hash, now],
    )?;
    Ok(ResourceServer { id: conn.last_insert_rowid(), name: name.to_owned(), client_id: client_id.to_owned() })
}

/// `(id, secret_hash)` of the resource server with this client id.
pub fn find_resource_server_auth(conn: &Connection, client_id: &str) -> Result<Option<(i64, Vec<u8>)>> {
    Ok(conn
        .prepare_cached("SELECT id, secret_hash FROM resource_servers WHERE client_id = ?1")?
        .query_row([client_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}
