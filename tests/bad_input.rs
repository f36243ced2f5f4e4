//! Bad input never yields a 500 and never changes anything (SPEC §6): each gets a clear 4xx or
//! `{"active": false}`, and the state it touched is the same afterwards.
#![allow(clippy::unwrap_used)]

mod common;

use common::{assert_oauth_error, b64url, decode, job_view, jwks, user, with_header, Auth, Res, Server, World};
use serde_json::{json, Value};

/// A JSON API error: 4xx with `{"error", "message"}`.
fn assert_api_error(res: &Res, status: u16) {
    assert_eq!(res.status, status, "{}", res.text);
    assert!(res.json["error"].as_str().is_some_and(|e| !e.is_empty()), "{}", res.text);
    assert!(res.json["message"].is_string(), "{}", res.text);
}

fn raw_json(s: &Server, method: &str, path: &str, body: &str) -> Res {
    s.raw(method, path, Auth::Admin, "application/json", body.as_bytes().to_vec())
}

fn no_user(s: &Server, id: i64) {
    assert_eq!(s.get(&format!("/api/v1/users/{id}"), Auth::Admin).status, 404, "user {id} must not exist");
}

fn token_form(job: i64) -> String {
    format!("grant_type=client_credentials&job_id={job}")
}

#[test]
fn malformed_json_is_a_bad_request_and_creates_nothing() {
    let s = Server::start();
    let last = user(&s, "first");

    for body in ["{\"username\": \"x\"", "not json", "", "[]", "null", "{\"username\": \"x\"}}", "\u{feff}{}"] {
        assert_api_error(&raw_json(&s, "POST", "/api/v1/users", body), 400);
    }

    no_user(&s, last + 1);
}

#[test]
fn wrong_json_types_are_a_bad_request_and_change_nothing() {
    let s = Server::start();
    let w = World::new(&s);
    let project_path = format!("/api/v1/projects/{}", w.project);
    let before = s.get(&project_path, Auth::Admin).json;

    let cases = [
        ("POST", "/api/v1/users".to_owned(), json!({"username": 5})),
        ("POST", "/api/v1/projects".to_owned(), json!({"path": "x", "namespace_id": w.group.to_string()})),
        ("POST", "/api/v1/projects".to_owned(), json!({"path": "y", "namespace_id": w.group, "build_timeout": "60"})),
        ("PATCH", project_path.clone(), json!({"build_timeout": "60"})),
        ("PATCH", project_path.clone(), json!({"visibility": true})),
        ("PATCH", format!("/api/v1/users/{}", w.user), json!({"state": 1})),
        ("PATCH", "/api/v1/settings".to_owned(), json!({"job_token_elevation_allowed": "false"})),
        ("PUT", format!("/api/v1/projects/{}/members/{}", w.project, w.user), json!({"access_level": "40"})),
        ("POST", "/api/v1/runners".to_owned(), json!({"runner_type": "instance", "maximum_timeout": "600"})),
    ];
    for (method, path, body) in cases {
        let res = s.json(method, &path, Auth::Admin, body.clone());
        assert!((400..500).contains(&res.status), "{method} {path} {body} -> {} {}", res.status, res.text);
        assert!(res.json["error"].is_string(), "{}", res.text);
    }

    assert_eq!(s.get(&project_path, Auth::Admin).json, before);
    assert_eq!(s.get(&format!("/api/v1/users/{}", w.user), Auth::Admin).json["state"], "active");
    assert_eq!(s.get("/api/v1/settings", Auth::Admin).json["job_token_elevation_allowed"], true);
    assert_eq!(s.get(&format!("/api/v1/runners/{}", w.runner.id + 1), Auth::Admin).status, 404);
    assert_eq!(s.get(&format!("/api/v1/projects/{}", w.project + 1), Auth::Admin).status, 404);
    assert_eq!(
        w.mint(&s, w.job(&s, true), &[]).json["scope"].as_str().unwrap().split(' ').count(),
        5,
        "still Developer"
    );
}

#[test]
fn invalid_values_are_unprocessable_and_create_nothing() {
    let s = Server::start();
    let w = World::new(&s);
    let project_path = format!("/api/v1/projects/{}", w.project);
    let before = s.get(&project_path, Auth::Admin).json;

    let cases = [
        s.json("POST", "/api/v1/users", Auth::Admin, json!({"username": "a/b"})),
        s.json("POST", "/api/v1/users", Auth::Admin, json!({"username": ""})),
        s.json("POST", "/api/v1/groups", Auth::Admin, json!({"path": ".."})),
        s.json(
            "POST",
            "/api/v1/projects",
            Auth::Admin,
            json!({"path": "x", "namespace_id": w.group, "build_timeout": 0}),
        ),
        s.json("PATCH", &project_path, Auth::Admin, json!({"build_timeout": -1})),
        s.json("POST", "/api/v1/runners", Auth::Admin, json!({"runner_type": "instance", "maximum_timeout": -5})),
        s.json("POST", "/api/v1/resource_servers", Auth::Admin, json!({"name": ""})),
        s.json(
            "POST",
            &format!("/api/v1/projects/{}/pipelines", w.project),
            Auth::Admin,
            json!({"user_id": w.user, "ref": "main", "ref_type": "branch", "ref_protected": true, "jobs": []}),
        ),
    ];

    for res in &cases {
        assert_api_error(res, 422);
    }
    assert_eq!(s.get(&project_path, Auth::Admin).json, before);
    assert_eq!(s.get(&format!("/api/v1/users/{}", w.user + 1), Auth::Admin).status, 404);
    assert_eq!(s.get(&format!("/api/v1/groups/{}", w.group + 1), Auth::Admin).status, 404);
    assert_eq!(s.get(&format!("/api/v1/runners/{}", w.runner.id + 1), Auth::Admin).status, 404);
}

#[test]
fn a_json_body_without_the_json_content_type_is_a_bad_request() {
    let s = Server::start();
    let last = user(&s, "first");

    let res = s.raw("POST", "/api/v1/users", Auth::Admin, "text/plain", br#"{"username": "x"}"#.to_vec());

    assert_api_error(&res, 400);
    no_user(&s, last + 1);
}

#[test]
fn unknown_fields_are_refused_and_create_nothing() {
    let s = Server::start();
    let last = user(&s, "first");

    let res = s.json("POST", "/api/v1/users", Auth::Admin, json!({"username": "eve", "is_admin": true}));

    assert!((400..500).contains(&res.status), "{} {}", res.status, res.text);
    assert!(res.json["error"].is_string());
    no_user(&s, last + 1);
}

#[test]
fn unknown_enum_values_are_refused_and_change_nothing() {
    let s = Server::start();
    let w = World::new(&s);
    let project_path = format!("/api/v1/projects/{}", w.project);
    let before = s.get(&project_path, Auth::Admin).json;

    let create = s.json(
        "POST",
        "/api/v1/projects",
        Auth::Admin,
        json!({"path": "x", "namespace_id": w.group, "visibility": "secret"}),
    );
    let patch = s.json("PATCH", &project_path, Auth::Admin, json!({"visibility": "secret"}));
    let feature = s.json("PATCH", &project_path, Auth::Admin, json!({"repository_access_level": "everyone"}));
    let state = s.json("PATCH", &format!("/api/v1/users/{}", w.user), Auth::Admin, json!({"state": "deleted"}));
    let level = s.json(
        "PUT",
        &format!("/api/v1/projects/{}/members/{}", w.project, w.user),
        Auth::Admin,
        json!({"access_level": 35}),
    );
    let runner_type = s.json("POST", "/api/v1/runners", Auth::Admin, json!({"runner_type": "shared"}));

    for res in [&create, &patch, &feature, &state, &level, &runner_type] {
        assert!((400..500).contains(&res.status), "{} {}", res.status, res.text);
        assert!(res.json["error"].is_string(), "{}", res.text);
    }
    assert_eq!(s.get(&project_path, Auth::Admin).json, before);
    assert_eq!(s.get(&format!("/api/v1/projects/{}", w.project + 1), Auth::Admin).status, 404);
    assert_eq!(s.get(&format!("/api/v1/users/{}", w.user), Auth::Admin).json["state"], "active");
}

#[test]
fn a_json_body_over_the_limit_is_payload_too_large_and_creates_nothing() {
    let s = Server::start();
    let last = user(&s, "first");
    let body = json!({"username": "a".repeat(300 * 1024)}).to_string();

    let res = raw_json(&s, "POST", "/api/v1/users", &body);

    assert_api_error(&res, 413);
    no_user(&s, last + 1);
}

#[test]
fn an_oauth_form_over_the_limit_is_payload_too_large_and_starts_nothing() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    let body = format!("{}&audience={}", token_form(job), "a".repeat(70 * 1024));

    let res = s.raw("POST", "/oauth/token", w.runner.auth(), "application/x-www-form-urlencoded", body.into_bytes());

    assert_eq!(res.status, 413, "{}", res.text);
    assert!(res.json["error"].is_string(), "{}", res.text);
    assert_eq!(job_view(&s, job)["status"], "pending");
}

#[test]
fn oversized_introspection_revocation_and_decision_requests_are_payload_too_large() {
    let s = Server::start();
    let (w, job, token) = running(&s);
    let form = format!("token={token}&pad={}", "a".repeat(70 * 1024)).into_bytes();
    let decision =
        json!({"token": token, "project": w.project, "scope": "read_repository", "pad": "a".repeat(300 * 1024)});

    let introspect =
        s.raw("POST", "/oauth/introspect", w.registry.auth(), "application/x-www-form-urlencoded", form.clone());
    let revoke = s.raw("POST", "/oauth/revoke", w.runner.auth(), "application/x-www-form-urlencoded", form);
    let decide = s.json("POST", "/api/v1/job_token/authorize", w.registry.auth(), decision);

    for res in [&introspect, &revoke, &decide] {
        assert_eq!(res.status, 413, "{}", res.text);
        assert!(res.json["error"].is_string(), "{}", res.text);
    }
    assert_untouched(&s, &w, job, &token);
}

#[test]
fn a_form_with_the_wrong_content_type_is_an_invalid_request() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);

    let as_json = s.raw("POST", "/oauth/token", w.runner.auth(), "application/json", token_form(job).into_bytes());
    let as_text = s.raw("POST", "/oauth/token", w.runner.auth(), "text/plain", token_form(job).into_bytes());
    let json_body =
        s.json("POST", "/oauth/token", w.runner.auth(), json!({"grant_type": "client_credentials", "job_id": job}));

    assert_oauth_error(&as_json, 400, "invalid_request");
    assert_oauth_error(&as_text, 400, "invalid_request");
    assert_oauth_error(&json_body, 400, "invalid_request");
    assert_eq!(job_view(&s, job)["status"], "pending");
}

#[test]
fn introspection_and_revocation_with_the_wrong_content_type_are_invalid_requests() {
    let s = Server::start();
    let (w, job, token) = running(&s);
    let body = format!("token={token}").into_bytes();

    let introspect = s.raw("POST", "/oauth/introspect", w.registry.auth(), "application/json", body.clone());
    let revoke = s.raw("POST", "/oauth/revoke", w.runner.auth(), "text/plain", body);

    assert_oauth_error(&introspect, 400, "invalid_request");
    assert!(introspect.json.get("active").is_none());
    assert_oauth_error(&revoke, 400, "invalid_request");
    assert_untouched(&s, &w, job, &token);
}

#[test]
fn a_form_that_is_not_utf8_is_an_invalid_request() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    let mut raw_bytes = token_form(job).into_bytes();
    raw_bytes.extend_from_slice(b"&scope=\xff\xfe");
    let escaped = format!("{}&scope=%ff%fe", token_form(job));
    let bad_escape = format!("{}&scope=%zz", token_form(job));

    for body in [raw_bytes, escaped.into_bytes(), bad_escape.into_bytes()] {
        let res = s.raw("POST", "/oauth/token", w.runner.auth(), "application/x-www-form-urlencoded", body);
        assert_oauth_error(&res, 400, "invalid_request");
    }

    assert_eq!(job_view(&s, job)["status"], "pending");
}

#[test]
fn a_garbled_basic_header_is_an_invalid_client_not_an_error() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);

    for header in ["Basic !!!", "Basic", "Basic Og==", "Basic /w==", "Basic   "] {
        let req = ureq::http::Request::builder()
            .method("POST")
            .uri(s.url("/oauth/token"))
            .header("Authorization", header)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(token_form(job))
            .unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut res = agent.run(req).unwrap();
        let status = res.status().as_u16();
        let body: Value = serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
        assert!((400..500).contains(&status), "{header}: {status} {body}");
        assert!(body["error"] == "invalid_client" || body["error"] == "invalid_request", "{header}: {body}");
    }

    assert_eq!(job_view(&s, job)["status"], "pending");
}

#[test]
fn non_numeric_path_ids_are_a_json_not_found() {
    let s = Server::start();
    let w = World::new(&s);

    for path in [
        "/api/v1/users/abc",
        "/api/v1/users/-1",
        "/api/v1/users/1.5",
        "/api/v1/users/99999999999999999999999",
        "/api/v1/projects/%20",
        "/api/v1/groups/0x1",
        "/api/v1/jobs/one",
        "/api/v1/runners/1e3",
    ] {
        let res = s.get(path, Auth::Admin);
        assert_eq!(res.status, 404, "{path}: {}", res.text);
        assert_eq!(res.json["error"], "not_found", "{path}: {}", res.text);
    }
    let patch = s.json("PATCH", "/api/v1/users/abc", Auth::Admin, json!({"state": "blocked"}));
    assert_eq!(patch.status, 404, "{}", patch.text);
    let member =
        s.json("PUT", &format!("/api/v1/projects/{}/members/me", w.project), Auth::Admin, json!({"access_level": 30}));
    assert_eq!(member.status, 404, "{}", member.text);
    assert_eq!(s.get(&format!("/api/v1/users/{}", w.user), Auth::Admin).json["state"], "active");
}

#[test]
fn ids_that_name_nothing_are_a_client_error_and_create_nothing() {
    let s = Server::start();
    let w = World::new(&s);

    let cases = [
        s.get("/api/v1/users/424242", Auth::Admin),
        s.get("/api/v1/jobs/424242", Auth::Admin),
        s.json("PUT", &format!("/api/v1/projects/424242/members/{}", w.user), Auth::Admin, json!({"access_level": 30})),
        s.json(
            "PUT",
            &format!("/api/v1/projects/{}/members/424242", w.project),
            Auth::Admin,
            json!({"access_level": 30}),
        ),
        s.json("POST", "/api/v1/groups", Auth::Admin, json!({"path": "orphan", "parent_id": 424242})),
        s.json("POST", "/api/v1/projects", Auth::Admin, json!({"path": "orphan", "namespace_id": 424242})),
        s.json("POST", "/api/v1/jobs/424242/finish", Auth::Admin, json!({"status": "success"})),
    ];

    for res in &cases {
        assert!((400..500).contains(&res.status), "{} {}", res.status, res.text);
        assert!(res.json["error"].is_string(), "{}", res.text);
    }
    assert_eq!(s.get(&format!("/api/v1/groups/{}", w.group + 1), Auth::Admin).status, 404);
}

// ---- tokens ----

/// Introspects as the resource server; the call itself must succeed.
fn introspect(s: &Server, w: &World, token: &str) -> Value {
    let res = s.form("/oauth/introspect", w.registry.auth(), &[("token", token)]);
    assert_eq!(res.status, 200, "{token:.60}: {}", res.text);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    res.json
}

/// A world with one running job and its genuine token.
fn running(s: &Server) -> (World, i64, String) {
    let w = World::new(s);
    let job = w.job(s, true);
    let token = w.mint_ok(s, job, &[]);
    (w, job, token)
}

fn assert_untouched(s: &Server, w: &World, job: i64, token: &str) {
    assert_eq!(introspect(s, w, token)["active"], true, "the genuine token is still active");
    assert_eq!(job_view(s, job)["status"], "running");
}

#[test]
fn garbage_and_truncated_tokens_are_inactive() {
    let s = Server::start();
    let (w, job, token) = running(&s);
    let parts: Vec<&str> = token.split('.').collect();

    let cases = [
        "x".to_owned(),
        "a.b.c".to_owned(),
        "...".to_owned(),
        "a.b".to_owned(),
        "!!!.###.$$$".to_owned(),
        "e30.e30.".to_owned(),
        "bnVsbA.bnVsbA.bnVsbA".to_owned(),
        token[..token.len() - 10].to_owned(),
        token[..token.len() / 2].to_owned(),
        format!("{token}A"),
        format!("{token}.{}", parts[2]),
        format!("{}.{}", parts[0], parts[1]),
        format!("{}.{}.", parts[0], parts[1]),
        format!("{}.{}.{}", parts[0], b64url(br#"{"jti":"not-a-uuid"}"#), parts[2]),
        format!("{}.{}.{}", parts[0], b64url(b"[1,2,3]"), parts[2]),
        format!("{}.{}.{}", b64url(b"\xff\xfe"), parts[1], parts[2]),
        "A".repeat(60_000),
    ];
    for bad in &cases {
        assert_eq!(introspect(&s, &w, bad), json!({"active": false}), "{bad:.80}");
    }

    assert_untouched(&s, &w, job, &token);
}

#[test]
fn an_empty_token_parameter_is_an_invalid_request() {
    let s = Server::start();
    let (w, job, token) = running(&s);

    let res = s.form("/oauth/introspect", w.registry.auth(), &[("token", "")]);

    assert_oauth_error(&res, 400, "invalid_request");
    assert_untouched(&s, &w, job, &token);
}

#[test]
fn a_token_with_alg_none_is_inactive() {
    let s = Server::start();
    let (w, job, token) = running(&s);
    let (header, _) = decode(&token);

    let unsigned = with_header(&token, &json!({"alg": "none", "typ": "at+jwt", "kid": header["kid"]}), Some(""));
    let none_keeping_signature =
        with_header(&token, &json!({"alg": "none", "typ": "at+jwt", "kid": header["kid"]}), None);
    let none_without_kid = with_header(&token, &json!({"alg": "none", "typ": "at+jwt"}), Some(""));

    for forged in [&unsigned, &none_keeping_signature, &none_without_kid] {
        assert_eq!(introspect(&s, &w, forged), json!({"active": false}), "{forged}");
    }
    assert_untouched(&s, &w, job, &token);
}

#[test]
fn a_token_resigned_as_hs256_with_the_public_key_is_inactive() {
    let s = Server::start();
    let (w, job, token) = running(&s);
    let (header, _) = decode(&token);
    let kid = header["kid"].as_str().unwrap();
    let jwk = jwks(&s)["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).unwrap().clone();
    let x =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, jwk["x"].as_str().unwrap()).unwrap();
    let hs_header = json!({"alg": "HS256", "typ": "at+jwt", "kid": kid});
    let forge = |key: &[u8]| {
        let unsigned = with_header(&token, &hs_header, Some(""));
        let signing_input = unsigned.trim_end_matches('.');
        let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), signing_input.as_bytes());
        format!("{signing_input}.{}", b64url(tag.as_ref()))
    };

    for key in [jwk.to_string().into_bytes(), x, kid.as_bytes().to_vec()] {
        let forged = forge(&key);
        assert_eq!(introspect(&s, &w, &forged), json!({"active": false}), "{forged}");
    }
    assert_untouched(&s, &w, job, &token);
}

#[test]
fn a_token_with_an_unknown_kid_is_inactive() {
    let s = Server::start();
    let (w, job, token) = running(&s);
    let (header, _) = decode(&token);

    let unknown =
        with_header(&token, &json!({"alg": header["alg"], "typ": "at+jwt", "kid": "not-a-published-kid"}), None);
    let missing = with_header(&token, &json!({"alg": header["alg"], "typ": "at+jwt"}), None);
    let numeric = with_header(&token, &json!({"alg": header["alg"], "typ": "at+jwt", "kid": 7}), None);

    for forged in [&unknown, &missing, &numeric] {
        assert_eq!(introspect(&s, &w, forged), json!({"active": false}), "{forged}");
    }
    assert_untouched(&s, &w, job, &token);
}

#[test]
fn a_token_with_typ_jwt_is_inactive() {
    let s = Server::start();
    let (w, job, token) = running(&s);
    let (header, _) = decode(&token);

    let jwt = with_header(&token, &json!({"alg": header["alg"], "typ": "JWT", "kid": header["kid"]}), None);
    let no_typ = with_header(&token, &json!({"alg": header["alg"], "kid": header["kid"]}), None);

    assert_eq!(introspect(&s, &w, &jwt), json!({"active": false}));
    assert_eq!(introspect(&s, &w, &no_typ), json!({"active": false}));
    assert_untouched(&s, &w, job, &token);
}

#[test]
fn a_token_with_an_edited_payload_is_inactive() {
    let s = Server::start();
    let (w, job, token) = running(&s);
    let (_, mut claims) = decode(&token);
    claims["scope"] = json!("api write_repository");
    let parts: Vec<&str> = token.split('.').collect();

    let forged = format!("{}.{}.{}", parts[0], b64url(claims.to_string().as_bytes()), parts[2]);

    assert_eq!(introspect(&s, &w, &forged), json!({"active": false}));
    assert_untouched(&s, &w, job, &token);
}

#[test]
fn revoking_a_forged_copy_leaves_the_genuine_token_active() {
    let s = Server::start();
    let (w, job, token) = running(&s);
    let (header, _) = decode(&token);
    let forged = with_header(&token, &json!({"alg": "none", "typ": "at+jwt", "kid": header["kid"]}), Some(""));

    let res = s.form("/oauth/revoke", w.runner.auth(), &[("token", &forged)]);

    assert_eq!(res.status, 200, "RFC 7009: an invalid token is answered with 200: {}", res.text);
    assert_untouched(&s, &w, job, &token);
}

// ---- the other places a token or a details list comes in ----

/// Forged variants of a genuine token: alg none, HS256 over the public JWK, unknown kid,
/// typ JWT, an edited payload, and plain garbage.
fn forgeries(s: &Server, token: &str) -> Vec<String> {
    let (header, mut claims) = decode(token);
    let kid = header["kid"].as_str().unwrap();
    let jwk = jwks(s)["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).unwrap().to_string();
    let hs = with_header(token, &json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}), Some(""));
    let hs_input = hs.trim_end_matches('.');
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, jwk.as_bytes()), hs_input.as_bytes());
    claims["scope"] = json!("api");
    let parts: Vec<&str> = token.split('.').collect();
    vec![
        with_header(token, &json!({"alg": "none", "typ": "at+jwt", "kid": kid}), Some("")),
        format!("{hs_input}.{}", b64url(tag.as_ref())),
        with_header(token, &json!({"alg": header["alg"], "typ": "at+jwt", "kid": "unknown"}), None),
        with_header(token, &json!({"alg": header["alg"], "typ": "JWT", "kid": kid}), None),
        format!("{}.{}.{}", parts[0], b64url(claims.to_string().as_bytes()), parts[2]),
        token[..token.len() - 5].to_owned(),
        "garbage".to_owned(),
    ]
}

#[test]
fn malformed_authorization_details_are_refused_and_start_nothing() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, true);
    let too_many: Vec<Value> = (0..201)
        .map(|i| json!({"type": "ci_project_access", "project_id": i + 1, "actions": ["read_repository"]}))
        .collect();
    let cases = [
        "not json".to_owned(),
        "{}".to_owned(),
        "[{}]".to_owned(),
        "[1]".to_owned(),
        r#"[{"type": "other", "project_id": 1, "actions": ["read_repository"]}]"#.to_owned(),
        r#"[{"type": "ci_project_access", "project_id": "x", "actions": ["read_repository"]}]"#.to_owned(),
        r#"[{"type": "ci_project_access", "project_id": 1, "actions": ["sudo"]}]"#.to_owned(),
        r#"[{"type": "ci_project_access", "project_id": 1, "actions": "read_repository"}]"#.to_owned(),
        r#"[{"type": "ci_project_access", "actions": ["read_repository"]}]"#.to_owned(),
        format!("{}{}", "[".repeat(5000), "]".repeat(5000)),
        json!(too_many).to_string(),
    ];

    for details in &cases {
        let res = w.mint(&s, job, &[("authorization_details", details)]);
        assert!((400..500).contains(&res.status), "{details:.80}: {} {}", res.status, res.text);
        assert!(res.json["error"].is_string() && res.json.get("access_token").is_none(), "{}", res.text);
    }

    assert_eq!(job_view(&s, job)["status"], "pending");
    assert_eq!(common::metric(&s, "jobtoken_tokens_issued_total"), Some(0.0));
}

#[test]
fn forged_subject_tokens_cannot_be_exchanged() {
    let s = Server::start();
    let (w, job, token) = running(&s);

    for forged in forgeries(&s, &token) {
        let res = s.form(
            "/oauth/token",
            Auth::None,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                ("subject_token", &forged),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ],
        );
        assert!((400..500).contains(&res.status), "{forged:.60}: {} {}", res.status, res.text);
        assert!(res.json.get("access_token").is_none(), "{}", res.text);
        assert_eq!(res.header("cache-control"), Some("no-store"));
    }

    assert_untouched(&s, &w, job, &token);
    assert_eq!(common::metric(&s, "jobtoken_tokens_issued_total"), Some(1.0));
}

#[test]
fn forged_tokens_are_denied_by_the_decision_endpoint() {
    let s = Server::start();
    let (w, job, token) = running(&s);

    for forged in forgeries(&s, &token) {
        let res = s.json(
            "POST",
            "/api/v1/job_token/authorize",
            w.registry.auth(),
            json!({"token": forged, "project": w.project, "scope": "read_repository"}),
        );
        assert_eq!(res.status, 200, "{forged:.60}: {}", res.text);
        assert_eq!(res.json["allowed"], false, "{forged:.60}: {}", res.text);
        assert_eq!(res.json["granted_scopes"], json!([]));
    }

    assert_untouched(&s, &w, job, &token);
}

#[test]
fn malformed_decision_requests_are_client_errors() {
    let s = Server::start();
    let (w, job, token) = running(&s);

    let cases = [
        raw_json_as(&s, &w, "{\"token\": "),
        raw_json_as(&s, &w, r#"{"token": 1, "project": 1, "scope": "read_repository"}"#),
        raw_json_as(&s, &w, &json!({"token": token, "project": [1], "scope": "read_repository"}).to_string()),
        raw_json_as(&s, &w, &json!({"token": token, "project": w.project, "scope": "sudo"}).to_string()),
        raw_json_as(&s, &w, &json!({"token": token, "project": w.project}).to_string()),
        raw_json_as(
            &s,
            &w,
            &json!({"token": token, "project": w.project, "scope": "read_repository", "x": 1}).to_string(),
        ),
    ];

    for res in &cases {
        assert!((400..500).contains(&res.status), "{} {}", res.status, res.text);
        assert!(res.json["error"].is_string(), "{}", res.text);
    }
    assert_untouched(&s, &w, job, &token);
}

fn raw_json_as(s: &Server, w: &World, body: &str) -> Res {
    s.raw("POST", "/api/v1/job_token/authorize", w.registry.auth(), "application/json", body.as_bytes().to_vec())
}
