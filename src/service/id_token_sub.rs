//! The bound on the ID-token `sub` (issue 11): a `sub` longer than 127 bytes is refused at the
//! write that would make it, never when a token is minted.
//!
//! A job's `sub` is made of its project's values (id, path, namespace: fixed once the project
//! exists), its pipeline's and job's (ref, ref_type, ref_protected, sha, source, user, ids, the
//! job's environment: fixed once the pipeline exists), its runner's id (known at mint: counted at
//! 20 digits), the project's visibility (counted at its longest), and the components in force.
//! So every write that changes one of these checks the `sub`s it changes, with the real values:
//! a project or group setting (every job that can still get an ID token, of every project it
//! governs), a new pipeline (its jobs), a new project under a group's setting (its own values).
//! Together they keep every ID token's `sub` within the bound.

use crate::domain::{PipelineId, ProjectId};
use crate::policy::id_token::{self as policy, SubOrigin, SubTooLong, SubValues, LONGEST_VISIBILITY, UNKNOWN_ID};
use crate::store::id_token_sub::{self, OpenJob, ProjectPart};
use crate::store::{Db, StoreError};

/// Why a write that changes a `sub` was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubCheckError {
    /// A `sub` would exceed 127 bytes (the sentence names the project, its setting, the byte
    /// count and the fix).
    #[error(transparent)]
    TooLong(#[from] SubTooLong),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// For callers whose errors are the store's (the demo data): a refusal is invalid input.
impl From<SubCheckError> for StoreError {
    fn from(e: SubCheckError) -> StoreError {
        match e {
            SubCheckError::TooLong(e) => StoreError::Invalid(e.to_string()),
            SubCheckError::Store(e) => e,
        }
    }
}

/// Which `sub`s of a project a write changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// A new project: its own values, when a group's setting governs it (under the default, a
    /// project whose path alone is too long can still be created, and choose shorter
    /// components before its first pipeline).
    NewProject,
    /// A new pipeline: the `sub`s of its jobs.
    Pipeline(PipelineId),
    /// The components in force: the project's own values, and every job that can still get an
    /// ID token.
    Components,
}

/// Checks the `sub`s of `project` that `changed` changes, as they stand in `db` (call it after
/// the write, in the same transaction: a refusal rolls the write back).
pub fn check_project(db: &Db, project: ProjectId, changed: Changed) -> Result<(), SubCheckError> {
    check_part(db, &id_token_sub::project_part(db, project)?, changed)
}

/// [`check_project`] for a project whose values are loaded already.
fn check_part(db: &Db, part: &ProjectPart, changed: Changed) -> Result<(), SubCheckError> {
    let project = part.id;
    let settings = part.settings.iter().map(|(_, s)| s.as_deref());
    let (components, at) = policy::sub_components_at(settings);
    let origin = match at {
        None => SubOrigin::Default,
        Some(0) => SubOrigin::Project,
        Some(i) => SubOrigin::Group(part.settings[i].0.clone().unwrap_or_default()),
    };
    let refuse = |bytes: usize, case: String| SubTooLong {
        project: part.path_with_namespace.clone(),
        bytes,
        case,
        components: components.clone(),
        origin: origin.clone(),
    };
    let base = project_values(part);
    if changed == Changed::Components || (changed == Changed::NewProject && origin != SubOrigin::Default) {
        policy::check_fits(&components, &base)
            .map_err(|bytes| refuse(bytes, "with the project's own values alone (ids counted at 20 digits)".into()))?;
    }
    let jobs = match changed {
        Changed::NewProject => return Ok(()),
        Changed::Pipeline(pipeline) => id_token_sub::open_jobs(db, project, Some(pipeline))?,
        Changed::Components => id_token_sub::open_jobs(db, project, None)?,
    };
    for job in &jobs {
        policy::check_fits(&components, &job_values(&base, job)).map_err(|bytes| {
            let env = job.environment.as_deref().map(|e| format!(", environment {e:?}")).unwrap_or_default();
            let case = format!(
                "for job {} ({:?}) of pipeline {} (ref {:?}, user {}{env})",
                job.id, job.name, job.pipeline_id, job.ref_, job.user_login
            );
            refuse(bytes, case)
        })?;
    }
    Ok(())
}

/// Checks every project in `group` or below it that takes its components from `group` or
/// above (none of its own, none on a group between): after a change of `group`'s setting.
pub fn check_group(db: &Db, group_path: &str, group: crate::domain::GroupId) -> Result<(), SubCheckError> {
    for project in id_token_sub::projects_below(db, group)? {
        let part = id_token_sub::project_part(db, project)?;
        let below = part.settings.iter().take_while(|(level, _)| level.as_deref() != Some(group_path));
        if below.clone().all(|(_, s)| s.is_none()) {
            check_part(db, &part, Changed::Components)?;
        }
    }
    Ok(())
}

/// A project's own values; the parts of pipelines and jobs empty, their ids at their longest.
fn project_values(part: &ProjectPart) -> SubValues {
    SubValues {
        project_id: part.id.to_string(),
        project_path: part.path_with_namespace.clone(),
        namespace_id: part.namespace_id.to_string(),
        namespace_path: part.namespace_path.clone(),
        user_id: UNKNOWN_ID.into(),
        pipeline_id: UNKNOWN_ID.into(),
        job_id: UNKNOWN_ID.into(),
        runner_id: UNKNOWN_ID.into(),
        ref_type: "branch".into(),
        ref_protected: "false".into(),
        project_visibility: LONGEST_VISIBILITY.into(),
        ..SubValues::default()
    }
}

/// The values of `job`'s ID tokens; its runner's id at its longest.
fn job_values(base: &SubValues, job: &OpenJob) -> SubValues {
    SubValues {
        user_id: job.user_id.to_string(),
        user_login: job.user_login.clone(),
        pipeline_id: job.pipeline_id.to_string(),
        pipeline_source: job.source.clone(),
        job_id: job.id.to_string(),
        ref_: job.ref_.clone(),
        ref_type: job.ref_type.as_str().to_owned(),
        ref_protected: job.ref_protected.to_string(),
        environment: job.environment.clone().unwrap_or_default(),
        sha: job.sha.clone(),
        ..base.clone()
    }
}
