-- FaceGate store, PostgreSQL, version 3: verification attempts are reserved
-- before the face is compared, so concurrent attempts cannot all pass the
-- lockout check before any failure is recorded. `pending` counts attempts
-- reserved and not yet settled; `pending_since` is when the latest was
-- reserved (a reservation older than the lease, e.g. of a crashed
-- instance, no longer counts). The rule itself is the service's.
ALTER TABLE verify_lockouts
    ADD COLUMN pending INTEGER NOT NULL DEFAULT 0 CHECK (pending >= 0),
    ADD COLUMN pending_since TIMESTAMPTZ;
