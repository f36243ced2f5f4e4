//! The authorization log (SPEC §4.5): every allowed cross-project access is counted in memory
//! and written at most once per (target, source) pair per five minutes, by a background thread,
//! never on the request path. `flush_all` on clean shutdown writes whatever is pending.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use crate::domain::{ProjectId, ScopeSet};
use crate::store::allowlist::{self, LogRow};
use crate::store::Store;

/// Minimum seconds between two writes of one pair.
pub const WRITE_INTERVAL_SECS: i64 = 300;

/// Rows per write transaction: a few milliseconds under the writer lock.
const WRITE_CHUNK: usize = 200;

#[derive(Default)]
struct Pair {
    /// When this pair was last written; `None` = never (written on the next tick).
    written_at: Option<i64>,
    pending: i64,
    last_seen: i64,
    /// Scopes used since the last write that only an allowlist entry could grant.
    scopes: ScopeSet,
}

#[derive(Default)]
struct Inner {
    pairs: HashMap<(ProjectId, ProjectId), Pair>,
    stopped: bool,
}

/// Cheap to clone; all clones share one buffer.
#[derive(Clone, Default)]
pub struct AuthLog {
    inner: Arc<(Mutex<Inner>, Condvar)>,
    /// Held from taking rows until they are written: a flush waits for a write in flight, so
    /// that a shutdown never exits while rows taken from the buffer are not yet in the database.
    writing: Arc<Mutex<()>>,
}

impl AuthLog {
    /// Counts one allowed access of `target` by a job of `source` at `now` that used `scopes`
    /// beyond what visibility alone opens (empty when visibility alone allowed it).
    pub fn record(&self, target: ProjectId, source: ProjectId, scopes: ScopeSet, now: i64) {
        let mut inner = self.inner.0.lock().unwrap_or_else(|p| p.into_inner());
        let pair = inner.pairs.entry((target, source)).or_default();
        pair.pending += 1;
        pair.last_seen = pair.last_seen.max(now);
        pair.scopes = pair.scopes.union(scopes);
    }

    /// Takes the rows due for writing: pairs never written, or last written at least
    /// `WRITE_INTERVAL_SECS` ago; everything pending when `all`.
    fn take_due(&self, now: i64, all: bool) -> Vec<LogRow> {
        let mut inner = self.inner.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut rows = Vec::new();
        for ((target, source), pair) in inner.pairs.iter_mut() {
            let due = all || pair.written_at.is_none_or(|at| now - at >= WRITE_INTERVAL_SECS);
            if pair.pending > 0 && due {
                rows.push(LogRow {
                    target: *target,
                    source: *source,
                    last_authorized_at: pair.last_seen,
                    count: pair.pending,
                    scopes: pair.scopes,
                });
                pair.pending = 0;
                pair.scopes = ScopeSet::EMPTY;
                pair.written_at = Some(now);
            }
        }
        rows
    }

    /// Writes every pending count now (clean shutdown, tests), after any write in flight.
    pub fn flush_all(&self, store: &Store, now: i64) {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        self.write(store, self.take_due(now, true));
    }

    /// Writes `rows` in transactions of at most [`WRITE_CHUNK`] rows, so that the writer lock
    /// (which every replica's writes queue on) is never held for long.
    fn write(&self, store: &Store, rows: Vec<LogRow>) {
        for chunk in rows.chunks(WRITE_CHUNK) {
            self.write_chunk(store, chunk);
        }
    }

    fn write_chunk(&self, store: &Store, rows: &[LogRow]) {
        if let Err(e) = store.run_sync(|c| allowlist::log_authorizations(c, rows)) {
            log::error!("writing {} authorization log rows failed: {e}", rows.len());
            // Put the counts back so they are not lost; they are retried on the next tick.
            let mut inner = self.inner.0.lock().unwrap_or_else(|p| p.into_inner());
            for row in rows {
                let pair = inner.pairs.entry((row.target, row.source)).or_default();
                pair.pending += row.count;
                pair.last_seen = pair.last_seen.max(row.last_authorized_at);
                pair.scopes = pair.scopes.union(row.scopes);
                pair.written_at = None;
            }
        }
    }

    /// Starts the background writer: every second it writes the pairs that are due.
    pub fn start(&self, store: Store) {
        let log = self.clone();
        let spawned = thread::Builder::new().name("authorization-log".into()).spawn(move || loop {
            let stopped = {
                let (lock, wake) = &*log.inner;
                let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
                let (guard, _) = wake.wait_timeout(guard, Duration::from_secs(1)).unwrap_or_else(|p| p.into_inner());
                guard.stopped
            };
            if stopped {
                return;
            }
            let _writing = log.writing.lock().unwrap_or_else(|p| p.into_inner());
            log.write(&store, log.take_due(super::now(), false));
        });
        if let Err(e) = spawned {
            log::error!("could not start the authorization log writer: {e}");
        }
    }

    /// Stops the background writer and writes everything pending.
    pub fn shutdown(&self, store: &Store, now: i64) {
        {
            let (lock, wake) = &*self.inner;
            lock.lock().unwrap_or_else(|p| p.into_inner()).stopped = true;
            wake.notify_all();
        }
        self.flush_all(store, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Scope;

    fn row(last_authorized_at: i64, count: i64, scopes: &str) -> LogRow {
        let scopes = ScopeSet::parse_space_separated(scopes).unwrap();
        LogRow { target: 1, source: 2, last_authorized_at, count, scopes }
    }

    #[test]
    fn a_pair_is_written_at_most_once_per_interval_and_counts_and_scopes_accumulate() {
        let log = AuthLog::default();
        let (read, write) = (ScopeSet::EMPTY.with(Scope::ReadRepository), ScopeSet::EMPTY.with(Scope::WriteRegistry));
        log.record(1, 2, read, 100);
        assert_eq!(log.take_due(100, false), vec![row(100, 1, "read_repository")], "first sight is written promptly");
        log.record(1, 2, write, 110);
        log.record(1, 2, ScopeSet::EMPTY, 120);
        assert!(log.take_due(130, false).is_empty(), "within five minutes nothing is written");
        assert_eq!(log.take_due(100 + WRITE_INTERVAL_SECS, false), vec![row(120, 2, "write_registry")]);
        assert!(log.take_due(1000, false).is_empty(), "nothing pending");
    }

    #[test]
    fn flush_all_takes_everything_pending() {
        let log = AuthLog::default();
        log.record(1, 2, ScopeSet::EMPTY, 100);
        log.take_due(100, false);
        log.record(1, 2, ScopeSet::EMPTY, 150);
        assert_eq!(log.take_due(160, true), vec![row(150, 1, "")]);
    }
}
