-- FaceGate store, SQLite, version 5: the passive liveness score of a
-- decision in its audit row (see the PostgreSQL V4).
ALTER TABLE audit_log ADD COLUMN liveness_score REAL;
