-- FaceGate store, SQLite, version 6: liveness challenge sessions and their
-- single-use tokens (see the PostgreSQL V5). Times are microseconds since
-- the epoch, as elsewhere in this store.
CREATE TABLE liveness_sessions (
    id          TEXT PRIMARY KEY,
    purpose     TEXT NOT NULL CHECK (purpose IN ('verify', 'enrol')),
    user_id     INTEGER REFERENCES users (id) ON DELETE CASCADE,
    key_id      INTEGER,
    challenge   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    outcome     TEXT,
    finished_at INTEGER,
    CHECK ((purpose = 'verify') = (user_id IS NOT NULL))
);
CREATE INDEX liveness_sessions_expires ON liveness_sessions (expires_at);

CREATE TABLE liveness_tokens (
    token_hash BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
    session_id TEXT NOT NULL UNIQUE REFERENCES liveness_sessions (id) ON DELETE CASCADE,
    model_id   TEXT NOT NULL,
    embedding  BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
