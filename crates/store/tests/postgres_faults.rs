//! Fault behaviour against a private cluster the test controls: with the
//! server stopped or frozen, every operation fails with `Unavailable` within
//! a bounded time, and the same store works again once the server is back,
//! without reopening it.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::contract::dlib;
use common::rng::Rng;
use face_store::{FaceStore, NewTemplate, NewUser, Page, PgStore, StoreError};

/// A generous bound: every configured timeout below is ≤ 2 s.
const BOUND: Duration = Duration::from_secs(5);

async fn open(cluster: &Cluster) -> PgStore {
    let mut cfg = common::pg_config(&cluster.url());
    cfg.pool_size = 4;
    cfg.connect_timeout = Duration::from_secs(1);
    cfg.wait_timeout = Duration::from_secs(1);
    cfg.statement_timeout = Duration::from_secs(1);
    cfg.operation_timeout = Duration::from_secs(2);
    PgStore::open(cfg).await.unwrap()
}

fn tpl(rng: &mut Rng) -> NewTemplate {
    NewTemplate {
        embedding: rng.vector(128),
        quality: 1.0,
    }
}

/// Runs every kind of operation and checks each is `Unavailable`, promptly.
async fn assert_all_unavailable(store: &PgStore, user: i64, rng: &mut Rng) {
    let model = dlib();
    let q = rng.vector(128);
    let t = [tpl(rng)];
    let checks: Vec<(&str, Result<(), StoreError>, Duration)> = vec![
        timed("health", store.health()).await,
        timed("get_user", async { store.get_user(user).await.map(drop) }).await,
        timed("list_users", async {
            store.list_users(Page::first(10)).await.map(drop)
        })
        .await,
        timed("create_user", async {
            store
                .create_user(NewUser::named("x"), &model, &t)
                .await
                .map(drop)
        })
        .await,
        timed("add_templates", async {
            store
                .add_templates(user, &model, &t, usize::MAX, None)
                .await
                .map(drop)
        })
        .await,
        timed("search", async {
            store.search(&model, &q, 5).await.map(drop)
        })
        .await,
        timed("stats", async { store.stats().await.map(drop) }).await,
        timed("delete_user", store.delete_user(user)).await,
    ];
    for (what, result, elapsed) in checks {
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{what}: expected Unavailable, got {result:?}"
        );
        assert!(elapsed < BOUND, "{what} took {elapsed:?}");
    }
}

async fn timed(
    what: &'static str,
    fut: impl std::future::Future<Output = Result<(), StoreError>>,
) -> (&'static str, Result<(), StoreError>, Duration) {
    let start = Instant::now();
    // The outer timeout only keeps a regression from hanging the test run.
    let result = tokio::time::timeout(BOUND * 4, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"));
    (what, result, start.elapsed())
}

/// Polls until the store answers again (the pool replaces dead connections).
async fn assert_recovers(store: &PgStore, user: i64, rng: &mut Rng) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match store.health().await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                assert!(e.is_transient(), "unexpected error while recovering: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("store did not recover: {e}"),
        }
    }
    assert_eq!(store.get_user(user).await.unwrap().id, user);
    let model = dlib();
    let u = store
        .create_user(NewUser::named("after"), &model, &[tpl(rng)])
        .await
        .unwrap();
    assert!(!store
        .search(&model, &rng.vector(128), 3)
        .await
        .unwrap()
        .is_empty());
    store.delete_user(u.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_server_is_unavailable_then_recovers() {
    let Some(cluster) = Cluster::start_new() else {
        return;
    };
    let store = open(&cluster).await;
    let mut rng = Rng::new(1);
    let user = store
        .create_user(NewUser::named("before"), &dlib(), &[tpl(&mut rng)])
        .await
        .unwrap()
        .id;

    cluster.stop();
    assert_all_unavailable(&store, user, &mut rng).await;
    // Still down on a second round (no cached state pretends otherwise).
    assert_all_unavailable(&store, user, &mut rng).await;

    cluster.start();
    assert_recovers(&store, user, &mut rng).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_server_times_out_then_recovers() {
    let Some(cluster) = Cluster::start_new() else {
        return;
    };
    let store = open(&cluster).await;
    let mut rng = Rng::new(2);
    let user = store
        .create_user(NewUser::named("before"), &dlib(), &[tpl(&mut rng)])
        .await
        .unwrap()
        .id;

    // SIGSTOP: connections stay open but nothing answers — only client-side
    // deadlines can end the wait.
    cluster.freeze();
    assert_all_unavailable(&store, user, &mut rng).await;
    cluster.thaw();
    assert_recovers(&store, user, &mut rng).await;
}
