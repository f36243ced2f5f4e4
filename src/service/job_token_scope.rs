//! Editing a project's or group's job token scope (SPEC §4.3–§4.5): settings, inbound allowlist
//! entries, outbound entries, the authorization log and autopopulate.
//!
//! Every use case is one write transaction that first checks that the actor may edit the owner
//! ([`editor::may_edit`]); a refusal rolls the transaction back, so a refused request changes
//! nothing. Results are typed rows with the paths the API shows; rendering is the caller's.

use serde::Serialize;
use serde_json::{json, Value as Json};

use super::editor::{self, Actor};
use super::id_token_sub::{self, SubCheckError};
use crate::domain::{GroupId, ProjectId, ScopeSet, UserId};
use crate::policy::{self, autopopulate, ElevationBlock};
use crate::store::allowlist::{self, Authorization, Entry, EntryScopes, Node, OutboundEntry, MAX_ENTRIES};
use crate::store::audit::{self, Event, Target};
use crate::store::namespaces::{self, Group};
use crate::store::{settings, Db, Listed, Page, Result as StoreResult, Store, StoreError};

/// Why a job token scope request was refused. The messages are safe for clients; a store
/// failure keeps its cause for the log.
#[derive(Debug, thiserror::Error)]
pub enum ScopeError {
    /// The owner or source does not exist or the actor cannot see it: the same answer either way.
    #[error("{} not found", node_kind(*.0))]
    NotFound(Node),
    #[error("editing the job token scope of {0} needs the Maintainer or Owner role on it")]
    Forbidden(String),
    /// `level` is "the instance" or "group <path>".
    #[error("elevated job token scopes ({scopes}) are not allowed: {level} forbids them (job_token_elevation_allowed = false)")]
    ElevationForbidden { scopes: String, level: String },
    #[error("the instance enforces job token allowlists (enforce_job_token_allowlist); they cannot be turned off")]
    AllowlistEnforced,
    #[error("a project cannot add itself to its own allowlist")]
    OwnProjectAsSource,
    #[error("a project's own jobs need no outbound entry for itself")]
    OwnProjectAsTarget,
    #[error(
        "the allowlist already has the maximum of {limit} {kind} entries (project and group entries are counted apart)"
    )]
    AllowlistFull { kind: &'static str, limit: i64 },
    /// Autopopulate could not fit the log into the room left, or hit the limit while adding.
    #[error("{0}")]
    CannotAutopopulate(String),
    /// An `id_token_sub_claim_components` setting that is malformed or could exceed what
    /// federation consumers accept (the sentence says which).
    #[error("{0}")]
    SubComponents(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SubCheckError> for ScopeError {
    fn from(e: SubCheckError) -> ScopeError {
        match e {
            SubCheckError::TooLong(e) => ScopeError::SubComponents(e.to_string()),
            SubCheckError::Store(e) => ScopeError::Store(e),
        }
    }
}

fn node_kind(node: Node) -> &'static str {
    match node {
        Node::Project(_) => "project",
        Node::Group(_) => "group",
    }
}

/// Runs `f` in one write transaction after checking that `actor` may edit `owner`. An `Err` from
/// either rolls everything back.
async fn edit<T, F>(store: &Store, actor: Actor, owner: Node, f: F) -> Result<T, ScopeError>
where
    T: Send + 'static,
    F: FnOnce(&Db) -> Result<T, ScopeError> + Send + 'static,
{
    super::transaction(store, move |tx| {
        editor::may_edit(tx, actor, owner)?;
        f(tx)
    })
    .await
}

/// What an audited edit returns besides its result: the state before and after (public fields).
type Change<T> = (T, Option<Json>, Option<Json>);

/// [`edit`], recording `action` on `owner` in the same transaction. An edit whose `before`
/// equals its `after` changed nothing and records nothing.
async fn change<T, F>(
    store: &Store,
    actor: Actor,
    owner: Node,
    action: &'static str,
    now: i64,
    f: F,
) -> Result<T, ScopeError>
where
    T: Send + 'static,
    F: FnOnce(&Db) -> Result<Change<T>, ScopeError> + Send + 'static,
{
    super::transaction(store, move |tx| {
        let path = editor::may_edit(tx, actor, owner)?;
        let (value, before, after) = f(tx)?;
        if before.is_none() || before != after {
            let event = match owner {
                Node::Project(id) => {
                    Event::new(actor.into(), action, Target::new("project", id, path), now).of_project(id)
                }
                Node::Group(id) => Event::new(actor.into(), action, Target::new("group", id, path), now).of_group(id),
            };
            audit::record(tx, &Event { before, after, ..event })?;
        }
        Ok(value)
    })
    .await
}

fn to_json(value: impl Serialize) -> Option<Json> {
    serde_json::to_value(value).ok()
}

/// An allowlist entry's public fields, as its audit events show them.
fn entry_json(shown: &ShownEntry) -> Json {
    let (kind, id) = match shown.entry.source {
        Node::Project(id) => ("project", id),
        Node::Group(id) => ("group", id),
    };
    json!({
        "source_type": kind,
        "source_id": id,
        "source_path": shown.source_path,
        "default_permissions": shown.entry.scopes.is_none(),
        "scopes": shown.entry.scopes,
        "autopopulated": shown.entry.autopopulated,
    })
}

fn outbound_json(shown: &ShownOutbound) -> Json {
    let (kind, id) = match shown.entry.target {
        Node::Project(id) => ("project", id),
        Node::Group(id) => ("group", id),
    };
    json!({ "target_type": kind, "target_id": id, "target_path": shown.target_path, "scopes": shown.entry.scopes })
}

/// `job_token_scope.allowlist.<verb>` for a project source, `….groups_allowlist.<verb>` for a group.
fn entry_action(source: Node, verbs: (&'static str, &'static str)) -> &'static str {
    match source {
        Node::Project(_) => verbs.0,
        Node::Group(_) => verbs.1,
    }
}

/// The owner's groups, nearest first (a group owner's own group first).
fn owner_groups(conn: &Db, owner: Node) -> StoreResult<Vec<Group>> {
    let traversal = match owner {
        Node::Project(id) => {
            let p = namespaces::get_project(conn, id)?;
            namespaces::get_group(conn, p.namespace_id)?.traversal_ids
        }
        Node::Group(id) => namespaces::get_group(conn, id)?.traversal_ids,
    };
    namespaces::groups_nearest_first(conn, &traversal)
}

/// The level that forbids elevated scopes for an owner whose groups (nearest first) are
/// `groups`: `None` while the instance and every group allow them, else "the instance" or
/// "group <path>" (SPEC §4.2). The settings API's refusal and the console's elevation state
/// both come from here.
fn elevation_forbidden_by(instance_allows: bool, groups: &[Group]) -> Option<String> {
    match policy::elevation_allowed(instance_allows, groups.iter().map(|g| (g.id, g.job_token_elevation_allowed))) {
        Ok(()) => None,
        Err(ElevationBlock::Instance) => Some("the instance".to_owned()),
        Err(ElevationBlock::Group(id)) => {
            Some(format!("group {}", groups.iter().find(|g| g.id == id).map_or("", |g| g.full_path.as_str())))
        }
    }
}

/// Refuses elevated scopes while elevation is forbidden for `owner`, naming the level.
fn check_elevation(conn: &Db, owner: Node, scopes: ScopeSet) -> Result<(), ScopeError> {
    let elevated = scopes.intersect(ScopeSet::elevated());
    if elevated.is_empty() {
        return Ok(());
    }
    let groups = owner_groups(conn, owner)?;
    let instance = settings::get(conn)?.job_token_elevation_allowed;
    match elevation_forbidden_by(instance, &groups) {
        None => Ok(()),
        Some(level) => Err(ScopeError::ElevationForbidden { scopes: elevated.names().join(", "), level }),
    }
}

fn refuse_disabling_enforced(conn: &Db, inbound: Option<Option<bool>>) -> Result<(), ScopeError> {
    match inbound == Some(Some(false)) && settings::get(conn)?.enforce_job_token_allowlist {
        true => Err(ScopeError::AllowlistEnforced),
        false => Ok(()),
    }
}

// ---- settings ----

/// A project's job token scope settings.
#[derive(Debug, Serialize)]
pub struct ProjectSettings {
    /// Effective: is the inbound allowlist in force?
    pub inbound_enabled: bool,
    /// The explicit setting; `null` inherits.
    pub inbound_setting: Option<bool>,
    pub outbound_enabled: bool,
    pub job_token_scopes: ScopeSet,
    /// The claims the ID tokens' `sub` is made of, in force (own, nearest group, or default).
    pub id_token_sub_claim_components: Vec<String>,
    /// The explicit setting; `null` inherits.
    pub id_token_sub_claim_components_setting: Option<Vec<String>>,
    /// Where `inbound_enabled` comes from (the console shows it; the API does not).
    #[serde(skip)]
    pub inbound_source: InboundSource,
    /// The level that forbids elevated job token scopes ("the instance" or "group <path>"),
    /// `None` while they are allowed (the console shows it; the API does not).
    #[serde(skip)]
    pub elevation_forbidden_by: Option<String>,
}

/// Where an effective inbound setting comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundSource {
    /// The instance enforces job token allowlists.
    Instance,
    /// The owner's own setting.
    Own,
    /// The setting of this ancestor group (its full path).
    Group(String),
    /// Unset everywhere: on by default.
    Default,
}

/// The `sub` components in force for `settings` (own first), and the own setting.
fn sub_components(settings: Vec<Option<Vec<String>>>) -> (Vec<String>, Option<Vec<String>>) {
    let in_force = policy::id_token::sub_components_in_force(settings.iter().map(Option::as_deref));
    (in_force, settings.into_iter().next().flatten())
}

fn project_settings(conn: &Db, id: ProjectId) -> StoreResult<ProjectSettings> {
    let project = namespaces::get_project(conn, id)?;
    let groups = owner_groups(conn, Node::Project(id))?;
    let group_settings: Vec<Option<bool>> = groups.iter().map(|g| g.inbound_enabled).collect();
    let instance = settings::get(conn)?;
    let enforce = instance.enforce_job_token_allowlist;
    let (inbound_enabled, origin) = policy::inbound_origin(enforce, project.inbound_enabled, &group_settings);
    let inbound_source = match origin {
        policy::InboundOrigin::Instance => InboundSource::Instance,
        policy::InboundOrigin::Own => InboundSource::Own,
        policy::InboundOrigin::Group(i) => {
            InboundSource::Group(groups.get(i).map(|g| g.full_path.clone()).unwrap_or_default())
        }
        policy::InboundOrigin::Default => InboundSource::Default,
    };
    let (in_force, own) = sub_components(namespaces::id_token_sub_settings(conn, id)?);
    Ok(ProjectSettings {
        id_token_sub_claim_components: in_force,
        id_token_sub_claim_components_setting: own,
        inbound_enabled,
        inbound_setting: project.inbound_enabled,
        outbound_enabled: project.outbound_enabled,
        job_token_scopes: project.job_token_scopes.unwrap_or_else(ScopeSet::default_set),
        inbound_source,
        elevation_forbidden_by: elevation_forbidden_by(instance.job_token_elevation_allowed, &groups),
    })
}

/// A group's job token scope settings.
#[derive(Debug, Serialize)]
pub struct GroupSettings {
    pub inbound_enabled: bool,
    pub inbound_setting: Option<bool>,
    /// The explicit setting; `null` inherits.
    pub job_token_elevation_allowed: Option<bool>,
    /// Effective: instance and every group up to the root allow elevated scopes.
    pub job_token_elevation_effective: bool,
    /// The claims the ID tokens' `sub` is made of, in force (own, nearest group, or default).
    pub id_token_sub_claim_components: Vec<String>,
    /// The explicit setting; `null` inherits.
    pub id_token_sub_claim_components_setting: Option<Vec<String>>,
}

fn group_settings(conn: &Db, id: GroupId) -> StoreResult<GroupSettings> {
    let groups = owner_groups(conn, Node::Group(id))?;
    let instance = settings::get(conn)?;
    let own = groups.first().ok_or_else(|| StoreError::NotFound(format!("group {id} not found")))?;
    let inherited: Vec<Option<bool>> = groups.iter().skip(1).map(|g| g.inbound_enabled).collect();
    let (in_force, own_sub) = sub_components(namespaces::group_id_token_sub_settings(conn, id)?);
    Ok(GroupSettings {
        id_token_sub_claim_components: in_force,
        id_token_sub_claim_components_setting: own_sub,
        inbound_enabled: policy::inbound_in_force(
            instance.enforce_job_token_allowlist,
            own.inbound_enabled,
            &inherited,
        ),
        inbound_setting: own.inbound_enabled,
        job_token_elevation_allowed: own.job_token_elevation_allowed,
        job_token_elevation_effective: elevation_forbidden_by(instance.job_token_elevation_allowed, &groups).is_none(),
    })
}

/// A change to a project's settings; `None` leaves a field as it is (`Some(None)` inherits).
#[derive(Debug, Clone, Default)]
pub struct ProjectChange {
    pub inbound_enabled: Option<Option<bool>>,
    pub outbound_enabled: Option<bool>,
    pub job_token_scopes: Option<ScopeSet>,
    pub id_token_sub_claim_components: Option<Option<Vec<String>>>,
}

/// A change to a group's settings; `None` leaves a field as it is (`Some(None)` inherits).
#[derive(Debug, Clone)]
pub struct GroupChange {
    pub inbound_enabled: Option<Option<bool>>,
    pub job_token_elevation_allowed: Option<Option<bool>>,
    pub id_token_sub_claim_components: Option<Option<Vec<String>>>,
}

/// Refuses a malformed `sub` components setting (whether its `sub`s fit is checked after the
/// write, against real values: [`super::id_token_sub`]).
fn check_sub(components: &Option<Option<Vec<String>>>) -> Result<(), ScopeError> {
    match components {
        Some(Some(list)) => policy::id_token::check_sub_components(list).map_err(ScopeError::SubComponents),
        _ => Ok(()),
    }
}

pub async fn project_settings_of(store: &Store, actor: Actor, id: ProjectId) -> Result<ProjectSettings, ScopeError> {
    edit(store, actor, Node::Project(id), move |c| Ok(project_settings(c, id)?)).await
}

/// Applies `change`: an enforced allowlist cannot be turned off, elevated scopes need elevation.
pub async fn change_project_settings(
    store: &Store,
    actor: Actor,
    id: ProjectId,
    change: ProjectChange,
    now: i64,
) -> Result<ProjectSettings, ScopeError> {
    let action = "job_token_scope.settings.updated";
    self::change(store, actor, Node::Project(id), action, now, move |c| {
        refuse_disabling_enforced(c, change.inbound_enabled)?;
        check_sub(&change.id_token_sub_claim_components)?;
        let before = to_json(project_settings(c, id)?);
        if let Some(scopes) = change.job_token_scopes {
            check_elevation(c, Node::Project(id), scopes)?;
            namespaces::set_job_token_scopes(c, id, scopes)?;
        }
        if let Some(value) = change.inbound_enabled {
            allowlist::set_project_inbound(c, id, value)?;
        }
        if let Some(value) = change.outbound_enabled {
            allowlist::set_project_outbound(c, id, value)?;
        }
        if let Some(value) = &change.id_token_sub_claim_components {
            namespaces::set_project_id_token_sub(c, id, value.as_deref())?;
            id_token_sub::check_project(c, id, id_token_sub::Changed::Components)?;
        }
        let after = project_settings(c, id)?;
        let shown = to_json(&after);
        Ok((after, before, shown))
    })
    .await
}

pub async fn group_settings_of(store: &Store, actor: Actor, id: GroupId) -> Result<GroupSettings, ScopeError> {
    edit(store, actor, Node::Group(id), move |c| Ok(group_settings(c, id)?)).await
}

/// Applies `change`: an enforced allowlist cannot be turned off.
pub async fn change_group_settings(
    store: &Store,
    actor: Actor,
    id: GroupId,
    change: GroupChange,
    now: i64,
) -> Result<GroupSettings, ScopeError> {
    let action = "job_token_scope.settings.updated";
    self::change(store, actor, Node::Group(id), action, now, move |c| {
        refuse_disabling_enforced(c, change.inbound_enabled)?;
        check_sub(&change.id_token_sub_claim_components)?;
        let before = to_json(group_settings(c, id)?);
        if let Some(value) = change.inbound_enabled {
            allowlist::set_group_inbound(c, id, value)?;
        }
        if let Some(value) = change.job_token_elevation_allowed {
            allowlist::set_group_elevation(c, id, value)?;
        }
        if let Some(value) = &change.id_token_sub_claim_components {
            namespaces::set_group_id_token_sub(c, id, value.as_deref())?;
            let path = namespaces::get_group(c, id)?.full_path;
            id_token_sub::check_group(c, &path, id)?;
        }
        let after = group_settings(c, id)?;
        let shown = to_json(&after);
        Ok((after, before, shown))
    })
    .await
}

// ---- allowlist entries ----

/// An allowlist entry with the full path of its source.
#[derive(Debug, Clone)]
pub struct ShownEntry {
    pub entry: Entry,
    pub source_path: String,
}

/// An outbound entry with the full path of its target.
#[derive(Debug, Clone)]
pub struct ShownOutbound {
    pub entry: OutboundEntry,
    pub target_path: String,
}

fn path_of(conn: &Db, node: Node) -> StoreResult<String> {
    Ok(match node {
        Node::Project(id) => namespaces::get_project(conn, id)?.path_with_namespace,
        Node::Group(id) => namespaces::get_group(conn, id)?.full_path,
    })
}

fn shown(conn: &Db, entry: Entry) -> StoreResult<ShownEntry> {
    Ok(ShownEntry { source_path: path_of(conn, entry.source)?, entry })
}

fn shown_outbound(conn: &Db, entry: OutboundEntry) -> StoreResult<ShownOutbound> {
    Ok(ShownOutbound { target_path: path_of(conn, entry.target)?, entry })
}

impl From<allowlist::InsertError> for ScopeError {
    fn from(e: allowlist::InsertError) -> Self {
        match e {
            allowlist::InsertError::Full(limit) => ScopeError::AllowlistFull { kind: limit.kind, limit: limit.limit },
            allowlist::InsertError::Store(e) => e.into(),
        }
    }
}

/// One page of the owner's entries whose source is of `kind` (`"project"` or `"group"`).
pub async fn entries(
    store: &Store,
    actor: Actor,
    owner: Node,
    kind: &'static str,
    page: Page,
) -> Result<Listed<ShownEntry>, ScopeError> {
    edit(store, actor, owner, move |c| {
        let listed = allowlist::list_entries(c, owner, kind, page)?;
        let items = listed.items.into_iter().map(|e| shown(c, e)).collect::<StoreResult<Vec<_>>>()?;
        Ok(Listed { total: listed.total, items })
    })
    .await
}

/// The allowlist entries project `id` inherits from each group above it (nearest first, with the
/// group's full path), read with the permission reading the project's own settings needs. Only
/// entries whose source the actor can see are shown; the count of hidden ones comes with them.
pub async fn inherited_entries(
    store: &Store,
    actor: Actor,
    id: ProjectId,
) -> Result<Vec<(String, Vec<ShownEntry>, usize)>, ScopeError> {
    edit(store, actor, Node::Project(id), move |c| {
        let mut levels = Vec::new();
        for group in owner_groups(c, Node::Project(id))? {
            let (mut items, mut hidden) = (Vec::new(), 0);
            for kind in ["project", "group"] {
                let page = Page::new(1, crate::store::page::MAX_PER_PAGE);
                for entry in allowlist::list_entries(c, Node::Group(group.id), kind, page)?.items {
                    match editor::may_see(c, actor, entry.source) {
                        Ok(_) => items.push(shown(c, entry)?),
                        Err(ScopeError::Store(e)) => return Err(e.into()),
                        Err(_) => hidden += 1,
                    }
                }
            }
            levels.push((group.full_path, items, hidden));
        }
        Ok(levels)
    })
    .await
}

/// Adds `source` to `owner`'s allowlist. The editor must see the source; elevated scopes need
/// elevation; a project cannot list itself (a group may: its projects reach each other).
pub async fn add_entry(
    store: &Store,
    actor: Actor,
    owner: Node,
    source: Node,
    grant: EntryScopes,
    now: i64,
) -> Result<ShownEntry, ScopeError> {
    if let (Node::Project(a), Node::Project(b)) = (owner, source) {
        if a == b {
            return Err(ScopeError::OwnProjectAsSource);
        }
    }
    let added_by: Option<UserId> = match actor {
        Actor::User(id) => Some(id),
        Actor::Admin => None,
    };
    let action = entry_action(source, ("job_token_scope.allowlist.added", "job_token_scope.groups_allowlist.added"));
    change(store, actor, owner, action, now, move |c| {
        let source_path = editor::may_see(c, actor, source)?;
        if let Some(scopes) = grant {
            check_elevation(c, owner, scopes)?;
        }
        let entry = allowlist::insert_entry(c, owner, source, grant, false, added_by, now)?;
        let shown = ShownEntry { entry, source_path };
        let after = entry_json(&shown);
        Ok((shown, None, Some(after)))
    })
    .await
}

/// Changes the scopes of `owner`'s entry for `source`; elevated scopes need elevation.
pub async fn change_entry(
    store: &Store,
    actor: Actor,
    owner: Node,
    source: Node,
    grant: EntryScopes,
    now: i64,
) -> Result<ShownEntry, ScopeError> {
    let action =
        entry_action(source, ("job_token_scope.allowlist.updated", "job_token_scope.groups_allowlist.updated"));
    change(store, actor, owner, action, now, move |c| {
        if let Some(scopes) = grant {
            check_elevation(c, owner, scopes)?;
        }
        let before = allowlist::get_entry(c, owner, source)?.map(|e| shown(c, e)).transpose()?;
        let after = shown(c, allowlist::update_entry(c, owner, source, grant)?)?;
        let shown_after = entry_json(&after);
        Ok((after, before.as_ref().map(entry_json), Some(shown_after)))
    })
    .await
}

/// The owner's entry for `source`; none is `NotFound`, as in [`change_entry`].
pub async fn entry(store: &Store, actor: Actor, owner: Node, source: Node) -> Result<ShownEntry, ScopeError> {
    edit(store, actor, owner, move |c| {
        let found = allowlist::get_entry(c, owner, source)?;
        let entry = found.ok_or_else(|| allowlist::not_on_allowlist(source))?;
        Ok(shown(c, entry)?)
    })
    .await
}

pub async fn remove_entry(store: &Store, actor: Actor, owner: Node, source: Node, now: i64) -> Result<(), ScopeError> {
    let action =
        entry_action(source, ("job_token_scope.allowlist.removed", "job_token_scope.groups_allowlist.removed"));
    change(store, actor, owner, action, now, move |c| {
        let before = allowlist::get_entry(c, owner, source)?.map(|e| shown(c, e)).transpose()?;
        allowlist::delete_entry(c, owner, source)?;
        Ok(((), before.as_ref().map(entry_json), None))
    })
    .await
}

// ---- outbound ----

/// One page of project `id`'s outbound entries.
pub async fn outbound(
    store: &Store,
    actor: Actor,
    id: ProjectId,
    page: Page,
) -> Result<Listed<ShownOutbound>, ScopeError> {
    edit(store, actor, Node::Project(id), move |c| {
        let listed = allowlist::list_outbound_page(c, id, page)?;
        let items = listed.items.into_iter().map(|e| shown_outbound(c, e)).collect::<StoreResult<Vec<_>>>()?;
        Ok(Listed { total: listed.total, items })
    })
    .await
}

/// Says that project `id`'s jobs go to `target` with `scopes`; the editor must see the target.
pub async fn add_outbound(
    store: &Store,
    actor: Actor,
    id: ProjectId,
    target: Node,
    scopes: ScopeSet,
    now: i64,
) -> Result<Option<ShownOutbound>, ScopeError> {
    if target == Node::Project(id) {
        return Err(ScopeError::OwnProjectAsTarget);
    }
    change(store, actor, Node::Project(id), "job_token_scope.outbound.added", now, move |c| {
        editor::may_see(c, actor, target)?;
        allowlist::insert_outbound(c, id, target, scopes, now)?;
        let entry = allowlist::list_outbound(c, id)?.into_iter().find(|e| e.target == target);
        let shown = entry.map(|e| shown_outbound(c, e)).transpose()?;
        let after = shown.as_ref().map(outbound_json);
        Ok((shown, None, after))
    })
    .await
}

/// Project `id`'s outbound entry for `target`; none is `NotFound`, as in [`remove_outbound`].
pub async fn outbound_entry(
    store: &Store,
    actor: Actor,
    id: ProjectId,
    target: Node,
) -> Result<ShownOutbound, ScopeError> {
    edit(store, actor, Node::Project(id), move |c| {
        let found = allowlist::outbound_covering(c, id, &[target])?.into_iter().next();
        let entry = found.ok_or_else(|| allowlist::not_an_outbound_target(target))?;
        Ok(shown_outbound(c, entry)?)
    })
    .await
}

pub async fn remove_outbound(
    store: &Store,
    actor: Actor,
    id: ProjectId,
    target: Node,
    now: i64,
) -> Result<(), ScopeError> {
    change(store, actor, Node::Project(id), "job_token_scope.outbound.removed", now, move |c| {
        let before = allowlist::list_outbound(c, id)?.into_iter().find(|e| e.target == target);
        let before = before.map(|e| shown_outbound(c, e)).transpose()?;
        allowlist::delete_outbound(c, id, target)?;
        Ok(((), before.as_ref().map(outbound_json), None))
    })
    .await
}

// ---- authorization log and autopopulate ----

/// One page of project `id`'s authorization log.
pub async fn authorizations(
    store: &Store,
    actor: Actor,
    id: ProjectId,
    page: Page,
) -> Result<Listed<Authorization>, ScopeError> {
    edit(store, actor, Node::Project(id), move |c| Ok(allowlist::list_authorizations_page(c, id, page)?)).await
}

/// Turns the target's authorization log into allowlist entries with exactly the scopes each
/// source used (compacted into groups when they would not fit), marks them autopopulated, and
/// switches the allowlist on. Sources that used only visibility reads get no entry. The pending
/// counts of `authlog` are written first, so the log is complete.
pub async fn autopopulate(
    store: &Store,
    authlog: &super::authlog::AuthLog,
    actor: Actor,
    id: ProjectId,
    now: i64,
) -> Result<Vec<ShownEntry>, ScopeError> {
    // Off the async worker: the PostgreSQL client must not block on it.
    let (log, flushed) = (authlog.clone(), store.clone());
    actix_web::web::block(move || log.flush_all(&flushed, now)).await.map_err(|_| StoreError::Blocking)?;
    let owner = Node::Project(id);
    change(store, actor, owner, "job_token_scope.autopopulated", now, move |c| {
        let mut seen = Vec::new();
        for row in allowlist::list_authorizations(c, id)? {
            let source = namespaces::get_project(c, row.source_project_id)?;
            let groups = namespaces::get_group(c, source.namespace_id)?.traversal_ids;
            let covered = allowlist::get_entry(c, owner, Node::Project(source.id))?.is_some()
                || !allowlist::entries_for_sources(
                    c,
                    owner,
                    &groups.iter().map(|g| Node::Group(*g)).collect::<Vec<_>>(),
                )?
                .is_empty();
            if !covered {
                seen.push(autopopulate::Seen { project: source.id, groups, scopes: row.scopes });
            }
        }
        let room =
            |kind| Ok::<_, StoreError>((MAX_ENTRIES - allowlist::count_entries(c, owner, kind)?).max(0) as usize);
        let entries = autopopulate::entries(&seen, room("project")?, room("group")?)
            .map_err(|e| ScopeError::CannotAutopopulate(e.to_string()))?;
        let mut added = Vec::new();
        for (entry, mut scopes) in entries {
            // Elevated scopes used while elevation was allowed are not re-added once it is not.
            match check_elevation(c, owner, scopes) {
                Ok(()) => {}
                Err(ScopeError::Store(e)) => return Err(e.into()),
                Err(_) => scopes = scopes.minus(ScopeSet::elevated()),
            }
            let source = match entry {
                autopopulate::NewEntry::Project(p) => Node::Project(p),
                autopopulate::NewEntry::Group(g) => Node::Group(g),
            };
            match allowlist::insert_entry(c, owner, source, Some(scopes), true, None, now) {
                Ok(e) => added.push(shown(c, e)?),
                Err(allowlist::InsertError::Store(e)) => return Err(e.into()),
                Err(allowlist::InsertError::Full(limit)) => {
                    return Err(ScopeError::CannotAutopopulate(format!(
                        "allowlist limit of {} {} entries",
                        limit.limit,
                        node_kind(source)
                    )))
                }
            }
        }
        allowlist::switch_inbound_on_for_autopopulate(c, id)?;
        let after = json!({ "added": added.iter().map(entry_json).collect::<Vec<_>>() });
        Ok((added, None, Some(after)))
    })
    .await
}

/// Removes every autopopulated entry and restores the inbound setting autopopulate replaced.
pub async fn remove_autopopulated(store: &Store, actor: Actor, id: ProjectId, now: i64) -> Result<(), ScopeError> {
    let owner = Node::Project(id);
    change(store, actor, owner, "job_token_scope.autopopulated.removed", now, move |c| {
        let mut removed = Vec::new();
        for entry in allowlist::autopopulated_entries(c, owner)? {
            removed.push(entry_json(&shown(c, entry)?));
        }
        allowlist::delete_autopopulated(c, owner)?;
        allowlist::restore_inbound_after_autopopulate(c, id)?;
        Ok(((), Some(json!({ "autopopulated": removed })), Some(json!({ "autopopulated": [] }))))
    })
    .await
}
