//! Job token scope: which other projects' jobs may reach a project (SPEC §4.3).

/// Step 1: is the inbound allowlist in force? The instance's enforcement wins; otherwise the
/// nearest explicit setting, the project's own first, then its groups nearest to root;
/// unset everywhere means yes (new projects are protected by default).
pub fn inbound_in_force(instance_enforces: bool, project: Option<bool>, groups_nearest_first: &[Option<bool>]) -> bool {
    inbound_origin(instance_enforces, project, groups_nearest_first).0
}

/// Where the effective inbound setting of [`inbound_in_force`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundOrigin {
    /// The instance enforces allowlists.
    Instance,
    /// The project's (or group's) own setting.
    Own,
    /// The group at this index of `groups_nearest_first`.
    Group(usize),
    /// Unset everywhere: on.
    Default,
}

/// [`inbound_in_force`] with where its answer comes from.
pub fn inbound_origin(
    instance_enforces: bool,
    project: Option<bool>,
    groups_nearest_first: &[Option<bool>],
) -> (bool, InboundOrigin) {
    if instance_enforces {
        return (true, InboundOrigin::Instance);
    }
    if let Some(own) = project {
        return (own, InboundOrigin::Own);
    }
    match groups_nearest_first.iter().enumerate().find_map(|(i, s)| s.map(|v| (v, i))) {
        Some((value, i)) => (value, InboundOrigin::Group(i)),
        None => (true, InboundOrigin::Default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_origin_names_the_level_that_decides() {
        assert_eq!(inbound_origin(true, Some(false), &[]), (true, InboundOrigin::Instance));
        assert_eq!(inbound_origin(false, Some(false), &[Some(true)]), (false, InboundOrigin::Own));
        assert_eq!(inbound_origin(false, None, &[None, Some(false)]), (false, InboundOrigin::Group(1)));
        assert_eq!(inbound_origin(false, None, &[None]), (true, InboundOrigin::Default));
    }

    #[test]
    fn inbound_resolution_truth_table() {
        let rows: &[(bool, Option<bool>, &[Option<bool>], bool)] = &[
            (false, None, &[], true),                               // unset everywhere: on
            (false, Some(false), &[Some(true)], false),             // project beats groups
            (false, None, &[None, Some(false), Some(true)], false), // nearest explicit group wins
            (false, None, &[Some(true), Some(false)], true),
            (true, Some(false), &[Some(false)], true), // instance enforcement wins
        ];
        for (i, (enforce, project, groups, expected)) in rows.iter().enumerate() {
            assert_eq!(inbound_in_force(*enforce, *project, groups), *expected, "row {i}");
        }
    }
}
