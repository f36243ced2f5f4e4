//! Is a presented job token live? Shared by introspection, revocation, the decision endpoint
//! and token exchange.
//!
//! Every token this server issued is recorded with the SHA-256 of its compact form. A token is
//! authentic when its `jti` names a record whose hash matches the presented string (compared in
//! constant time): that proves this server issued exactly these bytes, a stronger statement
//! than a valid signature, and it costs a hash instead of a signature verification. The header
//! is still checked (typ, a known kid whose key's algorithm equals `alg`) so that malformed or
//! confused tokens are refused for the right reason.

use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::domain::{JobStatus, UserState};
use crate::policy;
use crate::signing::KeyRing;
use crate::store::tokens::{self, TokenRecord};
use crate::store::{Db, Store, StoreError};
use crate::token::jws;
use crate::token::Claims;

/// Why a token is not live. Logged and counted; introspection clients see `active: false`,
/// token inspection (service::inspect) tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Inactive {
    #[error("malformed token")]
    Malformed,
    #[error("not a job token (typ)")]
    WrongType,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("alg does not match the signing key")]
    AlgMismatch,
    #[error("not issued by this server")]
    NotIssued,
    #[error("expired")]
    Expired,
    #[error("not yet valid")]
    NotYetValid,
    #[error("revoked")]
    Revoked,
    #[error("the job has finished")]
    JobFinished,
    #[error("the job's user is blocked")]
    UserBlocked,
    #[error("not meant for this resource server's audience")]
    OtherAudience,
}

impl Inactive {
    pub fn reason(self) -> &'static str {
        match self {
            Inactive::Malformed => "token_malformed",
            Inactive::WrongType => "token_wrong_type",
            Inactive::UnknownKey => "token_unknown_key",
            Inactive::AlgMismatch => "token_alg_mismatch",
            Inactive::NotIssued => "token_not_issued",
            Inactive::Expired => "token_expired",
            Inactive::NotYetValid => "token_not_yet_valid",
            Inactive::Revoked => "token_revoked",
            Inactive::JobFinished => "token_job_finished",
            Inactive::UserBlocked => "token_user_blocked",
            Inactive::OtherAudience => "token_audience",
        }
    }
}

/// Why a token could not be used: it is not live (a client sees `active: false` or a refusal),
/// or the store failed (the cause is logged at the edge).
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("the token is not active: {0}")]
    Inactive(#[from] Inactive),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A token this server issued, as recorded, with its claims.
#[derive(Debug, Clone)]
pub struct Authentic {
    pub jti: [u8; 16],
    pub claims: Claims,
    pub record: TokenRecord,
}

/// Finds the record of a token this server issued, without judging whether it is still live.
pub async fn authentic(store: &Store, keys: &KeyRing, token: &str) -> Result<Authentic, LiveError> {
    Ok(authentic_with(store, keys, token, |_, _| Ok(())).await?.0)
}

/// [`authentic`], also running `then` on the record and the (now authenticated) claims in the
/// same read transaction (only for a token this server issued), so a caller that needs more of
/// the store pays for one read.
pub(super) async fn authentic_with<T: Send + 'static>(
    store: &Store,
    keys: &KeyRing,
    token: &str,
    then: impl FnOnce(&Db, &Authentic) -> crate::store::Result<T> + Send + 'static,
) -> Result<(Authentic, T), LiveError> {
    let Ok((header, claims)) = jws::decode_unverified_as::<Claims>(token) else {
        return Err(Inactive::Malformed.into());
    };
    let typ_ok = header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt"));
    if !typ_ok {
        return Err(Inactive::WrongType.into());
    }
    let Some(key_alg) = header.kid.as_deref().and_then(|kid| keys.alg_of(kid)) else {
        return Err(Inactive::UnknownKey.into());
    };
    if header.alg != key_alg.as_str() {
        return Err(Inactive::AlgMismatch.into());
    }
    let Ok(jti) = Uuid::parse_str(&claims.jti) else { return Err(Inactive::Malformed.into()) };
    let jti = *jti.as_bytes();
    let presented = crate::secret::hash(token.as_bytes());
    let found = store
        .read(move |db| {
            let Some(record) = tokens::find(db, &jti)? else { return Ok(None) };
            if !bool::from(presented.ct_eq(record.token_hash.as_slice())) {
                return Ok(None);
            }
            let found = Authentic { jti, claims, record };
            let extra = then(db, &found)?;
            Ok(Some((found, extra)))
        })
        .await?;
    Ok(found.ok_or(Inactive::NotIssued)?)
}

/// [`live_for`], also running `then` on the token in the same read transaction when it is live
/// for `asker` (`None` beside a token that is not: the error says why), so a use case that needs
/// more of the store pays for one read transaction.
pub(super) async fn live_for_with<T: Send + 'static>(
    store: &Store,
    keys: &KeyRing,
    token: &str,
    asker: Asker<'_>,
    now: i64,
    then: impl FnOnce(&Db, &Authentic) -> crate::store::Result<T> + Send + 'static,
) -> Result<(Authentic, T), LiveError> {
    let (audience, default_audience) = (asker.audience.to_vec(), asker.default_audience.to_owned());
    let (found, lived) = authentic_with(store, keys, token, move |db, found| {
        let asker = Asker { audience: &audience, default_audience: &default_audience };
        match live_now(found, asker, now) {
            Ok(()) => then(db, found).map(Lived::Live),
            Err(why) => Ok(Lived::Dead(why)),
        }
    })
    .await?;
    match lived {
        Lived::Live(extra) => Ok((found, extra)),
        Lived::Dead(why) => Err(why.into()),
    }
}

/// What [`live_for_with`]'s read transaction found: the token live and `then`'s answer, or why
/// it is not live (judged once, inside the transaction).
enum Lived<T> {
    Live(T),
    Dead(Inactive),
}

/// The liveness rules and the asker's audience, pure.
fn live_now(found: &Authentic, asker: Asker<'_>, now: i64) -> Result<(), Inactive> {
    judge(found, now)?;
    match policy::audience_admits(&found.claims.aud.values(), asker.audience, asker.default_audience) {
        true => Ok(()),
        false => Err(Inactive::OtherAudience),
    }
}

/// An authentic token that is unexpired, unrevoked, and whose job still runs.
pub async fn live(store: &Store, keys: &KeyRing, token: &str, now: i64) -> Result<Authentic, LiveError> {
    let found = authentic(store, keys, token).await?;
    judge(&found, now)?;
    Ok(found)
}

/// Who asks about a token: a resource server registered with `audience` (empty: the admin, or a
/// server without one, which may see any token), and the configured default audience.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    pub audience: &'a [String],
    pub default_audience: &'a str,
}

/// [`live`], as told to `asker`: a token whose `aud` names neither one of its audiences nor the
/// default audience is not for it.
pub async fn live_for(
    store: &Store,
    keys: &KeyRing,
    token: &str,
    asker: Asker<'_>,
    now: i64,
) -> Result<Authentic, LiveError> {
    let found = authentic(store, keys, token).await?;
    live_now(&found, asker, now)?;
    Ok(found)
}

/// Introspection (RFC 7662): [`live_for`]'s token with its claims as they are still true — its
/// `scope` capped at what the job's own-project grant is worth today (read in the same
/// transaction as the record), so a right lost after mint is not reported as held.
pub async fn introspect(
    store: &Store,
    keys: &KeyRing,
    token: &str,
    asker: Asker<'_>,
    now: i64,
) -> Result<Claims, LiveError> {
    let (found, own) =
        live_for_with(store, keys, token, asker, now, |db, found| super::mint::own_grant_now(db, found.record.job_id))
            .await?;
    let mut claims = found.claims;
    let carried = crate::domain::ScopeSet::parse_space_separated(&claims.scope).unwrap_or_default();
    claims.scope = carried.intersect(own).to_space_separated();
    Ok(claims)
}

/// The liveness rules, pure.
pub fn judge(found: &Authentic, now: i64) -> Result<(), Inactive> {
    if found.record.expires_at <= now {
        return Err(Inactive::Expired);
    }
    if found.claims.nbf > now {
        return Err(Inactive::NotYetValid);
    }
    // Finishing a job also revokes its tokens; the finish is the reason to tell.
    if found.record.job_status != JobStatus::Running {
        return Err(Inactive::JobFinished);
    }
    if found.record.revoked_at.is_some() {
        return Err(Inactive::Revoked);
    }
    // A blocked user holds nothing, from the moment of the block (SPEC §4.1).
    if found.record.user_state != UserState::Active {
        return Err(Inactive::UserBlocked);
    }
    Ok(())
}
