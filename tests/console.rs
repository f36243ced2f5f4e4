//! The web console (issue 10), driven over HTTP like a browser without JavaScript: sign-in and
//! its cookie, the security headers, CSRF, a Maintainer admitting a group on the project page and
//! the "Why?" panel answering for it, a Developer refused, sessions dying with their PAT or user,
//! and escaping of hostile input.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use common::{group, project, project_member, user, Auth, Server};
use serde_json::json;

const MAINTAINER: i64 = 40;
const DEVELOPER: i64 = 30;

/// A browser without JavaScript: keeps cookies, never follows redirects.
struct Browser {
    /// The listener this browser talks to (the server's public one unless [`Browser::at`]).
    base: String,
    agent: ureq::Agent,
    cookies: HashMap<String, String>,
}

struct Page {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn set_cookies(&self) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie")).map(|(_, v)| v.as_str()).collect()
    }

    /// The value of the first hidden CSRF field on the page.
    fn csrf(&self) -> String {
        let at = self.body.find(r#"name="csrf" value=""#).expect("a CSRF field on the page");
        let rest = &self.body[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl Browser {
    fn new(server: &Server) -> Browser {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
        Browser { base: server.base.clone(), agent, cookies: HashMap::new() }
    }

    /// A browser that talks to the server's listener at `base` (the admin listener).
    fn at(server: &Server, base: &str) -> Browser {
        Browser { base: base.to_owned(), ..Browser::new(server) }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn finish(&mut self, res: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Page {
        let mut res = res.unwrap();
        let status = res.status().as_u16();
        let headers: Vec<(String, String)> =
            res.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
        for (k, v) in &headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                let pair = v.split(';').next().unwrap();
                let (name, value) = pair.split_once('=').unwrap();
                if value.is_empty() || v.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        let body = res.body_mut().read_to_string().unwrap_or_default();
        Page { status, headers, body }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn get(&mut self, path: &str) -> Page {
        let req = self.agent.get(self.url(path)).header("Cookie", self.cookie_header());
        let res = req.call();
        self.finish(res)
    }

    fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(fields).unwrap();
        let req = ureq::http::Request::builder()
            .method("POST")
            .uri(self.url(path))
            .header("Cookie", self.cookie_header())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .unwrap();
        let res = self.agent.run(req);
        self.finish(res)
    }

    fn sign_in(&mut self, token: &str) -> Page {
        let page = self.post("/ui/login", &[("token", token)]);
        assert_eq!(page.status, 303, "sign-in: {}", page.body);
        page
    }
}

/// A personal access token for `user` and its id.
fn pat(s: &Server, user: i64) -> (String, i64) {
    let res =
        s.json("POST", &format!("/api/v1/users/{user}/personal_access_tokens"), Auth::Admin, json!({"name": "ui"}));
    assert_eq!(res.status, 201, "{}", res.text);
    (res.json["token"].as_str().unwrap().to_owned(), res.json["id"].as_i64().unwrap())
}

/// `team/app` (private, the page under test), `other/src` (a project whose jobs want in), a
/// Maintainer of `team/app` who also sees `other`, and a Developer of `team/app`.
struct Fixture {
    app: i64,
    other: i64,
    maintainer: i64,
    developer: i64,
}

fn fixture(s: &Server) -> Fixture {
    let team = group(s, "team", None);
    let other = group(s, "other", None);
    let app = project(s, "app", team, json!({"visibility": "private"}));
    project(s, "src", other, json!({"visibility": "private"}));
    let maintainer = user(s, "maria");
    let developer = user(s, "dev");
    project_member(s, app, maintainer, MAINTAINER);
    common::group_member(s, other, maintainer, DEVELOPER);
    project_member(s, app, developer, DEVELOPER);
    Fixture { app, other, maintainer, developer }
}

fn groups_allowlist(s: &Server, project: i64) -> serde_json::Value {
    s.admin("GET", &format!("/api/v1/projects/{project}/job_token_scope/groups_allowlist"), json!(null))
}

#[test]
fn sign_in_sets_an_http_only_strict_session_cookie_and_a_bad_token_gets_one_plain_message() {
    let s = Server::start();
    let f = fixture(&s);
    let (token, _) = pat(&s, f.maintainer);
    let mut b = Browser::new(&s);

    let bad = b.post("/ui/login", &[("token", "jtpat_not-a-real-token")]);
    assert_eq!(bad.status, 401);
    assert!(bad.body.contains("Sign-in failed: the token is not valid."), "{}", bad.body);
    assert!(bad.set_cookies().is_empty());

    let ok = b.sign_in(&token);
    assert_eq!(ok.header("location"), Some("/ui/"));
    let cookie = ok.set_cookies().into_iter().find(|c| c.starts_with("jt_session=")).unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP with an http issuer: {cookie}");
    assert!(!cookie.contains(&token), "the cookie must not carry the PAT");
    let home = b.get("/ui/");
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.body.contains("maria") && home.body.contains("team/app"), "{}", home.body);
}

#[test]
fn the_cookie_is_secure_when_the_issuer_is_https() {
    let s = Server::start_with(&[("JOBTOKEN_ISSUER", "https://jobtoken.example")]);
    let mut b = Browser::new(&s);
    let ok = b.sign_in(common::ADMIN);
    let cookie = ok.set_cookies().into_iter().find(|c| c.starts_with("jt_session=")).unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[test]
fn every_console_page_carries_the_security_headers_and_pages_are_not_cached() {
    let s = Server::start();
    let f = fixture(&s);
    let (token, _) = pat(&s, f.maintainer);
    let mut b = Browser::new(&s);
    let login = b.get("/ui/login");
    let encoded = b.get("/%75i/login");
    assert_eq!(encoded.status, 200, "the router decodes the path");
    b.sign_in(&token);
    let pages = [login, b.get("/ui/"), b.get("/ui/projects/team/app"), b.get("/ui/projects/no/such"), encoded];
    for page in &pages {
        let csp = page.header("content-security-policy").unwrap_or_default();
        for directive in ["default-src 'none'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"] {
            assert!(csp.contains(directive), "CSP {csp:?} lacks {directive}");
        }
        assert!(!csp.contains("script-src"), "no script is allowed: {csp}");
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(page.header("cache-control"), Some("no-store"));
        assert!(!page.body.contains("<script"), "no script on the page");
    }
    assert_eq!(pages[2].status, 200, "{}", pages[2].body);
    assert_eq!(pages[3].status, 404);
    let css = b.get("/ui/assets/console.css");
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert!(css.header("cache-control").unwrap().contains("max-age=31536000"));
}

#[test]
fn pages_need_a_session_and_send_the_signed_out_to_sign_in() {
    let s = Server::start();
    let mut b = Browser::new(&s);
    for path in ["/ui/", "/ui/projects/team/app"] {
        let page = b.get(path);
        assert_eq!(page.status, 303, "{path}");
        assert_eq!(page.header("location"), Some("/ui/login"));
    }
    b.cookies.insert("jt_session".into(), "jtcs_forged".into());
    assert_eq!(b.get("/ui/").status, 303);
}

#[test]
fn a_post_without_its_csrf_token_is_refused_and_changes_nothing() {
    let s = Server::start();
    let f = fixture(&s);
    let (token, _) = pat(&s, f.maintainer);
    let mut b = Browser::new(&s);
    b.sign_in(&token);
    let page = b.get("/ui/projects/team/app");
    let add = [("kind", "group"), ("path", "other"), ("scope", "read_api")];

    let without = b.post("/ui/projects/team/app/-/add", &add);
    let mut wrong = add.to_vec();
    wrong.push(("csrf", "not-the-token"));
    let forged = b.post("/ui/projects/team/app/-/add", &wrong);
    // Another session's token does not fit this session.
    let mut other = Browser::new(&s);
    other.sign_in(common::ADMIN);
    let others_csrf = other.get("/ui/").csrf();
    let mut theirs = add.to_vec();
    theirs.push(("csrf", &others_csrf));
    let crossed = b.post("/ui/projects/team/app/-/add", &theirs);
    let logout = b.post("/ui/logout", &[]);

    for refused in [&without, &forged, &crossed, &logout] {
        assert_eq!(refused.status, 403, "{}", refused.body);
    }
    assert_eq!(groups_allowlist(&s, f.app).as_array().unwrap().len(), 0);
    assert_eq!(b.get("/ui/").status, 200, "the refused sign-out did not sign out");
    assert!(!page.csrf().is_empty());
}

#[test]
fn a_maintainer_admits_a_group_for_two_scopes_and_the_why_panel_flips_from_denied_to_allowed() {
    let s = Server::start();
    let f = fixture(&s);
    let (token, _) = pat(&s, f.maintainer);
    let mut b = Browser::new(&s);
    b.sign_in(&token);
    let page = b.get("/ui/projects/team/app");
    assert!(page.body.contains("Projects: 0/200"), "{}", page.body);
    let csrf = page.csrf();
    let ask = |b: &mut Browser, scope: &str| {
        let answer = b.post(
            "/ui/projects/team/app/-/why",
            &[("csrf", &csrf), ("source", "other/src"), ("protected", "on"), ("scope", scope)],
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body
    };

    let before = ask(&mut b, "read_registry");
    assert!(before.contains(r#"<p class="denied">Denied</p>"#), "{before}");

    let added = b.post(
        "/ui/projects/team/app/-/add",
        &[("csrf", &csrf), ("kind", "group"), ("path", "other"), ("scope", "read_registry"), ("scope", "read_api")],
    );
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(added.header("location"), Some("/ui/projects/team/app"));
    let shown = b.get("/ui/projects/team/app");
    assert!(shown.body.contains("Added other."), "the flash message: {}", shown.body);
    assert!(shown.body.contains("Groups: 1/200"), "{}", shown.body);
    let entries = groups_allowlist(&s, f.app);
    assert_eq!(entries[0]["source_group_id"], f.other);
    assert_eq!(entries[0]["scopes"], json!(["read_registry", "read_api"]));

    let after = ask(&mut b, "read_registry");
    assert!(after.contains(r#"<p class="allowed">Allowed</p>"#), "{after}");
    // The panel keeps the question it answered.
    assert!(after.contains(r#"name="source" placeholder="group/project" value="other/src""#), "{after}");
    assert!(after.contains(r#"<option value="read_registry" selected>"#), "{after}");
    let not_granted = ask(&mut b, "write_registry");
    assert!(not_granted.contains(r#"<p class="denied">Denied</p>"#), "{not_granted}");

    let edited = b.post(
        "/ui/projects/team/app/-/update",
        &[("csrf", &csrf), ("kind", "group"), ("id", &f.other.to_string()), ("scope", "read_api")],
    );
    assert_eq!(edited.status, 303, "{}", edited.body);
    assert_eq!(groups_allowlist(&s, f.app)[0]["scopes"], json!(["read_api"]));
    let removed =
        b.post("/ui/projects/team/app/-/remove", &[("csrf", &csrf), ("kind", "group"), ("id", &f.other.to_string())]);
    assert_eq!(removed.status, 303);
    assert_eq!(groups_allowlist(&s, f.app).as_array().unwrap().len(), 0);
}

#[test]
fn the_inbound_setting_shows_where_it_comes_from_and_a_refusal_is_shown_on_the_page() {
    let s = Server::start();
    let f = fixture(&s);
    let (token, _) = pat(&s, f.maintainer);
    let mut b = Browser::new(&s);
    b.sign_in(&token);
    let page = b.get("/ui/projects/team/app");
    // One pair of parentheses around the source, none inside it.
    assert!(page.body.contains("(the default: no project or group sets it)."), "{}", page.body);
    assert!(!page.body.contains("))"), "{}", page.body);
    let csrf = page.csrf();

    let off = b.post("/ui/projects/team/app/-/inbound", &[("csrf", &csrf), ("inbound", "off")]);
    assert_eq!(off.status, 303);
    let page = b.get("/ui/projects/team/app");
    assert!(page.body.contains("this project's own setting"), "{}", page.body);
    let settings = s.admin("GET", &format!("/api/v1/projects/{}/job_token_scope", f.app), json!(null));
    assert_eq!(settings["inbound_enabled"], false);

    // The project itself as a source: the service's refusal comes back as the flash message.
    let own = b.post(
        "/ui/projects/team/app/-/add",
        &[("csrf", &csrf), ("kind", "project"), ("path", "team/app"), ("default", "on")],
    );
    assert_eq!(own.status, 303);
    let page = b.get("/ui/projects/team/app");
    assert!(page.body.contains("Not changed: a project cannot add itself"), "{}", page.body);
}

#[test]
fn a_developer_can_neither_see_nor_change_the_settings() {
    let s = Server::start();
    let f = fixture(&s);
    let (token, _) = pat(&s, f.developer);
    let mut b = Browser::new(&s);
    b.sign_in(&token);
    let page = b.get("/ui/projects/team/app");
    // As the API answers GET /api/v1/projects/{id}/job_token_scope for a Developer.
    let api = s.get(&format!("/api/v1/projects/{}/job_token_scope", f.app), Auth::Bearer(&token));
    assert_eq!(api.status, 403);
    assert_eq!(page.status, 403, "{}", page.body);
    let csrf = b.get("/ui/").csrf();
    let add = b.post(
        "/ui/projects/team/app/-/add",
        &[("csrf", &csrf), ("kind", "group"), ("path", "other"), ("default", "on")],
    );
    assert_eq!(add.status, 403, "{}", add.body);
    let inbound = b.post("/ui/projects/team/app/-/inbound", &[("csrf", &csrf), ("inbound", "off")]);
    assert_eq!(inbound.status, 403);
    assert_eq!(groups_allowlist(&s, f.app).as_array().unwrap().len(), 0);
    let settings = s.admin("GET", &format!("/api/v1/projects/{}/job_token_scope", f.app), json!(null));
    assert_eq!(settings["inbound_setting"], json!(null));
    // A project the user cannot see at all is a 404, as for an unknown one.
    assert_eq!(b.get("/ui/projects/other/src").status, 404);
}

#[test]
fn a_session_dies_when_its_personal_access_token_is_revoked() {
    let s = Server::start();
    let f = fixture(&s);
    let (token, pat_id) = pat(&s, f.maintainer);
    let mut b = Browser::new(&s);
    b.sign_in(&token);
    assert_eq!(b.get("/ui/projects/team/app").status, 200);

    let res = s.json(
        "DELETE",
        &format!("/api/v1/users/{}/personal_access_tokens/{pat_id}", f.maintainer),
        Auth::Admin,
        json!(null),
    );
    assert!(res.status < 300, "{}", res.text);

    let page = b.get("/ui/projects/team/app");
    assert_eq!(page.status, 303);
    assert_eq!(page.header("location"), Some("/ui/login"));
}

#[test]
fn a_session_dies_when_its_user_is_blocked() {
    let s = Server::start();
    let f = fixture(&s);
    let (token, _) = pat(&s, f.maintainer);
    let mut b = Browser::new(&s);
    b.sign_in(&token);
    assert_eq!(b.get("/ui/").status, 200);

    s.admin("PATCH", &format!("/api/v1/users/{}", f.maintainer), json!({"state": "blocked"}));
    assert_eq!(b.get("/ui/").status, 303);
    s.admin("PATCH", &format!("/api/v1/users/{}", f.maintainer), json!({"state": "active"}));
    assert_eq!(b.get("/ui/").status, 303, "a dead session stays dead");
}

#[test]
fn sign_out_ends_the_session_on_the_server() {
    let s = Server::start();
    let mut b = Browser::new(&s);
    b.sign_in(common::ADMIN);
    let home = b.get("/ui/");
    let cookie = b.cookies["jt_session"].clone();
    let out = b.post("/ui/logout", &[("csrf", &home.csrf())]);
    assert_eq!(out.status, 303);
    b.cookies.insert("jt_session".into(), cookie);
    assert_eq!(b.get("/ui/").status, 303, "the old cookie no longer works");
}

#[test]
fn hostile_input_is_escaped_and_a_pasted_token_is_neither_stored_nor_logged() {
    let s = Server::start();
    let f = fixture(&s);
    let (token, _) = pat(&s, f.maintainer);
    let mut b = Browser::new(&s);
    b.sign_in(&token);
    let csrf = b.get("/ui/projects/team/app").csrf();
    let hostile = r#"<script>alert(1)</script>"x"#;

    let why = b.post("/ui/projects/team/app/-/why", &[("csrf", &csrf), ("source", hostile), ("scope", "read_api")]);
    assert_eq!(why.status, 200);
    assert!(why.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{}", why.body);
    assert!(!why.body.contains("<script>"), "{}", why.body);

    let added = b.post(
        "/ui/projects/team/app/-/add",
        &[("csrf", &csrf), ("kind", "group"), ("path", hostile), ("default", "on")],
    );
    assert_eq!(added.status, 303);
    let page = b.get("/ui/projects/team/app");
    assert!(page.body.contains("Not changed: group not found"), "{}", page.body);
    assert!(!page.body.contains("<script>"));

    let pasted = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXRoYXQtaXMtbm90LXZhbGlk";
    let inspected = b.post("/ui/projects/team/app/-/why", &[("csrf", &csrf), ("token", pasted), ("scope", "read_api")]);
    assert_eq!(inspected.status, 200);
    assert!(inspected.body.contains(r#"class="error""#), "{}", inspected.body);
    assert!(!inspected.body.contains(pasted), "the token is not echoed back");
    assert!(!s.log().contains(pasted), "the pasted token was logged");
    let dir = s.stop();
    let stored = common::stored_bytes(&dir);
    assert!(!stored.windows(pasted.len()).any(|w| w == pasted.as_bytes()), "the pasted token was stored");
    assert!(!stored.windows(token.len()).any(|w| w == token.as_bytes()), "the PAT was stored");
}

#[test]
fn own_job_token_scopes_are_saved_and_an_elevation_refusal_names_the_group_that_forbids_it() {
    let s = Server::start();
    let f = fixture(&s);
    let team = s.admin("GET", "/api/v1/groups/team", json!(null))["id"].as_i64().unwrap();
    s.admin("PATCH", &format!("/api/v1/groups/{team}/job_token_scope"), json!({"job_token_elevation_allowed": false}));
    let (token, _) = pat(&s, f.maintainer);
    let mut b = Browser::new(&s);
    b.sign_in(&token);
    let csrf = b.get("/ui/projects/team/app").csrf();
    let settings = || s.admin("GET", &format!("/api/v1/projects/{}/job_token_scope", f.app), json!(null));

    let saved = b.post(
        "/ui/projects/team/app/-/scopes",
        &[("csrf", &csrf), ("scope", "read_repository"), ("scope", "read_registry")],
    );
    assert_eq!(saved.status, 303);
    assert_eq!(settings()["job_token_scopes"], json!(["read_repository", "read_registry"]));

    let elevated = b.post("/ui/projects/team/app/-/scopes", &[("csrf", &csrf), ("scope", "api")]);
    assert_eq!(elevated.status, 303);
    let page = b.get("/ui/projects/team/app");
    assert!(
        page.body.contains("Not changed: elevated job token scopes (api) are not allowed: group team forbids"),
        "{}",
        page.body
    );
    assert_eq!(settings()["job_token_scopes"], json!(["read_repository", "read_registry"]));
}

#[test]
fn the_token_inspector_shows_header_claims_and_state_and_neither_echoes_nor_logs_the_token() {
    let s = Server::start();
    let w = common::World::new(&s);
    let job = w.job(&s, true);
    let token = w.mint_ok(&s, job, &[]);
    let mut b = Browser::new(&s);
    b.sign_in(common::ADMIN);
    let csrf = b.get("/ui/tokens").csrf();

    let page = b.post(
        "/ui/tokens",
        &[("csrf", &csrf), ("token", &token), ("project", "grp/app"), ("scope", "read_repository")],
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("State: <strong>active</strong>"), "{}", page.body);
    assert!(page.body.contains("&quot;project_path&quot;: &quot;grp/app&quot;"), "{}", page.body);
    assert!(page.body.contains(r#"<span class="allowed">Allowed</span>"#), "{}", page.body);
    assert!(!page.body.contains(&token), "the token is not echoed back");
    assert!(!s.log().contains(&token), "the token is not logged");

    let malformed = b.post("/ui/tokens", &[("csrf", &csrf), ("token", "not a jwt")]);
    assert_eq!(malformed.status, 400);
    let without_csrf = b.post("/ui/tokens", &[("token", &token)]);
    assert_eq!(without_csrf.status, 403);
}

#[test]
fn a_group_maintainer_admits_a_project_on_the_group_page_and_its_projects_inherit_it() {
    let s = Server::start();
    let f = fixture(&s);
    let team = s.admin("GET", "/api/v1/groups/team", json!(null))["id"].as_i64().unwrap();
    common::group_member(&s, team, f.maintainer, MAINTAINER);
    let (token, _) = pat(&s, f.maintainer);
    let mut b = Browser::new(&s);
    b.sign_in(&token);
    let page = b.get("/ui/groups/team");
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.csrf();

    let added = b.post(
        "/ui/groups/team/-/add",
        &[("csrf", &csrf), ("kind", "project"), ("path", "other/src"), ("default", "on")],
    );
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(added.header("location"), Some("/ui/groups/team"));
    let listed = s.admin("GET", &format!("/api/v1/groups/{team}/job_token_scope/allowlist"), json!(null));
    assert_eq!(listed[0]["source_path"], "other/src");
    assert_eq!(listed[0]["default_permissions"], true);

    let project = b.get("/ui/projects/team/app");
    assert!(project.body.contains(r#"<a href="/ui/groups/team"><code>team</code></a>"#), "{}", project.body);
    let why = b.post(
        "/ui/projects/team/app/-/why",
        &[("csrf", &csrf), ("source", "other/src"), ("protected", "on"), ("scope", "read_repository")],
    );
    assert!(why.body.contains(r#"<p class="allowed">Allowed</p>"#), "{}", why.body);

    let settings =
        b.post("/ui/groups/team/-/settings", &[("csrf", &csrf), ("inbound", "inherit"), ("elevation", "off")]);
    assert_eq!(settings.status, 303);
    let api = s.admin("GET", &format!("/api/v1/groups/{team}/job_token_scope"), json!(null));
    assert_eq!(api["job_token_elevation_allowed"], false);

    // The project's Developer is no member of the group: it is not there for them.
    let (dev_token, _) = pat(&s, f.developer);
    let mut dev = Browser::new(&s);
    dev.sign_in(&dev_token);
    assert_eq!(dev.get("/ui/groups/team").status, 404);
}

#[test]
fn home_lists_what_the_user_maintains_and_opens_a_project_by_path() {
    let s = Server::start();
    let f = fixture(&s);
    let team = s.admin("GET", "/api/v1/groups/team", json!(null))["id"].as_i64().unwrap();
    let sub = group(&s, "sub", Some(team));
    project(&s, "deep", sub, json!({"visibility": "private"}));
    common::group_member(&s, team, f.maintainer, MAINTAINER);
    let (token, _) = pat(&s, f.maintainer);
    let mut b = Browser::new(&s);
    b.sign_in(&token);
    let home = b.get("/ui/");
    for shown in
        [r#"href="/ui/projects/team/app""#, r#"href="/ui/projects/team/sub/deep""#, r#"href="/ui/groups/team/sub""#]
    {
        assert!(home.body.contains(shown), "{shown} in {}", home.body);
    }
    assert!(!home.body.contains("other/src"), "only a Developer there: {}", home.body);
    let open = b.get("/ui/?project=team/sub/deep");
    assert_eq!(open.header("location"), Some("/ui/projects/team/sub/deep"));
}

#[test]
fn a_sign_in_posted_from_another_site_is_refused() {
    let s = Server::start();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let req = ureq::http::Request::builder()
        .method("POST")
        .uri(s.url("/ui/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Sec-Fetch-Site", "cross-site")
        .body(format!("token={}", common::ADMIN))
        .unwrap();
    let res = agent.run(req).unwrap();
    assert_eq!(res.status().as_u16(), 403);
    assert!(res.headers().get("set-cookie").is_none());
}

#[test]
fn with_split_listeners_the_admin_token_signs_in_on_the_admin_listener_only() {
    let (mut s, admin_base) = Server::start_split(&[]);
    // The harness's admin API calls go to the admin listener; the browsers say where they go.
    let public_base = std::mem::replace(&mut s.base, admin_base.clone());
    let s = s;
    let f = fixture(&s);
    let (token, _) = pat(&s, f.maintainer);

    // The console is on both listeners; a PAT signs in on either.
    for base in [public_base.as_str(), admin_base.as_str()] {
        let mut b = Browser::at(&s, base);
        assert_eq!(b.get("/ui/login").status, 200, "{base}");
        b.sign_in(&token);
        assert_eq!(b.get("/ui/projects/team/app").status, 200, "{base}");
    }

    // On the public listener the admin token is just an invalid token: the same page, no cookie.
    let mut public = Browser::at(&s, &public_base);
    let invalid = public.post("/ui/login", &[("token", "jtpat_not-a-token")]);
    let refused = public.post("/ui/login", &[("token", common::ADMIN)]);
    assert_eq!(invalid.status, 401);
    assert_eq!((refused.status, &refused.body), (invalid.status, &invalid.body));
    assert!(refused.set_cookies().is_empty(), "{:?}", refused.set_cookies());
    assert!(public.cookies.is_empty());

    // The admin listener signs the admin in and serves the admin pages.
    let mut admin = Browser::at(&s, &admin_base);
    admin.sign_in(common::ADMIN);
    let home = admin.get("/ui/");
    assert_eq!(home.status, 200);
    for path in ADMIN_PAGES {
        assert!(home.body.contains(&format!(r#"href="{path}""#)), "{path} in the admin's nav: {}", home.body);
        assert_eq!(admin.get(path).status, 200, "{path} on the admin listener");
    }
    let csrf = admin.get("/ui/admin/settings").csrf();

    // The same admin session (a browser sends a host's cookies to both its ports) is signed out
    // on the public listener, and the admin pages there are the unknown page's 404.
    let mut leaked = Browser::at(&s, &public_base);
    leaked.cookies = admin.cookies.clone();
    let signed_out = leaked.get("/ui/");
    assert_eq!((signed_out.status, signed_out.header("location")), (303, Some("/ui/login")));
    let unknown = leaked.get("/ui/no-such-page");
    assert_eq!(unknown.status, 404);
    for path in ADMIN_PAGES {
        let page = leaked.get(path);
        assert_eq!(page.status, 404, "{path} on the public listener: {}", page.body);
        assert_eq!(page.body, unknown.body.replace("/ui/no-such-page", path), "{path}");
    }
    let posted = leaked.post("/ui/admin/settings", &[("csrf", &csrf), ("enforce_job_token_allowlist", "on")]);
    assert_eq!(posted.status, 404);
    let inbound = leaked.post("/ui/projects/team/app/-/inbound", &[("csrf", &csrf), ("inbound", "off")]);
    assert_eq!((inbound.status, inbound.header("location")), (303, Some("/ui/login")));
    assert_eq!(s.admin("GET", "/api/v1/settings", json!(null))["enforce_job_token_allowlist"], false);
    let settings = s.admin("GET", &format!("/api/v1/projects/{}/job_token_scope", f.app), json!(null));
    assert_eq!(settings["inbound_setting"], json!(null), "{settings}");

    // The admin session itself lives on: the admin listener still serves it.
    assert_eq!(admin.get("/ui/admin/keys").status, 200);
    let saved = admin.post("/ui/admin/settings", &[("csrf", &csrf), ("enforce_job_token_allowlist", "on")]);
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(s.admin("GET", "/api/v1/settings", json!(null))["enforce_job_token_allowlist"], true);
}

#[test]
fn with_one_listener_the_admin_token_signs_in_to_the_admin_pages() {
    let s = Server::start();
    let mut admin = admin_browser(&s);
    for path in ADMIN_PAGES {
        assert_eq!(admin.get(path).status, 200, "{path}");
    }
}

#[test]
fn a_source_the_user_cannot_see_is_refused_exactly_like_an_unknown_one() {
    let s = Server::start();
    let f = fixture(&s);
    let hidden = group(&s, "hidden", None);
    project(&s, "secret", hidden, json!({"visibility": "private"}));
    let (token, _) = pat(&s, f.maintainer);
    let mut b = Browser::new(&s);
    b.sign_in(&token);
    let csrf = b.get("/ui/projects/team/app").csrf();
    let mut answers = Vec::new();
    for path in ["hidden/secret", "nowhere/nothing"] {
        let added = b.post(
            "/ui/projects/team/app/-/add",
            &[("csrf", &csrf), ("kind", "project"), ("path", path), ("default", "on")],
        );
        assert_eq!(added.status, 303);
        let page = b.get("/ui/projects/team/app");
        let flash = page.body.split(r#"<p class="flash" role="status">"#).nth(1).unwrap().split("</p>").next().unwrap();
        let why = b.post("/ui/projects/team/app/-/why", &[("csrf", &csrf), ("source", path), ("scope", "read_api")]);
        let reason = why.body.split(r#"<p class="denied">Denied</p><p>"#).nth(1).unwrap().split("</p>").next().unwrap();
        answers.push((flash.to_owned(), reason.replace(path, "PATH")));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, "Not changed: project not found");
}

// ---- the admin pages and the project page's search, paging, elevation and Why? answers ----

const ADMIN_PAGES: [&str; 5] =
    ["/ui/admin/keys", "/ui/admin/settings", "/ui/admin/audit", "/ui/admin/runners", "/ui/admin/resource_servers"];

/// The text of the element with this id (`<tag id="ID">text</tag>`).
fn by_id<'a>(body: &'a str, id: &str) -> &'a str {
    let start = body.find(&format!(r#"id="{id}">"#)).unwrap_or_else(|| panic!("no #{id} in {body}"));
    let rest = &body[start + id.len() + 6..];
    &rest[..rest.find('<').unwrap()]
}

fn admin_browser(s: &Server) -> Browser {
    let mut b = Browser::new(s);
    b.sign_in(common::ADMIN);
    b
}

fn audit_events(s: &Server, query: &str) -> Vec<serde_json::Value> {
    s.admin("GET", &format!("/api/v1/audit_events?{query}"), json!(null)).as_array().unwrap().clone()
}

#[test]
fn admin_pages_are_the_unknown_page_404_for_everyone_but_the_admin_who_finds_them_in_the_nav() {
    let s = Server::start();
    let f = fixture(&s);
    let (token, _) = pat(&s, f.maintainer);
    let mut maintainer = Browser::new(&s);
    maintainer.sign_in(&token);
    let mut nobody = Browser::new(&s);
    let unknown = maintainer.get("/ui/no-such-page");
    assert_eq!(unknown.status, 404);
    let csrf = maintainer.get("/ui/").csrf();

    for path in ADMIN_PAGES {
        for b in [&mut maintainer, &mut nobody] {
            let page = b.get(path);
            assert_eq!(page.status, 404, "{path}: {}", page.body);
            assert_eq!(page.header("content-type"), unknown.header("content-type"), "{path}");
            assert_eq!(page.body, unknown.body.replace("/ui/no-such-page", path), "{path}");
        }
    }
    let posts = [
        ("/ui/admin/keys/rotate", vec![]),
        ("/ui/admin/settings", vec![("enforce_job_token_allowlist", "on")]),
        ("/ui/admin/runners", vec![("runner_type", "instance")]),
        ("/ui/admin/resource_servers", vec![("name", "sneaky")]),
    ];
    for (path, mut fields) in posts {
        fields.push(("csrf", &csrf));
        assert_eq!(maintainer.post(path, &fields).status, 404, "{path}");
    }
    assert_eq!(s.admin("GET", "/api/v1/settings", json!(null))["enforce_job_token_allowlist"], false);
    assert_eq!(s.get("/api/v1/runners", Auth::Admin).json.as_array().unwrap().len(), 0);
    assert_eq!(s.get("/api/v1/resource_servers", Auth::Admin).json.as_array().unwrap().len(), 0);
    assert!(!maintainer.get("/ui/").body.contains("/ui/admin/"), "no admin links for a Maintainer");

    let mut admin = admin_browser(&s);
    let home = admin.get("/ui/");
    for path in ADMIN_PAGES {
        assert!(home.body.contains(&format!(r#"href="{path}""#)), "{path} in the admin's nav: {}", home.body);
        let page = admin.get(path);
        assert_eq!(page.status, 200, "{path}");
        assert!(page.header("content-security-policy").is_some_and(|csp| csp.contains("frame-ancestors 'none'")));
        assert_eq!(page.header("cache-control"), Some("no-store"), "{path}");
    }
    let refused = admin.post("/ui/admin/runners", &[("runner_type", "instance")]);
    assert_eq!(refused.status, 403, "an admin POST without its CSRF token: {}", refused.body);
    assert_eq!(s.get("/api/v1/runners", Auth::Admin).json.as_array().unwrap().len(), 0);
}

#[test]
fn rotate_now_is_refused_by_the_guard_while_the_next_key_is_young_and_promotes_it_once_it_is_published_long_enough() {
    let s = Server::start();
    let family = |f: &str| s.admin("GET", &format!("/api/v1/keys?family={f}"), json!(null)).as_array().unwrap().clone();
    let keys = || family("job");
    let kid_of = |f: &str, state: &str| {
        family(f).iter().find(|k| k["state"] == state).unwrap()["kid"].as_str().unwrap().to_owned()
    };
    let kid_in = |state: &str| kid_of("job", state);
    let (active, next) = (kid_in("active"), kid_in("next"));
    let (id_active, id_next) = (kid_of("id_token", "active"), kid_of("id_token", "next"));
    let mut b = admin_browser(&s);
    let page = b.get("/ui/admin/keys");
    assert!(page.body.contains(&next) && page.body.contains(&active), "{}", page.body);
    assert!(
        page.body.contains("May be promoted") && page.body.contains(" s)"),
        "when next may be promoted: {}",
        page.body
    );
    let csrf = page.csrf();

    assert_eq!(b.post("/ui/admin/keys/rotate", &[]).status, 403, "no CSRF token");
    let early = b.post("/ui/admin/keys/rotate", &[("csrf", &csrf)]);
    assert_eq!(early.status, 409, "{}", early.body);
    assert!(early.body.contains("verifiers may cache the JWKS"), "the guard's reason: {}", early.body);
    assert_eq!((kid_in("active"), kid_in("next")), (active.clone(), next.clone()), "nothing rotated");

    common::sql(&s.dir, &format!("UPDATE signing_keys SET created_at = created_at - 400 WHERE kid = '{next}'"));
    let rotated = b.post("/ui/admin/keys/rotate", &[("csrf", &csrf)]);
    assert_eq!(rotated.status, 303, "{}", rotated.body);
    assert_eq!(kid_in("active"), next);
    let shown = b.get("/ui/admin/keys");
    assert!(shown.body.contains("Rotated"), "{}", shown.body);
    let retired = keys().into_iter().find(|k| k["kid"] == active.as_str()).unwrap();
    assert_eq!(retired["state"], "retired");
    assert_eq!((kid_of("id_token", "active"), kid_of("id_token", "next")), (id_active.clone(), id_next.clone()));

    // The ID-token family is listed with its family and rotates on its own, by the same guard.
    assert!(shown.body.contains("<td>id_token</td>") && shown.body.contains(&id_next), "{}", shown.body);
    let early = b.post("/ui/admin/keys/rotate", &[("csrf", &csrf), ("family", "id_token")]);
    assert_eq!(early.status, 409, "{}", early.body);
    common::sql(&s.dir, &format!("UPDATE signing_keys SET created_at = created_at - 400 WHERE kid = '{id_next}'"));
    let rotated = b.post("/ui/admin/keys/rotate", &[("csrf", &csrf), ("family", "id_token")]);
    assert_eq!(rotated.status, 303, "{}", rotated.body);
    assert_eq!(kid_of("id_token", "active"), id_next);
    assert_eq!(kid_in("active"), next, "the job family is left alone");
    assert_eq!(b.post("/ui/admin/keys/rotate", &[("csrf", &csrf), ("family", "nope")]).status, 400);
}

#[test]
fn instance_settings_saved_on_the_page_show_in_the_api_and_are_audited_as_the_admin() {
    let s = Server::start();
    let mut b = admin_browser(&s);
    let page = b.get("/ui/admin/settings");
    assert!(page.body.contains(r#"name="job_token_elevation_allowed" checked"#), "{}", page.body);
    let csrf = page.csrf();

    let refused = b.post("/ui/admin/settings", &[("enforce_job_token_allowlist", "on")]);
    assert_eq!(refused.status, 403);
    assert_eq!(s.admin("GET", "/api/v1/settings", json!(null))["enforce_job_token_allowlist"], false);

    // Enforcement ticked, elevation left unticked.
    let saved = b.post("/ui/admin/settings", &[("csrf", &csrf), ("enforce_job_token_allowlist", "on")]);
    assert_eq!(saved.status, 303, "{}", saved.body);
    let settings = s.admin("GET", "/api/v1/settings", json!(null));
    assert_eq!(settings["enforce_job_token_allowlist"], true);
    assert_eq!(settings["job_token_elevation_allowed"], false);
    let shown = b.get("/ui/admin/settings");
    assert!(shown.body.contains("Saved the instance settings."), "{}", shown.body);
    assert!(shown.body.contains(r#"name="enforce_job_token_allowlist" checked"#), "{}", shown.body);
    let events = audit_events(&s, "target_type=instance_settings");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["author"]["type"], "admin");
    assert_eq!(events[0]["details"]["after"]["enforce_job_token_allowlist"], true);
}

#[test]
fn the_audit_page_filters_and_pages_like_the_api_and_a_bad_filter_is_the_form_again_with_a_400() {
    let s = Server::start();
    for i in 0..25 {
        user(&s, &format!("user{i:02}"));
    }
    group(&s, "grp", None);
    let mut b = admin_browser(&s);
    let rows = |body: &str, action: &str| body.matches(&format!("<code>{action}</code>")).count();

    let first = b.get("/ui/admin/audit?target_type=user&actor=admin");
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(rows(&first.body, "user.created"), 20);
    assert_eq!(rows(&first.body, "group.created"), 0, "filtered by target type");
    assert!(first.body.contains("25 events"), "{}", first.body);
    assert!(first.body.find("user24").unwrap() < first.body.find("user05").unwrap(), "newest first");
    let next =
        first.body.split(r#"rel="next" href=""#).nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    assert_eq!(next, "/ui/admin/audit?target_type=user&actor=admin&page=2", "the link keeps the filters");
    let second = b.get(&next);
    assert_eq!(rows(&second.body, "user.created"), 5);
    assert!(second.body.contains(r#"rel="prev" href="/ui/admin/audit?target_type=user&amp;actor=admin&amp;page=1""#));
    assert!(second.body.contains("user00") && !second.body.contains("user24"), "{}", second.body);
    let after = b.get("/ui/admin/audit?created_after=2999-01-01");
    assert!(after.body.contains("0 events"), "{}", after.body);

    for (bad, message) in [
        ("actor=root", "actor must be admin"),
        ("target_id=abc", "target id must be a whole number"),
        ("created_before=yesterday", "created_before"),
    ] {
        let page = b.get(&format!("/ui/admin/audit?{bad}"));
        assert_eq!(page.status, 400, "{bad}: {}", page.body);
        let alert = page.body.split(r#"role="alert">"#).nth(1).unwrap().split("</p>").next().unwrap();
        assert!(alert.contains(message), "{bad}: {alert}");
        assert!(page.body.contains(r#"<form method="get" action="/ui/admin/audit">"#), "the form again: {bad}");
    }
}

/// Registers a runner or resource server with the page's form and reads the once-shown secret.
fn register(b: &mut Browser, list: &str, fields: &[(&str, &str)]) -> (String, String) {
    let csrf = b.get(list).csrf();
    let mut fields = fields.to_vec();
    fields.push(("csrf", &csrf));
    let page = b.post(list, &fields);
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.header("location"), None, "shown in the POST's own page, never a redirect");
    assert_eq!(page.header("cache-control"), Some("no-store"));
    (by_id(&page.body, "client-id").to_owned(), by_id(&page.body, "client-secret").to_owned())
}

/// Posts `action` on the row of client `id` in `list` and returns the page.
fn act_on(b: &mut Browser, list: &str, id: i64, action: &str) -> Page {
    let csrf = b.get(list).csrf();
    b.post(&format!("{list}/{id}/{action}"), &[("csrf", &csrf)])
}

#[test]
fn a_runner_registered_on_the_page_shows_its_secret_once_mints_with_it_and_stops_when_reset_or_paused() {
    let s = Server::start();
    let w = common::World::new(&s);
    let mut b = admin_browser(&s);

    let (client_id, secret) = register(
        &mut b,
        "/ui/admin/runners",
        &[("runner_type", "instance"), ("maximum_timeout", "600"), ("description", "ui runner")],
    );
    let listed = s.get("/api/v1/runners", Auth::Admin).json;
    let created = listed.as_array().unwrap().iter().find(|r| r["client_id"] == client_id.as_str()).unwrap().clone();
    assert_eq!((created["description"].clone(), created["maximum_timeout"].clone()), (json!("ui runner"), json!(600)));
    let id = created["id"].as_i64().unwrap();
    let runner = common::Client { id, client_id: client_id.clone(), secret: secret.clone() };
    let job = w.job(&s, true);
    let minted = common::mint_as(&s, &runner, job, &[]);
    assert_eq!(minted.status, 200, "the shown secret authenticates: {}", minted.text);
    let page = b.get("/ui/admin/runners");
    assert!(page.body.contains(&client_id) && !page.body.contains(&secret), "the list never shows a secret");
    assert!(!s.log().contains(&secret), "the secret is not logged");
    assert_eq!(audit_events(&s, "target_type=runner")[0]["action"], "runner.created");

    let reset = act_on(&mut b, "/ui/admin/runners", id, "reset_secret");
    assert_eq!(reset.status, 200, "{}", reset.body);
    let new_secret = by_id(&reset.body, "client-secret").to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(common::mint_as(&s, &runner, job, &[]).status, 401, "the old secret is dead");
    let renewed = common::Client { secret: new_secret.clone(), ..runner.clone() };
    assert_eq!(common::mint_as(&s, &renewed, job, &[]).status, 200);

    let paused = act_on(&mut b, "/ui/admin/runners", id, "pause");
    assert_eq!(paused.status, 303, "{}", paused.body);
    assert_eq!(s.get(&format!("/api/v1/runners/{id}"), Auth::Admin).json["paused"], true);
    // A paused runner finishes the job it runs, but starts no new one.
    assert_eq!(common::mint_as(&s, &renewed, job, &[]).status, 200);
    let new_job = w.job(&s, true);
    let refused = common::mint_as(&s, &renewed, new_job, &[]);
    assert!(refused.json.get("access_token").is_none() && refused.status >= 400, "{}", refused.text);
    assert!(b.get("/ui/admin/runners").body.contains("paused"));
    assert_eq!(act_on(&mut b, "/ui/admin/runners", id, "resume").status, 303);
    assert_eq!(common::mint_as(&s, &renewed, new_job, &[]).status, 200);

    let csrf = b.get("/ui/").csrf();
    let bad = b.post("/ui/admin/runners", &[("csrf", &csrf), ("runner_type", "group")]);
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("a group runner needs group_id"), "the API's own check: {}", bad.body);
    let kinds = audit_events(&s, "target_type=runner");
    let actions: Vec<&str> = kinds.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"runner.secret_reset") && actions.contains(&"runner.updated"), "{actions:?}");
}

#[test]
fn a_resource_server_registered_on_the_page_introspects_with_its_secret_until_reset_or_disabled() {
    let s = Server::start();
    let w = common::World::new(&s);
    let token = w.mint_ok(&s, w.job(&s, true), &[]);
    let mut b = admin_browser(&s);

    let (client_id, secret) = register(&mut b, "/ui/admin/resource_servers", &[("name", "packages")]);
    let introspect = |secret: &str| s.form("/oauth/introspect", Auth::Basic(&client_id, secret), &[("token", &token)]);
    let ok = introspect(&secret);
    assert_eq!((ok.status, ok.json["active"].clone()), (200, json!(true)), "{}", ok.text);
    let id = s
        .get("/api/v1/resource_servers", Auth::Admin)
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["client_id"] == client_id.as_str())
        .unwrap()["id"]
        .as_i64()
        .unwrap();

    let reset = act_on(&mut b, "/ui/admin/resource_servers", id, "reset_secret");
    let new_secret = by_id(&reset.body, "client-secret").to_owned();
    assert_eq!(introspect(&secret).status, 401, "the old secret is dead");
    assert_eq!(introspect(&new_secret).status, 200);
    assert!(!s.log().contains(&new_secret) && !s.log().contains(&secret));

    assert_eq!(act_on(&mut b, "/ui/admin/resource_servers", id, "disable").status, 303);
    assert_eq!(introspect(&new_secret).status, 401, "a disabled resource server authenticates nothing");
    assert!(b.get("/ui/admin/resource_servers").body.contains("disabled"));
    assert_eq!(act_on(&mut b, "/ui/admin/resource_servers", id, "enable").status, 303);
    assert_eq!(introspect(&new_secret).status, 200);

    let csrf = b.get("/ui/").csrf();
    let bad = b.post("/ui/admin/resource_servers", &[("csrf", &csrf), ("name", "x"), ("audience", "not-a-uri")]);
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("absolute URIs"), "{}", bad.body);
}

#[test]
fn the_search_box_lists_only_what_the_maintainer_may_add_and_its_add_form_admits_it_with_the_ticked_scopes() {
    let s = Server::start();
    let f = fixture(&s);
    let hidden = group(&s, "hidden", None);
    project(&s, "src-secret", hidden, json!({"visibility": "private"}));
    let (token, _) = pat(&s, f.maintainer);
    let mut b = Browser::new(&s);
    b.sign_in(&token);

    let found = b.get("/ui/projects/team/app?find=src&find_kind=project");
    assert_eq!(found.status, 200, "{}", found.body);
    let results = found.body.split(r#"id="find-results""#).nth(1).expect("results").split("</div>").next().unwrap();
    assert!(results.contains(r#"name="path" value="other/src""#), "{results}");
    assert!(!found.body.contains("src-secret"), "a project the Maintainer cannot see is never listed");
    let groups = b.get("/ui/projects/team/app?find=oth&find_kind=group");
    assert!(
        groups.body.contains(r#"name="kind" value="group"><input type="hidden" name="path" value="other""#),
        "{}",
        groups.body
    );
    let too_long = b.get(&format!("/ui/projects/team/app?find={}", "a".repeat(300)));
    assert!(too_long.body.contains("search must be up to 255 characters"), "{}", too_long.body);

    let csrf = found.csrf();
    let added = b.post(
        "/ui/projects/team/app/-/add",
        &[
            ("csrf", &csrf),
            ("kind", "project"),
            ("path", "other/src"),
            ("scope", "read_api"),
            ("scope", "read_registry"),
        ],
    );
    assert_eq!(added.status, 303);
    let entries = s.admin("GET", &format!("/api/v1/projects/{}/job_token_scope/allowlist", f.app), json!(null));
    assert_eq!(entries[0]["source_path"], "other/src", "{entries}");
    assert_eq!(entries[0]["scopes"], json!(["read_registry", "read_api"]));

    let on_group = b.get("/ui/groups/other?find=src");
    assert_eq!(on_group.status, 403, "the search is part of a page the Developer of other cannot open");
}

#[test]
fn more_than_a_hundred_entries_are_all_on_the_page_and_the_last_one_is_editable() {
    let s = Server::start();
    let f = fixture(&s);
    let many = group(&s, "many", None);
    let mut last = 0;
    for i in 0..130 {
        last = project(&s, &format!("p{i:03}"), many, json!({"visibility": "private"}));
        s.admin(
            "POST",
            &format!("/api/v1/projects/{}/job_token_scope/allowlist", f.app),
            json!({"source_project_id": last, "scopes": ["read_api"]}),
        );
    }
    let mut b = admin_browser(&s);
    let page = b.get("/ui/projects/team/app");
    assert!(page.body.contains("Projects: 130/200"), "{}", page.body);
    assert_eq!(
        page.body.matches(r#"action="/ui/projects/team/app/-/update""#).count(),
        130,
        "every entry has its form"
    );
    assert!(page.body.contains("<code>many/p129</code>"));

    let edited = b.post(
        "/ui/projects/team/app/-/update",
        &[("csrf", &page.csrf()), ("kind", "project"), ("id", &last.to_string()), ("scope", "read_repository")],
    );
    assert_eq!(edited.status, 303, "{}", edited.body);
    let entry = (1..=2)
        .flat_map(|page| {
            let path = format!("/api/v1/projects/{}/job_token_scope/allowlist?per_page=100&page={page}", f.app);
            s.admin("GET", &path, json!(null)).as_array().unwrap().clone()
        })
        .find(|e| e["source_project_id"] == last)
        .unwrap();
    assert_eq!(entry["scopes"], json!(["read_repository"]));
}

#[test]
fn the_why_panel_answers_an_unknown_user_and_a_user_the_maintainer_cannot_know_alike() {
    let s = Server::start();
    let f = fixture(&s);
    user(&s, "stranger");
    let (token, _) = pat(&s, f.maintainer);
    let mut b = Browser::new(&s);
    b.sign_in(&token);
    let csrf = b.get("/ui/projects/team/app").csrf();
    let ask = |b: &mut Browser, who: &str| {
        let page = b.post(
            "/ui/projects/team/app/-/why",
            &[("csrf", &csrf), ("source", "other/src"), ("user", who), ("scope", "read_api")],
        );
        assert_eq!(page.status, 200, "{}", page.body);
        let answer = page.body.split(r#"id="why-answer""#).nth(1).unwrap().split("</div>").next().unwrap().to_owned();
        answer.replace(who, "NAME")
    };

    let stranger = ask(&mut b, "stranger");
    let nobody = ask(&mut b, "nobody-at-all");
    assert_eq!(stranger, nobody);
    assert!(stranger.contains("there is no user NAME"), "{stranger}");
    let member = ask(&mut b, "dev");
    assert!(!member.contains("there is no user"), "a member of the project is answered for: {member}");
}

#[test]
fn the_own_scopes_section_shows_the_elevation_state_and_the_level_that_decides_it() {
    let s = Server::start();
    let f = fixture(&s);
    let team = s.admin("GET", "/api/v1/groups/team", json!(null))["id"].as_i64().unwrap();
    let (token, _) = pat(&s, f.maintainer);
    let mut b = Browser::new(&s);
    b.sign_in(&token);
    let state = |b: &mut Browser| {
        let page = b.get("/ui/projects/team/app");
        page.body.split(r#"id="elevation-state">"#).nth(1).unwrap().split("</p>").next().unwrap().to_owned()
    };

    let allowed = state(&mut b);
    assert!(allowed.contains("allowed") && allowed.contains("this project grants none"), "{allowed}");
    s.admin("PATCH", &format!("/api/v1/projects/{}/job_token_scope", f.app), json!({"job_token_scopes": ["read_api"]}));
    assert!(state(&mut b).contains("this project grants read_api"));
    s.admin("PATCH", &format!("/api/v1/groups/{team}/job_token_scope"), json!({"job_token_elevation_allowed": false}));
    let by_group = state(&mut b);
    assert!(by_group.contains("refused") && by_group.contains("group team forbids them"), "{by_group}");
    s.admin("PATCH", &format!("/api/v1/groups/{team}/job_token_scope"), json!({"job_token_elevation_allowed": null}));
    s.admin("PATCH", "/api/v1/settings", json!({"job_token_elevation_allowed": false}));
    assert!(state(&mut b).contains("the instance forbids them"), "{}", state(&mut b));
}

#[test]
fn the_runner_and_resource_server_lists_page_by_twenty_and_every_row_is_reachable() {
    let s = Server::start();
    let runners: Vec<common::Client> =
        (0..21).map(|_| common::runner(&s, json!({"runner_type": "instance"}))).collect();
    for i in 0..21 {
        s.admin("POST", "/api/v1/resource_servers", json!({"name": format!("rs{i:02}")}));
    }
    let mut b = admin_browser(&s);
    for (list, first, last) in [
        ("/ui/admin/runners", runners[0].client_id.clone(), runners[20].client_id.clone()),
        ("/ui/admin/resource_servers", "#1 rs00".to_owned(), "#21 rs20".to_owned()),
    ] {
        let one = b.get(list);
        assert!(one.body.contains(&first) && !one.body.contains(&last), "{list} page 1: {}", one.body);
        assert!(one.body.contains(&format!(r#"rel="next" href="{list}?page=2""#)), "{}", one.body);
        let two = b.get(&format!("{list}?page=2"));
        assert!(two.body.contains(&last) && !two.body.contains(&first), "{list} page 2: {}", two.body);
        assert!(two.body.contains(&format!(r#"rel="prev" href="{list}?page=1""#)));
    }
}

/// The hidden one-time id of the first form on the page whose action is `action`.
fn once_of(page: &Page, action: &str) -> String {
    let form = page.body.split(&format!(r#"action="{action}""#)).nth(1).unwrap_or_else(|| panic!("no form {action}"));
    let rest = form.split(r#"name="once" value=""#).nth(1).expect("a one-time id in the form");
    rest[..rest.find('"').unwrap()].to_owned()
}

#[test]
fn a_secret_making_form_sent_twice_a_reload_registers_nothing_more_and_keeps_the_secret_shown() {
    let s = Server::start();
    let mut b = admin_browser(&s);
    let page = b.get("/ui/admin/runners");
    let (csrf, once) = (page.csrf(), once_of(&page, "/ui/admin/runners"));
    let form = [("csrf", csrf.as_str()), ("once", once.as_str()), ("runner_type", "instance")];
    let created = b.post("/ui/admin/runners", &form);
    assert_eq!(created.status, 200, "{}", created.body);
    let (client_id, secret) =
        (by_id(&created.body, "client-id").to_owned(), by_id(&created.body, "client-secret").to_owned());
    let again = b.post("/ui/admin/runners", &form);
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body.contains("already sent") && !again.body.contains(&secret), "{}", again.body);
    assert_eq!(s.get("/api/v1/runners", Auth::Admin).json.as_array().unwrap().len(), 1);

    // Reset secret: the same; the secret the first reset showed stays the runner's.
    let list = b.get("/ui/admin/runners");
    let id = s.get("/api/v1/runners", Auth::Admin).json[0]["id"].as_i64().unwrap();
    let action = format!("/ui/admin/runners/{id}/reset_secret");
    let once = once_of(&list, &action);
    let reset = b.post(&action, &[("csrf", &csrf), ("once", &once)]);
    assert_eq!(reset.status, 200, "{}", reset.body);
    let new_secret = by_id(&reset.body, "client-secret").to_owned();
    assert_ne!(new_secret, secret);
    let resent = b.post(&action, &[("csrf", &csrf), ("once", &once)]);
    assert_eq!(resent.status, 409, "{}", resent.body);
    let f = fixture(&s);
    let job = common::job_for(&s, f.app, f.developer, false).to_string();
    let mint = |secret: &str| {
        s.form(
            "/oauth/token",
            Auth::Basic(&client_id, secret),
            &[("grant_type", "client_credentials"), ("job_id", &job)],
        )
    };
    assert_eq!(mint(&secret).status, 401, "the first secret was replaced by the reset");
    let minted = mint(&new_secret);
    assert_eq!(minted.status, 200, "the secret the reset showed still authenticates: {}", minted.text);

    // A crafted post without the one-time id is taken as it comes, like the admin API's.
    let crafted = b.post("/ui/admin/runners", &[("csrf", &csrf), ("runner_type", "instance")]);
    assert_eq!(crafted.status, 200, "{}", crafted.body);
    assert_eq!(s.get("/api/v1/runners", Auth::Admin).json.as_array().unwrap().len(), 2);
}
