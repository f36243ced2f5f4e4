//! The `sub` of ID tokens: which claims make it up (`id_token_sub_claim_components`), the
//! nearest setting winning, and the bound that keeps it within what consumers accept.

/// Longest `sub` every federation consumer takes: GCP's `google.subject` is at most 127 bytes.
pub const MAX_SUB_BYTES: usize = 127;

/// The claim names a `sub` may be made of, with the most bytes each value can take in the store
/// (ids are positive 64-bit integers; paths are at most 255 bytes; `ref`, `environment` and
/// `pipeline_source` are up to 255, 255 and 64 characters of UTF-8; `sha` up to 64 hex digits).
pub const SUB_COMPONENTS: &[(&str, usize)] = &[
    ("project_id", 19),
    ("project_path", 255),
    ("namespace_id", 19),
    ("namespace_path", 255),
    ("user_id", 19),
    ("user_login", 255),
    ("pipeline_id", 19),
    ("pipeline_source", 64 * 4),
    ("job_id", 19),
    ("runner_id", 19),
    ("ref", 255 * 4),
    ("ref_type", 6),
    ("ref_protected", 5),
    ("environment", 255 * 4),
    ("sha", 64),
    ("project_visibility", 8),
];

/// GitLab's default: `project_path:{…}:ref_type:{…}:ref:{…}`.
pub const DEFAULT_SUB_COMPONENTS: &[&str] = &["project_path", "ref_type", "ref"];

/// The longest `sub` `components` can make: `name:value` pairs joined by `:`.
pub fn longest_sub(components: &[String]) -> usize {
    let pairs: usize = components
        .iter()
        .map(|name| name.len() + 1 + SUB_COMPONENTS.iter().find(|(n, _)| n == name).map_or(0, |(_, max)| *max))
        .sum();
    pairs + components.len().saturating_sub(1)
}

/// Checks a setting: a non-empty ordered list of distinct known claim names whose longest `sub`
/// fits [`MAX_SUB_BYTES`]. The error is a sentence for the client.
pub fn check_sub_components(components: &[String]) -> Result<(), String> {
    if components.is_empty() {
        return Err("id_token_sub_claim_components must name at least one claim (null inherits)".into());
    }
    let known: Vec<&str> = SUB_COMPONENTS.iter().map(|(n, _)| *n).collect();
    if let Some(unknown) = components.iter().find(|c| !known.contains(&c.as_str())) {
        let shown: String = unknown.chars().take(40).collect();
        return Err(format!("id_token_sub_claim_components: unknown claim {shown:?}; allowed: {}", known.join(", ")));
    }
    if let Some((i, dup)) = components.iter().enumerate().find(|(i, c)| components[..*i].contains(c)) {
        return Err(format!("id_token_sub_claim_components names {dup} twice (at {i})"));
    }
    match longest_sub(components) {
        len if len > MAX_SUB_BYTES => Err(format!(
            "id_token_sub_claim_components {} could make a sub of {len} bytes (with the longest values the store \
             allows), over the {MAX_SUB_BYTES} bytes GCP's google.subject accepts; choose fewer or shorter claims, \
             e.g. project_id, ref_type, ref_protected",
            components.join(",")
        )),
        _ => Ok(()),
    }
}

/// The components in force: the nearest explicit setting (`settings`: the project's, then its
/// groups' nearest first), else the default.
pub fn sub_components_in_force<'a>(settings: impl IntoIterator<Item = Option<&'a [String]>>) -> Vec<String> {
    settings
        .into_iter()
        .flatten()
        .next()
        .map(<[String]>::to_vec)
        .unwrap_or_else(|| DEFAULT_SUB_COMPONENTS.iter().map(|s| (*s).to_owned()).collect())
}

/// `name:value` pairs joined by `:`, in the order given; `value` gives a claim's value as text.
pub fn sub(components: &[String], value: impl Fn(&str) -> String) -> String {
    components.iter().map(|name| format!("{name}:{}", value(name))).collect::<Vec<_>>().join(":")
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

    #[test]
    fn a_setting_that_could_exceed_127_bytes_is_refused() {
        assert!(check_sub_components(&names(&["project_id", "ref_type", "ref_protected", "job_id"])).is_ok());
        let long = check_sub_components(&names(&["project_path", "ref"])).unwrap_err();
        assert!(long.contains("127"), "{long}");
        assert!(check_sub_components(&names(&["nope"])).unwrap_err().contains("unknown claim"));
        assert!(check_sub_components(&names(&["job_id", "job_id"])).unwrap_err().contains("twice"));
        assert!(check_sub_components(&[]).is_err());
    }

    #[test]
    fn longest_sub_counts_names_separators_and_values() {
        assert_eq!(longest_sub(&names(&["ref_type"])), "ref_type:branch".len());
        assert_eq!(longest_sub(&names(&["ref_type", "ref_protected"])), "ref_type:branch:ref_protected:false".len());
        let made =
            sub(&names(&["ref_type", "ref_protected"]), |n| if n == "ref_type" { "tag".into() } else { "true".into() });
        assert_eq!(made, "ref_type:tag:ref_protected:true");
    }
}
