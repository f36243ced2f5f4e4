-- Audit events (issue 9 point 3): every change to settings, job token scopes, memberships, users'
-- state, credentials and keys, written in the same transaction as the change. Append-only: the
-- triggers below refuse UPDATE and DELETE, so a row, once committed, stays as it was written.
-- No foreign keys: an event outlives what it names (a deleted resource server, an empty project).
-- before_json/after_json hold public fields only, never a secret, a hash or key material.

CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY,
    created_at  INTEGER NOT NULL,
    actor_type  TEXT NOT NULL CHECK (actor_type IN ('admin', 'user', 'runner', 'system', 'cli')),
    actor_id    INTEGER,
    actor_name  TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   INTEGER,
    target_path TEXT,
    -- The project or group the event belongs to, for their own lists (NULL: instance-wide).
    project_id  INTEGER,
    group_id    INTEGER,
    before_json TEXT,
    after_json  TEXT
);

CREATE INDEX audit_events_target ON audit_events (target_type, target_id, id);
CREATE INDEX audit_events_project ON audit_events (project_id, id) WHERE project_id IS NOT NULL;
CREATE INDEX audit_events_group ON audit_events (group_id, id) WHERE group_id IS NOT NULL;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
