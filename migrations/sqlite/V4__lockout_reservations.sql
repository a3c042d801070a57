-- FaceGate store, embedded SQLite, version 4: reserved verification
-- attempts (see migrations/postgres/V3__lockout_reservations.sql).
ALTER TABLE verify_lockouts ADD COLUMN pending INTEGER NOT NULL DEFAULT 0 CHECK (pending >= 0);
ALTER TABLE verify_lockouts ADD COLUMN pending_since INTEGER;
