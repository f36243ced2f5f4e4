//! SPEC §4.1 (a user's rights on a project) and §4.2 (the own-project grant).

use crate::domain::{AccessLevel, Feature, FeatureAccess, GroupId, Scope, ScopeSet, Visibility};

/// What the rules need to know about a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectFacts {
    pub visibility: Visibility,
    pub repository: FeatureAccess,
    pub container_registry: FeatureAccess,
    pub package_registry: FeatureAccess,
}

impl ProjectFacts {
    pub fn feature(&self, feature: Feature) -> FeatureAccess {
        match feature {
            Feature::Repository => self.repository,
            Feature::ContainerRegistry => self.container_registry,
            Feature::PackageRegistry => self.package_registry,
        }
    }
}

/// What the rules need to know about a user, relative to one project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub active: bool,
    /// Effective access level on the project (see [`effective_access`]); `None` for non-members.
    pub access: Option<AccessLevel>,
}

/// The maximum of the user's membership on the project and on each of its ancestor groups.
pub fn effective_access(levels: impl IntoIterator<Item = AccessLevel>) -> Option<AccessLevel> {
    levels.into_iter().max()
}

/// Read scopes anyone (public) or any active user (internal) holds on a project:
/// reads whose feature is `enabled`, and `read_api`. Private projects grant none.
pub fn visibility_reads(project: &ProjectFacts) -> ScopeSet {
    if project.visibility == Visibility::Private {
        return ScopeSet::EMPTY;
    }
    Scope::ALL
        .into_iter()
        .filter(|s| s.is_read())
        .filter(|s| match s.info().feature {
            Some(feature) => project.feature(feature) == FeatureAccess::Enabled,
            None => *s == Scope::ReadApi,
        })
        .collect()
}

/// The scopes `user` holds on `project` (SPEC §4.1). A blocked user holds nothing.
pub fn rights(user: &Principal, project: &ProjectFacts) -> ScopeSet {
    if !user.active {
        return ScopeSet::EMPTY;
    }
    let membership: ScopeSet = match user.access {
        None => ScopeSet::EMPTY,
        Some(level) => Scope::ALL
            .into_iter()
            .filter(|s| level >= s.info().min_access)
            .filter(|s| s.info().feature.is_none_or(|f| project.feature(f) != FeatureAccess::Disabled))
            .collect(),
    };
    membership.union(visibility_reads(project))
}

/// The level that forbids elevated job token scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElevationBlock {
    Instance,
    Group(GroupId),
}

/// Elevated scopes count only while the instance allows them and no ancestor group of the
/// project has set `job_token_elevation_allowed` to false (SPEC §4.2). `groups` lists each
/// ancestor's explicit setting, in any order.
pub fn elevation_allowed(
    instance: bool,
    groups: impl IntoIterator<Item = (GroupId, Option<bool>)>,
) -> Result<(), ElevationBlock> {
    if !instance {
        return Err(ElevationBlock::Instance);
    }
    match groups.into_iter().find(|(_, setting)| *setting == Some(false)) {
        Some((id, _)) => Err(ElevationBlock::Group(id)),
        None => Ok(()),
    }
}

/// Inputs of the own-project grant (SPEC §4.2).
#[derive(Debug, Clone, Copy)]
pub struct OwnGrant {
    /// The project's `job_token_scopes`; `None` means the default set.
    pub configured: Option<ScopeSet>,
    pub elevation_allowed: bool,
    /// `rights(user, project)`.
    pub rights: ScopeSet,
    pub ref_protected: bool,
    /// The request's `scope` parameter, already parsed; `None` when absent.
    pub requested: Option<ScopeSet>,
}

/// `granted = configured(S) ∩ rights(U, S) ∩ protected_filter(job) ∩ requested`.
pub fn own_project_grant(input: &OwnGrant) -> ScopeSet {
    let mut configured = input.configured.unwrap_or_else(ScopeSet::default_set);
    if !input.elevation_allowed {
        configured = configured.intersect(ScopeSet::default_set());
    }
    let mut granted = configured.intersect(input.rights);
    if !input.ref_protected {
        granted = granted.minus(ScopeSet::protected_only());
    }
    match input.requested {
        Some(requested) => granted.intersect(requested),
        None => granted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        AccessLevel::*,
        FeatureAccess::{Disabled, Enabled},
        Visibility::{Internal, Public},
    };
    const PRIV: Visibility = Visibility::Private;
    const MEMBERS_ONLY: FeatureAccess = FeatureAccess::Private;

    fn project(visibility: Visibility, features: [FeatureAccess; 3]) -> ProjectFacts {
        ProjectFacts {
            visibility,
            repository: features[0],
            container_registry: features[1],
            package_registry: features[2],
        }
    }

    fn member(level: AccessLevel) -> Principal {
        Principal { active: true, access: Some(level) }
    }

    const NON_MEMBER: Principal = Principal { active: true, access: None };

    fn set(names: &str) -> ScopeSet {
        ScopeSet::parse_space_separated(names).unwrap()
    }

    #[test]
    fn effective_access_is_the_highest_membership_on_project_or_ancestors() {
        assert_eq!(effective_access([Reporter, Maintainer, Guest]), Some(Maintainer));
        assert_eq!(effective_access([]), None);
    }

    #[test]
    fn member_rights_by_access_level_on_a_private_project() {
        let p = project(PRIV, [Enabled; 3]);
        let table = [
            (Guest, "read_api"),
            (Reporter, "read_repository read_registry read_package_registry read_api"),
            (Developer, "read_repository write_repository read_registry write_registry read_package_registry write_package_registry read_api api"),
            (Maintainer, "read_repository write_repository read_registry write_registry read_package_registry write_package_registry read_api api"),
            (Owner, "read_repository write_repository read_registry write_registry read_package_registry write_package_registry read_api api"),
        ];
        for (level, expected) in table {
            assert_eq!(rights(&member(level), &p), set(expected), "{level:?}");
        }
        assert_eq!(rights(&NON_MEMBER, &p), ScopeSet::EMPTY);
    }

    #[test]
    fn disabled_feature_removes_its_scopes_even_for_owners() {
        let p = project(PRIV, [Disabled, Enabled, Enabled]);
        let r = rights(&member(Owner), &p);
        assert!(!r.contains(Scope::ReadRepository));
        assert!(!r.contains(Scope::WriteRepository));
        assert!(r.contains(Scope::ReadRegistry));
        assert!(r.contains(Scope::Api));
    }

    #[test]
    fn private_feature_is_for_members_only() {
        let p = project(Public, [MEMBERS_ONLY, Enabled, Enabled]);
        assert!(!rights(&NON_MEMBER, &p).contains(Scope::ReadRepository));
        assert!(rights(&member(Reporter), &p).contains(Scope::ReadRepository));
        assert!(!rights(&member(Guest), &p).contains(Scope::ReadRepository));
    }

    #[test]
    fn visibility_reads_for_non_members() {
        let table = [
            (PRIV, [Enabled; 3], ""),
            (Internal, [Enabled; 3], "read_repository read_registry read_package_registry read_api"),
            (Public, [Enabled; 3], "read_repository read_registry read_package_registry read_api"),
            (Public, [MEMBERS_ONLY, Disabled, Enabled], "read_package_registry read_api"),
            (Internal, [Disabled, MEMBERS_ONLY, Disabled], "read_api"),
        ];
        for (visibility, features, expected) in table {
            let p = project(visibility, features);
            assert_eq!(rights(&NON_MEMBER, &p), set(expected), "{visibility:?} {features:?}");
            assert_eq!(visibility_reads(&p), set(expected));
        }
    }

    #[test]
    fn guest_on_public_project_gets_visibility_reads_on_top_of_membership() {
        let p = project(Public, [Enabled; 3]);
        assert_eq!(rights(&member(Guest), &p), set("read_repository read_registry read_package_registry read_api"));
    }

    #[test]
    fn blocked_user_holds_nothing_even_as_owner_of_a_public_project() {
        let p = project(Public, [Enabled; 3]);
        let blocked = Principal { active: false, access: Some(Owner) };
        assert_eq!(rights(&blocked, &p), ScopeSet::EMPTY);
    }

    #[test]
    fn elevation_is_blocked_by_instance_or_any_ancestor_group() {
        assert_eq!(elevation_allowed(true, [(1, None), (2, Some(true))]), Ok(()));
        assert_eq!(elevation_allowed(false, [(1, None)]), Err(ElevationBlock::Instance));
        assert_eq!(elevation_allowed(true, [(1, Some(true)), (2, Some(false))]), Err(ElevationBlock::Group(2)));
        assert_eq!(elevation_allowed(true, []), Ok(()));
    }

    fn grant(
        configured: Option<&str>,
        elevation: bool,
        rights: &str,
        protected: bool,
        requested: Option<&str>,
    ) -> String {
        own_project_grant(&OwnGrant {
            configured: configured.map(set),
            elevation_allowed: elevation,
            rights: set(rights),
            ref_protected: protected,
            requested: requested.map(set),
        })
        .to_space_separated()
    }

    const DEV_RIGHTS: &str = "read_repository write_repository read_registry write_registry read_package_registry write_package_registry read_api api";
    const REPORTER_RIGHTS: &str = "read_repository read_registry read_package_registry read_api";

    #[test]
    fn own_project_grant_truth_table() {
        let rows: &[(Option<&str>, bool, &str, bool, Option<&str>, &str)] = &[
            // unconfigured project, developer, protected ref: the default set
            (
                None,
                true,
                DEV_RIGHTS,
                true,
                None,
                "read_repository read_registry write_registry read_package_registry write_package_registry",
            ),
            // unprotected ref drops protected-only writes but keeps write_registry
            (None, true, DEV_RIGHTS, false, None, "read_repository read_registry write_registry read_package_registry"),
            // reporter cannot write whatever the project allows
            (None, true, REPORTER_RIGHTS, true, None, "read_repository read_registry read_package_registry"),
            // elevated scopes configured and allowed
            (
                Some("read_repository write_repository api"),
                true,
                DEV_RIGHTS,
                true,
                None,
                "read_repository write_repository api",
            ),
            // elevated scopes clipped when elevation is off
            (Some("read_repository write_repository api"), false, DEV_RIGHTS, true, None, "read_repository"),
            // elevated scopes on an unprotected ref: write_repository and api are protected-only
            (
                Some("read_repository write_repository read_api api"),
                true,
                DEV_RIGHTS,
                false,
                None,
                "read_repository read_api",
            ),
            // requested narrows, unrequested or ungranted names are dropped
            (None, true, DEV_RIGHTS, true, Some("read_repository api"), "read_repository"),
            // explicit empty configuration grants nothing
            (Some(""), true, DEV_RIGHTS, true, None, ""),
            // no rights: nothing
            (None, true, "", true, None, ""),
        ];
        for (i, (configured, elevation, rights, protected, requested, expected)) in rows.iter().enumerate() {
            assert_eq!(grant(*configured, *elevation, rights, *protected, *requested), *expected, "row {i}");
        }
    }
}
