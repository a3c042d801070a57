-- FaceGate store, PostgreSQL, version 5: liveness challenge sessions and
-- the single-use tokens a passed session issues (crates/store/src/liveness.rs).
-- A token is the SHA-256 of its secret; its embedding is the session's
-- face, deleted with the token when it is redeemed or the session's user
-- is deleted.
CREATE TABLE liveness_sessions (
    id          TEXT PRIMARY KEY,
    purpose     TEXT NOT NULL CHECK (purpose IN ('verify', 'enrol')),
    user_id     BIGINT REFERENCES users (id) ON DELETE CASCADE,
    key_id      BIGINT,
    challenge   JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    expires_at  TIMESTAMPTZ NOT NULL,
    outcome     TEXT,
    finished_at TIMESTAMPTZ,
    CHECK ((purpose = 'verify') = (user_id IS NOT NULL))
);
CREATE INDEX liveness_sessions_expires ON liveness_sessions (expires_at);

CREATE TABLE liveness_tokens (
    token_hash BYTEA PRIMARY KEY CHECK (length(token_hash) = 32),
    session_id TEXT NOT NULL UNIQUE REFERENCES liveness_sessions (id) ON DELETE CASCADE,
    model_id   TEXT NOT NULL,
    embedding  BYTEA NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
