//! `openapi.yaml` and the mounted routes are the same set, and every documented route answers.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{Auth, Server};

/// (METHOD, path) pairs under `paths:` of openapi.yaml (two-space path keys, four-space methods).
fn documented() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    let mut out = BTreeSet::new();
    let mut in_paths = false;
    let mut current: Option<String> = None;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            in_paths = line.trim_end() == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(path) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':')) {
            if path.starts_with('/') || path.starts_with("'/") || path.starts_with("\"/") {
                current = Some(path.trim_matches(|c| c == '\'' || c == '"').to_owned());
                continue;
            }
        }
        if let Some(rest) = line.strip_prefix("    ") {
            let key = rest.trim_end().trim_end_matches(':');
            if ["get", "post", "put", "patch", "delete"].contains(&key) && rest.trim_end().ends_with(':') {
                out.insert((key.to_uppercase(), current.clone().expect("method before any path")));
            }
        }
    }
    out
}

fn mounted() -> BTreeSet<(String, String)> {
    // The web console's HTML pages (`/ui`) are not part of the API contract; they have their own
    // suite (tests/console.rs).
    jobtoken::http::ROUTES
        .iter()
        .filter(|(_, p)| *p != "/ui" && !p.starts_with("/ui/"))
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect()
}

#[test]
fn every_mounted_route_is_documented_and_every_documented_route_is_mounted() {
    let documented = documented();
    assert!(documented.len() > 20, "parsed too few operations from openapi.yaml: {documented:?}");
    let mounted = mounted();
    let undocumented: Vec<_> = mounted.difference(&documented).collect();
    let unmounted: Vec<_> = documented.difference(&mounted).collect();
    assert!(undocumented.is_empty(), "mounted but not in openapi.yaml: {undocumented:?}");
    assert!(unmounted.is_empty(), "in openapi.yaml but not mounted: {unmounted:?}");
}

#[test]
fn every_route_in_the_table_is_reachable_on_the_real_server() {
    let s = Server::start();
    for (method, path) in mounted() {
        let concrete = common::concrete(&path, "1");
        // `/api/v1` authenticates before routing: without a credential every path there is a 401.
        let res = match method.as_str() {
            "GET" => s.get(&concrete, Auth::Admin),
            m => s.raw(m, &concrete, Auth::Admin, "application/json", b"{}".to_vec()),
        };
        let message = res.json["message"].as_str().unwrap_or("");
        assert!(!message.starts_with("no route"), "{method} {path} is not routed: {}", res.text);
        assert!(res.status != 405, "{method} {path} is not routed for its method: {}", res.text);
        assert!(res.status < 500, "{method} {path} -> {} {}", res.status, res.text);
    }
}

#[test]
fn unknown_routes_get_a_json_404() {
    let s = Server::start();
    let res = s.get("/api/v1/nope", Auth::Admin);
    assert_eq!(res.status, 404);
    assert_eq!(res.json["error"], "not_found");
}
