//! The claim set of a job token (SPEC §5, RFC 9068).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::RefType;

/// `aud`: one value is a string, several an array (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn from_values(mut values: Vec<String>) -> Audience {
        match values.len() {
            1 => Audience::One(values.remove(0)),
            _ => Audience::Many(values),
        }
    }

    pub fn values(&self) -> Vec<&str> {
        match self {
            Audience::One(a) => vec![a.as_str()],
            Audience::Many(list) => list.iter().map(String::as_str).collect(),
        }
    }
}

/// Every claim a job token carries. Ids are JSON numbers, times integer seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    pub job_id: i64,
    pub pipeline_id: i64,
    pub project_id: i64,
    pub project_path: String,
    pub namespace_id: i64,
    pub namespace_path: String,
    pub user_id: i64,
    pub user_login: String,
    #[serde(rename = "ref")]
    pub ref_: String,
    pub ref_type: RefType,
    pub ref_protected: bool,
    pub pipeline_source: String,
    pub sha: String,
    pub runner_id: i64,
    pub project_visibility: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_details: Vec<Value>,
    /// RFC 8693 actor of an exchanged token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Value>,
}

/// `project_path:{path_with_namespace}:ref_type:{branch|tag}:ref:{ref}`.
pub fn subject(project_path: &str, ref_type: RefType, ref_: &str) -> String {
    format!("project_path:{project_path}:ref_type:{ref_type}:ref:{ref_}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_names_project_ref_type_and_ref() {
        assert_eq!(subject("grp/app", RefType::Tag, "v1.2"), "project_path:grp/app:ref_type:tag:ref:v1.2");
    }

    #[test]
    fn single_audience_is_a_string_and_several_an_array() {
        let one = serde_json::to_value(Audience::from_values(vec!["a".into()])).unwrap();
        assert_eq!(one, serde_json::json!("a"));
        let two = serde_json::to_value(Audience::from_values(vec!["a".into(), "b".into()])).unwrap();
        assert_eq!(two, serde_json::json!(["a", "b"]));
    }
}
