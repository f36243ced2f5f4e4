-- The ID-token signing algorithm in force (issue 11), as migrations/0012_id_token_alg.sql:
-- recorded once for the instance; a database that already has ID-token keys records the
-- algorithm of its active one, a fresh one records the first start's configuration.
CREATE TABLE id_token_signing_algorithm (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    alg        TEXT COLLATE "C" NOT NULL CHECK (alg IN ('ES256', 'RS256')),
    changed_at BIGINT NOT NULL
);
INSERT INTO id_token_signing_algorithm (id, alg, changed_at)
    SELECT 1, alg, coalesce(activated_at, created_at) FROM signing_keys
    WHERE state = 'active' AND family = 'id_token' LIMIT 1;
