-- FaceGate store, PostgreSQL + pgvector, version 1.
--
-- Templates of every model share one table. The `embedding` column is an
-- untyped `vector` (any dimension); each row carries its model's dimension,
-- and a composite foreign key to `models (id, dimension)` plus a CHECK keep
-- every row of a model at that model's dimension. Per-model HNSW indexes are
-- partial expression indexes, created by the store when a model grows large:
--   CREATE INDEX ... USING hnsw ((embedding::vector(128)) vector_l2_ops)
--   WHERE model_id = 'dlib_resnet_v1';
-- and searches use the same expression and predicate, so they can use them.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE users (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT NOT NULL CHECK (length(name) > 0),
    external_ref TEXT UNIQUE,
    metadata     JSONB,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE models (
    id         TEXT PRIMARY KEY,
    dimension  INTEGER NOT NULL CHECK (dimension BETWEEN 1 AND 2000),
    metric     TEXT NOT NULL CHECK (metric IN ('euclidean', 'cosine')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (id, dimension)
);

CREATE TABLE templates (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    model_id   TEXT NOT NULL,
    dimension  INTEGER NOT NULL,
    embedding  vector NOT NULL,
    quality    REAL NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    FOREIGN KEY (model_id, dimension) REFERENCES models (id, dimension),
    CHECK (vector_dims(embedding) = dimension)
);

-- Keep embeddings inline in the heap row: a 512-D vector (2 KB) would
-- otherwise be TOASTed, and every distance computation would detoast it.
ALTER TABLE templates ALTER COLUMN embedding SET STORAGE MAIN;

-- Cascade deletes, per-user counts, and "users without model X".
CREATE INDEX templates_user_model ON templates (user_id, model_id);
-- Exact (sequential) search and per-model counts.
CREATE INDEX templates_model ON templates (model_id);
