-- FaceGate store, PostgreSQL, version 2: API keys, verification lockout,
-- audit log. No biometric data in any of these tables: the audit log holds
-- who did what to whom, when, from where and with what outcome and
-- distance, never an image or an embedding.

-- API keys. The secret is never stored: only its SHA-256. `prefix` is the
-- public, random part of the key that finds the row; the secret half is
-- compared by hash, in constant time, by the service.
CREATE TABLE api_keys (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL CHECK (length(name) > 0),
    prefix      TEXT NOT NULL UNIQUE,
    secret_hash BYTEA NOT NULL CHECK (length(secret_hash) = 32),
    scopes      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);

-- Consecutive failed 1:1 verifications per user (NIST SP 800-63B 5.2.3).
-- Deleted with the user.
CREATE TABLE verify_lockouts (
    user_id      BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    failures     INTEGER NOT NULL CHECK (failures >= 0),
    locked_until TIMESTAMPTZ,
    disabled     BOOLEAN NOT NULL DEFAULT false,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The audit log. `user_id` is deliberately not a foreign key: rows outlive
-- the user they mention (a deletion is itself audited).
CREATE TABLE audit_log (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    key_id   BIGINT,
    client   TEXT,
    action   TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    user_id  BIGINT,
    distance REAL,
    detail   TEXT
);
CREATE INDEX audit_log_user ON audit_log (user_id, id);
CREATE INDEX audit_log_at ON audit_log (at);
