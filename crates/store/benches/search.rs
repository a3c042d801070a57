//! Search benchmark: latency (p50/p99) and recall@1 against exact search, for
//! both stores, at configurable sizes. Not run by `cargo test` (harness =
//! false, and `main` does nothing unless asked to).
//!
//! ```text
//! FACEGATE_BENCH=1 FACEGATE_BENCH_SIZES=5000,100000 \
//!   scripts/with-postgres.sh cargo bench -p face-store --bench search
//! ```
//!
//! Environment: `FACEGATE_BENCH_SIZES` (templates, default 5000),
//! `FACEGATE_BENCH_STORES` (`sqlite,postgres`), `FACEGATE_BENCH_QUERIES`
//! (per query kind, default 200), `FACEGATE_BENCH_EF` (HNSW ef_search values,
//! default `40,100,200`), `FACEGATE_BENCH_M` / `FACEGATE_BENCH_EFC` (HNSW
//! build parameters, default: the store's), `FACEGATE_BENCH_SKIP_EXACT` (skip the
//! slow exact PostgreSQL pass), `FACEGATE_BENCH_KEEP` (keep the database),
//! `DATABASE_URL` for PostgreSQL.
//!
//! Data: 128-D unit vectors, two templates per user (the user's base vector
//! plus small noise), so "best template per user" matters. Queries:
//! *near-duplicate* (a stored template plus noise of per-component σ = 0.02,
//! ≈ 0.23 away — a new photo of an enrolled person) and *random* (a fresh
//! random vector — a stranger). Recall@1 is the fraction of queries whose
//! top user equals the brute-force top user.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::{Duration, Instant};

use face_store::distance::{squared_l2, to_le_bytes};
use face_store::{FaceStore, Metric, ModelKey, PgStore, PostgresConfig, SqliteConfig, SqliteStore};

const DIM: usize = 128;
const TEMPLATES_PER_USER: usize = 2;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn normal(&mut self) -> f32 {
        let u1 = self.unit().max(1e-7);
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * self.unit()).cos()
    }
    fn vector(&mut self) -> Vec<f32> {
        let v: Vec<f32> = (0..DIM).map(|_| self.normal()).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }
    fn near(&mut self, base: &[f32], sigma: f32) -> Vec<f32> {
        base.iter().map(|x| x + sigma * self.normal()).collect()
    }
}

/// The data set: template i belongs to user i / TEMPLATES_PER_USER.
struct Data {
    templates: Vec<Vec<f32>>,
}

impl Data {
    fn generate(n: usize) -> Data {
        let mut rng = Rng(42);
        let mut templates = Vec::with_capacity(n);
        while templates.len() < n {
            let base = rng.vector();
            for _ in 0..TEMPLATES_PER_USER {
                if templates.len() < n {
                    templates.push(rng.near(&base, 0.02));
                }
            }
        }
        Data { templates }
    }

    fn users(&self) -> usize {
        self.templates.len().div_ceil(TEMPLATES_PER_USER)
    }

    /// Index of the brute-force nearest user (by best template).
    fn exact_top_user(&self, q: &[f32]) -> usize {
        let mut best = (f32::INFINITY, 0usize);
        for (i, t) in self.templates.iter().enumerate() {
            let d = squared_l2(q, t);
            if d < best.0 {
                best = (d, i);
            }
        }
        best.1 / TEMPLATES_PER_USER
    }
}

struct Queries {
    kind: &'static str,
    vectors: Vec<Vec<f32>>,
    truth: Vec<usize>,
}

fn queries(data: &Data, n: usize) -> Vec<Queries> {
    let mut rng = Rng(7);
    let near: Vec<Vec<f32>> = (0..n)
        .map(|_| {
            let i = (rng.next() % data.templates.len() as u64) as usize;
            rng.near(&data.templates[i], 0.02)
        })
        .collect();
    let random: Vec<Vec<f32>> = (0..n).map(|_| rng.vector()).collect();
    [("near-duplicate", near), ("random", random)]
        .into_iter()
        .map(|(kind, vectors)| {
            let truth = vectors.iter().map(|q| data.exact_top_user(q)).collect();
            Queries {
                kind,
                vectors,
                truth,
            }
        })
        .collect()
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// Runs the queries, printing one result line per query kind.
async fn measure(store: &dyn FaceStore, user_ids: &[i64], label: &str, n: usize, qs: &[Queries]) {
    let model = model();
    for q in qs {
        for v in q.vectors.iter().take(20) {
            store.search(&model, v, 1).await.unwrap(); // warm-up
        }
        let mut times = Vec::with_capacity(q.vectors.len());
        let mut hits = 0;
        for (v, truth) in q.vectors.iter().zip(&q.truth) {
            let start = Instant::now();
            let r = store.search(&model, v, 1).await.unwrap();
            times.push(start.elapsed());
            if r.first().map(|m| m.user_id) == Some(user_ids[*truth]) {
                hits += 1;
            }
        }
        times.sort();
        println!(
            "| {label} | {n} | {} | {:.3} | {:.3} | {:.3} |",
            q.kind,
            pct(&times, 0.5),
            pct(&times, 0.99),
            hits as f64 / q.vectors.len() as f64
        );
        std::io::stdout().flush().unwrap();
    }
}

fn model() -> ModelKey {
    ModelKey::new("dlib_resnet_v1", DIM, Metric::Euclidean)
}

async fn bench_sqlite(data: &Data, qs: &[Queries]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.sqlite3");
    let store = SqliteStore::open(SqliteConfig::new(&path)).await.unwrap();
    let start = Instant::now();
    let user_ids = {
        // Bulk load in one transaction (the API commits once per user).
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute(
            "INSERT INTO models (id, dimension, metric, created_at) VALUES (?1, ?2, 'euclidean', 0)",
            rusqlite::params![model().id, DIM as i64],
        )
        .unwrap();
        let mut ids = Vec::with_capacity(data.users());
        {
            let mut u = tx
                .prepare("INSERT INTO users (name, created_at) VALUES (?1, 0)")
                .unwrap();
            let mut t = tx
                .prepare(
                    "INSERT INTO templates (user_id, model_id, dimension, embedding, quality, created_at) \
                     VALUES (?1, ?2, ?3, ?4, 1.0, 0)",
                )
                .unwrap();
            for (i, v) in data.templates.iter().enumerate() {
                if i % TEMPLATES_PER_USER == 0 {
                    u.execute([format!("user {}", i / TEMPLATES_PER_USER)])
                        .unwrap();
                    ids.push(tx.last_insert_rowid());
                }
                t.execute(rusqlite::params![
                    ids[i / TEMPLATES_PER_USER],
                    model().id,
                    DIM as i64,
                    to_le_bytes(v)
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
        conn.execute_batch("ANALYZE").unwrap();
        ids
    };
    eprintln!(
        "sqlite: loaded {} templates in {:.1?}",
        data.templates.len(),
        start.elapsed()
    );
    measure(&store, &user_ids, "SQLite exact", data.templates.len(), qs).await;
}

async fn pg_admin(url: &str) -> tokio_postgres::Client {
    // The store's connector, so an sslmode in the URL applies here too.
    let (pg, tls) = face_store::PgTls::from_url(url).unwrap();
    tls.connect(&pg).await.unwrap()
}

fn with_dbname(url: &str, db: &str) -> String {
    let after = url.find("://").map(|i| i + 3).unwrap();
    let end = url[after..].find('?').map_or(url.len(), |i| after + i);
    let path = url[after..end].find('/').map_or(end, |i| after + i);
    format!("{}/{}{}", &url[..path], db, &url[end..])
}

async fn bench_postgres(url: &str, data: &Data, qs: &[Queries], efs: &[u32]) {
    let n = data.templates.len();
    let db = format!("facegate_bench_{n}");
    let admin = pg_admin(url).await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let db_url = with_dbname(url, &db);
    let config = |ef: u32| {
        let mut c = PostgresConfig::new(&db_url);
        c.auto_index = false;
        c.hnsw_ef_search = ef;
        c.index_build_memory = "4GB".into();
        c.hnsw_m = env_u32("FACEGATE_BENCH_M", c.hnsw_m);
        c.hnsw_ef_construction = env_u32("FACEGATE_BENCH_EFC", c.hnsw_ef_construction);
        c.statement_timeout = Duration::from_secs(60);
        c.operation_timeout = Duration::from_secs(120);
        c
    };
    let store = PgStore::open(config(efs[0])).await.unwrap();

    // Bulk load with COPY (the API commits once per user).
    let start = Instant::now();
    let client = pg_admin(&db_url).await;
    client
        .execute(
            "INSERT INTO models (id, dimension, metric) VALUES ($1, $2, 'euclidean')",
            &[&model().id, &(DIM as i32)],
        )
        .await
        .unwrap();
    {
        let sink = client
            .copy_in("COPY users (name) FROM STDIN")
            .await
            .unwrap();
        let mut buf = String::new();
        for u in 0..data.users() {
            buf.push_str(&format!("user {u}\n"));
        }
        use futures_util_sink::send_all;
        send_all(sink, vec![buf.into_bytes()]).await;
    }
    let user_ids: Vec<i64> = client
        .query("SELECT id FROM users ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    {
        let sink = client
            .copy_in("COPY templates (user_id, model_id, dimension, embedding, quality) FROM STDIN")
            .await
            .unwrap();
        let mut chunks = Vec::new();
        let mut buf = String::new();
        for (i, v) in data.templates.iter().enumerate() {
            buf.push_str(&format!(
                "{}\t{}\t{DIM}\t[",
                user_ids[i / TEMPLATES_PER_USER],
                model().id
            ));
            for (j, x) in v.iter().enumerate() {
                if j > 0 {
                    buf.push(',');
                }
                buf.push_str(&x.to_string());
            }
            buf.push_str("]\t1\n");
            if buf.len() > 1 << 20 {
                chunks.push(std::mem::take(&mut buf).into_bytes());
            }
        }
        chunks.push(buf.into_bytes());
        futures_util_sink::send_all(sink, chunks).await;
    }
    client
        .batch_execute("VACUUM ANALYZE templates")
        .await
        .unwrap();
    client.batch_execute("VACUUM ANALYZE users").await.unwrap();
    eprintln!("postgres: loaded {n} templates in {:.1?}", start.elapsed());

    if std::env::var_os("FACEGATE_BENCH_SKIP_EXACT").is_none() {
        measure(&store, &user_ids, "pgvector exact", n, qs).await;
    }

    let start = Instant::now();
    store.build_index(&model()).await.unwrap();
    let (m, efc) = (store.config().hnsw_m, store.config().hnsw_ef_construction);
    eprintln!(
        "postgres: HNSW index (m={m}, ef_construction={efc}) built in {:.1?}",
        start.elapsed()
    );
    for &ef in efs {
        let s = PgStore::open(config(ef)).await.unwrap();
        measure(
            &s,
            &user_ids,
            &format!("pgvector HNSW m={m} efc={efc} ef_search={ef}"),
            n,
            qs,
        )
        .await;
    }
    if std::env::var_os("FACEGATE_BENCH_KEEP").is_none() {
        drop(store);
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .await
            .unwrap();
    }
}

/// Feeding a COPY sink without pulling in the `futures` crate.
mod futures_util_sink {
    use futures_sink::Sink;
    use std::pin::Pin;
    use std::task::Poll;

    use bytes_like::Bytes;
    use tokio_postgres::CopyInSink;

    mod bytes_like {
        pub type Bytes = std::io::Cursor<Vec<u8>>;
    }

    pub async fn send_all(sink: CopyInSink<Bytes>, chunks: Vec<Vec<u8>>) {
        let mut sink = Box::pin(sink);
        for chunk in chunks {
            std::future::poll_fn(|cx| sink.as_mut().poll_ready(cx))
                .await
                .unwrap();
            sink.as_mut()
                .start_send(std::io::Cursor::new(chunk))
                .unwrap();
        }
        finish(sink).await;
    }

    async fn finish(mut sink: Pin<Box<CopyInSink<Bytes>>>) {
        std::future::poll_fn(|cx| match sink.as_mut().poll_finish(cx) {
            Poll::Ready(r) => Poll::Ready(r.map(drop)),
            Poll::Pending => Poll::Pending,
        })
        .await
        .unwrap();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::var_os("FACEGATE_BENCH").is_none() {
        eprintln!("search benchmark: set FACEGATE_BENCH=1 to run (see the crate README)");
        return;
    }
    let sizes: Vec<usize> = env_list("FACEGATE_BENCH_SIZES", "5000")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let stores = env_list("FACEGATE_BENCH_STORES", "sqlite,postgres");
    let nq: usize = std::env::var("FACEGATE_BENCH_QUERIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let efs: Vec<u32> = env_list("FACEGATE_BENCH_EF", "40,100,200")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    println!("| store / mode | templates | queries | p50 ms | p99 ms | recall@1 |");
    println!("|---|---|---|---|---|---|");
    for n in sizes {
        let data = Data::generate(n);
        let qs = queries(&data, nq);
        if stores.iter().any(|s| s == "sqlite") {
            bench_sqlite(&data, &qs).await;
        }
        if stores.iter().any(|s| s == "postgres") {
            match std::env::var("DATABASE_URL") {
                Ok(url) => bench_postgres(&url, &data, &qs, &efs).await,
                Err(_) => eprintln!("postgres: skipped (DATABASE_URL not set)"),
            }
        }
    }
}
