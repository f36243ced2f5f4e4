//! Issue 7 point 12: property tests over the library crate, in the normal suite with a bounded
//! case count (`CASES`).
//!
//! - The parsers that read attacker-controlled input (the OAuth form, `authorization_details`,
//!   the compact JWS and its claims) never panic, whatever the bytes, and read back what a
//!   well-formed input says.
//! - The policy, over arbitrary settings: neither the own-project grant nor the cross-project
//!   decision grants beyond the user's rights on the project (SPEC §4.1); being in scope never
//!   gives less than being out of scope.
//! - Token exchange (`service::exchange::narrow`) never gives a child more than its parent:
//!   scope, audience, `authorization_details` and `exp`.
#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jobtoken::domain::{AccessLevel, FeatureAccess, Scope, ScopeSet, Visibility};
use jobtoken::http::form::{form_unescape, Form};
use jobtoken::keys::PublicKey;
use jobtoken::policy::{
    cross_project_grant, decide, out_of_scope_allowed, own_project_grant, rights, AllowlistLevel, CrossProjectInput,
    EntryGrant, GroupSourceEntry, Namespace, Origin, OutboundEntry, OwnGrant, Principal, ProjectFacts,
};
use jobtoken::service::exchange::{narrow, ExchangeRequest};
use jobtoken::token::details::{self, Granted, ProjectRef, Requested};
use jobtoken::token::{jws, Audience, Claims, TOKEN_TYPE};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Value};

/// Cases per property: enough to cover the small policy domains many times over, fast enough
/// for every `cargo test`.
const CASES: u32 = 256;

fn config() -> ProptestConfig {
    ProptestConfig { cases: CASES, ..ProptestConfig::default() }
}

// ---- strategies ----

/// Strings over `alphabet`, up to `max` characters.
fn text_over(alphabet: &'static str, max: usize) -> impl Strategy<Value = String> {
    vec(select(alphabet.chars().collect::<Vec<_>>()), 0..max).prop_map(String::from_iter)
}

/// Any Unicode text, up to `max` characters.
fn any_text(max: usize) -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..max).prop_map(String::from_iter)
}

fn scope_set() -> impl Strategy<Value = ScopeSet> {
    any::<u8>().prop_map(|bits| {
        Scope::ALL.into_iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).map(|(_, s)| s).collect()
    })
}

fn access_level() -> impl Strategy<Value = AccessLevel> {
    select(AccessLevel::ALL.to_vec())
}

fn facts() -> impl Strategy<Value = ProjectFacts> {
    let feature = || select(FeatureAccess::ALL.to_vec());
    (select(Visibility::ALL.to_vec()), feature(), feature(), feature()).prop_map(
        |(visibility, repository, container_registry, package_registry)| ProjectFacts {
            visibility,
            repository,
            container_registry,
            package_registry,
        },
    )
}

fn principal() -> impl Strategy<Value = Principal> {
    (any::<bool>(), option::of(access_level())).prop_map(|(active, access)| Principal { active, access })
}

fn entry_grant() -> impl Strategy<Value = EntryGrant> {
    prop_oneof![Just(EntryGrant::DefaultPermissions), scope_set().prop_map(EntryGrant::Scopes)]
}

/// An allowlist level owned by `owner`, with entries for S and for S's groups at distinct depths.
fn level(owner: Namespace) -> impl Strategy<Value = AllowlistLevel> {
    (option::of(any::<bool>()), option::of(any::<bool>()), option::of(entry_grant()), vec(entry_grant(), 0..3))
        .prop_map(move |(inbound_enabled, job_token_elevation_allowed, source_project_entry, groups)| AllowlistLevel {
            owner,
            owner_path: format!("{owner:?}"),
            inbound_enabled,
            job_token_elevation_allowed,
            source_project_entry,
            source_group_entries: groups
                .into_iter()
                .enumerate()
                .map(|(depth, grant)| GroupSourceEntry {
                    group: 100 + depth as i64,
                    depth,
                    group_path: format!("s{depth}"),
                    grant,
                })
                .collect(),
        })
}

/// A cross-project input over arbitrary settings: T (id 2) in up to three groups, S (id 1, or
/// T itself now and then).
fn cross_project_input() -> impl Strategy<Value = CrossProjectInput> {
    let levels = (level(Namespace::Project(2)), 0..=3usize).prop_flat_map(|(project, groups)| {
        let group_levels: Vec<_> = (0..groups).map(|i| level(Namespace::Group(10 + i as i64))).collect();
        (Just(project), group_levels).prop_map(|(project, groups)| {
            let mut all = vec![project];
            all.extend(groups);
            all
        })
    });
    let outbound = vec(scope_set(), 0..3).prop_map(|sets| {
        sets.into_iter()
            .enumerate()
            .map(|(i, scopes)| OutboundEntry {
                target: Namespace::Group(10 + i as i64),
                target_path: format!("t{i}"),
                scopes,
            })
            .collect::<Vec<_>>()
    });
    (
        prop_oneof![9 => Just(1i64), 1 => Just(2i64)],
        facts(),
        levels,
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        principal(),
        outbound,
    )
        .prop_map(
            |(source, target_facts, levels, (enforce, elevation, protected, outbound_enabled), user, outbound)| {
                CrossProjectInput {
                    source,
                    source_path: "s/src".into(),
                    target: 2,
                    target_path: "t/target".into(),
                    target_facts,
                    levels,
                    enforce_job_token_allowlist: enforce,
                    instance_elevation_allowed: elevation,
                    user,
                    username: "dev".into(),
                    ref_protected: protected,
                    outbound_enabled,
                    outbound_entries: outbound,
                }
            },
        )
}

/// JSON values of bounded depth, for header and claims members.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        any_text(12).prop_map(Value::from),
        select(vec!["ES256", "RS256", "EdDSA", "none", "at+jwt", "k1", "api read_api"]).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::from),
            vec((select(vec!["alg", "kid", "typ", "crit", "aud", "exp", "scope", "x"]), inner), 0..4)
                .prop_map(|members| Value::Object(members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

/// The claims of a real job token.
fn sample_claims() -> Claims {
    serde_json::from_value(json!({
        "iss": "https://jt", "sub": "project_path:g/a:ref_type:branch:ref:main", "aud": ["reg", "pkg"],
        "exp": 5000, "iat": 1000, "nbf": 1000, "jti": "p", "client_id": "runner_x",
        "scope": "read_repository write_registry", "job_id": 1, "pipeline_id": 1, "project_id": 1,
        "project_path": "g/a", "namespace_id": 1, "namespace_path": "g", "user_id": 1, "user_login": "dev",
        "ref": "main", "ref_type": "branch", "ref_protected": true, "pipeline_source": "push", "sha": "",
        "runner_id": 1, "project_visibility": "private",
    }))
    .unwrap()
}

/// Compact-JWS-shaped strings: three base64url parts whose header and claims are JSON (arbitrary,
/// or real claims with one member replaced), with now and then a part corrupted.
fn jws_like() -> impl Strategy<Value = String> {
    let claims = prop_oneof![
        json_value(),
        (select(vec!["aud", "exp", "scope", "ref_type", "authorization_details", "act", "job_id"]), json_value())
            .prop_map(|(member, value)| {
                let mut claims = serde_json::to_value(sample_claims()).unwrap();
                claims[member] = value;
                claims
            }),
    ];
    let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    (json_value(), claims, vec(any::<u8>(), 0..80), option::of((0..3usize, text_over("=.+/%!é ", 3)))).prop_map(
        move |(header, claims, signature, corrupt)| {
            let mut parts = [part(header), part(claims), URL_SAFE_NO_PAD.encode(signature)];
            if let Some((which, junk)) = corrupt {
                parts[which].push_str(&junk);
            }
            parts.join(".")
        },
    )
}

fn granted(project_id: i64, actions: ScopeSet) -> Granted {
    Granted { type_: details::CI_PROJECT_ACCESS.into(), project_id, project_path: format!("g/p{project_id}"), actions }
}

/// Audience values the parents and requests draw from.
const AUDIENCES: [&str; 4] = ["reg", "pkg", "api", "other"];

fn parent_claims() -> impl Strategy<Value = Claims> {
    (
        scope_set(),
        prop::sample::subsequence(AUDIENCES.to_vec(), 1..=3),
        vec((1..6i64, scope_set()), 0..4),
        1000..10_000i64,
    )
        .prop_map(|(scope, aud, held, exp)| Claims {
            scope: scope.to_space_separated(),
            aud: Audience::from_values(aud.into_iter().map(String::from).collect()),
            authorization_details: held
                .into_iter()
                .map(|(id, actions)| serde_json::to_value(granted(id, actions)).unwrap())
                .collect(),
            exp,
            ..sample_claims()
        })
}

fn exchange_request() -> impl Strategy<Value = ExchangeRequest> {
    let wanted = (1..7i64, any::<bool>(), scope_set()).prop_map(|(id, by_path, actions)| Requested {
        project: match by_path {
            true => ProjectRef::Path(format!("g/p{id}")),
            false => ProjectRef::Id(id),
        },
        actions,
    });
    (option::of(scope_set()), prop::sample::subsequence(AUDIENCES.to_vec(), 0..=2), option::of(vec(wanted, 0..4)))
        .prop_map(|(scope, audience, details)| ExchangeRequest {
            subject_token: String::new(),
            scope,
            audience: audience.into_iter().map(String::from).collect(),
            details,
        })
}

fn scopes_of(claims: &Claims) -> ScopeSet {
    ScopeSet::parse_space_separated(&claims.scope).unwrap()
}

fn details_of(claims: &Claims) -> Vec<Granted> {
    claims.authorization_details.iter().map(|v| serde_json::from_value(v.clone()).unwrap()).collect()
}

/// The actions a token carries for `project`, read as the decision service reads them (the first
/// entry naming the project).
fn carried_for(claims: &Claims, project: i64) -> Option<ScopeSet> {
    details_of(claims).into_iter().find(|d| d.project_id == project).map(|d| d.actions)
}

fn is_subset(small: ScopeSet, big: ScopeSet) -> bool {
    small.minus(big).is_empty()
}

// ---- parsers never panic ----

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_form_parser_never_panics_on_arbitrary_bytes(body in vec(any::<u8>(), 0..512)) {
        if let Ok(form) = Form::parse(&body) {
            let _ = form.one("grant_type");
            let _ = form.required("scope");
            let _ = form.all("audience");
        }
    }

    #[test]
    fn the_form_parser_never_panics_on_form_like_text(body in text_over("ab=&%+2fFz0é", 64)) {
        let _ = Form::parse(body.as_bytes()).map(|f| f.all("a").len());
        let _ = form_unescape(&body);
    }

    #[test]
    fn the_form_parser_reads_back_every_encoded_pair(pairs in vec((select(vec!["a", "b", "scope", "é&="]), any_text(8)), 0..6)) {
        let body = serde_urlencoded::to_string(&pairs).unwrap();
        let form = Form::parse(body.as_bytes()).unwrap();
        for key in ["a", "b", "scope", "é&="] {
            let expected: Vec<&str> =
                pairs.iter().filter(|(k, v)| *k == key && !v.is_empty()).map(|(_, v)| v.as_str()).collect();
            prop_assert_eq!(form.all(key), expected);
        }
    }

    #[test]
    fn the_authorization_details_parser_never_panics_on_arbitrary_text(input in any_text(256)) {
        let _ = details::parse(&input);
    }

    #[test]
    fn the_authorization_details_parser_never_panics_on_arbitrary_json(input in json_value()) {
        let _ = details::parse(&input.to_string());
    }

    #[test]
    fn the_authorization_details_parser_reads_back_well_formed_entries(
        entries in vec((1..1000i64, any::<bool>(), scope_set().prop_filter("an action", |s| !s.is_empty())), 0..8),
    ) {
        let json: Vec<Value> = entries
            .iter()
            .map(|(id, by_path, actions)| match by_path {
                true => json!({"type": details::CI_PROJECT_ACCESS, "project_path": format!("g/p{id}"), "actions": actions}),
                false => json!({"type": details::CI_PROJECT_ACCESS, "project_id": id, "actions": actions}),
            })
            .collect();
        let parsed = details::parse(&Value::from(json).to_string()).unwrap();
        prop_assert_eq!(parsed.len(), entries.len());
        for (got, (id, by_path, actions)) in parsed.iter().zip(&entries) {
            let project = if *by_path { ProjectRef::Path(format!("g/p{id}")) } else { ProjectRef::Id(*id) };
            prop_assert_eq!(&got.project, &project);
            prop_assert_eq!(got.actions, *actions);
        }
    }

    #[test]
    fn the_token_parser_never_panics_on_arbitrary_text(token in any_text(300)) {
        let _ = jws::decode_unverified(&token);
        let _ = jws::decode_unverified_as::<Claims>(&token);
        prop_assert!(jws::verify::<PublicKey>(&token, TOKEN_TYPE, |_| None).is_err());
    }

    #[test]
    fn the_token_parser_never_panics_on_jws_shaped_input(token in jws_like()) {
        let _ = jws::decode_unverified(&token);
        let _ = jws::decode_unverified_as::<Claims>(&token);
        prop_assert!(jws::verify::<PublicKey>(&token, TOKEN_TYPE, |_| None).is_err(), "no key, no verified token");
    }

    #[test]
    fn the_token_parser_reads_back_the_claims_of_a_well_formed_token(scope in scope_set(), exp in any::<i64>(), sig in vec(any::<u8>(), 0..64)) {
        let claims = Claims { scope: scope.to_space_separated(), exp, ..sample_claims() };
        let header = json!({"alg": "ES256", "typ": TOKEN_TYPE, "kid": "k1"});
        let token = [header.to_string(), serde_json::to_string(&claims).unwrap()]
            .map(|p| URL_SAFE_NO_PAD.encode(p))
            .join(".")
            + "."
            + &URL_SAFE_NO_PAD.encode(&sig);
        let (read_header, read) = jws::decode_unverified_as::<Claims>(&token).unwrap();
        prop_assert_eq!(read_header.kid.as_deref(), Some("k1"));
        prop_assert_eq!(read, claims);
        prop_assert_eq!(jws::decode_unverified(&token).unwrap().signature, sig);
    }
}

// ---- policy over arbitrary settings ----

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_own_project_grant_never_exceeds_the_users_rights(
        project in facts(),
        user in principal(),
        configured in option::of(scope_set()),
        elevation_allowed in any::<bool>(),
        ref_protected in any::<bool>(),
        requested in option::of(scope_set()),
    ) {
        let held = rights(&user, &project);
        let granted = own_project_grant(&OwnGrant { configured, elevation_allowed, rights: held, ref_protected, requested });
        prop_assert!(is_subset(granted, held), "granted {granted:?} beyond rights {held:?}");
        if let Some(requested) = requested {
            prop_assert!(is_subset(granted, requested), "granted {granted:?} beyond the request {requested:?}");
        }
        if !user.active {
            prop_assert!(granted.is_empty(), "a blocked user holds nothing");
        }
    }

    #[test]
    fn the_cross_project_decision_never_exceeds_the_users_rights_on_the_target(input in cross_project_input()) {
        let decision = decide(&input);
        let held = rights(&input.user, &input.target_facts);
        prop_assert!(is_subset(decision.allowed, held), "allowed {:?} beyond rights {held:?}: {}", decision.allowed, decision.reason);
        if input.source == input.target || !input.user.active {
            prop_assert!(decision.allowed.is_empty(), "{}", decision.reason);
        }
    }

    #[test]
    fn being_in_scope_never_gives_less_than_being_out_of_scope(input in cross_project_input()) {
        let decision = decide(&input);
        let floor = out_of_scope_allowed(&input.target_facts, &input.user);
        if input.source != input.target {
            prop_assert!(is_subset(floor, decision.allowed), "{:?} below the out-of-scope {floor:?}: {}", decision.allowed, decision.reason);
        }
        // The same settings with every entry for S removed: if that leaves S out of scope, the
        // entries (being in scope) gave at least as much.
        let mut unlisted = input.clone();
        for level in &mut unlisted.levels {
            level.source_project_entry = None;
            level.source_group_entries.clear();
        }
        let without = decide(&unlisted);
        if !without.in_scope && decision.in_scope {
            prop_assert!(
                is_subset(without.allowed, decision.allowed),
                "listed {:?} < unlisted {:?}: {}",
                decision.allowed,
                without.allowed,
                decision.reason
            );
        }
    }
}

// ---- exchange never above its parent ----

proptest! {
    #![proptest_config(config())]

    #[test]
    fn an_exchanged_token_never_carries_more_than_its_parent(parent in parent_claims(), req in exchange_request(), now in 0..20_000i64) {
        let outside = req.audience.iter().any(|a| !parent.aud.values().contains(&a.as_str()));
        let narrowed = narrow(&parent, &req, &[], "child", now);
        if outside {
            prop_assert!(narrowed.is_err(), "an audience the parent lacks is refused");
            return Ok(());
        }
        let (child, granted) = narrowed.unwrap();
        prop_assert!(is_subset(scopes_of(&child), scopes_of(&parent)), "scope {} beyond {}", child.scope, parent.scope);
        if let Some(asked) = req.scope {
            prop_assert!(is_subset(scopes_of(&child), asked));
        }
        let parent_aud = parent.aud.values();
        prop_assert!(child.aud.values().iter().all(|a| parent_aud.contains(a)), "aud {:?} beyond {:?}", child.aud, parent.aud);
        prop_assert!(child.exp <= parent.exp, "exp {} after the parent's {}", child.exp, parent.exp);
        let held = details_of(&parent);
        for entry in details_of(&child).iter().chain(&granted) {
            let covered = held.iter().any(|h| {
                h.project_id == entry.project_id && h.project_path == entry.project_path && is_subset(entry.actions, h.actions)
            });
            prop_assert!(covered, "{entry:?} is not within the parent's {held:?}");
        }
        prop_assert_eq!(&child.sub, &parent.sub);
        prop_assert_eq!(child.project_id, parent.project_id);
        prop_assert_eq!(child.job_id, parent.job_id);
        prop_assert_eq!(child.user_id, parent.user_id);
    }

    #[test]
    fn an_exchanged_token_never_answers_online_for_more_than_its_parent(
        parent in parent_claims(),
        req in exchange_request(),
        parent_exchanged in any::<bool>(),
        live in vec(scope_set(), 6),
    ) {
        let Ok((child, _)) = narrow(&parent, &req, &[], "child", 0) else { return Ok(()) };
        let parent_origin = if parent_exchanged { Origin::Exchange } else { Origin::Runner };
        for (project, live) in (1..).zip(live) {
            let by_child = cross_project_grant(Origin::Exchange, carried_for(&child, project), live);
            let by_parent = cross_project_grant(parent_origin, carried_for(&parent, project), live);
            prop_assert!(
                is_subset(by_child, by_parent),
                "on project {project} the child answers {by_child:?}, its parent {by_parent:?}"
            );
        }
    }
}
