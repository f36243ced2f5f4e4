//! Values parsed at the edge: the rest of the code sees these, never raw strings.

mod scope;
pub mod time;

pub use scope::{Scope, ScopeInfo, ScopeSet, UnknownScope, CATALOG};

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub type UserId = i64;
pub type GroupId = i64;
pub type ProjectId = i64;
pub type RunnerId = i64;
pub type PipelineId = i64;
pub type JobId = i64;

/// A value outside the allowed set of an enumerated field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {what}")]
pub struct InvalidValue {
    pub what: &'static str,
    pub value: String,
}

/// Declares a string-valued enum with `as_str`, `FromStr`, `Display` and serde as that string.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(InvalidValue { what: $what, value: s.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// Who can see a project.
    Visibility, "visibility" { Private => "private", Internal => "internal", Public => "public" }
);
string_enum!(
    /// A project feature's access level.
    FeatureAccess, "feature access level" { Disabled => "disabled", Private => "private", Enabled => "enabled" }
);
string_enum!(
    /// The project features scopes act on.
    Feature, "feature" {
        Repository => "repository",
        ContainerRegistry => "container_registry",
        PackageRegistry => "package_registry",
    }
);
string_enum!(UserState, "user state" { Active => "active", Blocked => "blocked" });
string_enum!(RefType, "ref_type" { Branch => "branch", Tag => "tag" });
string_enum!(RunnerType, "runner_type" { Instance => "instance", Group => "group", Project => "project" });
string_enum!(
    /// A job's lifecycle state.
    JobStatus, "job status" {
        Pending => "pending",
        Running => "running",
        Success => "success",
        Failed => "failed",
        Canceled => "canceled",
    }
);

impl JobStatus {
    pub fn is_finished(self) -> bool {
        matches!(self, JobStatus::Success | JobStatus::Failed | JobStatus::Canceled)
    }
}

/// A member's access level. The numeric values are the wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccessLevel {
    Guest = 10,
    Reporter = 20,
    Developer = 30,
    Maintainer = 40,
    Owner = 50,
}

impl AccessLevel {
    pub const ALL: [AccessLevel; 5] = [
        AccessLevel::Guest,
        AccessLevel::Reporter,
        AccessLevel::Developer,
        AccessLevel::Maintainer,
        AccessLevel::Owner,
    ];

    pub fn from_i64(n: i64) -> Result<AccessLevel, InvalidValue> {
        AccessLevel::ALL
            .into_iter()
            .find(|l| *l as i64 == n)
            .ok_or_else(|| InvalidValue { what: "access_level (10, 20, 30, 40 or 50)", value: n.to_string() })
    }

    pub fn as_i64(self) -> i64 {
        self as i64
    }
}

impl Serialize for AccessLevel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.as_i64())
    }
}

impl<'de> Deserialize<'de> for AccessLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        AccessLevel::from_i64(n).map_err(serde::de::Error::custom)
    }
}

/// True for an absolute URI (`scheme://rest`, RFC 3986 §4.3) without a fragment, whitespace or
/// control characters: what `resource` values (RFC 8707) and resource server audiences must be.
pub fn is_absolute_uri(value: &str) -> bool {
    let well_formed = value.split_once("://").is_some_and(|(scheme, rest)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) && !rest.is_empty()
    });
    well_formed && !value.contains('#') && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_enums_round_trip_and_reject_unknown_text() {
        for v in Visibility::ALL {
            assert_eq!(v.as_str().parse::<Visibility>().unwrap(), *v);
        }
        let err = "secret".parse::<Visibility>().unwrap_err();
        assert_eq!(err.to_string(), "`secret` is not a valid visibility");
    }

    #[test]
    fn access_levels_are_the_wire_numbers() {
        assert_eq!(AccessLevel::from_i64(40).unwrap(), AccessLevel::Maintainer);
        assert!(AccessLevel::from_i64(35).is_err());
        assert!(AccessLevel::Reporter > AccessLevel::Guest);
    }

    #[test]
    fn only_success_failed_and_canceled_are_finished() {
        let finished: Vec<_> = JobStatus::ALL.iter().filter(|s| s.is_finished()).collect();
        assert_eq!(finished, [&JobStatus::Success, &JobStatus::Failed, &JobStatus::Canceled]);
    }

    #[test]
    fn absolute_uris_have_a_scheme_and_no_fragment_or_spaces() {
        for good in ["https://registry.example.com", "https://a.example/v2?x=1", "spiffe://ci/job"] {
            assert!(is_absolute_uri(good), "{good}");
        }
        for bad in
            ["", "registry", "/path", "://x", "https://", "https://a#frag", "https://a b", "ht tp://a", "https://a\n"]
        {
            assert!(!is_absolute_uri(bad), "{bad:?}");
        }
    }
}
