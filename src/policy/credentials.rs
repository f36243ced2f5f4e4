//! How long a personal access token may live (issue 7 point 5).

/// Lifetime of a personal access token created without `expires_at`.
pub const PAT_DEFAULT_LIFETIME: i64 = 30 * 86_400;

/// Longest lifetime a personal access token may be given.
pub const PAT_MAX_LIFETIME: i64 = 365 * 86_400;

/// Why a requested expiry is refused; both messages name the allowed window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryRefused {
    #[error("expires_at must be in the future (and at most 365 days from now)")]
    NotInFuture,
    #[error("expires_at must be at most 365 days from now")]
    TooFar,
}

/// The expiry of a personal access token created at `now`: `requested` when it lies in
/// `(now, now + 365 days]`, else refused; 30 days from `now` when nothing is requested.
pub fn pat_expiry(requested: Option<i64>, now: i64) -> Result<i64, ExpiryRefused> {
    match requested {
        None => Ok(now + PAT_DEFAULT_LIFETIME),
        Some(at) if at <= now => Err(ExpiryRefused::NotInFuture),
        Some(at) if at > now + PAT_MAX_LIFETIME => Err(ExpiryRefused::TooFar),
        Some(at) => Ok(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn expiry_defaults_to_thirty_days_and_accepts_up_to_a_year_but_never_the_past() {
        let cases = [
            (None, Ok(NOW + 30 * 86_400)),
            (Some(NOW - 1), Err(ExpiryRefused::NotInFuture)),
            (Some(NOW), Err(ExpiryRefused::NotInFuture)),
            (Some(NOW + 1), Ok(NOW + 1)),
            (Some(NOW + 365 * 86_400), Ok(NOW + 365 * 86_400)),
            (Some(NOW + 365 * 86_400 + 1), Err(ExpiryRefused::TooFar)),
        ];
        for (requested, expected) in cases {
            assert_eq!(pat_expiry(requested, NOW), expected, "{requested:?}");
        }
    }
}
