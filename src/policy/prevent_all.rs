//! The older formulation of the out-of-scope rule (SPEC §4.3 step 4), kept as a test oracle:
//! start from the user's full rights on T, deny what each access level's membership could grant,
//! one level at a time, then re-open each public feature. [`super::out_of_scope_allowed`] (deny
//! everything except a curated list) must agree with it on every combination.
#![cfg(test)]

use super::{
    decide, out_of_scope_allowed, rights, AllowlistLevel, CrossProjectInput, EntryGrant, Namespace, Principal,
    ProjectFacts,
};
use crate::domain::{AccessLevel, Feature, FeatureAccess, Scope, ScopeSet, Visibility};

/// What a membership at `level` could grant on `target`, read straight off the catalog.
fn membership_grants(level: AccessLevel, target: &ProjectFacts) -> ScopeSet {
    Scope::ALL
        .into_iter()
        .filter(|s| level >= s.info().min_access)
        .filter(|s| s.info().feature.is_none_or(|f| target.feature(f) != FeatureAccess::Disabled))
        .collect()
}

/// Deny each access level, then re-open each public feature. Re-opening undoes a denial: it gives
/// back only what the user held before it (so a blocked user, who held nothing, stays closed).
fn deny_each_level_then_reopen_public_features(target: &ProjectFacts, user: &Principal) -> ScopeSet {
    let held = rights(user, target);
    let mut open = held;
    for level in AccessLevel::ALL {
        open = open.minus(membership_grants(level, target));
    }
    if target.visibility == Visibility::Private {
        return open;
    }
    for feature in Feature::ALL {
        if target.feature(*feature) != FeatureAccess::Enabled {
            continue;
        }
        for scope in Scope::ALL.into_iter().filter(|s| s.is_read() && s.info().feature == Some(*feature)) {
            if held.contains(scope) {
                open.insert(scope);
            }
        }
    }
    if held.contains(Scope::ReadApi) {
        open.insert(Scope::ReadApi);
    }
    open
}

fn cross_project(
    target: ProjectFacts,
    user: Principal,
    entry: Option<EntryGrant>,
    ref_protected: bool,
) -> CrossProjectInput {
    CrossProjectInput {
        source: 1,
        source_path: "grp/a".into(),
        target: 2,
        target_path: "grp/b".into(),
        target_facts: target,
        levels: vec![
            AllowlistLevel {
                owner: Namespace::Project(2),
                owner_path: "grp/b".into(),
                inbound_enabled: None,
                job_token_elevation_allowed: None,
                source_project_entry: entry,
                source_group_entries: vec![],
            },
            AllowlistLevel {
                owner: Namespace::Group(3),
                owner_path: "grp".into(),
                inbound_enabled: None,
                job_token_elevation_allowed: None,
                source_project_entry: None,
                source_group_entries: vec![],
            },
        ],
        enforce_job_token_allowlist: false,
        instance_elevation_allowed: true,
        user,
        username: "dev".into(),
        ref_protected,
        outbound_enabled: false,
        outbound_entries: vec![],
    }
}

#[test]
fn curated_exception_list_equals_deny_each_level_then_reopen_and_in_scope_never_gives_less() {
    let accesses: Vec<Option<AccessLevel>> = std::iter::once(None).chain(AccessLevel::ALL.map(Some)).collect();
    let mut checked = 0usize;
    for visibility in Visibility::ALL {
        for repository in FeatureAccess::ALL {
            for container_registry in FeatureAccess::ALL {
                for package_registry in FeatureAccess::ALL {
                    let target = ProjectFacts {
                        visibility: *visibility,
                        repository: *repository,
                        container_registry: *container_registry,
                        package_registry: *package_registry,
                    };
                    for access in &accesses {
                        for active in [true, false] {
                            let user = Principal { active, access: *access };
                            let out_of_scope = out_of_scope_allowed(&target, &user);
                            let old = deny_each_level_then_reopen_public_features(&target, &user);
                            let unlisted = decide(&cross_project(target, user, None, true));
                            let in_scope: Vec<_> =
                                [EntryGrant::DefaultPermissions, EntryGrant::Scopes(ScopeSet::all())]
                                    .into_iter()
                                    .flat_map(|entry| [true, false].map(|protected| (entry, protected)))
                                    .map(|(entry, protected)| {
                                        decide(&cross_project(target, user, Some(entry), protected))
                                    })
                                    .collect();
                            for scope in Scope::ALL {
                                for is_in_scope in [false, true] {
                                    let row = format!("{target:?} {user:?} {scope} in_scope={is_in_scope}");
                                    if is_in_scope {
                                        for d in &in_scope {
                                            assert!(d.in_scope, "{row}");
                                            assert!(!out_of_scope.contains(scope) || d.allows(scope), "{row}: {d:?}");
                                        }
                                    } else {
                                        assert_eq!(out_of_scope.contains(scope), old.contains(scope), "{row}");
                                        assert!(!unlisted.in_scope, "{row}");
                                        assert_eq!(unlisted.allows(scope), old.contains(scope), "{row}");
                                    }
                                    checked += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, 3 * 3 * 3 * 3 * 6 * 2 * 8 * 2);
}

#[test]
fn the_oracle_denies_membership_rights_and_reopens_only_enabled_public_features() {
    let owner = Principal { active: true, access: Some(AccessLevel::Owner) };
    let public = ProjectFacts {
        visibility: Visibility::Public,
        repository: FeatureAccess::Private,
        container_registry: FeatureAccess::Enabled,
        package_registry: FeatureAccess::Disabled,
    };
    assert_eq!(
        deny_each_level_then_reopen_public_features(&public, &owner).to_space_separated(),
        "read_registry read_api"
    );
    let private = ProjectFacts { visibility: Visibility::Private, ..public };
    assert_eq!(deny_each_level_then_reopen_public_features(&private, &owner), ScopeSet::EMPTY);
}
