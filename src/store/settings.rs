//! Instance settings and the generated admin credential.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::Result;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct InstanceSettings {
    pub enforce_job_token_allowlist: bool,
    pub job_token_elevation_allowed: bool,
}

pub fn get(conn: &Connection) -> Result<InstanceSettings> {
    Ok(conn
        .prepare_cached(
            "SELECT enforce_job_token_allowlist, job_token_elevation_allowed FROM instance_settings WHERE id = 1",
        )?
        .query_row([], |r| {
            Ok(InstanceSettings { enforce_job_token_allowlist: r.get(0)?, job_token_elevation_allowed: r.get(1)? })
        })?)
}

pub fn update(conn: &Connection, enforce: Option<bool>, elevation: Option<bool>) -> Result<InstanceSettings> {
    conn.execute(
        "UPDATE instance_settings SET
             enforce_job_token_allowlist = coalesce(?1, enforce_job_token_allowlist),
             job_token_elevation_allowed = coalesce(?2, job_token_elevation_allowed)
         WHERE id = 1",
        params![enforce, elevation],
    )?;
    get(conn)
}

pub fn admin_token_hash(conn: &Connection) -> Result<Option<Vec<u8>>> {
    Ok(conn.query_row("SELECT admin_token_hash FROM instance_settings WHERE id = 1", [], |r| r.get(0))?)
}

pub fn set_admin_token_hash(conn: &Connection, hash: &[u8]) -> Result<()> {
    conn.execute("UPDATE instance_settings SET admin_token_hash = ?1 WHERE id = 1", [hash])?;
    Ok(())
}
