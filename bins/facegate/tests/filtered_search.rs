//! Filtered vector search on PostgreSQL with real embeddings: 3,000 LFW
//! people through the fast pipeline (MobileFaceNet, model A) and 200 more
//! through the default one (SFace, model B) in one `templates` table, each
//! model with its HNSW index built. Every search is filtered by model; B is
//! the small one among many, the case where a filter applied after an
//! index scan comes back short. B's searches, with other photos of the
//! same 200 people, must find the same nearest person as an exact scan
//! (recall@1 ≥ 0.99); the plan must use B's index. About a minute of
//! embedding on two threads.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use face_core::models::ModelLocator;
use face_core::{FacePipeline, PipelineOptions};
use face_store::{
    FaceStore, IndexState, Metric, ModelKey, NewTemplate, NewUser, PgStore, PostgresConfig,
};
use facegate::settings::Settings;

/// Two pipelines of the configuration `configure` gives the workspace's
/// settings.
fn pipelines(configure: fn(&mut Settings)) -> Vec<FacePipeline> {
    let dir = tempfile::tempdir().unwrap();
    let mut s = common::settings(dir.path());
    configure(&mut s);
    let locator = ModelLocator::new(Some(Path::new(&s.face.models_dir)));
    face_core::backend::build(
        &s.face.backend_config(),
        &locator,
        PipelineOptions::default(),
        2,
    )
    .unwrap()
    .pipelines
}

/// The embedding of the largest face of each photo (None when none
/// qualifies), on two threads.
fn embed(pipelines: &mut [FacePipeline], photos: &[std::path::PathBuf]) -> Vec<Option<Vec<f32>>> {
    let half = photos.len().div_ceil(2);
    std::thread::scope(|scope| {
        let jobs: Vec<_> = pipelines
            .iter_mut()
            .zip(photos.chunks(half))
            .map(|(p, chunk)| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|path| {
                            let bytes = std::fs::read(path).unwrap();
                            p.analyze_largest(&bytes, 1)
                                .ok()
                                .and_then(|a| a.faces.into_iter().next())
                                .map(|f| f.embedding.values().to_vec())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        jobs.into_iter().flat_map(|j| j.join().unwrap()).collect()
    })
}

fn key(p: &FacePipeline) -> ModelKey {
    let m = p.model();
    let metric = match m.metric {
        face_core::Metric::Euclidean => Metric::Euclidean,
        face_core::Metric::Cosine => Metric::Cosine,
    };
    ModelKey::new(m.id.clone(), m.dimension, metric)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_model_among_many_keeps_its_recall_through_the_index() {
    let Some(admin) = face_store::testing::pg_admin_url() else {
        return;
    };
    let db = face_store::testing::TestDatabase::create(&admin).await;
    let lfw = common::shared().join("datasets/lfw");
    let mut people: Vec<String> = std::fs::read_dir(&lfw)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    people.sort();
    let photo = |person: &str, n: usize| lfw.join(person).join(format!("{person}_{n:04}.jpg"));
    // B: 200 people with a second photo (enrolled with the first, searched
    // with the second); A: 3,000 others.
    let (twice, once): (Vec<&String>, Vec<&String>) =
        people.iter().partition(|p| photo(p, 2).exists());
    let b_people: Vec<&String> = twice.into_iter().step_by(4).take(200).collect();
    let a_people: Vec<&String> = once.into_iter().take(3000).collect();
    assert_eq!((a_people.len(), b_people.len()), (3000, 200));

    let mut fast = pipelines(common::use_fast_pipeline);
    let mut default = pipelines(common::use_default_pipeline);
    let (model_a, model_b) = (key(&fast[0]), key(&default[0]));
    assert_ne!(model_a.id, model_b.id);
    let a_photos: Vec<_> = a_people.iter().map(|p| photo(p, 1)).collect();
    let b_enrol: Vec<_> = b_people.iter().map(|p| photo(p, 1)).collect();
    let b_query: Vec<_> = b_people.iter().map(|p| photo(p, 2)).collect();
    let a_vectors = embed(&mut fast, &a_photos);
    let b_vectors = embed(&mut default, &b_enrol);
    let b_queries = embed(&mut default, &b_query);

    let mut config = PostgresConfig::new(db.url.clone());
    config.hnsw_min_templates = 100;
    config.auto_index = false;
    let pg = PgStore::open(config).await.unwrap();
    let insert = |model: &ModelKey, name: String, v: Vec<f32>| {
        let pg = pg.clone();
        let model = model.clone();
        async move {
            pg.create_user(
                NewUser::named(name),
                &model,
                &[NewTemplate {
                    embedding: v,
                    quality: 1.0,
                }],
            )
            .await
            .unwrap()
            .id
        }
    };
    for (i, v) in a_vectors.into_iter().enumerate() {
        if let Some(v) = v {
            insert(&model_a, format!("a{i}"), v).await;
        }
    }
    let mut enrolled_b = Vec::new();
    for (i, v) in b_vectors.iter().enumerate() {
        if let Some(v) = v {
            enrolled_b.push((
                insert(&model_b, format!("b{i}"), v.clone()).await,
                v.clone(),
            ));
        }
    }
    assert!(
        enrolled_b.len() >= 190,
        "{} of B's photos embedded",
        enrolled_b.len()
    );
    let built = pg.ensure_indexes().await.unwrap();
    assert_eq!(built.len(), 2, "{built:?}");
    for m in [&model_a, &model_b] {
        assert_eq!(
            pg.index_state(m).await.unwrap(),
            IndexState::Valid,
            "{}",
            m.id
        );
    }
    let (version, iterative) = pg.vector_search();

    // Recall@1 of B's searches against an exact scan: through the store
    // as the planner chooses (for 200 rows it may scan them exactly), and
    // through a store whose sessions may not sort, so that every search of
    // B goes through B's HNSW index.
    let sep = if db.url.contains('?') { '&' } else { '?' };
    let mut forced = PostgresConfig::new(format!("{}{sep}options=-c%20enable_sort%3Doff", db.url));
    forced.auto_index = false;
    let through_index = PgStore::open(forced).await.unwrap();
    let probe = b_queries.iter().flatten().next().unwrap();
    let plan = through_index
        .explain_search(&model_b, probe, 1)
        .await
        .unwrap();
    assert!(
        plan.contains("Index Scan using templates_hnsw"),
        "B's search does not use its index:\n{plan}"
    );
    let chosen = pg.explain_search(&model_b, probe, 1).await.unwrap();
    let metric = default[0].model().metric;
    for (name, store) in [("planner's choice", &pg), ("HNSW index", &through_index)] {
        let (mut searched, mut agree) = (0, 0);
        for q in b_queries.iter().flatten() {
            let exact = enrolled_b
                .iter()
                .min_by(|x, y| {
                    metric
                        .distance(&x.1, q)
                        .total_cmp(&metric.distance(&y.1, q))
                })
                .unwrap()
                .0;
            let found = store.search(&model_b, q, 1).await.unwrap();
            searched += 1;
            if found.first().map(|m| m.user_id) == Some(exact) {
                agree += 1;
            }
        }
        let recall = f64::from(agree) / f64::from(searched);
        println!(
            "pgvector {version:?} (iterative scans {iterative}), {name}: recall@1 of model B \
             {recall:.4} ({agree}/{searched}) beside 3000 templates of A"
        );
        assert!(searched >= 190, "{searched} queries embedded");
        assert!(
            recall >= 0.99,
            "{name}: recall@1 {recall:.4} ({agree}/{searched})"
        );
    }
    println!(
        "planner's choice uses the index: {}",
        chosen.contains("templates_hnsw")
    );
    drop(through_index);
    drop(pg);
    db.drop_database().await;
}
