//! Autopopulate (SPEC §4.5): turn the sources seen in a target's authorization log into
//! allowlist entries, collapsing sources into their nearest common groups until the list fits.

use std::collections::BTreeMap;

use crate::domain::{GroupId, ProjectId, ScopeSet};

/// A source project seen in the log, with its groups root first and the scopes it used that
/// only an allowlist entry could grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub project: ProjectId,
    pub groups: Vec<GroupId>,
    pub scopes: ScopeSet,
}

/// An entry to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NewEntry {
    Project(ProjectId),
    Group(GroupId),
}

/// An item during compaction: a project, or a group chosen to stand for several sources.
#[derive(Debug, Clone)]
struct Item {
    entry: NewEntry,
    /// The groups above the item, root first (for a group: its ancestors, excluding itself).
    above: Vec<GroupId>,
}

/// The sources do not fit even when collapsed up to their root groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sources do not fit the allowlist limits even when collapsed into their top-level groups")]
pub struct DoesNotFit;

/// The entries for the sources in `seen`, each with exactly the scopes its sources used (a group
/// entry: the union of the scopes of the sources it stands for). Sources that used no scope
/// beyond visibility reads need no entry and get none. See [`compact`] for the collapsing.
pub fn entries(
    seen: &[Seen],
    room_projects: usize,
    room_groups: usize,
) -> Result<Vec<(NewEntry, ScopeSet)>, DoesNotFit> {
    let needed: Vec<Seen> = seen.iter().filter(|s| !s.scopes.is_empty()).cloned().collect();
    let entries = compact(&needed, room_projects, room_groups)?;
    Ok(entries
        .into_iter()
        .map(|entry| {
            let covers = |s: &&Seen| match entry {
                NewEntry::Project(p) => s.project == p,
                NewEntry::Group(g) => s.groups.contains(&g),
            };
            let scopes = needed.iter().filter(covers).fold(ScopeSet::EMPTY, |acc, s| acc.union(s.scopes));
            (entry, scopes)
        })
        .collect())
}

/// Collapses `seen` into at most `room_projects` project entries and `room_groups` group
/// entries. Deeper groups are preferred (the nearest common group of the sources it merges),
/// and at one depth the group standing for the most items first.
pub fn compact(seen: &[Seen], room_projects: usize, room_groups: usize) -> Result<Vec<NewEntry>, DoesNotFit> {
    let mut items: Vec<Item> =
        seen.iter().map(|s| Item { entry: NewEntry::Project(s.project), above: s.groups.clone() }).collect();
    let fits = |items: &[Item]| {
        let projects = items.iter().filter(|i| matches!(i.entry, NewEntry::Project(_))).count();
        projects <= room_projects && items.len() - projects <= room_groups
    };
    let max_depth = items.iter().map(|i| i.above.len()).max().unwrap_or(0);
    for depth in (0..max_depth).rev() {
        if fits(&items) {
            break;
        }
        // Buckets of items that share the group at `depth`, largest first.
        let mut buckets: BTreeMap<GroupId, Vec<usize>> = BTreeMap::new();
        for (index, item) in items.iter().enumerate() {
            if let Some(group) = item.above.get(depth) {
                buckets.entry(*group).or_default().push(index);
            }
        }
        let mut buckets: Vec<(GroupId, Vec<usize>)> = buckets.into_iter().filter(|(_, v)| v.len() >= 2).collect();
        buckets.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        let mut merged: Vec<(GroupId, Vec<usize>)> = Vec::new();
        let mut projected = items.clone();
        for (group, members) in buckets {
            if fits(&projected) {
                break;
            }
            projected.retain(|i| i.above.get(depth) != Some(&group));
            projected.push(Item { entry: NewEntry::Group(group), above: Vec::new() });
            merged.push((group, members));
        }
        for (group, members) in merged {
            let above = items[members[0]].above[..depth].to_vec();
            items.retain(|i| i.above.get(depth) != Some(&group));
            items.push(Item { entry: NewEntry::Group(group), above });
        }
    }
    if !fits(&items) {
        return Err(DoesNotFit);
    }
    let mut out: Vec<NewEntry> = items.into_iter().map(|i| i.entry).collect();
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use NewEntry::{Group, Project};

    fn seen(project: ProjectId, groups: &[GroupId]) -> Seen {
        Seen { project, groups: groups.to_vec(), scopes: ScopeSet::default_set() }
    }

    fn using(project: ProjectId, groups: &[GroupId], scopes: &str) -> Seen {
        Seen { project, groups: groups.to_vec(), scopes: ScopeSet::parse_space_separated(scopes).unwrap() }
    }

    #[test]
    fn entries_carry_exactly_the_scopes_their_sources_used_and_visibility_only_sources_get_none() {
        let s = [
            using(1, &[10, 11], "read_repository"),
            using(2, &[10, 11], "write_registry"),
            using(3, &[20], "read_package_registry"),
            using(4, &[30], ""),
        ];
        let set = |names| ScopeSet::parse_space_separated(names).unwrap();
        assert_eq!(
            entries(&s, 5, 5).unwrap(),
            vec![
                (Project(1), set("read_repository")),
                (Project(2), set("write_registry")),
                (Project(3), set("read_package_registry")),
            ]
        );
        assert_eq!(
            entries(&s, 1, 1).unwrap(),
            vec![(Project(3), set("read_package_registry")), (Group(11), set("read_repository write_registry"))]
        );
    }

    #[test]
    fn sources_that_fit_become_project_entries() {
        let s = [seen(1, &[10]), seen(2, &[20])];
        assert_eq!(compact(&s, 5, 5).unwrap(), vec![Project(1), Project(2)]);
    }

    #[test]
    fn overflow_collapses_into_the_deepest_common_group_first() {
        // 10 > 11 > {1,2,3}; 10 > {4}; 20 > {5}
        let s = [seen(1, &[10, 11]), seen(2, &[10, 11]), seen(3, &[10, 11]), seen(4, &[10]), seen(5, &[20])];
        assert_eq!(compact(&s, 2, 5).unwrap(), vec![Project(4), Project(5), Group(11)]);
    }

    #[test]
    fn collapsing_climbs_until_it_fits() {
        let s = [seen(1, &[10, 11]), seen(2, &[10, 11]), seen(3, &[10, 12]), seen(4, &[10, 12])];
        assert_eq!(compact(&s, 0, 1).unwrap(), vec![Group(10)]);
        assert_eq!(compact(&s, 0, 2).unwrap(), vec![Group(11), Group(12)]);
    }

    #[test]
    fn sources_in_different_top_level_groups_may_not_fit() {
        let s = [seen(1, &[10]), seen(2, &[20])];
        assert_eq!(compact(&s, 1, 0), Err(DoesNotFit));
        assert_eq!(compact(&s, 1, 1), Err(DoesNotFit), "single sources are never widened to a group");
    }
}
