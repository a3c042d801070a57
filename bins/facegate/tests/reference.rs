//! The reference service's documented bodies, checked by type against a
//! real server on both stores: a client written for the reference (FastAPI,
//! pgvector, dlib) reads FaceGate's answers unchanged. Each golden body
//! below is the reference README's own example; FaceGate's additions are
//! extra fields and are not checked here.
#![allow(clippy::unwrap_used)]

mod common;

use common::{image_body, post_as, KIT, ROSE, ROSE_2};
use facegate::settings::StoreKind;
use serde_json::{json, Value};

/// Asserts `actual` has every field of `golden` with the same JSON type
/// (null where the golden is null, a string where it is a string, ...).
/// `what` names the body in the failure message.
fn assert_shape(what: &str, actual: &Value, golden: &Value) {
    match (golden, actual) {
        (Value::Object(g), Value::Object(a)) => {
            for (key, gv) in g {
                let av = a
                    .get(key)
                    .unwrap_or_else(|| panic!("{what}: field {key:?} missing in {actual}"));
                assert_shape(&format!("{what}.{key}"), av, gv);
            }
        }
        (Value::Array(g), Value::Array(a)) => {
            assert!(!a.is_empty(), "{what}: empty array, golden has items");
            for av in a {
                assert_shape(&format!("{what}[]"), av, &g[0]);
            }
        }
        (Value::Null, Value::Null)
        | (Value::Bool(_), Value::Bool(_))
        | (Value::String(_), Value::String(_)) => {}
        (Value::Number(g), Value::Number(a)) => {
            // An integer id stays an integer; a distance may be any number.
            if g.is_i64() {
                assert!(a.is_i64(), "{what}: {a} is not an integer");
            }
        }
        _ => panic!("{what}: {actual} is not of the golden's type ({golden})"),
    }
}

fn golden_error() -> Value {
    json!({ "detail": "No face detected" })
}

async fn reference_bodies(store: StoreKind) {
    let Some(app) = common::spawn(store).await else {
        return;
    };
    let (_, enrol_token) = app.new_key("enrol", &["enrol"]).await;
    let (_, recognize_token) = app.new_key("recognize", &["recognize"]).await;
    let enrol = common::client_with_key(&enrol_token);
    let recognize = common::client_with_key(&recognize_token);

    let (status, health) = app.get("/health").await;
    assert_eq!(status, 200);
    assert_shape(
        "health",
        &health,
        &json!({"status": "healthy", "database": "connected", "timestamp": "2024-11-13T12:00:00"}),
    );
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["database"], "connected");

    let mut register = image_body(ROSE);
    register["name"] = json!("Rose Leslie");
    let (status, registered) = post_as(&enrol, &app, "/register/", register).await;
    assert_eq!(status, 200, "{registered}");
    assert_shape(
        "register",
        &registered,
        &json!({"status": "registered", "name": "John Doe", "user_id": 1, "message": "User registered successfully"}),
    );
    assert_eq!(registered["status"], "registered");
    assert_eq!(registered["name"], "Rose Leslie");
    let rose = registered["user_id"].as_i64().unwrap();

    let (status, matched) = post_as(&recognize, &app, "/recognize/", image_body(ROSE_2)).await;
    assert_eq!(status, 200, "{matched}");
    assert_shape(
        "recognize (match)",
        &matched,
        &json!({"match": true, "name": "John Doe", "distance": 0.33, "user_id": 1,
                "confidence": "high", "message": "Face recognized successfully"}),
    );
    assert_eq!(matched["match"], true);
    assert_eq!(matched["user_id"], rose);
    assert!(
        ["high", "medium", "low"].contains(&matched["confidence"].as_str().unwrap()),
        "{matched}"
    );

    let golden_no_match = json!({"match": false, "name": null, "distance": null, "user_id": null,
        "confidence": null, "message": "No matching face found in database"});
    let (status, stranger) = post_as(&recognize, &app, "/recognize/", image_body(KIT)).await;
    assert_eq!(status, 200, "{stranger}");
    assert_shape("recognize (no match)", &stranger, &golden_no_match);
    assert_eq!(stranger["match"], false);
    // Even an admin key, which may see how close a failed attempt came,
    // gets the reference's null distance; the nearest one is a new field.
    let (status, stranger) = app.post_json("/recognize/", image_body(KIT)).await;
    assert_eq!(status, 200, "{stranger}");
    assert_shape("recognize (no match, admin)", &stranger, &golden_no_match);
    assert!(stranger["nearest_distance"].is_number(), "{stranger}");

    // The reference's "lenient" threshold loosens the calibrated decision:
    // only admin may (the deliberate break, README "Migrating").
    let (status, refused) = post_as(
        &recognize,
        &app,
        "/recognize/?threshold=0.55",
        image_body(ROSE_2),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    assert_shape(
        "recognize ?threshold=0.55",
        &refused,
        &json!({"detail": "x"}),
    );
    assert!(
        refused["detail"].as_str().unwrap().contains("admin"),
        "the refusal names the scope: {refused}"
    );

    let (status, users) = app.get("/users/").await;
    assert_eq!(status, 200, "{users}");
    assert_shape(
        "users",
        &users,
        &json!([{"id": 1, "name": "John Doe", "created_at": "2024-11-13T12:00:00"}]),
    );
    assert_eq!(users.as_array().unwrap().len(), 1);

    let (status, stats) = app.get("/stats/").await;
    assert_eq!(status, 200, "{stats}");
    assert_shape(
        "stats",
        &stats,
        &json!({"total_users": 150, "database": "PostgreSQL with pgvector",
                "embedding_model": "dlib ResNet (128D)", "similarity_metric": "cosine distance"}),
    );
    assert_eq!(stats["total_users"], 1);

    // Errors: FastAPI's {"detail": "..."}, 400 for no face and for several
    // faces, with FaceGate's code and message beside it.
    for (photo, needle) in [
        ("noface/dlib_dog.jpg", "No face"),
        ("group/face_recognition_obama_and_biden.jpg", "faces"),
    ] {
        let mut body = image_body(photo);
        body["name"] = json!("Nobody");
        let (status, err) = post_as(&enrol, &app, "/register/", body).await;
        assert_eq!(status, 400, "{photo}: {err}");
        assert_shape(photo, &err, &golden_error());
        assert!(err["detail"].as_str().unwrap().contains(needle), "{err}");
        assert_eq!(err["detail"], err["message"], "{err}");
    }
    let (status, err) = post_as(
        &recognize,
        &app,
        "/recognize/",
        image_body("noface/dlib_dog.jpg"),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["detail"], "No face detected", "{err}");

    // Every other error carries `detail` too: an unknown user, a missing
    // key, a wrong scope, a bad path parameter.
    let (status, err) = app.delete("/users/999999").await;
    assert_eq!(status, 404, "{err}");
    assert_shape("delete unknown", &err, &golden_error());
    let (status, err) = common::read(
        reqwest::Client::new()
            .get(app.url("/users/"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "{err}");
    assert_shape("no key", &err, &golden_error());
    let (status, err) = common::read(recognize.get(app.url("/users/")).send().await.unwrap()).await;
    assert_eq!(status, 403, "{err}");
    assert_shape("wrong scope", &err, &golden_error());
    let (status, err) = app.delete("/users/abc").await;
    assert_eq!(status, 422, "{err}");
    assert_shape("bad id", &err, &golden_error());

    let (status, deleted) = app.delete(&format!("/users/{rose}")).await;
    assert_eq!(status, 200, "{deleted}");
    let (_, users) = app.get("/users/").await;
    assert_eq!(users, json!([]));
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_bodies_on_the_embedded_store() {
    reference_bodies(StoreKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_bodies_on_postgres() {
    reference_bodies(StoreKind::Postgres).await;
}

/// `GET /users/` pages with `?limit=&after=` and a Link header; without
/// them it is the whole list, up to `server.max_list_users`.
async fn user_list_paging(store: StoreKind) {
    let Some(app) = common::spawn_with(store, |s| s.server.max_list_users = 2).await else {
        return;
    };
    let mut ids = vec![];
    for (name, photo) in [
        ("Rose", ROSE),
        ("Kit", KIT),
        ("Obama", "people/obama/face_recognition_obama.jpg"),
    ] {
        let (status, body) = app.register(name, photo).await;
        assert_eq!(status, 200, "{body}");
        ids.push(body["user_id"].as_i64().unwrap());
    }
    // Three users, at most two unpaged: told to page.
    let (status, err) = app.get("/users/").await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"], "too_many_to_list");
    assert!(err["detail"].as_str().unwrap().contains("?limit="), "{err}");

    let res = app
        .client
        .get(app.url("/users/?limit=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let link = res
        .headers()
        .get("link")
        .expect("a full page names the next")
        .to_str()
        .unwrap()
        .to_string();
    let page: Value = res.json().await.unwrap();
    assert_eq!(page.as_array().unwrap().len(), 2, "{page}");
    assert_eq!(page[0]["id"], ids[0]);
    assert_eq!(
        link,
        format!("</users/?limit=2&after={}>; rel=\"next\"", ids[1])
    );
    let next = link.trim_start_matches('<').split('>').next().unwrap();
    let res = app.client.get(app.url(next)).send().await.unwrap();
    assert!(
        res.headers().get("link").is_none(),
        "the last page names none"
    );
    let page: Value = res.json().await.unwrap();
    assert_eq!(page, json!([page[0].clone()]));
    assert_eq!(page[0]["id"], ids[2]);

    for bad in [
        "/users/?limit=0",
        "/users/?limit=1001",
        "/users/?after=-1",
        "/users/?limit=x",
    ] {
        let (status, err) = app.get(bad).await;
        assert_eq!(status, 422, "{bad}: {err}");
        assert!(err["detail"].is_string(), "{err}");
    }
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_list_paging_on_the_embedded_store() {
    user_list_paging(StoreKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_list_paging_on_postgres() {
    user_list_paging(StoreKind::Postgres).await;
}
