//! Bounded time on PostgreSQL, whatever `JOBTOKEN_TEST_BACKEND` says: a request that waits on a
//! lock another session holds answers 503 once `lock_timeout` or `statement_timeout` cuts it
//! (both set on every connection, overridable by the URL's `options=`), and 200 once the lock is
//! released.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Mints while another session holds `runners` (which client authentication reads) in ACCESS
/// EXCLUSIVE mode: 503 `temporarily_unavailable`, within `bound`; then 200 once released.
/// Returns the server's log.
fn blocked_mint_answers_503_then_200(options: &str, bound: Duration) -> String {
    let url = pg::database();
    let server_url = if options.is_empty() { url.clone() } else { format!("{url}?options={options}") };
    let s = Server::start_with(&[
        ("JOBTOKEN_DATABASE", &server_url),
        ("JOBTOKEN_KEY_ENCRYPTION_KEY", &random_key_encryption_key()),
    ]);
    let w = World::new(&s);
    let job = w.job(&s, false);
    assert_eq!(w.mint(&s, job, &[]).status, 200);

    let mut holder = pg::connect(&url);
    holder.batch_execute("BEGIN; LOCK TABLE runners IN ACCESS EXCLUSIVE MODE").unwrap();
    let asked = Instant::now();
    let blocked = w.mint(&s, job, &[]);
    let took = asked.elapsed();
    holder.batch_execute("COMMIT").unwrap();
    let released = w.mint(&s, job, &[]);

    assert_oauth_error(&blocked, 503, "temporarily_unavailable");
    assert!(took < bound, "answered after {took:?}, bound {bound:?}");
    assert_eq!(released.status, 200, "{}", released.text);
    s.log()
}

#[test]
fn a_request_waiting_on_a_lock_answers_503_when_lock_timeout_from_the_url_cuts_it_and_200_once_released() {
    let log = blocked_mint_answers_503_then_200("-c%20lock_timeout%3D1s", Duration::from_secs(4));
    assert!(log.contains("55P03"), "the cause is logged:\n{log}");
}

#[test]
fn a_request_waiting_on_a_lock_answers_503_when_statement_timeout_from_the_url_cuts_it_and_200_once_released() {
    let log = blocked_mint_answers_503_then_200(
        "-c%20lock_timeout%3D0%20-c%20statement_timeout%3D1s",
        Duration::from_secs(4),
    );
    assert!(log.contains("57014"), "the cause is logged:\n{log}");
}

#[test]
fn without_options_in_the_url_a_request_waiting_on_a_lock_answers_503_within_the_default_bound() {
    // The defaults: lock_timeout and statement_timeout of 5 s.
    blocked_mint_answers_503_then_200("", Duration::from_secs(12));
}
