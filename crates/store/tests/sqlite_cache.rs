//! The SQLite store's in-memory search matrix stays consistent with the file,
//! also when another process (here: a second store on the same file) writes.
#![allow(clippy::unwrap_used)]

mod common;

use common::contract::dlib;
use common::rng::Rng;
use face_store::{FaceStore, NewTemplate, NewUser, SqliteConfig, SqliteStore};

fn tpl(v: Vec<f32>) -> Vec<NewTemplate> {
    vec![NewTemplate {
        embedding: v,
        quality: 1.0,
    }]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_sees_writes_from_another_store_on_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = SqliteStore::open(SqliteConfig::in_data_dir(dir.path()))
        .await
        .unwrap();
    let b = SqliteStore::open(SqliteConfig::in_data_dir(dir.path()))
        .await
        .unwrap();
    let model = dlib();
    let mut rng = Rng::new(3);
    let v1 = rng.vector(128);
    let u1 = a
        .create_user(NewUser::named("one"), &model, &tpl(v1.clone()))
        .await
        .unwrap();
    // Loads a's cache.
    assert_eq!(a.search(&model, &v1, 5).await.unwrap()[0].user_id, u1.id);

    // Written through b: a must notice and reload.
    let v2 = rng.vector(128);
    let u2 = b
        .create_user(NewUser::named("two"), &model, &tpl(v2.clone()))
        .await
        .unwrap();
    let hits = a.search(&model, &v2, 5).await.unwrap();
    assert_eq!(hits[0].user_id, u2.id);
    assert_eq!(hits.len(), 2);

    // Deleted through b: gone from a's results.
    b.delete_user(u1.id).await.unwrap();
    let hits = a.search(&model, &v1, 5).await.unwrap();
    assert_eq!(
        hits.iter().map(|m| m.user_id).collect::<Vec<_>>(),
        vec![u2.id]
    );

    // Local writes update the cache in place.
    let v3 = rng.vector(128);
    let ids = a
        .add_templates(u2.id, &model, &tpl(v3.clone()), usize::MAX, None)
        .await
        .unwrap();
    let hits = a.search(&model, &v3, 1).await.unwrap();
    assert_eq!(hits[0].template_id, ids[0]);
    assert!(hits[0].distance < 1e-5);
}

#[tokio::test]
async fn open_by_config_gives_a_trait_object() {
    let dir = tempfile::tempdir().unwrap();
    let store = face_store::open(face_store::StoreConfig::Sqlite(SqliteConfig::in_data_dir(
        dir.path(),
    )))
    .await
    .unwrap();
    store.health().await.unwrap();
    assert!(dir.path().join(SqliteConfig::FILE_NAME).exists());
}
