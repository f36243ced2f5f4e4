//! On PostgreSQL every statement is a round trip, so the hot paths read the job and its grant's
//! inputs in one statement whatever the depth of the project's group chain. Counted with
//! `pg_stat_statements` on a cluster of this binary's own.
#![allow(clippy::unwrap_used)]

mod common;

use common::pg::{self, Cluster, Setup};
use common::*;
use serde_json::json;

/// A cluster that counts statements, a fresh database on it with the extension, and a server.
fn counted_server() -> (Cluster, postgres::Client, Server) {
    let cluster = Cluster::start_with(&Setup {
        conf: "shared_preload_libraries = 'pg_stat_statements'".into(),
        ..Setup::default()
    });
    let url = cluster.new_database("");
    let mut db = pg::connect(&url);
    db.batch_execute("CREATE EXTENSION pg_stat_statements").unwrap();
    let kek = random_key_encryption_key();
    let server =
        Server::start_with(&[("JOBTOKEN_DATABASE", url.as_str()), ("JOBTOKEN_KEY_ENCRYPTION_KEY", kek.as_str())]);
    (cluster, db, server)
}

/// Calls, since the last reset, of the statements on this database that read the group chain
/// or its memberships.
fn group_reads(db: &mut postgres::Client) -> i64 {
    let row = db
        .query_one(
            "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND query ILIKE '%groups%' AND query NOT ILIKE '%pg_stat_statements%'",
            &[],
        )
        .unwrap();
    row.get(0)
}

/// A project four groups deep, the user a Developer through the root group only: (root, job).
fn deep_job(s: &Server, user: i64) -> (i64, i64) {
    let mut parent = None;
    let mut root = 0;
    for path in ["a", "b", "c", "d"] {
        let id = group(s, path, parent);
        if parent.is_none() {
            root = id;
        }
        parent = Some(id);
    }
    group_member(s, root, user, 30);
    let project = project(s, "deep", parent.unwrap(), json!({}));
    (root, job_for(s, project, user, true))
}

#[test]
fn introspection_and_minting_read_a_deep_group_chain_in_one_statement_on_postgres() {
    let (_cluster, mut db, s) = counted_server();
    let w = World::new(&s);
    let (_, job) = deep_job(&s, w.user);
    let token = w.mint_ok(&s, job, &[]);

    db.batch_execute("SELECT pg_stat_statements_reset()").unwrap();
    let answer = w.introspect(&s, &token);
    assert_eq!(answer["active"], true, "{answer}");
    let carried = decode(&token).1["scope"].as_str().unwrap().to_owned();
    assert!(!carried.is_empty());
    assert_eq!(answer["scope"], carried.as_str(), "the root group's membership still grants the token's scope");
    assert_eq!(group_reads(&mut db), 1, "introspection reads the four groups and their memberships in one statement");

    db.batch_execute("SELECT pg_stat_statements_reset()").unwrap();
    let again = w.mint_ok(&s, job, &[]);
    assert_eq!(decode(&again).1["scope"], carried.as_str());
    assert_eq!(group_reads(&mut db), 1, "a mint for a running job reads the chain in one statement");
}

#[test]
fn a_membership_lost_on_an_ancestor_group_is_lost_at_once_on_postgres() {
    let (_cluster, _db, s) = counted_server();
    let w = World::new(&s);
    let (root, job) = deep_job(&s, w.user);
    let token = w.mint_ok(&s, job, &[]);
    assert_ne!(w.introspect(&s, &token)["scope"], "");
    let removed = s.json("DELETE", &format!("/api/v1/groups/{root}/members/{}", w.user), Auth::Admin, json!({}));
    assert!(removed.status < 300, "{}", removed.text);
    let answer = w.introspect(&s, &token);
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["scope"], "", "without the membership the user holds nothing on a private project");
}
