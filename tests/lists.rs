//! Lists (GitLab's pagination), single-resource reads, deletions with their refusals, and
//! lookup of projects and groups by URL-encoded full path (issue 9 points 1 and 2).
#![allow(clippy::unwrap_used)]

mod common;

use common::{
    group, job_view, personal_access_token, pipeline_jobs, project, project_member, runner, user, Auth, Res, Server,
    World,
};
use serde_json::{json, Value};

fn ids(res: &Res) -> Vec<i64> {
    res.json
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {}", res.text))
        .iter()
        .map(|v| v["id"].as_i64().unwrap())
        .collect()
}

fn header<'a>(res: &'a Res, name: &str) -> &'a str {
    res.header(name).unwrap_or_else(|| panic!("no {name} header"))
}

fn ok(s: &Server, path: &str) -> Res {
    let res = s.get(path, Auth::Admin);
    assert_eq!(res.status, 200, "GET {path}: {}", res.text);
    res
}

#[test]
fn a_list_is_paged_with_gitlabs_headers_and_links_in_a_stable_order() {
    let s = Server::start();
    let made: Vec<i64> = (0..5).map(|i| user(&s, &format!("u{i}"))).collect();

    let second = ok(&s, "/api/v1/users?per_page=2&page=2");

    assert_eq!(ids(&second), made[2..4]);
    let headers: Vec<&str> = ["x-total", "x-total-pages", "x-page", "x-per-page", "x-next-page", "x-prev-page"]
        .map(|h| header(&second, h))
        .into();
    assert_eq!(headers, ["5", "3", "2", "2", "3", "1"]);
    let link = header(&second, "link");
    for rel in [
        r#"page=3&per_page=2>; rel="next""#,
        r#"page=1&per_page=2>; rel="prev""#,
        r#"page=1&per_page=2>; rel="first""#,
        r#"page=3&per_page=2>; rel="last""#,
    ] {
        assert!(link.contains(rel), "{rel} missing from {link}");
    }
    assert!(link.starts_with(&format!("<{}/api/v1/users?", s.base)), "absolute links: {link}");

    let first = ok(&s, "/api/v1/users?per_page=2");
    assert_eq!((header(&first, "x-prev-page"), header(&first, "x-next-page")), ("", "2"));
    assert!(!header(&first, "link").contains("rel=\"prev\""));
    let last = ok(&s, "/api/v1/users?per_page=2&page=3");
    assert_eq!((ids(&last), header(&last, "x-next-page")), (vec![made[4]], ""));
    assert!(!header(&last, "link").contains("rel=\"next\""));
    let beyond = ok(&s, "/api/v1/users?per_page=2&page=9");
    assert_eq!(ids(&beyond), Vec::<i64>::new());

    let walked: Vec<i64> = (1..=3).flat_map(|p| ids(&ok(&s, &format!("/api/v1/users?per_page=2&page={p}")))).collect();
    assert_eq!(walked, made, "every row once, by id");
}

#[test]
fn per_page_defaults_to_20_is_clamped_to_100_and_a_bad_page_is_400() {
    let s = Server::start();
    for i in 0..21 {
        user(&s, &format!("u{i}"));
    }

    let default = ok(&s, "/api/v1/users");
    assert_eq!(
        (ids(&default).len(), header(&default, "x-per-page"), header(&default, "x-total-pages")),
        (20, "20", "2")
    );
    let clamped = ok(&s, "/api/v1/users?per_page=500");
    assert_eq!((ids(&clamped).len(), header(&clamped, "x-per-page")), (21, "100"));

    for bad in ["page=0", "page=abc", "per_page=-1", "per_page=0", "page=1.5"] {
        let res = s.get(&format!("/api/v1/users?{bad}"), Auth::Admin);
        assert_eq!((res.status, res.json["error"].as_str()), (400, Some("invalid_request")), "{bad}: {}", res.text);
    }
}

#[test]
fn projects_and_groups_filter_by_namespace_and_by_search_with_wildcards_taken_literally() {
    let s = Server::start();
    let (grp, other) = (group(&s, "grp", None), group(&s, "Other", None));
    let app = project(&s, "app", grp, json!({}));
    let my_lib = project(&s, "my_lib", grp, json!({}));
    let application = project(&s, "application", other, json!({}));
    let _mylib = project(&s, "mylib", other, json!({}));

    assert_eq!(ids(&ok(&s, "/api/v1/projects?search=APP")), [app, application]);
    assert_eq!(ids(&ok(&s, "/api/v1/projects?search=my_")), [my_lib], "'_' is no wildcard");
    assert_eq!(ids(&ok(&s, "/api/v1/projects?search=%25")), Vec::<i64>::new(), "'%' is no wildcard");
    assert_eq!(ids(&ok(&s, "/api/v1/projects?search=other%2Fapp")), [application], "the full path matches");
    assert_eq!(ids(&ok(&s, &format!("/api/v1/projects?namespace_id={grp}"))), [app, my_lib]);
    let both = ok(&s, &format!("/api/v1/projects?namespace_id={grp}&search=lib&per_page=1"));
    assert_eq!((ids(&both), header(&both, "x-total")), (vec![my_lib], "1"));
    assert!(header(&both, "link").contains("namespace_id="), "filters stay in the links");
    assert_eq!(ids(&ok(&s, "/api/v1/groups?search=oth")), [other]);
    assert_eq!(ids(&ok(&s, "/api/v1/groups")), [grp, other]);

    for bad in ["namespace_id=abc", "namespace_id=0", "namespace_id=-3"] {
        assert_eq!(s.get(&format!("/api/v1/projects?{bad}"), Auth::Admin).status, 400, "{bad}");
    }
    let long = "a".repeat(256);
    assert_eq!(s.get(&format!("/api/v1/groups?search={long}"), Auth::Admin).status, 400);
}

#[test]
fn pipelines_jobs_and_a_jobs_tokens_are_listed_and_each_is_read_alone() {
    let s = Server::start();
    let w = World::new(&s);
    let jobs = pipeline_jobs(&s, w.project, w.user, true, json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
    let pipeline = job_view(&s, jobs[0])["pipeline_id"].as_i64().unwrap();
    let token = w.mint_ok(&s, jobs[0], &[]);
    s.admin("POST", &format!("/api/v1/jobs/{}/finish", jobs[1]), json!({"status": "success"}));

    assert_eq!(ids(&ok(&s, &format!("/api/v1/projects/{}/pipelines", w.project))), [pipeline]);
    let read = ok(&s, &format!("/api/v1/pipelines/{pipeline}"));
    assert_eq!((read.json["project_id"].as_i64(), read.json["ref"].as_str()), (Some(w.project), Some("main")));
    assert_eq!(read.json["jobs"].as_array().unwrap().len(), 3);
    assert_eq!(ids(&ok(&s, &format!("/api/v1/pipelines/{pipeline}/jobs"))), jobs);
    assert_eq!(ids(&ok(&s, &format!("/api/v1/pipelines/{pipeline}/jobs?status=success"))), [jobs[1]]);
    assert_eq!(ids(&ok(&s, &format!("/api/v1/pipelines/{pipeline}/jobs?status=running"))), [jobs[0]]);
    let bad = s.get(&format!("/api/v1/pipelines/{pipeline}/jobs?status=bogus"), Auth::Admin);
    assert_eq!(bad.status, 400, "{}", bad.text);

    let (header_, claims) = common::decode(&token);
    let listed = ok(&s, &format!("/api/v1/jobs/{}/tokens", jobs[0]));
    let rows = listed.json.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((&rows[0]["jti"], &rows[0]["kid"]), (&claims["jti"], &header_["kid"]));
    assert_eq!((rows[0]["revoked_at"].clone(), rows[0]["parent_jti"].clone()), (Value::Null, Value::Null));
    assert!(!listed.text.contains(&token) && rows[0].get("token_hash").is_none(), "metadata only");
    s.admin("POST", &format!("/api/v1/jobs/{}/finish", jobs[0]), json!({"status": "success"}));
    assert!(ok(&s, &format!("/api/v1/jobs/{}/tokens", jobs[0])).json[0]["revoked_at"].is_string());

    for missing in [
        "/api/v1/pipelines/999",
        "/api/v1/pipelines/999/jobs",
        "/api/v1/jobs/999/tokens",
        "/api/v1/projects/999/pipelines",
    ] {
        assert_eq!(s.get(missing, Auth::Admin).status, 404, "{missing}");
    }
    let pat = personal_access_token(&s, w.user);
    assert_eq!(s.get(&format!("/api/v1/jobs/{}/tokens", jobs[0]), Auth::Bearer(&pat)).status, 401, "admin only");
}

#[test]
fn every_resource_kind_is_listed_and_read_alone() {
    let s = Server::start();
    let w = World::new(&s);
    let project_runner = runner(&s, json!({"runner_type": "project", "project_ids": [w.project]}));
    personal_access_token(&s, w.user);
    let pats = ok(&s, &format!("/api/v1/users/{}/personal_access_tokens", w.user));
    let pat_id = ids(&pats)[0];
    let one = ok(&s, &format!("/api/v1/users/{}/personal_access_tokens/{pat_id}", w.user));
    assert_eq!((one.json["id"].as_i64(), one.json.get("token")), (Some(pat_id), None), "metadata only");
    assert_eq!(
        s.get(&format!("/api/v1/users/{}/personal_access_tokens/{pat_id}", w.user + 1), Auth::Admin).status,
        404
    );

    let runners = ok(&s, "/api/v1/runners");
    assert_eq!(ids(&runners), [w.runner.id, project_runner.id]);
    assert_eq!(runners.json[1]["project_ids"], json!([w.project]));
    assert!(!runners.text.contains(&w.runner.secret), "no secrets in lists");
    assert_eq!(ids(&ok(&s, "/api/v1/resource_servers")), [w.registry.id]);
    assert_eq!(header(&ok(&s, "/api/v1/resource_servers"), "x-total"), "1");
    assert_eq!(ok(&s, &format!("/api/v1/users/{}/personal_access_tokens", w.user)).json.as_array().unwrap().len(), 1);
    assert_eq!(header(&ok(&s, &format!("/api/v1/users/{}/personal_access_tokens", w.user)), "x-total"), "1");

    for (path, id) in [
        (format!("/api/v1/users/{}", w.user), w.user),
        (format!("/api/v1/groups/{}", w.group), w.group),
        (format!("/api/v1/projects/{}", w.project), w.project),
        (format!("/api/v1/runners/{}", project_runner.id), project_runner.id),
        (format!("/api/v1/resource_servers/{}", w.registry.id), w.registry.id),
    ] {
        assert_eq!(ok(&s, &path).json["id"].as_i64(), Some(id), "{path}");
    }

    let members = ok(&s, &format!("/api/v1/projects/{}/members", w.project));
    assert_eq!(members.json, json!([{"user_id": w.user, "username": "dev", "access_level": 30}]));
    let maintainer = user(&s, "maria");
    common::group_member(&s, w.group, maintainer, 40);
    assert_eq!(ok(&s, &format!("/api/v1/groups/{}/members", w.group)).json[0]["user_id"].as_i64(), Some(maintainer));
    assert_eq!(
        s.json("DELETE", &format!("/api/v1/groups/{}/members/{maintainer}", w.group), Auth::Admin, Value::Null).status,
        204
    );
    assert_eq!(ok(&s, &format!("/api/v1/groups/{}/members", w.group)).json, json!([]));
    assert_eq!(s.get("/api/v1/groups/999/members", Auth::Admin).status, 404);
}

#[test]
fn a_project_is_deleted_only_once_nothing_depends_on_it() {
    let s = Server::start();
    let w = World::new(&s);
    w.job(&s, false);
    let lib = project(&s, "lib", w.group, json!({}));
    s.admin(
        "POST",
        &format!("/api/v1/projects/{}/job_token_scope/allowlist", w.project),
        json!({"source_project_id": lib}),
    );
    project_member(&s, lib, w.user, 30);

    let busy = s.json("DELETE", &format!("/api/v1/projects/{}", w.project), Auth::Admin, Value::Null);
    assert_eq!((busy.status, busy.json["error"].as_str()), (409, Some("conflict")), "{}", busy.text);
    let message = busy.json["message"].as_str().unwrap();
    assert!(message.contains("grp/app") && message.contains("1 pipeline"), "{message}");

    let listed = s.json("DELETE", &format!("/api/v1/projects/{lib}"), Auth::Admin, Value::Null);
    assert_eq!(listed.status, 409, "{}", listed.text);
    assert!(listed.json["message"].as_str().unwrap().contains("allowlist (grp/app)"), "{}", listed.text);
    assert_eq!(ok(&s, &format!("/api/v1/projects/{lib}")).json["id"].as_i64(), Some(lib), "nothing was deleted");

    let entry = format!("/api/v1/projects/{}/job_token_scope/allowlist/{lib}", w.project);
    assert_eq!(s.json("DELETE", &entry, Auth::Admin, Value::Null).status, 204);
    assert_eq!(s.json("DELETE", &format!("/api/v1/projects/{lib}"), Auth::Admin, Value::Null).status, 204);
    assert_eq!(s.get(&format!("/api/v1/projects/{lib}"), Auth::Admin).status, 404);
    assert_eq!(s.json("DELETE", &format!("/api/v1/projects/{lib}"), Auth::Admin, Value::Null).status, 404);
}

#[test]
fn a_group_is_deleted_only_once_it_has_no_subgroups_or_projects() {
    let s = Server::start();
    let top = group(&s, "top", None);
    let sub = group(&s, "sub", Some(top));
    let app = project(&s, "app", sub, json!({}));

    let busy = s.json("DELETE", "/api/v1/groups/top%2Fsub", Auth::Admin, Value::Null);
    assert_eq!(busy.status, 409, "{}", busy.text);
    assert!(busy.json["message"].as_str().unwrap().contains("1 project (top/sub/app)"), "{}", busy.text);
    let parent = s.json("DELETE", &format!("/api/v1/groups/{top}"), Auth::Admin, Value::Null);
    assert!(parent.json["message"].as_str().unwrap().contains("1 subgroup (top/sub)"), "{}", parent.text);

    assert_eq!(s.json("DELETE", &format!("/api/v1/projects/{app}"), Auth::Admin, Value::Null).status, 204);
    assert_eq!(s.json("DELETE", &format!("/api/v1/groups/{sub}"), Auth::Admin, Value::Null).status, 204);
    assert_eq!(s.json("DELETE", &format!("/api/v1/groups/{top}"), Auth::Admin, Value::Null).status, 204);
    assert_eq!(ok(&s, "/api/v1/groups").json, json!([]));
}

#[test]
fn a_runner_is_deleted_only_once_its_jobs_no_longer_hold_live_tokens() {
    let s = Server::start();
    let w = World::new(&s);
    let job = w.job(&s, false);
    w.mint_ok(&s, job, &[]);

    let busy = s.json("DELETE", &format!("/api/v1/runners/{}", w.runner.id), Auth::Admin, Value::Null);
    assert_eq!(busy.status, 409, "{}", busy.text);
    assert!(busy.json["message"].as_str().unwrap().contains(&format!("1 job ({job})")), "{}", busy.text);
    assert_eq!(ok(&s, &format!("/api/v1/runners/{}", w.runner.id)).json["id"].as_i64(), Some(w.runner.id));

    s.admin("POST", &format!("/api/v1/jobs/{job}/finish"), json!({"status": "success"}));
    assert_eq!(s.json("DELETE", &format!("/api/v1/runners/{}", w.runner.id), Auth::Admin, Value::Null).status, 204);

    assert_eq!(s.get(&format!("/api/v1/runners/{}", w.runner.id), Auth::Admin).status, 404);
    assert_eq!(w.mint(&s, w.job(&s, false), &[]).status, 401, "its credentials are gone");
    assert_eq!(job_view(&s, job)["status"], "success", "the job's history stays");
}

#[test]
fn projects_and_groups_are_found_by_url_encoded_full_path_on_every_route() {
    let s = Server::start();
    let w = World::new(&s);
    let sub = group(&s, "sub", Some(w.group));
    let lib = project(&s, "lib", sub, json!({"visibility": "internal"}));

    assert_eq!(ok(&s, "/api/v1/projects/grp%2Fapp").json["id"].as_i64(), Some(w.project));
    assert_eq!(ok(&s, "/api/v1/projects/grp%2fsub%2Flib").json["id"].as_i64(), Some(lib));
    assert_eq!(ok(&s, "/api/v1/groups/grp%2Fsub").json["id"].as_i64(), Some(sub));
    assert_eq!(ok(&s, "/api/v1/groups/grp").json["id"].as_i64(), Some(w.group));
    let maintainer = user(&s, "maria");
    s.admin("PUT", &format!("/api/v1/groups/grp%2Fsub/members/{maintainer}"), json!({"access_level": 40}));
    assert_eq!(ok(&s, "/api/v1/groups/grp%2Fsub/members").json[0]["user_id"].as_i64(), Some(maintainer));
    s.admin("PUT", &format!("/api/v1/projects/grp%2Fapp/members/{maintainer}"), json!({"access_level": 40}));

    let pat = personal_access_token(&s, maintainer);
    let added = s.json(
        "POST",
        "/api/v1/projects/grp%2Fapp/job_token_scope/allowlist",
        Auth::Bearer(&pat),
        json!({"source_project_id": lib}),
    );
    assert_eq!(added.status, 201, "{}", added.text);
    let listed = s.get("/api/v1/projects/grp%2Fapp/job_token_scope/allowlist", Auth::Bearer(&pat));
    assert_eq!((listed.status, listed.json[0]["source_project_id"].as_i64()), (200, Some(lib)), "{}", listed.text);
    assert_eq!(header(&listed, "x-total"), "1");
    let group_scope = s.get("/api/v1/groups/grp%2Fsub/job_token_scope", Auth::Bearer(&pat));
    assert_eq!(group_scope.status, 200, "{}", group_scope.text);
    let entry = format!("/api/v1/projects/grp%2Fapp/job_token_scope/allowlist/{lib}");
    let one = s.get(&entry, Auth::Bearer(&pat));
    assert_eq!((one.status, one.json["source_path"].as_str()), (200, Some("grp/sub/lib")), "{}", one.text);
    let removed = s.json("DELETE", &entry, Auth::Bearer(&pat), Value::Null);
    assert_eq!(removed.status, 204, "{}", removed.text);
    assert_eq!(s.get(&entry, Auth::Bearer(&pat)).status, 404, "gone");

    for unknown in ["/api/v1/projects/grp%2Fnope", "/api/v1/groups/nope", "/api/v1/projects/grp%2Fnope/members"] {
        let res = s.get(unknown, Auth::Admin);
        assert_eq!((res.status, res.json["error"].as_str()), (404, Some("not_found")), "{unknown}: {}", res.text);
        assert!(res.json["message"].as_str().unwrap().contains("nope"), "{}", res.text);
    }
    let hidden = s.get("/api/v1/projects/grp%2Fnope/job_token_scope", Auth::Bearer(&pat));
    assert_eq!((hidden.status, hidden.json["message"].as_str()), (404, Some("project not found")), "{}", hidden.text);
}

#[test]
fn job_token_scope_lists_stay_json_arrays_with_the_pagination_headers() {
    let s = Server::start();
    let w = World::new(&s);
    let sources: Vec<i64> = (0..3).map(|i| project(&s, &format!("src{i}"), w.group, json!({}))).collect();
    for source in &sources {
        s.admin(
            "POST",
            &format!("/api/v1/projects/{}/job_token_scope/allowlist", w.project),
            json!({"source_project_id": source}),
        );
        s.admin(
            "POST",
            &format!("/api/v1/projects/{}/job_token_scope/outbound", w.project),
            json!({"target_project_id": source, "scopes": ["read_repository"]}),
        );
    }

    let base = format!("/api/v1/projects/{}/job_token_scope", w.project);
    let page = ok(&s, &format!("{base}/allowlist?per_page=2&page=2"));
    let shown: Vec<i64> =
        page.json.as_array().unwrap().iter().map(|e| e["source_project_id"].as_i64().unwrap()).collect();
    assert_eq!((shown, header(&page, "x-total"), header(&page, "x-prev-page")), (vec![sources[2]], "3", "1"));
    let one = ok(&s, &format!("{base}/outbound/projects/{}", sources[1]));
    assert_eq!(one.json["target_project_id"].as_i64(), Some(sources[1]));
    assert_eq!(s.get(&format!("{base}/outbound/groups/{}", w.group), Auth::Admin).status, 404);
    let outbound = ok(&s, &format!("{base}/outbound?per_page=2"));
    assert_eq!((outbound.json.as_array().unwrap().len(), header(&outbound, "x-total-pages")), (2, "2"));
    let groups = ok(&s, &format!("{base}/groups_allowlist"));
    assert_eq!((groups.json.clone(), header(&groups, "x-total")), (json!([]), "0"));
    let log = ok(&s, &format!("{base}/authorizations"));
    assert_eq!((log.json.clone(), header(&log, "x-total-pages")), (json!([]), "1"));
    assert_eq!(s.get(&format!("{base}/allowlist?page=0"), Auth::Admin).status, 400);
}
