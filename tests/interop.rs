//! Interoperability: tokens minted by the real server, verified by JWT libraries that share no
//! code with it and are not written in Rust — PyJWT (Python, `cryptography`/OpenSSL) and jose
//! (Node.js, WebCrypto) — each fetching the published JWKS over HTTP, as a resource server does.
//!
//! `tests/interop/setup.sh` installs both (pinned) on first use; later runs take well under a
//! second. The verifier scripts print the verified claims as JSON, or fail with the reason.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{
    b64url, decode, interop_dir, interop_python, interop_setup as setup, verify_with_jwks, Auth, Server, World,
};
use serde_json::{json, Value};

const AUD: &str = "registry";
const ISSUER: &str = "https://jobtoken.example";

#[derive(Clone, Copy, Debug)]
enum Verifier {
    PyJwt,
    Jose,
}

const VERIFIERS: [Verifier; 2] = [Verifier::PyJwt, Verifier::Jose];

/// What a verifier is told to expect.
#[derive(Clone, Debug)]
struct Expect {
    jwks: String,
    issuer: String,
    audience: String,
    alg: String,
}

impl Expect {
    /// The server's JWKS URL and issuer, audience `registry`, and `alg`.
    fn of(s: &Server, alg: &str) -> Expect {
        Expect { jwks: s.url("/.well-known/jwks.json"), issuer: s.base.clone(), audience: AUD.into(), alg: alg.into() }
    }

    fn issuer(&self, issuer: &str) -> Expect {
        Expect { issuer: issuer.into(), ..self.clone() }
    }

    fn audience(&self, audience: &str) -> Expect {
        Expect { audience: audience.into(), ..self.clone() }
    }

    fn alg(&self, alg: &str) -> Expect {
        Expect { alg: alg.into(), ..self.clone() }
    }
}

impl Verifier {
    /// Runs the verifier script: the claims when it accepts `token`, its reason when it rejects.
    fn verify(self, expect: &Expect, token: &str) -> Result<Value, String> {
        let dir = interop_dir();
        let mut cmd = match self {
            Verifier::PyJwt => {
                let mut cmd = Command::new(interop_python());
                cmd.arg(dir.join("verify_pyjwt.py"));
                cmd
            }
            Verifier::Jose => {
                let mut cmd = Command::new("node");
                cmd.arg(dir.join("verify_jose.mjs"));
                cmd
            }
        };
        let Expect { jwks, issuer, audience, alg } = expect;
        let out = cmd
            .args([jwks, issuer, audience, alg])
            .arg(token)
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| panic!("running the {self:?} verifier: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            return Ok(serde_json::from_str(stdout.trim())
                .unwrap_or_else(|e| panic!("{self:?} printed no JSON claims ({e}): {stdout}")));
        }
        // A crash (missing module, syntax error) must not pass for a rejection.
        assert!(stderr.contains("rejected the token"), "{self:?} failed without a verdict ({}): {stderr}", out.status);
        Err(stderr)
    }

    fn accepts(self, expect: &Expect, token: &str) -> Value {
        self.verify(expect, token).unwrap_or_else(|e| panic!("{self:?} must accept the token ({expect:?}): {e}"))
    }

    fn rejects(self, expect: &Expect, token: &str, what: &str) {
        match self.verify(expect, token) {
            Ok(claims) => panic!("{self:?} accepted {what} ({expect:?}): {claims}"),
            Err(reason) => eprintln!("{self:?} rejects {what}: {}", reason.trim()),
        }
    }
}

/// The token with one claim changed and the original signature kept.
fn with_claim(token: &str, name: &str, value: Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let (_, mut claims) = decode(token);
    claims[name] = value;
    format!("{}.{}.{}", parts[0], b64url(claims.to_string().as_bytes()), parts[2])
}

fn assert_claims(claims: &Value, s: &Server, w: &World, job: i64, scope: &Value) {
    assert_eq!(claims["job_id"], json!(job), "{claims}");
    assert_eq!(claims["project_id"], json!(w.project), "{claims}");
    assert_eq!(claims["project_path"], "grp/app", "{claims}");
    assert_eq!(claims["scope"], *scope, "{claims}");
    assert_eq!(claims["iss"], json!(s.base), "{claims}");
    assert_eq!(claims["aud"], AUD, "{claims}");
    assert_eq!(claims["ref_protected"], json!(true), "{claims}");
}

/// For one algorithm: both verifiers accept a fresh token with the expected claims; reject a
/// tampered payload, a wrong audience and a different algorithm; and still accept it (and a
/// new one) after a key rotation.
fn independent_verifiers_agree(alg: &str, other_alg: &str) {
    setup();
    let s = Server::start_with(&[("JOBTOKEN_SIGNING_ALG", alg)]);
    let w = World::new(&s);
    let job = w.job(&s, true);
    let res = w.mint(&s, job, &[("audience", AUD)]);
    assert_eq!(res.status, 200, "{}", res.text);
    let token = res.json["access_token"].as_str().unwrap().to_owned();
    let scope = res.json["scope"].clone();
    assert_eq!(decode(&token).0["alg"], alg);
    let tampered = with_claim(&token, "job_id", json!(job + 1));

    let expect = Expect::of(&s, alg);
    for v in VERIFIERS {
        let claims = v.accepts(&expect, &token);
        assert_claims(&claims, &s, &w, job, &scope);

        v.rejects(&expect, &tampered, "a token whose payload was altered");
        v.rejects(&expect.audience("somewhere-else"), &token, "a token for another audience");
        v.rejects(&expect.issuer("https://evil.example"), &token, "a token from another issuer");
        v.rejects(&expect.alg(other_alg), &token, "a token signed with an algorithm it does not allow");
    }

    let rotated = s.json("POST", "/api/v1/keys/rotate?force=true", Auth::Admin, Value::Null);
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let after = w.mint_ok(&s, job, &[("audience", AUD)]);
    assert_ne!(decode(&after).0["kid"], decode(&token).0["kid"], "the rotated-in key signs new tokens");
    for v in VERIFIERS {
        let claims = v.accepts(&expect, &token);
        assert_claims(&claims, &s, &w, job, &scope);
        assert_eq!(v.accepts(&expect, &after)["job_id"], json!(job));
    }
}

#[test]
fn pyjwt_and_jose_verify_es256_tokens() {
    independent_verifiers_agree("ES256", "RS256");
}

#[test]
fn pyjwt_and_jose_verify_rs256_tokens() {
    independent_verifiers_agree("RS256", "ES256");
}

#[test]
fn pyjwt_and_jose_verify_eddsa_tokens() {
    independent_verifiers_agree("EdDSA", "ES256");
}

/// SPEC §7: `jobtoken keys set-algorithm` publishes a next key of the new algorithm, which signs
/// once it has been published for the JWKS cache lifetime; the old key stays published, retired,
/// while tokens it signed live, so verifiers holding a mixed-algorithm JWKS accept both.
#[test]
fn switching_from_es256_to_eddsa_keeps_es256_tokens_valid_and_verifiable() {
    setup();
    // The issuer is configured: a restart binds another port, and a derived issuer would follow it.
    let s = Server::start_with(&[("JOBTOKEN_SIGNING_ALG", "ES256"), ("JOBTOKEN_ISSUER", ISSUER)]);
    let w = World::new(&s);
    let job = w.job(&s, true);
    let a = w.mint_ok(&s, job, &[("audience", AUD)]);
    let a_kid = decode(&a).0["kid"].as_str().unwrap().to_owned();
    assert_eq!(decode(&a).0["alg"], "ES256");
    let dir = s.stop();
    let set = common::cli_in(&dir, &["keys", "set-algorithm", "EdDSA"], &[]).output().unwrap();
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    // The publication time passes (instead of waiting 360 s, the next key is made that old).
    common::sql(&dir, "UPDATE signing_keys SET created_at = created_at - 360 WHERE state = 'next'");

    let s = Server::start_in(dir, &[("JOBTOKEN_SIGNING_ALG", "EdDSA"), ("JOBTOKEN_ISSUER", ISSUER)]);
    let b = w.mint_ok(&s, job, &[("audience", AUD)]);
    assert_eq!(decode(&b).0["alg"], "EdDSA");
    assert_eq!(decode(&b).1["exp"], decode(&a).1["exp"], "same job, same expiry");

    assert_eq!(w.introspect(&s, &a)["active"], true, "token A outlives the switch");
    assert_eq!(w.introspect(&s, &b)["active"], true);

    let keys = s.get("/api/v1/keys?family=job", Auth::Admin);
    assert_eq!(keys.status, 200, "{}", keys.text);
    let keys = keys.json.as_array().unwrap().clone();
    let old = keys.iter().find(|k| k["kid"] == a_kid.as_str()).unwrap_or_else(|| panic!("{a_kid} listed: {keys:?}"));
    assert_eq!(old["alg"], "ES256", "{old}");
    assert_eq!(old["state"], "retired", "{old}");
    assert_eq!(old["published"], true, "{old}");
    let state_of = |state: &str| keys.iter().filter(|k| k["state"] == state).cloned().collect::<Vec<_>>();
    for state in ["active", "next"] {
        let found = state_of(state);
        assert_eq!(found.len(), 1, "one {state} key: {keys:?}");
        assert_eq!(found[0]["alg"], "EdDSA", "{keys:?}");
    }
    assert_eq!(decode(&b).0["kid"], state_of("active")[0]["kid"]);

    let set = common::jwks(&s);
    let id_kids = common::id_token_kids(&s.dir);
    let mut published: Vec<(String, String)> = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| !id_kids.iter().any(|id| k["kid"] == id.as_str()))
        .map(|k| (k["alg"].as_str().unwrap().to_owned(), k["kty"].as_str().unwrap().to_owned()))
        .collect();
    published.sort();
    assert_eq!(
        published,
        [("ES256", "EC"), ("EdDSA", "OKP"), ("EdDSA", "OKP")].map(|(a, k)| (a.to_owned(), k.to_owned())),
        "{set}"
    );

    assert_eq!(decode(&a).1["iss"], ISSUER);
    assert_eq!(verify_with_jwks(&s, &a)["job_id"], json!(job));
    assert_eq!(verify_with_jwks(&s, &b)["job_id"], json!(job));
    let expect = Expect::of(&s, "ES256").issuer(ISSUER);
    for v in VERIFIERS {
        assert_eq!(v.accepts(&expect, &a)["job_id"], json!(job));
        assert_eq!(v.accepts(&expect.alg("EdDSA"), &b)["job_id"], json!(job));
    }
}
