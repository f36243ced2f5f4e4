//! Demo data, so a new user can mint a token in a minute.

use crate::domain::{AccessLevel, RefType, RunnerType, Visibility};
use crate::secret::{self, Secret};
use crate::service::credentials;
use crate::store::clients::{NewResourceServer, NewRunner};
use crate::store::jobs::{self, NewJob, NewPipeline};
use crate::store::namespaces::{self, MemberOf, ProjectFields};
use crate::store::{atomic, users, Result, Store};

/// What the demo created, with the secrets shown this once.
pub struct Demo {
    pub project_path: String,
    pub job_id: i64,
    pub runner_client_id: String,
    pub runner_secret: Secret,
    pub resource_server_client_id: String,
    pub resource_server_secret: Secret,
}

/// Creates a fresh demo namespace (`demo-<n>`), so it can run any number of times.
pub fn load(store: &Store, now: i64) -> Result<Demo> {
    let suffix = secret::random_token(3).to_ascii_lowercase().replace(['-', '_'], "x");
    store.run_sync(move |conn| {
        atomic(conn, |tx| {
            let user = users::insert(tx, &format!("demo-dev-{suffix}"), now)?;
            let group = namespaces::insert_group(tx, &format!("demo-{suffix}"), None, now)?;
            let fields = ProjectFields { visibility: Some(Visibility::Private), ..ProjectFields::default() };
            let project = namespaces::insert_project(tx, "app", group.id, &fields, now)?;
            namespaces::put_member(tx, MemberOf::Group(group.id), user.id, AccessLevel::Developer)?;
            let runner = NewRunner {
                runner_type: RunnerType::Instance,
                group_id: None,
                project_ids: Vec::new(),
                maximum_timeout: Some(3600),
                description: "demo runner".into(),
            };
            let (runner, runner_secret) = credentials::register_runner(tx, &runner, now)?;
            let registry = NewResourceServer { name: "demo registry".into(), audience: Vec::new() };
            let (registry, rs_secret) = credentials::register_resource_server(tx, &registry, now)?;
            let pipeline = NewPipeline {
                user_id: user.id,
                ref_: "main".into(),
                ref_type: RefType::Branch,
                ref_protected: true,
                sha: "4b825dc642cb6eb9a060e54bf8d69288fbee4904".into(),
                source: "push".into(),
                jobs: vec![NewJob { name: "publish".into(), stage: "deploy".into(), timeout: None, environment: None }],
            };
            let created = jobs::insert_pipeline(tx, project.id, &pipeline, now)?;
            Ok(Demo {
                project_path: project.path_with_namespace,
                job_id: created.jobs[0].id,
                runner_client_id: runner.client_id,
                runner_secret,
                resource_server_client_id: registry.client_id,
                resource_server_secret: rs_secret,
            })
        })
    })
}

impl Demo {
    /// Copy-paste shell lines for the five-minute walk-through.
    pub fn instructions(&self, issuer: &str) -> String {
        let base = issuer.trim_end_matches('/');
        format!(
            "Demo data loaded: project {project}, pending job {job} (a Developer's pipeline on protected main).
Runner and resource-server secrets are shown once:

export JT={base}
export RUNNER='{rid}:{rsecret}'
export REGISTRY='{sid}:{ssecret}'

# mint a job token
TOKEN=$(curl -s -u \"$RUNNER\" -d grant_type=client_credentials -d job_id={job} $JT/oauth/token | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')
# ask the server about it
curl -s -u \"$REGISTRY\" --data-urlencode token=$TOKEN $JT/oauth/introspect
# finish the job (its runner may), then the token is inactive
curl -s -u \"$RUNNER\" -H 'content-type: application/json' -d '{{\"status\":\"success\"}}' $JT/api/v1/jobs/{job}/finish
curl -s -u \"$REGISTRY\" --data-urlencode token=$TOKEN $JT/oauth/introspect",
            project = self.project_path,
            job = self.job_id,
            rid = self.runner_client_id,
            rsecret = self.runner_secret.expose(),
            sid = self.resource_server_client_id,
            ssecret = self.resource_server_secret.expose(),
        )
    }
}
