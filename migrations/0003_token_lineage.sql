-- Trust at the seams: exchange lineage, the scopes each logged source used, and the inbound
-- setting autopopulate replaced.

-- The token a token was exchanged from (RFC 8693); NULL for a runner-minted token. Revoking a
-- token revokes every token exchanged from it, at any depth.
ALTER TABLE issued_tokens ADD COLUMN parent_jti BLOB;
CREATE INDEX issued_tokens_parent ON issued_tokens (parent_jti) WHERE parent_jti IS NOT NULL;

-- Space-separated scopes the source used on the target that only an allowlist entry could
-- grant (visibility reads are left out): what autopopulate gives the entry it creates.
ALTER TABLE authorization_log ADD COLUMN scopes TEXT NOT NULL DEFAULT '';

-- Set when autopopulate switched the project's inbound allowlist on: 1, and the explicit
-- setting it replaced (NULL = inherit). Removing the autopopulated entries restores it; an
-- explicit change of the setting clears it.
ALTER TABLE projects ADD COLUMN autopopulate_switched_inbound INTEGER NOT NULL DEFAULT 0
    CHECK (autopopulate_switched_inbound IN (0, 1));
ALTER TABLE projects ADD COLUMN inbound_before_autopopulate INTEGER
    CHECK (inbound_before_autopopulate IN (0, 1));
