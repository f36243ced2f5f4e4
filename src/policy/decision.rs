//! SPEC §4.3: the cross-project decision. A job token from source project S is used against a
//! target project T ≠ S: which scopes does it carry there, which rule decided, and why.
//!
//! [`CrossProjectInput`] is shaped so the store fills it with indexed lookups bounded by the
//! depth of the hierarchy, never a scan of an allowlist: per level of T (T, then its groups up to
//! the root) the level's settings and the entries whose source is S or one of S's groups
//! (`owner = level AND source IN (S, S's traversal ids)`), and S's outbound entries whose target is
//! T or one of T's groups.
//!
//! Same project (S = T) is not decided here: the caller uses the own-project grant of SPEC §4.2
//! ([`super::own_project_grant`]). Called with S = T, [`decide`] allows nothing under
//! [`Rule::SameProject`], so a caller that forgets the distinction fails closed.

use crate::domain::{FeatureAccess, GroupId, ProjectId, Scope, ScopeSet, Visibility};

use super::{elevation_allowed, inbound_in_force, rights, visibility_reads, ElevationBlock, Principal, ProjectFacts};

/// A project or a group: the owner of an allowlist level, or what an outbound entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Namespace {
    Project(ProjectId),
    Group(GroupId),
}

/// What an allowlist entry admits its source with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryGrant {
    /// The scopes the entry lists. Elevated ones count only while elevation is allowed for T.
    Scopes(ScopeSet),
    /// `default_permissions: true`: the default set of SPEC §3, which holds no elevated scope.
    DefaultPermissions,
}

impl EntryGrant {
    /// The scopes the entry names, before clipping and before the user's rights.
    pub fn scopes(self) -> ScopeSet {
        match self {
            EntryGrant::Scopes(scopes) => scopes,
            EntryGrant::DefaultPermissions => ScopeSet::default_set(),
        }
    }
}

/// An allowlist entry whose source is a group containing S (at any depth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSourceEntry {
    pub group: GroupId,
    /// The source group's position in S's traversal ids (root = 0). Among the group entries of
    /// one level the deepest wins; all are ancestors of S, so depths are distinct.
    pub depth: usize,
    /// The source group's full path, for reasons.
    pub group_path: String,
    pub grant: EntryGrant,
}

/// One level of T's hierarchy: T itself, or one of its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowlistLevel {
    pub owner: Namespace,
    /// The owner's full path, for reasons.
    pub owner_path: String,
    /// The explicit `inbound_enabled` of the owner; `None` inherits.
    pub inbound_enabled: Option<bool>,
    /// The explicit `job_token_elevation_allowed` of a group owner; ignored on a project level.
    pub job_token_elevation_allowed: Option<bool>,
    /// The owner's entry whose source is the project S itself, if any.
    pub source_project_entry: Option<EntryGrant>,
    /// The owner's entries whose source is a group containing S, in any order.
    pub source_group_entries: Vec<GroupSourceEntry>,
}

/// One of S's outbound entries that covers T: it names T, or a group containing T.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundEntry {
    pub target: Namespace,
    /// The named project's or group's full path, for reasons.
    pub target_path: String,
    /// The entry's scopes (a `default_permissions` entry is passed as [`ScopeSet::default_set`]).
    pub scopes: ScopeSet,
}

/// Everything the cross-project decision reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossProjectInput {
    /// S: the project the job token comes from.
    pub source: ProjectId,
    pub source_path: String,
    /// T: the project the token is used against.
    pub target: ProjectId,
    pub target_path: String,
    pub target_facts: ProjectFacts,
    /// T's levels, nearest first: T itself, then its namespace group, then its parent, up to the root.
    pub levels: Vec<AllowlistLevel>,
    /// Instance `enforce_job_token_allowlist`.
    pub enforce_job_token_allowlist: bool,
    /// Instance `job_token_elevation_allowed`.
    pub instance_elevation_allowed: bool,
    /// The user the job runs as, relative to T (effective access level on T).
    pub user: Principal,
    /// The user's username, for reasons.
    pub username: String,
    /// Whether the job's pipeline ran on a protected ref.
    pub ref_protected: bool,
    /// S's `outbound_enabled`.
    pub outbound_enabled: bool,
    /// S's outbound entries that cover T; the store passes only those.
    pub outbound_entries: Vec<OutboundEntry>,
}

/// The rule that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// S = T: the own-project grant (SPEC §4.2) applies; this decision allows nothing.
    SameProject,
    /// The user is blocked: nothing, not even visibility reads.
    BlockedUser,
    /// T's inbound allowlist is not in force: S is in scope with default permissions.
    InboundDisabled,
    /// The entry whose source is S itself, on the level at this index (0 = T).
    ProjectEntry { level: usize },
    /// The entry whose source is this group containing S, on the level at this index (0 = T).
    GroupEntry { level: usize, group: GroupId },
    /// No entry admits S and T is public or internal: only the visibility reads.
    NotAllowlisted,
    /// No entry admits S and T is private: nothing.
    PrivateNotAllowlisted,
    /// S has its outbound allowlist on and no outbound entry covers T: only T's visibility reads
    /// (nothing when T is private), whatever T's allowlist says.
    OutboundNotCovered,
}

/// The answer for one (S, T) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The scopes the job token carries on T.
    pub allowed: ScopeSet,
    /// Whether S passed T's inbound allowlist: an entry matched, or the allowlist is not in force.
    pub in_scope: bool,
    /// What S would carry on T with no allowlist entry at all: T's visibility reads (SPEC §4.3
    /// step 4). A use of a scope in here needed no entry, so autopopulate never creates one for it.
    pub floor: ScopeSet,
    pub rule: Rule,
    /// Names both projects and the rule; a denial reads `job token from S is not allowed to access T: …`.
    pub reason: String,
}

impl Decision {
    /// Whether the token may use `scope` on T.
    pub fn allows(&self, scope: Scope) -> bool {
        self.allowed.contains(scope)
    }
}

/// Decides which scopes a job token from S carries on T (SPEC §4.3).
pub fn decide(input: &CrossProjectInput) -> Decision {
    decision(input, None)
}

/// The decision for S on T with the reason told for one `scope` (what the decision endpoint answers).
pub fn decide_for(input: &CrossProjectInput, scope: Scope) -> Decision {
    decision(input, Some(scope))
}

fn decision(input: &CrossProjectInput, scope: Option<Scope>) -> Decision {
    let trace = evaluate(input);
    let floor = match input.source == input.target {
        true => ScopeSet::EMPTY,
        false => out_of_scope_allowed(&input.target_facts, &input.user),
    };
    let reason = reason(input, &trace, scope);
    Decision { allowed: trace.allowed, in_scope: trace.in_scope, floor, rule: trace.rule, reason }
}

/// Whether a job token from S may use `scope` on T, with the reason for that one scope.
pub fn decide_scope(input: &CrossProjectInput, scope: Scope) -> (bool, String) {
    let decision = decide_for(input, scope);
    (decision.allows(scope), decision.reason)
}

/// The reads a job token carries on T when S is out of scope (SPEC §4.3 step 4), and the floor of
/// an in-scope decision: `prevent_all`, then re-open only the curated exception list, each
/// exception only where T's visibility opens it to a non-member. Membership is never consulted,
/// so membership-derived rights cannot pass. Private T and blocked users: nothing.
pub fn out_of_scope_allowed(target: &ProjectFacts, user: &Principal) -> ScopeSet {
    if !user.active {
        return ScopeSet::EMPTY;
    }
    let exceptions: ScopeSet = OUT_OF_SCOPE_EXCEPTIONS.into_iter().collect();
    visibility_reads(target).intersect(exceptions)
}

/// The only scopes an out-of-scope job token can ever carry. A read scope added to the catalog
/// stays closed to out-of-scope tokens until it is added here.
const OUT_OF_SCOPE_EXCEPTIONS: [Scope; 4] =
    [Scope::ReadRepository, Scope::ReadRegistry, Scope::ReadPackageRegistry, Scope::ReadApi];

/// The allowlist entry that admitted S.
#[derive(Debug, Clone, Copy)]
struct Admission<'a> {
    level: usize,
    owner_path: &'a str,
    /// `None`: the entry for S itself.
    group: Option<&'a GroupSourceEntry>,
    grant: EntryGrant,
}

/// The filters of an in-scope decision, in the order they are applied and explained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Entry,
    Elevation,
    Feature,
    Rights,
    Protected,
    Outbound,
}

/// How [`evaluate`] reached its answer; [`reason`] renders it.
struct Trace<'a> {
    rule: Rule,
    in_scope: bool,
    admission: Option<Admission<'a>>,
    elevation: Result<(), ElevationBlock>,
    /// Each stage keeps the scopes of its set; all pass-through outside an in-scope decision.
    stages: [(Stage, ScopeSet); 6],
    /// What passed every stage.
    via_entry: ScopeSet,
    allowed: ScopeSet,
}

fn group_levels(input: &CrossProjectInput) -> impl Iterator<Item = (GroupId, &AllowlistLevel)> {
    input.levels.iter().filter_map(|level| match level.owner {
        Namespace::Group(id) => Some((id, level)),
        Namespace::Project(_) => None,
    })
}

/// Step 2: the nearest level with a match decides; at a level the entry for S beats group
/// entries, and among group entries the deepest source group wins.
fn matching_entry(levels: &[AllowlistLevel]) -> Option<Admission<'_>> {
    levels.iter().enumerate().find_map(|(index, level)| {
        let (group, grant) = match level.source_project_entry {
            Some(grant) => (None, grant),
            None => {
                let entry = level.source_group_entries.iter().max_by_key(|e| e.depth)?;
                (Some(entry), entry.grant)
            }
        };
        Some(Admission { level: index, owner_path: &level.owner_path, group, grant })
    })
}

fn evaluate(input: &CrossProjectInput) -> Trace<'_> {
    let target = &input.target_facts;
    let all = ScopeSet::all();
    let elevation = elevation_allowed(
        input.instance_elevation_allowed,
        group_levels(input).map(|(id, level)| (id, level.job_token_elevation_allowed)),
    );
    let mut trace = Trace {
        rule: Rule::SameProject,
        in_scope: false,
        admission: None,
        elevation,
        stages: [
            (Stage::Entry, all),
            (Stage::Elevation, all),
            (Stage::Feature, all),
            (Stage::Rights, all),
            (Stage::Protected, all),
            (Stage::Outbound, all),
        ],
        via_entry: ScopeSet::EMPTY,
        allowed: ScopeSet::EMPTY,
    };
    if input.source == input.target {
        return trace;
    }

    let project_setting =
        input.levels.iter().find(|l| matches!(l.owner, Namespace::Project(_))).and_then(|l| l.inbound_enabled);
    let group_settings: Vec<Option<bool>> = group_levels(input).map(|(_, level)| level.inbound_enabled).collect();
    let in_force = inbound_in_force(input.enforce_job_token_allowlist, project_setting, &group_settings);
    // Entries are dormant while the allowlist is off: listing S never gives less than not listing it.
    trace.admission = if in_force { matching_entry(&input.levels) } else { None };
    trace.in_scope = !in_force || trace.admission.is_some();

    if !input.user.active {
        trace.rule = Rule::BlockedUser;
        return trace;
    }
    if !trace.in_scope {
        trace.rule = match target.visibility {
            Visibility::Private => Rule::PrivateNotAllowlisted,
            Visibility::Internal | Visibility::Public => Rule::NotAllowlisted,
        };
        trace.allowed = out_of_scope_allowed(target, &input.user);
        return trace;
    }

    // Least privilege: with S's outbound allowlist on, a target no outbound entry covers gets
    // its visibility reads at most, whatever its visibility (no writes to public projects).
    if input.outbound_enabled && input.outbound_entries.is_empty() {
        trace.rule = Rule::OutboundNotCovered;
        trace.allowed = out_of_scope_allowed(target, &input.user);
        return trace;
    }
    trace.rule = match trace.admission {
        None => Rule::InboundDisabled,
        Some(Admission { level, group: None, .. }) => Rule::ProjectEntry { level },
        Some(Admission { level, group: Some(entry), .. }) => Rule::GroupEntry { level, group: entry.group },
    };
    let outbound = match input.outbound_enabled {
        true => input.outbound_entries.iter().fold(ScopeSet::EMPTY, |acc, e| acc.union(e.scopes)),
        false => all,
    };
    trace.stages = [
        (Stage::Entry, trace.admission.map_or_else(ScopeSet::default_set, |a| a.grant.scopes())),
        (Stage::Elevation, if trace.elevation.is_ok() { all } else { ScopeSet::default_set() }),
        (
            Stage::Feature,
            Scope::ALL
                .into_iter()
                .filter(|s| s.info().feature.is_none_or(|f| target.feature(f) != FeatureAccess::Disabled))
                .collect(),
        ),
        (Stage::Rights, rights(&input.user, target)),
        (Stage::Protected, if input.ref_protected { all } else { all.minus(ScopeSet::protected_only()) }),
        (Stage::Outbound, outbound),
    ];
    trace.via_entry = trace.stages.iter().fold(all, |acc, (_, keep)| acc.intersect(*keep));
    // Being in scope never gives less than being out of scope.
    trace.allowed = out_of_scope_allowed(target, &input.user).union(trace.via_entry);
    trace
}

/// Renders the reason for the whole decision (`scope` = `None`) or for one scope.
fn reason(input: &CrossProjectInput, trace: &Trace<'_>, scope: Option<Scope>) -> String {
    let (source, target, user) = (&input.source_path, &input.target_path, &input.username);
    let deny = |why: String| format!("job token from {source} is not allowed to access {target}: {why}");
    let names = |set: ScopeSet| set.names().join(", ");
    let candidates = scope.map_or_else(ScopeSet::all, |s| ScopeSet::EMPTY.with(s));
    let passed = candidates.intersect(trace.allowed);
    let opened_to = match input.target_facts.visibility {
        Visibility::Public => "anyone",
        Visibility::Internal | Visibility::Private => "any signed-in user",
    };
    let by_visibility = |set: ScopeSet| {
        format!("allowed: {target} is {}, which opens {} to {opened_to}", input.target_facts.visibility, names(set))
    };
    let entry_name = |a: &Admission<'_>| {
        let for_source = a.group.map_or(source.as_str(), |g| g.group_path.as_str());
        format!("the allowlist entry for {for_source} (on {})", a.owner_path)
    };

    match trace.rule {
        Rule::SameProject => {
            format!("{source} is the job's own project: the own-project grant applies, not {target}'s allowlist")
        }
        Rule::BlockedUser => deny(format!("the user {user} is blocked")),
        Rule::PrivateNotAllowlisted => deny(format!("{target} is private and {source} is not on its allowlist")),
        Rule::OutboundNotCovered if !passed.is_empty() => {
            format!("{}; {source}'s outbound allowlist does not include {target}", by_visibility(passed))
        }
        Rule::OutboundNotCovered => deny(format!("{source}'s outbound allowlist does not include {target}")),
        Rule::NotAllowlisted if !passed.is_empty() => {
            format!("{}; {source} is not on its job token allowlist", by_visibility(passed))
        }
        Rule::NotAllowlisted => deny(format!("{source} is not on {target}'s job token allowlist")),
        Rule::InboundDisabled | Rule::ProjectEntry { .. } | Rule::GroupEntry { .. } => {
            if !passed.intersect(trace.via_entry).is_empty() {
                return match trace.admission {
                    None => format!("allowed: {target}'s inbound allowlist is disabled"),
                    Some(Admission { owner_path, group: None, .. }) => {
                        format!("allowed by {owner_path}'s allowlist entry for project {source}")
                    }
                    Some(Admission { owner_path, group: Some(g), .. }) => {
                        format!("allowed by {owner_path}'s allowlist entry for group {}", g.group_path)
                    }
                };
            }
            if !passed.is_empty() {
                return by_visibility(passed);
            }
            let mut left = candidates;
            for (stage, keep) in trace.stages {
                let kept = left.intersect(keep);
                if !kept.is_empty() {
                    left = kept;
                    continue;
                }
                let what = names(left);
                return deny(match (stage, &trace.admission) {
                    (Stage::Entry, None) => format!(
                        "{target}'s inbound allowlist is disabled, which admits default permissions only; \
                         they do not include {what}"
                    ),
                    (Stage::Entry, Some(a)) if keep.is_empty() => format!("{} lists no scopes", entry_name(a)),
                    (Stage::Entry, Some(a)) if a.grant == EntryGrant::DefaultPermissions => {
                        format!("{} grants default permissions, which do not include {what}", entry_name(a))
                    }
                    (Stage::Entry, Some(a)) => format!("{} does not include {what}", entry_name(a)),
                    (Stage::Elevation, _) => {
                        let by = match trace.elevation {
                            Err(ElevationBlock::Group(id)) => group_levels(input)
                                .find(|(group, _)| *group == id)
                                .map_or_else(|| format!("group {id}"), |(_, l)| format!("group {}", l.owner_path)),
                            Err(ElevationBlock::Instance) | Ok(()) => "the instance".to_owned(),
                        };
                        format!("{what} is elevated and elevated scopes are turned off by {by}")
                    }
                    (Stage::Feature, _) => {
                        let mut features: Vec<&str> = Vec::new();
                        for feature in left.iter().filter_map(|s| s.info().feature).map(|f| f.as_str()) {
                            if !features.contains(&feature) {
                                features.push(feature);
                            }
                        }
                        format!("{target} has its {} feature disabled", features.join(" and "))
                    }
                    (Stage::Rights, _) => format!("the user {user} cannot {what} on {target}"),
                    (Stage::Protected, _) => format!("{what} needs a protected ref"),
                    (Stage::Outbound, _) => {
                        format!("{source}'s outbound allowlist does not include {what} for {target}")
                    }
                });
            }
            deny(format!("nothing of {} passed", names(candidates)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccessLevel, AccessLevel::*};

    const S: ProjectId = 10;
    const T: ProjectId = 20;
    const GRP: GroupId = 1;
    const GRP_SUB: GroupId = 2;
    const SRC: GroupId = 5;
    const SRC_TEAM: GroupId = 6;

    fn set(names: &str) -> ScopeSet {
        ScopeSet::parse_space_separated(names).unwrap()
    }

    fn scopes(names: &str) -> EntryGrant {
        EntryGrant::Scopes(set(names))
    }

    const DEFAULTS: &str = "read_repository read_registry write_registry read_package_registry write_package_registry";
    const VISIBILITY_READS: &str = "read_repository read_registry read_package_registry read_api";

    fn level(owner: Namespace, path: &str) -> AllowlistLevel {
        AllowlistLevel {
            owner,
            owner_path: path.into(),
            inbound_enabled: None,
            job_token_elevation_allowed: None,
            source_project_entry: None,
            source_group_entries: vec![],
        }
    }

    /// S = src/team/a (groups src, src/team); T = grp/sub/b (levels grp/sub/b, grp/sub, grp), private,
    /// every feature enabled; the user `dev` is an active Developer on T; protected ref; nothing configured.
    fn input() -> CrossProjectInput {
        CrossProjectInput {
            source: S,
            source_path: "src/team/a".into(),
            target: T,
            target_path: "grp/sub/b".into(),
            target_facts: ProjectFacts {
                visibility: Visibility::Private,
                repository: FeatureAccess::Enabled,
                container_registry: FeatureAccess::Enabled,
                package_registry: FeatureAccess::Enabled,
            },
            levels: vec![
                level(Namespace::Project(T), "grp/sub/b"),
                level(Namespace::Group(GRP_SUB), "grp/sub"),
                level(Namespace::Group(GRP), "grp"),
            ],
            enforce_job_token_allowlist: false,
            instance_elevation_allowed: true,
            user: Principal { active: true, access: Some(Developer) },
            username: "dev".into(),
            ref_protected: true,
            outbound_enabled: false,
            outbound_entries: vec![],
        }
    }

    fn group_entry(group: GroupId, grant: EntryGrant) -> GroupSourceEntry {
        let (depth, group_path) = match group {
            SRC => (0, "src"),
            SRC_TEAM => (1, "src/team"),
            _ => unreachable!("not a group of S"),
        };
        GroupSourceEntry { group, depth, group_path: group_path.into(), grant }
    }

    fn with_access(mut input: CrossProjectInput, access: Option<AccessLevel>) -> CrossProjectInput {
        input.user.access = access;
        input
    }

    fn with_visibility(mut input: CrossProjectInput, visibility: Visibility) -> CrossProjectInput {
        input.target_facts.visibility = visibility;
        input
    }

    fn with_project_entry(mut input: CrossProjectInput, at: usize, grant: EntryGrant) -> CrossProjectInput {
        input.levels[at].source_project_entry = Some(grant);
        input
    }

    fn with_group_entry(
        mut input: CrossProjectInput,
        at: usize,
        group: GroupId,
        grant: EntryGrant,
    ) -> CrossProjectInput {
        input.levels[at].source_group_entries.push(group_entry(group, grant));
        input
    }

    fn with_inbound(mut input: CrossProjectInput, settings: [Option<bool>; 3]) -> CrossProjectInput {
        for (level, setting) in input.levels.iter_mut().zip(settings) {
            level.inbound_enabled = setting;
        }
        input
    }

    fn allowed(input: &CrossProjectInput) -> String {
        decide(input).allowed.to_space_separated()
    }

    #[test]
    fn instance_enforcement_overrides_an_explicit_false() {
        let off = with_inbound(input(), [Some(false), None, None]);
        assert_eq!(decide(&off).rule, Rule::InboundDisabled);

        let mut enforced = off;
        enforced.enforce_job_token_allowlist = true;
        let d = decide(&enforced);
        assert_eq!((d.rule, d.in_scope, d.allowed), (Rule::PrivateNotAllowlisted, false, ScopeSet::EMPTY));
    }

    #[test]
    fn project_false_beats_group_true() {
        let d = decide(&with_inbound(input(), [Some(false), Some(true), Some(true)]));
        assert_eq!((d.rule, d.in_scope), (Rule::InboundDisabled, true));
        assert_eq!(d.allowed.to_space_separated(), DEFAULTS);
    }

    #[test]
    fn nearest_group_setting_wins() {
        let off_near = with_inbound(input(), [None, Some(false), Some(true)]);
        assert_eq!(decide(&off_near).rule, Rule::InboundDisabled);
        let on_near = with_inbound(input(), [None, Some(true), Some(false)]);
        assert_eq!(decide(&on_near).rule, Rule::PrivateNotAllowlisted);
    }

    #[test]
    fn unset_everywhere_means_the_allowlist_is_in_force() {
        let d = decide(&input());
        assert_eq!((d.rule, d.in_scope, d.allowed), (Rule::PrivateNotAllowlisted, false, ScopeSet::EMPTY));
    }

    #[test]
    fn entries_are_dormant_while_the_allowlist_is_off() {
        let listed = with_project_entry(with_inbound(input(), [Some(false), None, None]), 0, scopes("read_api"));
        let d = decide(&listed);
        assert_eq!(d.rule, Rule::InboundDisabled);
        assert_eq!(d.allowed.to_space_separated(), DEFAULTS);
    }

    #[test]
    fn project_level_entry_beats_a_broader_ancestor_entry() {
        let i = with_group_entry(with_project_entry(input(), 0, scopes("read_repository")), 2, SRC, scopes(DEFAULTS));
        let d = decide(&i);
        assert_eq!(d.rule, Rule::ProjectEntry { level: 0 });
        assert_eq!(d.allowed.to_space_separated(), "read_repository");
    }

    #[test]
    fn at_one_level_the_entry_for_s_beats_a_group_entry() {
        let i =
            with_project_entry(with_group_entry(input(), 1, SRC_TEAM, scopes(DEFAULTS)), 1, scopes("read_registry"));
        let d = decide(&i);
        assert_eq!(d.rule, Rule::ProjectEntry { level: 1 });
        assert_eq!(d.allowed.to_space_separated(), "read_registry");
    }

    #[test]
    fn deepest_source_group_beats_a_shallower_one_at_the_same_level() {
        for (first, second) in [(SRC, SRC_TEAM), (SRC_TEAM, SRC)] {
            let grant =
                |g| if g == SRC_TEAM { scopes("read_package_registry") } else { EntryGrant::DefaultPermissions };
            let i = with_group_entry(with_group_entry(input(), 0, first, grant(first)), 0, second, grant(second));
            let d = decide(&i);
            assert_eq!(d.rule, Rule::GroupEntry { level: 0, group: SRC_TEAM });
            assert_eq!(d.allowed.to_space_separated(), "read_package_registry");
        }
    }

    #[test]
    fn first_level_with_a_match_decides_even_with_fewer_scopes() {
        let i = with_project_entry(with_group_entry(input(), 0, SRC, scopes("read_registry")), 1, scopes(DEFAULTS));
        let d = decide(&i);
        assert_eq!(d.rule, Rule::GroupEntry { level: 0, group: SRC });
        assert_eq!(d.allowed.to_space_separated(), "read_registry");
    }

    #[test]
    fn out_of_scope_private_target_gives_nothing_even_to_owners() {
        let d = decide(&with_access(input(), Some(Owner)));
        assert_eq!((d.rule, d.allowed), (Rule::PrivateNotAllowlisted, ScopeSet::EMPTY));
        assert_eq!(
            d.reason,
            "job token from src/team/a is not allowed to access grp/sub/b: grp/sub/b is private and src/team/a is not on its allowlist"
        );
    }

    #[test]
    fn out_of_scope_public_or_internal_target_gives_visibility_reads_only_even_to_owners() {
        for visibility in [Visibility::Public, Visibility::Internal] {
            for access in [None, Some(Guest), Some(Owner)] {
                let d = decide(&with_access(with_visibility(input(), visibility), access));
                assert_eq!((d.rule, d.in_scope), (Rule::NotAllowlisted, false));
                assert_eq!(d.allowed.to_space_separated(), VISIBILITY_READS, "{visibility} {access:?}");
            }
        }
        let (ok, why) =
            decide_scope(&with_access(with_visibility(input(), Visibility::Public), Some(Owner)), Scope::Api);
        assert!(!ok);
        assert_eq!(why, "job token from src/team/a is not allowed to access grp/sub/b: src/team/a is not on grp/sub/b's job token allowlist");
    }

    #[test]
    fn allowlist_off_gives_default_permissions_within_the_users_rights() {
        let off = with_inbound(input(), [Some(false), None, None]);
        let table = [
            (Some(Owner), DEFAULTS),
            (Some(Developer), DEFAULTS),
            (Some(Reporter), "read_repository read_registry read_package_registry"),
            (Some(Guest), ""),
            (None, ""),
        ];
        for (access, expected) in table {
            assert_eq!(allowed(&with_access(off.clone(), access)), expected, "{access:?}");
        }
        assert_eq!(decide(&off).reason, "allowed: grp/sub/b's inbound allowlist is disabled");
    }

    const ELEVATED_ENTRY: &str = "read_repository write_repository read_api api";

    #[test]
    fn elevated_scopes_in_an_entry_count_while_elevation_is_allowed() {
        let i = with_project_entry(input(), 0, scopes(ELEVATED_ENTRY));
        assert_eq!(allowed(&i), ELEVATED_ENTRY);
    }

    #[test]
    fn elevated_scopes_in_an_entry_are_clipped_when_the_instance_turns_elevation_off() {
        let mut i = with_project_entry(input(), 0, scopes(ELEVATED_ENTRY));
        i.instance_elevation_allowed = false;
        assert_eq!(allowed(&i), "read_repository");
        assert_eq!(
            decide_scope(&i, Scope::Api).1,
            "job token from src/team/a is not allowed to access grp/sub/b: api is elevated and elevated scopes are turned off by the instance"
        );
    }

    #[test]
    fn elevated_scopes_in_an_entry_are_clipped_when_any_group_level_turns_elevation_off() {
        let mut i = with_project_entry(input(), 0, scopes(ELEVATED_ENTRY));
        i.levels[1].job_token_elevation_allowed = Some(true);
        i.levels[2].job_token_elevation_allowed = Some(false);
        assert_eq!(allowed(&i), "read_repository");
        assert_eq!(
            decide_scope(&i, Scope::WriteRepository).1,
            "job token from src/team/a is not allowed to access grp/sub/b: write_repository is elevated and elevated scopes are turned off by group grp"
        );
    }

    #[test]
    fn a_project_levels_elevation_field_is_ignored() {
        let mut i = with_project_entry(input(), 0, scopes(ELEVATED_ENTRY));
        i.levels[0].job_token_elevation_allowed = Some(false);
        assert_eq!(allowed(&i), ELEVATED_ENTRY);
    }

    #[test]
    fn default_permissions_never_yield_elevated_scopes_even_for_owners() {
        let i = with_access(with_group_entry(input(), 1, SRC, EntryGrant::DefaultPermissions), Some(Owner));
        let d = decide(&i);
        assert_eq!(d.allowed.to_space_separated(), DEFAULTS);
        for scope in [Scope::ReadApi, Scope::Api, Scope::WriteRepository] {
            assert!(!d.allows(scope), "{scope}");
        }
        assert_eq!(
            decide_scope(&i, Scope::ReadApi).1,
            "job token from src/team/a is not allowed to access grp/sub/b: the allowlist entry for src (on grp/sub) grants default permissions, which do not include read_api"
        );
    }

    #[test]
    fn unprotected_ref_drops_protected_only_scopes_but_keeps_write_registry() {
        let mut i = with_project_entry(input(), 0, EntryGrant::DefaultPermissions);
        i.ref_protected = false;
        assert_eq!(allowed(&i), "read_repository read_registry write_registry read_package_registry");
        assert_eq!(
            decide_scope(&i, Scope::WritePackageRegistry).1,
            "job token from src/team/a is not allowed to access grp/sub/b: write_package_registry needs a protected ref"
        );
    }

    #[test]
    fn users_rights_cap_the_entry() {
        let i = with_access(with_project_entry(input(), 0, scopes(DEFAULTS)), Some(Reporter));
        assert_eq!(allowed(&i), "read_repository read_registry read_package_registry");
        assert_eq!(
            decide_scope(&i, Scope::WritePackageRegistry).1,
            "job token from src/team/a is not allowed to access grp/sub/b: the user dev cannot write_package_registry on grp/sub/b"
        );
        assert_eq!(allowed(&with_access(i, None)), "");
    }

    #[test]
    fn outbound_limit_applies_to_private_targets() {
        let mut i = with_project_entry(input(), 0, EntryGrant::DefaultPermissions);
        i.outbound_enabled = true;
        let d = decide(&i);
        assert_eq!((d.rule, d.in_scope, d.allowed), (Rule::OutboundNotCovered, true, ScopeSet::EMPTY));
        assert_eq!(
            d.reason,
            "job token from src/team/a is not allowed to access grp/sub/b: src/team/a's outbound allowlist does not include grp/sub/b"
        );

        i.outbound_entries = vec![
            OutboundEntry { target: Namespace::Group(GRP), target_path: "grp".into(), scopes: set("read_repository") },
            OutboundEntry {
                target: Namespace::Project(T),
                target_path: "grp/sub/b".into(),
                scopes: set("read_registry api"),
            },
        ];
        let d = decide(&i);
        assert_eq!((d.rule, d.allowed), (Rule::ProjectEntry { level: 0 }, set("read_repository read_registry")));
        assert_eq!(
            decide_scope(&i, Scope::WriteRegistry).1,
            "job token from src/team/a is not allowed to access grp/sub/b: src/team/a's outbound allowlist does not include write_registry for grp/sub/b"
        );
    }

    #[test]
    fn outbound_limit_leaves_an_uncovered_public_target_only_its_visibility_reads() {
        let mut i = with_visibility(with_project_entry(input(), 0, EntryGrant::DefaultPermissions), Visibility::Public);
        i.outbound_enabled = true;
        let d = decide_for(&i, Scope::WriteRegistry);
        assert_eq!((d.rule, d.allowed), (Rule::OutboundNotCovered, set(VISIBILITY_READS)));
        assert_eq!(
            d.reason,
            "job token from src/team/a is not allowed to access grp/sub/b: src/team/a's outbound allowlist does not include grp/sub/b"
        );
        assert_eq!(
            decide_scope(&i, Scope::ReadRepository).1,
            "allowed: grp/sub/b is public, which opens read_repository to anyone; \
             src/team/a's outbound allowlist does not include grp/sub/b"
        );
        i.outbound_entries = vec![OutboundEntry {
            target: Namespace::Project(T),
            target_path: "grp/sub/b".into(),
            scopes: set("write_registry"),
        }];
        assert_eq!(allowed(&i), "read_repository read_registry write_registry read_package_registry read_api");
        i.levels[0].source_project_entry = None;
        assert_eq!(allowed(&i), VISIBILITY_READS, "out of scope, the outbound entry opens nothing");
    }

    #[test]
    fn the_floor_is_what_visibility_alone_opens() {
        let i = with_visibility(with_project_entry(input(), 0, EntryGrant::DefaultPermissions), Visibility::Internal);
        assert_eq!(decide(&i).floor, set(VISIBILITY_READS));
        assert_eq!(decide(&input()).floor, ScopeSet::EMPTY, "a private target opens nothing by visibility");
    }

    #[test]
    fn blocked_user_gets_nothing_not_even_visibility_reads() {
        let mut in_scope = with_access(
            with_visibility(with_project_entry(input(), 0, scopes(ELEVATED_ENTRY)), Visibility::Public),
            Some(Owner),
        );
        in_scope.user.active = false;
        let mut out_of_scope = in_scope.clone();
        out_of_scope.levels[0].source_project_entry = None;
        for i in [in_scope, out_of_scope] {
            let d = decide(&i);
            assert_eq!((d.rule, d.allowed), (Rule::BlockedUser, ScopeSet::EMPTY));
            assert_eq!(
                d.reason,
                "job token from src/team/a is not allowed to access grp/sub/b: the user dev is blocked"
            );
        }
    }

    #[test]
    fn disabled_feature_on_the_target_removes_its_scopes() {
        let mut i = with_access(with_project_entry(input(), 0, EntryGrant::DefaultPermissions), Some(Owner));
        i.target_facts.package_registry = FeatureAccess::Disabled;
        assert_eq!(allowed(&i), "read_repository read_registry write_registry");
        assert_eq!(
            decide_scope(&i, Scope::ReadPackageRegistry).1,
            "job token from src/team/a is not allowed to access grp/sub/b: grp/sub/b has its package_registry feature disabled"
        );

        let mut public = with_visibility(input(), Visibility::Public);
        public.target_facts.repository = FeatureAccess::Disabled;
        public.target_facts.container_registry = FeatureAccess::Private;
        assert_eq!(allowed(&public), "read_package_registry read_api");
    }

    #[test]
    fn in_scope_on_a_public_target_keeps_visibility_reads_the_entry_lacks() {
        let i = with_visibility(with_project_entry(input(), 0, scopes("write_registry")), Visibility::Public);
        assert_eq!(allowed(&i), "read_repository read_registry write_registry read_package_registry read_api");
        assert_eq!(decide_scope(&i, Scope::ReadApi).1, "allowed: grp/sub/b is public, which opens read_api to anyone");
        assert_eq!(
            decide_scope(&i, Scope::WriteRegistry).1,
            "allowed by grp/sub/b's allowlist entry for project src/team/a"
        );
    }

    #[test]
    fn reasons_name_both_projects_and_the_rule() {
        let by_group = with_group_entry(input(), 2, SRC, scopes("read_repository"));
        assert_eq!(decide(&by_group).reason, "allowed by grp's allowlist entry for group src");
        assert_eq!(
            decide_scope(&by_group, Scope::WritePackageRegistry).1,
            "job token from src/team/a is not allowed to access grp/sub/b: the allowlist entry for src (on grp) does not include write_package_registry"
        );
        let by_project = with_project_entry(input(), 1, scopes("read_repository"));
        assert_eq!(decide(&by_project).reason, "allowed by grp/sub's allowlist entry for project src/team/a");
        assert_eq!(
            decide_scope(&by_project, Scope::Api).1,
            "job token from src/team/a is not allowed to access grp/sub/b: the allowlist entry for src/team/a (on grp/sub) does not include api"
        );
        let empty_entry = with_project_entry(input(), 0, scopes(""));
        assert_eq!(
            decide(&empty_entry).reason,
            "job token from src/team/a is not allowed to access grp/sub/b: the allowlist entry for src/team/a (on grp/sub/b) lists no scopes"
        );
        let public = with_visibility(input(), Visibility::Internal);
        assert_eq!(
            decide(&public).reason,
            "allowed: grp/sub/b is internal, which opens read_repository, read_registry, read_package_registry, read_api to any signed-in user; src/team/a is not on its job token allowlist"
        );
        let off = with_inbound(input(), [Some(false), None, None]);
        assert_eq!(
            decide_scope(&off, Scope::ReadApi).1,
            "job token from src/team/a is not allowed to access grp/sub/b: grp/sub/b's inbound allowlist is disabled, which admits default permissions only; they do not include read_api"
        );
        for (ok, why) in Scope::ALL.map(|s| decide_scope(&input(), s)) {
            assert!(!ok);
            assert!(why.contains("src/team/a") && why.contains("grp/sub/b"), "{why}");
        }
    }

    #[test]
    fn same_project_is_not_decided_by_the_allowlist() {
        let mut i = with_project_entry(input(), 0, scopes(DEFAULTS));
        i.target = S;
        let d = decide(&i);
        assert_eq!((d.rule, d.allowed), (Rule::SameProject, ScopeSet::EMPTY));
        assert!(d.reason.contains("own-project grant"), "{}", d.reason);
    }

    #[test]
    fn the_out_of_scope_exceptions_are_exactly_the_catalogs_read_scopes() {
        let reads: ScopeSet = Scope::ALL.into_iter().filter(|s| s.is_read()).collect();
        assert_eq!(OUT_OF_SCOPE_EXCEPTIONS.into_iter().collect::<ScopeSet>(), reads);
    }
}
