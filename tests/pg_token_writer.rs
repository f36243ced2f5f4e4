//! The token writer on PostgreSQL, whatever `JOBTOKEN_TEST_BACKEND` says: a burst of concurrent
//! mints is committed as multi-row inserts, and a row that cannot be recorded fails only its own
//! request, never the tokens it shared a batch with.

mod common;

use common::*;

#[test]
fn a_token_that_cannot_be_recorded_fails_alone_while_the_tokens_batched_with_it_are_committed() {
    let url = pg::database();
    let kek = random_key_encryption_key();
    let s = Server::start_with(&[("JOBTOKEN_DATABASE", url.as_str()), ("JOBTOKEN_KEY_ENCRYPTION_KEY", kek.as_str())]);
    let w = World::new(&s);
    let (good, bad) = (w.job(&s, false), w.job(&s, false));
    // The first mints start both jobs; from then on PostgreSQL refuses every row of `bad`.
    w.mint_ok(&s, good, &[]);
    w.mint_ok(&s, bad, &[]);
    pg::connect(&url)
        .batch_execute(&format!(
            "CREATE FUNCTION refuse_bad_job() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.job_id = {bad} THEN RAISE EXCEPTION 'refused by the test'; END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER refuse_bad_job BEFORE INSERT ON issued_tokens
                 FOR EACH ROW EXECUTE FUNCTION refuse_bad_job();"
        ))
        .unwrap();

    // 16 clients at once, alternating jobs, so that the writer's batches mix good and bad rows.
    let (threads, per_thread) = (16, 12);
    let results: Vec<(i64, u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (s, w) = (&s, &w);
                scope.spawn(move || {
                    (0..per_thread)
                        .map(|i| {
                            let job = if (t + i) % 2 == 0 { good } else { bad };
                            let res = w.mint(s, job, &[]);
                            let token = res.json["access_token"].as_str().unwrap_or_default().to_owned();
                            (job, res.status, token)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });

    let mut good_tokens = Vec::new();
    for (job, status, token) in &results {
        if *job == good {
            assert_eq!(*status, 200, "a mint for the good job failed with its batch: {results:?}");
            good_tokens.push(token.clone());
        } else {
            assert_ne!(*status, 200, "a token whose record was refused was handed out");
        }
    }
    let rows = |job: i64| {
        pg::connect(&url).query("SELECT count(*) FROM issued_tokens WHERE job_id = $1", &[&job]).unwrap()[0]
            .get::<_, i64>(0)
    };
    assert_eq!(rows(good), 1 + good_tokens.len() as i64);
    assert_eq!(rows(bad), 1, "only the mint before the trigger is recorded");
    for token in good_tokens.iter().step_by(7) {
        assert_eq!(w.introspect(&s, token)["active"], true);
    }
}
