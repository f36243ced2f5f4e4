//! The cross-project decision, loaded: fills the pure `policy::decide` input with indexed
//! lookups bounded by the depth of both hierarchies (never a scan of an allowlist).

use rusqlite::Connection;

use crate::domain::{ProjectId, UserId};
use crate::policy::{
    self, AllowlistLevel, CrossProjectInput, EntryGrant, GroupSourceEntry, Namespace, OutboundEntry, Principal,
};
use crate::store::allowlist::{self, Entry};
use crate::store::namespaces::{self, Project};
use crate::store::{settings, users, Result};

/// The job side of a decision: who the token is for.
#[derive(Debug, Clone, Copy)]
pub struct JobSide {
    pub source: ProjectId,
    pub user_id: UserId,
    pub ref_protected: bool,
}

fn grant(entry: &Entry) -> EntryGrant {
    match entry.scopes {
        Some(scopes) => EntryGrant::Scopes(scopes),
        None => EntryGrant::DefaultPermissions,
    }
}

/// Loads everything `policy::decide` reads for the job's project S against `target`.
pub fn load_input(conn: &Connection, job: &JobSide, target: &Project) -> Result<CrossProjectInput> {
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
pub fn decide(conn: &Connection, job: &JobSide, target: &Project) -> Result<policy::Decision> {
    Ok(policy::decide(&load_input(conn, job, target)?))
}
