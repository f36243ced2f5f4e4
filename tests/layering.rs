//! The layers import inwards only (STYLE.md, "Break the cycle"): nothing under `src/service`,
//! `src/policy`, `src/store`, `src/domain`, `src/token` or `src/keys` names the HTTP edge
//! (`crate::http`) or the application assembly (`crate::app`), so use cases can be called, and
//! tested, without actix state.
#![allow(clippy::unwrap_used)]

use std::path::Path;

const INNER_LAYERS: &[&str] = &["src/service", "src/policy", "src/store", "src/domain", "src/token", "src/keys"];

mod sources;

use sources::rust_files;

/// True when `line` (outside a comment) reaches `crate::http` or `crate::app`, written out
/// (`crate::http::auth::Actor`) or in a grouped import (`use crate::{app, …}`).
fn names_the_edge(line: &str) -> bool {
    let code = line.split("//").next().unwrap_or_default();
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let outer = ["http", "app"];
    if outer.iter().any(|m| {
        ["crate::", "super::super::", "jobtoken::"].iter().any(|root| {
            let path = format!("{root}{m}");
            compact.match_indices(&path).any(|(at, _)| {
                let next = compact[at + path.len()..].chars().next();
                !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            })
        })
    }) {
        return true;
    }
    match compact.find("crate::{") {
        Some(at) => {
            let group = &compact[at + "crate::{".len()..];
            let group = &group[..group.find('}').unwrap_or(group.len())];
            group.split(',').any(|item| {
                let head = item.split("::").next().unwrap_or_default();
                outer.contains(&head) || outer.iter().any(|m| head == format!("{m}as"))
            })
        }
        None => false,
    }
}

#[test]
fn the_edge_detector_sees_plain_and_grouped_imports() {
    assert!(names_the_edge("use crate::http::auth::Actor;"));
    assert!(names_the_edge("use crate::app::AppState;"));
    assert!(names_the_edge("use crate::{app, domain::ScopeSet};"));
    assert!(names_the_edge("    state: &crate::app::AppState,"));
    assert!(!names_the_edge("use crate::domain::ScopeSet;"));
    assert!(!names_the_edge("use crate::apply::thing; // crate::http in a comment"));
    assert!(!names_the_edge("use crate::{domain, store::Db};"));
}

#[test]
fn services_policy_and_store_never_import_the_http_edge_or_the_app_state() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut offending = Vec::new();
    for layer in INNER_LAYERS {
        let mut files = Vec::new();
        rust_files(&root.join(layer), &mut files);
        assert!(!files.is_empty(), "{layer} has no sources: is the layer list out of date?");
        for file in files {
            let name = file.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            for (n, line) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
                if !line.trim_start().starts_with("//") && names_the_edge(line) {
                    offending.push(format!("{name}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(offending.is_empty(), "inner layers import the HTTP edge or the app state:\n{}", offending.join("\n"));
}

#[test]
fn no_function_returns_a_result_nested_in_a_result() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut offending = Vec::new();
    for file in files {
        let name = file.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
        for (n, line) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
            let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
            if !line.trim_start().starts_with("//") && compact.contains("Result<Result") {
                offending.push(format!("{name}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        offending.is_empty(),
        "one error enum per use case instead of Result<Result<…>> (STYLE.md):\n{}",
        offending.join("\n")
    );
}
