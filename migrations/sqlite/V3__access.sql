-- FaceGate store, embedded SQLite, version 3: API keys, verification
-- lockout, audit log (see migrations/postgres/V2__access.sql for the why).
-- Timestamps are microseconds since the Unix epoch, UTC.

CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL CHECK (length(name) > 0),
    prefix      TEXT NOT NULL UNIQUE,
    secret_hash BLOB NOT NULL CHECK (length(secret_hash) = 32),
    scopes      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE verify_lockouts (
    user_id      INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    failures     INTEGER NOT NULL CHECK (failures >= 0),
    locked_until INTEGER,
    disabled     INTEGER NOT NULL DEFAULT 0,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    key_id   INTEGER,
    client   TEXT,
    action   TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    user_id  INTEGER,
    distance REAL,
    detail   TEXT
);
CREATE INDEX audit_log_user ON audit_log (user_id, id);
CREATE INDEX audit_log_at ON audit_log (at);
