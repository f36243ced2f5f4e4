-- ID tokens (issue 11), as migrations/0011_id_tokens.sql: a second family of signing keys, and
-- the `sub` claim components that projects and groups choose.
ALTER TABLE signing_keys ADD COLUMN family TEXT COLLATE "C" NOT NULL DEFAULT 'job'
    CHECK (family IN ('job', 'id_token'));
DROP INDEX signing_keys_one_active;
DROP INDEX signing_keys_one_next;
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (family, state) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (family, state) WHERE state = 'next';

ALTER TABLE projects ADD COLUMN id_token_sub_claim_components TEXT COLLATE "C";
ALTER TABLE groups ADD COLUMN id_token_sub_claim_components TEXT COLLATE "C";
