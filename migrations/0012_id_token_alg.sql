-- The ID-token signing algorithm in force (issue 11), recorded once for the instance like the
-- job-token one (0006_signing_alg.sql): every process on this database signs ID tokens with it,
-- whatever its own JOBTOKEN_ID_TOKEN_SIGNING_ALG says; only `jobtoken keys set-algorithm
-- --family id_token` changes it. A database that already has ID-token keys records the algorithm
-- of its active one; a fresh one records the first start's configuration.
CREATE TABLE id_token_signing_algorithm (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    alg        TEXT NOT NULL CHECK (alg IN ('ES256', 'RS256')),
    changed_at INTEGER NOT NULL
);
INSERT INTO id_token_signing_algorithm (id, alg, changed_at)
    SELECT 1, alg, coalesce(activated_at, created_at) FROM signing_keys
    WHERE state = 'active' AND family = 'id_token' LIMIT 1;
