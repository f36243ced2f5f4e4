-- The signing algorithm in force, recorded once for the instance (issue 7, point 7e). Every
-- process on this database signs with it, whatever its own JOBTOKEN_SIGNING_ALG says; only
-- `jobtoken keys set-algorithm` changes it. A database that already has keys records the
-- algorithm of its active key; a fresh one records the first start's configuration.
CREATE TABLE signing_algorithm (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    alg        TEXT NOT NULL CHECK (alg IN ('ES256', 'RS256', 'EdDSA')),
    changed_at INTEGER NOT NULL
);
INSERT INTO signing_algorithm (id, alg, changed_at)
    SELECT 1, alg, coalesce(activated_at, created_at) FROM signing_keys WHERE state = 'active' LIMIT 1;

-- A token is recorded only while the key that signed it still exists (issue 7, point 7c). A key
-- is dropped in a write transaction that saw no unexpired token of it; SQLite serializes that
-- transaction with the token writer's, so either the token's row lands first (and keeps the key)
-- or the drop does (and the token's request fails instead of answering 200 with a token that no
-- published key verifies).
CREATE TRIGGER issued_tokens_need_their_key BEFORE INSERT ON issued_tokens
WHEN NOT EXISTS (SELECT 1 FROM signing_keys WHERE kid = NEW.kid)
BEGIN
    SELECT RAISE(ABORT, 'the signing key of this token has been dropped');
END;
