-- ID tokens (issue 11): a second family of signing keys, and the `sub` claim components that
-- projects and groups choose.
--
-- `family` separates the job-token keys (any algorithm) from the ID-token keys (RS256 or ES256,
-- what cloud federation accepts). Each family has at most one active and one next key.
ALTER TABLE signing_keys ADD COLUMN family TEXT NOT NULL DEFAULT 'job' CHECK (family IN ('job', 'id_token'));
DROP INDEX signing_keys_one_active;
DROP INDEX signing_keys_one_next;
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (family, state) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (family, state) WHERE state = 'next';

-- Space-separated claim names, in order; NULL inherits (nearest group, then the default).
ALTER TABLE projects ADD COLUMN id_token_sub_claim_components TEXT;
ALTER TABLE groups ADD COLUMN id_token_sub_claim_components TEXT;
