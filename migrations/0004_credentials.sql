-- Credential lifecycle (issue 7 point 5): personal access tokens expire, can be revoked and
-- record when they were last used; resource servers can be disabled and carry an optional
-- audience (issue 7 point 2).

-- Unix seconds. A token is accepted while `expires_at` is in the future and `revoked_at` is
-- NULL; a NULL `expires_at` is never accepted (fail closed).
ALTER TABLE personal_access_tokens ADD COLUMN expires_at INTEGER;
ALTER TABLE personal_access_tokens ADD COLUMN last_used_at INTEGER;
ALTER TABLE personal_access_tokens ADD COLUMN revoked_at INTEGER;
-- Tokens created before expiry existed get the default lifetime (30 days) from the upgrade.
UPDATE personal_access_tokens SET expires_at = CAST(strftime('%s', 'now') AS INTEGER) + 30 * 86400;
CREATE INDEX personal_access_tokens_user ON personal_access_tokens (user_id);

ALTER TABLE resource_servers ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1));
-- A JSON array of absolute URIs; NULL when the resource server has no audience of its own.
ALTER TABLE resource_servers ADD COLUMN audience TEXT;

-- Client authentication reads one row from each of these (see store::clients::find_client_auth):
-- covering indexes, so that a known client id costs the same index-only lookup as an unknown one.
CREATE INDEX runners_client_auth ON runners (client_id, secret_hash, runner_type, group_id, maximum_timeout, paused);
CREATE INDEX resource_servers_client_auth ON resource_servers (client_id, disabled, secret_hash, audience);
