//! The container registry token service (distribution's token authentication): what a
//! requested `scope` means and which of its actions a set of held scopes grants.
//!
//! `pull` needs `read_registry`, `push` needs `write_registry`; any other action (`delete`, `*`)
//! and any other resource type (`registry:catalog:*`) is granted only to the admin. Actions not
//! granted are left out of the token, as the distribution token spec requires.

use crate::domain::{Scope, ScopeSet, Visibility};

use super::rights::{visibility_reads, ProjectFacts};

/// How long a registry token lives at most (seconds); never past the job token's `exp`.
pub const REGISTRY_TOKEN_TTL_SECS: i64 = 300;

/// Most `scope` parameters one request may carry.
pub const MAX_SCOPES: usize = 32;

/// One requested `scope`: `type[(class)]:name:action[,action…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceScope {
    /// `repository`, `registry`, … (the optional `(class)` is dropped).
    pub resource_type: String,
    /// The repository path (may contain `:` for a registry host with a port).
    pub name: String,
    pub actions: Vec<String>,
}

/// Why a `scope` parameter is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope {shown:?}: {why} (expected type:name:actions, e.g. repository:grp/app:pull,push)")]
pub struct ScopeParseError {
    shown: String,
    why: &'static str,
}

impl ResourceScope {
    /// Parses one scope of the distribution token spec's grammar. Repository names must be
    /// lowercase path components (`[a-z0-9]+([._-][a-z0-9]+)*`, separated by `/`).
    pub fn parse(raw: &str) -> Result<ResourceScope, ScopeParseError> {
        let fail = |why| ScopeParseError { shown: raw.chars().take(80).collect(), why };
        if raw.len() > 512 {
            return Err(fail("longer than 512 bytes"));
        }
        let (kind, rest) = raw.split_once(':').ok_or_else(|| fail("no resource type"))?;
        let (name, actions) = rest.rsplit_once(':').ok_or_else(|| fail("no actions"))?;
        let kind = match kind.split_once('(') {
            Some((kind, class)) if class.ends_with(')') && class.len() > 1 => kind,
            Some(_) => return Err(fail("malformed resource class")),
            None => kind,
        };
        if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
            return Err(fail("the resource type must be lowercase letters and digits"));
        }
        let name_ok = |name: &str| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b',' && b != b'"' && b != b'\\')
        };
        if !name_ok(name) {
            return Err(fail("empty or malformed resource name"));
        }
        if kind == "repository" && !repository_name_ok(name) {
            return Err(fail("repository names are lowercase path components separated by /"));
        }
        let actions: Vec<String> = actions.split(',').map(str::to_owned).collect();
        let action_ok = |a: &String| !a.is_empty() && a.bytes().all(|b| b.is_ascii_lowercase() || b == b'*');
        if !actions.iter().all(action_ok) {
            return Err(fail("actions are comma-separated lowercase words"));
        }
        Ok(ResourceScope { resource_type: kind.to_owned(), name: name.to_owned(), actions })
    }

    pub fn is_repository(&self) -> bool {
        self.resource_type == "repository"
    }
}

/// distribution's repository name grammar, path components only (no host part).
fn repository_name_ok(name: &str) -> bool {
    name.len() <= 255
        && name.split('/').all(|component| {
            let bytes = component.as_bytes();
            let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
            !bytes.is_empty()
                && alnum(&bytes[0])
                && alnum(&bytes[bytes.len() - 1])
                && bytes.iter().all(|b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
        })
}

/// The scope a repository action needs, or `None` for actions only the admin gets.
pub fn action_scope(action: &str) -> Option<Scope> {
    match action {
        "pull" => Some(Scope::ReadRegistry),
        "push" => Some(Scope::WriteRegistry),
        _ => None,
    }
}

/// The requested actions `held` grants, in the order asked, each once.
pub fn granted_actions(requested: &[String], held: ScopeSet) -> Vec<String> {
    let mut granted: Vec<String> = Vec::new();
    for action in requested {
        if action_scope(action).is_some_and(|s| held.contains(s)) && !granted.contains(action) {
            granted.push(action.clone());
        }
    }
    granted
}

/// The scopes `granted` uses of `held`: what the auth log records for a cross-project use.
pub fn scopes_used(granted: &[String]) -> ScopeSet {
    granted.iter().filter_map(|a| action_scope(a)).collect()
}

/// The project paths that may own repository `name`, longest first: `grp/app/cache`, then
/// `grp/app`, then `grp`. The longest existing project path wins.
pub fn owner_candidates(name: &str) -> impl Iterator<Item = &str> {
    let cuts = name.match_indices('/').map(|(i, _)| i).rev();
    std::iter::once(name).chain(cuts.map(move |i| &name[..i]))
}

/// What a request without credentials holds on a project: the visibility reads of a public
/// project, nothing on internal (active users only) or private ones.
pub fn anonymous_holds(project: &ProjectFacts) -> ScopeSet {
    match project.visibility {
        Visibility::Public => visibility_reads(project),
        Visibility::Internal | Visibility::Private => ScopeSet::EMPTY,
    }
}

/// A registry token's `exp`: [`REGISTRY_TOKEN_TTL_SECS`] from `now`, never past `job_token_exp`.
pub fn registry_token_expiry(now: i64, job_token_exp: Option<i64>) -> i64 {
    let exp = now + REGISTRY_TOKEN_TTL_SECS;
    job_token_exp.map_or(exp, |job| exp.min(job))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FeatureAccess;

    fn set(names: &str) -> ScopeSet {
        ScopeSet::parse_space_separated(names).unwrap()
    }

    fn actions(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn a_repository_scope_parses_with_a_host_port_and_a_class() {
        let s = ResourceScope::parse("repository:grp/app/cache:pull,push").unwrap();
        assert_eq!((s.resource_type.as_str(), s.name.as_str()), ("repository", "grp/app/cache"));
        assert_eq!(s.actions, actions(&["pull", "push"]));
        let s = ResourceScope::parse("repository(plugin):grp/app:pull").unwrap();
        assert!(s.is_repository());
        let s = ResourceScope::parse("registry:catalog:*").unwrap();
        assert_eq!(
            (s.resource_type.as_str(), s.name.as_str(), s.actions.clone()),
            ("registry", "catalog", actions(&["*"]))
        );
    }

    #[test]
    fn malformed_scopes_are_refused() {
        for bad in [
            "",
            "repository",
            "repository:grp/app",
            "repository::pull",
            "repository:Grp/App:pull",
            "repository:grp//app:pull",
            "repository:grp/app:",
            "repository:grp/app:pull,,push",
            "Repository:grp/app:pull",
            "repository(:grp/app:pull",
            "repository:grp/-app:pull",
        ] {
            assert!(ResourceScope::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn pull_needs_read_registry_and_push_needs_write_registry() {
        let asked = actions(&["pull", "push", "delete", "*"]);
        assert_eq!(granted_actions(&asked, set("read_registry")), actions(&["pull"]));
        assert_eq!(granted_actions(&asked, set("write_registry")), actions(&["push"]));
        assert_eq!(granted_actions(&asked, set("read_registry write_registry")), actions(&["pull", "push"]));
        assert!(granted_actions(&asked, set("read_repository write_repository api")).is_empty());
        assert_eq!(granted_actions(&actions(&["pull", "pull"]), set("read_registry")), actions(&["pull"]));
    }

    #[test]
    fn the_longest_project_path_owns_a_repository() {
        let found: Vec<&str> = owner_candidates("grp/app/cache").collect();
        assert_eq!(found, ["grp/app/cache", "grp/app", "grp"]);
        assert_eq!(owner_candidates("app").collect::<Vec<_>>(), ["app"]);
    }

    #[test]
    fn anonymous_requests_pull_only_from_public_projects() {
        let facts = |visibility, registry| ProjectFacts {
            visibility,
            repository: FeatureAccess::Enabled,
            container_registry: registry,
            package_registry: FeatureAccess::Enabled,
        };
        assert!(anonymous_holds(&facts(Visibility::Public, FeatureAccess::Enabled)).contains(Scope::ReadRegistry));
        assert!(!anonymous_holds(&facts(Visibility::Public, FeatureAccess::Private)).contains(Scope::ReadRegistry));
        assert!(anonymous_holds(&facts(Visibility::Internal, FeatureAccess::Enabled)).is_empty());
        assert!(anonymous_holds(&facts(Visibility::Private, FeatureAccess::Enabled)).is_empty());
        let public = anonymous_holds(&facts(Visibility::Public, FeatureAccess::Enabled));
        assert!(!public.contains(Scope::WriteRegistry));
    }

    #[test]
    fn a_registry_token_never_outlives_the_job_token() {
        assert_eq!(registry_token_expiry(1000, None), 1300);
        assert_eq!(registry_token_expiry(1000, Some(5000)), 1300);
        assert_eq!(registry_token_expiry(1000, Some(1100)), 1100);
    }
}
