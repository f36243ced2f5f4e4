//! Groups, projects and memberships.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::users::parse_col;
use super::{atomic, is_unique_violation, OptionalExt, Result, StoreError};
use crate::domain::{AccessLevel, FeatureAccess, GroupId, ProjectId, ScopeSet, UserId, Visibility};
use crate::policy::{self, ProjectFacts};

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub id: GroupId,
    pub path: String,
    pub full_path: String,
    pub parent_id: Option<GroupId>,
    /// Root first, this group last.
    #[serde(skip)]
    pub traversal_ids: Vec<GroupId>,
    #[serde(skip)]
    pub inbound_enabled: Option<bool>,
    #[serde(skip)]
    pub job_token_elevation_allowed: Option<bool>,
}

const GROUP_COLUMNS: &str =
    "id, path, full_path, parent_id, traversal_ids, inbound_enabled, job_token_elevation_allowed";

fn group_from_row(r: &Row) -> rusqlite::Result<Group> {
    let traversal: String = r.get(4)?;
    Ok(Group {
        id: r.get(0)?,
        path: r.get(1)?,
        full_path: r.get(2)?,
        parent_id: r.get(3)?,
        traversal_ids: traversal.split(' ').filter_map(|s| s.parse().ok()).collect(),
        inbound_enabled: r.get(5)?,
        job_token_elevation_allowed: r.get(6)?,
    })
}

pub fn insert_group(conn: &Connection, path: &str, parent_id: Option<GroupId>, now: i64) -> Result<Group> {
    let parent = parent_id.map(|id| get_group(conn, id)).transpose()?;
    let full_path = match &parent {
        Some(p) => format!("{}/{path}", p.full_path),
        None => path.to_owned(),
    };
    let id = atomic(conn, |tx| {
        refuse_taken_path(tx, &full_path)?;
        tx.execute(
            "INSERT INTO groups (path, parent_id, full_path, traversal_ids, created_at) VALUES (?1, ?2, ?3, '', ?4)",
            params![path, parent_id, full_path, now],
        )
        .map_err(|e| name_conflict(e, &full_path))?;
        let id = tx.last_insert_rowid();
        let mut traversal = parent.map(|p| p.traversal_ids).unwrap_or_default();
        traversal.push(id);
        let text: Vec<String> = traversal.iter().map(i64::to_string).collect();
        tx.execute("UPDATE groups SET traversal_ids = ?2 WHERE id = ?1", params![id, text.join(" ")])?;
        Ok(id)
    })?;
    get_group(conn, id)
}

pub fn get_group(conn: &Connection, id: GroupId) -> Result<Group> {
    conn.prepare_cached(&format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = ?1"))?
        .query_row([id], group_from_row)
        .or_not_found(|| format!("group {id} not found"))
}

/// The groups with the given ids, nearest (last id) first.
pub fn groups_nearest_first(conn: &Connection, traversal_ids: &[GroupId]) -> Result<Vec<Group>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = ?1"))?;
    traversal_ids.iter().rev().map(|id| Ok(stmt.query_row([id], group_from_row)?)).collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct Project {
    pub id: ProjectId,
    pub path: String,
    pub namespace_id: GroupId,
    pub path_with_namespace: String,
    pub visibility: Visibility,
    pub build_timeout: i64,
    pub repository_access_level: FeatureAccess,
    pub container_registry_access_level: FeatureAccess,
    pub package_registry_access_level: FeatureAccess,
    /// `None` = the default set.
    #[serde(skip)]
    pub job_token_scopes: Option<ScopeSet>,
    #[serde(skip)]
    pub inbound_enabled: Option<bool>,
    #[serde(skip)]
    pub outbound_enabled: bool,
}

impl Project {
    pub fn facts(&self) -> ProjectFacts {
        ProjectFacts {
            visibility: self.visibility,
            repository: self.repository_access_level,
            container_registry: self.container_registry_access_level,
            package_registry: self.package_registry_access_level,
        }
    }
}

const PROJECT_COLUMNS: &str = "id, path, namespace_id, path_with_namespace, visibility, build_timeout, \
    repository_access_level, container_registry_access_level, package_registry_access_level, \
    job_token_scopes, inbound_enabled, outbound_enabled";

pub(crate) fn project_from_row(r: &Row) -> rusqlite::Result<Project> {
    let scopes: Option<String> = r.get(9)?;
    Ok(Project {
        id: r.get(0)?,
        path: r.get(1)?,
        namespace_id: r.get(2)?,
        path_with_namespace: r.get(3)?,
        visibility: parse_col(r, 4)?,
        build_timeout: r.get(5)?,
        repository_access_level: parse_col(r, 6)?,
        container_registry_access_level: parse_col(r, 7)?,
        package_registry_access_level: parse_col(r, 8)?,
        job_token_scopes: scopes
            .map(|s| {
                ScopeSet::parse_space_separated(&s)
                    .map_err(|e| rusqlite::Error::FromSqlConversionFailure(9, rusqlite::types::Type::Text, Box::new(e)))
            })
            .transpose()?,
        inbound_enabled: r.get(10)?,
        outbound_enabled: r.get(11)?,
    })
}

/// The settable fields of a project; `None` leaves a field as it is (or at its default on insert).
#[derive(Debug, Clone, Default)]
pub struct ProjectFields {
    pub visibility: Option<Visibility>,
    pub build_timeout: Option<i64>,
    pub repository_access_level: Option<FeatureAccess>,
    pub container_registry_access_level: Option<FeatureAccess>,
    pub package_registry_access_level: Option<FeatureAccess>,
}

pub fn insert_project(
    conn: &Connection,
    path: &str,
    namespace_id: GroupId,
    f: &ProjectFields,
    now: i64,
) -> Result<Project> {
    let namespace = get_group(conn, namespace_id)?;
    let full_path = format!("{}/{path}", namespace.full_path);
    let id = atomic(conn, |tx| {
        refuse_taken_path(tx, &full_path)?;
        tx.execute(
            "INSERT INTO projects (path, namespace_id, path_with_namespace, visibility, build_timeout,
             repository_access_level, container_registry_access_level, package_registry_access_level, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                path,
                namespace_id,
                full_path,
                f.visibility.unwrap_or(Visibility::Private).as_str(),
                f.build_timeout.unwrap_or(3600),
                f.repository_access_level.unwrap_or(FeatureAccess::Enabled).as_str(),
                f.container_registry_access_level.unwrap_or(FeatureAccess::Enabled).as_str(),
                f.package_registry_access_level.unwrap_or(FeatureAccess::Enabled).as_str(),
                now
            ],
        )
        .map_err(|e| name_conflict(e, &full_path))?;
        Ok(tx.last_insert_rowid())
    })?;
    get_project(conn, id)
}

/// Refuses a new group or project at `full_path` when a group or a project already has that path
/// regardless of case: a path names one thing (issue 7 point 9). Run inside the write transaction
/// ([`atomic`] takes the write lock first), so no concurrent insert can slip in between; the
/// indexes and triggers of `0005_unique_names.sql` hold the same rule in the database.
fn refuse_taken_path(conn: &Connection, full_path: &str) -> Result<()> {
    let holder: Option<(&str, String)> = conn
        .prepare_cached(
            "SELECT 'group', full_path FROM groups WHERE lower(full_path) = lower(?1)
             UNION ALL
             SELECT 'project', path_with_namespace FROM projects WHERE lower(path_with_namespace) = lower(?1)
             LIMIT 1",
        )?
        .query_row([full_path], |r| {
            let kind: String = r.get(0)?;
            Ok((if kind == "group" { "group" } else { "project" }, r.get(1)?))
        })
        .optional()?;
    match holder {
        None => Ok(()),
        Some((kind, taken)) => Err(StoreError::Conflict(format!(
            "{full_path} is taken: a {kind} at {taken} already exists (group and project paths are unique \
             regardless of case, and a project cannot have a group's path)"
        ))),
    }
}

/// Maps a unique-index or trigger refusal of a group or project insert to a `Conflict`.
fn name_conflict(err: rusqlite::Error, full_path: &str) -> StoreError {
    let refused = is_unique_violation(&err)
        || matches!(&err, rusqlite::Error::SqliteFailure(e, _) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_TRIGGER);
    match refused {
        true => StoreError::Conflict(format!("{full_path} is taken by another group or project")),
        false => err.into(),
    }
}

pub fn get_project(conn: &Connection, id: ProjectId) -> Result<Project> {
    conn.prepare_cached(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = ?1"))?
        .query_row([id], project_from_row)
        .or_not_found(|| format!("project {id} not found"))
}

pub fn find_project_by_path(conn: &Connection, full_path: &str) -> Result<Option<Project>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE path_with_namespace = ?1"))?
        .query_row([full_path], project_from_row)
        .optional()?)
}

pub fn update_project(conn: &Connection, id: ProjectId, f: &ProjectFields) -> Result<Project> {
    atomic(conn, |tx| {
        let p = get_project(tx, id)?;
        tx.execute(
            "UPDATE projects SET visibility = ?2, build_timeout = ?3, repository_access_level = ?4,
             container_registry_access_level = ?5, package_registry_access_level = ?6
         WHERE id = ?1",
            params![
                id,
                f.visibility.unwrap_or(p.visibility).as_str(),
                f.build_timeout.unwrap_or(p.build_timeout),
                f.repository_access_level.unwrap_or(p.repository_access_level).as_str(),
                f.container_registry_access_level.unwrap_or(p.container_registry_access_level).as_str(),
                f.package_registry_access_level.unwrap_or(p.package_registry_access_level).as_str(),
            ],
        )?;
        get_project(tx, id)
    })
}

pub fn set_job_token_scopes(conn: &Connection, id: ProjectId, scopes: ScopeSet) -> Result<()> {
    conn.execute("UPDATE projects SET job_token_scopes = ?2 WHERE id = ?1", params![id, scopes.to_space_separated()])?;
    Ok(())
}

/// A membership's owner.
#[derive(Debug, Clone, Copy)]
pub enum MemberOf {
    Project(ProjectId),
    Group(GroupId),
}

impl MemberOf {
    fn table(self) -> (&'static str, &'static str, i64) {
        match self {
            MemberOf::Project(id) => ("project_members", "project_id", id),
            MemberOf::Group(id) => ("group_members", "group_id", id),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Membership {
    pub user_id: UserId,
    pub access_level: AccessLevel,
}

/// Creates or replaces a membership. The owner and the user must exist.
pub fn put_member(conn: &Connection, of: MemberOf, user_id: UserId, level: AccessLevel) -> Result<Membership> {
    match of {
        MemberOf::Project(id) => get_project(conn, id).map(drop)?,
        MemberOf::Group(id) => get_group(conn, id).map(drop)?,
    }
    super::users::get(conn, user_id)?;
    let (table, column, id) = of.table();
    conn.execute(
        &format!(
            "INSERT INTO {table} ({column}, user_id, access_level) VALUES (?1, ?2, ?3)
             ON CONFLICT ({column}, user_id) DO UPDATE SET access_level = excluded.access_level"
        ),
        params![id, user_id, level.as_i64()],
    )?;
    Ok(Membership { user_id, access_level: level })
}

pub fn delete_member(conn: &Connection, of: MemberOf, user_id: UserId) -> Result<()> {
    let (table, column, id) = of.table();
    let n = conn.execute(&format!("DELETE FROM {table} WHERE {column} = ?1 AND user_id = ?2"), params![id, user_id])?;
    match n {
        0 => Err(StoreError::NotFound(format!("user {user_id} is not a member"))),
        _ => Ok(()),
    }
}

/// The user's effective access level on a project whose groups are `traversal_ids`
/// (SPEC §4.1): the highest of the project membership and every ancestor group membership.
pub fn effective_access(
    conn: &Connection,
    user_id: UserId,
    project_id: ProjectId,
    traversal_ids: &[GroupId],
) -> Result<Option<AccessLevel>> {
    let mut levels = Vec::new();
    let direct: Option<i64> = conn
        .prepare_cached("SELECT access_level FROM project_members WHERE project_id = ?1 AND user_id = ?2")?
        .query_row([project_id, user_id], |r| r.get(0))
        .optional()?;
    levels.extend(direct);
    let levels = levels.into_iter().filter_map(|l| AccessLevel::from_i64(l).ok());
    Ok(policy::effective_access(levels.chain(group_access(conn, user_id, traversal_ids)?)))
}

/// The user's highest membership on any of the groups `traversal_ids` (a group and its ancestors).
pub fn group_access(conn: &Connection, user_id: UserId, traversal_ids: &[GroupId]) -> Result<Option<AccessLevel>> {
    let mut stmt =
        conn.prepare_cached("SELECT access_level FROM group_members WHERE group_id = ?1 AND user_id = ?2")?;
    let mut levels = Vec::new();
    for group in traversal_ids {
        if let Some(level) = stmt.query_row([*group, user_id], |r| r.get::<_, i64>(0)).optional()? {
            levels.extend(AccessLevel::from_i64(level).ok());
        }
    }
    Ok(policy::effective_access(levels))
}
