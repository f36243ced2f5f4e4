//! Groups, projects and memberships.

use serde::Serialize;

use super::cache::{cached, Key};
use super::db::{params, Db, Dialect, Row, Value};
use super::page::{self, contains_pattern, Listed, Page};
use super::{atomic, OptionalExt, Result, StoreError};
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

pub(crate) fn group_from_row(r: &Row) -> Result<Group> {
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

pub fn insert_group(db: &Db, path: &str, parent_id: Option<GroupId>, now: i64) -> Result<Group> {
    let parent = parent_id.map(|id| get_group(db, id)).transpose()?;
    let full_path = match &parent {
        Some(p) => format!("{}/{path}", p.full_path),
        None => path.to_owned(),
    };
    check_full_path(&full_path)?;
    let id = atomic(db, |tx| {
        refuse_taken_path(tx, &full_path)?;
        let id: GroupId = tx
            .query_one(
                "INSERT INTO groups (path, parent_id, full_path, traversal_ids, created_at) VALUES (?1, ?2, ?3, '', ?4)
                 RETURNING id",
                params![path, parent_id, full_path, now],
            )
            .map_err(|e| name_conflict(e, &full_path))?
            .get(0)?;
        let mut traversal = parent.map(|p| p.traversal_ids).unwrap_or_default();
        traversal.push(id);
        let text: Vec<String> = traversal.iter().map(i64::to_string).collect();
        tx.execute("UPDATE groups SET traversal_ids = ?2 WHERE id = ?1", params![id, text.join(" ")])?;
        Ok(id)
    })?;
    get_group(db, id)
}

pub fn get_group(db: &Db, id: GroupId) -> Result<Group> {
    cached(db, || Key::ids("group", vec![id]), || load_group(db, id))
}

fn load_group(db: &Db, id: GroupId) -> Result<Group> {
    db.query_opt(&format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = ?1"), params![id])
        .or_not_found(|| format!("group {id} not found"))
        .and_then(|r| group_from_row(&r))
}

/// The groups with the given ids, nearest (last id) first.
pub fn groups_nearest_first(db: &Db, traversal_ids: &[GroupId]) -> Result<Vec<Group>> {
    cached(
        db,
        || Key::ids("groups_nearest_first", traversal_ids.to_vec()),
        || load_groups_nearest_first(db, traversal_ids),
    )
}

fn load_groups_nearest_first(db: &Db, traversal_ids: &[GroupId]) -> Result<Vec<Group>> {
    if db.dialect() == Dialect::Postgres {
        // One round trip for the whole chain; a missing group is an error, as below.
        let chain: Vec<String> = traversal_ids.iter().map(i64::to_string).collect();
        let rows = db.query(
            &format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = ANY (string_to_array(?1, ' ')::bigint[])"),
            params![chain.join(" ")],
        )?;
        let groups = rows.iter().map(group_from_row).collect::<Result<Vec<_>>>()?;
        return traversal_ids
            .iter()
            .rev()
            .map(|id| {
                groups
                    .iter()
                    .find(|g| g.id == *id)
                    .cloned()
                    .ok_or_else(|| StoreError::Database(format!("group {id} is missing")))
            })
            .collect();
    }
    let sql = format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = ?1");
    traversal_ids.iter().rev().map(|id| group_from_row(&db.query_one(&sql, params![id])?)).collect()
}

/// A stored `id_token_sub_claim_components` (space-separated; NULL inherits).
fn sub_components_of(text: Option<String>) -> Option<Vec<String>> {
    text.map(|t| t.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect())
}

/// The `id_token_sub_claim_components` settings that govern `project`: its own, then its groups'
/// nearest first (`None`: not set there).
pub fn id_token_sub_settings(db: &Db, project: ProjectId) -> Result<Vec<Option<Vec<String>>>> {
    let own: Option<String> = db
        .query_opt("SELECT id_token_sub_claim_components FROM projects WHERE id = ?1", params![project])
        .or_not_found(|| format!("project {project} not found"))?
        .get(0)?;
    let group = get_project(db, project)?.namespace_id;
    let mut settings = vec![sub_components_of(own)];
    settings.extend(group_id_token_sub_settings(db, group)?);
    Ok(settings)
}

/// The settings that govern `group`: its own, then its ancestors' nearest first.
pub fn group_id_token_sub_settings(db: &Db, group: GroupId) -> Result<Vec<Option<Vec<String>>>> {
    let traversal = get_group(db, group)?.traversal_ids;
    traversal
        .iter()
        .rev()
        .map(|id| {
            let text: Option<String> =
                db.query_one("SELECT id_token_sub_claim_components FROM groups WHERE id = ?1", params![id])?.get(0)?;
            Ok(sub_components_of(text))
        })
        .collect()
}

/// Sets (or, with `None`, clears) a project's `id_token_sub_claim_components`.
pub fn set_project_id_token_sub(db: &Db, project: ProjectId, components: Option<&[String]>) -> Result<()> {
    let text = components.map(|c| c.join(" "));
    db.execute("UPDATE projects SET id_token_sub_claim_components = ?2 WHERE id = ?1", params![project, text])?;
    Ok(())
}

/// Sets (or, with `None`, clears) a group's `id_token_sub_claim_components`.
pub fn set_group_id_token_sub(db: &Db, group: GroupId, components: Option<&[String]>) -> Result<()> {
    let text = components.map(|c| c.join(" "));
    db.execute("UPDATE groups SET id_token_sub_claim_components = ?2 WHERE id = ?1", params![group, text])?;
    Ok(())
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

pub(crate) fn project_from_row(r: &Row) -> Result<Project> {
    Ok(Project {
        id: r.get(0)?,
        path: r.get(1)?,
        namespace_id: r.get(2)?,
        path_with_namespace: r.get(3)?,
        visibility: r.parse(4)?,
        build_timeout: r.get(5)?,
        repository_access_level: r.parse(6)?,
        container_registry_access_level: r.parse(7)?,
        package_registry_access_level: r.parse(8)?,
        job_token_scopes: r.parse_opt_with(9, ScopeSet::parse_space_separated)?,
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

pub fn insert_project(db: &Db, path: &str, namespace_id: GroupId, f: &ProjectFields, now: i64) -> Result<Project> {
    let namespace = get_group(db, namespace_id)?;
    let full_path = format!("{}/{path}", namespace.full_path);
    check_full_path(&full_path)?;
    let id = atomic(db, |tx| {
        refuse_taken_path(tx, &full_path)?;
        tx.query_one(
            "INSERT INTO projects (path, namespace_id, path_with_namespace, visibility, build_timeout,
             repository_access_level, container_registry_access_level, package_registry_access_level, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
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
        .map_err(|e| name_conflict(e, &full_path))?
        .get(0)
    })?;
    get_project(db, id)
}

/// Longest full path of a group or project. A job token names its project's path three times
/// (`sub`, `project_path`, `namespace_path`), so unbounded paths would make every token of a
/// project too large to issue; 255 keeps a token with all its claims well within its size limit.
pub const MAX_FULL_PATH_LEN: usize = 255;

fn check_full_path(full_path: &str) -> Result<()> {
    match full_path.len() {
        len if len > MAX_FULL_PATH_LEN => Err(StoreError::Invalid(format!(
            "the full path would be {len} characters; full paths are limited to {MAX_FULL_PATH_LEN}"
        ))),
        _ => Ok(()),
    }
}

/// Refuses a new group or project at `full_path` when a group or a project already has that path
/// regardless of case: a path names one thing (issue 7 point 9). Run inside the write transaction
/// ([`atomic`] takes the write lock first), so no concurrent insert can slip in between; the
/// indexes and triggers of `0005_unique_names.sql` hold the same rule in the database.
fn refuse_taken_path(db: &Db, full_path: &str) -> Result<()> {
    let holder: Option<(&str, String)> = db
        .query_opt(
            "SELECT 'group', full_path FROM groups WHERE lower(full_path) = lower(?1)
             UNION ALL
             SELECT 'project', path_with_namespace FROM projects WHERE lower(path_with_namespace) = lower(?1)
             LIMIT 1",
            params![full_path],
        )?
        .map(|r| -> Result<(&str, String)> {
            let kind: String = r.get(0)?;
            Ok((if kind == "group" { "group" } else { "project" }, r.get(1)?))
        })
        .transpose()?;
    match holder {
        None => Ok(()),
        Some((kind, taken)) => Err(StoreError::Conflict(format!(
            "{full_path} is taken: a {kind} at {taken} already exists (group and project paths are unique \
             regardless of case, and a project cannot have a group's path)"
        ))),
    }
}

/// Maps a unique-index or trigger refusal of a group or project insert to a `Conflict`.
fn name_conflict(err: StoreError, full_path: &str) -> StoreError {
    match err {
        StoreError::Unique(_) | StoreError::Refused(_) => {
            StoreError::Conflict(format!("{full_path} is taken by another group or project"))
        }
        other => other,
    }
}

pub fn get_project(db: &Db, id: ProjectId) -> Result<Project> {
    cached(db, || Key::ids("project", vec![id]), || load_project(db, id))
}

fn load_project(db: &Db, id: ProjectId) -> Result<Project> {
    db.query_opt(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = ?1"), params![id])
        .or_not_found(|| format!("project {id} not found"))
        .and_then(|r| project_from_row(&r))
}

/// The project at `full_path` (exact, as stored), if any: the one lookup by path, for the
/// decision endpoint's targets and the API's `{id}` segments alike.
pub fn find_project_by_path(db: &Db, full_path: &str) -> Result<Option<Project>> {
    cached(db, || Key::text("project_by_path", full_path), || load_project_by_path(db, full_path))
}

fn load_project_by_path(db: &Db, full_path: &str) -> Result<Option<Project>> {
    db.query_opt(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE path_with_namespace = ?1"), params![full_path])?
        .map(|r| project_from_row(&r))
        .transpose()
}

pub fn update_project(db: &Db, id: ProjectId, f: &ProjectFields) -> Result<Project> {
    atomic(db, |tx| {
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

pub fn set_job_token_scopes(db: &Db, id: ProjectId, scopes: ScopeSet) -> Result<()> {
    db.execute("UPDATE projects SET job_token_scopes = ?2 WHERE id = ?1", params![id, scopes.to_space_separated()])?;
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
pub fn put_member(db: &Db, of: MemberOf, user_id: UserId, level: AccessLevel) -> Result<Membership> {
    match of {
        MemberOf::Project(id) => get_project(db, id).map(drop)?,
        MemberOf::Group(id) => get_group(db, id).map(drop)?,
    }
    super::users::get(db, user_id)?;
    let (table, column, id) = of.table();
    db.execute(
        &format!(
            "INSERT INTO {table} ({column}, user_id, access_level) VALUES (?1, ?2, ?3)
             ON CONFLICT ({column}, user_id) DO UPDATE SET access_level = excluded.access_level"
        ),
        params![id, user_id, level.as_i64()],
    )?;
    Ok(Membership { user_id, access_level: level })
}

pub fn delete_member(db: &Db, of: MemberOf, user_id: UserId) -> Result<()> {
    let (table, column, id) = of.table();
    let n = db.execute(&format!("DELETE FROM {table} WHERE {column} = ?1 AND user_id = ?2"), params![id, user_id])?;
    match n {
        0 => Err(StoreError::NotFound(format!("user {user_id} is not a member"))),
        _ => Ok(()),
    }
}

/// The user's own membership on `of` (not inherited), if any.
pub fn member(db: &Db, of: MemberOf, user_id: UserId) -> Result<Option<Membership>> {
    let (table, column, id) = of.table();
    let row = db.query_opt(
        &format!("SELECT access_level FROM {table} WHERE {column} = ?1 AND user_id = ?2"),
        params![id, user_id],
    )?;
    row.map(|r| {
        let level: i64 = r.get(0)?;
        let access_level = AccessLevel::from_i64(level).map_err(|e| StoreError::Database(e.to_string()))?;
        Ok(Membership { user_id, access_level })
    })
    .transpose()
}

/// The user's effective access level on a project whose groups are `traversal_ids`
/// (SPEC §4.1): the highest of the project membership and every ancestor group membership.
pub fn effective_access(
    db: &Db,
    user_id: UserId,
    project_id: ProjectId,
    traversal_ids: &[GroupId],
) -> Result<Option<AccessLevel>> {
    let key = || {
        let mut ids = vec![user_id, project_id];
        ids.extend_from_slice(traversal_ids);
        Key::ids("effective_access", ids)
    };
    cached(db, key, || load_effective_access(db, user_id, project_id, traversal_ids))
}

fn load_effective_access(
    db: &Db,
    user_id: UserId,
    project_id: ProjectId,
    traversal_ids: &[GroupId],
) -> Result<Option<AccessLevel>> {
    if db.dialect() == Dialect::Postgres {
        // One round trip for the project and every group of the chain.
        let chain: Vec<String> = traversal_ids.iter().map(i64::to_string).collect();
        let rows = db.query(
            "SELECT access_level FROM project_members WHERE project_id = ?1 AND user_id = ?2
             UNION ALL
             SELECT access_level FROM group_members
             WHERE user_id = ?2 AND group_id = ANY (string_to_array(?3, ' ')::bigint[])",
            params![project_id, user_id, chain.join(" ")],
        )?;
        let levels = rows.iter().map(|r| r.get::<i64>(0)).collect::<Result<Vec<_>>>()?;
        return Ok(policy::effective_access(levels.into_iter().filter_map(|l| AccessLevel::from_i64(l).ok())));
    }
    let mut levels = Vec::new();
    let direct: Option<i64> = db
        .query_opt(
            "SELECT access_level FROM project_members WHERE project_id = ?1 AND user_id = ?2",
            params![project_id, user_id],
        )?
        .map(|r| r.get(0))
        .transpose()?;
    levels.extend(direct);
    let levels = levels.into_iter().filter_map(|l| AccessLevel::from_i64(l).ok());
    Ok(policy::effective_access(levels.chain(group_access(db, user_id, traversal_ids)?)))
}

/// The user's highest membership on any of the groups `traversal_ids` (a group and its ancestors).
pub fn group_access(db: &Db, user_id: UserId, traversal_ids: &[GroupId]) -> Result<Option<AccessLevel>> {
    let mut levels = Vec::new();
    for group in traversal_ids {
        let sql = "SELECT access_level FROM group_members WHERE group_id = ?1 AND user_id = ?2";
        if let Some(row) = db.query_opt(sql, params![group, user_id])? {
            levels.extend(AccessLevel::from_i64(row.get(0)?).ok());
        }
    }
    Ok(policy::effective_access(levels))
}

// ---- lookups, lists and deletion ----

/// The group at `full_path` (exact, as stored), if any.
pub fn find_group_by_path(db: &Db, full_path: &str) -> Result<Option<Group>> {
    db.query_opt(&format!("SELECT {GROUP_COLUMNS} FROM groups WHERE full_path = ?1"), params![full_path])?
        .map(|r| group_from_row(&r))
        .transpose()
}

/// `WHERE` conditions and their parameters, numbered in the order they are added.
#[derive(Default)]
struct Filter {
    conditions: Vec<String>,
    values: Vec<Value>,
}

impl Filter {
    /// Adds `condition`, in which `?` stands for the next parameter (`value`).
    fn and(&mut self, condition: &str, value: Value) {
        self.values.push(value);
        self.conditions.push(condition.replace('?', &format!("?{}", self.values.len())));
    }

    fn tables_where(&self, from: &str) -> String {
        match self.conditions.is_empty() {
            true => from.to_owned(),
            false => format!("{from} WHERE {}", self.conditions.join(" AND ")),
        }
    }

    fn params(&self) -> Vec<&dyn super::db::ToValue> {
        self.values.iter().map(|v| v as &dyn super::db::ToValue).collect()
    }
}

/// Groups whose full path contains `search` (ASCII case-insensitive; a group's path is part of
/// its full path), by id.
pub fn list_groups(db: &Db, search: Option<&str>, page: Page) -> Result<Listed<Group>> {
    let mut filter = Filter::default();
    if let Some(text) = search {
        filter.and(r"lower(full_path) LIKE ? ESCAPE '\'", Value::Text(contains_pattern(text)));
    }
    let params = filter.params();
    page::fetch(db, GROUP_COLUMNS, &filter.tables_where("groups"), "id", &params, page, group_from_row)
}

/// What a project list is narrowed to; `None` does not narrow.
#[derive(Debug, Clone, Default)]
pub struct ProjectFilter {
    /// Projects directly in this group.
    pub namespace_id: Option<GroupId>,
    /// Projects whose path with namespace contains this text (ASCII case-insensitive).
    pub search: Option<String>,
}

pub fn list_projects(db: &Db, f: &ProjectFilter, page: Page) -> Result<Listed<Project>> {
    let mut filter = Filter::default();
    if let Some(group) = f.namespace_id {
        filter.and("namespace_id = ?", Value::Int(group));
    }
    if let Some(text) = &f.search {
        filter.and(r"lower(path_with_namespace) LIKE ? ESCAPE '\'", Value::Text(contains_pattern(text)));
    }
    let params = filter.params();
    page::fetch(db, PROJECT_COLUMNS, &filter.tables_where("projects"), "id", &params, page, project_from_row)
}

/// A membership as a list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub user_id: UserId,
    pub username: String,
    pub access_level: AccessLevel,
}

/// The direct members of a project or group, by user id. An unknown owner is `NotFound`.
pub fn list_members(db: &Db, of: MemberOf, page: Page) -> Result<Listed<Member>> {
    match of {
        MemberOf::Project(id) => get_project(db, id).map(drop)?,
        MemberOf::Group(id) => get_group(db, id).map(drop)?,
    }
    let (table, column, id) = of.table();
    page::fetch(
        db,
        "m.user_id, u.username, m.access_level",
        &format!("{table} m JOIN users u ON u.id = m.user_id WHERE m.{column} = ?1"),
        "m.user_id",
        params![id],
        page,
        |r| {
            let level = AccessLevel::from_i64(r.get(2)?).map_err(|e| StoreError::Database(e.to_string()))?;
            Ok(Member { user_id: r.get(0)?, username: r.get(1)?, access_level: level })
        },
    )
}

/// How many rows `count_sql` counts and, for the message, the values `list_sql` lists (it
/// limits itself to [`NAMED`]).
fn dependants(db: &Db, count_sql: &str, list_sql: &str, id: i64) -> Result<(i64, Vec<String>)> {
    let count: i64 = db.query_one(count_sql, params![id])?.get(0)?;
    if count == 0 {
        return Ok((0, Vec::new()));
    }
    let names = db.query(list_sql, params![id])?.iter().map(|r| r.get::<String>(0)).collect::<Result<Vec<_>>>()?;
    Ok((count, names))
}

/// "3 pipelines (1, 2, 3)", naming at most [`NAMED`] of them.
fn describe(count: i64, what: &str, names: &[String]) -> String {
    let more = match count as usize > names.len() {
        true => format!(", and {} more", count as usize - names.len()),
        false => String::new(),
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {what}{plural} ({}{more})", names.join(", "))
}

/// Dependants named in a refusal.
const NAMED: usize = 10;

/// Deletes project `id` with its own configuration (memberships, its allowlist and outbound
/// entries, its authorization log, its place in project runners' lists), in one transaction.
/// Refused (`Conflict`, naming them) while it has pipelines, or while another project's or
/// group's allowlist or outbound entries name it.
pub fn delete_project(db: &Db, id: ProjectId) -> Result<()> {
    atomic(db, |tx| {
        let project = get_project(tx, id)?;
        let mut reasons = Vec::new();
        let (n, ids) = dependants(
            tx,
            "SELECT count(*) FROM pipelines WHERE project_id = ?1",
            &format!("SELECT CAST(id AS TEXT) FROM pipelines WHERE project_id = ?1 ORDER BY id LIMIT {NAMED}"),
            id,
        )?;
        if n > 0 {
            reasons.push(format!("it still has {}", describe(n, "pipeline", &ids)));
        }
        let (n, owners) = dependants(
            tx,
            "SELECT count(*) FROM allowlist_entries WHERE source_kind = 'project' AND source_id = ?1
             AND NOT (owner_kind = 'project' AND owner_id = ?1)",
            &format!(
                "SELECT coalesce(p.path_with_namespace, g.full_path) FROM allowlist_entries e
                 LEFT JOIN projects p ON e.owner_kind = 'project' AND p.id = e.owner_id
                 LEFT JOIN groups g ON e.owner_kind = 'group' AND g.id = e.owner_id
                 WHERE e.source_kind = 'project' AND e.source_id = ?1
                 AND NOT (e.owner_kind = 'project' AND e.owner_id = ?1)
                 ORDER BY e.owner_kind DESC, e.owner_id LIMIT {NAMED}"
            ),
            id,
        )?;
        if n > 0 {
            reasons.push(format!("it is on {}", describe(n, "job token allowlist", &owners)));
        }
        let (n, sources) = dependants(
            tx,
            "SELECT count(*) FROM outbound_entries WHERE target_kind = 'project' AND target_id = ?1 AND project_id <> ?1",
            &format!(
                "SELECT p.path_with_namespace FROM outbound_entries o JOIN projects p ON p.id = o.project_id
                 WHERE o.target_kind = 'project' AND o.target_id = ?1 AND o.project_id <> ?1
                 ORDER BY o.project_id LIMIT {NAMED}"
            ),
            id,
        )?;
        if n > 0 {
            reasons.push(format!("it is the outbound target of {}", describe(n, "project", &sources)));
        }
        if !reasons.is_empty() {
            return Err(StoreError::Conflict(format!(
                "project {} cannot be deleted: {}",
                project.path_with_namespace,
                reasons.join("; ")
            )));
        }
        for sql in [
            "DELETE FROM project_members WHERE project_id = ?1",
            "DELETE FROM allowlist_entries WHERE owner_kind = 'project' AND owner_id = ?1",
            "DELETE FROM outbound_entries WHERE project_id = ?1",
            "DELETE FROM authorization_log WHERE target_project_id = ?1 OR source_project_id = ?1",
            "DELETE FROM runner_projects WHERE project_id = ?1",
            "DELETE FROM projects WHERE id = ?1",
        ] {
            tx.execute(sql, params![id])?;
        }
        Ok(())
    })
}

/// Deletes group `id` with its memberships and its allowlist entries, in one transaction.
/// Refused (`Conflict`, naming them) while it has subgroups or projects, serves as a group
/// runner's group, or another project's or group's allowlist or outbound entries name it.
pub fn delete_group(db: &Db, id: GroupId) -> Result<()> {
    atomic(db, |tx| {
        let group = get_group(tx, id)?;
        let mut reasons = Vec::new();
        let checks: [(&str, &str, &str); 5] = [
            (
                "it still has|subgroup",
                "SELECT count(*) FROM groups WHERE parent_id = ?1",
                "SELECT full_path FROM groups WHERE parent_id = ?1 ORDER BY id",
            ),
            (
                "it still has|project",
                "SELECT count(*) FROM projects WHERE namespace_id = ?1",
                "SELECT path_with_namespace FROM projects WHERE namespace_id = ?1 ORDER BY id",
            ),
            (
                "it is the group of|runner",
                "SELECT count(*) FROM runners WHERE group_id = ?1",
                "SELECT CAST(id AS TEXT) FROM runners WHERE group_id = ?1 ORDER BY id",
            ),
            (
                "it is on|job token allowlist",
                "SELECT count(*) FROM allowlist_entries WHERE source_kind = 'group' AND source_id = ?1
                 AND NOT (owner_kind = 'group' AND owner_id = ?1)",
                "SELECT coalesce(p.path_with_namespace, g.full_path) FROM allowlist_entries e
                 LEFT JOIN projects p ON e.owner_kind = 'project' AND p.id = e.owner_id
                 LEFT JOIN groups g ON e.owner_kind = 'group' AND g.id = e.owner_id
                 WHERE e.source_kind = 'group' AND e.source_id = ?1 AND NOT (e.owner_kind = 'group' AND e.owner_id = ?1)
                 ORDER BY e.owner_kind DESC, e.owner_id",
            ),
            (
                "it is the outbound target of|project",
                "SELECT count(*) FROM outbound_entries WHERE target_kind = 'group' AND target_id = ?1",
                "SELECT p.path_with_namespace FROM outbound_entries o JOIN projects p ON p.id = o.project_id
                 WHERE o.target_kind = 'group' AND o.target_id = ?1 ORDER BY o.project_id",
            ),
        ];
        for (what, count_sql, list_sql) in checks {
            let (n, names) = dependants(tx, count_sql, &format!("{list_sql} LIMIT {NAMED}"), id)?;
            if n > 0 {
                let (verb, noun) = what.split_once('|').unwrap_or(("", what));
                reasons.push(format!("{verb} {}", describe(n, noun, &names)));
            }
        }
        if !reasons.is_empty() {
            return Err(StoreError::Conflict(format!(
                "group {} cannot be deleted: {}",
                group.full_path,
                reasons.join("; ")
            )));
        }
        for sql in [
            "DELETE FROM group_members WHERE group_id = ?1",
            "DELETE FROM allowlist_entries WHERE owner_kind = 'group' AND owner_id = ?1",
            "DELETE FROM groups WHERE id = ?1",
        ] {
            tx.execute(sql, params![id])?;
        }
        Ok(())
    })
}

/// The projects `user` may manage (Maintainer or Owner on the project or on any group above it,
/// as [`effective_access`] takes the highest of those), by id.
pub fn list_projects_managed_by(db: &Db, user: UserId, page: Page) -> Result<Listed<Project>> {
    let from_where = "projects WHERE projects.id IN (
            SELECT project_id FROM project_members WHERE user_id = ?1 AND access_level >= 40)
        OR projects.namespace_id IN (
            SELECT ns.id FROM groups ns
            JOIN groups g ON ns.traversal_ids = g.traversal_ids OR ns.traversal_ids LIKE g.traversal_ids || ' %'
            JOIN group_members m ON m.group_id = g.id
            WHERE m.user_id = ?1 AND m.access_level >= 40)";
    page::fetch(db, PROJECT_COLUMNS, from_where, "id", params![user], page, project_from_row)
}

/// The groups `user` may manage (Maintainer or Owner on the group or on a group above it), by id.
pub fn list_groups_managed_by(db: &Db, user: UserId, page: Page) -> Result<Listed<Group>> {
    let from_where = "groups WHERE groups.id IN (
            SELECT ns.id FROM groups ns
            JOIN groups g ON ns.traversal_ids = g.traversal_ids OR ns.traversal_ids LIKE g.traversal_ids || ' %'
            JOIN group_members m ON m.group_id = g.id
            WHERE m.user_id = ?1 AND m.access_level >= 40)";
    page::fetch(db, GROUP_COLUMNS, from_where, "id", params![user], page, group_from_row)
}
