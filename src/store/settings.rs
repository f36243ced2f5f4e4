//! Instance settings and the generated admin credential.

use super::db::{params, Db};
use serde::Serialize;

use super::Result;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct InstanceSettings {
    pub enforce_job_token_allowlist: bool,
    pub job_token_elevation_allowed: bool,
}

pub fn get(db: &Db) -> Result<InstanceSettings> {
    super::cache::cached(db, || super::cache::Key::ids("instance_settings", Vec::new()), || load(db))
}

fn load(db: &Db) -> Result<InstanceSettings> {
    let r = db.query_one(
        "SELECT enforce_job_token_allowlist, job_token_elevation_allowed FROM instance_settings WHERE id = 1",
        params![],
    )?;
    Ok(InstanceSettings { enforce_job_token_allowlist: r.get(0)?, job_token_elevation_allowed: r.get(1)? })
}

pub fn update(db: &Db, enforce: Option<bool>, elevation: Option<bool>) -> Result<InstanceSettings> {
    db.execute(
        "UPDATE instance_settings SET
             enforce_job_token_allowlist = coalesce(?1, enforce_job_token_allowlist),
             job_token_elevation_allowed = coalesce(?2, job_token_elevation_allowed)
         WHERE id = 1",
        params![enforce, elevation],
    )?;
    get(db)
}

pub fn admin_token_hash(db: &Db) -> Result<Option<Vec<u8>>> {
    db.query_one("SELECT admin_token_hash FROM instance_settings WHERE id = 1", params![])?.get(0)
}

/// Stores a generated admin credential's hash unless one is stored already; false when another
/// process (a replica starting at the same time) got there first, whose credential then stands.
pub fn claim_admin_token_hash(db: &Db, hash: &[u8]) -> Result<bool> {
    let changed = db.execute(
        "UPDATE instance_settings SET admin_token_hash = ?1
         WHERE id = 1 AND (admin_token_hash IS NULL OR length(admin_token_hash) <> 32)",
        params![hash],
    )?;
    Ok(changed == 1)
}
