//! RFC 8693 token exchange: a live job token buys a narrower token for the same job — fewer
//! scopes, a chosen subset of its audience, a subset of its cross-project grants — that never
//! outlives it.

use serde_json::json;
use uuid::Uuid;

use super::Deps;
use super::{decision, live, mint};
use crate::domain::ScopeSet;
use crate::token::{details, id_token, Audience, Claims};

pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// Why a token exchange was refused. Mapped once to RFC 6749/8693 errors at the edge.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The subject token is not live (counted here).
    #[error("the subject_token is not active ({0})")]
    Inactive(live::Inactive),
    /// An audience the subject token does not have: an exchange can only narrow.
    #[error("audience {0} is not an audience of the subject token; an exchange can only narrow")]
    AudienceNotHeld(String),
    /// No ID-token key is loaded (a process that never ran key maintenance of this version).
    #[error("no ID-token signing key is available")]
    NoIdTokenKey,
    #[error("signing the ID token failed: {0}")]
    IdTokenKey(String),
    #[error(transparent)]
    Issue(#[from] mint::IssueError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// A validated exchange request.
#[derive(Debug, Clone, Default)]
pub struct ExchangeRequest {
    pub subject_token: String,
    pub scope: Option<ScopeSet>,
    /// `audience` and `resource` values; empty keeps the parent's audience.
    pub audience: Vec<String>,
    pub details: Option<Vec<details::Requested>>,
}

/// Narrows the parent's claims to what the request asks for. Pure.
///
/// `registered` are audiences the parent does not hold that it may still be exchanged to: a
/// parent that carries only the default audience may take any registered resource server's
/// audience (issue 11, point 5); see [`widenable`].
pub fn narrow(
    parent: &Claims,
    req: &ExchangeRequest,
    registered: &[String],
    jti: &str,
    now: i64,
) -> Result<(Claims, Vec<details::Granted>), ExchangeError> {
    let parent_scope = ScopeSet::parse_space_separated(&parent.scope).unwrap_or_default();
    let scope = req.scope.map_or(parent_scope, |asked| asked.intersect(parent_scope));
    let parent_aud = parent.aud.values();
    let held = |a: &String| parent_aud.contains(&a.as_str()) || registered.contains(a);
    if let Some(outside) = req.audience.iter().find(|a| !held(a)) {
        return Err(ExchangeError::AudienceNotHeld(outside.clone()));
    }
    let aud = match req.audience.is_empty() {
        true => parent.aud.clone(),
        false => Audience::from_values(req.audience.clone()),
    };
    let parent_details: Vec<details::Granted> =
        parent.authorization_details.iter().filter_map(|v| serde_json::from_value(v.clone()).ok()).collect();
    let granted: Vec<details::Granted> = match &req.details {
        None => parent_details,
        Some(asked) => asked
            .iter()
            .filter_map(|a| {
                let held = parent_details.iter().find(|d| match &a.project {
                    details::ProjectRef::Id(id) => d.project_id == *id,
                    details::ProjectRef::Path(path) => &d.project_path == path,
                })?;
                let actions = held.actions.intersect(a.actions);
                (!actions.is_empty()).then(|| details::Granted { actions, ..held.clone() })
            })
            .collect(),
    };
    let claims = Claims {
        aud,
        iat: now,
        nbf: now,
        jti: jti.to_owned(),
        scope: scope.to_space_separated(),
        authorization_details: granted.iter().filter_map(|d| serde_json::to_value(d).ok()).collect(),
        act: Some(actor(parent)),
        ..parent.clone()
    };
    Ok((claims, granted))
}

/// The asked audiences a parent may be exchanged to although it does not hold them: only for a
/// parent whose sole audience is the default one, the asked audiences it lacks (the caller keeps
/// those a registered resource server names). A parent with explicit audiences only narrows. Pure.
pub fn widenable(parent: &Claims, asked: &[String], default_audience: &str) -> Vec<String> {
    match parent.aud.values().as_slice() {
        [only] if *only == default_audience => {
            asked.iter().filter(|a| a.as_str() != default_audience).cloned().collect()
        }
        _ => Vec::new(),
    }
}

/// RFC 8693 §4.1: the actor is the holder of the subject token; a subject token that was itself
/// exchanged nests its own `act`, so the whole delegation chain stays visible, newest first.
fn actor(parent: &Claims) -> serde_json::Value {
    let mut act = json!({ "sub": parent.sub, "client_id": parent.client_id });
    if let Some(prior) = &parent.act {
        act["act"] = prior.clone();
    }
    act
}

/// Caps a narrowed token at what its parent's grants are still worth: its scope at `own`, each
/// `authorization_details` entry at the live decision on its target (`cross`); entries left
/// empty are dropped. Pure.
pub fn cap(claims: &mut Claims, details: &mut Vec<details::Granted>, own: ScopeSet, cross: &[(i64, ScopeSet)]) {
    let scope = ScopeSet::parse_space_separated(&claims.scope).unwrap_or_default().intersect(own);
    claims.scope = scope.to_space_separated();
    details.retain_mut(|d| {
        let live = cross.iter().find(|(t, _)| *t == d.project_id).map_or(ScopeSet::EMPTY, |(_, s)| *s);
        d.actions = d.actions.intersect(live);
        !d.actions.is_empty()
    });
    claims.authorization_details = details.iter().filter_map(|d| serde_json::to_value(d).ok()).collect();
}

/// The entries an exchange asked for (absent: the parent's) that the new token does not carry:
/// not held by the parent, or held but no longer granted by the live decision ([`cap`]). Pure.
pub fn refused(
    parent: &Claims,
    asked: Option<&[details::Requested]>,
    narrowed: &[details::Granted],
    granted: &[details::Granted],
) -> Vec<mint::RefusedDetail> {
    let matches = |d: &details::Granted, project: &details::ProjectRef| match project {
        details::ProjectRef::Id(id) => d.project_id == *id,
        details::ProjectRef::Path(path) => &d.project_path == path,
    };
    let lost = |d: &details::Granted| mint::RefusedDetail {
        target: d.project_path.clone(),
        refusal: mint::DetailRefusal::NoLongerGranted,
        reason: format!(
            "the subject token holds {} on {}, but the live decision grants none of it any more",
            d.actions.to_space_separated(),
            d.project_path
        ),
    };
    let Some(asked) = asked else {
        return narrowed.iter().filter(|d| !granted.iter().any(|g| g.project_id == d.project_id)).map(lost).collect();
    };
    asked
        .iter()
        .filter(|a| !granted.iter().any(|g| matches(g, &a.project)))
        .map(|a| match narrowed.iter().find(|d| matches(d, &a.project)) {
            Some(held) => lost(held),
            None => {
                let target = decision::TargetRef::from(&a.project).to_string();
                mint::RefusedDetail {
                    reason: format!(
                        "the subject token (of {}) holds none of {} on {target}; an exchange can only narrow",
                        parent.project_path,
                        a.actions.to_space_separated()
                    ),
                    target,
                    refusal: mint::DetailRefusal::NotHeld,
                }
            }
        })
        .collect()
}

pub async fn exchange(deps: Deps<'_>, req: ExchangeRequest, now: i64) -> Result<mint::Minted, ExchangeError> {
    let parent = match live::live(deps.store, deps.keys, &req.subject_token, now).await {
        Ok(found) => found,
        Err(live::LiveError::Store(e)) => return Err(e.into()),
        Err(live::LiveError::Inactive(inactive)) => {
            deps.metrics.deny(inactive.reason());
            return Err(ExchangeError::Inactive(inactive));
        }
    };
    let jti = Uuid::now_v7();
    let candidates = widenable(&parent.claims, &req.audience, &deps.config.default_audience);
    let registered = match candidates.is_empty() {
        true => Vec::new(),
        false => {
            deps.store
                .read(move |db| {
                    let mut kept = Vec::new();
                    for audience in candidates {
                        if crate::store::clients::audience_registered(db, &audience)? {
                            kept.push(audience);
                        }
                    }
                    Ok(kept)
                })
                .await?
        }
    };
    let (mut claims, mut details) = narrow(&parent.claims, &req, &registered, &jti.to_string(), now)?;
    // Never more than is still true: the parent's grants as they stand today.
    let (parent_claims, targets) = (parent.claims.clone(), details.iter().map(|d| d.project_id).collect::<Vec<_>>());
    let (own, cross) = deps
        .store
        .read(move |db| {
            let own = mint::own_grant_now(db, parent_claims.job_id)?;
            let cross = targets
                .into_iter()
                .map(|t| Ok((t, decision::live_cross_grant(db, &parent_claims, t)?)))
                .collect::<crate::store::Result<Vec<_>>>()?;
            Ok((own, cross))
        })
        .await?;
    let narrowed = details.clone();
    cap(&mut claims, &mut details, own, &cross);
    let access_token = mint::issue(deps, &claims, jti, Some(parent.jti)).await?;
    let refused = refused(&parent.claims, req.details.as_deref(), &narrowed, &details);
    mint::report_refused(deps.metrics, claims.job_id, &refused);
    let scope = ScopeSet::parse_space_separated(&claims.scope).unwrap_or_default();
    Ok(mint::Minted { access_token, expires_in: claims.exp - now, scope, details })
}

/// An ID token request (RFC 8693 with `requested_token_type` = [`ID_TOKEN_TYPE`]).
#[derive(Debug, Clone)]
pub struct IdTokenExchange {
    pub subject_token: String,
    /// At least one (the edge refuses none); one becomes a string `aud`, several an array.
    pub audience: Vec<String>,
}

/// An issued ID token.
#[derive(Debug, Clone)]
pub struct IssuedIdToken {
    pub id_token: String,
    pub expires_in: i64,
}

/// Exchanges a live job token for an OIDC ID token of its job: GitLab's claims, `sub` made of the
/// components in force for its project, signed by the ID-token key family, for at most
/// `JOBTOKEN_ID_TOKEN_TTL` and never past the subject token. ID tokens are not recorded: they
/// cannot be introspected or revoked, which their short life stands in for.
pub async fn id_token(deps: Deps<'_>, req: IdTokenExchange, now: i64) -> Result<IssuedIdToken, ExchangeError> {
    let parent = match live::live(deps.store, deps.keys, &req.subject_token, now).await {
        Ok(found) => found,
        Err(live::LiveError::Store(e)) => return Err(e.into()),
        Err(live::LiveError::Inactive(inactive)) => {
            deps.metrics.deny(inactive.reason());
            return Err(ExchangeError::Inactive(inactive));
        }
    };
    let project = parent.claims.project_id;
    let settings = deps.store.read(move |db| crate::store::namespaces::id_token_sub_settings(db, project)).await?;
    let components = crate::policy::id_token::sub_components_in_force(settings.iter().map(Option::as_deref));
    let jti = Uuid::now_v7().to_string();
    let request = id_token::IdTokenRequest {
        audience: req.audience,
        sub_components: &components,
        jti: &jti,
        now,
        not_after: parent.claims.exp.min(parent.record.expires_at),
        ttl_secs: deps.config.id_token_ttl_secs,
    };
    let claims = id_token::claims(&parent.claims, &request);
    let key = deps.keys.id_token_key().ok_or(ExchangeError::NoIdTokenKey)?;
    let token = id_token::encode(&claims, &key).map_err(|e| ExchangeError::IdTokenKey(e.to_string()))?;
    log::info!("issued ID token {jti} for job {} (sub {})", claims.job_id, claims.sub);
    Ok(IssuedIdToken { id_token: token, expires_in: claims.exp - now })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RefType;

    fn parent() -> Claims {
        Claims {
            iss: "https://jt".into(),
            sub: "project_path:g/a:ref_type:branch:ref:main".into(),
            aud: Audience::Many(vec!["reg".into(), "pkg".into()]),
            exp: 5000,
            iat: 1000,
            nbf: 1000,
            jti: "p".into(),
            client_id: "runner_x".into(),
            scope: "read_repository write_registry".into(),
            job_id: 1,
            pipeline_id: 1,
            project_id: 1,
            project_path: "g/a".into(),
            namespace_id: 1,
            namespace_path: "g".into(),
            user_id: 1,
            user_login: "dev".into(),
            ref_: "main".into(),
            ref_type: RefType::Branch,
            ref_protected: true,
            pipeline_source: "push".into(),
            sha: "".into(),
            runner_id: 1,
            project_visibility: "private".into(),
            environment: None,
            authorization_details: vec![json!({"type":"ci_project_access","project_id":2,"project_path":"g/b",
                                               "actions":["read_repository","read_registry"]})],
            act: None,
        }
    }

    #[test]
    fn exchange_narrows_scope_audience_and_details_and_keeps_the_parent_expiry() {
        let req = ExchangeRequest {
            scope: Some(ScopeSet::parse_space_separated("read_repository api").unwrap()),
            audience: vec!["pkg".into()],
            details: Some(
                details::parse(r#"[{"type":"ci_project_access","project_id":2,"actions":["read_registry","api"]}]"#)
                    .unwrap(),
            ),
            ..ExchangeRequest::default()
        };
        let (claims, granted) = narrow(&parent(), &req, &[], "child", 2000).unwrap();
        assert_eq!(claims.scope, "read_repository", "api was never the parent's, so it cannot appear");
        assert_eq!(claims.aud, Audience::One("pkg".into()));
        assert_eq!(claims.exp, 5000, "never outlives the parent");
        assert_eq!(claims.iat, 2000);
        assert_eq!(granted.len(), 1);
        assert_eq!(granted[0].actions.names(), vec!["read_registry"]);
        assert_eq!(
            claims.act,
            Some(json!({"sub": "project_path:g/a:ref_type:branch:ref:main", "client_id": "runner_x"}))
        );
    }

    #[test]
    fn a_chained_exchange_nests_the_prior_actor() {
        let (child, _) = narrow(&parent(), &ExchangeRequest::default(), &[], "child", 2000).unwrap();
        let (grandchild, _) = narrow(&child, &ExchangeRequest::default(), &[], "grandchild", 3000).unwrap();
        assert_eq!(
            grandchild.act,
            Some(json!({
                "sub": "project_path:g/a:ref_type:branch:ref:main", "client_id": "runner_x",
                "act": {"sub": "project_path:g/a:ref_type:branch:ref:main", "client_id": "runner_x"},
            }))
        );
    }

    #[test]
    fn only_a_parent_with_the_default_audience_alone_may_widen_to_a_registered_audience() {
        let default_only = Claims { aud: Audience::One("https://jt".into()), ..parent() };
        let asked = vec!["registry.example".to_owned(), "https://jt".to_owned()];
        assert_eq!(widenable(&default_only, &asked, "https://jt"), vec!["registry.example".to_owned()]);
        assert!(widenable(&parent(), &asked, "https://jt").is_empty(), "explicit audiences only narrow");
        let req = ExchangeRequest { audience: vec!["registry.example".into()], ..ExchangeRequest::default() };
        let (claims, _) = narrow(&default_only, &req, &["registry.example".into()], "child", 2000).unwrap();
        assert_eq!(claims.aud, Audience::One("registry.example".into()));
        assert!(narrow(&default_only, &req, &[], "child", 2000).is_err(), "unregistered: refused");
    }

    #[test]
    fn an_audience_the_parent_lacks_is_invalid_target() {
        let req = ExchangeRequest { audience: vec!["elsewhere".into()], ..ExchangeRequest::default() };
        let err = narrow(&parent(), &req, &[], "child", 2000).unwrap_err();
        assert!(matches!(err, ExchangeError::AudienceNotHeld(a) if a == "elsewhere"));
    }

    #[test]
    fn asked_entries_the_child_lacks_are_refused_as_not_held_or_no_longer_granted() {
        let held: Vec<details::Granted> =
            parent().authorization_details.iter().map(|v| serde_json::from_value(v.clone()).unwrap()).collect();
        let asked = details::parse(
            r#"[{"type":"ci_project_access","project_id":2,"actions":["read_repository"]},
                {"type":"ci_project_access","project_path":"g/c","actions":["api"]}]"#,
        )
        .unwrap();
        let left_out = refused(&parent(), Some(&asked), &held, &[]);
        let kinds: Vec<_> = left_out.iter().map(|r| (r.target.as_str(), r.refusal)).collect();
        assert_eq!(
            kinds,
            [("g/b", mint::DetailRefusal::NoLongerGranted), ("g/c", mint::DetailRefusal::NotHeld)],
            "{left_out:?}"
        );
        assert!(refused(&parent(), Some(&asked[..1]), &held, &held).is_empty(), "granted: nothing refused");
        assert_eq!(refused(&parent(), None, &held, &[]).len(), 1, "the parent's entries, when none are asked");
    }

    #[test]
    fn without_parameters_the_child_equals_the_parent_but_for_identity_and_times() {
        let (claims, _) = narrow(&parent(), &ExchangeRequest::default(), &[], "child", 2000).unwrap();
        assert_eq!(claims.scope, parent().scope);
        assert_eq!(claims.aud, parent().aud);
        assert_eq!(claims.authorization_details, parent().authorization_details);
    }
}
