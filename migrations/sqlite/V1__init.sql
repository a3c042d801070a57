-- FaceGate store, embedded SQLite, version 1.
--
-- Same logical model as the PostgreSQL schema. Embeddings are BLOBs of
-- little-endian f32 (4 bytes per component); the composite foreign key to
-- models (id, dimension) and the length CHECK keep each model's rows at its
-- dimension. AUTOINCREMENT guarantees ids are never reused after a delete.
-- Timestamps are microseconds since the Unix epoch, UTC.

CREATE TABLE users (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL CHECK (length(name) > 0),
    external_ref TEXT UNIQUE,
    metadata     TEXT,
    created_at   INTEGER NOT NULL
);

CREATE TABLE models (
    id         TEXT PRIMARY KEY,
    dimension  INTEGER NOT NULL CHECK (dimension BETWEEN 1 AND 2000),
    metric     TEXT NOT NULL CHECK (metric IN ('euclidean', 'cosine')),
    created_at INTEGER NOT NULL,
    UNIQUE (id, dimension)
);

CREATE TABLE templates (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    model_id   TEXT NOT NULL,
    dimension  INTEGER NOT NULL,
    embedding  BLOB NOT NULL,
    quality    REAL NOT NULL,
    created_at INTEGER NOT NULL,
    FOREIGN KEY (model_id, dimension) REFERENCES models (id, dimension),
    CHECK (length(embedding) = 4 * dimension)
);

CREATE INDEX templates_user_model ON templates (user_id, model_id);
CREATE INDEX templates_model ON templates (model_id);
