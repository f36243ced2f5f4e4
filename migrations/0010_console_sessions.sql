-- The web console's sign-in sessions (issue 10 point 2). `id_hash` is the SHA-256 of the random
-- session id the cookie carries; the id itself is never stored. A user's session keeps the
-- personal access token it was opened with, so it dies with the token; an admin session keeps a
-- fingerprint of the admin token, so it dies when the admin token changes.
CREATE TABLE console_sessions (
    id_hash           BLOB NOT NULL PRIMARY KEY,
    user_id           INTEGER REFERENCES users (id),
    pat_id            INTEGER REFERENCES personal_access_tokens (id),
    admin_fingerprint BLOB,
    created_at        INTEGER NOT NULL,
    last_seen_at      INTEGER NOT NULL,
    CHECK ((user_id IS NULL) = (pat_id IS NULL)),
    CHECK ((user_id IS NULL) <> (admin_fingerprint IS NULL))
);
CREATE INDEX console_sessions_pat ON console_sessions (pat_id);
