//! The key rotation plan (SPEC §7), pure: key metadata + `now` + policy → actions. No I/O, no
//! clock; the caller applies the actions (new key files first, then metadata in one transaction).
//!
//! Lifecycle: a `next` key is published before it signs; rotation retires the active key,
//! promotes `next`, and creates a new `next`; a retired key stays published until the last token
//! it signed has expired (and at least [`RETIRED_GRACE_SECS`]), and is then dropped.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::material::Alg;

/// Where a key is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published, not yet signing; becomes active at the next rotation.
    Next,
    /// The one key that signs new tokens.
    Active,
    /// No longer signs; published while tokens it signed may still be unexpired.
    Retired,
}

impl KeyState {
    /// `next`, `active` or `retired`.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no key state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key state {0:?}: expected next, active or retired")]
pub struct UnknownKeyState(String);

impl FromStr for KeyState {
    type Err = UnknownKeyState;

    fn from_str(s: &str) -> Result<KeyState, UnknownKeyState> {
        [KeyState::Next, KeyState::Active, KeyState::Retired]
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownKeyState(s.chars().take(40).collect()))
    }
}

/// Which tokens a key signs: job tokens (any algorithm in force), or ID tokens (RS256 or ES256,
/// what cloud federation accepts). Each family rotates on its own by the same plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyFamily {
    Job,
    IdToken,
}

impl KeyFamily {
    /// Both families, job tokens first.
    pub const ALL: [KeyFamily; 2] = [KeyFamily::Job, KeyFamily::IdToken];

    /// `job` or `id_token`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyFamily::Job => "job",
            KeyFamily::IdToken => "id_token",
        }
    }

    /// Whether this family may sign with `alg`: ID tokens only with RS256 or ES256 (what cloud
    /// federation accepts; Azure takes RSA only, none takes EdDSA).
    pub fn allows(self, alg: Alg) -> bool {
        match self {
            KeyFamily::Job => true,
            KeyFamily::IdToken => matches!(alg, Alg::RS256 | Alg::ES256),
        }
    }
}

impl fmt::Display for KeyFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no key family.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key family {0:?}: expected job or id_token")]
pub struct UnknownKeyFamily(String);

impl FromStr for KeyFamily {
    type Err = UnknownKeyFamily;

    fn from_str(s: &str) -> Result<KeyFamily, UnknownKeyFamily> {
        KeyFamily::ALL
            .into_iter()
            .find(|family| family.as_str() == s)
            .ok_or_else(|| UnknownKeyFamily(s.chars().take(40).collect()))
    }
}

/// What the plan needs to know about one key. Times are unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMeta {
    /// The RFC 7638 thumbprint; also the key file's name.
    pub kid: String,
    /// The key's algorithm.
    pub alg: Alg,
    /// Where the key is in its lifecycle.
    pub state: KeyState,
    /// When the key was generated.
    pub created_at: i64,
    /// When the key became active; `None` while it is `next`.
    pub activated_at: Option<i64>,
    /// When the key was retired; `None` unless it is `retired`.
    pub retired_at: Option<i64>,
    /// The latest `exp` of the tokens this key signed; `None` if it signed none.
    pub last_token_expires_at: Option<i64>,
}

/// How long a retired key stays published and undroppable after its retirement, whatever the
/// recorded tokens say.
///
/// Security invariant (issue 7, point 7c): a token is signed before it is recorded, and a process
/// keeps signing with the key it loaded until its next key reload (at most one key tick, ≤ 60 s,
/// after another process rotated). So when a key is retired, tokens it signed may still be on
/// their way to `issued_tokens` (in the group-commit writer's queue, or signed by a process that
/// has not reloaded yet), invisible to `last_token_expires_at`. This grace outlasts both (the
/// longest key tick plus any request's lifetime), so by the time a drop is considered every such
/// token has been recorded, and its expiry keeps the key. The database backs this up: a token
/// whose key row is gone cannot be recorded at all (trigger `issued_tokens_need_their_key`), so
/// its request fails rather than answering 200.
pub const RETIRED_GRACE_SECS: i64 = 300;

impl KeyMeta {
    /// Whether a token signed by this key may still be unexpired at `now`.
    fn has_live_tokens(&self, now: i64) -> bool {
        self.last_token_expires_at.is_some_and(|exp| exp > now)
    }

    /// Whether this retired key is still within [`RETIRED_GRACE_SECS`] of its retirement.
    fn in_retirement_grace(&self, now: i64) -> bool {
        self.retired_at.is_some_and(|at| now < at.saturating_add(RETIRED_GRACE_SECS))
    }

    /// Whether a token this key signed may still be answered (or still be on its way to being
    /// recorded) at `now`: such a key stays published and is never dropped.
    fn may_be_needed(&self, now: i64) -> bool {
        self.has_live_tokens(now) || self.in_retirement_grace(now)
    }

    /// When this key started signing; `created_at` stands in if `activated_at` was never set.
    fn active_since(&self) -> i64 {
        self.activated_at.unwrap_or(self.created_at)
    }
}

/// One step of a plan. A plan's actions are ordered so that applying them one at a time never
/// leaves two active or two next keys (the database enforces both with unique indexes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAction {
    /// Generate a key of `alg` in `state` (`Next`, or `Active` when no published next key of the
    /// configured algorithm exists to promote).
    Create { state: KeyState, alg: Alg },
    /// `next` → `active`.
    Promote { kid: String },
    /// `active` → `retired`.
    Retire { kid: String },
    /// Remove the key from the JWKS; its metadata row and file may be deleted. Only for a retired
    /// key whose last token has expired and whose retirement grace has passed, or a next key that
    /// never signed anything (a surplus next key, or one of an algorithm no longer in force).
    Drop { kid: String },
}

/// How and when to rotate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// The algorithm in force (recorded in the database): new keys use it, and an active key of
    /// another algorithm is rotated out once a next key of this one has been published long enough.
    pub alg: Alg,
    /// Rotate when the active key has been active this long. `None` (or a value ≤ 0) disables
    /// scheduled rotation.
    pub rotate_every_secs: Option<i64>,
    /// Rotate now, whatever the schedule and the next key's age say (forced manual rotation).
    pub force: bool,
    /// How long a next key must have been published before an unforced rotation promotes it:
    /// the JWKS cache lifetime, so that no verifier sees a token of a key it has not fetched.
    pub min_published_secs: i64,
}

/// Plans what to change so that there is exactly one active and one next key, the next one of
/// `policy.alg`, rotating at most once however many periods were missed, and dropping retired
/// keys whose tokens have all expired.
///
/// Security invariants:
/// - a key that may have signed an unexpired token, or was retired less than
///   [`RETIRED_GRACE_SECS`] ago, is never dropped; only such a retired key with `retired_at` set,
///   or a next key (which has signed nothing), is;
/// - unless forced, a key starts signing only as a next key published for at least
///   `policy.min_published_secs` (SPEC §7); the one exception is a database without an active
///   key, where something must sign.
pub fn plan(keys: &[KeyMeta], now: i64, policy: &RotationPolicy) -> Vec<KeyAction> {
    let mut actions = Vec::new();

    for key in keys {
        if key.state == KeyState::Retired && key.retired_at.is_some() && !key.may_be_needed(now) {
            actions.push(KeyAction::Drop { kid: key.kid.clone() });
        }
    }

    // Repairs for metadata the database should never hold: the latest-activated active key and
    // the newest next key stay; extra active keys are retired (they signed), extra next dropped.
    let active = newest(keys, KeyState::Active, |k| (k.active_since(), k.created_at));
    let next = newest(keys, KeyState::Next, |k| (k.created_at, 0));
    for key in keys.iter().filter(|k| k.state == KeyState::Active && Some(*k) != active) {
        actions.push(KeyAction::Retire { kid: key.kid.clone() });
    }
    for key in keys.iter().filter(|k| k.state == KeyState::Next && Some(*k) != next) {
        actions.push(KeyAction::Drop { kid: key.kid.clone() });
    }

    // A next key of an algorithm no longer configured will never be promoted.
    let usable_next = next.filter(|k| k.alg == policy.alg);
    if let Some(stale) = next.filter(|k| k.alg != policy.alg) {
        actions.push(KeyAction::Drop { kid: stale.kid.clone() });
    }

    let next_ready = usable_next.is_some_and(|next| next.created_at.saturating_add(policy.min_published_secs) <= now);
    let rotate = match active {
        None => true,
        Some(active) => {
            let due = policy
                .rotate_every_secs
                .filter(|period| *period > 0)
                .is_some_and(|period| active.active_since().saturating_add(period) <= now);
            policy.force || ((due || active.alg != policy.alg) && next_ready)
        }
    };
    if rotate {
        if let Some(active) = active {
            actions.push(KeyAction::Retire { kid: active.kid.clone() });
        }
        match usable_next {
            Some(next) => actions.push(KeyAction::Promote { kid: next.kid.clone() }),
            None => actions.push(KeyAction::Create { state: KeyState::Active, alg: policy.alg }),
        }
        actions.push(KeyAction::Create { state: KeyState::Next, alg: policy.alg });
    } else if usable_next.is_none() {
        actions.push(KeyAction::Create { state: KeyState::Next, alg: policy.alg });
    }
    actions
}

fn newest<K: Ord>(keys: &[KeyMeta], state: KeyState, order: impl Fn(&KeyMeta) -> K) -> Option<&KeyMeta> {
    keys.iter().filter(|k| k.state == state).max_by(|a, b| order(a).cmp(&order(b)).then_with(|| a.kid.cmp(&b.kid)))
}

/// Seconds until the `next` key has been published for `min_published_secs` (0 when it has, or
/// when there is no next key). A manual rotation before then would let a key sign that
/// verifiers' cached JWKS may not hold yet.
pub fn promotion_wait(keys: &[KeyMeta], now: i64, min_published_secs: i64) -> i64 {
    keys.iter()
        .find(|k| k.state == KeyState::Next)
        .map_or(0, |next| (next.created_at + min_published_secs - now).max(0))
}

/// The keys the JWKS publishes at `now`, in the given order: next, active, and retired keys that
/// may still have unexpired tokens (`last_token_expires_at > now`) or are within their
/// retirement grace.
pub fn published(keys: &[KeyMeta], now: i64) -> impl Iterator<Item = &KeyMeta> {
    keys.iter().filter(move |k| match k.state {
        KeyState::Next | KeyState::Active => true,
        KeyState::Retired => k.may_be_needed(now),
    })
}

/// The signing algorithm a process uses, given what the database recorded and its own
/// configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlgInForce {
    /// The algorithm every process on the database signs with.
    pub alg: Alg,
    /// Nothing was recorded yet (a new database): record `alg` now.
    pub record: bool,
    /// This process was configured with another algorithm: warn, change nothing.
    pub ignored: Option<Alg>,
}

/// The recorded algorithm wins over the configured one (issue 7, point 7e): two processes with
/// different `JOBTOKEN_SIGNING_ALG` must not rotate against each other. Only an explicit
/// `keys set-algorithm` changes the record; the first start records its configuration.
pub fn algorithm_in_force(recorded: Option<Alg>, configured: Alg) -> AlgInForce {
    match recorded {
        None => AlgInForce { alg: configured, record: true, ignored: None },
        Some(alg) => AlgInForce { alg, record: false, ignored: (alg != configured).then_some(configured) },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn a_next_key_younger_than_the_cache_lifetime_must_wait_before_promotion() {
        let meta = |state, created_at| super::KeyMeta {
            kid: format!("k{created_at}"),
            alg: super::Alg::ES256,
            state,
            created_at,
            activated_at: None,
            retired_at: None,
            last_token_expires_at: None,
        };
        let keys = [meta(super::KeyState::Active, 0), meta(super::KeyState::Next, 1000)];
        assert_eq!(super::promotion_wait(&keys, 1100, 300), 200);
        assert_eq!(super::promotion_wait(&keys, 1300, 300), 0);
        assert_eq!(super::promotion_wait(&keys[..1], 1100, 300), 0, "no next key: nothing to wait for");
    }

    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;
    const CACHE: i64 = 300;

    fn policy(alg: Alg) -> RotationPolicy {
        RotationPolicy { alg, rotate_every_secs: Some(30 * DAY), force: false, min_published_secs: CACHE }
    }

    fn key(kid: &str, alg: Alg, state: KeyState, created_at: i64) -> KeyMeta {
        KeyMeta {
            kid: kid.into(),
            alg,
            state,
            created_at,
            activated_at: (state != KeyState::Next).then_some(created_at),
            retired_at: (state == KeyState::Retired).then_some(created_at + DAY),
            last_token_expires_at: None,
        }
    }

    fn active(kid: &str, alg: Alg, activated_at: i64) -> KeyMeta {
        key(kid, alg, KeyState::Active, activated_at)
    }

    fn next(kid: &str, alg: Alg, created_at: i64) -> KeyMeta {
        key(kid, alg, KeyState::Next, created_at)
    }

    fn retired(kid: &str, retired_at: Option<i64>, last_exp: Option<i64>) -> KeyMeta {
        KeyMeta {
            retired_at,
            last_token_expires_at: last_exp,
            ..key(kid, Alg::ES256, KeyState::Retired, NOW - 100 * DAY)
        }
    }

    fn count(keys: &[KeyMeta], state: KeyState) -> usize {
        keys.iter().filter(|k| k.state == state).count()
    }

    /// Applies a plan the way the key ring does, checking at every step what the database's
    /// unique indexes check (no second active or next key is made), and that every action is
    /// legal for the key it names.
    fn apply(keys: &[KeyMeta], actions: &[KeyAction], now: i64) -> Vec<KeyMeta> {
        static KIDS: AtomicU64 = AtomicU64::new(0);
        let mut keys = keys.to_vec();
        for action in actions {
            let find = |keys: &[KeyMeta], kid: &str| keys.iter().position(|k| k.kid == kid).unwrap();
            match action {
                KeyAction::Create { state, alg } => {
                    assert_ne!(*state, KeyState::Retired, "{actions:?}");
                    assert_eq!(count(&keys, *state), 0, "a second {state} key: {actions:?}");
                    let kid = format!("new-{}", KIDS.fetch_add(1, Ordering::Relaxed));
                    keys.push(KeyMeta { kid, alg: *alg, state: *state, ..key("", *alg, *state, now) });
                }
                KeyAction::Promote { kid } => {
                    let i = find(&keys, kid);
                    assert_eq!(keys[i].state, KeyState::Next, "promoting {kid}: {actions:?}");
                    assert_eq!(count(&keys, KeyState::Active), 0, "a second active key: {actions:?}");
                    keys[i].state = KeyState::Active;
                    keys[i].activated_at = Some(now);
                }
                KeyAction::Retire { kid } => {
                    let i = find(&keys, kid);
                    assert_eq!(keys[i].state, KeyState::Active, "retiring {kid}: {actions:?}");
                    keys[i].state = KeyState::Retired;
                    keys[i].retired_at = Some(now);
                }
                KeyAction::Drop { kid } => {
                    let i = find(&keys, kid);
                    let k = &keys[i];
                    let droppable = k.state == KeyState::Next
                        || (k.state == KeyState::Retired
                            && k.retired_at.is_some_and(|at| at + RETIRED_GRACE_SECS <= now)
                            && k.last_token_expires_at.is_none_or(|e| e <= now));
                    assert!(droppable, "dropping {k:?}: {actions:?}");
                    keys.remove(i);
                }
            }
        }
        keys
    }

    /// Exactly one active and one next key, the next of the configured algorithm (the active one
    /// too, unless its replacement is waiting out the cache lifetime), and a second plan at the
    /// same time has nothing left to rotate.
    fn assert_settled(keys: &[KeyMeta], now: i64, policy: &RotationPolicy) {
        assert_eq!(count(keys, KeyState::Active), 1, "{keys:#?}");
        assert_eq!(count(keys, KeyState::Next), 1, "{keys:#?}");
        assert_eq!(keys.iter().find(|k| k.state == KeyState::Next).unwrap().alg, policy.alg, "{keys:#?}");
        let unforced = RotationPolicy { force: false, ..*policy };
        let active = keys.iter().find(|k| k.state == KeyState::Active).unwrap();
        if active.alg != policy.alg {
            let later = plan(keys, now + policy.min_published_secs, &unforced);
            assert!(later.contains(&KeyAction::Retire { kid: active.kid.clone() }), "stuck on {active:?}: {later:?}");
        }
        let again = plan(keys, now, &unforced);
        assert!(again.iter().all(|a| matches!(a, KeyAction::Drop { .. })), "not settled: {again:?}");
    }

    fn run(keys: &[KeyMeta], now: i64, policy: &RotationPolicy) -> (Vec<KeyAction>, Vec<KeyMeta>) {
        let actions = plan(keys, now, policy);
        let after = apply(keys, &actions, now);
        assert_settled(&after, now, policy);
        (actions, after)
    }

    fn kid_of(keys: &[KeyMeta], state: KeyState) -> &str {
        &keys.iter().find(|k| k.state == state).unwrap().kid
    }

    #[test]
    fn key_state_strings() {
        for state in [KeyState::Next, KeyState::Active, KeyState::Retired] {
            assert_eq!(state.as_str().parse::<KeyState>().unwrap(), state);
            assert_eq!(serde_json::to_value(state).unwrap(), serde_json::json!(state.as_str()));
            assert_eq!(state.to_string(), state.as_str());
        }
        assert_eq!(KeyState::Retired.as_str(), "retired");
        assert!("Active".parse::<KeyState>().is_err());
    }

    #[test]
    fn first_start_creates_an_active_and_a_next_key() {
        let (actions, _) = run(&[], NOW, &policy(Alg::ES256));
        assert_eq!(
            actions,
            vec![
                KeyAction::Create { state: KeyState::Active, alg: Alg::ES256 },
                KeyAction::Create { state: KeyState::Next, alg: Alg::ES256 },
            ]
        );
    }

    #[test]
    fn restart_with_nothing_due_does_nothing() {
        let keys = [active("a", Alg::ES256, NOW - 10 * DAY), next("n", Alg::ES256, NOW - 10 * DAY)];
        assert_eq!(plan(&keys, NOW, &policy(Alg::ES256)), vec![]);
        let just_before = [active("a", Alg::ES256, NOW - 30 * DAY + 1), next("n", Alg::ES256, NOW - 30 * DAY)];
        assert_eq!(plan(&just_before, NOW, &policy(Alg::ES256)), vec![]);
    }

    #[test]
    fn scheduled_rotation_is_due_exactly_one_period_after_activation() {
        let keys = [active("a", Alg::ES256, NOW - 30 * DAY), next("n", Alg::ES256, NOW - 30 * DAY)];
        let (actions, after) = run(&keys, NOW, &policy(Alg::ES256));
        assert_eq!(
            actions,
            vec![
                KeyAction::Retire { kid: "a".into() },
                KeyAction::Promote { kid: "n".into() },
                KeyAction::Create { state: KeyState::Next, alg: Alg::ES256 },
            ]
        );
        assert_eq!(kid_of(&after, KeyState::Active), "n");
        assert_eq!(kid_of(&after, KeyState::Retired), "a");
    }

    #[test]
    fn three_missed_periods_rotate_once() {
        let keys = [active("a", Alg::ES256, NOW - 95 * DAY), next("n", Alg::ES256, NOW - 95 * DAY)];
        let (actions, after) = run(&keys, NOW, &policy(Alg::ES256));
        assert_eq!(actions.iter().filter(|a| matches!(a, KeyAction::Retire { .. })).count(), 1);
        assert_eq!(actions.iter().filter(|a| matches!(a, KeyAction::Promote { .. })).count(), 1);
        assert_eq!(actions.len(), 3, "{actions:?}");
        assert_eq!(after.iter().find(|k| k.kid == "n").unwrap().activated_at, Some(NOW));
    }

    #[test]
    fn forced_rotation_rotates_a_fresh_key_once() {
        let keys = [active("a", Alg::ES256, NOW - 60), next("n", Alg::ES256, NOW - 60)];
        let forced = RotationPolicy { force: true, ..policy(Alg::ES256) };
        let (actions, after) = run(&keys, NOW, &forced);
        assert_eq!(
            actions,
            vec![
                KeyAction::Retire { kid: "a".into() },
                KeyAction::Promote { kid: "n".into() },
                KeyAction::Create { state: KeyState::Next, alg: Alg::ES256 },
            ]
        );
        assert_eq!(kid_of(&after, KeyState::Active), "n");
    }

    #[test]
    fn switching_alg_publishes_a_next_key_of_the_new_alg_and_keeps_signing_with_the_old_one() {
        let keys = [active("a", Alg::ES256, NOW - DAY), next("n", Alg::ES256, NOW - DAY)];
        let (actions, after) = run(&keys, NOW, &policy(Alg::EdDSA));
        assert_eq!(
            actions,
            vec![KeyAction::Drop { kid: "n".into() }, KeyAction::Create { state: KeyState::Next, alg: Alg::EdDSA }]
        );
        assert_eq!(kid_of(&after, KeyState::Active), "a", "nothing signs before it was published");
    }

    #[test]
    fn the_new_alg_signs_only_once_its_next_key_has_been_published_for_the_cache_lifetime() {
        let keys = [active("a", Alg::ES256, NOW - DAY), next("n", Alg::EdDSA, NOW)];
        let p = policy(Alg::EdDSA);
        assert_eq!(plan(&keys, NOW + CACHE - 1, &p), vec![], "one second too early");
        let (actions, after) = run(&keys, NOW + CACHE, &p);
        assert_eq!(
            actions,
            vec![
                KeyAction::Retire { kid: "a".into() },
                KeyAction::Promote { kid: "n".into() },
                KeyAction::Create { state: KeyState::Next, alg: Alg::EdDSA },
            ]
        );
        assert_eq!(kid_of(&after, KeyState::Active), "n");
    }

    #[test]
    fn a_due_scheduled_rotation_waits_for_a_next_key_younger_than_the_cache_lifetime() {
        let keys = [active("a", Alg::ES256, NOW - 31 * DAY), next("n", Alg::ES256, NOW - 10)];
        assert_eq!(plan(&keys, NOW, &policy(Alg::ES256)), vec![]);
        let forced = RotationPolicy { force: true, ..policy(Alg::ES256) };
        assert!(plan(&keys, NOW, &forced).contains(&KeyAction::Promote { kid: "n".into() }), "force overrides");
    }

    #[test]
    fn a_missing_next_key_is_created_rather_than_an_unpublished_key_made_active() {
        let keys = [active("a", Alg::ES256, NOW - 31 * DAY)];
        let (actions, _) = run(&keys, NOW, &policy(Alg::ES256));
        assert_eq!(actions, vec![KeyAction::Create { state: KeyState::Next, alg: Alg::ES256 }]);
    }

    #[test]
    fn a_retired_key_stays_published_and_is_kept_through_its_grace_even_without_recorded_tokens() {
        let keys = [
            active("a", Alg::ES256, NOW - DAY),
            next("n", Alg::ES256, NOW - DAY),
            retired("just-retired", Some(NOW - RETIRED_GRACE_SECS + 1), None),
            retired("grace-over", Some(NOW - RETIRED_GRACE_SECS), None),
        ];
        assert_eq!(plan(&keys, NOW, &policy(Alg::ES256)), vec![KeyAction::Drop { kid: "grace-over".into() }]);
        let published: Vec<&str> = published(&keys, NOW).map(|k| k.kid.as_str()).collect();
        assert_eq!(published, ["a", "n", "just-retired"]);
    }

    #[test]
    fn the_recorded_algorithm_wins_over_the_configured_one() {
        assert_eq!(
            algorithm_in_force(None, Alg::RS256),
            AlgInForce { alg: Alg::RS256, record: true, ignored: None },
            "a new database records the first configuration"
        );
        assert_eq!(
            algorithm_in_force(Some(Alg::ES256), Alg::ES256),
            AlgInForce { alg: Alg::ES256, record: false, ignored: None }
        );
        assert_eq!(
            algorithm_in_force(Some(Alg::ES256), Alg::EdDSA),
            AlgInForce { alg: Alg::ES256, record: false, ignored: Some(Alg::EdDSA) }
        );
    }

    #[test]
    fn switching_alg_promotes_a_next_key_that_already_has_the_new_alg() {
        let keys = [active("a", Alg::ES256, NOW - DAY), next("n", Alg::EdDSA, NOW - DAY)];
        let (actions, _) = run(&keys, NOW, &policy(Alg::EdDSA));
        assert_eq!(
            actions,
            vec![
                KeyAction::Retire { kid: "a".into() },
                KeyAction::Promote { kid: "n".into() },
                KeyAction::Create { state: KeyState::Next, alg: Alg::EdDSA },
            ]
        );
    }

    #[test]
    fn a_missing_next_key_is_created_without_rotating() {
        let keys = [active("a", Alg::RS256, NOW - DAY)];
        let (actions, _) = run(&keys, NOW, &policy(Alg::RS256));
        assert_eq!(actions, vec![KeyAction::Create { state: KeyState::Next, alg: Alg::RS256 }]);
    }

    #[test]
    fn a_next_key_without_an_active_key_is_promoted() {
        let keys = [next("n", Alg::ES256, NOW - DAY), retired("old", Some(NOW - DAY), Some(NOW + DAY))];
        let (actions, after) = run(&keys, NOW, &policy(Alg::ES256));
        assert_eq!(
            actions,
            vec![KeyAction::Promote { kid: "n".into() }, KeyAction::Create { state: KeyState::Next, alg: Alg::ES256 }]
        );
        assert_eq!(kid_of(&after, KeyState::Active), "n");
    }

    #[test]
    fn retired_key_with_unexpired_tokens_stays_published() {
        let keys = [
            active("a", Alg::ES256, NOW - DAY),
            next("n", Alg::ES256, NOW - DAY),
            retired("r", Some(NOW - DAY), Some(NOW + 1)),
        ];
        assert_eq!(plan(&keys, NOW, &policy(Alg::ES256)), vec![]);
        let published: Vec<&str> = published(&keys, NOW).map(|k| k.kid.as_str()).collect();
        assert_eq!(published, ["a", "n", "r"]);
    }

    #[test]
    fn retired_key_drops_once_its_last_token_has_expired() {
        let keys = [
            active("a", Alg::ES256, NOW - DAY),
            next("n", Alg::ES256, NOW - DAY),
            retired("expired", Some(NOW - DAY), Some(NOW - 1)),
            retired("expires-now", Some(NOW - DAY), Some(NOW)),
            retired("never-signed", Some(NOW - DAY), None),
            retired("no-retired-at", None, None),
        ];
        let (actions, after) = run(&keys, NOW, &policy(Alg::ES256));
        assert_eq!(
            actions,
            vec![
                KeyAction::Drop { kid: "expired".into() },
                KeyAction::Drop { kid: "expires-now".into() },
                KeyAction::Drop { kid: "never-signed".into() },
            ]
        );
        assert!(after.iter().any(|k| k.kid == "no-retired-at"));
        let published: Vec<&str> = published(&keys, NOW).map(|k| k.kid.as_str()).collect();
        assert_eq!(published, ["a", "n"]);
    }

    #[test]
    fn scheduled_rotation_can_be_disabled() {
        let keys = [active("a", Alg::ES256, NOW - 1000 * DAY), next("n", Alg::ES256, NOW - DAY)];
        for every in [None, Some(0), Some(-5)] {
            let p = RotationPolicy { rotate_every_secs: every, ..policy(Alg::ES256) };
            assert_eq!(plan(&keys, NOW, &p), vec![], "{every:?}");
        }
    }

    #[test]
    fn corrupt_metadata_with_two_active_and_two_next_keys_is_repaired() {
        let keys = [
            active("old", Alg::ES256, NOW - 2 * DAY),
            active("new", Alg::ES256, NOW - DAY),
            next("n1", Alg::ES256, NOW - 2 * DAY),
            next("n2", Alg::ES256, NOW - DAY),
        ];
        let (actions, after) = run(&keys, NOW, &policy(Alg::ES256));
        assert_eq!(actions, vec![KeyAction::Retire { kid: "old".into() }, KeyAction::Drop { kid: "n1".into() }]);
        assert_eq!(kid_of(&after, KeyState::Active), "new");
        assert_eq!(kid_of(&after, KeyState::Next), "n2");
    }

    #[test]
    fn a_year_of_daily_checks_rotates_every_period_and_keeps_the_invariants() {
        let p = policy(Alg::ES256);
        let mut keys = Vec::new();
        let mut rotations = 0;
        for day in 0..365 {
            let now = NOW + day * DAY;
            // Each active key signs tokens that live for two days.
            for k in keys.iter_mut().filter(|k: &&mut KeyMeta| k.state == KeyState::Active) {
                k.last_token_expires_at = Some(now + 2 * DAY);
            }
            let (actions, after) = run(&keys, now, &p);
            rotations += actions.iter().filter(|a| matches!(a, KeyAction::Retire { .. })).count();
            keys = after;
            assert!(keys.len() <= 4, "old keys pile up on day {day}: {keys:#?}");
        }
        assert_eq!(rotations, 12, "365 days / 30");
    }

    /// Random, often inconsistent, key sets and policies: every plan must apply step by step
    /// without breaking the database's invariants and leave the keys settled.
    #[test]
    fn random_key_sets_always_settle() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut rand = move |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        let states = [KeyState::Next, KeyState::Active, KeyState::Retired];
        for case in 0..2000 {
            let keys: Vec<KeyMeta> = (0..rand(6))
                .map(|i| {
                    let state = states[rand(3) as usize];
                    let created_at = NOW - rand(100) as i64 * DAY;
                    KeyMeta {
                        kid: format!("k{case}-{i}"),
                        alg: Alg::ALL[rand(3) as usize],
                        state,
                        created_at,
                        activated_at: (state != KeyState::Next && rand(5) > 0).then_some(created_at),
                        retired_at: (state == KeyState::Retired && rand(5) > 0).then_some(created_at + DAY),
                        last_token_expires_at: (state != KeyState::Next && rand(3) > 0)
                            .then(|| NOW + rand(5) as i64 * DAY - 2 * DAY),
                    }
                })
                .collect();
            let p = RotationPolicy {
                alg: Alg::ALL[rand(3) as usize],
                rotate_every_secs: [None, Some(30 * DAY), Some(DAY)][rand(3) as usize],
                force: rand(4) == 0,
                min_published_secs: CACHE,
            };
            let (_, after) = run(&keys, NOW, &p);
            for k in &keys {
                if k.may_be_needed(NOW) {
                    assert!(after.iter().any(|a| a.kid == k.kid), "dropped a key that may be needed: {k:?}");
                }
            }
        }
    }
}
