-- FaceGate store, embedded SQLite, version 2.
--
-- A write generation, incremented by every transaction that changes users or
-- templates. The store keeps each model's embeddings in memory for search;
-- comparing this number with the cache's tells it whether another process
-- (or a write it has not applied yet) changed the data, so it reloads.

CREATE TABLE store_meta (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);

INSERT INTO store_meta (id, generation) VALUES (1, 0);
