//! With PostgreSQL stopped, the server stays up and says so: `/health` is
//! 503 with `"database": "disconnected"`, `/readyz` is 503 within 2 s while
//! `/livez` stays 200 (an orchestrator takes the replica out of the load
//! balancer and does not restart it), data calls are 503
//! `store_unavailable` with Retry-After, each within a bounded time; when the
//! database is back, everything works again without a restart.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use face_store::testing::cluster::Cluster;
use facegate::settings::StoreKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outage_is_503_and_recovers_without_restart() {
    // A private cluster this test may stop (not the shared test server).
    let Some(cluster) = Cluster::start_new() else {
        return;
    };
    let url = cluster.url();
    let app = common::spawn_with(StoreKind::Sqlite, |s| {
        s.store.kind = StoreKind::Postgres;
        s.store.postgres_url = Some(url);
        s.store.pool_size = 2;
    })
    .await
    .unwrap();
    let (status, body) = app.get("/health").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready", "{body}");
    let (status, body) = app.get("/livez").await;
    assert_eq!(status, 200, "{body}");
    let (status, reg) = app
        .register("Paul Rudd", "people/paul_rudd/facenet_pytorch_1.jpg")
        .await;
    assert_eq!(status, 200, "{reg}");

    cluster.stop();
    // The probes, as an orchestrator asks them: no key.
    let probe = reqwest::Client::new();
    let started = Instant::now();
    let (status, body) = common::read(probe.get(app.url("/readyz")).send().await.unwrap()).await;
    let took = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready", "{body}");
    assert_eq!(body["checks"]["store"], "unavailable", "{body}");
    assert_eq!(body["checks"]["workers"], "ok", "{body}");
    assert!(took < Duration::from_secs(2), "/readyz took {took:?}");
    let (status, body) = common::read(probe.get(app.url("/livez")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let res = probe.head(app.url("/livez")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let started = Instant::now();
    let res = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.headers().get("retry-after").unwrap(), "5");
    let (status, body) = common::read(res).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["database"], "disconnected");
    assert_eq!(body["status"], "unhealthy");
    let (status, body) = app.get("/users/").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "store_unavailable");
    let (status, body) = app
        .recognize("people/paul_rudd/facenet_pytorch_1.png")
        .await;
    assert_eq!(status, 503, "{body}");
    let waited = started.elapsed();
    println!("three calls during the outage took {waited:?}");
    assert!(
        waited < Duration::from_secs(30),
        "calls hung for {waited:?}"
    );

    // Frozen rather than stopped (the server accepts connections and never
    // answers): the probe still answers within 2 s.
    cluster.start();
    cluster.freeze();
    let started = Instant::now();
    let (status, body) = common::read(probe.get(app.url("/readyz")).send().await.unwrap()).await;
    let took = started.elapsed();
    cluster.thaw();
    assert_eq!(status, 503, "{body}");
    assert!(
        took < Duration::from_secs(2),
        "/readyz took {took:?} on a frozen database"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = app.get("/health").await;
        let (ready, _) = common::read(probe.get(app.url("/readyz")).send().await.unwrap()).await;
        if status == 200 && ready == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "did not recover after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = common::read(probe.get(app.url("/livez")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let (status, rec) = app
        .recognize("people/paul_rudd/facenet_pytorch_1.png")
        .await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["user_id"], reg["user_id"], "{rec}");
}
