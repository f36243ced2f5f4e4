//! RFC 9396 `authorization_details` of type `ci_project_access`.

use serde::{Deserialize, Serialize};

use crate::domain::{ProjectId, ScopeSet};

/// The only type this server understands.
pub const CI_PROJECT_ACCESS: &str = "ci_project_access";

/// Most entries a request or a token may carry.
pub const MAX_DETAILS: usize = 200;

/// Which project a requested entry names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    Id(ProjectId),
    Path(String),
}

/// One requested entry, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    pub project: ProjectRef,
    pub actions: ScopeSet,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    #[serde(rename = "type")]
    type_: String,
    project_id: Option<ProjectId>,
    project_path: Option<String>,
    actions: Vec<String>,
}

/// Parses the request parameter: a JSON array of `ci_project_access` entries, each naming a
/// project by id or by path (not both) with at least one known action.
pub fn parse(json: &str) -> Result<Vec<Requested>, String> {
    let raw: Vec<RawEntry> = serde_json::from_str(json)
        .map_err(|e| format!("authorization_details is not a valid JSON array of entries: {e}"))?;
    if raw.len() > MAX_DETAILS {
        return Err(format!("authorization_details has more than {MAX_DETAILS} entries"));
    }
    raw.into_iter()
        .map(|e| {
            if e.type_ != CI_PROJECT_ACCESS {
                return Err(format!(
                    "authorization_details type {:?} is not supported; use {CI_PROJECT_ACCESS}",
                    e.type_
                ));
            }
            let project = match (e.project_id, e.project_path) {
                (Some(id), None) if id > 0 => ProjectRef::Id(id),
                (None, Some(path)) if !path.is_empty() && path.len() <= 1024 => ProjectRef::Path(path),
                (Some(_), None) => return Err("authorization_details project_id must be a positive integer".into()),
                (None, Some(_)) => return Err("authorization_details project_path must be 1 to 1024 characters".into()),
                _ => return Err("each authorization_details entry names project_id or project_path, not both".into()),
            };
            let actions: ScopeSet = e
                .actions
                .iter()
                .map(|a| a.parse())
                .collect::<Result<_, _>>()
                .map_err(|e| format!("authorization_details: {e}"))?;
            if actions.is_empty() {
                return Err("each authorization_details entry needs at least one action".into());
            }
            Ok(Requested { project, actions })
        })
        .collect()
}

/// A granted entry, as it appears in the token and the token response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Granted {
    #[serde(rename = "type")]
    pub type_: String,
    pub project_id: ProjectId,
    pub project_path: String,
    pub actions: ScopeSet,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_entries_by_id_or_path() {
        let parsed = parse(
            r#"[{"type":"ci_project_access","project_id":4,"actions":["read_repository"]},
                               {"type":"ci_project_access","project_path":"g/p","actions":["read_api","api"]}]"#,
        )
        .unwrap();
        assert_eq!(parsed[0].project, ProjectRef::Id(4));
        assert_eq!(parsed[1].actions.names(), vec!["read_api", "api"]);
    }

    #[test]
    fn rejects_what_it_cannot_evaluate() {
        for bad in [
            "{}",
            "[1]",
            r#"[{"type":"other","project_id":1,"actions":["api"]}]"#,
            r#"[{"type":"ci_project_access","actions":["api"]}]"#,
            r#"[{"type":"ci_project_access","project_id":1,"project_path":"a/b","actions":["api"]}]"#,
            r#"[{"type":"ci_project_access","project_id":1,"actions":["sudo"]}]"#,
            r#"[{"type":"ci_project_access","project_id":1,"actions":[]}]"#,
            r#"[{"type":"ci_project_access","project_id":1,"actions":["api"],"extra":1}]"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let many =
            format!("[{}]", vec![r#"{"type":"ci_project_access","project_id":1,"actions":["api"]}"#; 201].join(","));
        assert!(parse(&many).unwrap_err().contains("more than 200"));
    }
}
