//! OIDC ID tokens for cloud federation (issue 11): GitLab's ID-token claims, made from a live
//! job token's claims, signed by the ID-token key family with header `typ: JWT`. Pure.

use serde::{Deserialize, Serialize};

use super::{jws, Audience, Claims};
use crate::domain::RefType;
use crate::keys::{KeyError, KeyPair};
use crate::policy::id_token::SubValues;

/// The `typ` of ID tokens: what AWS, GCP, Azure, Vault and strict verifiers expect.
pub const ID_TOKEN_TYPE: &str = "JWT";

/// GitLab's ID-token claims. Ids are strings as GitLab sends them (`runner_id` a number, as
/// there); times integer seconds; `ref_protected` is `"true"` or `"false"` so that Vault's
/// `bound_claims` can match it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub namespace_id: String,
    pub namespace_path: String,
    pub project_id: String,
    pub project_path: String,
    pub user_id: String,
    pub user_login: String,
    pub pipeline_id: String,
    pub pipeline_source: String,
    pub job_id: String,
    #[serde(rename = "ref")]
    pub ref_: String,
    pub ref_type: RefType,
    pub ref_path: String,
    pub ref_protected: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub environment: Option<String>,
    pub runner_id: i64,
    pub sha: String,
    pub project_visibility: String,
}

/// What an ID token is made of besides the job token's claims.
#[derive(Debug, Clone)]
pub struct IdTokenRequest<'a> {
    pub audience: Vec<String>,
    /// The `sub` components in force ([`crate::policy::id_token::sub_components_in_force`]).
    pub sub_components: &'a [String],
    pub jti: &'a str,
    pub now: i64,
    /// The subject token's expiry: the ID token never outlives it.
    pub not_after: i64,
    pub ttl_secs: i64,
}

/// The ID-token claims for the job of `parent`.
pub fn claims(parent: &Claims, req: &IdTokenRequest<'_>) -> IdClaims {
    let ref_path = match parent.ref_type {
        RefType::Branch => format!("refs/heads/{}", parent.ref_),
        RefType::Tag => format!("refs/tags/{}", parent.ref_),
    };
    let mut claims = IdClaims {
        iss: parent.iss.clone(),
        sub: String::new(),
        aud: Audience::from_values(req.audience.clone()),
        exp: req.now.saturating_add(req.ttl_secs).min(req.not_after),
        iat: req.now,
        nbf: req.now,
        jti: req.jti.to_owned(),
        namespace_id: parent.namespace_id.to_string(),
        namespace_path: parent.namespace_path.clone(),
        project_id: parent.project_id.to_string(),
        project_path: parent.project_path.clone(),
        user_id: parent.user_id.to_string(),
        user_login: parent.user_login.clone(),
        pipeline_id: parent.pipeline_id.to_string(),
        pipeline_source: parent.pipeline_source.clone(),
        job_id: parent.job_id.to_string(),
        ref_: parent.ref_.clone(),
        ref_type: parent.ref_type,
        ref_path,
        ref_protected: parent.ref_protected.to_string(),
        environment: parent.environment.clone(),
        runner_id: parent.runner_id,
        sha: parent.sha.clone(),
        project_visibility: parent.project_visibility.clone(),
    };
    claims.sub = crate::policy::id_token::sub(req.sub_components, &claims.sub_values());
    claims
}

impl IdClaims {
    /// The values its `sub` is made of ([`crate::policy::id_token::sub`]).
    pub fn sub_values(&self) -> SubValues {
        SubValues {
            project_id: self.project_id.clone(),
            project_path: self.project_path.clone(),
            namespace_id: self.namespace_id.clone(),
            namespace_path: self.namespace_path.clone(),
            user_id: self.user_id.clone(),
            user_login: self.user_login.clone(),
            pipeline_id: self.pipeline_id.clone(),
            pipeline_source: self.pipeline_source.clone(),
            job_id: self.job_id.clone(),
            runner_id: self.runner_id.to_string(),
            ref_: self.ref_.clone(),
            ref_type: self.ref_type.as_str().to_owned(),
            ref_protected: self.ref_protected.clone(),
            environment: self.environment.clone().unwrap_or_default(),
            sha: self.sha.clone(),
            project_visibility: self.project_visibility.clone(),
        }
    }
}

/// Signs `claims` with `key`: header `{"alg", "typ": "JWT", "kid"}`, the key choosing `alg`.
pub fn encode(claims: &IdClaims, key: &KeyPair) -> Result<String, KeyError> {
    let header = serde_json::json!({ "alg": key.alg().as_str(), "typ": ID_TOKEN_TYPE, "kid": key.kid() });
    let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Sign(e.to_string()))?;
    jws::sign_compact(&header, &payload, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent() -> Claims {
        Claims {
            iss: "https://jt".into(),
            sub: "project_path:g/a:ref_type:branch:ref:main".into(),
            aud: Audience::One("https://jt".into()),
            exp: 5000,
            iat: 1000,
            nbf: 1000,
            jti: "p".into(),
            client_id: "runner_x".into(),
            scope: "read_repository".into(),
            job_id: 7,
            pipeline_id: 3,
            project_id: 2,
            project_path: "g/a".into(),
            namespace_id: 1,
            namespace_path: "g".into(),
            user_id: 4,
            user_login: "dev".into(),
            ref_: "main".into(),
            ref_type: RefType::Branch,
            ref_protected: true,
            pipeline_source: "push".into(),
            sha: "abc".into(),
            runner_id: 5,
            project_visibility: "private".into(),
            environment: None,
            authorization_details: vec![],
            act: None,
        }
    }

    #[test]
    fn id_claims_follow_gitlab_and_never_outlive_the_subject_token() {
        let components: Vec<String> = ["project_path", "ref_type", "ref"].map(String::from).into();
        let req = IdTokenRequest {
            audience: vec!["sts.amazonaws.com".into()],
            sub_components: &components,
            jti: "j",
            now: 4900,
            not_after: 5000,
            ttl_secs: 300,
        };
        let c = claims(&parent(), &req);
        assert_eq!(c.sub, "project_path:g/a:ref_type:branch:ref:main");
        assert_eq!(c.aud, Audience::One("sts.amazonaws.com".into()));
        assert_eq!((c.iat, c.nbf, c.exp), (4900, 4900, 5000), "capped at the subject's exp");
        assert_eq!(c.ref_path, "refs/heads/main");
        assert_eq!(c.ref_protected, "true");
        let json = serde_json::to_value(&c).unwrap();
        assert!(json.get("environment").is_none());
        assert_eq!(json["ref"], "main");
    }
}
