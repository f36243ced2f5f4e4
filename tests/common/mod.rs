//! Black-box harness: starts the real `jobtoken` binary on a random port with its own temporary
//! database and keys directory, and speaks HTTP to it.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

pub mod pg;
pub mod pg_tls;

pub const ADMIN: &str = "test-admin-token-0123456789";

/// True when the suite runs on PostgreSQL: always in `tests/on_postgres.rs` (the black-box suites
/// compiled again as its modules), and in every binary under `JOBTOKEN_TEST_BACKEND=postgres`.
/// Every server directory then gets its own fresh database on this process's throwaway cluster.
pub fn on_postgres() -> bool {
    env!("CARGO_CRATE_NAME") == "on_postgres" || std::env::var("JOBTOKEN_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// The `JOBTOKEN_DATABASE` of a server directory: its SQLite file, or on PostgreSQL the URL of
/// the database made for it on first use (kept in `DIR/database_url`, so that a restart on the
/// same directory finds the same data).
pub fn database_of(dir: &std::path::Path) -> String {
    let file = dir.join("database_url");
    if let Ok(url) = std::fs::read_to_string(&file) {
        return url;
    }
    if !on_postgres() {
        return dir.join("db/jobtoken.db").display().to_string();
    }
    let url = pg::migrated_database();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&file, &url).unwrap();
    url
}

/// The key-encryption key of a server directory (PostgreSQL keeps its private keys sealed in the
/// database under it), made on first use and kept in `DIR/kek` so that a restart opens them.
pub fn kek_of(dir: &std::path::Path) -> String {
    let file = dir.join("kek");
    if let Ok(kek) = std::fs::read_to_string(&file) {
        return kek;
    }
    let kek = random_key_encryption_key();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&file, &kek).unwrap();
    kek
}

/// Everything a server directory's database stores, as bytes to search for a secret: the SQLite
/// files (database, WAL) as they are on disk, or on PostgreSQL every row of every table as text,
/// with `bytea` columns shown both in hex and as their raw bytes.
pub fn stored_bytes(dir: &std::path::Path) -> Vec<u8> {
    let url = database_of(dir);
    let mut stored = Vec::new();
    if !url.starts_with("postgres") {
        for entry in std::fs::read_dir(dir.join("db")).unwrap() {
            stored.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        return stored;
    }
    let mut conn = pg::connect(&url);
    let tables = conn.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", &[]).unwrap();
    for table in tables.iter().map(|r| r.get::<_, String>(0)) {
        for row in conn.query(&format!("SELECT t::text FROM \"{table}\" t"), &[]).unwrap() {
            stored.extend(row.get::<_, String>(0).into_bytes());
            stored.push(b'\n');
        }
    }
    let blobs = conn
        .query(
            "SELECT table_name, column_name FROM information_schema.columns
             WHERE table_schema = 'public' AND data_type = 'bytea'",
            &[],
        )
        .unwrap();
    for (table, column) in blobs.iter().map(|r| (r.get::<_, String>(0), r.get::<_, String>(1))) {
        for row in
            conn.query(&format!("SELECT \"{column}\" FROM \"{table}\" WHERE \"{column}\" IS NOT NULL"), &[]).unwrap()
        {
            stored.extend(row.get::<_, Vec<u8>>(0));
            stored.push(b'\n');
        }
    }
    stored
}

/// Says (on stderr, so `cargo test -- --nocapture` and CI logs show it) that part of a test
/// checks something only SQLite mode has (the SQLite file itself, key files) and did not run on
/// PostgreSQL; true when it must be skipped.
pub fn sqlite_only(what: &str) -> bool {
    if on_postgres() {
        eprintln!("NOT RUN on PostgreSQL (SQLite mode only): {what}");
        return true;
    }
    false
}

pub struct Server {
    child: Child,
    pub base: String,
    pub dir: PathBuf,
    agent: ureq::Agent,
    /// Keep `dir` when dropped (set by `stop`/`terminate`, whose caller restarts on it).
    keep: bool,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn temp_dir() -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let dir = std::env::temp_dir().join(format!("jobtoken-test-{}-{n}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A response: status, headers we care about, and the body as JSON (or `Null`) and text.
#[derive(Debug)]
pub struct Res {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub json: Value,
}

impl Res {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// How a request authenticates.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    Admin,
    Bearer(&'a str),
    Basic(&'a str, &'a str),
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a server in a fresh directory with extra environment variables.
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        Server::start_in(temp_dir(), env)
    }

    /// Starts a server on an existing directory (to test restarts).
    pub fn start_in(dir: PathBuf, env: &[(&str, &str)]) -> Server {
        Server::launch(dir, env, Some(ADMIN)).0
    }

    /// Starts a server on `dir` without `JOBTOKEN_ADMIN_TOKEN`, so it generates (first start) or
    /// reuses (later starts) its own. Returns the server and the stdout lines it printed before
    /// it listened.
    pub fn start_without_admin_token(dir: PathBuf) -> (Server, Vec<String>) {
        Server::start_without_admin_token_with(dir, &[])
    }

    /// [`Server::start_without_admin_token`] with extra environment variables.
    pub fn start_without_admin_token_with(dir: PathBuf, env: &[(&str, &str)]) -> (Server, Vec<String>) {
        Server::launch(dir, env, None)
    }

    /// Runs `jobtoken serve` on `dir` expecting it to refuse to start: waits (up to 30 s) for it
    /// to exit, asserts it failed, and returns what it logged.
    pub fn start_expecting_failure(dir: PathBuf) -> String {
        Server::start_expecting_failure_with(dir, &[])
    }

    /// `start_expecting_failure` with extra environment variables (a refused setting).
    pub fn start_expecting_failure_with(dir: PathBuf, env: &[(&str, &str)]) -> String {
        let mut child =
            Server::command(&dir, env, Some(ADMIN)).stdout(Stdio::null()).spawn().expect("starting jobtoken");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            match child.try_wait().expect("waiting for the server") {
                Some(status) => break status,
                None if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                None => {
                    let _ = child.kill();
                    panic!("the server started although it was expected to refuse");
                }
            }
        };
        assert!(!status.success(), "the server exited successfully although it was expected to refuse");
        std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
    }

    /// `jobtoken serve` on `dir` with the harness's environment; stdout piped, stderr to `server.log`.
    fn command(dir: &std::path::Path, env: &[(&str, &str)], admin: Option<&str>) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobtoken"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("JOBTOKEN_BIND", "127.0.0.1:0")
            .env("JOBTOKEN_KEYS_DIR", dir.join("keys"))
            .env("JOBTOKEN_WORKERS", "2")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new().create(true).append(true).open(dir.join("server.log")).unwrap(),
            ));
        if let Some(admin) = admin {
            cmd.env("JOBTOKEN_ADMIN_TOKEN", admin);
        }
        // The directory's own database, unless the test names one (none is made for nothing).
        if !env.iter().any(|(k, _)| *k == "JOBTOKEN_DATABASE") {
            cmd.env("JOBTOKEN_DATABASE", database_of(dir));
            if on_postgres() {
                cmd.env("JOBTOKEN_KEY_ENCRYPTION_KEY", kek_of(dir));
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts `jobtoken serve --demo` on `dir`, with `admin` as `JOBTOKEN_ADMIN_TOKEN` or none (the
    /// server then generates one on a fresh database). Returns the server and the stdout lines it
    /// printed before it listened: the demo's summary and `export` lines.
    pub fn start_demo(dir: PathBuf, admin: Option<&str>) -> (Server, Vec<String>) {
        let mut cmd = Server::command(&dir, &[], admin);
        cmd.arg("--demo");
        Server::spawn(dir, cmd)
    }

    fn launch(dir: PathBuf, env: &[(&str, &str)], admin: Option<&str>) -> (Server, Vec<String>) {
        let cmd = Server::command(&dir, env, admin);
        Server::spawn(dir, cmd)
    }

    fn spawn(dir: PathBuf, mut cmd: Command) -> (Server, Vec<String>) {
        let mut child = cmd.spawn().expect("starting jobtoken");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut printed = Vec::new();
        let base = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.strip_prefix("jobtoken listening on ") {
                        break rest.split(' ').next().unwrap().to_owned();
                    }
                    printed.push(line);
                }
                _ => {
                    let _ = child.kill();
                    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                    panic!("server exited before listening:\n{log}");
                }
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        (Server { child, base, dir, agent, keep: false }, printed)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn stop(mut self) -> PathBuf {
        self.keep = true;
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir.clone()
    }

    fn finish(&self, res: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Res {
        Server::read(res.expect("request failed at the transport level"))
    }

    fn read(mut res: ureq::http::Response<ureq::Body>) -> Res {
        let status = res.status().as_u16();
        let headers =
            res.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
        let text = res.body_mut().read_to_string().unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Res { status, headers, text, json }
    }

    fn auth_header(auth: Auth) -> Option<String> {
        match auth {
            Auth::None => None,
            Auth::Admin => Some(format!("Bearer {ADMIN}")),
            Auth::Bearer(t) => Some(format!("Bearer {t}")),
            Auth::Basic(id, secret) => Some(format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))),
        }
    }

    pub fn get(&self, path: &str, auth: Auth) -> Res {
        self.get_with(path, auth, &[])
    }

    pub fn get_with(&self, path: &str, auth: Auth, headers: &[(&str, &str)]) -> Res {
        let mut req = self.agent.get(self.url(path));
        if let Some(h) = Server::auth_header(auth) {
            req = req.header("Authorization", h);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.finish(req.call())
    }

    /// Sends JSON with any method (POST, PATCH, PUT, DELETE).
    pub fn json(&self, method: &str, path: &str, auth: Auth, body: Value) -> Res {
        let mut req = ureq::http::Request::builder().method(method).uri(self.url(path));
        if let Some(h) = Server::auth_header(auth) {
            req = req.header("Authorization", h);
        }
        let req = req.header("Content-Type", "application/json").body(body.to_string()).unwrap();
        self.finish(self.agent.run(req))
    }

    /// Sends a raw body with a content type.
    pub fn raw(&self, method: &str, path: &str, auth: Auth, content_type: &str, body: Vec<u8>) -> Res {
        let mut req = ureq::http::Request::builder().method(method).uri(self.url(path));
        if let Some(h) = Server::auth_header(auth) {
            req = req.header("Authorization", h);
        }
        let req = req.header("Content-Type", content_type).body(body).unwrap();
        self.finish(self.agent.run(req))
    }

    /// Like [`Server::form`], but `None` when the request fails at the transport level (the
    /// server is gone), for tests that kill the server mid-request.
    pub fn try_form(&self, path: &str, auth: Auth, fields: &[(&str, &str)]) -> Option<Res> {
        let mut req = ureq::http::Request::builder().method("POST").uri(self.url(path));
        if let Some(h) = Server::auth_header(auth) {
            req = req.header("Authorization", h);
        }
        let body = serde_urlencoded::to_string(fields).unwrap();
        let req = req.header("Content-Type", "application/x-www-form-urlencoded").body(body).unwrap();
        self.agent.run(req).ok().map(Server::read)
    }

    /// Kills the server with SIGKILL (no shutdown, no flush) without waiting; `stop` reaps it.
    pub fn kill9(&self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-KILL", &pid]).status().expect("running kill");
        assert!(sent.success(), "kill -KILL {pid} failed");
    }

    /// Sends a signal by name (`STOP`, `CONT`, …) to the server process.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args([&format!("-{name}"), &pid]).status().expect("running kill");
        assert!(sent.success(), "kill -{name} {pid} failed");
    }

    pub fn form(&self, path: &str, auth: Auth, fields: &[(&str, &str)]) -> Res {
        let body = serde_urlencoded::to_string(fields).unwrap();
        self.raw("POST", path, auth, "application/x-www-form-urlencoded", body.into_bytes())
    }

    pub fn admin(&self, method: &str, path: &str, body: Value) -> Value {
        let res = self.json(method, path, Auth::Admin, body);
        assert!(res.status < 300, "{method} {path} -> {} {}", res.status, res.text);
        res.json
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep && !std::thread::panicking() {
            if let Ok(url) = std::fs::read_to_string(self.dir.join("database_url")) {
                pg::drop_database(&url);
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A client's credentials.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: i64,
    pub client_id: String,
    pub secret: String,
}

impl Client {
    pub fn auth(&self) -> Auth<'_> {
        Auth::Basic(&self.client_id, &self.secret)
    }
}

/// A small world: a group `grp` with project `grp/app`, a Developer, an instance runner and a
/// resource server.
pub struct World {
    pub group: i64,
    pub project: i64,
    pub user: i64,
    pub runner: Client,
    pub registry: Client,
}

impl World {
    pub fn new(s: &Server) -> World {
        let user = s.admin("POST", "/api/v1/users", json!({"username": "dev"}))["id"].as_i64().unwrap();
        let group = s.admin("POST", "/api/v1/groups", json!({"path": "grp"}))["id"].as_i64().unwrap();
        let project =
            s.admin("POST", "/api/v1/projects", json!({"path": "app", "namespace_id": group}))["id"].as_i64().unwrap();
        s.admin("PUT", &format!("/api/v1/projects/{project}/members/{user}"), json!({"access_level": 30}));
        let runner = runner(s, json!({"runner_type": "instance", "maximum_timeout": 600}));
        let r = s.admin("POST", "/api/v1/resource_servers", json!({"name": "registry"}));
        let registry = Client {
            id: r["id"].as_i64().unwrap(),
            client_id: r["client_id"].as_str().unwrap().into(),
            secret: r["client_secret"].as_str().unwrap().into(),
        };
        World { group, project, user, runner, registry }
    }

    /// A pipeline with one job on `ref_protected`; returns the job id.
    pub fn job(&self, s: &Server, protected: bool) -> i64 {
        job_for(s, self.project, self.user, protected)
    }

    pub fn mint(&self, s: &Server, job: i64, extra: &[(&str, &str)]) -> Res {
        let id = job.to_string();
        let mut fields = vec![("grant_type", "client_credentials"), ("job_id", id.as_str())];
        fields.extend_from_slice(extra);
        s.form("/oauth/token", self.runner.auth(), &fields)
    }

    pub fn mint_ok(&self, s: &Server, job: i64, extra: &[(&str, &str)]) -> String {
        let res = self.mint(s, job, extra);
        assert_eq!(res.status, 200, "{}", res.text);
        res.json["access_token"].as_str().unwrap().to_owned()
    }

    pub fn introspect(&self, s: &Server, token: &str) -> Value {
        let res = s.form("/oauth/introspect", self.registry.auth(), &[("token", token)]);
        assert_eq!(res.status, 200, "{}", res.text);
        res.json
    }
}

pub fn runner(s: &Server, body: Value) -> Client {
    let r = s.admin("POST", "/api/v1/runners", body);
    Client {
        id: r["id"].as_i64().unwrap(),
        client_id: r["client_id"].as_str().unwrap().into(),
        secret: r["client_secret"].as_str().unwrap().into(),
    }
}

pub fn job_for(s: &Server, project: i64, user: i64, protected: bool) -> i64 {
    let p = s.admin(
        "POST",
        &format!("/api/v1/projects/{project}/pipelines"),
        json!({"user_id": user, "ref": "main", "ref_type": "branch", "ref_protected": protected,
               "sha": "4b825dc642cb6eb9a060e54bf8d69288fbee4904", "jobs": [{"name": "build"}]}),
    );
    p["jobs"][0]["id"].as_i64().unwrap()
}

/// Decodes a compact JWT's header and claims without verifying.
pub fn decode(token: &str) -> (Value, Value) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    (header, claims)
}

// ---- helpers added for the black-box suites (admin_api, client_auth, minting, bad_input, keys, ops) ----

/// Creates a user; returns its id.
pub fn user(s: &Server, username: &str) -> i64 {
    s.admin("POST", "/api/v1/users", json!({"username": username}))["id"].as_i64().unwrap()
}

/// Creates a group (under `parent` when given); returns its id.
pub fn group(s: &Server, path: &str, parent: Option<i64>) -> i64 {
    s.admin("POST", "/api/v1/groups", json!({"path": path, "parent_id": parent}))["id"].as_i64().unwrap()
}

/// Creates a project in `namespace` with extra fields (`visibility`, `build_timeout`, …) merged in.
pub fn project(s: &Server, path: &str, namespace: i64, extra: Value) -> i64 {
    let mut body = json!({"path": path, "namespace_id": namespace});
    if let Value::Object(fields) = extra {
        body.as_object_mut().unwrap().extend(fields);
    }
    s.admin("POST", "/api/v1/projects", body)["id"].as_i64().unwrap()
}

/// Gives `user` an access level on a project.
pub fn project_member(s: &Server, project: i64, user: i64, level: i64) {
    s.admin("PUT", &format!("/api/v1/projects/{project}/members/{user}"), json!({"access_level": level}));
}

/// Gives `user` an access level on a group.
pub fn group_member(s: &Server, group: i64, user: i64, level: i64) {
    s.admin("PUT", &format!("/api/v1/groups/{group}/members/{user}"), json!({"access_level": level}));
}

/// A pipeline on `main` with the given jobs (`[{"name": …, "timeout": …}]`); returns the job ids.
pub fn pipeline_jobs(s: &Server, project: i64, user: i64, protected: bool, jobs: Value) -> Vec<i64> {
    let p = s.admin(
        "POST",
        &format!("/api/v1/projects/{project}/pipelines"),
        json!({"user_id": user, "ref": "main", "ref_type": "branch", "ref_protected": protected, "jobs": jobs}),
    );
    p["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_i64().unwrap()).collect()
}

/// Asks for a token for `job` with `client`'s HTTP Basic credentials.
pub fn mint_as(s: &Server, client: &Client, job: i64, extra: &[(&str, &str)]) -> Res {
    let id = job.to_string();
    let mut fields = vec![("grant_type", "client_credentials"), ("job_id", id.as_str())];
    fields.extend_from_slice(extra);
    s.form("/oauth/token", client.auth(), &fields)
}

/// The job as `GET /api/v1/jobs/{id}` shows it.
pub fn job_view(s: &Server, job: i64) -> Value {
    s.admin("GET", &format!("/api/v1/jobs/{job}"), Value::Null)
}

/// Asserts an OAuth error response: status, `error` code, and `Cache-Control: no-store`.
pub fn assert_oauth_error(res: &Res, status: u16, code: &str) {
    assert_eq!(res.status, status, "{}", res.text);
    assert_eq!(res.json["error"], code, "{}", res.text);
    assert!(res.json.get("access_token").is_none(), "an error carries no token: {}", res.text);
    assert_eq!(res.header("cache-control"), Some("no-store"), "{:?}", res.headers);
}

/// Base64url without padding (JWS encoding).
pub fn b64url(bytes: &[u8]) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Replaces a compact JWS's header with `header`, keeping the payload; `signature` replaces the
/// signature when given (the original is kept otherwise).
pub fn with_header(token: &str, header: &Value, signature: Option<&str>) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let head = b64url(header.to_string().as_bytes());
    format!("{head}.{}.{}", parts[1], signature.unwrap_or(parts[2]))
}

/// The RFC 7638 SHA-256 thumbprint of a public JWK, computed from its required members.
pub fn jwk_thumbprint(jwk: &Value) -> String {
    let members: &[&str] = match jwk["kty"].as_str().unwrap() {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        other => panic!("unexpected kty {other}"),
    };
    // Members in lexicographic order, no whitespace (RFC 7638 §3.3); the values are plain strings.
    let body: Vec<String> =
        members.iter().map(|m| format!("{}:{}", json!(m), json!(jwk[*m].as_str().unwrap()))).collect();
    let canonical = format!("{{{}}}", body.join(","));
    b64url(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
}

/// The published JWKS as JSON.
pub fn jwks(s: &Server) -> Value {
    let res = s.get("/.well-known/jwks.json", Auth::None);
    assert_eq!(res.status, 200, "{}", res.text);
    res.json
}

/// The job-token kids the JWKS publishes, sorted: the ID-token family's are left out (those
/// `GET /api/v1/keys?family=job` does not name).
pub fn published_kids(s: &Server) -> Vec<String> {
    let listed = s.get("/api/v1/keys?family=job", Auth::Admin);
    assert_eq!(listed.status, 200, "{}", listed.text);
    let job_kids: Vec<&str> = listed.json.as_array().unwrap().iter().filter_map(|k| k["kid"].as_str()).collect();
    let mut kids: Vec<String> = jwks(s)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .filter(|k| job_kids.contains(&k.as_str()))
        .collect();
    kids.sort();
    kids
}

/// The kids of the stored ID-token keys (issue 11: their own family, beside the job-token keys).
pub fn id_token_kids(dir: &std::path::Path) -> Vec<String> {
    let sql = "SELECT kid FROM signing_keys WHERE family = 'id_token' ORDER BY kid";
    let url = database_of(dir);
    if url.starts_with("postgres") {
        return pg::connect(&url).query(sql, &[]).unwrap().iter().map(|r| r.get(0)).collect();
    }
    let conn = rusqlite::Connection::open(dir.join("db/jobtoken.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let rows = stmt.query_map([], |r| r.get(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

/// Verifies a token with josekit (OpenSSL), an implementation independent of the server's
/// ring-based signer, using only the published JWKS; returns the claims.
pub fn verify_with_jwks(s: &Server, token: &str) -> Value {
    let jwks = s.get("/.well-known/jwks.json", Auth::None);
    verify_against(&jwks.text, token).unwrap()
}

/// Verifies a token with josekit against a JWKS document (as served); returns the claims, or
/// why the token does not verify.
pub fn verify_against(jwks: &str, token: &str) -> Result<Value, String> {
    use josekit::jwk::JwkSet;
    use josekit::jws::JwsVerifier;
    let set = JwkSet::from_bytes(jwks.as_bytes()).unwrap();
    let (header, _) = decode(token);
    let kid = header["kid"].as_str().unwrap();
    let jwk = set.get(kid).first().copied().ok_or_else(|| format!("token kid {kid} is not published"))?;
    let verifier: Box<dyn JwsVerifier> = match jwk.algorithm().unwrap() {
        "ES256" => Box::new(josekit::jws::ES256.verifier_from_jwk(jwk).unwrap()),
        "RS256" => Box::new(josekit::jws::RS256.verifier_from_jwk(jwk).unwrap()),
        "EdDSA" => Box::new(josekit::jws::EdDSA.verifier_from_jwk(jwk).unwrap()),
        other => panic!("unexpected alg {other}"),
    };
    let (payload, _) = josekit::jwt::decode_with_verifier(token, verifier.as_ref()).map_err(|e| e.to_string())?;
    Ok(serde_json::from_str(&payload.to_string()).unwrap())
}

/// The value of one Prometheus sample (`name` includes any labels), or `None` when absent.
pub fn metric(s: &Server, sample: &str) -> Option<f64> {
    let res = s.get("/metrics", Auth::None);
    assert_eq!(res.status, 200, "{}", res.text);
    res.text.lines().find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.trim().parse().ok())
}

// ---- helpers added for the job_token_scope suite ----

impl Server {
    /// Stops the server cleanly: closes this harness's pooled connections, sends SIGTERM and waits
    /// (up to 15 s) for the process to exit. Returns the server's directory, to restart on it.
    pub fn terminate(mut self) -> PathBuf {
        self.keep = true;
        // Idle keep-alive connections would hold up actix's graceful shutdown: drop them first.
        self.agent = ureq::Agent::config_builder().build().into();
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("running kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            match self.child.try_wait().expect("waiting for the server") {
                Some(_) => break,
                None if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                None => panic!("the server did not exit within 15 s of SIGTERM:\n{}", self.log()),
            }
        }
        self.dir.clone()
    }
}

/// Creates a personal access token for `user`; returns the token.
pub fn personal_access_token(s: &Server, user: i64) -> String {
    let res =
        s.json("POST", &format!("/api/v1/users/{user}/personal_access_tokens"), Auth::Admin, json!({"name": "t"}));
    assert_eq!(res.status, 201, "{}", res.text);
    res.json["token"].as_str().unwrap().to_owned()
}

/// A resource server's credentials.
pub fn resource_server(s: &Server, name: &str) -> Client {
    let r = s.admin("POST", "/api/v1/resource_servers", json!({"name": name}));
    Client {
        id: r["id"].as_i64().unwrap(),
        client_id: r["client_id"].as_str().unwrap().into(),
        secret: r["client_secret"].as_str().unwrap().into(),
    }
}

// ---- helpers added for the no_leaks suite ----

impl Server {
    /// Sends a `HEAD` request.
    pub fn head(&self, path: &str, auth: Auth) -> Res {
        let mut req = self.agent.head(self.url(path));
        if let Some(h) = Server::auth_header(auth) {
            req = req.header("Authorization", h);
        }
        self.finish(req.call())
    }
}

/// A JSON API error: the status with `{"error", "message"}`.
pub fn assert_api_error(res: &Res, status: u16) {
    assert_eq!(res.status, status, "{}", res.text);
    assert!(res.json["error"].as_str().is_some_and(|e| !e.is_empty()), "error shape: {}", res.text);
    assert!(res.json["message"].is_string(), "error shape: {}", res.text);
}

/// A routes-table path with every `{param}` replaced by `value`.
pub fn concrete(path: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(&rest[..start]);
        out.push_str(value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

// ---- helpers added for the key suites (keys, cli) ----

/// `jobtoken ARGS` on a server directory's database and keys, with a clean environment plus
/// `env`; run it with `.output()`, or `.spawn()` it to kill it midway.
pub fn cli_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobtoken"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("JOBTOKEN_KEYS_DIR", dir.join("keys"));
    if !env.iter().any(|(k, _)| *k == "JOBTOKEN_DATABASE") {
        cmd.env("JOBTOKEN_DATABASE", database_of(dir));
        if on_postgres() {
            cmd.env("JOBTOKEN_KEY_ENCRYPTION_KEY", kek_of(dir));
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs SQL on a server directory's database, as an operator with `sqlite3` would (to age keys
/// instead of waiting for the clock).
pub fn sql(dir: &std::path::Path, statements: &str) {
    let url = database_of(dir);
    if url.starts_with("postgres") {
        pg::connect(&url).batch_execute(statements).unwrap();
        return;
    }
    let conn = rusqlite::Connection::open(dir.join("db/jobtoken.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.execute_batch(statements).unwrap();
}

/// Every stored key's metadata, one line per key (`kid alg state created activated retired`),
/// in kid order.
pub fn key_rows(dir: &std::path::Path) -> Vec<String> {
    let url = database_of(dir);
    if url.starts_with("postgres") {
        let rows = pg::connect(&url)
            .query("SELECT kid, alg, state, created_at, activated_at, retired_at FROM signing_keys WHERE family = 'job' ORDER BY kid", &[])
            .unwrap();
        return rows
            .iter()
            .map(|r| {
                format!(
                    "{} {} {} {} {:?} {:?}",
                    r.get::<_, String>(0),
                    r.get::<_, String>(1),
                    r.get::<_, String>(2),
                    r.get::<_, i64>(3),
                    r.get::<_, Option<i64>>(4),
                    r.get::<_, Option<i64>>(5)
                )
            })
            .collect();
    }
    let conn = rusqlite::Connection::open(dir.join("db/jobtoken.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut stmt = conn
        .prepare("SELECT kid, alg, state, created_at, activated_at, retired_at FROM signing_keys WHERE family = 'job' ORDER BY kid")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok(format!(
                "{} {} {} {} {:?} {:?}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<i64>>(5)?
            ))
        })
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}

/// The key files in a server directory: (name, contents), in name order.
pub fn key_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir.join("keys")) else { return Vec::new() };
    // The ID-token keys' files, when there is a database to name them (never creating one).
    let id_files: Vec<String> = match dir.join("database_url").exists() || dir.join("db/jobtoken.db").exists() {
        true => id_token_kids(dir).iter().map(|k| format!("{k}.pem")).collect(),
        false => Vec::new(),
    };
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| !id_files.iter().any(|f| p.file_name().is_some_and(|n| n.to_string_lossy() == *f)))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

/// Polls `check` every 100 ms until it holds or `timeout` passes; returns whether it held.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---- token exchange and decisions ----

/// RFC 8693 token exchange of `subject` (an access token) without client authentication: the
/// subject token is the credential.
pub fn exchange(s: &Server, subject: &str, extra: &[(&str, &str)]) -> Res {
    let mut fields = vec![
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("subject_token", subject),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
    ];
    fields.extend_from_slice(extra);
    s.form("/oauth/token", Auth::None, &fields)
}

/// Asks the decision endpoint, as `client`, whether `token` may use `scope` on `project`; asserts 200.
pub fn authorize(s: &Server, client: &Client, token: &str, project: Value, scope: &str) -> Value {
    let res = s.json(
        "POST",
        "/api/v1/job_token/authorize",
        client.auth(),
        json!({"token": token, "project": project, "scope": scope}),
    );
    assert_eq!(res.status, 200, "{}", res.text);
    res.json
}

/// Every key row's kid and sealed private key (`None` for a key kept in the keys directory).
pub fn sealed_key_rows(dir: &std::path::Path) -> Vec<(String, Option<Vec<u8>>)> {
    let url = database_of(dir);
    if url.starts_with("postgres") {
        let rows = pg::connect(&url)
            .query("SELECT kid, sealed_private_key FROM signing_keys WHERE family = 'job' ORDER BY kid", &[])
            .unwrap();
        return rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    }
    let conn = rusqlite::Connection::open(dir.join("db/jobtoken.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut stmt =
        conn.prepare("SELECT kid, sealed_private_key FROM signing_keys WHERE family = 'job' ORDER BY kid").unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.map(Result::unwrap).collect()
}

/// A key-encryption key as `openssl rand -base64 32` makes one, retried in the ~10⁻⁹ case the
/// weak-key rule refuses random bytes.
pub fn random_key_encryption_key() -> String {
    use std::io::Read;
    loop {
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut bytes).unwrap();
        let text = STANDARD.encode(bytes);
        if jobtoken::keys::KeyEncryptionKey::from_base64(&text).is_ok() {
            return text;
        }
    }
}

// ---- helpers added for the operations suites (ops, service_ops) ----

impl Server {
    /// [`Server::start_with`], also returning the stdout lines printed before the public
    /// listener's line (the admin listener's `jobtoken admin listening on URL`).
    pub fn start_printing(env: &[(&str, &str)]) -> (Server, Vec<String>) {
        Server::launch(temp_dir(), env, Some(ADMIN))
    }

    /// Starts with `JOBTOKEN_ADMIN_BIND=127.0.0.1:0`; returns the server and the admin listener's
    /// base URL.
    pub fn start_split(env: &[(&str, &str)]) -> (Server, String) {
        let mut env = env.to_vec();
        env.push(("JOBTOKEN_ADMIN_BIND", "127.0.0.1:0"));
        let (s, printed) = Server::start_printing(&env);
        let admin = printed
            .iter()
            .find_map(|l| l.strip_prefix("jobtoken admin listening on "))
            .unwrap_or_else(|| panic!("no admin listener line in {printed:?}"))
            .to_owned();
        (s, admin)
    }

    /// The same server reached at another base URL (the admin listener).
    pub fn at(&self, base: &str) -> Peer<'_> {
        Peer { server: self, base: base.to_owned() }
    }
}

/// A server's other listener: the harness's requests, sent to `base`.
pub struct Peer<'a> {
    server: &'a Server,
    base: String,
}

impl Peer<'_> {
    /// Sends a request with `method` (JSON body when given); the status and body.
    pub fn send(&self, method: &str, path: &str, auth: Auth, body: Option<Value>) -> Res {
        let mut req = ureq::http::Request::builder().method(method).uri(format!("{}{path}", self.base));
        if let Some(h) = Server::auth_header(auth) {
            req = req.header("Authorization", h);
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = req.header("Content-Type", "application/json").body(body).unwrap();
        self.server.finish(self.server.agent.run(req))
    }
}

/// `tests/interop`: the non-Rust verifiers (PyJWT in `target/interop/venv`, Node `jose` in
/// `tests/interop/node_modules`).
pub fn interop_dir() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// The Python of the interop venv, with PyJWT installed.
pub fn interop_python() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop/venv/bin/python")
}

/// Runs `tests/interop/setup.sh` once per test binary (it installs PyJWT and `jose` on first use);
/// the other tests wait for it.
pub fn interop_setup() {
    static SETUP: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let done = SETUP.get_or_init(|| {
        let started = std::time::Instant::now();
        let out = Command::new("bash")
            .arg(interop_dir().join("setup.sh"))
            .output()
            .map_err(|e| format!("running tests/interop/setup.sh: {e}"))?;
        eprintln!("interop setup took {:.1}s", started.elapsed().as_secs_f64());
        match out.status.success() {
            true => Ok(()),
            false => Err(format!(
                "tests/interop/setup.sh failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    });
    if let Err(e) = done {
        panic!("{e}");
    }
}
