-- FaceGate store, PostgreSQL, version 6: stream tickets
-- (crates/service/src/tickets.rs). A browser opens the stream's WebSocket
-- with a single-use ticket instead of its key; kept here, not in one
-- instance's memory, so behind a load balancer the WebSocket may reach
-- another instance than the one that issued it. A ticket is the SHA-256 of
-- its secret and names the key it stands for (NULL when authentication is
-- off); it lives seconds.
CREATE TABLE stream_tickets (
    ticket_hash BYTEA PRIMARY KEY CHECK (length(ticket_hash) = 32),
    key_id      BIGINT,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX stream_tickets_expires ON stream_tickets (expires_at);
