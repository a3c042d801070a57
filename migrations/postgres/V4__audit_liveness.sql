-- FaceGate store, PostgreSQL, version 4: the passive liveness score of a
-- decision (verify, identify, enrol asked with ?liveness=passive) is kept
-- in its audit row, for administrators only: callers learn live or attack.
ALTER TABLE audit_log ADD COLUMN liveness_score REAL;
