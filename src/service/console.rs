//! The web console's use cases that the API has no twin for: sign-in sessions, their CSRF
//! tokens, and the "Why?" panel's decision for a source project (no token at hand). Everything
//! else the console shows or changes goes through the same services as the API.

use ring::hmac;
use subtle::ConstantTimeEq;

use super::editor::{self, Actor};
use super::job_token_scope::ScopeError;
use crate::domain::{ProjectId, Scope, UserState};
use crate::policy;
use crate::secret::{self, Secret};
use crate::store::allowlist::Node;
use crate::store::sessions::{self, Holder, SessionRow};
use crate::store::{namespaces, users, Page, Result as StoreResult, Store};

/// A session ends after this long without a request (8 hours)…
pub const IDLE_LIFETIME: i64 = 8 * 3600;
/// …and this long after sign-in in any case (24 hours).
pub const ABSOLUTE_LIFETIME: i64 = 24 * 3600;
/// `last_seen_at` is written at most this often per session.
const TOUCH_GRANULARITY: i64 = 60;
/// Prefix of session ids (what the cookie carries), so that secret scanners can spot them.
const SESSION_PREFIX: &str = "jtcs_";

/// A live session: who it is for and its CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    pub actor: Actor,
    /// The user's name (`None` for the admin).
    pub username: Option<String>,
    /// The token every state-changing form of this session carries.
    pub csrf: String,
}

/// The admin token's fingerprint kept in an admin session: a hash of its hash, so the database
/// holds nothing that authenticates.
fn admin_fingerprint(admin_hash: &[u8; 32]) -> Vec<u8> {
    secret::hash(admin_hash).to_vec()
}

/// Opens a session for `token`: the admin token (compared in constant time; only where
/// `admin_hash` is given, the listener that accepts it) or a live personal access token of an
/// active user. `None` when it is neither; the caller says nothing about why.
/// Returns the new session id, shown once (in the cookie); only its hash is stored.
pub async fn sign_in(
    store: &Store,
    admin_hash: Option<&[u8; 32]>,
    token: &str,
    now: i64,
) -> StoreResult<Option<Secret>> {
    let holder = if let Some(admin_hash) = admin_hash.filter(|hash| secret::verify(token, Some(&hash[..]))) {
        Holder::Admin { fingerprint: admin_fingerprint(admin_hash) }
    } else {
        match super::credentials::authenticate_pat_with_id(store, token, now).await? {
            Some((user_id, pat_id)) => Holder::User { user_id, pat_id },
            None => return Ok(None),
        }
    };
    let id = Secret::generate(SESSION_PREFIX);
    let hash = id.hash();
    store
        .run(move |c| {
            sessions::delete_expired(c, now - IDLE_LIFETIME, now - ABSOLUTE_LIFETIME)?;
            sessions::insert(c, &hash, &holder, now)
        })
        .await?;
    Ok(Some(id))
}

/// Whether a stored session may still be used at `now` (pure): not idle for
/// [`IDLE_LIFETIME`], not older than [`ABSOLUTE_LIFETIME`], and for a user a live token of an
/// active account; for the admin, the admin token it was opened with.
pub fn alive(row: &SessionRow, admin_fingerprint: &[u8], now: i64) -> bool {
    let fresh = now - row.last_seen_at < IDLE_LIFETIME && now - row.created_at < ABSOLUTE_LIFETIME;
    let holder_ok = match &row.holder {
        Holder::User { .. } => row.pat_live && row.user_state == Some(UserState::Active),
        Holder::Admin { fingerprint } => bool::from(fingerprint.as_slice().ct_eq(admin_fingerprint)),
    };
    fresh && holder_ok
}

/// The live session with this id at `now`, re-checked on every request; a dead one is deleted.
pub async fn session(store: &Store, admin_hash: &[u8; 32], id: &str, now: i64) -> StoreResult<Option<Session>> {
    let hash = secret::hash(id.as_bytes());
    let fingerprint = admin_fingerprint(admin_hash);
    let found = store
        .read(move |c| {
            let Some(row) = sessions::find(c, &hash, now)? else { return Ok(None) };
            let username = match &row.holder {
                Holder::User { user_id, .. } => Some(users::get(c, *user_id)?.username),
                Holder::Admin { .. } => None,
            };
            Ok(Some((row, username)))
        })
        .await?;
    let Some((row, username)) = found else { return Ok(None) };
    if !alive(&row, &fingerprint, now) {
        store.run(move |c| sessions::delete(c, &hash)).await?;
        return Ok(None);
    }
    if now - row.last_seen_at >= TOUCH_GRANULARITY {
        store.run(move |c| sessions::touch(c, &hash, now)).await?;
    }
    let actor = match row.holder {
        Holder::User { user_id, .. } => Actor::User(user_id),
        Holder::Admin { .. } => Actor::Admin,
    };
    Ok(Some(Session { actor, username, csrf: csrf_token(id) }))
}

/// Ends the session with this id (an unknown one is already ended).
pub async fn sign_out(store: &Store, id: &str) -> StoreResult<()> {
    let hash = secret::hash(id.as_bytes());
    store.run(move |c| sessions::delete(c, &hash)).await
}

/// The CSRF token of the session with this id: an HMAC of a fixed label keyed by the session id,
/// so it needs no storage, differs per session, and cannot be derived without the cookie.
pub fn csrf_token(session_id: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, session_id.as_bytes());
    let tag = hmac::sign(&key, b"jobtoken console csrf v1");
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
}

/// True when `presented` is the session's CSRF token (compared in constant time).
pub fn csrf_matches(session: &Session, presented: &str) -> bool {
    bool::from(session.csrf.as_bytes().ct_eq(presented.as_bytes()))
}

/// What the "Why?" panel asks: may a job of `source` (run by `username`, on a protected ref or
/// not) use `scope` on the project?
#[derive(Debug, Clone)]
pub struct WhyQuestion {
    pub source: String,
    pub username: String,
    pub ref_protected: bool,
    pub scope: Scope,
}

/// The panel's answer: the decision and its reason, from the policy the token endpoints use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhyAnswer {
    pub allowed: bool,
    pub reason: String,
}

/// Answers `question` for project `target` with [`super::decision::load_input`] and
/// [`policy::decide_for`], as minting and the decision endpoint do. The actor needs what reading
/// the project's job token settings needs; a source or user they cannot see reads as unknown.
pub async fn why(
    store: &Store,
    actor: Actor,
    target: ProjectId,
    question: WhyQuestion,
) -> Result<WhyAnswer, ScopeError> {
    super::transaction(store, move |c| {
        editor::may_edit(c, actor, Node::Project(target))?;
        let unknown = |what: String| Ok(WhyAnswer { allowed: false, reason: what });
        let Some(source) = namespaces::find_project_by_path(c, question.source.trim())? else {
            return unknown(format!("there is no project {} (or you cannot see it)", question.source.trim()));
        };
        if editor::may_see(c, actor, Node::Project(source.id)).is_err() {
            return unknown(format!("there is no project {} (or you cannot see it)", question.source.trim()));
        }
        let target_project = namespaces::get_project(c, target)?;
        // A user is asked about only if the actor could know them: themselves, or a member of
        // the source or of this project (directly or through a group). Anyone else, and an
        // unknown name, get the same answer, so the panel tells nothing about who exists.
        let no_user =
            || unknown(format!("there is no user {} among the members of either project", question.username.trim()));
        let Some(user) = users::find_by_username(c, question.username.trim())? else { return no_user() };
        let member_of = |p: &namespaces::Project| -> StoreResult<bool> {
            let traversal = namespaces::get_group(c, p.namespace_id)?.traversal_ids;
            Ok(namespaces::effective_access(c, user.id, p.id, &traversal)?.is_some())
        };
        let knowable = match actor {
            Actor::Admin => true,
            Actor::User(me) => me == user.id || member_of(&source)? || member_of(&target_project)?,
        };
        if !knowable {
            return no_user();
        }
        let job =
            super::decision::JobSide { source: source.id, user_id: user.id, ref_protected: question.ref_protected };
        if source.id == target {
            return unknown("a job always reaches its own project; its job token scopes decide what it may do".into());
        }
        let input = super::decision::load_input(c, &job, &target_project)?;
        let decision = policy::decide_for(&input, question.scope);
        Ok(WhyAnswer { allowed: decision.allowed.contains(question.scope), reason: decision.reason })
    })
    .await
}

/// At most this many matches are listed by [`find_sources`].
pub const MAX_FOUND: usize = 20;

/// Projects (or groups, `groups`) whose full path contains `text`, as the admin lists' `search`
/// finds them, keeping only those the actor may add as a source ([`editor::may_see`]): at most
/// [`MAX_FOUND`], each with its full path. What the actor cannot see is never listed.
pub async fn find_sources(store: &Store, actor: Actor, groups: bool, text: String) -> StoreResult<Vec<(Node, String)>> {
    store
        .read(move |c| {
            let mut found = Vec::new();
            // The visible matches may be sparse: look through a bounded number of pages.
            for number in 1..=10 {
                let page = Page::new(number, crate::store::page::MAX_PER_PAGE);
                let (listed, total): (Vec<(Node, String)>, u64) = if groups {
                    let l = namespaces::list_groups(c, Some(&text), page)?;
                    (l.items.into_iter().map(|g| (Node::Group(g.id), g.full_path)).collect(), l.total)
                } else {
                    let filter = namespaces::ProjectFilter { search: Some(text.clone()), ..Default::default() };
                    let l = namespaces::list_projects(c, &filter, page)?;
                    (l.items.into_iter().map(|p| (Node::Project(p.id), p.path_with_namespace)).collect(), l.total)
                };
                for (node, path) in listed {
                    match editor::may_see(c, actor, node) {
                        Ok(_) if found.len() < MAX_FOUND => found.push((node, path)),
                        Err(ScopeError::Store(e)) => return Err(e),
                        _ => {}
                    }
                }
                if found.len() >= MAX_FOUND || number * crate::store::page::MAX_PER_PAGE >= total {
                    break;
                }
            }
            Ok(found)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(holder: Holder, created_at: i64, last_seen_at: i64, pat_live: bool, state: UserState) -> SessionRow {
        SessionRow { holder, created_at, last_seen_at, pat_live, user_state: Some(state) }
    }

    #[test]
    fn a_session_lives_while_fresh_and_its_credential_is_good() {
        let user = Holder::User { user_id: 1, pat_id: 2 };
        let admin = Holder::Admin { fingerprint: vec![7; 32] };
        let t = 1_000_000;
        let cases = [
            (row(user.clone(), t, t, true, UserState::Active), t + 60, true),
            (row(user.clone(), t, t, true, UserState::Active), t + IDLE_LIFETIME, false), // idle
            (row(user.clone(), t, t + ABSOLUTE_LIFETIME - 10, true, UserState::Active), t + ABSOLUTE_LIFETIME, false),
            (row(user.clone(), t, t, false, UserState::Active), t + 1, false), // PAT revoked or expired
            (row(user, t, t, true, UserState::Blocked), t + 1, false),
            (row(admin.clone(), t, t, false, UserState::Active), t + 1, true),
        ];
        for (i, (row, now, expected)) in cases.iter().enumerate() {
            assert_eq!(alive(row, &[7; 32], *now), *expected, "case {i}");
        }
        let other_admin_token = row(admin, t, t, false, UserState::Active);
        assert!(!alive(&other_admin_token, &[8; 32], t + 1), "the admin token changed");
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_match_only_their_own() {
        let (a, b) = (csrf_token("jtcs_a"), csrf_token("jtcs_b"));
        assert_ne!(a, b);
        let session = Session { actor: Actor::Admin, username: None, csrf: a.clone() };
        assert!(csrf_matches(&session, &a));
        assert!(!csrf_matches(&session, &b));
        assert!(!csrf_matches(&session, ""));
    }
}
