-- jobtoken schema, version 1. Append-only: never edit once landed; add 0002_… instead.
-- Times are unix seconds (INTEGER). Booleans are 0/1. Enumerations are checked text.

CREATE TABLE instance_settings (
    id                          INTEGER PRIMARY KEY CHECK (id = 1),
    enforce_job_token_allowlist INTEGER NOT NULL DEFAULT 0 CHECK (enforce_job_token_allowlist IN (0, 1)),
    job_token_elevation_allowed INTEGER NOT NULL DEFAULT 1 CHECK (job_token_elevation_allowed IN (0, 1)),
    -- SHA-256 of the generated admin token; NULL when the token comes from configuration.
    admin_token_hash            BLOB
);
INSERT INTO instance_settings (id) VALUES (1);

CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    username   TEXT NOT NULL UNIQUE,
    state      TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'blocked')),
    created_at INTEGER NOT NULL
);

CREATE TABLE groups (
    id                          INTEGER PRIMARY KEY,
    path                        TEXT NOT NULL,
    parent_id                   INTEGER REFERENCES groups (id),
    full_path                   TEXT NOT NULL UNIQUE,
    -- Ids from the root group down to this one, space-separated ("1 4 9"); groups never move.
    traversal_ids               TEXT NOT NULL,
    inbound_enabled             INTEGER CHECK (inbound_enabled IN (0, 1)),
    job_token_elevation_allowed INTEGER CHECK (job_token_elevation_allowed IN (0, 1)),
    created_at                  INTEGER NOT NULL
);

CREATE TABLE projects (
    id                              INTEGER PRIMARY KEY,
    path                            TEXT NOT NULL,
    namespace_id                    INTEGER NOT NULL REFERENCES groups (id),
    path_with_namespace             TEXT NOT NULL UNIQUE,
    visibility                      TEXT NOT NULL CHECK (visibility IN ('private', 'internal', 'public')),
    build_timeout                   INTEGER NOT NULL DEFAULT 3600 CHECK (build_timeout > 0),
    repository_access_level         TEXT NOT NULL DEFAULT 'enabled' CHECK (repository_access_level IN ('disabled', 'private', 'enabled')),
    container_registry_access_level TEXT NOT NULL DEFAULT 'enabled' CHECK (container_registry_access_level IN ('disabled', 'private', 'enabled')),
    package_registry_access_level   TEXT NOT NULL DEFAULT 'enabled' CHECK (package_registry_access_level IN ('disabled', 'private', 'enabled')),
    -- Space-separated scopes the project's jobs get on itself; NULL = the default set.
    job_token_scopes                TEXT,
    inbound_enabled                 INTEGER CHECK (inbound_enabled IN (0, 1)),
    outbound_enabled                INTEGER NOT NULL DEFAULT 0 CHECK (outbound_enabled IN (0, 1)),
    created_at                      INTEGER NOT NULL
);
CREATE INDEX projects_namespace ON projects (namespace_id);

CREATE TABLE project_members (
    project_id   INTEGER NOT NULL REFERENCES projects (id),
    user_id      INTEGER NOT NULL REFERENCES users (id),
    access_level INTEGER NOT NULL CHECK (access_level IN (10, 20, 30, 40, 50)),
    PRIMARY KEY (project_id, user_id)
) WITHOUT ROWID;
CREATE INDEX project_members_user ON project_members (user_id);

CREATE TABLE group_members (
    group_id     INTEGER NOT NULL REFERENCES groups (id),
    user_id      INTEGER NOT NULL REFERENCES users (id),
    access_level INTEGER NOT NULL CHECK (access_level IN (10, 20, 30, 40, 50)),
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX group_members_user ON group_members (user_id, group_id);

-- OAuth clients: runners and resource servers. Secrets are stored as SHA-256 only.
CREATE TABLE runners (
    id              INTEGER PRIMARY KEY,
    client_id       TEXT NOT NULL UNIQUE,
    secret_hash     BLOB NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    maximum_timeout INTEGER CHECK (maximum_timeout > 0),
    runner_type     TEXT NOT NULL CHECK (runner_type IN ('instance', 'group', 'project')),
    group_id        INTEGER REFERENCES groups (id),
    paused          INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    created_at      INTEGER NOT NULL,
    CHECK ((runner_type = 'group') = (group_id IS NOT NULL))
);

CREATE TABLE runner_projects (
    runner_id  INTEGER NOT NULL REFERENCES runners (id),
    project_id INTEGER NOT NULL REFERENCES projects (id),
    PRIMARY KEY (runner_id, project_id)
) WITHOUT ROWID;

CREATE TABLE resource_servers (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    client_id   TEXT NOT NULL UNIQUE,
    secret_hash BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE pipelines (
    id            INTEGER PRIMARY KEY,
    project_id    INTEGER NOT NULL REFERENCES projects (id),
    user_id       INTEGER NOT NULL REFERENCES users (id),
    ref           TEXT NOT NULL,
    ref_type      TEXT NOT NULL CHECK (ref_type IN ('branch', 'tag')),
    ref_protected INTEGER NOT NULL CHECK (ref_protected IN (0, 1)),
    sha           TEXT NOT NULL,
    source        TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    pipeline_id INTEGER NOT NULL REFERENCES pipelines (id),
    name        TEXT NOT NULL,
    stage       TEXT NOT NULL,
    timeout     INTEGER CHECK (timeout > 0),
    environment TEXT,
    status      TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'success', 'failed', 'canceled')),
    runner_id   INTEGER REFERENCES runners (id),
    started_at  INTEGER,
    finished_at INTEGER
);
CREATE INDEX jobs_pipeline ON jobs (pipeline_id);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL CHECK (alg IN ('ES256', 'RS256', 'EdDSA')),
    state        TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    created_at   INTEGER NOT NULL,
    activated_at INTEGER,
    retired_at   INTEGER
) WITHOUT ROWID;
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 'next';

-- Every token ever issued, recorded before the response leaves the server.
-- jti is a UUIDv7 (16 bytes), so inserts append to the end of the primary-key b-tree.
CREATE TABLE issued_tokens (
    jti        BLOB PRIMARY KEY,
    job_id     INTEGER NOT NULL REFERENCES jobs (id),
    kid        TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    -- SHA-256 of the compact token: introspection matches the presented token against it.
    token_hash BLOB NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) WITHOUT ROWID;
CREATE INDEX issued_tokens_job ON issued_tokens (job_id);
CREATE INDEX issued_tokens_kid_exp ON issued_tokens (kid, expires_at);
