//! HNSW indexing on PostgreSQL: exact scans below the threshold, a partial
//! HNSW index above it that the planner really uses, correct results through
//! it, and automatic background index builds.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::contract::dlib;
use common::rng::Rng;
use face_store::{FaceStore, IndexState, Metric, ModelKey, NewTemplate, NewUser};

async fn fill(
    store: &dyn FaceStore,
    model: &ModelKey,
    users: usize,
    rng: &mut Rng,
) -> Vec<(i64, Vec<f32>)> {
    let mut stored = Vec::new();
    for i in 0..users {
        let v = rng.vector(model.dimension);
        let u = store
            .create_user(
                NewUser::named(format!("u{i}")),
                model,
                &[NewTemplate {
                    embedding: v.clone(),
                    quality: 1.0,
                }],
            )
            .await
            .unwrap();
        stored.push((u.id, v));
    }
    stored
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hnsw_index_is_built_and_used() {
    let Some(h) = common::postgres_with(|c| c.hnsw_min_templates = 10_000).await else {
        return;
    };
    let pg = h.pg.clone().unwrap();
    let model = dlib();
    let other = ModelKey::new("other", 128, Metric::Cosine);
    let mut rng = Rng::new(21);
    let stored = fill(h.store(), &model, 10_500, &mut rng).await;
    fill(h.store(), &other, 50, &mut rng).await;
    let q = rng.near(&stored[0].1, 0.01);

    // Below the threshold nothing is built; the plan is an exact scan.
    assert_eq!(pg.index_state(&model).await.unwrap(), IndexState::Missing);
    let exact_plan = pg.explain_search(&model, &q, 5).await.unwrap();
    assert!(!exact_plan.contains("templates_hnsw"), "{exact_plan}");

    // At the threshold: only the big model gets an index.
    let built = pg.ensure_indexes().await.unwrap();
    assert_eq!(built, vec![model.id.clone()]);
    assert_eq!(pg.index_state(&model).await.unwrap(), IndexState::Valid);
    assert_eq!(pg.index_state(&other).await.unwrap(), IndexState::Missing);
    assert!(pg.ensure_indexes().await.unwrap().is_empty(), "idempotent");

    let plan = pg.explain_search(&model, &q, 5).await.unwrap();
    assert!(
        plan.contains("Index Scan using templates_hnsw_dlib_resnet_v1"),
        "{plan}"
    );
    println!("search plan with HNSW:\n{plan}");

    // Near-duplicates are found through the index; other models stay apart.
    for (id, v) in stored.iter().step_by(500) {
        let hits = h
            .store()
            .search(&model, &rng.near(v, 0.01), 3)
            .await
            .unwrap();
        assert_eq!(hits[0].user_id, *id);
        assert!(hits.windows(2).all(|w| w[0].distance <= w[1].distance));
    }
    // A k whose candidate set exceeds ef_search (raised per query).
    let many = h.store().search(&model, &q, 300).await.unwrap();
    assert_eq!(many.len(), 300);
    assert!(many.windows(2).all(|w| w[0].distance <= w[1].distance));

    pg.drop_index(&model).await.unwrap();
    assert_eq!(pg.index_state(&model).await.unwrap(), IndexState::Missing);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_is_built_automatically_in_the_background() {
    let Some(h) = common::postgres_with(|c| {
        c.hnsw_min_templates = 500;
        c.auto_index = true;
    })
    .await
    else {
        return;
    };
    let pg = h.pg.clone().unwrap();
    let model = dlib();
    let mut rng = Rng::new(22);
    // The check runs every max(threshold / 10, 1000) inserted templates.
    fill(h.store(), &model, 1000, &mut rng).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while pg.index_state(&model).await.unwrap() != IndexState::Valid {
        assert!(Instant::now() < deadline, "no index after 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    h.cleanup().await;
}

/// pgvector 0.8 or newer: the store's sessions run with iterative HNSW
/// scans in strict order, as the server itself reports (`SHOW`); older:
/// off, and the store says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iterative_scans_follow_the_installed_pgvector() {
    let Some(h) = common::postgres().await else {
        return;
    };
    let pg = h.pg.clone().unwrap();
    let (version, iterative) = pg.vector_search();
    let version = version.expect("pgvector is installed").to_string();
    let parts: Vec<u32> = version.split('.').map(|p| p.parse().unwrap()).collect();
    let at_least_0_8 = (parts[0], parts[1]) >= (0, 8);
    assert_eq!(iterative, at_least_0_8, "pgvector {version}");
    println!("pgvector {version}: iterative scans {iterative}");
}
