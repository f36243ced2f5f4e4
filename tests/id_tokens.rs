//! OIDC ID tokens by token exchange (issue 11, points 3–6): GitLab's claims, header `typ: JWT`
//! and a `kid` of the ID-token key family, a short life never past the subject token, `sub` made
//! of the components projects and groups choose, and what AWS, GCP, Azure and Vault accept —
//! checked as assertions and by PyJWT and Node's `jose` in strict mode.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{
    assert_api_error, assert_oauth_error, decode, exchange, group, interop_dir, interop_python, interop_setup, jwks,
    project, project_member, sql, verify_with_jwks, Auth, Res, Server, World,
};
use serde_json::{json, Value};

const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
const ISSUER: &str = "https://ci.example.test";
const AWS: &str = "sts.amazonaws.com";
const AZURE: &str = "api://AzureADTokenExchange";

/// Exchanges `subject` for an ID token for `audiences`.
fn id_token_res(s: &Server, subject: &str, audiences: &[&str]) -> Res {
    let mut extra = vec![("requested_token_type", ID_TOKEN)];
    extra.extend(audiences.iter().map(|a| ("audience", *a)));
    exchange(s, subject, &extra)
}

/// [`id_token_res`], asserting success; returns the ID token.
fn id_token(s: &Server, subject: &str, audiences: &[&str]) -> String {
    let res = id_token_res(s, subject, audiences);
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json["issued_token_type"], ID_TOKEN);
    assert_eq!(res.json["token_type"], "N_A", "not an access token (RFC 8693 §2.2.1)");
    assert_eq!(res.header("cache-control"), Some("no-store"));
    res.json["access_token"].as_str().unwrap().to_owned()
}

fn start(env: &[(&str, &str)]) -> Server {
    let mut all = vec![("JOBTOKEN_ISSUER", ISSUER)];
    all.extend_from_slice(env);
    Server::start_with(&all)
}

/// The JWK of `kid` in the JWKS.
fn jwk_of(s: &Server, kid: &str) -> Value {
    jwks(s)["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).cloned().unwrap_or(Value::Null)
}

fn settings_path(kind: &str, id: i64) -> String {
    format!("/api/v1/{kind}/{id}/job_token_scope")
}

fn set_sub(s: &Server, kind: &str, id: i64, components: Value) -> Res {
    s.json("PATCH", &settings_path(kind, id), Auth::Admin, json!({ "id_token_sub_claim_components": components }))
}

#[test]
fn an_id_token_has_gitlabs_claims_typ_jwt_a_published_kid_and_a_short_life() {
    let s = start(&[]);
    let w = World::new(&s);
    let job = w.job(&s, true);
    let subject = w.mint_ok(&s, job, &[]);
    let (_, p) = decode(&subject);

    let token = id_token(&s, &subject, &[AWS]);

    let (header, c) = decode(&token);
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["alg"], "RS256", "the ID-token family's default");
    let kid = header["kid"].as_str().unwrap();
    assert_eq!(jwk_of(&s, kid)["kty"], "RSA", "signed by a published ID-token key");
    assert_eq!(verify_with_jwks(&s, &token), c);
    assert_eq!(c["iss"], ISSUER);
    assert_eq!(c["aud"], AWS, "one audience is a string");
    assert_eq!(c["sub"], "project_path:grp/app:ref_type:branch:ref:main");
    for (claim, value) in [
        ("namespace_id", json!(p["namespace_id"].to_string())),
        ("namespace_path", json!("grp")),
        ("project_id", json!(p["project_id"].to_string())),
        ("project_path", json!("grp/app")),
        ("user_id", json!(w.user.to_string())),
        ("user_login", json!("dev")),
        ("pipeline_id", json!(p["pipeline_id"].to_string())),
        ("pipeline_source", json!("push")),
        ("job_id", json!(job.to_string())),
        ("ref", json!("main")),
        ("ref_type", json!("branch")),
        ("ref_path", json!("refs/heads/main")),
        ("ref_protected", json!("true")),
        ("runner_id", p["runner_id"].clone()),
        ("sha", json!("4b825dc642cb6eb9a060e54bf8d69288fbee4904")),
        ("project_visibility", json!("private")),
    ] {
        assert_eq!(c[claim], value, "{claim} in {c}");
    }
    assert!(c.get("environment").is_none(), "absent when the job has none");
    for time in ["iat", "nbf", "exp"] {
        assert!(c[time].is_i64(), "{time} is an integer: {c}");
    }
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 300, "JOBTOKEN_ID_TOKEN_TTL default");
    assert_ne!(c["jti"], p["jti"]);

    let several = id_token(&s, &subject, &[AWS, AZURE]);
    assert_eq!(decode(&several).1["aud"], json!([AWS, AZURE]), "several audiences are an array");
    assert_eq!(w.introspect(&s, &token)["active"], false, "an ID token is no job token");
}

#[test]
fn an_id_token_never_outlives_its_subject_token() {
    let s = start(&[("JOBTOKEN_ID_TOKEN_TTL", "3599")]);
    let w = World::new(&s);
    let subject = w.mint_ok(&s, w.job(&s, true), &[]);
    let (_, p) = decode(&subject);
    // The subject token has two minutes left, as the server records it.
    let left = p["iat"].as_i64().unwrap() + 120;
    sql(&s.dir, &format!("UPDATE issued_tokens SET expires_at = {left}"));

    let res = id_token_res(&s, &subject, &[AWS]);

    assert_eq!(res.status, 200, "{}", res.text);
    let (_, c) = decode(res.json["access_token"].as_str().unwrap());
    assert_eq!(c["exp"], json!(left), "capped by the subject token's expiry, not now + 3599");
    assert!(res.json["expires_in"].as_i64().unwrap() <= 120, "{}", res.text);
}

#[test]
fn an_id_token_is_refused_once_the_job_finished_and_for_a_blocked_user() {
    let s = start(&[]);
    let w = World::new(&s);
    let job = w.job(&s, true);
    let subject = w.mint_ok(&s, job, &[]);
    let finished = s.json("POST", &format!("/api/v1/jobs/{job}/finish"), w.runner.auth(), json!({"status": "success"}));
    assert_eq!(finished.status, 200, "{}", finished.text);
    let res = id_token_res(&s, &subject, &[AWS]);
    assert_oauth_error(&res, 400, "invalid_grant");
    assert!(res.json["error_description"].as_str().unwrap().contains("finished"), "{}", res.text);

    let subject = w.mint_ok(&s, w.job(&s, true), &[]);
    let blocked = s.json("PATCH", &format!("/api/v1/users/{}", w.user), Auth::Admin, json!({"state": "blocked"}));
    assert_eq!(blocked.status, 200, "{}", blocked.text);
    let res = id_token_res(&s, &subject, &[AWS]);
    assert_oauth_error(&res, 400, "invalid_grant");
    assert!(res.json["error_description"].as_str().unwrap().contains("blocked"), "{}", res.text);
}

#[test]
fn an_id_token_needs_an_audience_and_takes_no_scope() {
    let s = start(&[]);
    let w = World::new(&s);
    let subject = w.mint_ok(&s, w.job(&s, true), &[]);

    let res = id_token_res(&s, &subject, &[]);
    assert_oauth_error(&res, 400, "invalid_request");
    assert!(res.json["error_description"].as_str().unwrap().contains("audience is required"), "{}", res.text);

    let res = exchange(&s, &subject, &[("requested_token_type", ID_TOKEN), ("audience", AWS), ("scope", "api")]);
    assert_oauth_error(&res, 400, "invalid_request");
    let res = id_token_res(&s, "not.a.token", &[AWS]);
    assert_oauth_error(&res, 400, "invalid_grant");
}

#[test]
fn sub_is_gitlabs_default_until_the_nearest_group_or_the_project_chooses_its_components() {
    let s = start(&[]);
    let w = World::new(&s);
    let sub_group = group(&s, "team", Some(w.group));
    let inner = project(&s, "svc", sub_group, json!({}));
    project_member(&s, inner, w.user, 30);
    let subject_of = |p: i64| {
        let job = common::job_for(&s, p, w.user, true);
        w.mint_ok(&s, job, &[])
    };
    let sub_of = |p: i64| decode(&id_token(&s, &subject_of(p), &[AWS])).1["sub"].as_str().unwrap().to_owned();
    assert_eq!(sub_of(inner), "project_path:grp/team/svc:ref_type:branch:ref:main");

    let root = set_sub(&s, "groups", w.group, json!(["project_id", "ref_type"]));
    assert_eq!(root.status, 200, "{}", root.text);
    assert_eq!(root.json["id_token_sub_claim_components"], json!(["project_id", "ref_type"]));
    assert_eq!(sub_of(inner), format!("project_id:{inner}:ref_type:branch"), "inherited from the root group");
    assert_eq!(sub_of(w.project), format!("project_id:{}:ref_type:branch", w.project));

    assert_eq!(set_sub(&s, "groups", sub_group, json!(["namespace_id", "ref_protected"])).status, 200);
    assert_eq!(sub_of(inner), format!("namespace_id:{sub_group}:ref_protected:true"), "the nearest group wins");

    let own = set_sub(&s, "projects", inner, json!(["job_id", "ref_type", "ref_protected"]));
    assert_eq!(own.status, 200, "{}", own.text);
    let job = common::job_for(&s, inner, w.user, true);
    let sub = decode(&id_token(&s, &w.mint_ok(&s, job, &[]), &[AWS])).1["sub"].clone();
    assert_eq!(sub, format!("job_id:{job}:ref_type:branch:ref_protected:true"), "the project's own wins");
    let shown = s.get(&settings_path("projects", inner), Auth::Admin).json;
    assert_eq!(shown["id_token_sub_claim_components_setting"], json!(["job_id", "ref_type", "ref_protected"]));

    assert_eq!(set_sub(&s, "projects", inner, Value::Null).status, 200, "null inherits again");
    assert_eq!(sub_of(inner), format!("namespace_id:{sub_group}:ref_protected:true"));
    let shown = s.get(&settings_path("projects", inner), Auth::Admin).json;
    assert_eq!(shown["id_token_sub_claim_components_setting"], Value::Null);
    assert_eq!(shown["id_token_sub_claim_components"], json!(["namespace_id", "ref_protected"]));
}

/// A pipeline of `project` on `ref_` with one job per environment (`None`: no environment).
fn pipeline_res(s: &Server, project: i64, user: i64, ref_: &str, environments: &[Option<&str>]) -> Res {
    let jobs: Vec<Value> = environments.iter().map(|e| json!({"name": "build", "environment": e})).collect();
    let body = json!({"user_id": user, "ref": ref_, "ref_type": "branch", "ref_protected": false, "jobs": jobs});
    s.json("POST", &format!("/api/v1/projects/{project}/pipelines"), Auth::Admin, body)
}

fn pipeline_count(s: &Server, project: i64) -> String {
    let listed = s.get(&format!("/api/v1/projects/{project}/pipelines"), Auth::Admin);
    listed.header("x-total").unwrap_or_default().to_owned()
}

/// The message of a refusal of a `sub` that would be too long names the limit, the byte count,
/// the components and how to fix it.
fn assert_sub_refusal(res: &Res, status: u16, bytes: usize, components: &str) {
    assert_api_error(res, status);
    let message = res.json["message"].as_str().unwrap();
    for part in ["127-byte limit", &format!("{bytes} bytes"), components, "shorter components"] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
}

#[test]
fn a_malformed_sub_setting_is_refused_and_changes_nothing() {
    let s = start(&[]);
    let w = World::new(&s);
    for (kind, id) in [("projects", w.project), ("groups", w.group)] {
        assert_api_error(&set_sub(&s, kind, id, json!(["project_id", "password"])), 422);
        assert_api_error(&set_sub(&s, kind, id, json!([])), 422);
        assert_api_error(&set_sub(&s, kind, id, json!(["job_id", "job_id"])), 422);
        let shown = s.get(&settings_path(kind, id), Auth::Admin).json;
        assert_eq!(shown["id_token_sub_claim_components"], json!(["project_path", "ref_type", "ref"]), "{shown}");
        assert_eq!(shown["id_token_sub_claim_components_setting"], Value::Null);
    }
}

#[test]
fn a_sub_setting_is_refused_when_the_real_values_of_a_running_job_would_exceed_127_bytes() {
    let s = start(&[]);
    let w = World::new(&s);
    // `project_path:grp/app:ref_type:branch:ref:` is 41 bytes: with an 80-byte ref, 121.
    let long_ref = "r".repeat(80);
    let created = pipeline_res(&s, w.project, w.user, &long_ref, &[Some("production")]);
    assert_eq!(created.status, 201, "the default fits: {}", created.text);
    let job = created.json["jobs"][0]["id"].as_i64().unwrap();
    let longer = json!(["project_path", "ref_type", "ref", "environment"]);

    for (kind, id) in [("projects", w.project), ("groups", w.group)] {
        let refused = set_sub(&s, kind, id, longer.clone());
        assert_sub_refusal(
            &refused,
            422,
            121 + ":environment:production".len(),
            "project_path,ref_type,ref,environment",
        );
        assert!(refused.json["message"].as_str().unwrap().contains(&format!("job {job}")), "{}", refused.text);
        let shown = s.get(&settings_path(kind, id), Auth::Admin).json;
        assert_eq!(shown["id_token_sub_claim_components_setting"], Value::Null, "nothing changed: {shown}");
    }
    // Paths alone fit: the same setting is refused only because of that job's values.
    assert_eq!(set_sub(&s, "projects", w.project, json!(["project_path", "namespace_path"])).status, 200);
    let finished = s.json("POST", &format!("/api/v1/jobs/{job}/finish"), Auth::Admin, json!({"status": "success"}));
    assert_eq!(finished.status, 200, "{}", finished.text);
    let accepted = set_sub(&s, "groups", w.group, longer);
    assert_eq!(accepted.status, 200, "a finished job gets no more ID tokens: {}", accepted.text);
}

#[test]
fn a_pipeline_whose_sub_would_exceed_127_bytes_is_refused_with_a_400_and_creates_nothing() {
    let s = start(&[]);
    let w = World::new(&s);
    let before = pipeline_count(&s, w.project);

    let refused = pipeline_res(&s, w.project, w.user, &"r".repeat(87), &[None]);

    assert_sub_refusal(&refused, 400, 128, "project_path,ref_type,ref");
    assert!(refused.json["message"].as_str().unwrap().contains("the default"), "{}", refused.text);
    assert_eq!(pipeline_count(&s, w.project), before, "no pipeline was created");
    assert_eq!(pipeline_res(&s, w.project, w.user, &"r".repeat(86), &[None]).status, 201, "127 bytes fit");

    // Each job's environment counts, under the project's own setting.
    assert_eq!(set_sub(&s, "projects", w.project, json!(["project_id", "environment"])).status, 200);
    let env = "e".repeat(110);
    let refused = pipeline_res(&s, w.project, w.user, "main", &[None, Some(&env)]);
    let bytes = format!("project_id:{}:environment:", w.project).len() + 110;
    assert_sub_refusal(&refused, 400, bytes, "project_id,environment");
    assert!(refused.json["message"].as_str().unwrap().contains("own setting"), "{}", refused.text);
}

#[test]
fn a_long_path_project_is_created_and_chooses_a_shorter_sub_before_its_first_pipeline() {
    let s = start(&[]);
    let w = World::new(&s);
    let path = "p".repeat(120);
    let long = project(&s, &path, w.group, json!({}));
    project_member(&s, long, w.user, 30);
    let refused = pipeline_res(&s, long, w.user, "main", &[None]);
    assert_sub_refusal(
        &refused,
        400,
        format!("project_path:grp/{path}:ref_type:branch:ref:main").len(),
        "project_path",
    );

    assert_eq!(set_sub(&s, "projects", long, json!(["project_id", "ref_type", "ref"])).status, 200);
    let created = pipeline_res(&s, long, w.user, "main", &[None]);
    assert_eq!(created.status, 201, "{}", created.text);

    let job = created.json["jobs"][0]["id"].as_i64().unwrap();
    let sub = decode(&id_token(&s, &w.mint_ok(&s, job, &[]), &[AWS])).1["sub"].clone();
    assert_eq!(sub, format!("project_id:{long}:ref_type:branch:ref:main"));

    // A group's setting is checked for the projects that inherit it, not those with their own.
    assert_eq!(set_sub(&s, "groups", w.group, json!(["project_path", "ref_type"])).status, 200);
    let inherit = set_sub(&s, "projects", long, Value::Null);
    let bytes = format!("project_path:grp/{path}:ref_type:branch").len();
    assert_sub_refusal(&inherit, 422, bytes, "project_path,ref_type");
    assert!(inherit.json["message"].as_str().unwrap().contains("inherited from group grp"), "{}", inherit.text);
}

#[test]
fn a_project_whose_path_would_overflow_its_groups_sub_setting_is_refused() {
    let s = start(&[]);
    let w = World::new(&s);
    assert_eq!(set_sub(&s, "groups", w.group, json!(["project_path", "ref_type"])).status, 200);
    let path = "p".repeat(120);

    let refused = s.json("POST", "/api/v1/projects", Auth::Admin, json!({"path": path, "namespace_id": w.group}));

    assert_sub_refusal(
        &refused,
        400,
        format!("project_path:grp/{path}:ref_type:branch").len(),
        "project_path,ref_type",
    );
    assert!(refused.json["message"].as_str().unwrap().contains("group grp"), "{}", refused.text);
    assert_eq!(s.get(&format!("/api/v1/projects/grp%2F{path}"), Auth::Admin).status, 404, "not created");
    assert_eq!(
        s.json("POST", "/api/v1/projects", Auth::Admin, json!({"path": "short", "namespace_id": w.group})).status,
        201
    );
}

#[test]
fn the_key_api_lists_both_families_and_rotates_one_family_at_a_time() {
    let s = start(&[]);
    let w = World::new(&s);
    let all = s.get("/api/v1/keys", Auth::Admin);
    assert_eq!(all.status, 200, "{}", all.text);
    let families: Vec<&str> = all.json.as_array().unwrap().iter().map(|k| k["family"].as_str().unwrap()).collect();
    assert_eq!(families, ["job", "job", "id_token", "id_token"], "{}", all.text);
    let of = |family: &str| s.get(&format!("/api/v1/keys?family={family}"), Auth::Admin).json;
    let (jobs, ids) = (of("job"), of("id_token"));
    assert!(ids.as_array().unwrap().iter().all(|k| k["family"] == "id_token" && k["alg"] == "RS256"), "{ids}");
    assert_api_error(&s.get("/api/v1/keys?family=nope", Auth::Admin), 400);
    let next = ids.as_array().unwrap().iter().find(|k| k["state"] == "next").unwrap()["kid"].clone();

    let early = s.json("POST", "/api/v1/keys/rotate?family=id_token", Auth::Admin, Value::Null);
    assert_api_error(&early, 409);
    assert_eq!(of("id_token"), ids, "a refused rotation changes nothing");
    let rotated = s.json("POST", "/api/v1/keys/rotate?family=id_token&force=true", Auth::Admin, Value::Null);
    assert_eq!(rotated.status, 200, "{}", rotated.text);

    let listed = rotated.json.as_array().unwrap();
    assert!(listed.iter().all(|k| k["family"] == "id_token"), "the rotated family's keys: {}", rotated.text);
    assert_eq!(listed.iter().find(|k| k["state"] == "active").unwrap()["kid"], next);
    assert_eq!(of("job"), jobs, "the job-token keys are left alone");
    let subject = w.mint_ok(&s, w.job(&s, true), &[]);
    assert_eq!(decode(&id_token(&s, &subject, &[AWS])).0["kid"], next, "the promoted key signs ID tokens");
    let events = s.get("/api/v1/audit_events", Auth::Admin).json;
    let event = events.as_array().unwrap().iter().find(|e| e["action"] == "id_token_signing_keys.rotation_forced");
    assert!(event.is_some_and(|e| e["author"]["type"] == "admin"), "audited as the admin's: {events}");
}

#[test]
fn the_id_token_algorithm_is_recorded_by_the_first_start_and_kept_by_differently_configured_starts() {
    let s = start(&[("JOBTOKEN_ID_TOKEN_SIGNING_ALG", "ES256")]);
    let w = World::new(&s);
    assert_eq!(decode(&id_token(&s, &w.mint_ok(&s, w.job(&s, true), &[]), &[AWS])).0["alg"], "ES256");
    let dir = s.stop();

    let s = Server::start_in(dir, &[("JOBTOKEN_ISSUER", ISSUER), ("JOBTOKEN_ID_TOKEN_SIGNING_ALG", "RS256")]);

    assert!(s.log().contains("JOBTOKEN_ID_TOKEN_SIGNING_ALG=RS256 is ignored"), "{}", s.log());
    assert_eq!(decode(&id_token(&s, &w.mint_ok(&s, w.job(&s, true), &[]), &[AWS])).0["alg"], "ES256");
    let ids = s.get("/api/v1/keys?family=id_token", Auth::Admin).json;
    assert!(ids.as_array().unwrap().iter().all(|k| k["alg"] == "ES256"), "no key of the ignored setting: {ids}");
    let doc = s.get("/.well-known/openid-configuration", Auth::None).json;
    assert_eq!(doc["id_token_signing_alg_values_supported"], json!(["ES256"]));
}

#[test]
fn a_sub_setting_change_is_audited() {
    let s = start(&[]);
    let w = World::new(&s);
    assert_eq!(set_sub(&s, "projects", w.project, json!(["project_id", "ref_type"])).status, 200);

    let events = s.get(&format!("/api/v1/projects/{}/audit_events", w.project), Auth::Admin);
    assert_eq!(events.status, 200, "{}", events.text);
    let event = events
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "job_token_scope.settings.updated")
        .cloned()
        .unwrap_or_else(|| panic!("no settings event: {}", events.text));
    assert_eq!(event["details"]["before"]["id_token_sub_claim_components"], json!(["project_path", "ref_type", "ref"]));
    assert_eq!(event["details"]["after"]["id_token_sub_claim_components"], json!(["project_id", "ref_type"]));
}

#[test]
fn the_jwks_publishes_both_key_families_and_discovery_names_the_id_token_algorithm() {
    let s = start(&[("JOBTOKEN_SIGNING_ALG", "EdDSA")]);
    let w = World::new(&s);
    let subject = w.mint_ok(&s, w.job(&s, true), &[]);
    let kinds: Vec<String> =
        jwks(&s)["keys"].as_array().unwrap().iter().map(|k| k["kty"].as_str().unwrap().to_owned()).collect();
    assert!(kinds.contains(&"OKP".to_owned()) && kinds.contains(&"RSA".to_owned()), "{kinds:?}");
    assert_eq!(jwk_of(&s, decode(&subject).0["kid"].as_str().unwrap())["kty"], "OKP", "job tokens: EdDSA");
    assert_eq!(decode(&id_token(&s, &subject, &[AWS])).0["alg"], "RS256", "ID tokens: never EdDSA");
    for url in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let doc = s.get(url, Auth::None).json;
        assert_eq!(doc["id_token_signing_alg_values_supported"], json!(["RS256"]), "{url}: {doc}");
        assert_eq!(doc["issuer"], ISSUER);
        assert_eq!(doc["jwks_uri"], format!("{ISSUER}/.well-known/jwks.json"));
        assert_eq!(doc["response_types_supported"], json!(["id_token"]));
        assert_eq!(doc["subject_types_supported"], json!(["public"]));
    }

    let s = start(&[("JOBTOKEN_ID_TOKEN_SIGNING_ALG", "ES256")]);
    let w = World::new(&s);
    let token = id_token(&s, &w.mint_ok(&s, w.job(&s, true), &[]), &[AWS]);
    assert_eq!(decode(&token).0["alg"], "ES256");
    let doc = s.get("/.well-known/openid-configuration", Auth::None).json;
    assert_eq!(doc["id_token_signing_alg_values_supported"], json!(["ES256"]));

    let refused =
        Server::start_expecting_failure_with(common::temp_dir(), &[("JOBTOKEN_ID_TOKEN_SIGNING_ALG", "EdDSA")]);
    assert!(refused.contains("RS256 or ES256"), "{refused}");
}

#[test]
fn the_id_token_family_rotates_publishing_its_next_key_before_it_signs() {
    let s = start(&[("JOBTOKEN_KEY_TICK_SECONDS", "1"), ("JOBTOKEN_KEY_ROTATION_DAYS", "1")]);
    let w = World::new(&s);
    let subject = w.mint_ok(&s, w.job(&s, true), &[]);
    let first = decode(&id_token(&s, &subject, &[AWS])).0["kid"].as_str().unwrap().to_owned();
    let rsa: Vec<Value> = jwks(&s)["keys"].as_array().unwrap().iter().filter(|k| k["kty"] == "RSA").cloned().collect();
    assert_eq!(rsa.len(), 2, "active and next ID-token keys are published: {rsa:?}");
    let next = rsa.iter().map(|k| k["kid"].as_str().unwrap()).find(|k| *k != first).unwrap().to_owned();

    // Two days on for the active key, and the next one published long enough.
    sql(
        &s.dir,
        "UPDATE signing_keys SET created_at = created_at - 200000, activated_at = activated_at - 200000
         WHERE family = 'id_token'",
    );
    let rotated = common::eventually(std::time::Duration::from_secs(10), || {
        decode(&id_token(&s, &subject, &[AWS])).0["kid"] == next.as_str()
    });
    assert!(rotated, "the published next key signs after the rotation");
    let kids: Vec<Value> = jwks(&s)["keys"].as_array().unwrap().iter().map(|k| k["kid"].clone()).collect();
    assert!(kids.contains(&json!(first)), "the retired key stays published while its ID tokens live");
    assert_eq!(decode(&subject).0["kid"], decode(&w.mint_ok(&s, w.job(&s, true), &[])).0["kid"], "job keys kept");
}

#[test]
fn a_default_audience_token_is_exchanged_for_a_registered_resource_servers_audience_and_no_other() {
    let s = start(&[]);
    let w = World::new(&s);
    let registry = "https://registry.example.test";
    let r = s.admin("POST", "/api/v1/resource_servers", json!({"name": "oci", "audience": [registry]}));
    assert!(r["id"].is_i64(), "{r}");
    let job = w.job(&s, true);
    let default = w.mint_ok(&s, job, &[]);
    assert_eq!(decode(&default).1["aud"], ISSUER, "the default audience");

    let res = exchange(&s, &default, &[("audience", registry)]);
    assert_eq!(res.status, 200, "{}", res.text);
    let (_, c) = decode(res.json["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], registry);
    assert_eq!(c["exp"], decode(&default).1["exp"], "never outlives the parent");

    assert_oauth_error(&exchange(&s, &default, &[("audience", "https://unregistered.example")]), 400, "invalid_target");
    let explicit = w.mint_ok(&s, job, &[("audience", "https://pkg.example")]);
    assert_oauth_error(&exchange(&s, &explicit, &[("audience", registry)]), 400, "invalid_target");
}

// ---- federation conformance (issue 11, point 6) ----

/// `aud` as a list.
fn audiences(c: &Value) -> Vec<String> {
    match &c["aud"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(list) => list.iter().map(|a| a.as_str().unwrap().to_owned()).collect(),
        other => panic!("aud is {other}"),
    }
}

#[test]
fn id_tokens_meet_what_aws_gcp_azure_and_vault_document() {
    let s = start(&[]);
    let w = World::new(&s);
    let subject = w.mint_ok(&s, w.job(&s, true), &[]);
    let discovery = s.get("/.well-known/openid-configuration", Auth::None).json;

    // AWS STS AssumeRoleWithWebIdentity: RS256/ES256, a kid, iss = the https issuer of the
    // provider, aud = the client id, integer times.
    let (h, c) = decode(&id_token(&s, &subject, &[AWS]));
    assert!(["RS256", "ES256"].contains(&h["alg"].as_str().unwrap()), "{h}");
    assert!(h["kid"].is_string(), "{h}");
    assert!(c["iss"].as_str().unwrap().starts_with("https://") && c["iss"] == discovery["issuer"], "{c}");
    assert_eq!(audiences(&c), [AWS]);
    for time in ["iat", "exp", "nbf"] {
        assert!(c[time].is_i64(), "{time}: {c}");
    }

    // GCP workload identity federation: exp - iat under an hour, google.subject (assertion.sub)
    // at most 127 bytes, a JWKS of RSA or EC keys only.
    assert!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap() < 3600, "{c}");
    assert!(c["sub"].as_str().unwrap().len() <= 127, "{c}");
    for key in jwks(&s)["keys"].as_array().unwrap() {
        assert!(["RSA", "EC"].contains(&key["kty"].as_str().unwrap()), "{key}");
    }

    // Azure federated credentials: RSA, one single-valued aud, iat.
    let (h, c) = decode(&id_token(&s, &subject, &[AZURE]));
    assert_eq!(h["alg"], "RS256");
    assert_eq!(c["aud"], AZURE, "a string, not an array");
    assert!(c["iat"].is_i64());

    // Vault jwt auth: bound_audiences, and bound_claims on project_path and ref_protected, which
    // Vault compares as strings.
    let (_, c) = decode(&id_token(&s, &subject, &["vault.example.test"]));
    assert!(audiences(&c).contains(&"vault.example.test".to_owned()));
    assert_eq!(c["project_path"], "grp/app");
    assert_eq!(c["ref_protected"], "true");
    let unprotected = w.mint_ok(&s, w.job(&s, false), &[]);
    assert_eq!(decode(&id_token(&s, &unprotected, &["vault.example.test"])).1["ref_protected"], "false");
}

#[derive(Debug, Clone, Copy)]
enum Verifier {
    PyJwt,
    Jose,
}

impl Verifier {
    /// Runs the strict verifier: the claims when it accepts `token`, its reason when it rejects.
    fn verify(self, s: &Server, audience: &str, alg: &str, token: &str) -> Result<Value, String> {
        let dir = interop_dir();
        let mut cmd = match self {
            Verifier::PyJwt => {
                let mut cmd = Command::new(interop_python());
                cmd.arg(dir.join("verify_id_token_pyjwt.py"));
                cmd
            }
            Verifier::Jose => {
                let mut cmd = Command::new("node");
                cmd.arg(dir.join("verify_id_token_jose.mjs"));
                cmd
            }
        };
        let out = cmd
            .args([&s.url("/.well-known/jwks.json"), ISSUER, audience, alg, token])
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| panic!("running the {self:?} verifier: {e}"));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            return Ok(serde_json::from_slice(&out.stdout).unwrap());
        }
        assert!(stderr.contains("rejected the token"), "{self:?} failed without a verdict: {stderr}");
        Err(stderr)
    }
}

#[test]
fn pyjwt_and_jose_accept_id_tokens_in_strict_mode_and_refuse_job_tokens() {
    interop_setup();
    for alg in ["RS256", "ES256"] {
        let s = start(&[("JOBTOKEN_ID_TOKEN_SIGNING_ALG", alg)]);
        let w = World::new(&s);
        let subject = w.mint_ok(&s, w.job(&s, true), &[]);
        let token = id_token(&s, &subject, &[AWS]);
        for verifier in [Verifier::PyJwt, Verifier::Jose] {
            let claims = verifier.verify(&s, AWS, alg, &token).unwrap_or_else(|e| panic!("{verifier:?} {alg}: {e}"));
            assert_eq!(claims, decode(&token).1);
            assert!(verifier.verify(&s, AZURE, alg, &token).is_err(), "{verifier:?}: another audience");
            let job_alg = decode(&subject).0["alg"].as_str().unwrap().to_owned();
            let job_token = w.mint_ok(&s, w.job(&s, true), &[("audience", AWS)]);
            assert!(verifier.verify(&s, AWS, &job_alg, &job_token).is_err(), "{verifier:?}: typ at+jwt is no ID token");
        }
    }
}
