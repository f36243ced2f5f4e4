//! The `sub` of ID tokens: which claims make it up (`id_token_sub_claim_components`), the
//! nearest setting winning, and the bound that keeps it within what consumers accept.

/// Longest `sub` every federation consumer takes: GCP's `google.subject` is at most 127 bytes.
pub const MAX_SUB_BYTES: usize = 127;

/// The claim names a `sub` may be made of.
pub const SUB_COMPONENTS: &[&str] = &[
    "project_id",
    "project_path",
    "namespace_id",
    "namespace_path",
    "user_id",
    "user_login",
    "pipeline_id",
    "pipeline_source",
    "job_id",
    "runner_id",
    "ref",
    "ref_type",
    "ref_protected",
    "environment",
    "sha",
    "project_visibility",
];

/// GitLab's default: `project_path:{…}:ref_type:{…}:ref:{…}`.
pub const DEFAULT_SUB_COMPONENTS: &[&str] = &["project_path", "ref_type", "ref"];

/// An id not known yet, counted at its longest: 20 digits, more than any positive 64-bit id has.
pub const UNKNOWN_ID: &str = "99999999999999999999";

/// The longest `project_visibility` (`internal`): visibility can change after the check, so the
/// checks count it at its longest.
pub const LONGEST_VISIBILITY: &str = "internal";

/// The values a `sub` is made of, as text: the claims of one ID token, or (for the checks made
/// when an input changes) the real values known so far, with [`UNKNOWN_ID`] for ids not known
/// yet. `environment` is empty when the job has none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubValues {
    pub project_id: String,
    pub project_path: String,
    pub namespace_id: String,
    pub namespace_path: String,
    pub user_id: String,
    pub user_login: String,
    pub pipeline_id: String,
    pub pipeline_source: String,
    pub job_id: String,
    pub runner_id: String,
    pub ref_: String,
    pub ref_type: String,
    pub ref_protected: String,
    pub environment: String,
    pub sha: String,
    pub project_visibility: String,
}

impl SubValues {
    /// A component's value (empty for an unknown name, which [`check_sub_components`] refuses).
    pub fn value(&self, name: &str) -> &str {
        match name {
            "project_id" => &self.project_id,
            "project_path" => &self.project_path,
            "namespace_id" => &self.namespace_id,
            "namespace_path" => &self.namespace_path,
            "user_id" => &self.user_id,
            "user_login" => &self.user_login,
            "pipeline_id" => &self.pipeline_id,
            "pipeline_source" => &self.pipeline_source,
            "job_id" => &self.job_id,
            "runner_id" => &self.runner_id,
            "ref" => &self.ref_,
            "ref_type" => &self.ref_type,
            "ref_protected" => &self.ref_protected,
            "environment" => &self.environment,
            "sha" => &self.sha,
            "project_visibility" => &self.project_visibility,
            _ => "",
        }
    }
}

/// The `sub`: `name:value` pairs joined by `:`, in the order given. The one builder, used by
/// minting and by every check.
pub fn sub(components: &[String], values: &SubValues) -> String {
    components.iter().map(|name| format!("{name}:{}", values.value(name))).collect::<Vec<_>>().join(":")
}

/// Checks a setting's shape: a non-empty ordered list of distinct known claim names. Whether its
/// `sub` fits is checked against real values ([`check_fits`]) by every write that changes an
/// input. The error is a sentence for the client.
pub fn check_sub_components(components: &[String]) -> Result<(), String> {
    if components.is_empty() {
        return Err("id_token_sub_claim_components must name at least one claim (null inherits)".into());
    }
    if let Some(unknown) = components.iter().find(|c| !SUB_COMPONENTS.contains(&c.as_str())) {
        let shown: String = unknown.chars().take(40).collect();
        return Err(format!(
            "id_token_sub_claim_components: unknown claim {shown:?}; allowed: {}",
            SUB_COMPONENTS.join(", ")
        ));
    }
    if let Some((i, dup)) = components.iter().enumerate().find(|(i, c)| components[..*i].contains(c)) {
        return Err(format!("id_token_sub_claim_components names {dup} twice (at {i})"));
    }
    Ok(())
}

/// Where the components in force come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubOrigin {
    /// The project's own setting.
    Project,
    /// The setting of this group (its full path).
    Group(String),
    /// No setting anywhere: GitLab's default.
    Default,
}

impl std::fmt::Display for SubOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubOrigin::Project => f.write_str("the project's own setting"),
            SubOrigin::Group(path) => write!(f, "inherited from group {path}"),
            SubOrigin::Default => f.write_str("the default, no setting on the project or its groups"),
        }
    }
}

/// A `sub` that would be longer than [`MAX_SUB_BYTES`]: the refusal names the project, its
/// components and where they come from, the byte count, the case, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the ID-token sub of project {project} would be {bytes} bytes {case}, over the {MAX_SUB_BYTES}-byte limit \
     (GCP's google.subject takes at most {MAX_SUB_BYTES}); its id_token_sub_claim_components are {} ({origin}); \
     choose shorter components on the project or a group above it, e.g. project_id instead of project_path, \
     or project_id,ref_type,ref_protected",
    components.join(",")
)]
pub struct SubTooLong {
    pub project: String,
    pub bytes: usize,
    /// What the values were, e.g. `with its path alone` or `for job 12 (ref …)`.
    pub case: String,
    pub components: Vec<String>,
    pub origin: SubOrigin,
}

/// `Err(bytes)` when the `sub` of `components` made from `values` is longer than
/// [`MAX_SUB_BYTES`].
pub fn check_fits(components: &[String], values: &SubValues) -> Result<(), usize> {
    match sub(components, values).len() {
        bytes if bytes > MAX_SUB_BYTES => Err(bytes),
        _ => Ok(()),
    }
}

/// The components in force: the nearest explicit setting (`settings`: the project's, then its
/// groups' nearest first), else the default.
pub fn sub_components_in_force<'a>(settings: impl IntoIterator<Item = Option<&'a [String]>>) -> Vec<String> {
    sub_components_at(settings).0
}

/// [`sub_components_in_force`], with the index in `settings` of the setting in force (`None`:
/// the default).
pub fn sub_components_at<'a>(settings: impl IntoIterator<Item = Option<&'a [String]>>) -> (Vec<String>, Option<usize>) {
    match settings.into_iter().enumerate().find_map(|(i, s)| s.map(|s| (i, s))) {
        Some((i, setting)) => (setting.to_vec(), Some(i)),
        None => (DEFAULT_SUB_COMPONENTS.iter().map(|s| (*s).to_owned()).collect(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_nearest_setting_wins_and_the_default_is_gitlabs() {
        let project = names(&["project_id"]);
        let group = names(&["namespace_id", "ref_type"]);
        assert_eq!(sub_components_in_force([Some(&project[..]), Some(&group[..])]), project);
        assert_eq!(sub_components_in_force([None, None, Some(&group[..])]), group);
        assert_eq!(sub_components_in_force([None, None]), names(&["project_path", "ref_type", "ref"]));
    }

    fn values() -> SubValues {
        SubValues {
            project_id: "42".into(),
            project_path: "grp/app".into(),
            namespace_id: "7".into(),
            namespace_path: "grp".into(),
            user_id: UNKNOWN_ID.into(),
            user_login: "dev".into(),
            pipeline_id: UNKNOWN_ID.into(),
            pipeline_source: "push".into(),
            job_id: UNKNOWN_ID.into(),
            runner_id: UNKNOWN_ID.into(),
            ref_: "main".into(),
            ref_type: "branch".into(),
            ref_protected: "false".into(),
            environment: String::new(),
            sha: "a".repeat(40),
            project_visibility: LONGEST_VISIBILITY.into(),
        }
    }

    #[test]
    fn a_malformed_setting_is_refused_when_it_is_set() {
        assert!(check_sub_components(&names(&["project_path", "ref", "environment", "sha"])).is_ok(), "shape only");
        assert!(check_sub_components(&names(&["nope"])).unwrap_err().contains("unknown claim"));
        assert!(check_sub_components(&names(&["job_id", "job_id"])).unwrap_err().contains("twice"));
        assert!(check_sub_components(&[]).is_err());
    }

    /// The truth table of the bound: the sub made from the values is what counts, byte for byte,
    /// and 127 bytes is the last length that fits.
    #[test]
    fn the_sub_fits_exactly_when_the_sub_made_from_the_values_has_at_most_127_bytes() {
        let default = names(DEFAULT_SUB_COMPONENTS);
        let mut v = values();
        assert_eq!(sub(&default, &v), "project_path:grp/app:ref_type:branch:ref:main");
        assert_eq!(check_fits(&default, &v), Ok(()), "the default fits ordinary values");
        // "project_path:grp/app:ref_type:branch:ref:" is 41 bytes: a ref of 86 bytes is the longest that fits.
        v.ref_ = "r".repeat(86);
        assert_eq!(sub(&default, &v).len(), 127);
        assert_eq!(check_fits(&default, &v), Ok(()));
        v.ref_ = "r".repeat(87);
        assert_eq!(check_fits(&default, &v), Err(128));
        v.ref_ = "é".repeat(44);
        assert_eq!(check_fits(&default, &v), Err(129), "bytes, not characters");
        let by_id = names(&["project_id", "ref_type", "ref_protected", "job_id", "runner_id"]);
        v.project_path = format!("grp/{}", "p".repeat(200));
        assert!(check_fits(&default, &v).is_err(), "a long path with the default does not fit");
        assert_eq!(check_fits(&by_id, &v), Ok(()), "the same project can choose a sub that fits");
        assert_eq!(
            sub(&by_id, &v).len(),
            "project_id:42:ref_type:branch:ref_protected:false:job_id::runner_id:".len() + 40
        );
        let every: Vec<String> = names(SUB_COMPONENTS);
        assert!(check_fits(&every, &values()).is_err(), "every claim at once never fits");
    }

    #[test]
    fn the_refusal_names_the_limit_the_bytes_the_setting_and_the_fix() {
        let refusal = SubTooLong {
            project: "grp/app".into(),
            bytes: 140,
            case: "for the new pipeline's job build (ref feature/x)".into(),
            components: names(DEFAULT_SUB_COMPONENTS),
            origin: SubOrigin::Group("grp".into()),
        }
        .to_string();
        for part in ["grp/app", "140 bytes", "127-byte limit", "project_path,ref_type,ref", "group grp", "shorter"] {
            assert!(refusal.contains(part), "{part} in {refusal}");
        }
    }

    #[test]
    fn sub_components_at_tells_where_the_setting_in_force_comes_from() {
        let group = names(&["namespace_id"]);
        assert_eq!(sub_components_at([None, Some(&group[..])]), (group.clone(), Some(1)));
        assert_eq!(sub_components_at([None, None]).1, None);
    }
}
