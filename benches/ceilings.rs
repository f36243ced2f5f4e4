//! Ceilings for `benches/run.sh`, so that its figures read as ratios to what this machine can do
//! at all (issue 12 point 2). Not a test harness:
//!
//! - `ceilings sign [ALG] [SECONDS]`: one thread per core, each signing a job token's worth of
//!   claims with [`jobtoken::token::jws::sign_compact`] and one shared key of ALG (default ES256,
//!   as the server) for SECONDS (default 5); prints `signs_per_s=… threads=… alg=… token_bytes=…`.
//! - `ceilings http`: an actix-web server with one worker per core (as `jobtoken serve`) that
//!   answers every request with a small fixed JSON body; prints `listening on http://…` and runs
//!   until SIGTERM.
//!
//! `cargo bench` would run it without arguments: it then prints its usage and exits 0.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use jobtoken::keys::{Alg, KeyPair};
use jobtoken::token::jws::sign_compact;

/// A representative job token's claims (the server's mint signs claims of this size and shape).
const CLAIMS: &str = r#"{"iss":"https://jobtoken.bench.example","sub":"project_path:fleet-t3/s4/p7:ref_type:branch:ref:main","aud":["https://jobtoken.bench.example"],"exp":1796000000,"iat":1795996400,"nbf":1795996400,"jti":"0193a0f4-7c1e-7d2a-9f3b-6a1c2e4d5f60","client_id":"runner-0193a0f47c1e","scope":"read_repository read_registry read_package_registry read_api create_deployment","job_id":"4711","pipeline_id":"4711","project_id":"347","project_path":"fleet-t3/s4/p7","namespace_id":"47","namespace_path":"fleet-t3/s4","user_id":"3470","user_login":"u3470","ref":"main","ref_type":"branch","ref_protected":"true","sha":"4b825dc642cb6eb9a060e54bf8d69288fbee4904","pipeline_source":"push","runner_id":"1","runner_environment":"self-hosted"}"#;

/// The fixed body of the trivial responder: about the size of an introspection answer.
const BODY: &str =
    r#"{"active":true,"scope":"read_repository","client_id":"runner","token_type":"Bearer","exp":1796000000}"#;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let result = match args.first().map(String::as_str) {
        Some("sign") => sign(args.get(1).map_or("ES256", String::as_str), args.get(2).map_or("5", String::as_str)),
        Some("http") => http(),
        _ => {
            eprintln!("usage: ceilings sign [ES256|RS256|EdDSA] [SECONDS] | ceilings http");
            Ok(())
        }
    };
    if let Err(e) = result {
        eprintln!("ceilings: {e}");
        std::process::exit(1);
    }
}

fn cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

fn sign(alg: &str, seconds: &str) -> Result<(), String> {
    let alg: Alg = alg.parse().map_err(|e| format!("{e}"))?;
    let seconds: f64 = seconds.parse().map_err(|_| format!("not a number of seconds: {seconds}"))?;
    let key = KeyPair::generate(alg).map_err(|e| e.to_string())?;
    let header = serde_json::json!({ "alg": alg.as_str(), "typ": "at+jwt", "kid": key.kid() });
    let token_bytes = sign_compact(&header, CLAIMS.as_bytes(), &key).map_err(|e| e.to_string())?.len();
    let threads = cores();
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let counts: Vec<Result<u64, String>> = thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let token = sign_compact(&header, CLAIMS.as_bytes(), &key).map_err(|e| e.to_string())?;
                        std::hint::black_box(token);
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
        workers.into_iter().map(|w| w.join().unwrap_or_else(|_| Err("a signing thread panicked".into()))).collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut total = 0u64;
    for count in counts {
        total += count?;
    }
    println!(
        "signs_per_s={:.0} threads={threads} alg={} token_bytes={token_bytes} seconds={elapsed:.2}",
        total as f64 / elapsed,
        alg.as_str()
    );
    Ok(())
}

fn http() -> Result<(), String> {
    use actix_web::{web, App, HttpResponse, HttpServer};
    actix_web::rt::System::new().block_on(async {
        let server = HttpServer::new(|| {
            App::new()
                .default_service(web::to(|| async { HttpResponse::Ok().content_type("application/json").body(BODY) }))
        })
        .workers(cores())
        .bind(("127.0.0.1", 0))
        .map_err(|e| e.to_string())?;
        for addr in server.addrs() {
            println!("listening on http://{addr}");
        }
        server.run().await.map_err(|e| e.to_string())
    })
}
