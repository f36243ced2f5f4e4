//! `POST /api/v1/tokens/inspect` against the real server: why a token is (not) accepted — its
//! state and the reason, its lineage, a decision — and who may ask; and mint responses that list
//! the granted `authorization_details` while refused ones are logged and counted.
#![allow(clippy::unwrap_used)]

mod common;

use common::{
    decode, exchange, metric, personal_access_token, project, project_member, sql, user, Auth, Res, Server, World,
};
use serde_json::{json, Value};

const INSPECT: &str = "/api/v1/tokens/inspect";

fn inspect_as(s: &Server, auth: Auth, body: Value) -> Res {
    s.json("POST", INSPECT, auth, body)
}

/// Inspects `token` as the admin; asserts 200.
fn inspect(s: &Server, token: &str) -> Value {
    let res = inspect_as(s, Auth::Admin, json!({ "token": token }));
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    res.json
}

fn assert_state(answer: &Value, state: &str, reason_has: &str) {
    assert_eq!(answer["state"], state, "{answer}");
    let reason = answer["reason"].as_str().unwrap();
    assert!(reason.contains(reason_has), "reason {reason:?} should mention {reason_has:?}");
}

/// `token` with one character of its signature changed (still valid base64url).
fn flip_signature(token: &str) -> String {
    let (rest, signature) = token.rsplit_once('.').unwrap();
    let mut chars: Vec<char> = signature.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    format!("{rest}.{}", chars.into_iter().collect::<String>())
}

#[test]
fn an_active_token_shows_its_verified_header_and_claims_and_why_it_is_active() {
    let s = Server::start();
    let w = World::new(&s);
    let token = w.mint_ok(&s, w.job(&s, true), &[]);
    let (header, claims) = decode(&token);

    let answer = inspect(&s, &token);

    assert_eq!(answer["verified"], true);
    assert_eq!(answer["header"], header);
    assert_eq!(answer["claims"], claims);
    assert_state(&answer, "active", "expires at");
    for absent in ["expired_at", "revoked_at", "job_finished_at", "decision"] {
        assert!(answer.get(absent).is_none(), "{absent}: {answer}");
    }
    let lineage = answer["lineage"].as_array().unwrap();
    assert_eq!(lineage.len(), 1, "{answer}");
    assert_eq!(lineage[0]["jti"], claims["jti"]);
    assert_eq!(lineage[0]["relation"], "self");
    assert_eq!(lineage[0]["parent_jti"], Value::Null);
    assert!(!s.log().contains(&token), "the pasted token is never logged");
}

#[test]
fn expired_revoked_finished_and_blocked_tokens_each_say_why_with_the_time() {
    let s = Server::start();
    let w = World::new(&s);

    let expired = w.mint_ok(&s, w.job(&s, true), &[]);
    let jti = decode(&expired).1["jti"].as_str().unwrap().replace('-', "");
    let set_past = match common::on_postgres() {
        true => format!("UPDATE issued_tokens SET expires_at = 1000000000 WHERE jti = decode('{jti}', 'hex');"),
        false => format!("UPDATE issued_tokens SET expires_at = 1000000000 WHERE jti = x'{jti}';"),
    };
    sql(&s.dir, &set_past);
    let answer = inspect(&s, &expired);
    assert_state(&answer, "expired", "expired at 2001-09-09T01:46:40Z");
    assert_eq!(answer["expired_at"], "2001-09-09T01:46:40Z");

    let revoked = w.mint_ok(&s, w.job(&s, true), &[]);
    let res = s.form("/oauth/revoke", w.runner.auth(), &[("token", &revoked)]);
    assert_eq!(res.status, 200, "{}", res.text);
    let answer = inspect(&s, &revoked);
    assert_state(&answer, "revoked", "revoked at ");
    assert!(answer["revoked_at"].is_string(), "{answer}");
    assert_eq!(answer["lineage"][0]["revoked_at"], answer["revoked_at"]);

    let job = w.job(&s, true);
    let finished = w.mint_ok(&s, job, &[]);
    let res = s.json("POST", &format!("/api/v1/jobs/{job}/finish"), w.runner.auth(), json!({"status": "failed"}));
    assert_eq!(res.status, 200, "{}", res.text);
    let finished_at = res.json["finished_at"].as_str().unwrap().to_owned();
    let answer = inspect(&s, &finished);
    assert_state(&answer, "job_finished", &format!("job {job} finished (failed) at {finished_at}"));
    assert_eq!(answer["job_finished_at"], finished_at);

    let blocked = w.mint_ok(&s, w.job(&s, true), &[]);
    s.admin("PATCH", &format!("/api/v1/users/{}", w.user), json!({"state": "blocked"}));
    let answer = inspect(&s, &blocked);
    assert_state(&answer, "user_blocked", "dev is blocked");
    assert_eq!(answer["verified"], true);
}

#[test]
fn foreign_altered_and_malformed_tokens_are_told_apart_and_never_trusted() {
    let s = Server::start();
    let w = World::new(&s);
    let ours = w.mint_ok(&s, w.job(&s, true), &[]);
    let elsewhere = Server::start();
    let other = World::new(&elsewhere);
    let foreign = other.mint_ok(&elsewhere, other.job(&elsewhere, true), &[]);

    let answer = inspect(&s, &foreign);
    assert_state(&answer, "key_unknown", "unverified");
    assert_eq!(answer["verified"], false);
    assert_eq!(answer["header"], decode(&foreign).0, "the header is shown as the token states it");
    assert_eq!(answer["claims"], decode(&foreign).1);
    assert_eq!(answer["lineage"], json!([]), "nothing is looked up for an unverified jti");

    let altered = flip_signature(&ours);
    let answer = inspect(&s, &altered);
    assert_state(&answer, "signature_invalid", "the signature does not verify");
    assert_eq!(answer["verified"], false);
    let decision =
        inspect_as(&s, Auth::Admin, json!({"token": altered, "project": w.project, "scope": "read_repository"}));
    assert_eq!(decision.json["decision"]["allowed"], false, "{}", decision.text);
    assert_eq!(decision.json["decision"]["source_project"], Value::Null, "an unverified token names no project");

    for malformed in ["garbage", "a.b", "a.b.c.d", ""] {
        let res = inspect_as(&s, Auth::Admin, json!({ "token": malformed }));
        assert_eq!(res.status, 400, "{malformed:?}: {}", res.text);
        assert_eq!(res.json["error"], "invalid_request", "{}", res.text);
    }
}

#[test]
fn an_exchanged_token_shows_its_lineage_up_to_the_runner_minted_root_and_the_root_its_descendants() {
    let s = Server::start();
    let w = World::new(&s);
    let root = w.mint_ok(&s, w.job(&s, true), &[]);
    let child = exchange(&s, &root, &[("scope", "read_repository")]);
    assert_eq!(child.status, 200, "{}", child.text);
    let child = child.json["access_token"].as_str().unwrap().to_owned();
    let (root_jti, child_jti) = (decode(&root).1["jti"].clone(), decode(&child).1["jti"].clone());

    let of_child = inspect(&s, &child);
    let lineage = of_child["lineage"].as_array().unwrap();
    assert_eq!(lineage.len(), 2, "{of_child}");
    assert_eq!((&lineage[0]["jti"], &lineage[0]["relation"]), (&root_jti, &json!("ancestor")));
    assert_eq!(lineage[0]["parent_jti"], Value::Null, "the root was minted by the runner");
    assert_eq!((&lineage[1]["jti"], &lineage[1]["relation"]), (&child_jti, &json!("self")));
    assert_eq!(lineage[1]["parent_jti"], root_jti);

    let of_root = inspect(&s, &root);
    let relations: Vec<_> = of_root["lineage"].as_array().unwrap().iter().map(|e| e["relation"].clone()).collect();
    assert_eq!(relations, [json!("self"), json!("descendant")], "{of_root}");
    assert_eq!(of_root["lineage"][1]["jti"], child_jti);

    // Revoking the root revokes the child, and the child says so.
    let res = s.form("/oauth/revoke", w.runner.auth(), &[("token", &root)]);
    assert_eq!(res.status, 200, "{}", res.text);
    assert_state(&inspect(&s, &child), "revoked", "it was exchanged from was revoked");
}

#[test]
fn with_project_and_scope_the_answer_is_the_decision_denied_then_allowed_by_an_allowlist_entry() {
    let s = Server::start();
    let w = World::new(&s);
    let target = project(&s, "lib", w.group, json!({}));
    project_member(&s, target, w.user, 30);
    let token = w.mint_ok(&s, w.job(&s, true), &[]);
    let ask = json!({"token": token, "project": "grp/lib", "scope": "read_repository"});

    let denied = inspect_as(&s, Auth::Admin, ask.clone());
    assert_eq!(denied.status, 200, "{}", denied.text);
    let decision = &denied.json["decision"];
    assert_eq!(decision["allowed"], false, "{decision}");
    assert!(decision["reason"].as_str().unwrap().contains("allowlist"), "{decision}");
    assert_eq!((&decision["source_project"], &decision["target_project"]), (&json!("grp/app"), &json!("grp/lib")));
    assert_eq!(decision["granted_scopes"], json!([]));

    let entry = s.json(
        "POST",
        &format!("/api/v1/projects/{target}/job_token_scope/allowlist"),
        Auth::Admin,
        json!({"source_project_id": w.project}),
    );
    assert_eq!(entry.status, 201, "{}", entry.text);
    let allowed = inspect_as(&s, Auth::Admin, ask);
    assert_eq!(allowed.json["decision"]["allowed"], true, "{}", allowed.text);
    assert!(allowed.json["decision"]["granted_scopes"].as_array().unwrap().contains(&json!("read_repository")));
    let authorizations =
        s.admin("GET", &format!("/api/v1/projects/{target}/job_token_scope/authorizations"), Value::Null);
    assert_eq!(authorizations, json!([]), "an inspection is not an access: nothing in the authorization log");

    for half in [json!({"token": token, "project": "grp/lib"}), json!({"token": token, "scope": "api"})] {
        assert_eq!(inspect_as(&s, Auth::Admin, half).status, 422);
    }
    let unknown_scope = json!({"token": token, "project": "grp/lib", "scope": "sudo"});
    assert_eq!(inspect_as(&s, Auth::Admin, unknown_scope).status, 422);
}

#[test]
fn a_maintainer_of_the_tokens_project_may_inspect_it_and_a_developer_or_another_projects_maintainer_may_not() {
    let s = Server::start();
    let w = World::new(&s);
    let token = w.mint_ok(&s, w.job(&s, true), &[]);
    let maintainer = user(&s, "maintainer");
    project_member(&s, w.project, maintainer, 40);
    let elsewhere = project(&s, "other", w.group, json!({}));
    let other_maintainer = user(&s, "other-maintainer");
    project_member(&s, elsewhere, other_maintainer, 40);
    let (maintainer_pat, developer_pat, other_pat) = (
        personal_access_token(&s, maintainer),
        personal_access_token(&s, w.user),
        personal_access_token(&s, other_maintainer),
    );

    let res = inspect_as(&s, Auth::Bearer(&maintainer_pat), json!({ "token": token }));
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json["state"], "active");

    let res = inspect_as(&s, Auth::Bearer(&developer_pat), json!({ "token": token }));
    assert_eq!(res.status, 403, "a Developer of the project: {}", res.text);
    assert!(res.json.get("claims").is_none());
    let res = inspect_as(&s, Auth::Bearer(&other_pat), json!({ "token": token }));
    assert_eq!(res.status, 404, "a project the user cannot see is not found, as elsewhere in the API: {}", res.text);
    assert!(res.json.get("claims").is_none());

    let res = inspect_as(&s, Auth::Bearer(&maintainer_pat), json!({ "token": flip_signature(&token) }));
    assert_eq!(res.status, 403, "an unverifiable token establishes no project: admin only: {}", res.text);
    let res = inspect_as(&s, w.registry.auth(), json!({ "token": token }));
    assert_eq!(res.status, 401, "resource servers use the decision endpoint: {}", res.text);
    let res = inspect_as(&s, Auth::None, json!({ "token": token }));
    assert_eq!(res.status, 401);
}

#[test]
fn mint_responses_list_granted_authorization_details_and_refused_ones_are_logged_and_counted() {
    let s = Server::start();
    let w = World::new(&s);
    let open = project(&s, "open", w.group, json!({}));
    project_member(&s, open, w.user, 30);
    let entry = s.json(
        "POST",
        &format!("/api/v1/projects/{open}/job_token_scope/allowlist"),
        Auth::Admin,
        json!({"source_project_id": w.project}),
    );
    assert_eq!(entry.status, 201, "{}", entry.text);
    let closed = project(&s, "closed", w.group, json!({}));
    project_member(&s, closed, w.user, 30);
    let details = json!([
        {"type": "ci_project_access", "project_path": "grp/open", "actions": ["read_repository"]},
        {"type": "ci_project_access", "project_path": "grp/closed", "actions": ["read_repository"]},
        {"type": "ci_project_access", "project_path": "grp/nowhere", "actions": ["read_repository"]},
    ])
    .to_string();

    let res = w.mint(&s, w.job(&s, true), &[("authorization_details", &details)]);

    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        res.json["authorization_details"],
        json!([{"type": "ci_project_access", "project_id": open, "project_path": "grp/open",
                "actions": ["read_repository"]}]),
        "{}",
        res.text
    );
    let refused = "jobtoken_authorization_details_refused_total";
    assert_eq!(metric(&s, &format!("{refused}{{reason=\"not_on_allowlist\"}}")), Some(1.0));
    assert_eq!(metric(&s, &format!("{refused}{{reason=\"unknown_project\"}}")), Some(1.0));
    let log = s.log();
    assert!(log.contains("grp/closed not granted (not_on_allowlist)"), "{log}");
    assert!(log.contains("grp/nowhere not granted (unknown_project)"), "{log}");
    assert!(!log.contains(res.json["access_token"].as_str().unwrap()), "no token in the log");

    // An exchange asking for a target its subject token does not hold is refused the same way.
    let subject = res.json["access_token"].as_str().unwrap();
    let ask = json!([{"type": "ci_project_access", "project_path": "grp/closed", "actions": ["read_repository"]}]);
    let narrowed = exchange(&s, subject, &[("authorization_details", &ask.to_string())]);
    assert_eq!(narrowed.status, 200, "{}", narrowed.text);
    assert!(narrowed.json.get("authorization_details").is_none(), "{}", narrowed.text);
    assert_eq!(metric(&s, &format!("{refused}{{reason=\"not_held\"}}")), Some(1.0));
}
