//! End to end against the real thing: Debian's `docker-registry` (distribution 2.8) with token
//! authentication pointing at jobtoken, its `config.yml` exactly as the README quotes it
//! (tests/registry/config.yml; only the addresses and paths are set through distribution's
//! `REGISTRY_*` environment overrides), and Debian's `skopeo` pushing and pulling a one-layer
//! OCI image the test builds by hand. `tests/registry/setup.sh` installs both when missing.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// The `service` of tests/registry/config.yml, registered as a resource server's audience.
const SERVICE: &str = "https://registry.example";

fn config_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/registry/config.yml")
}

/// Runs tests/registry/setup.sh once per test binary.
fn tools() {
    static SETUP: std::sync::Once = std::sync::Once::new();
    SETUP.call_once(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/registry/setup.sh");
        let out = Command::new("bash").arg(script).output().expect("running tests/registry/setup.sh");
        assert!(out.status.success(), "tests/registry/setup.sh failed:\n{}", String::from_utf8_lossy(&out.stderr));
    });
}

/// A running `docker-registry`, stopped and removed on drop.
struct Registry {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("registry log: {}", std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default());
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn issuer(s: &Server) -> String {
    s.get("/.well-known/openid-configuration", Auth::None).json["issuer"].as_str().unwrap().to_owned()
}

/// Starts the registry with the README's config.yml, trusting `bundle`.
fn start_registry(s: &Server, bundle: &str) -> Registry {
    tools();
    let dir = temp_dir();
    std::fs::write(dir.join("bundle.pem"), bundle).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(dir.join("registry.log")).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(config_path())
        .env("REGISTRY_HTTP_ADDR", &addr)
        .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", dir.join("storage"))
        .env("REGISTRY_AUTH_TOKEN_REALM", s.url("/jwt/auth"))
        .env("REGISTRY_AUTH_TOKEN_ISSUER", issuer(s))
        .env("REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE", dir.join("bundle.pem"))
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("starting docker-registry");
    let registry = Registry { child, addr, dir };
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    for _ in 0..500 {
        if let Ok(res) = agent.get(format!("http://{}/v2/", registry.addr)).call() {
            assert_eq!(res.status().as_u16(), 401, "the registry must ask for a token");
            let challenge = res.headers().get("www-authenticate").unwrap().to_str().unwrap().to_owned();
            assert!(challenge.contains(&s.url("/jwt/auth")), "{challenge}");
            return registry;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("docker-registry did not start: {}", std::fs::read_to_string(registry.dir.join("registry.log")).unwrap());
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `bytes` as a blob of the OCI layout in `dir`; returns its descriptor.
fn blob(dir: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let digest = sha256_hex(bytes);
    std::fs::write(dir.join("blobs/sha256").join(&digest), bytes).unwrap();
    json!({"mediaType": media_type, "digest": format!("sha256:{digest}"), "size": bytes.len()})
}

/// A one-layer OCI image layout (tag `v1`): a tar.gz layer holding `hello.txt`,
/// its config, its manifest and index.json, every digest computed here.
fn image(dir: &Path) -> PathBuf {
    let layout = dir.join("image");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let content = dir.join("content");
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(content.join("hello.txt"), "hello from a CI job\n").unwrap();
    let tar = dir.join("layer.tar");
    let status = Command::new("tar")
        .args(["--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-cf"])
        .arg(&tar)
        .arg("-C")
        .arg(&content)
        .arg("hello.txt")
        .status()
        .unwrap();
    assert!(status.success());
    let gzip = Command::new("gzip").args(["-n", "-c"]).arg(&tar).output().unwrap();
    assert!(gzip.status.success());
    let layer = blob(&layout, "application/vnd.oci.image.layer.v1.tar+gzip", &gzip.stdout);
    let diff_id = format!("sha256:{}", sha256_hex(&std::fs::read(&tar).unwrap()));
    let config = json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let config = blob(&layout, "application/vnd.oci.image.config.v1+json", config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": [layer],
    });
    let mut manifest = blob(&layout, "application/vnd.oci.image.manifest.v1+json", manifest.to_string().as_bytes());
    manifest["annotations"] = json!({"org.opencontainers.image.ref.name": "v1"});
    let index = json!({"schemaVersion": 2, "manifests": [manifest]});
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    layout
}

/// Who skopeo logs in as.
#[derive(Clone, Copy)]
enum As<'a> {
    Job(&'a str),
    Anonymous,
}

fn skopeo(home: &Path, args: &[String]) -> Result<(), String> {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home)
        .output()
        .expect("running skopeo");
    match out.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

fn creds(side: &str, who: As) -> String {
    match who {
        As::Job(token) => format!("--{side}-creds=gitlab-ci-token:{token}"),
        As::Anonymous => format!("--{side}-no-creds"),
    }
}

/// `skopeo copy oci:IMAGE:v1 docker://REGISTRY/REPO:v1`.
fn push(rig: &Rig, who: As, repo: &str) -> Result<(), String> {
    let args = vec![
        "copy".to_owned(),
        creds("dest", who),
        "--dest-tls-verify=false".to_owned(),
        format!("oci:{}:v1", rig.image.display()),
        format!("docker://{}/{repo}:v1", rig.registry.addr),
    ];
    skopeo(&rig.home, &args)
}

/// `skopeo copy docker://REGISTRY/REPO:v1 dir:OUT` (manifest, config and layer).
fn pull(rig: &Rig, who: As, repo: &str) -> Result<(), String> {
    let out = rig.home.join(format!("pulled-{}", free_port()));
    let args = vec![
        "copy".to_owned(),
        creds("src", who),
        "--src-tls-verify=false".to_owned(),
        format!("docker://{}/{repo}:v1", rig.registry.addr),
        format!("dir:{}", out.display()),
    ];
    skopeo(&rig.home, &args)?;
    // What came back is the manifest and every blob it names, each matching its digest.
    let manifest: Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    for descriptor in layers.iter().chain([&manifest["config"]]) {
        let hex = descriptor["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap();
        assert_eq!(sha256_hex(&std::fs::read(out.join(hex)).unwrap()), hex);
    }
    Ok(())
}

/// jobtoken with `grp/app` (private; `dev` a Developer) and a registered registry, the registry
/// trusting jobtoken's bundle, and the image to push.
struct Rig {
    registry: Registry,
    world: World,
    image: PathBuf,
    home: PathBuf,
    s: Server,
}

impl Drop for Rig {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.home);
        }
    }
}

fn rig_with(bundle_from: fn(&Server) -> String) -> Rig {
    rig_on(Server::start(), bundle_from)
}

fn rig_on(s: Server, bundle_from: fn(&Server) -> String) -> Rig {
    let world = World::new(&s);
    s.admin("POST", "/api/v1/resource_servers", json!({"name": "docker-registry", "audience": [SERVICE]}));
    let registry = start_registry(&s, &bundle_from(&s));
    let home = temp_dir();
    let image = image(&home);
    Rig { registry, world, image, home, s }
}

fn bundle_from_api(s: &Server) -> String {
    let res = s.get("/api/v1/keys/registry_bundle.pem", Auth::Admin);
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.header("content-type"), Some("application/x-pem-file"));
    res.text
}

fn bundle_from_cli(s: &Server) -> String {
    let out = cli_in(&s.dir, &["keys", "registry-bundle"], &[]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn rig() -> Rig {
    rig_with(bundle_from_api)
}

#[test]
fn a_protected_job_pushes_to_its_own_project_and_pulls_it_back() {
    let rig = rig();
    let job = rig.world.job(&rig.s, true);
    let token = rig.world.mint_ok(&rig.s, job, &[]);

    push(&rig, As::Job(&token), "grp/app").unwrap();
    pull(&rig, As::Job(&token), "grp/app").unwrap();
    // A repository below the project belongs to it.
    push(&rig, As::Job(&token), "grp/app/cache").unwrap();
}

#[test]
fn an_unprotected_job_can_still_push_with_a_bundle_from_the_cli() {
    let rig = rig_with(bundle_from_cli);
    let job = rig.world.job(&rig.s, false);
    let token = rig.world.mint_ok(&rig.s, job, &[]);

    push(&rig, As::Job(&token), "grp/app").unwrap();
    pull(&rig, As::Job(&token), "grp/app").unwrap();
}

#[test]
fn another_projects_job_pulls_only_while_on_the_allowlist_and_never_pushes_without_write_registry() {
    let rig = rig();
    let (s, w) = (&rig.s, &rig.world);
    let own = w.mint_ok(s, w.job(s, true), &[]);
    push(&rig, As::Job(&own), "grp/app").unwrap();
    let deploy = project(s, "deploy", w.group, json!({}));
    project_member(s, deploy, w.user, 30);
    let token = w.mint_ok(s, job_for(s, deploy, w.user, true), &[]);

    let refused = pull(&rig, As::Job(&token), "grp/app").unwrap_err();
    assert!(refused.contains("denied") || refused.contains("unauthorized"), "{refused}");

    let allowlist = format!("/api/v1/projects/{}/job_token_scope/allowlist", w.project);
    s.admin("POST", &allowlist, json!({"source_project_id": deploy, "scopes": ["read_registry"]}));
    pull(&rig, As::Job(&token), "grp/app").unwrap();
    let refused = push(&rig, As::Job(&token), "grp/app").unwrap_err();
    assert!(refused.contains("denied") || refused.contains("unauthorized"), "{refused}");

    let res = s.json("DELETE", &format!("{allowlist}/{deploy}"), Auth::Admin, Value::Null);
    assert_eq!(res.status, 204, "{}", res.text);
    pull(&rig, As::Job(&token), "grp/app").unwrap_err();
}

#[test]
fn a_finished_jobs_token_is_refused() {
    let rig = rig();
    let job = rig.world.job(&rig.s, true);
    let token = rig.world.mint_ok(&rig.s, job, &[]);
    push(&rig, As::Job(&token), "grp/app").unwrap();

    rig.s.admin("POST", &format!("/api/v1/jobs/{job}/finish"), json!({"status": "success"}));

    // skopeo reports the token service's 401 (tests/registry_token.rs checks its message).
    let refused = pull(&rig, As::Job(&token), "grp/app").unwrap_err();
    assert!(refused.contains("invalid username/password"), "{refused}");
    push(&rig, As::Job(&token), "grp/app").unwrap_err();
}

#[test]
fn anonymous_pulls_work_on_public_projects_only() {
    let rig = rig();
    let token = rig.world.mint_ok(&rig.s, rig.world.job(&rig.s, true), &[]);
    push(&rig, As::Job(&token), "grp/app").unwrap();

    pull(&rig, As::Anonymous, "grp/app").unwrap_err();

    rig.s.admin("PATCH", &format!("/api/v1/projects/{}", rig.world.project), json!({"visibility": "public"}));
    pull(&rig, As::Anonymous, "grp/app").unwrap();
    push(&rig, As::Anonymous, "grp/app").unwrap_err();
}

#[test]
fn a_registry_started_before_a_rotation_accepts_tokens_of_the_promoted_key() {
    let rig = rig();
    let before = rig.s.get("/api/v1/keys?family=job", Auth::Admin).json;

    let res = rig.s.json("POST", "/api/v1/keys/rotate?force=true", Auth::Admin, Value::Null);
    assert_eq!(res.status, 200, "{}", res.text);
    let token = rig.world.mint_ok(&rig.s, rig.world.job(&rig.s, true), &[]);

    // The key that signs now was the `next` key of the bundle the registry read at start.
    let next = before.as_array().unwrap().iter().find(|k| k["state"] == "next").unwrap()["kid"].clone();
    assert_eq!(decode(&token).0["kid"], next);
    push(&rig, As::Job(&token), "grp/app").unwrap();
    pull(&rig, As::Job(&token), "grp/app").unwrap();
}

#[test]
fn an_rs256_instance_works_with_the_registry_too() {
    let rig = rig_on(Server::start_with(&[("JOBTOKEN_SIGNING_ALG", "RS256")]), bundle_from_api);
    let token = rig.world.mint_ok(&rig.s, rig.world.job(&rig.s, true), &[]);

    push(&rig, As::Job(&token), "grp/app").unwrap();
    pull(&rig, As::Job(&token), "grp/app").unwrap();
}

#[test]
fn the_readme_quotes_the_registry_config_verbatim() {
    let config = std::fs::read_to_string(config_path()).unwrap();
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("```yaml\n{config}```")),
        "README.md must quote tests/registry/config.yml verbatim"
    );
}
