//! The cross-project decision, loaded: fills the pure `policy::decide` input with indexed
//! lookups bounded by the depth of both hierarchies (never a scan of an allowlist).

use crate::store::Db;
use serde::Serialize;

use super::live::{self, Authentic, Inactive, LiveError};
use super::Deps;
use crate::domain::{ProjectId, Scope, ScopeSet, UserId};
use crate::policy::{
    self, AllowlistLevel, CrossProjectInput, EntryGrant, GroupSourceEntry, Namespace, Origin, OutboundEntry, Principal,
};
use crate::store::allowlist::{self, Entry};
use crate::store::namespaces::{self, Project};
use crate::store::{settings, users, Result, StoreError};
use crate::token::details;

/// A project named by id or by full path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetRef {
    Id(ProjectId),
    Path(String),
}

impl std::fmt::Display for TargetRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetRef::Id(id) => write!(f, "{id}"),
            TargetRef::Path(path) => f.write_str(path),
        }
    }
}

impl From<&details::ProjectRef> for TargetRef {
    fn from(project: &details::ProjectRef) -> Self {
        match project {
            details::ProjectRef::Id(id) => TargetRef::Id(*id),
            details::ProjectRef::Path(path) => TargetRef::Path(path.clone()),
        }
    }
}

/// Loads a project by id or path; `None` when there is none.
pub fn find_project(conn: &Db, target: &TargetRef) -> Result<Option<Project>> {
    match target {
        TargetRef::Id(id) => match namespaces::get_project(conn, *id) {
            Ok(project) => Ok(Some(project)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        },
        TargetRef::Path(path) => namespaces::find_project_by_path(conn, path),
    }
}

/// The decision endpoint's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub allowed: bool,
    pub reason: String,
    pub source_project: Option<String>,
    pub target_project: Option<String>,
    /// Every scope the token answers for on the target; empty when denied.
    pub granted_scopes: ScopeSet,
}

impl Answer {
    fn denied(reason: String, source: Option<String>, target: Option<String>) -> Answer {
        Answer {
            allowed: false,
            reason,
            source_project: source,
            target_project: target,
            granted_scopes: ScopeSet::EMPTY,
        }
    }
}

/// What the decision's read transaction found for a live token.
enum Decided {
    UnknownTarget(TargetRef),
    Answered { target_id: ProjectId, answer: Answer, needed_entry: ScopeSet },
}

/// May the presented token use `scope` on `target`? Answers only within what the token itself
/// carries and what is still true (see [`policy::cross_project_grant`]); `audience` is the
/// asking resource server's (empty for the admin or a server without one).
pub async fn authorize(
    deps: Deps<'_>,
    audience: &[String],
    token: &str,
    target: TargetRef,
    scope: Scope,
    now: i64,
) -> Result<Answer> {
    // One read transaction for the token's record, its liveness and the decision.
    let decided = live::live_for_with(deps.store, deps.keys, token, deps.asker(audience), now, move |c, found| {
        let Some(project) = find_project(c, &target)? else { return Ok(Decided::UnknownTarget(target)) };
        let (answer, needed_entry) = decide_for_token(c, found, &project, scope)?;
        Ok(Decided::Answered { target_id: project.id, answer, needed_entry })
    })
    .await;
    let (found, decided) = match decided {
        Ok(found) => found,
        Err(LiveError::Store(e)) => return Err(e),
        Err(LiveError::Inactive(inactive)) => {
            deps.metrics.deny(inactive.reason());
            return Ok(inactive_answer(inactive, audience, &deps.config.default_audience));
        }
    };
    let source_id = found.claims.project_id;
    let (target_id, answer, needed_entry) = match decided {
        Decided::Answered { target_id, answer, needed_entry } => (target_id, answer, needed_entry),
        Decided::UnknownTarget(target) => {
            deps.metrics.deny("target_not_found");
            return Ok(unknown_target_answer(&target, found.claims.project_path));
        }
    };
    match answer.allowed {
        true if target_id != source_id => deps.authlog.record(target_id, source_id, needed_entry, now),
        true => {}
        false => deps.metrics.deny("cross_project"),
    }
    Ok(answer)
}

/// The answer for a token that is not live (both projects unknown to the asker).
pub fn inactive_answer(inactive: Inactive, audience: &[String], default_audience: &str) -> Answer {
    let reason = match inactive {
        Inactive::OtherAudience => format!(
            "the job token's audience names neither this resource server's audience ({}) nor the default \
             audience {default_audience}",
            audience.join(", "),
        ),
        other => format!("the job token is not active: {other}"),
    };
    Answer::denied(reason, None, None)
}

fn unknown_target_answer(target: &TargetRef, source_path: String) -> Answer {
    Answer::denied(format!("project {target} does not exist"), Some(source_path), None)
}

/// The decision endpoint's answer for an authentic token, computed without counting it or
/// recording it in the authorization log (an explanation, not an access): `inactive` is why the
/// token is not live, if it is not.
pub fn explain(
    conn: &Db,
    token: &Authentic,
    inactive: Option<Inactive>,
    target: &TargetRef,
    scope: Scope,
    default_audience: &str,
) -> Result<Answer> {
    if let Some(inactive) = inactive {
        return Ok(inactive_answer(inactive, &[], default_audience));
    }
    match find_project(conn, target)? {
        None => Ok(unknown_target_answer(target, token.claims.project_path.clone())),
        Some(project) => Ok(decide_for_token(conn, token, &project, scope)?.0),
    }
}

/// What the live cross-project decision grants the job of `claims` on project `target`
/// (nothing when the project is gone).
pub fn live_cross_grant(conn: &Db, claims: &crate::token::Claims, target: ProjectId) -> Result<ScopeSet> {
    let Some(project) = find_project(conn, &TargetRef::Id(target))? else { return Ok(ScopeSet::EMPTY) };
    let job = JobSide { source: claims.project_id, user_id: claims.user_id, ref_protected: claims.ref_protected };
    Ok(policy::decide(&load_input(conn, &job, &project)?).allowed)
}

/// The answer for a live token on `target`, and the scopes of it only `target`'s allowlist grants.
fn decide_for_token(conn: &Db, token: &Authentic, target: &Project, scope: Scope) -> Result<(Answer, ScopeSet)> {
    let claims = &token.claims;
    let carried = ScopeSet::parse_space_separated(&claims.scope).unwrap_or_default();
    let (source, target_path) = (&claims.project_path, &target.path_with_namespace);
    // S = T: the token's own grant decides (SPEC §4.3 step 6), within what is still true.
    let (granted, reason, floor) = if target.id == claims.project_id {
        let still = carried.intersect(super::mint::own_grant_now(conn, claims.job_id)?);
        let reason = match (carried.contains(scope), still.contains(scope)) {
            (true, true) => format!("allowed: the job token of {source} carries {scope} on its own project"),
            (true, false) => format!(
                "job token from {source} no longer holds {scope} on its own project: the user's rights or the \
                 project's job token settings changed since it was minted"
            ),
            (false, _) => format!("job token from {source} does not carry {scope} on its own project"),
        };
        (still, reason, still)
    } else {
        let decision = policy::decide_for(&load_input(conn, &JobSide::of(claims), target)?, scope);
        let (origin, in_details) = carried_on(token, target.id);
        let granted = policy::cross_project_grant(origin, in_details, decision.allowed);
        let reason = match origin == Origin::Exchange && !in_details.unwrap_or_default().contains(scope) {
            true => format!(
                "job token from {source} is not allowed to access {target_path}: the token was obtained by token \
                 exchange and its authorization_details do not include {scope} on {target_path}"
            ),
            false => decision.reason,
        };
        (granted, reason, decision.floor)
    };
    let allowed = granted.contains(scope);
    let answer = Answer {
        allowed,
        reason,
        source_project: Some(source.clone()),
        target_project: Some(target_path.clone()),
        granted_scopes: if allowed { granted } else { ScopeSet::EMPTY },
    };
    Ok((answer, ScopeSet::EMPTY.with(scope).minus(floor)))
}

/// How `token` was obtained, and the actions its `authorization_details` carry for `target`.
fn carried_on(token: &Authentic, target: ProjectId) -> (Origin, Option<ScopeSet>) {
    let origin = if token.record.parent_jti.is_some() { Origin::Exchange } else { Origin::Runner };
    let in_details = token
        .claims
        .authorization_details
        .iter()
        .filter_map(|v| serde_json::from_value::<details::Granted>(v.clone()).ok())
        .find(|d| d.project_id == target)
        .map(|d| d.actions);
    (origin, in_details)
}

/// Every scope a live token answers for on `target` now — the decision endpoint's rule for all
/// scopes at once (own project: what it carries and still holds; another project: SPEC §4.3
/// within what the token carries) — and the floor, the part no allowlist entry was needed for.
pub fn token_grant(conn: &Db, token: &Authentic, target: &Project) -> Result<(ScopeSet, ScopeSet)> {
    let claims = &token.claims;
    if target.id == claims.project_id {
        let carried = ScopeSet::parse_space_separated(&claims.scope).unwrap_or_default();
        let still = carried.intersect(super::mint::own_grant_now(conn, claims.job_id)?);
        return Ok((still, still));
    }
    let decision = policy::decide(&load_input(conn, &JobSide::of(claims), target)?);
    let (origin, in_details) = carried_on(token, target.id);
    Ok((policy::cross_project_grant(origin, in_details, decision.allowed), decision.floor))
}

/// The job side of a decision: who the token is for.
#[derive(Debug, Clone, Copy)]
pub struct JobSide {
    pub source: ProjectId,
    pub user_id: UserId,
    pub ref_protected: bool,
}

impl JobSide {
    /// The job a token's claims stand for.
    pub fn of(claims: &crate::token::Claims) -> JobSide {
        JobSide { source: claims.project_id, user_id: claims.user_id, ref_protected: claims.ref_protected }
    }
}

fn grant(entry: &Entry) -> EntryGrant {
    match entry.scopes {
        Some(scopes) => EntryGrant::Scopes(scopes),
        None => EntryGrant::DefaultPermissions,
    }
}

/// Loads everything `policy::decide` reads for the job's project S against `target`.
pub fn load_input(conn: &Db, job: &JobSide, target: &Project) -> Result<CrossProjectInput> {
    let source = namespaces::get_project(conn, job.source)?;
    let source_namespace = namespaces::get_group(conn, source.namespace_id)?;
    let source_groups = namespaces::groups_nearest_first(conn, &source_namespace.traversal_ids)?;
    let source_nodes: Vec<Namespace> = source_groups.iter().map(|g| Namespace::Group(g.id)).collect();
    let target_namespace = namespaces::get_group(conn, target.namespace_id)?;
    let target_groups = namespaces::groups_nearest_first(conn, &target_namespace.traversal_ids)?;
    let instance = settings::get(conn)?;

    let group_entries = |owner: Namespace| -> Result<Vec<GroupSourceEntry>> {
        let entries = allowlist::entries_for_sources(conn, owner, &source_nodes)?;
        Ok(entries
            .iter()
            .filter_map(|e| {
                let Namespace::Group(gid) = e.source else { return None };
                let depth = source_namespace.traversal_ids.iter().position(|id| *id == gid)?;
                let path = source_groups.iter().find(|g| g.id == gid).map(|g| g.full_path.clone())?;
                Some(GroupSourceEntry { group: gid, depth, group_path: path, grant: grant(e) })
            })
            .collect())
    };
    let project_entry = |owner: Namespace| -> Result<Option<EntryGrant>> {
        Ok(allowlist::get_entry(conn, owner, Namespace::Project(source.id))?.as_ref().map(grant))
    };

    let mut levels = Vec::with_capacity(target_groups.len() + 1);
    let own = Namespace::Project(target.id);
    levels.push(AllowlistLevel {
        owner: own,
        owner_path: target.path_with_namespace.clone(),
        inbound_enabled: target.inbound_enabled,
        job_token_elevation_allowed: None,
        source_project_entry: project_entry(own)?,
        source_group_entries: group_entries(own)?,
    });
    for g in &target_groups {
        let owner = Namespace::Group(g.id);
        levels.push(AllowlistLevel {
            owner,
            owner_path: g.full_path.clone(),
            inbound_enabled: g.inbound_enabled,
            job_token_elevation_allowed: g.job_token_elevation_allowed,
            source_project_entry: project_entry(owner)?,
            source_group_entries: group_entries(owner)?,
        });
    }

    let outbound_entries = match source.outbound_enabled {
        false => Vec::new(),
        true => {
            let mut targets = vec![Namespace::Project(target.id)];
            targets.extend(target_groups.iter().map(|g| Namespace::Group(g.id)));
            allowlist::outbound_covering(conn, source.id, &targets)?
                .into_iter()
                .map(|e| OutboundEntry {
                    target: e.target,
                    target_path: match e.target {
                        Namespace::Project(_) => target.path_with_namespace.clone(),
                        Namespace::Group(id) => {
                            target_groups.iter().find(|g| g.id == id).map(|g| g.full_path.clone()).unwrap_or_default()
                        }
                    },
                    scopes: e.scopes,
                })
                .collect()
        }
    };

    let user = users::get(conn, job.user_id)?;
    let access = namespaces::effective_access(conn, user.id, target.id, &target_namespace.traversal_ids)?;
    Ok(CrossProjectInput {
        source: source.id,
        source_path: source.path_with_namespace.clone(),
        target: target.id,
        target_path: target.path_with_namespace.clone(),
        target_facts: target.facts(),
        levels,
        enforce_job_token_allowlist: instance.enforce_job_token_allowlist,
        instance_elevation_allowed: instance.job_token_elevation_allowed,
        user: Principal { active: user.state == crate::domain::UserState::Active, access },
        username: user.username,
        ref_protected: job.ref_protected,
        outbound_enabled: source.outbound_enabled,
        outbound_entries,
    })
}

/// Decides for one target.
pub fn decide(conn: &Db, job: &JobSide, target: &Project) -> Result<policy::Decision> {
    Ok(policy::decide(&load_input(conn, job, target)?))
}
