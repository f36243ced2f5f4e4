//! What a presented token may be answered online for: introspection and the decision endpoint
//! answer only within what the token itself carries and what is still true.

use crate::domain::ScopeSet;

/// How a token came to be, as its record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Minted by a runner for its job.
    Runner,
    /// Obtained by RFC 8693 exchange from another token.
    Exchange,
}

/// The scopes a token answers for on a project other than its own.
///
/// - A runner-minted job token: the live cross-project decision (`live`). It may exceed what the
///   token carries: answering that online is what the target's allowlist is for.
/// - A token obtained by exchange: only the actions its `authorization_details` carry for the
///   target (`carried`), and of those only what the live decision still grants. An exchange can
///   only narrow, so such a token never answers for more than its parent did.
pub fn cross_project_grant(origin: Origin, carried: Option<ScopeSet>, live: ScopeSet) -> ScopeSet {
    match origin {
        Origin::Runner => live,
        Origin::Exchange => carried.unwrap_or(ScopeSet::EMPTY).intersect(live),
    }
}

/// Whether a resource server may be told about a token. A resource server registered with an
/// `audience` hears only of tokens whose `aud` names one of its audiences or the instance's
/// default audience (which every resource server accepts); one without an audience hears of all.
pub fn audience_admits(token_aud: &[&str], server_audience: &[String], default_audience: &str) -> bool {
    server_audience.is_empty()
        || token_aud.iter().any(|aud| *aud == default_audience || server_audience.iter().any(|s| s == aud))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &str) -> ScopeSet {
        ScopeSet::parse_space_separated(names).unwrap()
    }

    #[test]
    fn a_runner_minted_token_answers_with_the_live_decision() {
        let live = set("read_repository write_registry");
        assert_eq!(cross_project_grant(Origin::Runner, None, live), live);
        assert_eq!(cross_project_grant(Origin::Runner, Some(set("read_repository")), live), live);
    }

    #[test]
    fn an_exchanged_token_answers_only_within_its_details_and_the_live_decision() {
        let live = set("read_repository write_registry");
        assert_eq!(cross_project_grant(Origin::Exchange, None, live), ScopeSet::EMPTY, "no details for the target");
        assert_eq!(
            cross_project_grant(Origin::Exchange, Some(set("read_repository read_api")), live),
            set("read_repository"),
            "read_api is carried but no longer granted; write_registry is granted but not carried"
        );
    }

    #[test]
    fn an_audience_bound_resource_server_hears_only_of_its_own_or_default_audience_tokens() {
        let registry = vec!["https://registry".to_owned()];
        assert!(audience_admits(&["https://registry"], &registry, "https://jt"));
        assert!(audience_admits(&["https://other", "https://jt"], &registry, "https://jt"));
        assert!(!audience_admits(&["https://other"], &registry, "https://jt"));
        assert!(!audience_admits(&[], &registry, "https://jt"));
        assert!(audience_admits(&["https://other"], &[], "https://jt"), "no audience configured: every token");
    }
}
