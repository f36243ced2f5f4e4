//! Minting a job token for a runner (SPEC §4.2, §5).

use uuid::Uuid;

use super::Deps;
use crate::domain::{JobId, ProjectId, ScopeSet};
use crate::metrics::Metrics;
use crate::policy::Namespace;
use crate::policy::{self, MintRefusal, MintStep, OwnGrant, Principal};
use crate::service::clients::{self as client_auth, Client, ClientCredentials};
use crate::service::decision::{self, JobSide, TargetRef};
use crate::store::clients::{self, RunnerAuth};
use crate::store::jobs::{self, GrantContext, JobContext};
use crate::store::namespaces::Project;
use crate::store::settings::InstanceSettings;
use crate::store::tokens::IssuedToken;
use crate::store::{allowlist, namespaces, Db, Result as StoreResult, StoreError};
use crate::token::details;
use crate::token::{self, subject, Audience, Claims};

/// A validated `client_credentials` request.
#[derive(Debug, Clone)]
pub struct MintRequest {
    pub job_id: JobId,
    pub requested: Option<ScopeSet>,
    /// `audience` and `resource` values; empty means the default audience.
    pub audience: Vec<String>,
    /// Targets the job asks for in `authorization_details`.
    pub details: Vec<details::Requested>,
}

/// A token ready to return (minted or exchanged).
#[derive(Debug, Clone)]
pub struct Minted {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: ScopeSet,
    pub details: Vec<details::Granted>,
}

/// Why a target the job asked for got no `authorization_details` entry. A small fixed set: it
/// labels the `jobtoken_authorization_details_refused_total` counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailRefusal {
    /// No project has that id or path.
    UnknownProject,
    /// The job's own project: the token's `scope` covers it.
    OwnProject,
    /// The target's inbound allowlist does not admit the job's project (SPEC §4.3 step 4).
    NotOnAllowlist,
    /// The job's project limits its outbound access and no entry covers the target.
    OutboundNotCovered,
    /// The job's user is blocked.
    UserBlocked,
    /// In scope, but none of the asked actions is granted (entry scopes, the user's rights, the
    /// protected-ref filter).
    NotGranted,
    /// Over the limit of entries one token carries.
    TooMany,
    /// Token exchange: the subject token holds none of the asked actions on the target.
    NotHeld,
    /// Token exchange: the subject token held it, but the live decision grants it no longer.
    NoLongerGranted,
}

impl DetailRefusal {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            DetailRefusal::UnknownProject => "unknown_project",
            DetailRefusal::OwnProject => "own_project",
            DetailRefusal::NotOnAllowlist => "not_on_allowlist",
            DetailRefusal::OutboundNotCovered => "outbound_not_covered",
            DetailRefusal::UserBlocked => "user_blocked",
            DetailRefusal::NotGranted => "not_granted",
            DetailRefusal::TooMany => "too_many",
            DetailRefusal::NotHeld => "not_held",
            DetailRefusal::NoLongerGranted => "no_longer_granted",
        }
    }

    fn of(rule: policy::Rule) -> DetailRefusal {
        match rule {
            policy::Rule::NotAllowlisted | policy::Rule::PrivateNotAllowlisted => DetailRefusal::NotOnAllowlist,
            policy::Rule::OutboundNotCovered => DetailRefusal::OutboundNotCovered,
            policy::Rule::BlockedUser => DetailRefusal::UserBlocked,
            _ => DetailRefusal::NotGranted,
        }
    }
}

/// One asked-for target left out of a token's `authorization_details`, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedDetail {
    /// The target as asked (id or path) or as found (path).
    pub target: String,
    pub refusal: DetailRefusal,
    /// A sentence for the log.
    pub reason: String,
}

/// Logs (info: job, target, reason; never the token) and counts each refused entry of a token
/// that was issued.
pub fn report_refused(metrics: &Metrics, job_id: JobId, refused: &[RefusedDetail]) {
    for r in refused {
        metrics.refuse_detail(r.refusal.label());
        log::info!(
            "authorization_details for job {job_id}: {} not granted ({}): {}",
            r.target,
            r.refusal.label(),
            r.reason
        );
    }
}

/// Why a token was not minted. Mapped once to RFC 6749 errors at the edge; a refusal is
/// counted and logged here.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("client authentication failed")]
    InvalidClient,
    #[error("token for job {job_id} refused: {refusal}")]
    Refused { refusal: MintRefusal, job_id: JobId },
    #[error(transparent)]
    Issue(#[from] IssueError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a signed token could not be handed out (minted or exchanged).
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The claims do not fit a token (a safe sentence for the client).
    #[error("{0}")]
    TooLarge(String),
    /// The signing key failed; the cause is for the log only.
    #[error("signing failed: {0}")]
    Key(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the store loads for one mint.
struct Loaded {
    ctx: JobContext,
    access: Option<crate::domain::AccessLevel>,
    settings: InstanceSettings,
    details: Vec<details::Granted>,
    /// Per granted target, the scopes only its allowlist could grant (for the authorization log).
    logged: Vec<(ProjectId, ScopeSet)>,
    refused: Vec<RefusedDetail>,
}

/// Authenticates the runner and mints a token for `req.job_id`.
pub async fn mint(deps: Deps<'_>, creds: ClientCredentials, req: MintRequest, now: i64) -> Result<Minted, MintError> {
    let job_id = req.job_id;
    // Client authentication and, for a job already running on this runner, everything the
    // grant needs, in one read transaction on this thread. The first token of a job also starts
    // it, which writes.
    let requested = req.details.clone();
    let first = deps
        .store
        .read(move |db| match client_auth::check(db, &creds)? {
            Some(Client::Runner(runner)) => Ok(Some((load(db, &runner, job_id, &requested), runner))),
            _ => Ok(None),
        })
        .await?;
    let Some((first, runner)) = first else {
        deps.metrics.deny("invalid_client");
        return Err(MintError::InvalidClient);
    };
    let loaded = match first {
        Ok(Some(loaded)) => Ok(loaded),
        Ok(None) => {
            let (runner, requested_details) = (runner.clone(), req.details);
            deps.store.run(move |conn| Ok(load_and_start(conn, &runner, job_id, &requested_details, now))).await?
        }
        Err(e) => Err(e),
    }
    .map_err(|e| counted(deps.metrics, e))?;
    let Loaded { ctx, access, settings, details, logged, refused } = loaded;
    let scope = own_grant(&ctx, access, &settings, req.requested);
    let started_at = ctx.job.started_at.unwrap_or(now);
    let exp = policy::token_expiry(started_at, runner.maximum_timeout, ctx.job.timeout, ctx.project.build_timeout);
    if exp <= now {
        return Err(counted(deps.metrics, MintError::Refused { refusal: MintRefusal::Expired, job_id }));
    }
    let audience = match req.audience.is_empty() {
        true => vec![deps.config.default_audience.clone()],
        false => req.audience,
    };
    let jti = Uuid::now_v7();
    let claims = Claims {
        iss: deps.config.issuer.clone(),
        sub: subject(&ctx.project.path_with_namespace, ctx.pipeline.ref_type, &ctx.pipeline.ref_),
        aud: Audience::from_values(audience),
        exp,
        iat: now,
        nbf: now,
        jti: jti.to_string(),
        client_id: runner.client_id.clone(),
        scope: scope.to_space_separated(),
        job_id,
        pipeline_id: ctx.pipeline.id,
        project_id: ctx.project.id,
        project_path: ctx.project.path_with_namespace.clone(),
        namespace_id: ctx.namespace.id,
        namespace_path: ctx.namespace.full_path.clone(),
        user_id: ctx.user.id,
        user_login: ctx.user.username.clone(),
        ref_: ctx.pipeline.ref_.clone(),
        ref_type: ctx.pipeline.ref_type,
        ref_protected: ctx.pipeline.ref_protected,
        pipeline_source: ctx.pipeline.source.clone(),
        sha: ctx.pipeline.sha.clone(),
        runner_id: runner.id,
        project_visibility: ctx.project.visibility.to_string(),
        environment: ctx.job.environment.clone(),
        authorization_details: details.iter().filter_map(|d| serde_json::to_value(d).ok()).collect(),
        act: None,
    };
    let access_token = issue(deps, &claims, jti, None).await?;
    for (target, needed_entry) in logged {
        deps.authlog.record(target, ctx.project.id, needed_entry, now);
    }
    report_refused(deps.metrics, job_id, &refused);
    Ok(Minted { access_token, expires_in: exp - now, scope, details })
}

/// SPEC §4.2 for the job in `ctx`: configured ∩ the user's rights ∩ the protected filter ∩ requested.
fn own_grant(
    ctx: &JobContext,
    access: Option<crate::domain::AccessLevel>,
    settings: &InstanceSettings,
    requested: Option<ScopeSet>,
) -> ScopeSet {
    let elevation = policy::elevation_allowed(
        settings.job_token_elevation_allowed,
        ctx.ancestors.iter().map(|g| (g.id, g.job_token_elevation_allowed)),
    )
    .is_ok();
    let principal = Principal { active: ctx.user.state == crate::domain::UserState::Active, access };
    policy::own_project_grant(&OwnGrant {
        configured: ctx.project.job_token_scopes,
        elevation_allowed: elevation,
        rights: policy::rights(&principal, &ctx.project.facts()),
        ref_protected: ctx.pipeline.ref_protected,
        requested,
    })
}

/// What a token of job `job_id` may still use on its own project: the own-project grant
/// recomputed from today's rights, features, configured scopes and elevation settings. An online
/// answer gives a token at most its `scope` ∩ this, so a right lost after mint is lost at once.
pub fn own_grant_now(db: &Db, job_id: JobId) -> StoreResult<ScopeSet> {
    let Some(GrantContext { ctx, access, settings }) = jobs::grant_context(db, job_id)? else {
        return Ok(ScopeSet::EMPTY);
    };
    Ok(own_grant(&ctx, access, &settings, None))
}

/// Signs `claims` with the active key and records the token durably before returning it.
/// `parent` is the token it was exchanged from, if any.
pub async fn issue(deps: Deps<'_>, claims: &Claims, jti: Uuid, parent: Option<[u8; 16]>) -> Result<String, IssueError> {
    let key = deps.keys.active();
    let access_token = token::encode(claims, &key).map_err(|e| match e {
        too_large @ token::EncodeError::TooLarge { .. } => IssueError::TooLarge(too_large.to_string()),
        token::EncodeError::Key(e) => IssueError::Key(e.to_string()),
    })?;
    deps.store
        .tokens()
        .record(IssuedToken {
            jti: *jti.as_bytes(),
            job_id: claims.job_id,
            kid: key.kid().to_owned(),
            client_id: claims.client_id.clone(),
            token_hash: crate::secret::hash(access_token.as_bytes()),
            issued_at: claims.iat,
            expires_at: claims.exp,
            parent_jti: parent,
        })
        .await?;
    deps.metrics.tokens_issued.inc();
    Ok(access_token)
}

/// Counts and logs a refusal on its way out; other errors pass unchanged.
fn counted(metrics: &Metrics, e: MintError) -> MintError {
    if let MintError::Refused { refusal, job_id } = &e {
        let reason = match refusal {
            MintRefusal::JobFinished => "job_finished",
            MintRefusal::OtherRunner => "other_runner",
            MintRefusal::RunnerPaused => "runner_paused",
            MintRefusal::NotServed => "not_served",
            MintRefusal::UserBlocked => "user_blocked",
            MintRefusal::Expired => "job_expired",
        };
        metrics.deny(reason);
        log::info!("token for job {job_id} refused: {refusal}");
    }
    e
}

/// Loads everything the grant needs for a job already running on this runner; `Ok(None)` when
/// the job still has to be started (a write).
fn load(
    conn: &Db,
    runner: &RunnerAuth,
    job_id: JobId,
    requested: &[details::Requested],
) -> Result<Option<Loaded>, MintError> {
    let Some(grant) = jobs::grant_context(conn, job_id)? else { return Err(not_served(job_id)) };
    match eligibility(conn, runner, &grant.ctx)? {
        MintStep::Start => Ok(None),
        MintStep::Continue => Ok(Some(finish_loading(conn, grant, requested)?)),
    }
}

fn not_served(job_id: JobId) -> MintError {
    MintError::Refused { refusal: MintRefusal::NotServed, job_id }
}

fn eligibility(conn: &Db, runner: &RunnerAuth, ctx: &JobContext) -> Result<MintStep, MintError> {
    let scope = clients::runner_scope(conn, runner, ctx.project.id)?;
    let serves = policy::runner_serves(&scope, ctx.project.id, &ctx.namespace.traversal_ids);
    policy::mint_eligibility(
        ctx.job.status,
        ctx.job.runner_id,
        runner.id,
        runner.paused,
        serves,
        ctx.user.state == crate::domain::UserState::Active,
    )
    .map_err(|refusal| MintError::Refused { refusal, job_id: ctx.job.id })
}

fn finish_loading(conn: &Db, grant: GrantContext, requested: &[details::Requested]) -> StoreResult<Loaded> {
    let GrantContext { ctx, access, settings } = grant;
    let Grants { granted: details, logged, refused } = cross_project_grants(conn, &ctx, requested)?;
    Ok(Loaded { ctx, access, settings, details, logged, refused })
}

/// Loads the job and everything the grant needs; starts a pending job on this runner.
fn load_and_start(
    conn: &Db,
    runner: &RunnerAuth,
    job_id: JobId,
    requested: &[details::Requested],
    now: i64,
) -> Result<Loaded, MintError> {
    for _attempt in 0..2 {
        let Some(grant) = jobs::grant_context(conn, job_id)? else { return Err(not_served(job_id)) };
        let grant = match eligibility(conn, runner, &grant.ctx)? {
            MintStep::Continue => grant,
            MintStep::Start => {
                if !jobs::start(conn, job_id, runner.id, now)? {
                    continue; // another request started it first: decide again on fresh state
                }
                let ctx = JobContext { job: jobs::get_job(conn, job_id)?, ..grant.ctx };
                GrantContext { ctx, ..grant }
            }
        };
        return Ok(finish_loading(conn, grant, requested)?);
    }
    Err(MintError::Refused { refusal: MintRefusal::OtherRunner, job_id })
}

/// The cross-project part of a mint.
struct Grants {
    granted: Vec<details::Granted>,
    /// Beside each grant: the scopes of it that only the target's allowlist could grant.
    logged: Vec<(ProjectId, ScopeSet)>,
    refused: Vec<RefusedDetail>,
}

/// Evaluates every target the job asks for — S's outbound entries that name a project, and the
/// request's `authorization_details` — by the cross-project decision at mint time. Entries that
/// grant nothing, name unknown projects or the job's own project are left out, with the reason;
/// at most `MAX_DETAILS` remain.
fn cross_project_grants(conn: &Db, ctx: &JobContext, requested: &[details::Requested]) -> StoreResult<Grants> {
    let mut refused = Vec::new();
    let mut wanted: Vec<(Project, ScopeSet)> = Vec::new();
    let mut add = |project: Project, actions: ScopeSet| match wanted.iter_mut().find(|(p, _)| p.id == project.id) {
        Some((_, existing)) => *existing = existing.union(actions),
        None => wanted.push((project, actions)),
    };
    // Outbound entries say where the project's jobs go, whether or not the outbound limit is on.
    for entry in allowlist::outbound_projects(conn, ctx.project.id)? {
        if let Namespace::Project(id) = entry.target {
            add(namespaces::get_project(conn, id)?, entry.scopes);
        }
    }
    for r in requested {
        let asked = TargetRef::from(&r.project);
        match decision::find_project(conn, &asked)? {
            Some(project) => add(project, r.actions),
            None => refused.push(RefusedDetail {
                target: asked.to_string(),
                refusal: DetailRefusal::UnknownProject,
                reason: format!("project {asked} does not exist"),
            }),
        }
    }
    let job = JobSide { source: ctx.project.id, user_id: ctx.user.id, ref_protected: ctx.pipeline.ref_protected };
    let (mut granted, mut logged) = (Vec::new(), Vec::new());
    for (target, actions) in wanted {
        let refuse = |refusal, reason| RefusedDetail { target: target.path_with_namespace.clone(), refusal, reason };
        if target.id == ctx.project.id {
            let reason = "the job's own project is granted by the token's scope, not by authorization_details";
            refused.push(refuse(DetailRefusal::OwnProject, reason.into()));
            continue;
        }
        let decision = decision::decide(conn, &job, &target)?;
        let allowed = decision.allowed.intersect(actions);
        if allowed.is_empty() {
            let reason = format!("none of {} is granted: {}", actions.to_space_separated(), decision.reason);
            refused.push(refuse(DetailRefusal::of(decision.rule), reason));
        } else if granted.len() >= details::MAX_DETAILS {
            let reason = format!("a token carries at most {} authorization_details entries", details::MAX_DETAILS);
            refused.push(refuse(DetailRefusal::TooMany, reason));
        } else {
            logged.push((target.id, allowed.minus(decision.floor)));
            granted.push(details::Granted {
                type_: details::CI_PROJECT_ACCESS.into(),
                project_id: target.id,
                project_path: target.path_with_namespace,
                actions: allowed,
            });
        }
    }
    Ok(Grants { granted, logged, refused })
}
