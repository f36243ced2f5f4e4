//! The catalog cache: rows of the tables that describe the instance's structure (projects,
//! groups, memberships, allowlists, outbound entries, instance settings), kept in memory between
//! read transactions and trusted only while the database says nothing in them changed.
//!
//! **Invalidation.** Migration `0013_cache_version.sql` (PostgreSQL `0007`) adds the one-row
//! table `cache_version` and triggers that bump its counter in the same transaction as every
//! `INSERT`, `UPDATE` or `DELETE` (and, on PostgreSQL, `TRUNCATE`) of those tables, whoever
//! writes: this process, another replica, the CLI, or a bulk load in `psql`. A read transaction
//! that wants a cached row first reads the counter (once per transaction, in its own snapshot):
//! rows cached under that same counter value are exactly what its own statements would return,
//! so a cached answer is never older than the transaction that uses it. Rows read under an older
//! counter are dropped at once; a transaction whose snapshot is older than the cache's bypasses it.
//!
//! **Never cached:** anything that decides liveness (jobs, issued tokens, users' state, runners,
//! resource servers, personal access tokens) and client secrets (a cache would make known
//! clients faster to reject than unknown ones). Those are read from the database every time.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::db::{params, Db};
use super::Result;

/// Cached entries kept before the cache starts over (each is a small row or a short list).
const MAX_ENTRIES: usize = 200_000;

/// What a cached row was looked up by: the store function's name and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    what: &'static str,
    ids: Vec<i64>,
    text: String,
}

impl Key {
    pub(crate) fn ids(what: &'static str, ids: Vec<i64>) -> Key {
        Key { what, ids, text: String::new() }
    }

    pub(crate) fn text(what: &'static str, text: &str) -> Key {
        Key { what, ids: Vec::new(), text: text.to_owned() }
    }
}

type Entry = Arc<dyn Any + Send + Sync>;

#[derive(Default)]
struct Entries {
    /// The `cache_version` counter every entry was read under.
    version: i64,
    map: HashMap<Key, Entry>,
}

/// The catalog cache of one [`super::Store`] (shared by its threads).
#[derive(Default)]
pub struct Catalog {
    entries: Mutex<Entries>,
}

impl Catalog {
    fn get(&self, version: i64, key: &Key) -> Option<Entry> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if version > entries.version {
            entries.map.clear();
            entries.version = version;
            return None;
        }
        match version == entries.version {
            true => entries.map.get(key).cloned(),
            false => None,
        }
    }

    fn put(&self, version: i64, key: Key, value: Entry) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if version != entries.version {
            return;
        }
        if entries.map.len() >= MAX_ENTRIES {
            entries.map.clear();
        }
        entries.map.insert(key, value);
    }

    /// How many entries are cached now (for tests).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).map.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The counter in `db`'s snapshot.
pub(crate) fn read_version(db: &Db) -> Result<i64> {
    db.query_one("SELECT version FROM cache_version WHERE id = 1", params![])?.get(0)
}

/// `load()`'s answer for `key`, from the cache when `db` is a read transaction that may use it
/// and the rows were cached under the counter value of its snapshot; else loaded (and kept).
/// `load` must only read the cached tables listed in the module docs.
pub(crate) fn cached<T>(db: &Db, key: impl FnOnce() -> Key, load: impl FnOnce() -> Result<T>) -> Result<T>
where
    T: Clone + Send + Sync + 'static,
{
    let Some((catalog, version)) = db.catalog()? else { return load() };
    let key = key();
    if let Some(hit) = catalog.get(version, &key) {
        if let Some(value) = hit.downcast_ref::<T>() {
            return Ok(value.clone());
        }
    }
    let value = load()?;
    catalog.put(version, key, Arc::new(value.clone()));
    Ok(value)
}
