//! The scope catalog (SPEC §3): one table, one row per scope.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{AccessLevel, Feature};

/// A scope a job token can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    ReadRepository,
    WriteRepository,
    ReadRegistry,
    WriteRegistry,
    ReadPackageRegistry,
    WritePackageRegistry,
    ReadApi,
    Api,
}

/// One row of the catalog.
#[derive(Debug, Clone, Copy)]
pub struct ScopeInfo {
    pub scope: Scope,
    pub name: &'static str,
    pub grants: &'static str,
    /// Minimum access level a member needs to hold the scope.
    pub min_access: AccessLevel,
    /// The project feature the scope acts on, if any.
    pub feature: Option<Feature>,
    pub write: bool,
    /// Dropped from tokens whose pipeline ran on an unprotected ref.
    pub protected_only: bool,
    /// Part of the default job token scopes of a project.
    pub default: bool,
}

use AccessLevel::{Developer, Guest, Reporter};
use Feature::{ContainerRegistry, PackageRegistry, Repository};

/// The catalog. Adding a scope is adding one row here and one variant above.
#[rustfmt::skip]
pub const CATALOG: [ScopeInfo; 8] = [
    row(Scope::ReadRepository, "read_repository", "clone/fetch", Reporter, Some(Repository), false, false, true),
    row(Scope::WriteRepository, "write_repository", "push", Developer, Some(Repository), true, true, false),
    row(Scope::ReadRegistry, "read_registry", "pull container images", Reporter, Some(ContainerRegistry), false, false, true),
    // Image creation is the one write open to jobs on unprotected refs.
    row(Scope::WriteRegistry, "write_registry", "push container images", Developer, Some(ContainerRegistry), true, false, true),
    row(Scope::ReadPackageRegistry, "read_package_registry", "download packages", Reporter, Some(PackageRegistry), false, false, true),
    row(Scope::WritePackageRegistry, "write_package_registry", "publish packages", Developer, Some(PackageRegistry), true, true, true),
    row(Scope::ReadApi, "read_api", "read-only API", Guest, None, false, false, false),
    row(Scope::Api, "api", "full API as the user", Developer, None, true, true, false),
];

#[allow(clippy::too_many_arguments)]
const fn row(
    scope: Scope,
    name: &'static str,
    grants: &'static str,
    min_access: AccessLevel,
    feature: Option<Feature>,
    write: bool,
    protected_only: bool,
    default: bool,
) -> ScopeInfo {
    ScopeInfo { scope, name, grants, min_access, feature, write, protected_only, default }
}

impl Scope {
    pub const ALL: [Scope; 8] = [
        Scope::ReadRepository,
        Scope::WriteRepository,
        Scope::ReadRegistry,
        Scope::WriteRegistry,
        Scope::ReadPackageRegistry,
        Scope::WritePackageRegistry,
        Scope::ReadApi,
        Scope::Api,
    ];

    pub fn info(self) -> &'static ScopeInfo {
        &CATALOG[self as usize]
    }

    pub fn as_str(self) -> &'static str {
        self.info().name
    }

    /// Beyond the default set: needs the elevation switch (SPEC §4.2).
    pub fn is_elevated(self) -> bool {
        !self.info().default
    }

    /// A read scope in the sense of the visibility-read rule (SPEC §4.1).
    pub fn is_read(self) -> bool {
        !self.info().write
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name that is not in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope `{0}`")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CATALOG.iter().find(|row| row.name == s).map(|row| row.scope).ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// A set of scopes; iteration follows catalog order, so rendering is deterministic.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScopeSet(u16);

impl ScopeSet {
    pub const EMPTY: ScopeSet = ScopeSet(0);

    pub fn all() -> ScopeSet {
        Scope::ALL.into_iter().collect()
    }

    /// The default job token scopes of a project that configured none (SPEC §3).
    pub fn default_set() -> ScopeSet {
        Scope::ALL.into_iter().filter(|s| !s.is_elevated()).collect()
    }

    pub fn elevated() -> ScopeSet {
        Scope::ALL.into_iter().filter(|s| s.is_elevated()).collect()
    }

    pub fn protected_only() -> ScopeSet {
        Scope::ALL.into_iter().filter(|s| s.info().protected_only).collect()
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn insert(&mut self, scope: Scope) {
        self.0 |= scope.bit();
    }

    pub fn with(mut self, scope: Scope) -> ScopeSet {
        self.insert(scope);
        self
    }

    pub fn intersect(self, other: ScopeSet) -> ScopeSet {
        ScopeSet(self.0 & other.0)
    }

    pub fn union(self, other: ScopeSet) -> ScopeSet {
        ScopeSet(self.0 | other.0)
    }

    pub fn minus(self, other: ScopeSet) -> ScopeSet {
        ScopeSet(self.0 & !other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Scope::as_str).collect()
    }

    /// Parses a space-separated scope string (RFC 6749 §3.3). Empty input is the empty set.
    pub fn parse_space_separated(s: &str) -> Result<ScopeSet, UnknownScope> {
        s.split(' ').filter(|p| !p.is_empty()).map(str::parse::<Scope>).collect()
    }

    /// The space-separated form used in the `scope` claim and responses.
    pub fn to_space_separated(self) -> String {
        self.names().join(" ")
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        let mut set = ScopeSet::EMPTY;
        for s in iter {
            set.insert(s);
        }
        set
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let scopes = Vec::<Scope>::deserialize(d)?;
        Ok(scopes.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_rows_are_in_variant_order() {
        for (i, row) in CATALOG.iter().enumerate() {
            assert_eq!(row.scope as usize, i, "{}", row.name);
        }
    }

    #[test]
    fn default_set_is_the_five_spec_scopes() {
        assert_eq!(
            ScopeSet::default_set().to_space_separated(),
            "read_repository read_registry write_registry read_package_registry write_package_registry"
        );
        assert_eq!(ScopeSet::elevated().to_space_separated(), "write_repository read_api api");
    }

    #[test]
    fn write_registry_is_the_one_write_open_to_unprotected_refs() {
        let writes: ScopeSet = Scope::ALL.into_iter().filter(|s| s.info().write).collect();
        assert_eq!(writes.minus(ScopeSet::protected_only()).names(), vec!["write_registry"]);
    }

    #[test]
    fn parsing_rejects_unknown_names_and_ignores_extra_spaces() {
        assert_eq!(ScopeSet::parse_space_separated(" read_api  api ").unwrap().names(), vec!["read_api", "api"]);
        assert_eq!(ScopeSet::parse_space_separated("read_api sudo"), Err(UnknownScope("sudo".into())));
        assert!(ScopeSet::parse_space_separated("").unwrap().is_empty());
    }
}
