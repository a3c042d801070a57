//! Shared test support: store harnesses (SQLite in a temp dir, PostgreSQL in a
//! fresh uniquely named database), deterministic random vectors, and the
//! contract suite that every store implementation must pass.
#![allow(dead_code, clippy::unwrap_used)]

pub mod cluster;
pub mod contract;
pub mod rng;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use face_store::{FaceStore, PgStore, PostgresConfig, SqliteConfig, SqliteStore};

/// A store under test plus what must outlive it.
pub struct Harness {
    pub store: Arc<dyn FaceStore>,
    pub pg: Option<PgStore>,
    _dir: Option<tempfile::TempDir>,
    pg_db: Option<TestDatabase>,
}

impl Harness {
    pub fn store(&self) -> &dyn FaceStore {
        &*self.store
    }

    /// Drops the per-test database (PostgreSQL); the temp dir goes on drop.
    pub async fn cleanup(self) {
        let Harness {
            store, pg, pg_db, ..
        } = self;
        drop(store);
        drop(pg);
        if let Some(db) = pg_db {
            db.drop_database().await;
        }
    }
}

pub async fn sqlite() -> Option<Harness> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::in_data_dir(dir.path()))
        .await
        .unwrap();
    Some(Harness {
        store: Arc::new(store),
        pg: None,
        _dir: Some(dir),
        pg_db: None,
    })
}

/// The PostgreSQL server to test against, from `FACEGATE_TEST_DATABASE_URL`
/// or `DATABASE_URL`. Without one: fail under CI, skip loudly otherwise.
pub fn pg_admin_url() -> Option<String> {
    let url = std::env::var("FACEGATE_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "no PostgreSQL configured for the store tests: set DATABASE_URL, \
                 or run them through scripts/with-postgres.sh"
            );
        }
        eprintln!(
            "\n*** SKIPPING PostgreSQL test: DATABASE_URL is not set. \
             Run `scripts/with-postgres.sh cargo test -p face-store` to include it. ***\n"
        );
    }
    url
}

/// A uniquely named database created for one test.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    admin_url: String,
}

/// Replaces the database name in a URL (`postgres://.../db?x`) or key=value string.
pub fn with_dbname(url: &str, db: &str) -> String {
    if let Some(rest_at) = url.find("://") {
        let after = rest_at + 3;
        let end = url[after..].find('?').map_or(url.len(), |i| after + i);
        let path_start = url[after..end].find('/').map_or(end, |i| after + i);
        format!("{}/{}{}", &url[..path_start], db, &url[end..])
    } else {
        format!("{url} dbname={db}")
    }
}

static DB_COUNTER: AtomicU32 = AtomicU32::new(0);

async fn admin_client(admin_url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .expect("connecting to the test PostgreSQL server");
    tokio::spawn(conn);
    client
}

impl TestDatabase {
    pub async fn create(admin_url: &str) -> TestDatabase {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "facegate_test_{}_{}_{:08x}",
            std::process::id(),
            DB_COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        let client = admin_client(admin_url).await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        TestDatabase {
            url: with_dbname(admin_url, &name),
            name,
            admin_url: admin_url.to_string(),
        }
    }

    pub async fn drop_database(self) {
        let client = admin_client(&self.admin_url).await;
        if let Err(e) = client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
        {
            eprintln!("warning: could not drop test database {}: {e}", self.name);
        }
    }
}

/// Config for tests: small pool, short timeouts, no background indexing.
pub fn pg_config(url: &str) -> PostgresConfig {
    let mut cfg = PostgresConfig::new(url);
    cfg.pool_size = 8;
    cfg.auto_index = false;
    cfg
}

pub async fn postgres() -> Option<Harness> {
    postgres_with(|_| {}).await
}

pub async fn postgres_with(tweak: impl FnOnce(&mut PostgresConfig)) -> Option<Harness> {
    let admin = pg_admin_url()?;
    let db = TestDatabase::create(&admin).await;
    let mut cfg = pg_config(&db.url);
    tweak(&mut cfg);
    let store = PgStore::open(cfg).await.unwrap();
    Some(Harness {
        store: Arc::new(store.clone()),
        pg: Some(store),
        _dir: None,
        pg_db: Some(db),
    })
}

/// Generates one `#[tokio::test]` per contract case for a harness factory.
#[macro_export]
macro_rules! contract_tests {
    ($factory:path) => {
        $crate::contract_tests!(@cases $factory;
            crud_round_trip,
            cascade_delete,
            atomic_create_on_conflict,
            model_isolation,
            top_k_matches_brute_force_euclidean,
            top_k_matches_brute_force_cosine,
            best_template_per_user,
            distance_to_one_user,
            concurrent_inserts,
            pagination_is_stable,
            users_without_model,
            hostile_and_unicode_names,
            bad_embeddings_rejected,
            search_edge_cases,
            health_ok,
        );
    };
    (@cases $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let Some(h) = $factory().await else { return };
                common::contract::$name(&h.store).await;
                h.cleanup().await;
            }
        )*
    };
}
