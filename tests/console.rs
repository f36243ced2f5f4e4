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
struct Browser<'a> {
    server: &'a Server,
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

impl<'a> Browser<'a> {
    fn new(server: &'a Server) -> Browser<'a> {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
        Browser { server, agent, cookies: HashMap::new() }
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
        let req = self.agent.get(self.server.url(path)).header("Cookie", self.cookie_header());
        let res = req.call();
        self.finish(res)
    }

    fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(fields).unwrap();
        let req = ureq::http::Request::builder()
            .method("POST")
            .uri(self.server.url(path))
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
    assert!(page.body.contains("the default (no project or group sets it)"), "{}", page.body);
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
fn the_console_is_served_on_the_public_listener_only() {
    let (s, admin) = Server::start_split(&[]);
    let public = s.get("/ui/login", Auth::None);
    assert_eq!(public.status, 200);
    let hidden = s.at(&admin).send("GET", "/ui/login", Auth::None, None);
    assert_eq!(hidden.status, 404);
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
