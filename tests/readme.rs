//! The README runs as written. Every fenced block marked by an HTML comment on the line before its
//! opening fence is part of one shell session against a fresh `jobtoken serve --demo`:
//!
//! - `<!-- readme-test -->` before a ```` ```sh ```` block: the block runs, in README order, in one
//!   `bash -euo pipefail` session that starts with the demo's `export` lines, with the debug
//!   binary first on `PATH` (the README tells the reader to put `target/release` there), the
//!   interop venv's `python3` (PyJWT) next, and `node_modules` holding `jose`.
//! - `<!-- readme-test: save FILE -->` before any block: the block is saved as `FILE` in the
//!   session's directory, for a later block to run.
//!
//! A comment showing JSON after a command is its expected output: every `"key":value` pair in it
//! must appear in that block's output, in order (`…` inside a string stands for the rest of it;
//! whitespace after `:` and `,` is ignored). Blocks that start servers stay unmarked.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{cli_in, interop_dir, interop_python, interop_setup, temp_dir, Auth, Server, ADMIN};

const MARK: &str = "<!-- readme-test";

#[derive(Debug, PartialEq)]
enum Action {
    Run,
    Save(String),
}

#[derive(Debug)]
struct Block {
    /// README line of the opening fence (1-based).
    line: usize,
    lang: String,
    action: Action,
    text: String,
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The marked blocks, in README order, their text de-indented by their fence's indentation.
fn marked_blocks(readme: &str) -> Vec<Block> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(rest) = lines[i].trim().strip_prefix(MARK) else {
            i += 1;
            continue;
        };
        let at = i + 1;
        let rest = rest.strip_suffix("-->").unwrap_or_else(|| panic!("README line {at}: unclosed marker")).trim();
        let action = match rest.strip_prefix(':').map(str::trim) {
            None if rest.is_empty() => Action::Run,
            Some(what) => match what.strip_prefix("save ") {
                Some(file) => Action::Save(file.trim().to_owned()),
                None => panic!("README line {at}: unknown marker {what:?}"),
            },
            None => panic!("README line {at}: unknown marker {rest:?}"),
        };
        let fence = lines.get(i + 1).unwrap_or_else(|| panic!("README line {at}: marker without a block"));
        let indent = fence.len() - fence.trim_start().len();
        let lang = fence
            .trim_start()
            .strip_prefix("```")
            .unwrap_or_else(|| panic!("README line {at}: the marker must be right before a ``` fence"))
            .trim()
            .to_owned();
        let mut text = String::new();
        let mut j = i + 2;
        loop {
            let line = lines.get(j).unwrap_or_else(|| panic!("README line {}: unclosed block", at + 1));
            if line.trim() == "```" {
                break;
            }
            let strip = line.len().min(indent).min(line.len() - line.trim_start().len());
            text.push_str(&line[strip..]);
            text.push('\n');
            j += 1;
        }
        blocks.push(Block { line: at + 1, lang, action, text });
        i = j + 1;
    }
    blocks
}

/// A shell line split into its code and its comment (a `#` outside quotes that starts a word).
fn split_comment(line: &str) -> (&str, Option<&str>) {
    let (mut single, mut double, mut prev) = (false, false, ' ');
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single && prev != '\\' => double = !double,
            '#' if !single && !double && prev.is_whitespace() => return (&line[..i], Some(&line[i + 1..])),
            _ => {}
        }
        prev = c;
    }
    (line, None)
}

/// The comments of a shell block; a comment line right after a comment continues it (joined
/// with one space).
fn comments(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut continues = false;
    for line in text.lines() {
        match split_comment(line) {
            (code, Some(comment)) if code.trim().is_empty() && continues => {
                let last = out.last_mut().unwrap();
                last.push(' ');
                last.push_str(comment.trim());
            }
            (_, Some(comment)) => {
                out.push(comment.trim().to_owned());
                continues = true;
            }
            (_, None) => continues = false,
        }
    }
    out
}

/// Reads a JSON string literal starting at `s[0] == '"'`: (its content, the rest after it, whether
/// it was cut by `…`).
fn string_at(s: &str) -> Option<(&str, &str, bool)> {
    let body = &s[1..];
    let mut prev = ' ';
    for (i, c) in body.char_indices() {
        if c == '"' && prev != '\\' {
            let content = &body[..i];
            return Some(match content.find('…') {
                Some(cut) => (&content[..cut], &body[i + 1..], true),
                None => (content, &body[i + 1..], false),
            });
        }
        prev = c;
    }
    None
}

/// The `"key":value` needles of the JSON an expectation comment shows, in order.
fn needles(comment: &str) -> Vec<String> {
    let Some(start) = comment.find('{') else { return Vec::new() };
    let mut rest = &comment[start..];
    let mut out = Vec::new();
    while let Some(q) = rest.find('"') {
        rest = &rest[q..];
        let Some((key, after, _)) = string_at(rest) else { break };
        rest = after;
        let Some(value) = rest.trim_start().strip_prefix(':') else { continue };
        let value = value.trim_start();
        if value.starts_with('"') {
            let Some((text, after, cut)) = string_at(value) else { break };
            out.push(match cut {
                true => format!("\"{key}\":\"{text}"),
                false => format!("\"{key}\":\"{text}\""),
            });
            rest = after;
        } else if value.starts_with('[') {
            let end = value.find(']').map_or(value.len(), |e| e + 1);
            out.push(format!("\"{key}\":{}", &value[..end]));
            rest = &value[end..];
        } else {
            let end = value.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-')).unwrap_or(value.len());
            if end > 0 {
                out.push(format!("\"{key}\":{}", &value[..end]));
            }
            rest = &value[end..];
        }
    }
    out
}

/// Output with the whitespace after `:` and `,` between JSON tokens removed (pretty and Python
/// `json.dumps` output compare like compact JSON).
fn normalized(output: &str) -> String {
    output.replace("\": ", "\":").replace(", \"", ",\"")
}

/// The `export` lines among what a demo server printed, as `(name, line)`.
fn exports(printed: &[String]) -> Vec<(String, String)> {
    printed
        .iter()
        .filter_map(|l| l.strip_prefix("export ").map(|rest| (rest.split('=').next().unwrap().to_owned(), l.clone())))
        .collect()
}

fn export_value(printed: &[String], name: &str) -> String {
    let prefix = format!("export {name}=");
    let line =
        printed.iter().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {prefix} in {printed:#?}"));
    line.trim_matches('\'').to_owned()
}

/// The directory of the debug binary, for `PATH`.
fn binary_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_jobtoken")).parent().unwrap().to_owned()
}

/// Runs every marked block of the README in `work` after the `export` lines of `printed` (what a
/// demo server printed); returns each run block with its output.
fn run_readme(printed: &[String], work: &Path) -> Vec<(Block, String)> {
    let blocks = marked_blocks(&readme());
    let mut script = String::new();
    for (_, line) in exports(printed) {
        script.push_str(&line);
        script.push('\n');
    }
    let mut run = Vec::new();
    for block in blocks {
        match &block.action {
            Action::Save(file) => std::fs::write(work.join(file), &block.text).unwrap(),
            Action::Run => {
                assert_eq!(block.lang, "sh", "README line {}: only sh blocks run", block.line);
                script.push_str(&format!("printf '\\n@@readme block {}@@\\n'\n", run.len()));
                script.push_str(&block.text);
                run.push(block);
            }
        }
    }
    std::fs::write(work.join("readme.sh"), &script).unwrap();
    std::os::unix::fs::symlink(interop_dir().join("node_modules"), work.join("node_modules")).unwrap();
    let venv_bin = interop_python().parent().unwrap().to_owned();
    let path = format!("{}:{}:{}", binary_dir().display(), venv_bin.display(), std::env::var("PATH").unwrap());
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "readme.sh"])
        .current_dir(work)
        .env_clear()
        .env("PATH", path)
        .env("HOME", work)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut outputs: Vec<String> = stdout.split("@@readme block ").skip(1).map(str::to_owned).collect();
    if !out.status.success() {
        let failed = run.get(outputs.len().saturating_sub(1)).map_or(0, |b| b.line);
        panic!("the README block at line {failed} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    }
    assert_eq!(outputs.len(), run.len(), "every marked block ran:\n{stdout}");
    for (i, o) in outputs.iter_mut().enumerate() {
        *o = o.strip_prefix(&format!("{i}@@\n")).unwrap().to_owned();
    }
    run.into_iter().zip(outputs).collect()
}

#[test]
fn the_readmes_walk_through_worked_example_and_verification_snippets_run_verbatim_against_the_demo() {
    interop_setup();
    let (server, printed) = Server::start_demo(temp_dir(), None);
    let work = temp_dir();
    let ran = run_readme(&printed, &work);
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for (block, output) in &ran {
        let output = normalized(output);
        let mut pos = 0;
        for needle in comments(&block.text).iter().flat_map(|c| needles(c)) {
            match output[pos..].find(&needle) {
                Some(at) => pos += at + needle.len(),
                None => {
                    failures.push(format!("README line {}: expected {needle} (in order) in:\n{output}", block.line))
                }
            }
            checked.push(needle);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The story the README tells, so that losing an expectation comment is noticed too.
    for needle in [
        r#""active":true"#,
        r#""active":false"#,
        r#""allowed":false"#,
        r#""allowed":true"#,
        r#""granted_scopes":["read_package_registry"]"#,
        r#""project_path":"grp/deploy""#,
    ] {
        assert!(checked.iter().any(|c| c == needle), "no README block expects {needle}; checked: {checked:#?}");
    }
    assert!(ran.iter().any(|(b, _)| b.text.contains("python3 verify.py")), "the Python snippet runs");
    assert!(ran.iter().any(|(b, _)| b.text.contains("node verify.mjs")), "the Node snippet runs");
    drop(server);
    let _ = std::fs::remove_dir_all(work);
}

/// Variables a shell line reads (`$NAME`, `${NAME}`).
fn reads(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(d) = rest.find('$') {
        rest = &rest[d + 1..];
        let name_start = rest.strip_prefix('{').unwrap_or(rest);
        let end = name_start.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(name_start.len());
        let name = &name_start[..end];
        if name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            out.push(name.to_owned());
        }
    }
    out
}

/// Variables a shell line assigns (`NAME=…` or `export NAME=…` starting a command), with whether
/// it exports them.
fn assigns(code: &str) -> Vec<(String, bool)> {
    code.split([';', '&'])
        .filter_map(|segment| {
            let segment = segment.trim();
            let (exported, segment) = match segment.strip_prefix("export ") {
                Some(rest) => (true, rest.trim_start()),
                None => (false, segment),
            };
            let (name, _) = segment.split_once('=')?;
            let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            valid.then(|| (name.to_owned(), exported))
        })
        .collect()
}

/// Environment variables a saved Python or JavaScript block reads.
fn env_reads(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (open, close) in [("os.environ[\"", "\""), ("process.env.", "")] {
        let mut rest = text;
        while let Some(at) = rest.find(open) {
            rest = &rest[at + open.len()..];
            let end = match close {
                "" => rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len()),
                _ => rest.find(close).unwrap_or(rest.len()),
            };
            out.push(rest[..end].to_owned());
        }
    }
    out
}

#[test]
fn the_demo_exports_every_variable_the_readmes_blocks_use_and_prints_the_admin_token_it_generated() {
    let (server, printed) = Server::start_demo(temp_dir(), None);
    let exported: Vec<String> = exports(&printed).into_iter().map(|(name, _)| name).collect();
    for name in
        ["JT", "ADMIN", "RUNNER", "REGISTRY", "MAINTAINER_PAT", "APP_ID", "DEPLOY_ID", "JOB_ID", "DEPLOY_JOB_ID"]
    {
        assert!(exported.iter().any(|e| e == name), "the demo exports {name}: {printed:#?}");
    }
    // The admin token generated by this start is the one exported, and it works.
    let generated = printed
        .iter()
        .position(|l| l.starts_with("Generated admin token"))
        .map(|i| printed[i + 1].trim().to_owned())
        .expect("the generated admin token is printed");
    assert!(generated.starts_with("jtadm_"), "{generated}");
    assert_eq!(export_value(&printed, "ADMIN"), generated);
    assert_eq!(server.get("/api/v1/settings", Auth::Bearer(&generated)).status, 200);
    assert_eq!(export_value(&printed, "JT"), server.base);

    // Every variable a marked block reads is exported by the demo or set by an earlier line.
    let (mut set, mut env) = (exported.clone(), exported.clone());
    set.extend(["PATH", "HOME", "PWD"].map(String::from));
    let mut missing = Vec::new();
    for block in marked_blocks(&readme()) {
        if block.action != Action::Run {
            for name in env_reads(&block.text) {
                if !env.contains(&name) {
                    missing.push(format!(
                        "README line {}: {} reads ${name}, which nothing exports",
                        block.line, block.lang
                    ));
                }
            }
            continue;
        }
        for line in block.text.lines() {
            let (code, _) = split_comment(line);
            for name in reads(code) {
                if !set.contains(&name) {
                    missing.push(format!(
                        "README line {}: ${name} is neither exported by the demo nor set before",
                        block.line
                    ));
                }
            }
            for (name, exported) in assigns(code) {
                if exported {
                    env.push(name.clone());
                }
                set.push(name);
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn a_configured_admin_token_is_referenced_in_the_demo_exports_never_echoed() {
    let (_server, printed) = Server::start_demo(temp_dir(), Some(ADMIN));
    assert!(printed.iter().any(|l| l == "export ADMIN=\"$JOBTOKEN_ADMIN_TOKEN\""), "{printed:#?}");
    assert!(!printed.iter().any(|l| l.contains(ADMIN)), "the configured admin token was printed: {printed:#?}");
}

#[test]
fn loading_the_demo_again_on_the_same_database_adds_nothing_and_prints_what_it_can() {
    let (server, first) = Server::start_demo(temp_dir(), Some(ADMIN));
    let out = cli_in(&server.dir, &["demo"], &[("JOBTOKEN_ADMIN_TOKEN", ADMIN)]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    assert!(again[0].starts_with("Demo data exists already"), "{again:#?}");
    for name in ["APP_ID", "DEPLOY_ID"] {
        assert_eq!(export_value(&again, name), export_value(&first, name));
    }
    assert!(again.iter().any(|l| l == "export ADMIN=\"$JOBTOKEN_ADMIN_TOKEN\""), "{again:#?}");
    assert!(!again.iter().any(|l| l.starts_with("export RUNNER=")), "no secret can be shown again: {again:#?}");
    // Nothing was added: no third job, and the first demo's credentials still work.
    let next_job = export_value(&first, "DEPLOY_JOB_ID").parse::<i64>().unwrap() + 1;
    assert_eq!(server.get(&format!("/api/v1/jobs/{next_job}"), Auth::Admin).status, 404);
    let runner = export_value(&first, "RUNNER");
    let (id, secret) = runner.split_once(':').unwrap();
    let job = export_value(&first, "JOB_ID");
    let minted =
        server.form("/oauth/token", Auth::Basic(id, secret), &[("grant_type", "client_credentials"), ("job_id", &job)]);
    assert_eq!(minted.status, 200, "{}", minted.text);

    // A restart with --demo on the same database starts and says the same.
    let dir = server.stop();
    let (_server, restarted) = Server::start_demo(dir, Some(ADMIN));
    assert!(restarted.iter().any(|l| l.starts_with("Demo data exists already")), "{restarted:#?}");
}

#[test]
fn a_database_whose_names_are_taken_by_other_data_refuses_the_demo_naming_them_and_writes_nothing() {
    let s = Server::start();
    s.admin("POST", "/api/v1/groups", serde_json::json!({"path": "grp"}));
    let out = cli_in(&s.dir, &["demo"], &[("JOBTOKEN_ADMIN_TOKEN", ADMIN)]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot load the demo data, nothing was written") && stderr.contains("grp"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "no export for a demo that does not exist: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The users the demo creates before its group are not left behind.
    let retry = s.json("POST", "/api/v1/users", Auth::Admin, serde_json::json!({"username": "demo-developer"}));
    assert_eq!(retry.status, 201, "{}", retry.text);
}
