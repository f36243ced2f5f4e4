//! The container registry token service (`GET /jwt/auth`, distribution's token authentication):
//! who asks (a job token, the admin, or nobody), which project owns each requested repository,
//! what the job may do there (the decision endpoint's rules, [`super::decision::token_grant`]),
//! and the signed registry token that carries only the granted actions.
//!
//! `service` must be a registered registry: an enabled resource server with it in its audience.
//! The registry checks `aud == service`, so minting for any service string would let a token
//! meant for registry A work at any registry that calls itself A; minting only for registered
//! audiences keeps that boundary where the admin drew it. The job token itself must be meant
//! for the service too: its `aud` names the service or the default audience, as for
//! introspection by that registry ([`super::live::live_for`]).

use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::decision::token_grant;
use super::live::{self, Authentic, Inactive, LiveError};
use super::Deps;
use crate::domain::{ProjectId, ScopeSet};
use crate::keys::registry::registry_supports;
use crate::keys::Alg;
use crate::policy::registry::{self as rules, ResourceScope};
use crate::store::namespaces::{self, Project};
use crate::store::{clients, Db, StoreError};
use crate::token::jws;

/// Who asks for a registry token.
pub enum Credential {
    /// No credentials: pull from public projects only.
    Anonymous,
    /// The admin token as the HTTP Basic password: every requested action.
    Admin,
    /// A job token as the HTTP Basic password (any user name).
    JobToken(String),
}

/// Why no registry token was issued.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "service {0:?} is not a registered registry: no enabled resource server has it in its audience \
         (PATCH /api/v1/resource_servers/{{id}} {{\"audience\": [\"{0}\"]}})"
    )]
    UnknownService(String),
    #[error("the job token is not active: {0}")]
    Inactive(Inactive),
    #[error(
        "the signing key is {0}, which the container registry (distribution) cannot verify; run \
         `jobtoken keys set-algorithm ES256` (or RS256)"
    )]
    UnsupportedAlg(Alg),
    #[error("signing the registry token failed: {0}")]
    Key(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One granted resource, as the distribution token spec writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// A signed registry token and what it grants.
#[derive(Debug)]
pub struct Issued {
    pub token: String,
    pub expires_in: i64,
    pub issued_at: i64,
    pub access: Vec<Access>,
}

/// Issues a registry token for `service` granting what `credential` holds of `scopes` at `now`.
/// A live token with nothing granted gets a token with an empty `access` (the registry refuses).
pub async fn issue(
    deps: Deps<'_>,
    service: String,
    scopes: Vec<ResourceScope>,
    credential: Credential,
    now: i64,
) -> Result<Issued, RegistryError> {
    let key = deps.keys.active();
    if !registry_supports(key.alg()) {
        return Err(RegistryError::UnsupportedAlg(key.alg()));
    }
    let registered = {
        let service = service.clone();
        deps.store.read(move |db| clients::audience_registered(db, &service)).await?
    };
    if !registered {
        return Err(RegistryError::UnknownService(service));
    }
    let asker = deps.asker(std::slice::from_ref(&service));
    let holder = match credential {
        Credential::Anonymous => Holder::Anonymous,
        Credential::Admin => Holder::Admin,
        Credential::JobToken(token) => match live::live_for(deps.store, deps.keys, &token, asker, now).await {
            Ok(found) => Holder::Job(Box::new(found)),
            Err(LiveError::Inactive(inactive)) => {
                deps.metrics.deny(inactive.reason());
                return Err(RegistryError::Inactive(inactive));
            }
            Err(LiveError::Store(e)) => return Err(e.into()),
        },
    };
    let (holder, decided) = deps
        .store
        .read(move |db| {
            let decided = scopes.iter().map(|scope| decide(db, &holder, scope)).collect::<Result<Vec<_>, _>>()?;
            Ok((holder, decided))
        })
        .await?;
    let (sub, job_exp) = match &holder {
        Holder::Job(found) => {
            for (target, used) in decided.iter().filter_map(|d| d.cross_project) {
                deps.authlog.record(target, found.claims.project_id, used, now);
            }
            (found.claims.sub.clone(), Some(found.record.expires_at))
        }
        Holder::Admin => ("admin".to_owned(), None),
        Holder::Anonymous => (String::new(), None),
    };
    let access: Vec<Access> = decided.into_iter().filter_map(|d| d.access).collect();
    let exp = rules::registry_token_expiry(now, job_exp);
    let claims = json!({
        "iss": deps.config.issuer,
        "sub": sub,
        "aud": service,
        "exp": exp,
        "nbf": now,
        "iat": now,
        "jti": Uuid::now_v7().to_string(),
        "access": access,
    });
    let header = json!({
        "alg": key.alg().as_str(),
        "typ": "JWT",
        "kid": crate::keys::registry::libtrust_key_id(&key.public_key()),
    });
    let token = jws::sign_compact_for_registry(&header, claims.to_string().as_bytes(), &key)
        .map_err(|e| RegistryError::Key(e.to_string()))?;
    Ok(Issued { token, expires_in: exp - now, issued_at: now, access })
}

enum Holder {
    Anonymous,
    Admin,
    Job(Box<Authentic>),
}

/// One scope decided: the access it grants (none when nothing), and for a job's use of another
/// project the target and the scopes only its allowlist granted (for the auth log).
struct Decided {
    access: Option<Access>,
    cross_project: Option<(ProjectId, ScopeSet)>,
}

fn decide(db: &Db, holder: &Holder, scope: &ResourceScope) -> Result<Decided, StoreError> {
    let access = |actions: Vec<String>| {
        (!actions.is_empty()).then(|| Access {
            resource_type: scope.resource_type.clone(),
            name: scope.name.clone(),
            actions,
        })
    };
    let nothing = Decided { access: None, cross_project: None };
    let job = match holder {
        Holder::Admin => return Ok(Decided { access: access(scope.actions.clone()), cross_project: None }),
        Holder::Anonymous => None,
        Holder::Job(found) => Some(found.as_ref()),
    };
    if !scope.is_repository() {
        return Ok(nothing);
    }
    let Some(project) = owner(db, &scope.name)? else { return Ok(nothing) };
    let (held, floor) = match job {
        None => (rules::anonymous_holds(&project.facts()), ScopeSet::EMPTY),
        Some(found) => token_grant(db, found, &project)?,
    };
    let granted = rules::granted_actions(&scope.actions, held);
    let cross_project = match job {
        Some(found) if found.claims.project_id != project.id && !granted.is_empty() => {
            Some((project.id, rules::scopes_used(&granted).minus(floor)))
        }
        _ => None,
    };
    Ok(Decided { access: access(granted), cross_project })
}

/// The project owning repository `name`: the longest `path_with_namespace` that prefixes it.
fn owner(db: &Db, name: &str) -> Result<Option<Project>, StoreError> {
    for candidate in rules::owner_candidates(name) {
        if let Some(project) = namespaces::find_project_by_path(db, candidate)? {
            return Ok(Some(project));
        }
    }
    Ok(None)
}
