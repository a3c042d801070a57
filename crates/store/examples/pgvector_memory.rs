//! How much PostgreSQL holds per template: the `templates` heap and the
//! model's HNSW index (the store's own schema and index parameters), for
//! 128-D and 512-D embeddings, measured at N templates and scaled to one
//! million. Each dimension gets a fresh database on the server at
//! `DATABASE_URL`; the vectors are random unit vectors made by the server
//! (an HNSW index's size depends on the count, dimension and `m`, not on
//! the values).
//!
//!     scripts/with-postgres.sh cargo run --release -p face-store \
//!         --example pgvector_memory -- 100000
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use face_store::testing::TestDatabase;
use face_store::{Metric, ModelKey, PgStore, PostgresConfig};

#[tokio::main]
async fn main() {
    let n: i64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N, the number of templates"))
        .unwrap_or(100_000);
    let admin =
        std::env::var("DATABASE_URL").expect("DATABASE_URL (run through scripts/with-postgres.sh)");
    println!("| dimension | templates | heap | HNSW index | per template | per 1M templates | index build |");
    println!("|---|---|---|---|---|---|---|");
    for dim in [128usize, 512] {
        let db = TestDatabase::create(&admin).await;
        let mut config = PostgresConfig::new(db.url.clone());
        config.auto_index = false;
        config.hnsw_min_templates = 1;
        let store = PgStore::open(config).await.unwrap();
        let model = ModelKey::new(format!("bench{dim}"), dim, Metric::Cosine);
        let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(&format!(
                "SET statement_timeout = 0;
                 INSERT INTO models (id, dimension, metric) VALUES ('{id}', {dim}, 'cosine');
                 INSERT INTO users (name) SELECT 'u' || g FROM generate_series(1, {n}) g;
                 WITH v AS (
                   SELECT u.id, (SELECT array_agg(random() - 0.5) FROM generate_series(1, {dim}) d
                                 WHERE u.id > 0)::real[] AS a
                   FROM users u)
                 INSERT INTO templates (user_id, model_id, dimension, embedding, quality)
                 SELECT id, '{id}', {dim}, l2_normalize(a::vector), 1.0 FROM v;
                 ANALYZE templates;",
                id = model.id
            ))
            .await
            .unwrap();
        let started = Instant::now();
        store.ensure_indexes().await.unwrap();
        let build = started.elapsed();
        let row = client
            .query_one(
                "SELECT pg_table_size('templates'),
                        (SELECT sum(pg_relation_size(indexrelid::regclass))::bigint
                           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                          WHERE c.relname LIKE 'templates_hnsw%')",
                &[],
            )
            .await
            .unwrap();
        let (heap, index): (i64, i64) = (row.get(0), row.get(1));
        let per = (heap + index) as f64 / n as f64;
        let mib = |b: f64| b / (1024.0 * 1024.0);
        println!(
            "| {dim} | {n} | {:.1} MiB | {:.1} MiB | {:.0} B | {:.2} GiB | {:.0} s |",
            mib(heap as f64),
            mib(index as f64),
            per,
            per * 1e6 / (1024.0 * 1024.0 * 1024.0),
            build.as_secs_f64()
        );
        drop(client);
        drop(store);
        db.drop_database().await;
    }
}
