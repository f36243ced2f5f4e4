//! Job token scope: which other projects' jobs may reach a project (SPEC §4.3).

/// Step 1: is the inbound allowlist in force? The instance's enforcement wins; otherwise the
/// nearest explicit setting, the project's own first, then its groups nearest to root;
/// unset everywhere means yes (new projects are protected by default).
pub fn inbound_in_force(instance_enforces: bool, project: Option<bool>, groups_nearest_first: &[Option<bool>]) -> bool {
    instance_enforces || project.or_else(|| groups_nearest_first.iter().find_map(|s| *s)).unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

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
