//! The store interface stays backend-neutral (issue 8, step 1): nothing outside `src/store/`
//! names a SQLite type, and the SQL the store runs keeps to the rules of `src/store/db.rs`, so a
//! PostgreSQL backend can run the same text.
#![allow(clippy::unwrap_used)]

use std::path::Path;

mod sources;

use sources::rust_files;

/// (file relative to the crate, line number, line) for every non-comment line under `src/`.
fn source_lines() -> Vec<(String, usize, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let name = file.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
        for (n, line) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
            if !line.trim_start().starts_with("//") {
                out.push((name.clone(), n + 1, line.to_owned()));
            }
        }
    }
    out
}

/// True when `line` calls `name(…)` as a SQL function with two or more arguments (a method call
/// `x.max(y)` or a path `cmp::max(a, b)` is Rust, not SQL).
fn calls_with_two_args(line: &str, name: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    let pattern = format!("{name}(");
    let bytes = lower.as_bytes();
    let mut from = 0;
    while let Some(found) = lower[from..].find(&pattern) {
        let start = from + found;
        from = start + pattern.len();
        let before = lower[..start].trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
        if before.len() != start || before.ends_with('.') || before.ends_with("::") {
            continue;
        }
        let mut depth = 0;
        for &b in &bytes[from..] {
            match b {
                b'(' => depth += 1,
                b')' if depth == 0 => break,
                b')' => depth -= 1,
                b',' if depth == 0 => return true,
                _ => {}
            }
        }
    }
    false
}

#[test]
fn nothing_outside_the_store_names_a_sqlite_or_pool_type() {
    let offenders: Vec<String> = source_lines()
        .into_iter()
        .filter(|(file, _, line)| {
            !file.starts_with("src/store/") && (line.contains("rusqlite") || line.contains("r2d2"))
        })
        .map(|(file, n, line)| format!("{file}:{n}: {}", line.trim()))
        .collect();
    assert!(offenders.is_empty(), "backend types outside src/store:\n{}", offenders.join("\n"));
}

#[test]
fn store_sql_uses_no_sqlite_only_idioms() {
    let banned = ["insert or ignore", "insert or replace", "last_insert_rowid"];
    let offenders: Vec<String> = source_lines()
        .into_iter()
        .filter(|(_, _, line)| {
            let lower = line.to_ascii_lowercase();
            banned.iter().any(|b| lower.contains(b))
                || calls_with_two_args(line, "max")
                || calls_with_two_args(line, "min")
        })
        .map(|(file, n, line)| format!("{file}:{n}: {}", line.trim()))
        .collect();
    assert!(
        offenders.is_empty(),
        "SQL that will not run on PostgreSQL (see src/store/db.rs):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_portability_checks_recognise_what_they_refuse() {
    assert!(calls_with_two_args("last_authorized_at = max(last_authorized_at, excluded.last_authorized_at),", "max"));
    assert!(calls_with_two_args("SELECT MIN(a, coalesce(b, 0))", "min"));
    assert!(!calls_with_two_args("SELECT max(expires_at) FROM issued_tokens", "max"));
    assert!(!calls_with_two_args("pair.last_seen = pair.last_seen.max(row.last_authorized_at);", "max"));
    assert!(!calls_with_two_args("std::cmp::max(a, b)", "max"));
    assert!(!calls_with_two_args("let wmax(a, b)", "max"));
}
