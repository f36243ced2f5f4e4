//! Explaining a job token (`POST /api/v1/tokens/inspect`): its header and claims, its state and
//! exactly why, its exchange lineage, and on request the decision endpoint's answer for a project
//! and scope.
//!
//! Nothing here decides anew: authenticity and liveness are [`live`]'s, the decision is
//! [`decision::explain`]'s (the decision endpoint's answer, without counting it or recording it
//! in the authorization log). The pasted token is never stored or logged.
//!
//! Who may inspect: the admin, or a Maintainer or Owner of the token's project — which only an
//! authentic token establishes, so a token this server cannot verify is shown to the admin only,
//! with its header and claims marked unverified.

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::decision::{self, Answer, TargetRef};
use super::editor::{self, Actor};
use super::job_token_scope::ScopeError;
use super::live::{self, Authentic, Inactive, LiveError};
use super::Deps;
use crate::domain::time::rfc3339;
use crate::domain::Scope;
use crate::store::allowlist::Node;
use crate::store::tokens::{self, LineageRow};
use crate::store::{jobs, Db, StoreError};
use crate::token::jws::{self, Header, JwsError};
use crate::token::TOKEN_TYPE;

/// What to inspect. No `Debug`: the token is a credential.
pub struct InspectRequest {
    pub token: String,
    /// With a target and a scope, the answer includes the decision for them.
    pub target: Option<(TargetRef, Scope)>,
}

/// A token's state: the first rule it fails, in [`live::judge`]'s order, or why it is not
/// authentic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Active,
    Expired,
    NotYetValid,
    Revoked,
    JobFinished,
    UserBlocked,
    /// Its `kid` names no key this server publishes.
    KeyUnknown,
    /// Its signature does not verify under the key its `kid` names (or `alg` is not that key's).
    SignatureInvalid,
    /// Not a job token this server issued: another `typ`, or no issuance record of these bytes.
    NotOurs,
}

/// One token of the lineage.
#[derive(Debug, Clone, Serialize)]
pub struct LineageEntry {
    pub jti: String,
    /// `ancestor` (it was exchanged from), `self`, or `descendant` (exchanged from it).
    pub relation: &'static str,
    pub issued_at: String,
    pub expires_at: String,
    /// Its own revocation; revoking a token revokes its descendants too.
    pub revoked_at: Option<String>,
    pub parent_jti: Option<String>,
}

/// The answer.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// True when this server issued exactly these bytes; `header` and `claims` are then facts.
    /// When false they are only what the token says about itself.
    pub verified: bool,
    pub header: Header,
    pub claims: Map<String, Value>,
    pub state: State,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expired_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_finished_at: Option<String>,
    /// Root first; empty for a token that is not verified.
    pub lineage: Vec<LineageEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Answer>,
}

/// Why a token was not inspected.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("the token is malformed: {0}")]
    Malformed(JwsError),
    #[error("only the admin may inspect a token this server cannot verify")]
    Unverifiable,
    #[error("inspecting a job token of {0} needs the Maintainer or Owner role on it")]
    Forbidden(String),
    /// The token's project does not exist or the caller cannot see it: the same answer.
    #[error("project not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the store adds for an authentic token, read with its record.
struct Facts {
    judged: Result<(), Inactive>,
    job_finished_at: Option<i64>,
    lineage: Vec<LineageRow>,
    decision: Option<Answer>,
}

/// Inspects `req.token` for `actor`.
pub async fn inspect(deps: Deps<'_>, actor: Actor, req: InspectRequest, now: i64) -> Result<Inspection, InspectError> {
    let decoded = jws::decode_unverified(&req.token).map_err(InspectError::Malformed)?;
    let default_audience = deps.config.default_audience.clone();
    let target = req.target.clone();
    let found = live::authentic_with(deps.store, deps.keys, &req.token, move |db, token| {
        if let Actor::User(_) = actor {
            match may_inspect(db, actor, token.claims.project_id) {
                Ok(()) => {}
                Err(InspectError::Store(e)) => return Err(e),
                Err(refused) => return Ok(Err(refused)),
            }
        }
        let judged = live::judge(token, now);
        let decision = match &target {
            Some((project, scope)) => {
                Some(decision::explain(db, token, judged.err(), project, *scope, &default_audience)?)
            }
            None => None,
        };
        Ok(Ok(Facts {
            judged,
            job_finished_at: jobs::get_job(db, token.record.job_id)?.finished_at,
            lineage: tokens::lineage(db, &token.jti)?,
            decision,
        }))
    })
    .await;
    match found {
        Ok((token, facts)) => Ok(verified(decoded, &token, facts?, now)),
        Err(LiveError::Store(e)) => Err(e.into()),
        Err(LiveError::Inactive(_)) if actor != Actor::Admin => Err(InspectError::Unverifiable),
        Err(LiveError::Inactive(inactive)) => {
            let (state, reason) = unverified(deps, &req.token, &decoded.header);
            let decision = req.target.map(|_| decision::inactive_answer(inactive, &[], &deps.config.default_audience));
            Ok(Inspection {
                verified: false,
                header: decoded.header,
                claims: decoded.claims,
                state,
                reason,
                expired_at: None,
                revoked_at: None,
                job_finished_at: None,
                lineage: Vec::new(),
                decision,
            })
        }
    }
}

/// A Maintainer or Owner of the project, directly or through a group (the job token scope
/// editors' rule, with its answers: a project the user cannot see is not found).
fn may_inspect(db: &Db, actor: Actor, project: i64) -> Result<(), InspectError> {
    match editor::may_edit(db, actor, Node::Project(project)) {
        Ok(_) => Ok(()),
        Err(ScopeError::Store(e)) => Err(InspectError::Store(e)),
        Err(ScopeError::Forbidden(path)) => Err(InspectError::Forbidden(path)),
        Err(_) => Err(InspectError::NotFound),
    }
}

fn verified(decoded: jws::Decoded, token: &Authentic, facts: Facts, now: i64) -> Inspection {
    let (claims, record) = (&token.claims, &token.record);
    let lineage = lineage(&facts.lineage, &token.jti);
    let (state, reason) = match facts.judged {
        Ok(()) => (
            State::Active,
            format!(
                "active: issued at {} for job {} of {}, expires at {}",
                rfc3339(claims.iat),
                claims.job_id,
                claims.project_path,
                rfc3339(record.expires_at)
            ),
        ),
        Err(Inactive::Expired) => (State::Expired, format!("expired at {}", rfc3339(record.expires_at))),
        Err(Inactive::NotYetValid) => (State::NotYetValid, format!("not valid before {}", rfc3339(claims.nbf))),
        Err(Inactive::Revoked) => (State::Revoked, revoked_reason(&facts.lineage, &token.jti)),
        Err(Inactive::JobFinished) => (
            State::JobFinished,
            match facts.job_finished_at {
                Some(at) => format!("job {} finished ({}) at {}", claims.job_id, record.job_status, rfc3339(at)),
                None => format!("job {} is {}, not running", claims.job_id, record.job_status),
            },
        ),
        Err(Inactive::UserBlocked) => (
            State::UserBlocked,
            format!("the job's user {} is blocked, and a blocked user holds nothing", claims.user_login),
        ),
        // `judge` answers nothing else.
        Err(other) => (State::NotOurs, other.to_string()),
    };
    Inspection {
        verified: true,
        header: decoded.header,
        claims: decoded.claims,
        state,
        reason,
        expired_at: (record.expires_at <= now).then(|| rfc3339(record.expires_at)),
        revoked_at: record.revoked_at.map(rfc3339),
        job_finished_at: facts.job_finished_at.map(rfc3339),
        lineage,
        decision: facts.decision,
    }
}

/// Revoked itself, or through the token it was exchanged from (the earliest revocation).
fn revoked_reason(rows: &[LineageRow], jti: &[u8; 16]) -> String {
    let own = rows.iter().find(|r| r.jti == jti).and_then(|r| r.revoked_at);
    let ancestor = rows
        .iter()
        .take_while(|r| r.jti != jti)
        .filter_map(|r| r.revoked_at.map(|at| (at, r)))
        .min_by_key(|(at, _)| *at);
    match (own, ancestor) {
        (Some(own), Some((at, _))) if own < at => format!("revoked at {}", rfc3339(own)),
        (_, Some((at, row))) => format!(
            "revoked at {}: token {} it was exchanged from was revoked, which revokes every token exchanged from it",
            rfc3339(at),
            jti_text(&row.jti)
        ),
        (Some(own), None) => format!("revoked at {}", rfc3339(own)),
        (None, None) => "revoked".to_owned(),
    }
}

fn lineage(rows: &[LineageRow], jti: &[u8; 16]) -> Vec<LineageEntry> {
    let position = rows.iter().position(|r| r.jti == jti);
    rows.iter()
        .enumerate()
        .map(|(i, r)| LineageEntry {
            jti: jti_text(&r.jti),
            relation: match position.map(|p| i.cmp(&p)) {
                Some(std::cmp::Ordering::Less) => "ancestor",
                Some(std::cmp::Ordering::Equal) => "self",
                _ => "descendant",
            },
            issued_at: rfc3339(r.issued_at),
            expires_at: rfc3339(r.expires_at),
            revoked_at: r.revoked_at.map(rfc3339),
            parent_jti: r.parent_jti.as_deref().map(jti_text),
        })
        .collect()
}

fn jti_text(bytes: &[u8]) -> String {
    Uuid::from_slice(bytes).map_or_else(|_| hex(bytes), |u| u.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a well-formed token is not one this server issued: its signature, checked against the
/// published keys, tells a foreign or altered token from one merely unrecorded.
fn unverified(deps: Deps<'_>, token: &str, header: &Header) -> (State, String) {
    let unverified = "its header and claims are shown as the token states them, unverified";
    match jws::verify(token, TOKEN_TYPE, |kid| deps.keys.public_key(kid)) {
        Err(e @ (JwsError::UnknownKid(_) | JwsError::MissingKid)) => (
            State::KeyUnknown,
            format!(
                "{e}: no key this server publishes has that kid (signed elsewhere, or by a key retired long enough \
                 ago to have left the JWKS); {unverified}"
            ),
        ),
        Err(e @ (JwsError::BadSignature | JwsError::AlgMismatch { .. } | JwsError::Unsecured)) => {
            (State::SignatureInvalid, format!("{e}: the token was altered or forged; {unverified}"))
        }
        Err(e) => (State::NotOurs, format!("not a job token of this server ({e}); {unverified}")),
        Ok(_) => (
            State::NotOurs,
            format!(
                "the signature verifies under this server's key {}, but this server has no record of issuing \
                 exactly this token, so it is not a job token it answers for; {unverified}",
                header.kid.as_deref().unwrap_or_default()
            ),
        ),
    }
}
