//! Issue 7 point 12: a crash never takes back a token the server handed out. The server is
//! killed with SIGKILL (no shutdown, no flush) while several threads mint for several jobs; after
//! a restart on the same directory every token that got a 200 is introspectable and active.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Server, World};

/// Minting threads, each minting for its own job.
const THREADS: usize = 4;
/// How long the threads mint at least before the kill, and how many tokens they get first
/// (however loaded the machine: the kill waits for them, within `DEADLINE`).
const MINTING: Duration = Duration::from_millis(1500);
const TOKENS: usize = THREADS * 5;
/// Upper bound on the whole minting phase, should the kill not stop the requests.
const DEADLINE: Duration = Duration::from_secs(10);

#[test]
fn every_token_that_got_a_200_before_a_kill_9_is_active_after_restart() {
    // Arrange: one world, a job per thread, each started by a first mint.
    let s = Server::start();
    let world = World::new(&s);
    let jobs: Vec<i64> = (0..THREADS).map(|_| world.job(&s, true)).collect();
    let killed = AtomicBool::new(false);
    let minted = AtomicUsize::new(0);

    // Act: mint concurrently until the server dies under the threads.
    let tokens: Vec<String> = std::thread::scope(|scope| {
        let minters: Vec<_> = jobs
            .iter()
            .map(|job| {
                let (s, world, killed, minted, job) = (&s, &world, &killed, &minted, job.to_string());
                scope.spawn(move || {
                    let mut got = Vec::new();
                    let started = Instant::now();
                    while started.elapsed() < DEADLINE {
                        let fields = [("grant_type", "client_credentials"), ("job_id", job.as_str())];
                        match s.try_form("/oauth/token", world.runner.auth(), &fields) {
                            Some(res) if res.status == 200 => match res.json["access_token"].as_str() {
                                Some(token) => {
                                    got.push(token.to_owned());
                                    minted.fetch_add(1, Ordering::SeqCst);
                                }
                                // A response cut off by the kill never reached the client whole.
                                None => assert!(killed.load(Ordering::SeqCst), "a 200 without a token: {}", res.text),
                            },
                            Some(res) => assert!(killed.load(Ordering::SeqCst), "{} {}", res.status, res.text),
                            None if killed.load(Ordering::SeqCst) => break,
                            None => panic!("the server went away before it was killed:\n{}", s.log()),
                        }
                    }
                    got
                })
            })
            .collect();
        std::thread::sleep(MINTING);
        let enough = common::eventually(DEADLINE, || minted.load(Ordering::SeqCst) >= TOKENS);
        assert!(enough, "the threads minted only {} tokens in {DEADLINE:?}", minted.load(Ordering::SeqCst));
        killed.store(true, Ordering::SeqCst);
        s.kill9();
        minters.into_iter().flat_map(|m| m.join().unwrap()).collect()
    });
    let dir = s.stop();
    let s = Server::start_in(dir, &[]);

    // Assert
    assert!(tokens.len() >= TOKENS, "the threads minted only {} tokens before the kill", tokens.len());
    let inactive: Vec<usize> =
        tokens.iter().enumerate().filter(|(_, t)| world.introspect(&s, t)["active"] != true).map(|(i, _)| i).collect();
    assert!(
        inactive.is_empty(),
        "{} of {} tokens that got a 200 are not active after restart",
        inactive.len(),
        tokens.len()
    );
}
