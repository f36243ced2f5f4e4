//! The database liveness probe behind `/health/ready`.

use super::db::{params, Db};
use super::Result;

/// One round trip to the database.
pub fn ping(db: &Db) -> Result<()> {
    db.query_one("SELECT 1", params![])?.get::<i64>(0).map(|_| ())
}
