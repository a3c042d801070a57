//! Shared test support: store harnesses (SQLite in a temp dir, PostgreSQL in a
//! fresh uniquely named database), deterministic random vectors, and the
//! contract suite that every store implementation must pass.
#![allow(dead_code, clippy::unwrap_used)]

#[allow(unused_imports)]
pub use face_store::testing::cluster;
pub mod contract;
pub mod rng;

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

pub use face_store::testing::{pg_admin_url, TestDatabase};

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
            templates_listed_capped_and_deleted,
            unique_creation_is_checked_inside_the_write,
            concurrent_inserts,
            first_use_of_a_model_races,
            users_found_by_name_and_reference,
            failing_lockouts_are_listed,
            pagination_is_stable,
            users_without_model,
            hostile_and_unicode_names,
            bad_embeddings_rejected,
            search_edge_cases,
            health_ok,
            api_keys_round_trip,
            lockout_counts_and_resets,
            audit_log_filters_and_pages,
            liveness_sessions_and_tokens,
            stream_tickets_redeemed_once,
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
