-- Job token scope (SPEC §4.3–§4.5): personal access tokens, allowlists, outbound entries and
-- the authorization log.

CREATE TABLE personal_access_tokens (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    name       TEXT NOT NULL,
    -- SHA-256 of the token; the token itself is shown once.
    token_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

-- Inbound allowlist entries: jobs of `source` may reach projects under `owner`.
-- owner_kind/source_kind are 'project' or 'group'. scopes NULL means default_permissions.
CREATE TABLE allowlist_entries (
    owner_kind    TEXT NOT NULL CHECK (owner_kind IN ('project', 'group')),
    owner_id      INTEGER NOT NULL,
    source_kind   TEXT NOT NULL CHECK (source_kind IN ('project', 'group')),
    source_id     INTEGER NOT NULL,
    scopes        TEXT,
    autopopulated INTEGER NOT NULL DEFAULT 0 CHECK (autopopulated IN (0, 1)),
    added_by      INTEGER REFERENCES users (id),
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (owner_kind, owner_id, source_kind, source_id)
) WITHOUT ROWID;
-- The decision looks entries up by (owner, source) point by point along both hierarchies.

-- Outbound entries: where a project's own jobs may go (SPEC §4.3 step 5).
CREATE TABLE outbound_entries (
    project_id  INTEGER NOT NULL REFERENCES projects (id),
    target_kind TEXT NOT NULL CHECK (target_kind IN ('project', 'group')),
    target_id   INTEGER NOT NULL,
    scopes      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (project_id, target_kind, target_id)
) WITHOUT ROWID;

-- (accessed project, origin project) → when and how often a cross-project access was allowed.
CREATE TABLE authorization_log (
    target_project_id  INTEGER NOT NULL REFERENCES projects (id),
    source_project_id  INTEGER NOT NULL REFERENCES projects (id),
    last_authorized_at INTEGER NOT NULL,
    count              INTEGER NOT NULL,
    PRIMARY KEY (target_project_id, source_project_id)
) WITHOUT ROWID;
