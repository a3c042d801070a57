//! The store contract: one suite, run against every implementation.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use face_store::{
    FaceStore, Match, Metric, ModelKey, NewTemplate, NewUser, Page, StoreError, UserId,
};
use serde_json::json;

use super::rng::Rng;

pub fn dlib() -> ModelKey {
    ModelKey::new("dlib_resnet_v1", 128, Metric::Euclidean)
}

fn tpl(v: Vec<f32>) -> NewTemplate {
    NewTemplate {
        embedding: v,
        quality: 0.9,
    }
}

fn assert_bad<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::BadData(_)) => {}
        other => panic!("{what}: expected BadData, got {other:?}"),
    }
}

fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

async fn templates_of(store: &dyn FaceStore, model: &str) -> i64 {
    store
        .stats()
        .await
        .unwrap()
        .templates_by_model
        .into_iter()
        .find(|(m, _)| m == model)
        .map_or(0, |(_, n)| n)
}

pub async fn crud_round_trip(store: &Arc<dyn FaceStore>) {
    let model = dlib();
    let mut rng = Rng::new(1);
    let new = NewUser {
        name: "Ada Lovelace".into(),
        external_ref: Some("emp-0001".into()),
        metadata: Some(json!({"team": "analytics", "level": 3, "tags": ["a", "b"]})),
    };
    let user = store
        .create_user(
            new.clone(),
            &model,
            &[tpl(rng.vector(128)), tpl(rng.vector(128))],
        )
        .await
        .unwrap();
    assert_eq!(user.name, new.name);
    assert_eq!(user.template_count, 2);
    let age = chrono::Utc::now() - user.created_at;
    assert!(age.num_seconds().abs() < 60, "created_at is now-ish");

    let got = store.get_user(user.id).await.unwrap();
    assert_eq!(got, user);

    let ids = store
        .add_templates(user.id, &model, &[tpl(rng.vector(128))], usize::MAX, None)
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(store.get_user(user.id).await.unwrap().template_count, 3);

    let stats = store.stats().await.unwrap();
    assert_eq!(stats.users, 1);
    assert_eq!(stats.templates_by_model, vec![(model.id.clone(), 3)]);

    store.delete_user(user.id).await.unwrap();
    assert_not_found(store.get_user(user.id).await, "get deleted user");
    assert_not_found(store.delete_user(user.id).await, "delete twice");
    assert_not_found(
        store
            .add_templates(user.id, &model, &[tpl(rng.vector(128))], usize::MAX, None)
            .await,
        "add templates to deleted user",
    );
    assert_not_found(store.get_user(987_654_321).await, "get never-existing user");

    // Ids are never reused after a delete.
    let again = store
        .create_user(NewUser::named("Next"), &model, &[tpl(rng.vector(128))])
        .await
        .unwrap();
    assert!(again.id > user.id);
}

pub async fn cascade_delete(store: &Arc<dyn FaceStore>) {
    let model = dlib();
    let mut rng = Rng::new(2);
    let keep_vec = rng.vector(128);
    let gone_vec = rng.vector(128);
    let keep = store
        .create_user(NewUser::named("keep"), &model, &[tpl(keep_vec.clone())])
        .await
        .unwrap();
    let gone = store
        .create_user(
            NewUser::named("gone"),
            &model,
            &[tpl(gone_vec.clone()), tpl(rng.near(&gone_vec, 0.01))],
        )
        .await
        .unwrap();
    let other = ModelKey::new("other_model", 16, Metric::Cosine);
    store
        .add_templates(gone.id, &other, &[tpl(rng.vector(16))], usize::MAX, None)
        .await
        .unwrap();
    assert_eq!(templates_of(&**store, &model.id).await, 3);
    assert_eq!(templates_of(&**store, &other.id).await, 1);

    store.delete_user(gone.id).await.unwrap();
    assert_eq!(templates_of(&**store, &model.id).await, 1);
    assert_eq!(templates_of(&**store, &other.id).await, 0);
    let hits = store.search(&model, &gone_vec, 10).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].user_id, keep.id);
    assert!(store
        .search(&other, &rng.vector(16), 5)
        .await
        .unwrap()
        .is_empty());
}

pub async fn atomic_create_on_conflict(store: &Arc<dyn FaceStore>) {
    let model = dlib();
    let mut rng = Rng::new(3);
    let mut first = NewUser::named("first");
    first.external_ref = Some("ext-42".into());
    store
        .create_user(first.clone(), &model, &[tpl(rng.vector(128))])
        .await
        .unwrap();
    let mut dup = NewUser::named("second");
    dup.external_ref = Some("ext-42".into());
    assert_conflict(
        store
            .create_user(dup, &model, &[tpl(rng.vector(128)), tpl(rng.vector(128))])
            .await,
        "duplicate external_ref",
    );
    // Nothing of the failed registration remains.
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.users, 1);
    assert_eq!(templates_of(&**store, &model.id).await, 1);
}

pub async fn model_isolation(store: &Arc<dyn FaceStore>) {
    let mut rng = Rng::new(4);
    let a = ModelKey::new("model_a", 8, Metric::Euclidean);
    let b = ModelKey::new("model_b", 8, Metric::Euclidean);
    let wide = ModelKey::new("model_wide", 512, Metric::Cosine);
    let va = rng.vector(8);
    let ua = store
        .create_user(NewUser::named("only a"), &a, &[tpl(va.clone())])
        .await
        .unwrap();
    let ub = store
        .create_user(NewUser::named("only b"), &b, &[tpl(rng.vector(8))])
        .await
        .unwrap();
    store
        .add_templates(ua.id, &wide, &[tpl(rng.vector(512))], usize::MAX, None)
        .await
        .unwrap();

    // The exact vector stored under model a is invisible to model b searches.
    let in_b = store.search(&b, &va, 10).await.unwrap();
    assert_eq!(
        in_b.iter().map(|m| m.user_id).collect::<Vec<_>>(),
        vec![ub.id]
    );
    let in_a = store.search(&a, &va, 10).await.unwrap();
    assert_eq!(in_a.len(), 1);
    assert_eq!(in_a[0].user_id, ua.id);
    assert!(in_a[0].distance.abs() < 1e-5);
    let in_wide = store.search(&wide, &rng.vector(512), 10).await.unwrap();
    assert_eq!(
        in_wide.iter().map(|m| m.user_id).collect::<Vec<_>>(),
        vec![ua.id]
    );

    // A model id keeps its shape forever.
    let a_reshaped = ModelKey::new("model_a", 16, Metric::Euclidean);
    assert_conflict(
        store
            .create_user(NewUser::named("x"), &a_reshaped, &[tpl(rng.vector(16))])
            .await,
        "same model id, other dimension",
    );
    let a_cosine = ModelKey::new("model_a", 8, Metric::Cosine);
    assert_conflict(
        store
            .add_templates(ua.id, &a_cosine, &[tpl(rng.vector(8))], usize::MAX, None)
            .await,
        "same model id, other metric",
    );
    assert_conflict(
        store.search(&a_reshaped, &rng.vector(16), 3).await,
        "search with other dimension",
    );
    // Wrong query length for the model: bad data.
    assert_bad(store.search(&a, &rng.vector(9), 3).await, "query dimension");

    let stats = store.stats().await.unwrap();
    assert_eq!(stats.users, 2);
    assert_eq!(
        stats.templates_by_model,
        vec![
            ("model_a".to_string(), 1),
            ("model_b".to_string(), 1),
            ("model_wide".to_string(), 1)
        ]
    );
}

/// Best template per user, ascending distance, ties by user id: the reference.
fn brute_force(
    metric: Metric,
    stored: &[(UserId, Vec<f32>)],
    query: &[f32],
    k: usize,
) -> Vec<(UserId, f32)> {
    let mut best: HashMap<UserId, f32> = HashMap::new();
    for (u, v) in stored {
        let d = match metric {
            Metric::Euclidean => v
                .iter()
                .zip(query)
                .map(|(a, b)| f64::from(a - b).powi(2))
                .sum::<f64>()
                .sqrt() as f32,
            Metric::Cosine => {
                let dot: f64 = v
                    .iter()
                    .zip(query)
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum();
                let na: f64 = v.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
                let nb: f64 = query
                    .iter()
                    .map(|a| f64::from(*a).powi(2))
                    .sum::<f64>()
                    .sqrt();
                (1.0 - dot / (na * nb)) as f32
            }
        };
        let e = best.entry(*u).or_insert(f32::INFINITY);
        if d < *e {
            *e = d;
        }
    }
    let mut ranked: Vec<(UserId, f32)> = best.into_iter().collect();
    ranked.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    ranked.truncate(k);
    ranked
}

async fn top_k_against_reference(store: &dyn FaceStore, model: ModelKey, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut stored = Vec::new();
    for i in 0..150 {
        let n = 1 + rng.below(3) as usize;
        let base = rng.vector(model.dimension);
        let vs: Vec<Vec<f32>> = (0..n).map(|_| rng.near(&base, 0.05)).collect();
        let user = store
            .create_user(
                NewUser::named(format!("user {i}")),
                &model,
                &vs.iter().cloned().map(tpl).collect::<Vec<_>>(),
            )
            .await
            .unwrap();
        stored.extend(vs.into_iter().map(|v| (user.id, v)));
    }
    for q in 0..20 {
        // Half near-duplicates of stored templates, half random probes.
        let query = if q % 2 == 0 {
            let (_, v) = &stored[rng.below(stored.len() as u64) as usize];
            rng.near(v, 0.02)
        } else {
            rng.vector(model.dimension)
        };
        for k in [1usize, 5, 10] {
            let got: Vec<Match> = store.search(&model, &query, k).await.unwrap();
            let want = brute_force(model.metric, &stored, &query, k);
            assert_eq!(
                got.iter().map(|m| m.user_id).collect::<Vec<_>>(),
                want.iter().map(|w| w.0).collect::<Vec<_>>(),
                "query {q}, k {k}: users in order"
            );
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g.distance - w.1).abs() < 1e-4,
                    "distance {} vs {}",
                    g.distance,
                    w.1
                );
            }
            assert!(got.windows(2).all(|p| p[0].distance <= p[1].distance));
        }
    }
}

pub async fn top_k_matches_brute_force_euclidean(store: &Arc<dyn FaceStore>) {
    top_k_against_reference(&**store, dlib(), 5).await;
}

pub async fn top_k_matches_brute_force_cosine(store: &Arc<dyn FaceStore>) {
    top_k_against_reference(
        &**store,
        ModelKey::new("arcface_r100", 512, Metric::Cosine),
        6,
    )
    .await;
}

pub async fn distance_to_one_user(store: &Arc<dyn FaceStore>) {
    // 1:1 verification: the closest of one user's templates, that model only.
    let model = ModelKey::new("verify", 3, Metric::Euclidean);
    let other_model = ModelKey::new("verify_other", 3, Metric::Euclidean);
    let alice = store
        .create_user(
            NewUser::named("alice"),
            &model,
            &[tpl(vec![1.0, 0.0, 0.0]), tpl(vec![0.0, 1.0, 0.0])],
        )
        .await
        .unwrap();
    let bob = store
        .create_user(NewUser::named("bob"), &model, &[tpl(vec![0.0, 0.0, 0.1])])
        .await
        .unwrap();
    let d = store
        .distance_to_user(alice.id, &model, &[0.0, 0.0, 0.0])
        .await
        .unwrap()
        .unwrap();
    // Bob's template is closer to the query, but only Alice's count; both
    // of hers were compared.
    assert!((d.distance - 1.0).abs() < 1e-5, "{d:?}");
    assert_eq!(d.templates, 2);
    let d = store
        .distance_to_user(alice.id, &model, &[0.0, 0.9, 0.0])
        .await
        .unwrap()
        .unwrap();
    assert!((d.distance - 0.1).abs() < 1e-5, "{d:?}");
    let d = store
        .distance_to_user(bob.id, &model, &[0.0, 0.0, 0.0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.templates, 1);
    assert_eq!(
        store
            .distance_to_user(bob.id, &other_model, &[0.0, 0.0, 0.0])
            .await
            .unwrap(),
        None
    );
    assert_not_found(
        store
            .distance_to_user(i64::MAX, &model, &[0.0, 0.0, 0.0])
            .await,
        "distance to a missing user",
    );
}

pub async fn templates_listed_capped_and_deleted(store: &Arc<dyn FaceStore>) {
    let model = ModelKey::new("faces", 3, Metric::Euclidean);
    let other = ModelKey::new("faces_other", 3, Metric::Euclidean);
    let alice = store
        .create_user(
            NewUser::named("alice"),
            &model,
            &[tpl(vec![1.0, 0.0, 0.0]), tpl(vec![0.0, 1.0, 0.0])],
        )
        .await
        .unwrap();
    // The cap counts templates of one model, inside the write.
    let err = store
        .add_templates(alice.id, &model, &[tpl(vec![0.0, 0.0, 1.0])], 2, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::TemplateLimit {
                limit: 2,
                existing: 2
            }
        ),
        "{err:?}"
    );
    let added = store
        .add_templates(alice.id, &model, &[tpl(vec![0.0, 0.0, 1.0])], 3, None)
        .await
        .unwrap();
    store
        .add_templates(alice.id, &other, &[tpl(vec![0.5, 0.5, 0.0])], 1, None)
        .await
        .unwrap();
    let listed = store.templates_of(alice.id).await.unwrap();
    assert_eq!(listed.len(), 4);
    assert!(listed.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(listed.iter().filter(|t| t.model_id == "faces").count(), 3);
    assert!(listed.iter().all(|t| (t.quality - 0.9).abs() < 1e-6));
    assert_eq!(listed[2].id, added[0]);

    // Deleting a template takes it out of search and verification at once.
    let hits = store.search(&model, &[0.0, 0.0, 1.0], 1).await.unwrap();
    assert_eq!(hits[0].template_id, added[0]);
    store.delete_template(alice.id, added[0]).await.unwrap();
    let hits = store.search(&model, &[0.0, 0.0, 1.0], 1).await.unwrap();
    assert_ne!(hits[0].template_id, added[0]);
    let d = store
        .distance_to_user(alice.id, &model, &[0.0, 0.0, 1.0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.templates, 2);
    assert!((d.distance - 2f32.sqrt()).abs() < 1e-5, "{d:?}");
    assert_eq!(store.templates_of(alice.id).await.unwrap().len(), 3);
    assert_eq!(store.get_user(alice.id).await.unwrap().template_count, 3);

    // Another user's template, a deleted one, a missing user: not found.
    let bob = store
        .create_user(NewUser::named("bob"), &model, &[tpl(vec![9.0, 9.0, 9.0])])
        .await
        .unwrap();
    let bobs = store.templates_of(bob.id).await.unwrap()[0].id;
    assert_not_found(
        store.delete_template(alice.id, bobs).await,
        "another user's template",
    );
    assert_not_found(
        store.delete_template(alice.id, added[0]).await,
        "a deleted template",
    );
    assert_not_found(
        store.templates_of(i64::MAX).await.map(|_| ()),
        "templates of a missing user",
    );
    assert_eq!(store.templates_of(bob.id).await.unwrap().len(), 1);
}

pub async fn unique_creation_is_checked_inside_the_write(store: &Arc<dyn FaceStore>) {
    let model = ModelKey::new("unique", 3, Metric::Euclidean);
    let alice = store
        .create_user(NewUser::named("alice"), &model, &[tpl(vec![1.0, 0.0, 0.0])])
        .await
        .unwrap();
    // Close to Alice: refused, naming her; far from her: created.
    let err = store
        .create_unique_user(
            NewUser::named("twin"),
            &model,
            &[tpl(vec![1.0, 0.1, 0.0])],
            0.5,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Duplicate { user_id } if user_id == alice.id),
        "{err:?}"
    );
    store
        .create_unique_user(
            NewUser::named("bob"),
            &model,
            &[tpl(vec![0.0, 0.0, 1.0])],
            0.5,
        )
        .await
        .unwrap();
    // Adding: a user's own templates do not count, another's do.
    store
        .add_templates(alice.id, &model, &[tpl(vec![1.0, 0.0, 0.1])], 10, Some(0.5))
        .await
        .unwrap();
    let err = store
        .add_templates(alice.id, &model, &[tpl(vec![0.0, 0.1, 1.0])], 10, Some(0.5))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate { .. }), "{err:?}");
    // Ten concurrent creations of one new face: exactly one is stored.
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = Arc::clone(store);
            let model = model.clone();
            tokio::spawn(async move {
                store
                    .create_unique_user(
                        NewUser::named(format!("carol {i}")),
                        &model,
                        &[tpl(vec![0.0, 1.0, 0.0])],
                        0.5,
                    )
                    .await
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => created += 1,
            Err(StoreError::Duplicate { .. }) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(created, 1);
    // Without the check, a duplicate is stored as asked.
    store
        .create_user(
            NewUser::named("carol twin"),
            &model,
            &[tpl(vec![0.0, 1.0, 0.0])],
        )
        .await
        .unwrap();
}

pub async fn best_template_per_user(store: &Arc<dyn FaceStore>) {
    // One user with many templates near the query must not crowd out others.
    let model = ModelKey::new("crowd", 4, Metric::Euclidean);
    let crowd = store
        .create_user(
            NewUser::named("crowd"),
            &model,
            &(0..200)
                .map(|i| tpl(vec![i as f32 * 1e-4, 0.0, 0.0, 0.0]))
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let mut others = Vec::new();
    for i in 0..5 {
        let u = store
            .create_user(
                NewUser::named(format!("other {i}")),
                &model,
                &[tpl(vec![1.0 + i as f32, 0.0, 0.0, 0.0])],
            )
            .await
            .unwrap();
        others.push(u.id);
    }
    let hits = store
        .search(&model, &[0.0, 0.0, 0.0, 0.0], 4)
        .await
        .unwrap();
    let ids: Vec<UserId> = hits.iter().map(|m| m.user_id).collect();
    assert_eq!(ids, vec![crowd.id, others[0], others[1], others[2]]);
    assert!(hits[0].distance.abs() < 1e-6);
    assert!((hits[1].distance - 1.0).abs() < 1e-5);
    assert_eq!(hits[0].name, "crowd");
}

pub async fn concurrent_inserts(store: &Arc<dyn FaceStore>) {
    // Many tokio tasks, each registering users on the shared store.
    let model = dlib();
    let tasks = 16;
    let per_task = 20;
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let store = Arc::clone(store);
        let model = model.clone();
        set.spawn(async move {
            let mut rng = Rng::new(100 + t as u64);
            let mut ids = Vec::new();
            for i in 0..per_task {
                let u = store
                    .create_user(
                        NewUser::named(format!("task {t} user {i}")),
                        &model,
                        &[tpl(rng.vector(128)), tpl(rng.vector(128))],
                    )
                    .await
                    .unwrap();
                ids.push(u.id);
            }
            ids
        });
    }
    let mut ids = HashSet::new();
    while let Some(r) = set.join_next().await {
        ids.extend(r.unwrap());
    }
    assert_eq!(ids.len(), tasks * per_task, "every insert got its own id");
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.users, (tasks * per_task) as i64);
    assert_eq!(
        templates_of(&**store, &model.id).await,
        (tasks * per_task * 2) as i64
    );
    let mut seen = Vec::new();
    let mut page = Page::first(64);
    loop {
        let users = store.list_users(page).await.unwrap();
        let Some(last) = users.last() else { break };
        page = Page::after(last.id, 64);
        seen.extend(users.iter().map(|u| u.id));
    }
    assert_eq!(seen.len(), tasks * per_task);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
}

/// The first enrolments under a new model, all at once: the model is
/// registered once and every enrolment succeeds. (PostgreSQL once answered
/// one of them with the `UNIQUE (id, dimension)` violation, because the
/// registration's `ON CONFLICT (id)` did not cover that constraint.)
pub async fn first_use_of_a_model_races(store: &Arc<dyn FaceStore>) {
    let tasks = 12;
    for round in 0..15u64 {
        let model = ModelKey::new(format!("race_model_{round}"), 16, Metric::Cosine);
        let start = Arc::new(tokio::sync::Barrier::new(tasks));
        let mut set = tokio::task::JoinSet::new();
        for t in 0..tasks {
            let (store, model, start) = (Arc::clone(store), model.clone(), Arc::clone(&start));
            set.spawn(async move {
                let mut rng = Rng::new(round * 100 + t as u64);
                start.wait().await;
                store
                    .create_user(
                        NewUser::named(format!("round {round} task {t}")),
                        &model,
                        &[tpl(rng.vector(16))],
                    )
                    .await
                    .map(|u| u.id)
            });
        }
        while let Some(r) = set.join_next().await {
            if let Err(e) = r.unwrap() {
                panic!("round {round}: a first enrolment under a new model failed: {e:?}");
            }
        }
        assert_eq!(templates_of(&**store, &model.id).await, tasks as i64);
    }
}

/// Users found by a part of their name (case-insensitive, matched
/// literally) and by their external reference.
pub async fn users_found_by_name_and_reference(store: &Arc<dyn FaceStore>) {
    use face_store::UserFilter;
    let model = dlib();
    let mut rng = Rng::new(77);
    let mut ids = HashMap::new();
    for (name, reference) in [
        ("Ada Lovelace", Some("emp-1")),
        ("ada king", None),
        ("Grace Hopper", Some("emp-2")),
        ("100%_sure", None),
    ] {
        let user = NewUser {
            name: name.into(),
            external_ref: reference.map(Into::into),
            metadata: None,
        };
        let u = store
            .create_user(user, &model, &[tpl(rng.vector(128))])
            .await
            .unwrap();
        ids.insert(name, u.id);
    }
    let find = |name: Option<&str>, reference: Option<&str>, page: Page| {
        let store = Arc::clone(store);
        let filter = UserFilter {
            name_contains: name.map(Into::into),
            external_ref: reference.map(Into::into),
        };
        async move {
            let users = store.find_users(&filter, page).await.unwrap();
            users.into_iter().map(|u| u.name).collect::<Vec<_>>()
        }
    };
    let all = Page::first(10);
    assert_eq!(
        find(Some("ADA"), None, all).await,
        ["Ada Lovelace", "ada king"]
    );
    assert_eq!(
        find(Some("%"), None, all).await,
        ["100%_sure"],
        "no wildcards"
    );
    assert_eq!(
        find(Some("_"), None, all).await,
        ["100%_sure"],
        "no wildcards"
    );
    assert_eq!(find(None, Some("emp-2"), all).await, ["Grace Hopper"]);
    assert!(
        find(None, Some("emp-"), all).await.is_empty(),
        "exact reference"
    );
    assert!(
        find(Some("Grace"), Some("emp-1"), all).await.is_empty(),
        "both"
    );
    assert_eq!(find(None, None, all).await.len(), 4);
    // Paged like the listing.
    let first = find(Some("a"), None, Page::first(1)).await;
    assert_eq!(first, ["Ada Lovelace"]);
    let next = find(Some("a"), None, Page::after(ids["Ada Lovelace"], 1)).await;
    assert_eq!(next, ["ada king"]);
}

/// The users with failures counted or verification disabled, listed for
/// an administrator.
pub async fn failing_lockouts_are_listed(store: &Arc<dyn FaceStore>) {
    let model = dlib();
    let mut rng = Rng::new(78);
    let mut users = Vec::new();
    for name in ["failing", "disabled", "fine"] {
        let u = store
            .create_user(NewUser::named(name), &model, &[tpl(rng.vector(128))])
            .await
            .unwrap();
        users.push(u.id);
    }
    let set = |user, failures, disabled| {
        let store = Arc::clone(store);
        async move {
            store
                .update_lockout(
                    user,
                    Arc::new(move |_, _| face_store::Lockout {
                        failures,
                        disabled,
                        ..Default::default()
                    }),
                )
                .await
                .unwrap();
        }
    };
    set(users[0], 3, false).await;
    set(users[1], 10, true).await;
    set(users[2], 0, false).await;
    let listed = store.failing_lockouts(10).await.unwrap();
    let summary: Vec<_> = listed
        .iter()
        .map(|(u, l)| (*u, l.failures, l.disabled))
        .collect();
    assert_eq!(summary, [(users[0], 3, false), (users[1], 10, true)]);
    assert_eq!(store.failing_lockouts(1).await.unwrap().len(), 1);
    store.reset_lockout(users[1]).await.unwrap();
    let listed = store.failing_lockouts(10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, users[0]);
}

pub async fn pagination_is_stable(store: &Arc<dyn FaceStore>) {
    let model = dlib();
    let mut rng = Rng::new(7);
    let mut ids = Vec::new();
    for i in 0..25 {
        let u = store
            .create_user(
                NewUser::named(format!("p{i}")),
                &model,
                &[tpl(rng.vector(128))],
            )
            .await
            .unwrap();
        ids.push(u.id);
    }
    // Walk in pages of 7 while deleting and inserting behind the cursor.
    let mut seen = Vec::new();
    let mut page = Page::first(7);
    let mut round = 0;
    loop {
        let users = store.list_users(page).await.unwrap();
        assert!(users.len() <= 7);
        let Some(last) = users.last() else { break };
        seen.extend(users.iter().map(|u| u.id));
        page = Page::after(last.id, 7);
        if round == 0 {
            store.delete_user(ids[0]).await.unwrap(); // already seen
            store.delete_user(ids[20]).await.unwrap(); // not yet seen
        }
        round += 1;
    }
    let mut expected: Vec<UserId> = ids.clone();
    expected.retain(|id| *id != ids[20]);
    assert_eq!(
        seen, expected,
        "each remaining user exactly once, ascending"
    );
    // Limits are clamped, never unbounded.
    let all = store.list_users(Page::first(usize::MAX)).await.unwrap();
    assert_eq!(all.len(), 23);
    assert!(store.list_users(Page::first(0)).await.unwrap().is_empty());
    let beyond = store
        .list_users(Page::after(*ids.last().unwrap(), 10))
        .await
        .unwrap();
    assert!(beyond.is_empty());
}

pub async fn users_without_model(store: &Arc<dyn FaceStore>) {
    let mut rng = Rng::new(8);
    let old = dlib();
    let new = ModelKey::new("arcface_r100", 512, Metric::Cosine);
    let a = store
        .create_user(NewUser::named("a"), &old, &[tpl(rng.vector(128))])
        .await
        .unwrap();
    let b = store
        .create_user(NewUser::named("b"), &old, &[tpl(rng.vector(128))])
        .await
        .unwrap();
    let c = store
        .create_user(NewUser::named("c"), &new, &[tpl(rng.vector(512))])
        .await
        .unwrap();
    store
        .add_templates(a.id, &new, &[tpl(rng.vector(512))], usize::MAX, None)
        .await
        .unwrap();
    let missing: Vec<UserId> = store
        .users_without_model(&new, Page::first(10))
        .await
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(missing, vec![b.id]);
    let missing_old: Vec<UserId> = store
        .users_without_model(&old, Page::first(10))
        .await
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(missing_old, vec![c.id]);
}

pub async fn hostile_and_unicode_names(store: &Arc<dyn FaceStore>) {
    let model = dlib();
    let mut rng = Rng::new(9);
    let accepted = [
        "Zoë Ångström-Łukasiewicz",
        "李小龍",
        "محمد بن موسى",
        "😀 emoji 👩‍👩‍👧",
        "O'Brien \"the quote\" `tick`",
        "Robert'); DROP TABLE users;--",
        "' OR '1'='1",
        "\\x00 literally backslash-x-zero",
        "$1 $$ dollar $tag$ quoting",
        "%_ like wildcards",
    ];
    for name in accepted {
        let u = store
            .create_user(
                NewUser {
                    name: name.to_string(),
                    external_ref: Some(format!("ref:{name}")),
                    metadata: Some(json!({ "note": name, name: [name] })),
                },
                &model,
                &[tpl(rng.vector(128))],
            )
            .await
            .unwrap_or_else(|e| panic!("{name:?} rejected: {e}"));
        let got = store.get_user(u.id).await.unwrap();
        assert_eq!(got.name, name);
        assert_eq!(
            got.external_ref.as_deref(),
            Some(format!("ref:{name}").as_str())
        );
        assert_eq!(got.metadata, Some(json!({ "note": name, name: [name] })));
    }
    // Long but within bounds: 4000 bytes round-trip.
    let long = "é".repeat(2000);
    let u = store
        .create_user(
            NewUser::named(long.clone()),
            &model,
            &[tpl(rng.vector(128))],
        )
        .await
        .unwrap();
    assert_eq!(store.get_user(u.id).await.unwrap().name, long);

    let users_before = store.stats().await.unwrap().users;
    let t = [tpl(rng.vector(128))];
    assert_bad(
        store
            .create_user(NewUser::named("x".repeat(10 * 1024)), &model, &t)
            .await,
        "10 kB name",
    );
    assert_bad(
        store
            .create_user(NewUser::named("nul\0byte"), &model, &t)
            .await,
        "NUL in name",
    );
    assert_bad(
        store.create_user(NewUser::named(""), &model, &t).await,
        "empty name",
    );
    assert_bad(
        store.create_user(NewUser::named("   "), &model, &t).await,
        "blank name",
    );
    assert_bad(
        store
            .create_user(NewUser::named("bell\u{7}"), &model, &t)
            .await,
        "control character",
    );
    let mut with_ref = NewUser::named("ok");
    with_ref.external_ref = Some("ref\0".into());
    assert_bad(
        store.create_user(with_ref, &model, &t).await,
        "NUL in external_ref",
    );
    let mut with_meta = NewUser::named("ok");
    with_meta.metadata = Some(json!({"k": "v\u{0}"}));
    assert_bad(
        store.create_user(with_meta, &model, &t).await,
        "NUL in metadata",
    );
    let mut big_meta = NewUser::named("ok");
    big_meta.metadata = Some(json!({"blob": "x".repeat(100 * 1024)}));
    assert_bad(
        store.create_user(big_meta, &model, &t).await,
        "oversized metadata",
    );
    assert_eq!(
        store.stats().await.unwrap().users,
        users_before,
        "rejected users left no rows"
    );

    // Names are data, never SQL: the tables are intact.
    let users = store.list_users(Page::first(100)).await.unwrap();
    assert_eq!(users.len(), accepted.len() + 1);
}

pub async fn bad_embeddings_rejected(store: &Arc<dyn FaceStore>) {
    let model = dlib();
    let mut rng = Rng::new(10);
    let ok = store
        .create_user(NewUser::named("ok"), &model, &[tpl(rng.vector(128))])
        .await
        .unwrap();
    let mut nan = rng.vector(128);
    nan[5] = f32::NAN;
    let mut inf = rng.vector(128);
    inf[0] = f32::INFINITY;
    for (what, v) in [
        ("NaN", nan),
        ("infinity", inf),
        ("too short", rng.vector(127)),
        ("too long", rng.vector(129)),
        ("empty", Vec::new()),
    ] {
        assert_bad(
            store
                .create_user(NewUser::named("x"), &model, &[tpl(v.clone())])
                .await,
            what,
        );
        assert_bad(
            store
                .add_templates(ok.id, &model, &[tpl(v)], usize::MAX, None)
                .await,
            what,
        );
    }
    assert_bad(
        store.create_user(NewUser::named("x"), &model, &[]).await,
        "no templates",
    );
    assert_bad(
        store
            .create_user(
                NewUser::named("x"),
                &model,
                &[NewTemplate {
                    embedding: rng.vector(128),
                    quality: f32::NAN,
                }],
            )
            .await,
        "NaN quality",
    );
    // A bad template among good ones: nothing is stored.
    let mut bad = rng.vector(128);
    bad[1] = f32::NEG_INFINITY;
    assert_bad(
        store
            .add_templates(
                ok.id,
                &model,
                &[tpl(rng.vector(128)), tpl(bad)],
                usize::MAX,
                None,
            )
            .await,
        "mixed batch",
    );
    let cosine = ModelKey::new("cos", 4, Metric::Cosine);
    assert_bad(
        store
            .create_user(NewUser::named("x"), &cosine, &[tpl(vec![0.0; 4])])
            .await,
        "zero vector under cosine",
    );
    for bad_model in [
        ModelKey::new("", 128, Metric::Euclidean),
        ModelKey::new("bad'id", 128, Metric::Euclidean),
        ModelKey::new("zero_dim", 0, Metric::Euclidean),
        ModelKey::new("huge_dim", 100_000, Metric::Euclidean),
    ] {
        assert_bad(
            store
                .search(&bad_model, &vec![0.5; bad_model.dimension], 1)
                .await,
            "bad model key",
        );
    }
    let mut q = rng.vector(128);
    q[3] = f32::NAN;
    assert_bad(store.search(&model, &q, 1).await, "NaN query");
    assert_eq!(store.get_user(ok.id).await.unwrap().template_count, 1);
    assert_eq!(store.stats().await.unwrap().users, 1);
}

pub async fn search_edge_cases(store: &Arc<dyn FaceStore>) {
    let model = dlib();
    let mut rng = Rng::new(11);
    let q = rng.vector(128);
    assert!(
        store.search(&model, &q, 5).await.unwrap().is_empty(),
        "empty store"
    );
    let unknown = ModelKey::new("never_used", 128, Metric::Euclidean);
    assert!(store.search(&unknown, &q, 5).await.unwrap().is_empty());
    for i in 0..3 {
        store
            .create_user(
                NewUser::named(format!("u{i}")),
                &model,
                &[tpl(rng.vector(128))],
            )
            .await
            .unwrap();
    }
    assert!(
        store.search(&model, &q, 0).await.unwrap().is_empty(),
        "k = 0"
    );
    assert_eq!(
        store.search(&model, &q, 50).await.unwrap().len(),
        3,
        "k > users"
    );
    assert_bad(store.search(&model, &q, 1_000_000).await, "huge k");
}

pub async fn health_ok(store: &Arc<dyn FaceStore>) {
    store.health().await.unwrap();
}

fn key(name: &str, prefix: &str, scopes: &[&str]) -> face_store::NewApiKey {
    face_store::NewApiKey {
        name: name.into(),
        prefix: prefix.into(),
        secret_hash: [7u8; 32],
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    }
}

pub async fn api_keys_round_trip(store: &Arc<dyn FaceStore>) {
    let a = store
        .create_api_key(key("kiosk", "abc123", &["recognize"]))
        .await
        .unwrap();
    assert_eq!(a.scopes, vec!["recognize".to_string()]);
    assert!(a.revoked_at.is_none());
    let b = store
        .create_api_key(key("admin", "def456", &["admin", "enrol"]))
        .await
        .unwrap();
    assert!(b.id > a.id);
    assert_conflict(
        store.create_api_key(key("again", "abc123", &[])).await,
        "duplicate prefix",
    );
    assert_bad(
        store.create_api_key(key("x", "no spaces", &[])).await,
        "prefix",
    );
    assert_bad(store.create_api_key(key("", "p1", &[])).await, "empty name");
    assert_bad(
        store.create_api_key(key("x", "p2", &["Bad,Scope"])).await,
        "scope",
    );

    let found = store.api_key_by_prefix("def456").await.unwrap().unwrap();
    assert_eq!(found.id, b.id);
    assert_eq!(found.secret_hash, vec![7u8; 32]);
    assert_eq!(found.scopes, vec!["admin".to_string(), "enrol".to_string()]);
    assert!(store.api_key_by_prefix("nope").await.unwrap().is_none());

    store.revoke_api_key(a.id).await.unwrap();
    store.revoke_api_key(a.id).await.unwrap(); // idempotent
    let revoked = store.api_key_by_prefix("abc123").await.unwrap().unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_not_found(store.revoke_api_key(999_999).await, "revoke unknown");
    let all = store.list_api_keys().await.unwrap();
    assert_eq!(
        all.iter().map(|k| k.id).collect::<Vec<_>>(),
        vec![a.id, b.id]
    );
}

pub async fn lockout_counts_and_resets(store: &Arc<dyn FaceStore>) {
    let model = dlib();
    let mut rng = Rng::new(9);
    let user = store
        .create_user(
            NewUser {
                name: "Locked".into(),
                external_ref: None,
                metadata: None,
            },
            &model,
            &[tpl(rng.vector(128))],
        )
        .await
        .unwrap();
    assert_eq!(store.lockout(user.id).await.unwrap(), Default::default());
    // The update sees the stored state and the store's clock, and what it
    // returns is stored as a whole.
    let before_call = chrono::Utc::now() - chrono::Duration::seconds(5);
    let change = store
        .update_lockout(
            user.id,
            std::sync::Arc::new(|s, now| face_store::Lockout {
                failures: s.failures + 3,
                locked_until: Some(now + chrono::Duration::seconds(30)),
                disabled: false,
                pending: 2,
                pending_since: Some(now),
            }),
        )
        .await
        .unwrap();
    assert_eq!(change.before, Default::default());
    assert!(change.now > before_call, "{change:?}");
    let stored = store.lockout(user.id).await.unwrap();
    assert_eq!(stored, change.after);
    assert_eq!((stored.failures, stored.pending), (3, 2));
    let until = stored.locked_until.unwrap();
    assert!((until - change.now).num_seconds() == 30, "{stored:?}");
    // Concurrent updates of one user are serialised: none is lost.
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let store = Arc::clone(store);
            let id = user.id;
            tokio::spawn(async move {
                store
                    .update_lockout(
                        id,
                        std::sync::Arc::new(|s, _| face_store::Lockout {
                            failures: s.failures + 1,
                            ..*s
                        }),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.lockout(user.id).await.unwrap().failures, 43);
    store.reset_lockout(user.id).await.unwrap();
    assert_eq!(store.lockout(user.id).await.unwrap(), Default::default());
    assert_not_found(
        store
            .update_lockout(999_999, std::sync::Arc::new(|s, _| *s))
            .await,
        "lockout of an unknown user",
    );
    // Deleting the user deletes the lockout row with it.
    store
        .update_lockout(
            user.id,
            std::sync::Arc::new(|s, _| face_store::Lockout { failures: 1, ..*s }),
        )
        .await
        .unwrap();
    store.delete_user(user.id).await.unwrap();
    assert_eq!(store.lockout(user.id).await.unwrap(), Default::default());
}

pub async fn audit_log_filters_and_pages(store: &Arc<dyn FaceStore>) {
    let event = |action: &str, user: Option<i64>| face_store::NewAuditEvent {
        key_id: Some(1),
        client: Some("127.0.0.1".into()),
        action: action.into(),
        outcome: "ok".into(),
        user_id: user,
        distance: Some(0.25),
        detail: None,
        liveness_score: (action == "verify").then_some(0.75),
    };
    let start = chrono::Utc::now() - chrono::Duration::seconds(1);
    for i in 0..5 {
        store
            .append_audit(event("verify", Some(if i % 2 == 0 { 10 } else { 11 })))
            .await
            .unwrap();
    }
    store.append_audit(event("identify", None)).await.unwrap();
    let q = |user_id, before, limit| face_store::AuditQuery {
        user_id,
        since: None,
        until: None,
        before,
        limit,
    };
    let all = store.list_audit(q(None, None, 100)).await.unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert_eq!(all[0].action, "identify");
    assert_eq!(all[1].distance, Some(0.25));
    assert_eq!(all[1].liveness_score, Some(0.75));
    assert_eq!(all[0].liveness_score, None);
    assert_eq!(all[1].client.as_deref(), Some("127.0.0.1"));
    let of_10 = store.list_audit(q(Some(10), None, 100)).await.unwrap();
    assert_eq!(of_10.len(), 3);
    let page1 = store.list_audit(q(None, None, 4)).await.unwrap();
    let page2 = store
        .list_audit(q(None, Some(page1[3].id), 4))
        .await
        .unwrap();
    assert_eq!(page1.len() + page2.len(), 6);
    let mut since = q(None, None, 100);
    since.since = Some(start);
    assert_eq!(store.list_audit(since).await.unwrap().len(), 6);
    since.since = Some(chrono::Utc::now() + chrono::Duration::seconds(60));
    assert!(store.list_audit(since).await.unwrap().is_empty());
    let mut until = q(None, None, 100);
    until.until = Some(start);
    assert!(store.list_audit(until).await.unwrap().is_empty());
    assert_bad(store.list_audit(q(None, None, 0)).await, "limit 0");
    let mut hostile = event("verify\n", None);
    assert_bad(store.append_audit(hostile.clone()).await, "control char");
    hostile.action = "verify".into();
    hostile.distance = Some(f32::NAN);
    assert_bad(store.append_audit(hostile.clone()).await, "NaN distance");
    hostile.distance = None;
    hostile.liveness_score = Some(f32::INFINITY);
    assert_bad(store.append_audit(hostile).await, "infinite liveness score");
}

pub async fn liveness_sessions_and_tokens(store: &Arc<dyn FaceStore>) {
    use face_store::liveness::{NewLivenessSession, NewLivenessToken};
    let mut rng = Rng::new(21);
    let user = store
        .create_user(NewUser::named("Live"), &dlib(), &[tpl(rng.vector(128))])
        .await
        .unwrap();
    let other = store
        .create_user(NewUser::named("Other"), &dlib(), &[tpl(rng.vector(128))])
        .await
        .unwrap();
    let session = |id: &str, user_id: Option<i64>, ttl_secs: u32| NewLivenessSession {
        id: id.into(),
        purpose: if user_id.is_some() { "verify" } else { "enrol" }.into(),
        user_id,
        key_id: Some(7),
        challenge: json!({"steps": ["turn_left", "turn_right"]}),
        ttl_secs,
    };
    let token = |byte: u8| NewLivenessToken {
        token_hash: [byte; 32],
        model_id: "dlib_resnet_v1".into(),
        embedding: vec![0.25, -0.5, 1.0],
        ttl_secs: 120,
    };
    let created = store
        .create_liveness_session(session("session0000000001", Some(user.id), 60))
        .await
        .unwrap();
    assert_eq!(created.outcome, None);
    assert!(created.expires_at > created.created_at);
    assert_eq!(
        store.liveness_session("session0000000001").await.unwrap(),
        Some(created.clone()),
        "a session reads back as it was created"
    );
    assert_eq!(
        store.liveness_session("nosuchsession000").await.unwrap(),
        None
    );
    match store
        .create_liveness_session(session("session0000000001", None, 60))
        .await
    {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("a second session with the id: {other:?}"),
    }
    assert_not_found(
        store
            .create_liveness_session(session("session0000000002", Some(999_999), 60))
            .await,
        "a session for an unknown user",
    );
    assert_bad(
        store
            .create_liveness_session(session("short", Some(user.id), 60))
            .await,
        "a short id",
    );
    assert_bad(
        store
            .finish_liveness_session("session0000000001", "passed", None)
            .await,
        "a pass without a token",
    );

    // Finished once: the second outcome is refused and writes nothing.
    assert!(store
        .finish_liveness_session("session0000000001", "passed", Some(token(1)))
        .await
        .unwrap());
    assert!(!store
        .finish_liveness_session("session0000000001", "wrong_direction", None)
        .await
        .unwrap());
    assert_eq!(
        store
            .liveness_session("session0000000001")
            .await
            .unwrap()
            .unwrap()
            .outcome
            .as_deref(),
        Some("passed")
    );

    // Redeemed once, by its key, for its user.
    let redeem = |hash: u8, key: Option<i64>, user_id: Option<i64>| {
        let store = Arc::clone(store);
        async move {
            store
                .redeem_liveness_token([hash; 32], key, user_id)
                .await
                .unwrap()
        }
    };
    assert_eq!(redeem(1, Some(8), Some(user.id)).await, None, "another key");
    assert_eq!(redeem(1, None, Some(user.id)).await, None, "no key");
    assert_eq!(
        redeem(1, Some(7), Some(other.id)).await,
        None,
        "another user"
    );
    assert_eq!(
        redeem(2, Some(7), Some(user.id)).await,
        None,
        "an unknown token"
    );
    let redeemed = redeem(1, Some(7), Some(user.id)).await.unwrap();
    assert_eq!(redeemed.session_id, "session0000000001");
    assert_eq!(redeemed.embedding, vec![0.25, -0.5, 1.0]);
    assert_eq!(
        redeem(1, Some(7), Some(user.id)).await,
        None,
        "a second use"
    );

    // An enrol session's token is redeemed without a user, and only so;
    // a verify session's only with its user.
    store
        .create_liveness_session(session("session0000000007", None, 60))
        .await
        .unwrap();
    store
        .create_liveness_session(session("session0000000008", Some(user.id), 60))
        .await
        .unwrap();
    for (id, byte) in [("session0000000007", 7), ("session0000000008", 8)] {
        assert!(store
            .finish_liveness_session(id, "passed", Some(token(byte)))
            .await
            .unwrap());
    }
    assert_eq!(
        redeem(8, Some(7), None).await,
        None,
        "a verify token, no user"
    );
    assert_eq!(
        redeem(7, Some(7), Some(user.id)).await,
        None,
        "an enrol token, a user"
    );
    assert_eq!(
        redeem(7, Some(8), None).await,
        None,
        "an enrol token, another key"
    );
    let enrol = redeem(7, Some(7), None).await.unwrap();
    assert_eq!(enrol.session_id, "session0000000007");
    assert_eq!(
        redeem(7, Some(7), None).await,
        None,
        "an enrol token, again"
    );
    assert!(redeem(8, Some(7), Some(user.id)).await.is_some());

    // Concurrent redemptions of one token: exactly one wins.
    store
        .create_liveness_session(session("session0000000003", Some(user.id), 60))
        .await
        .unwrap();
    assert!(store
        .finish_liveness_session("session0000000003", "passed", Some(token(3)))
        .await
        .unwrap());
    let tries: Vec<_> = (0..8)
        .map(|_| tokio::spawn(redeem(3, Some(7), Some(user.id))))
        .collect();
    let mut won = 0;
    for t in tries {
        won += usize::from(t.await.unwrap().is_some());
    }
    assert_eq!(won, 1, "one of eight concurrent redemptions");

    // An expired session cannot be finished, an expired token not redeemed.
    store
        .create_liveness_session(session("session0000000004", None, 1))
        .await
        .unwrap();
    store
        .create_liveness_session(session("session0000000006", Some(user.id), 60))
        .await
        .unwrap();
    let short = NewLivenessToken {
        ttl_secs: 1,
        ..token(6)
    };
    assert!(store
        .finish_liveness_session("session0000000006", "passed", Some(short))
        .await
        .unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(!store
        .finish_liveness_session("session0000000004", "passed", Some(token(4)))
        .await
        .unwrap());
    assert_eq!(
        redeem(6, Some(7), Some(user.id)).await,
        None,
        "an expired token"
    );

    // Purging: the expired session goes, the open ones stay.
    assert!(store
        .liveness_session("session0000000004")
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.purge_liveness_sessions(3600).await.unwrap(), 0);
    assert_eq!(store.purge_liveness_sessions(0).await.unwrap(), 1);
    assert_eq!(
        store.liveness_session("session0000000004").await.unwrap(),
        None
    );
    assert!(store
        .liveness_session("session0000000006")
        .await
        .unwrap()
        .is_some());

    // Deleting the user deletes their sessions and tokens.
    store
        .create_liveness_session(session("session0000000005", Some(other.id), 60))
        .await
        .unwrap();
    assert!(store
        .finish_liveness_session("session0000000005", "passed", Some(token(5)))
        .await
        .unwrap());
    store.delete_user(other.id).await.unwrap();
    assert_eq!(
        store.liveness_session("session0000000005").await.unwrap(),
        None
    );
}

/// Stream tickets: redeemed once, for the key they were issued to;
/// expired, unknown and duplicate tickets refused; two concurrent
/// redemptions of one ticket, one winner.
pub async fn stream_tickets_redeemed_once(store: &Arc<dyn FaceStore>) {
    let h = |n: u8| [n; 32];
    store.create_stream_ticket(h(1), Some(7), 30).await.unwrap();
    store.create_stream_ticket(h(2), None, 30).await.unwrap();
    assert!(matches!(
        store.create_stream_ticket(h(1), Some(8), 30).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.redeem_stream_ticket(h(9)).await.unwrap(), None);
    assert_eq!(
        store.redeem_stream_ticket(h(1)).await.unwrap(),
        Some(Some(7))
    );
    assert_eq!(
        store.redeem_stream_ticket(h(1)).await.unwrap(),
        None,
        "single use"
    );
    assert_eq!(store.redeem_stream_ticket(h(2)).await.unwrap(), Some(None));
    // A ticket with no time left is refused.
    store.create_stream_ticket(h(3), Some(7), 0).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(store.redeem_stream_ticket(h(3)).await.unwrap(), None);
    // Racing redemptions: exactly one gets the key.
    store.create_stream_ticket(h(4), Some(7), 30).await.unwrap();
    let (a, b) = tokio::join!(
        store.redeem_stream_ticket(h(4)),
        store.redeem_stream_ticket(h(4))
    );
    let wins = [a.unwrap(), b.unwrap()]
        .iter()
        .filter(|r| r.is_some())
        .count();
    assert_eq!(wins, 1);
}
