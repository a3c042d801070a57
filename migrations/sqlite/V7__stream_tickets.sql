-- FaceGate store, SQLite, version 7: stream tickets (see the PostgreSQL
-- V6). Times are microseconds since the epoch, as elsewhere in this store.
CREATE TABLE stream_tickets (
    ticket_hash BLOB PRIMARY KEY CHECK (length(ticket_hash) = 32),
    key_id      INTEGER,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX stream_tickets_expires ON stream_tickets (expires_at);
