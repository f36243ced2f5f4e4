#!/usr/bin/env python3
"""Bulk load of the benchmark fleet into a migrated jobtoken database (benches/run.sh).

Writes rows straight into the real schema (after `jobtoken migrate`), not through the API:

  small: 10 top groups (fleet-tN) x 10 subgroups (fleet-tN/sM) x 10 projects = 1,000 private
         projects; 10,000 users, user i Developer on project i // 10 and Reporter on the top group
         after its own (the decision targets); 11,000 pending jobs, one pipeline each on a
         protected `main`: jobs 1..10,000 are the fleet (job i+1 runs for user i), jobs
         10,001..11,000 the warm-up; one groups_allowlist entry per top group, on the group,
         admitting the jobs of the previous top group (default permissions).
  large: the same, plus 1,000 groups of 99 projects (100,000 projects in all) and 1,000,000
         allowlist entries in all: 10 project entries per filler project and 10 per fleet
         project, from random filler projects (so every level a decision walks has entries,
         none of which match).

  seed.py sqlite DB_PATH [--large]      inserts through python's sqlite3
  seed.py postgres [--large] | psql …   prints a COPY script (blocks of rows, then ANALYZE)

Prints what it loaded to stderr. Deterministic (fixed random seed).
"""
import io
import random
import sqlite3
import sys
import time

TOPS, SUBS_PER_TOP, PROJECTS_PER_SUB = 10, 10, 10
USERS, FLEET_JOBS, WARMUP_JOBS = 10_000, 10_000, 1_000
FILLER_GROUPS, FILLER_PER_GROUP, ENTRIES_PER_PROJECT = 1_000, 99, 10
SHA = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
NOW = int(time.time())


def fleet_project(k):
    sub = k // PROJECTS_PER_SUB
    return f"fleet-t{sub // SUBS_PER_TOP}/s{sub % SUBS_PER_TOP}/p{k % PROJECTS_PER_SUB}"


def tables(large):
    """(table, columns, rows iterator) in dependency order."""
    n_sub = TOPS * SUBS_PER_TOP
    n_fleet = n_sub * PROJECTS_PER_SUB
    group_cols = ("id", "path", "parent_id", "full_path", "traversal_ids", "created_at")

    def groups():
        for t in range(TOPS):
            yield (t + 1, f"fleet-t{t}", None, f"fleet-t{t}", f"{t + 1}", NOW)
        for j in range(n_sub):
            t = j // SUBS_PER_TOP
            gid = TOPS + 1 + j
            yield (gid, f"s{j % SUBS_PER_TOP}", t + 1, f"fleet-t{t}/s{j % SUBS_PER_TOP}", f"{t + 1} {gid}", NOW)
        if large:
            for g in range(FILLER_GROUPS):
                gid = TOPS + n_sub + 1 + g
                yield (gid, f"bulk-g{g}", None, f"bulk-g{g}", f"{gid}", NOW)

    project_cols = ("id", "path", "namespace_id", "path_with_namespace", "visibility", "created_at")

    def projects():
        for k in range(n_fleet):
            sub = k // PROJECTS_PER_SUB
            yield (k + 1, f"p{k % PROJECTS_PER_SUB}", TOPS + 1 + sub, fleet_project(k), "private", NOW)
        if large:
            for g in range(FILLER_GROUPS):
                gid = TOPS + n_sub + 1 + g
                for p in range(FILLER_PER_GROUP):
                    pid = n_fleet + 1 + g * FILLER_PER_GROUP + p
                    yield (pid, f"p{p}", gid, f"bulk-g{g}/p{p}", "private", NOW)

    def users():
        for i in range(USERS):
            yield (i + 1, f"u{i}", "active", NOW)

    def project_members():
        for i in range(USERS):
            yield (i // (USERS // n_fleet) + 1, i + 1, 30)

    def group_members():
        for i in range(USERS):
            top = i * TOPS // USERS
            yield ((top + 1) % TOPS + 1, i + 1, 20)

    def pipelines():
        for m in range(FLEET_JOBS + WARMUP_JOBS):
            i = m % USERS
            yield (m + 1, i // (USERS // n_fleet) + 1, i + 1, "main", "branch", 1, SHA, "push", NOW)

    def jobs():
        for m in range(FLEET_JOBS + WARMUP_JOBS):
            yield (m + 1, m + 1, "build", "test", "pending")

    entry_cols = ("owner_kind", "owner_id", "source_kind", "source_id", "scopes", "autopopulated", "created_at")

    def entries_exact():
        # exactly ENTRIES_PER_PROJECT per project: sample one spare and drop the owner if drawn
        for row in entries_head():
            yield row
        if large:
            rng = random.Random(12)
            n_filler = FILLER_GROUPS * FILLER_PER_GROUP
            for owner in range(1, n_fleet + n_filler + 1):
                picked = sorted(s for s in rng.sample(range(n_fleet + 1, n_fleet + n_filler + 1), ENTRIES_PER_PROJECT + 1)
                          if s != owner)[:ENTRIES_PER_PROJECT]
                for source in picked:
                    yield ("project", owner, "project", source, None, 0, NOW)

    def entries_head():
        for t in range(TOPS):
            yield ("group", (t + 1) % TOPS + 1, "group", t + 1, None, 0, NOW)

    return [
        ("users", ("id", "username", "state", "created_at"), users),
        ("groups", group_cols, groups),
        ("projects", project_cols, projects),
        ("project_members", ("project_id", "user_id", "access_level"), project_members),
        ("group_members", ("group_id", "user_id", "access_level"), group_members),
        ("pipelines", ("id", "project_id", "user_id", "ref", "ref_type", "ref_protected", "sha", "source",
                       "created_at"), pipelines),
        ("jobs", ("id", "pipeline_id", "name", "stage", "status"), jobs),
        ("allowlist_entries", entry_cols, entries_exact),
    ]


def load_sqlite(path, large):
    con = sqlite3.connect(path, timeout=60, isolation_level=None)
    con.execute("PRAGMA foreign_keys = ON")
    # A load, not the server: no fsync until the end (the file is synced by the checkpoint below)
    con.execute("PRAGMA synchronous = OFF")
    con.execute("PRAGMA cache_size = -262144")
    con.execute("BEGIN IMMEDIATE")
    counts = {}
    for table, cols, rows in tables(large):
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        cur = con.executemany(sql, rows())
        counts[table] = cur.rowcount
    con.execute("COMMIT")
    con.execute("ANALYZE")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return counts


def csv_field(v):
    if v is None:
        return ""
    if isinstance(v, int):
        return str(v)
    return '"' + v.replace('"', '""') + '"'


def print_postgres(large, out):
    """COPY blocks, each its own transaction (autocommit): the path-conflict triggers of
    projects and groups take an advisory lock per row, which one transaction of 100,000 rows
    would exhaust (max_locks_per_transaction), so those tables go in blocks of 2,000 rows."""
    counts = {}
    out.write("\\set ON_ERROR_STOP on\n")
    for table, cols, rows in tables(large):
        block = 2_000 if table in ("groups", "projects") else 50_000
        head = f"COPY {table} ({', '.join(cols)}) FROM STDIN WITH (FORMAT csv);\n"
        n = 0
        buf = io.StringIO()
        for row in rows():
            if n % block == 0:
                if n:
                    buf.write("\\.\n")
                    out.write(buf.getvalue())
                    buf = io.StringIO()
                buf.write(head)
            buf.write(",".join(csv_field(v) for v in row))
            buf.write("\n")
            n += 1
        if n:
            buf.write("\\.\n")
        out.write(buf.getvalue())
        counts[table] = n
    for table in ("users", "groups", "projects", "pipelines", "jobs"):
        out.write(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}));\n")
    out.write("ANALYZE;\n")
    return counts


def main():
    args = sys.argv[1:]
    large = "--large" in args
    args = [a for a in args if a != "--large"]
    start = time.time()
    if args[:1] == ["sqlite"] and len(args) == 2:
        counts = load_sqlite(args[1], large)
    elif args == ["postgres"]:
        counts = print_postgres(large, sys.stdout)
        sys.stdout.flush()
    else:
        sys.exit(__doc__)
    summary = ", ".join(f"{t} {n:,}" for t, n in counts.items())
    print(f"seed.py: {summary} ({time.time() - start:.1f}s to generate{'' if args[0] == 'postgres' else ' and load'})",
          file=sys.stderr)


if __name__ == "__main__":
    main()
