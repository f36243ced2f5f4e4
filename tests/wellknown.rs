//! Public verification material as verifiers consume it: the JWKS with HTTP caching (RFC 9111
//! `Cache-Control`, RFC 9110 strong ETags and conditional GET) and CORS, and the RFC 8414 / OIDC
//! discovery documents.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{Auth, Res, Server};
use serde_json::{json, Value};

const JWKS_URLS: [&str; 2] = ["/.well-known/jwks.json", "/oauth/discovery/keys"];
const DISCOVERY_URLS: [&str; 2] = ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"];

fn get_jwks(s: &Server, path: &str, if_none_match: Option<&str>) -> Res {
    match if_none_match {
        Some(tag) => s.get_with(path, Auth::None, &[("If-None-Match", tag)]),
        None => s.get(path, Auth::None),
    }
}

fn etag(res: &Res) -> String {
    res.header("etag").unwrap_or_else(|| panic!("an ETag: {:?}", res.headers)).to_owned()
}

/// `max-age` of a `Cache-Control: public, max-age=N` header.
fn max_age(res: &Res) -> u64 {
    let cc = res.header("cache-control").unwrap_or_else(|| panic!("a Cache-Control: {:?}", res.headers));
    let directives: Vec<&str> = cc.split(',').map(str::trim).collect();
    assert!(directives.contains(&"public"), "{cc}");
    assert!(!directives.iter().any(|d| *d == "no-store" || *d == "no-cache" || *d == "private"), "{cc}");
    directives
        .iter()
        .find_map(|d| d.strip_prefix("max-age="))
        .unwrap_or_else(|| panic!("max-age in {cc}"))
        .parse()
        .unwrap()
}

#[test]
fn the_jwks_is_cacheable_with_a_strong_etag_and_open_to_browsers() {
    let s = Server::start();
    let first = get_jwks(&s, JWKS_URLS[0], None);

    for path in JWKS_URLS {
        let res = get_jwks(&s, path, None);
        assert_eq!(res.status, 200, "{path}: {}", res.text);
        let content_type = res.header("content-type").unwrap();
        assert_eq!(content_type.split(';').next().unwrap().trim(), "application/jwk-set+json", "{path}");
        let age = max_age(&res);
        assert!(age > 0 && age < 86_400, "{path}: max-age={age} must be far below the rotation period");
        let tag = etag(&res);
        assert!(!tag.starts_with("W/"), "{path}: a strong ETag, not {tag}");
        assert!(tag.len() > 2 && tag.starts_with('"') && tag.ends_with('"'), "{path}: a quoted entity-tag: {tag}");
        assert_eq!(res.header("access-control-allow-origin"), Some("*"), "{path}");
        assert!(!res.json["keys"].as_array().unwrap().is_empty(), "{path}: {}", res.text);
        assert_eq!(res.text, first.text, "{path} serves the same set");
        assert_eq!(tag, etag(&first), "{path} has the same ETag");
    }
}

#[test]
fn a_matching_if_none_match_gets_304_without_a_body() {
    let s = Server::start();
    let tag = etag(&get_jwks(&s, JWKS_URLS[0], None));

    for path in JWKS_URLS {
        for header in [tag.clone(), format!("\"other\", {tag}"), "*".to_owned()] {
            let res = get_jwks(&s, path, Some(&header));
            assert_eq!(res.status, 304, "{path} If-None-Match: {header}");
            assert!(res.text.is_empty(), "{path}: a 304 has no body: {:?}", res.text);
            assert_eq!(res.header("etag"), Some(tag.as_str()), "{path}: 304 repeats the ETag");
            assert!(max_age(&res) > 0, "{path}: 304 repeats Cache-Control");
        }
        let res = get_jwks(&s, path, Some("\"something-else\""));
        assert_eq!(res.status, 200, "{path}");
        assert!(res.json["keys"].is_array());
    }
}

/// RFC 9110 §13.1.2: "A recipient MUST use the weak comparison function when comparing
/// entity tags for If-None-Match" — `W/"x"` matches `"x"` (proxies that compress weaken ETags).
#[test]
fn if_none_match_uses_the_weak_comparison() {
    let s = Server::start();
    let tag = etag(&get_jwks(&s, JWKS_URLS[0], None));

    let res = get_jwks(&s, JWKS_URLS[0], Some(&format!("W/{tag}")));

    assert_eq!(res.status, 304, "If-None-Match: W/{tag} matches ETag {tag}");
}

#[test]
fn rotating_keys_changes_the_etag_and_a_stale_one_gets_the_new_set() {
    let s = Server::start();
    let before = get_jwks(&s, JWKS_URLS[0], None);

    s.admin("POST", "/api/v1/keys/rotate?force=true", Value::Null);

    for path in JWKS_URLS {
        let res = get_jwks(&s, path, Some(&etag(&before)));
        assert_eq!(res.status, 200, "{path}: the old ETag no longer matches");
        assert_ne!(etag(&res), etag(&before), "{path}");
        assert_ne!(res.text, before.text, "{path}");
        assert_eq!(get_jwks(&s, path, Some(&etag(&res))).status, 304, "{path}");
    }
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array().unwrap_or_else(|| panic!("an array: {v}")).iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

fn check_discovery(s: &Server, alg: &str) {
    let base = s.base.as_str();
    let docs: Vec<Value> = DISCOVERY_URLS
        .iter()
        .map(|path| {
            let res = s.get(path, Auth::None);
            assert_eq!(res.status, 200, "{path}: {}", res.text);
            assert!(res.header("content-type").unwrap().starts_with("application/json"), "{path}: {:?}", res.headers);
            res.json
        })
        .collect();
    assert_eq!(docs[0], docs[1], "both discovery URLs serve the same document");
    let doc = &docs[0];

    assert_eq!(doc["issuer"], base, "issuer is exactly the base URL");
    assert_eq!(doc["jwks_uri"], format!("{base}/.well-known/jwks.json"));
    assert_eq!(doc["token_endpoint"], format!("{base}/oauth/token"));
    assert_eq!(doc["introspection_endpoint"], format!("{base}/oauth/introspect"));
    assert_eq!(doc["revocation_endpoint"], format!("{base}/oauth/revoke"));
    let jwks_path = doc["jwks_uri"].as_str().unwrap().strip_prefix(base).unwrap();
    assert!(s.get(jwks_path, Auth::None).json["keys"].is_array());

    let grants = strings(&doc["grant_types_supported"]);
    assert!(grants.contains("client_credentials"), "{grants:?}");
    assert!(grants.contains("urn:ietf:params:oauth:grant-type:token-exchange"), "{grants:?}");
    let auth_methods = strings(&doc["token_endpoint_auth_methods_supported"]);
    assert!(auth_methods.contains("client_secret_basic") && auth_methods.contains("client_secret_post"));
    let scopes = strings(&doc["scopes_supported"]);
    let all: BTreeSet<String> = [
        "read_repository",
        "write_repository",
        "read_registry",
        "write_registry",
        "read_package_registry",
        "write_package_registry",
        "read_api",
        "api",
    ]
    .map(String::from)
    .into();
    assert_eq!(scopes, all);
    let claims = strings(&doc["claims_supported"]);
    for claim in ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "job_id", "project_path", "ref_protected"] {
        assert!(claims.contains(claim), "claims_supported lacks {claim}: {claims:?}");
    }
    assert!(!strings(&doc["response_types_supported"]).is_empty());
    assert!(!strings(&doc["subject_types_supported"]).is_empty());
    let algs = strings(&doc["id_token_signing_alg_values_supported"]);
    assert!(algs.contains(alg), "{alg} in {algs:?}");
    assert!(!algs.contains("none") && !algs.iter().any(|a| a.starts_with("HS")), "{algs:?}");
    assert!(strings(&doc["authorization_details_types_supported"]).contains("ci_project_access"));
}

#[test]
fn both_discovery_documents_describe_the_server() {
    let s = Server::start();
    check_discovery(&s, "RS256");
}

#[test]
fn discovery_names_the_id_token_algorithm_not_the_job_token_one() {
    let s = Server::start_with(&[("JOBTOKEN_SIGNING_ALG", "EdDSA")]);
    check_discovery(&s, "RS256");
    assert_eq!(
        s.get(DISCOVERY_URLS[0], Auth::None).json["id_token_signing_alg_values_supported"],
        json!(["RS256"]),
        "ID tokens are signed by their own family (RS256 by default), never EdDSA"
    );
    let s = Server::start_with(&[("JOBTOKEN_ID_TOKEN_SIGNING_ALG", "ES256")]);
    check_discovery(&s, "ES256");
    assert_eq!(s.get(DISCOVERY_URLS[0], Auth::None).json["id_token_signing_alg_values_supported"], json!(["ES256"]));
}
