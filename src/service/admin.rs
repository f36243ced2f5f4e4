//! The admin API's writes (SPEC §2, Appendix A), each with its audit event in the same
//! transaction (issue 9 point 3): a refused or failed change records nothing.
//!
//! `before`/`after` are the API's own rows, which carry no secret; credentials record their
//! public fields only.

use serde_json::json;

use crate::domain::{AccessLevel, GroupId, ProjectId, RunnerId, UserId, UserState};
use crate::secret::Secret;
use crate::store::audit::{audited, Actor, Event, Target};
use crate::store::clients::{
    self, NewResourceServer, NewRunner, ResourceServer, ResourceServerPatch, Runner, RunnerPatch,
};
use crate::store::jobs::{self, NewPipeline, PipelineWithJobs};
use crate::store::namespaces::{self, Group, MemberOf, Membership, Project, ProjectFields};
use crate::store::settings::{self, InstanceSettings};
use crate::store::users::{self, User};
use crate::store::{atomic_with, Db, Result};

use super::credentials;
use super::id_token_sub::{self, SubCheckError};

fn user_target(user: &User) -> Target {
    Target::new("user", user.id, user.username.clone())
}

pub fn create_user(db: &Db, actor: Actor, username: &str, now: i64) -> Result<User> {
    audited(db, |tx| {
        let user = users::insert(tx, username, now)?;
        let event = Event::new(actor, "user.created", user_target(&user), now).after(&user);
        Ok((user, event))
    })
}

/// Blocks or re-activates a user.
pub fn set_user_state(db: &Db, actor: Actor, id: UserId, state: UserState, now: i64) -> Result<User> {
    audited(db, |tx| {
        let before = users::get(tx, id)?;
        let after = users::set_state(tx, id, state)?;
        let event = Event::new(actor, "user.state_changed", user_target(&after), now)
            .before(json!({ "state": before.state }))
            .after(json!({ "state": after.state }));
        Ok((after, event))
    })
}

pub fn create_group(db: &Db, actor: Actor, path: &str, parent: Option<GroupId>, now: i64) -> Result<Group> {
    audited(db, |tx| {
        let group = namespaces::insert_group(tx, path, parent, now)?;
        let event = Event::new(actor, "group.created", Target::new("group", group.id, group.full_path.clone()), now)
            .of_group(group.id)
            .after(&group);
        Ok((group, event))
    })
}

/// Deletes an empty group (the store refuses, naming them, while anything depends on it).
pub fn delete_group(db: &Db, actor: Actor, id: GroupId, now: i64) -> Result<()> {
    audited(db, |tx| {
        let before = namespaces::get_group(tx, id)?;
        namespaces::delete_group(tx, id)?;
        let event = Event::new(actor, "group.deleted", Target::new("group", before.id, before.full_path.clone()), now)
            .of_group(before.id)
            .before(&before);
        Ok(((), event))
    })
}

fn project_event(actor: Actor, action: &'static str, project: &Project, now: i64) -> Event {
    Event::new(actor, action, Target::new("project", project.id, project.path_with_namespace.clone()), now)
        .of_project(project.id)
}

/// Creates a project; refused when a group's `id_token_sub_claim_components` governs it and its
/// own values already make that `sub` too long ([`id_token_sub`]).
pub fn create_project(
    db: &Db,
    actor: Actor,
    path: &str,
    namespace: GroupId,
    fields: &ProjectFields,
    now: i64,
) -> Result<Project, SubCheckError> {
    atomic_with(db, |tx| {
        let project = audited(tx, |tx| {
            let project = namespaces::insert_project(tx, path, namespace, fields, now)?;
            let event = project_event(actor, "project.created", &project, now).after(&project);
            Ok((project, event))
        })?;
        id_token_sub::check_project(tx, project.id, id_token_sub::Changed::NewProject)?;
        Ok(project)
    })
}

/// Deletes a project without pipelines (the store refuses, naming them, while anything depends
/// on it).
pub fn delete_project(db: &Db, actor: Actor, id: ProjectId, now: i64) -> Result<()> {
    audited(db, |tx| {
        let before = namespaces::get_project(tx, id)?;
        namespaces::delete_project(tx, id)?;
        Ok(((), project_event(actor, "project.deleted", &before, now).before(&before)))
    })
}

pub fn update_project(db: &Db, actor: Actor, id: ProjectId, fields: &ProjectFields, now: i64) -> Result<Project> {
    audited(db, |tx| {
        let before = namespaces::get_project(tx, id)?;
        let after = namespaces::update_project(tx, id, fields)?;
        let event = project_event(actor, "project.updated", &after, now).before(&before).after(&after);
        Ok((after, event))
    })
}

/// The event of a change to a membership of `of`, belonging to that project or group.
fn member_event(tx: &Db, actor: Actor, of: MemberOf, action: (&'static str, &'static str), now: i64) -> Result<Event> {
    Ok(match of {
        MemberOf::Project(id) => {
            let p = namespaces::get_project(tx, id)?;
            Event::new(actor, action.0, Target::new("project", id, p.path_with_namespace), now).of_project(id)
        }
        MemberOf::Group(id) => {
            let g = namespaces::get_group(tx, id)?;
            Event::new(actor, action.1, Target::new("group", id, g.full_path), now).of_group(id)
        }
    })
}

fn member_json(tx: &Db, member: &Membership) -> Result<serde_json::Value> {
    let user = users::get(tx, member.user_id)?;
    Ok(json!({ "user_id": user.id, "username": user.username, "access_level": member.access_level }))
}

/// Adds or changes a membership.
pub fn put_member(
    db: &Db,
    actor: Actor,
    of: MemberOf,
    user: UserId,
    level: AccessLevel,
    now: i64,
) -> Result<Membership> {
    audited(db, |tx| {
        let before = namespaces::member(tx, of, user)?;
        let after = namespaces::put_member(tx, of, user, level)?;
        let event = match &before {
            None => member_event(tx, actor, of, ("project.member.added", "group.member.added"), now)?,
            Some(before) => member_event(tx, actor, of, ("project.member.updated", "group.member.updated"), now)?
                .before(member_json(tx, before)?),
        };
        let event = event.after(member_json(tx, &after)?);
        Ok((after, event))
    })
}

pub fn delete_member(db: &Db, actor: Actor, of: MemberOf, user: UserId, now: i64) -> Result<()> {
    audited(db, |tx| {
        let before = namespaces::member(tx, of, user)?;
        namespaces::delete_member(tx, of, user)?;
        let mut event = member_event(tx, actor, of, ("project.member.removed", "group.member.removed"), now)?;
        if let Some(before) = before {
            event = event.before(member_json(tx, &before)?);
        }
        Ok(((), event))
    })
}

/// Creates a pipeline with its jobs; refused when their ID tokens' `sub` would be too long
/// ([`id_token_sub`]).
pub fn create_pipeline(
    db: &Db,
    actor: Actor,
    project: ProjectId,
    new: &NewPipeline,
    now: i64,
) -> Result<PipelineWithJobs, SubCheckError> {
    atomic_with(db, |tx| {
        let created = audited(tx, |tx| {
            let created = jobs::insert_pipeline(tx, project, new, now)?;
            let path = namespaces::get_project(tx, project)?.path_with_namespace;
            let event = Event::new(actor, "pipeline.created", Target::new("pipeline", created.pipeline.id, path), now)
                .of_project(project)
                .after(&created);
            Ok((created, event))
        })?;
        id_token_sub::check_project(tx, project, id_token_sub::Changed::Pipeline(created.pipeline.id))?;
        Ok(created)
    })
}

pub fn update_settings(
    db: &Db,
    actor: Actor,
    enforce: Option<bool>,
    elevation: Option<bool>,
    now: i64,
) -> Result<InstanceSettings> {
    audited(db, |tx| {
        let before = settings::get(tx)?;
        let after = settings::update(tx, enforce, elevation)?;
        let event = Event::new(actor, "instance_settings.updated", Target::new("instance_settings", None, None), now)
            .before(before)
            .after(after);
        Ok((after, event))
    })
}

// ---- credentials: public fields only, never the secret or its hash ----

fn runner_event(actor: Actor, action: &'static str, runner: &Runner, now: i64) -> Event {
    Event::new(actor, action, Target::new("runner", runner.id, runner.client_id.clone()), now)
}

/// Registers a runner; the secret is returned to be shown once.
pub fn register_runner(db: &Db, actor: Actor, new: &NewRunner, now: i64) -> Result<(Runner, Secret)> {
    audited(db, |tx| {
        let (runner, secret) = credentials::register_runner(tx, new, now)?;
        let event = runner_event(actor, "runner.created", &runner, now).after(&runner);
        Ok(((runner, secret), event))
    })
}

pub fn update_runner(db: &Db, actor: Actor, id: RunnerId, patch: &RunnerPatch, now: i64) -> Result<Runner> {
    audited(db, |tx| {
        let before = clients::get_runner(tx, id)?;
        let after = clients::update_runner(tx, id, patch)?;
        let event = runner_event(actor, "runner.updated", &after, now).before(&before).after(&after);
        Ok((after, event))
    })
}

/// Stores runner `id`'s new secret hash; the event says only that it was reset.
pub fn set_runner_secret(db: &Db, actor: Actor, id: RunnerId, hash: &[u8], now: i64) -> Result<Runner> {
    audited(db, |tx| {
        let runner = clients::set_runner_secret(tx, id, hash)?;
        Ok((runner.clone(), runner_event(actor, "runner.secret_reset", &runner, now)))
    })
}

/// Deletes a runner whose jobs hold no live token (the store refuses, naming them, otherwise).
pub fn delete_runner(db: &Db, actor: Actor, id: RunnerId, now: i64) -> Result<()> {
    audited(db, |tx| {
        let before = clients::get_runner(tx, id)?;
        clients::delete_runner(tx, id)?;
        Ok(((), runner_event(actor, "runner.deleted", &before, now).before(&before)))
    })
}

fn server_event(actor: Actor, action: &'static str, server: &ResourceServer, now: i64) -> Event {
    Event::new(actor, action, Target::new("resource_server", server.id, server.name.clone()), now)
}

/// Registers a resource server; the secret is returned to be shown once.
pub fn register_resource_server(
    db: &Db,
    actor: Actor,
    new: &NewResourceServer,
    now: i64,
) -> Result<(ResourceServer, Secret)> {
    audited(db, |tx| {
        let (server, secret) = credentials::register_resource_server(tx, new, now)?;
        let event = server_event(actor, "resource_server.created", &server, now).after(&server);
        Ok(((server, secret), event))
    })
}

pub fn update_resource_server(
    db: &Db,
    actor: Actor,
    id: i64,
    patch: &ResourceServerPatch,
    now: i64,
) -> Result<ResourceServer> {
    audited(db, |tx| {
        let before = clients::get_resource_server(tx, id)?;
        let after = clients::update_resource_server(tx, id, patch)?;
        let event = server_event(actor, "resource_server.updated", &after, now).before(&before).after(&after);
        Ok((after, event))
    })
}

pub fn delete_resource_server(db: &Db, actor: Actor, id: i64, now: i64) -> Result<()> {
    audited(db, |tx| {
        let before = clients::get_resource_server(tx, id)?;
        clients::delete_resource_server(tx, id)?;
        Ok(((), server_event(actor, "resource_server.deleted", &before, now).before(&before)))
    })
}

/// Stores resource server `id`'s new secret hash; the event says only that it was reset.
pub fn set_resource_server_secret(db: &Db, actor: Actor, id: i64, hash: &[u8], now: i64) -> Result<ResourceServer> {
    audited(db, |tx| {
        let server = clients::set_resource_server_secret(tx, id, hash)?;
        Ok((server.clone(), server_event(actor, "resource_server.secret_reset", &server, now)))
    })
}
