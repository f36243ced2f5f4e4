//! The web console in a real browser (issue 10, point 8): Debian's Chromium, headless, driven by
//! Playwright (`tests/browser/console.mjs`) against the real server. The script checks, each
//! scenario by name: a Maintainer admits a group for two scopes and the "Why?" panel flips from
//! denied to allowed; a Developer cannot change anything; a form posted without its CSRF token is
//! refused; a session dies when its PAT is revoked; every page passes axe-core with no serious or
//! critical violation (the project page at phone width too); the admin signs in and uses every
//! admin page: a rotation refused by the guard shows its reason, the audit trail filtered and on
//! page 2, a runner registered whose secret is shown once (a reload re-posts and is refused) and
//! authenticates at `/oauth/token`. It saves screenshots to
//! `target/browser-screenshots/`; with `JOBTOKEN_UPDATE_SCREENSHOTS=1` this test copies them to
//! `tests/browser/screenshots/` (the README shows them).
//!
//! `tests/browser/setup.sh` installs Chromium (apt) and the pinned npm packages on first use;
//! later runs take well under a second.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{group, group_member, job_for, project, project_member, runner, user, Auth, Server};
use serde_json::json;

const MAINTAINER: i64 = 40;
const DEVELOPER: i64 = 30;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Runs `tests/browser/setup.sh`; panics with its output when it fails.
fn setup() {
    let started = Instant::now();
    let out =
        Command::new("bash").arg(browser_dir().join("setup.sh")).output().expect("running tests/browser/setup.sh");
    eprintln!("browser setup took {:.1}s", started.elapsed().as_secs_f64());
    assert!(
        out.status.success(),
        "tests/browser/setup.sh failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A personal access token for `user` and the admin API path that revokes it.
fn pat(s: &Server, user: i64, name: &str) -> (String, String) {
    let path = format!("/api/v1/users/{user}/personal_access_tokens");
    let res = s.json("POST", &path, Auth::Admin, json!({"name": name}));
    assert_eq!(res.status, 201, "{}", res.text);
    (res.json["token"].as_str().unwrap().to_owned(), format!("{path}/{}", res.json["id"]))
}

#[test]
fn the_console_works_in_a_real_browser() {
    setup();
    let s = Server::start();
    // `team/app` (private, the page under test) in group `team`; `other/src`, whose jobs want in.
    let team = group(&s, "team", None);
    let other = group(&s, "other", None);
    let app = project(&s, "app", team, json!({"visibility": "private"}));
    let src = project(&s, "src", other, json!({"visibility": "private"}));
    let maintainer = user(&s, "maria");
    let developer = user(&s, "dev");
    group_member(&s, team, maintainer, MAINTAINER);
    group_member(&s, other, maintainer, DEVELOPER);
    project_member(&s, app, developer, DEVELOPER);
    project_member(&s, src, developer, DEVELOPER);
    let (maintainer_pat, _) = pat(&s, maintainer, "browser");
    let (revoked_pat, revoke_path) = pat(&s, maintainer, "browser-revoked");
    let (developer_pat, _) = pat(&s, developer, "browser");
    // A job token of `team/app`, for the token inspector.
    let ci = runner(&s, json!({"runner_type": "instance", "maximum_timeout": 600}));
    let job = job_for(&s, app, developer, true).to_string();
    let minted = s.form("/oauth/token", ci.auth(), &[("grant_type", "client_credentials"), ("job_id", &job)]);
    assert_eq!(minted.status, 200, "{}", minted.text);
    let job_token = minted.json["access_token"].as_str().unwrap();
    // A job for the runner the admin registers in the browser; more than a page (20) of user
    // events for the admin's audit page.
    let runner_job = job_for(&s, app, developer, false).to_string();
    for n in 1..=20 {
        user(&s, &format!("user{n:02}"));
    }

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
    let chromium = ["/usr/bin/chromium", "/usr/lib/chromium/chromium"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("tests/browser/setup.sh installs /usr/bin/chromium");
    let started = Instant::now();
    let out = Command::new("node")
        .arg(browser_dir().join("console.mjs"))
        .current_dir(browser_dir())
        .env("JT_BASE", &s.base)
        .env("JT_ADMIN_TOKEN", common::ADMIN)
        .env("JT_MAINTAINER_PAT", &maintainer_pat)
        .env("JT_DEVELOPER_PAT", &developer_pat)
        .env("JT_REVOKED_PAT", &revoked_pat)
        .env("JT_REVOKE_PATH", &revoke_path)
        .env("JT_PROJECT", "team/app")
        .env("JT_PROJECT_ID", app.to_string())
        .env("JT_GROUP", "team")
        .env("JT_SOURCE_GROUP", "other")
        .env("JT_SOURCE_PROJECT", "other/src")
        .env("JT_JOB_TOKEN", job_token)
        .env("JT_RUNNER_JOB", &runner_job)
        .env("JT_SCREENSHOTS", &shots)
        .env("JT_CHROMIUM", chromium)
        .output()
        .expect("running node tests/browser/console.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}browser checks took {:.1}s", started.elapsed().as_secs_f64());
    assert!(out.status.success(), "the browser checks failed ({}):\n{stdout}{stderr}", out.status);
    assert!(stdout.contains("8/8 browser checks passed"), "every check ran:\n{stdout}");

    // What the browser did, as the admin API sees it: the one group entry the Maintainer added,
    // for exactly the two scopes; nothing from the refused posts.
    let scope = format!("/api/v1/projects/{app}/job_token_scope");
    let groups = s.admin("GET", &format!("{scope}/groups_allowlist"), json!(null));
    assert_eq!(groups.as_array().unwrap().len(), 1, "{groups}");
    assert_eq!(groups[0]["source_group_id"], other);
    let mut scopes: Vec<&str> = groups[0]["scopes"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    scopes.sort_unstable();
    assert_eq!(scopes, ["read_api", "read_registry"]);
    assert_eq!(s.admin("GET", &format!("{scope}/allowlist"), json!(null)), json!([]));
    let settings = s.admin("GET", &scope, json!(null));
    assert_eq!(settings["inbound_setting"], json!(null), "{settings}");
    // The revoked PAT signs nobody in any more.
    let login = s.form("/ui/login", Auth::None, &[("token", &revoked_pat)]);
    assert_eq!(login.status, 401);

    for shot in ["project-page.png", "project-page-phone.png", "why-denied.png", "why-allowed.png", "admin-keys.png"] {
        let saved = shots.join(shot);
        assert!(std::fs::metadata(&saved).map(|m| m.len() > 1000).unwrap_or(false), "{} saved", saved.display());
        if std::env::var_os("JOBTOKEN_UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
            let kept = browser_dir().join("screenshots");
            std::fs::create_dir_all(&kept).unwrap();
            std::fs::copy(&saved, kept.join(shot)).unwrap();
        }
    }
}
