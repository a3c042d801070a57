//! Passive liveness over HTTP on the shipped default pipeline (YuNet
//! 2023mar + SFace) with the MiniFASNet files: an attack photo verifies as
//! `match: false, reason: liveness_failed` and counts towards the lockout,
//! a live one gets the normal decision; enrolment refuses an attack; the
//! score reaches the audit row and never the caller; a server without the
//! files says so (`/stats/`, 501), and refuses to start when the operator
//! requires liveness.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use facegate::settings::{Settings, StoreKind};
use facegate::startup::Application;
use serde_json::{json, Value};

const ATTACK_PRINT: &str = "spoof/silentface_image_F1.jpg";
const ATTACK_SCREEN: &str = "spoof/silentface_image_F2.jpg";
const LIVE: &str = "spoof/silentface_image_T1.jpg";
const LIVE_2: &str = "spoof/silentface_image_T2.jpg";

/// The default pipeline from a models directory in the test's data dir
/// that holds its two files and the two PAD files (links to the workspace
/// models and the shared ones).
fn use_default_pipeline_with_pad(s: &mut Settings) {
    common::use_default_pipeline(s);
    let dir = s.store.data_dir.join("models");
    std::fs::create_dir_all(&dir).unwrap();
    let link = |from: &Path, name: &str| {
        std::os::unix::fs::symlink(from.join(name), dir.join(name)).unwrap();
    };
    let workspace = common::workspace().join("models");
    link(&workspace, face_core::models::YUNET_2023MAR.file_name);
    link(&workspace, face_core::models::SFACE_2021DEC.file_name);
    let shared = common::shared().join("models/onnx");
    link(&shared, face_core::models::MINIFASNET_V2.file_name);
    link(&shared, face_core::models::MINIFASNET_V1SE.file_name);
    s.face.models_dir = dir.display().to_string();
}

async fn register(app: &common::TestApp, path: &str, rel: &str) -> (u16, Value) {
    app.post_json(
        path,
        json!({ "name": "Someone", "image": common::b64(&common::photo(rel)) }),
    )
    .await
}

async fn verify(app: &common::TestApp, id: i64, query: &str, rel: &str) -> (u16, Value) {
    app.post_json(
        &format!("/users/{id}/verify{query}"),
        json!({ "image": common::b64(&common::photo(rel)) }),
    )
    .await
}

#[tokio::test]
async fn an_attack_photo_fails_verification_and_counts_towards_the_lockout() {
    let app = common::spawn_with(StoreKind::Sqlite, use_default_pipeline_with_pad)
        .await
        .unwrap();
    let (status, stats) = app.get("/stats/").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["liveness"]["passive_available"], true, "{stats}");
    assert_eq!(stats["liveness"]["required"], "off");
    let threshold = stats["liveness"]["threshold"].as_f64().unwrap();

    let (status, body) = register(&app, "/register/?liveness=passive", LIVE).await;
    assert_eq!(status, 200, "{body}");
    let id = body["user_id"].as_i64().unwrap();

    // A print of a face, claimed as the user: not compared, a failure.
    let (status, body) = verify(&app, id, "?liveness=passive", ATTACK_PRINT).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["match"], false, "{body}");
    assert_eq!(body["reason"], "liveness_failed");
    assert_eq!(body["liveness"], "attack");
    let text = body.to_string();
    assert!(
        !text.contains("liveness_score") && !text.contains("live_score"),
        "the caller gets live or attack, never the score: {text}"
    );
    // Not judged on its distance, so none is shown, to admin neither.
    assert_eq!(
        (&body["distance"], &body["nearest_distance"]),
        (&Value::Null, &Value::Null),
        "{body}"
    );
    let (_, lockout) = app.get(&format!("/admin/users/{id}/lockout")).await;
    assert_eq!(lockout["failures"], 1, "{lockout}");

    // The score is in the audit row, below the threshold.
    let (_, audit) = app.get(&format!("/admin/audit?user_id={id}")).await;
    let row = &audit["events"][0];
    assert_eq!(row["action"], "verify", "{audit}");
    assert_eq!(row["outcome"], "liveness_failed", "{audit}");
    let score = row["liveness_score"].as_f64().unwrap();
    assert!(score < threshold, "{score} against {threshold}");

    // The live photo gets the normal decision, and the success clears the
    // count as any does.
    let (status, body) = verify(&app, id, "?liveness=passive", LIVE).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["match"], true, "{body}");
    assert_eq!(body["liveness"], "live");
    assert_eq!(body["reason"], Value::Null);
    let (_, lockout) = app.get(&format!("/admin/users/{id}/lockout")).await;
    assert_eq!(lockout["failures"], 0, "{lockout}");
    // Another live photo of the same person (the Silent-Face samples T1 and
    // T2 are one man): live, and verified.
    let (_, body) = verify(&app, id, "?liveness=passive", LIVE_2).await;
    assert_eq!(
        (&body["liveness"], &body["reason"]),
        (&json!("live"), &Value::Null),
        "{body}"
    );
    assert_eq!(body["match"], true, "{body}");

    // Without asking, nothing is checked (the attack is compared as a face).
    let (_, body) = verify(&app, id, "", ATTACK_PRINT).await;
    assert_eq!(body["liveness"], Value::Null, "{body}");
    assert_eq!(body["reason"], Value::Null, "{body}");
    app.cleanup().await;
}

#[tokio::test]
async fn enrolment_and_identification_refuse_attacks_when_asked() {
    let app = common::spawn_with(StoreKind::Sqlite, use_default_pipeline_with_pad)
        .await
        .unwrap();
    let (status, body) = register(&app, "/register/?liveness=passive", ATTACK_SCREEN).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "liveness_failed", "{body}");
    let (_, audit) = app.get("/admin/audit").await;
    let row = &audit["events"][0];
    assert_eq!(
        (&row["action"], &row["detail"]),
        (&json!("enrol"), &json!("liveness_failed")),
        "{audit}"
    );
    assert!(row["liveness_score"].as_f64().is_some(), "{audit}");

    let (status, body) = register(&app, "/register/", LIVE).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .post_json(
            "/recognize/?liveness=passive",
            common::image_body(ATTACK_PRINT),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["match"], false, "{body}");
    assert_eq!(body["reason"], "liveness_failed");
    assert_eq!(body["faces"][0]["liveness"], "attack");
    let (_, body) = app
        .post_json("/recognize/?liveness=passive", common::image_body(LIVE))
        .await;
    assert_eq!(
        (&body["match"], &body["liveness"]),
        (&json!(true), &json!("live")),
        "{body}"
    );

    let (status, body) = app
        .post_json("/recognize/?liveness=yes", common::image_body(LIVE))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["details"]["field"], "liveness", "{body}");
    app.cleanup().await;
}

#[tokio::test]
async fn required_liveness_checks_every_decision_and_stops_stream_recognition() {
    let app = common::spawn_with(StoreKind::Sqlite, |s| {
        use_default_pipeline_with_pad(s);
        s.security.require_liveness = face_service::LivenessMode::Passive;
    })
    .await
    .unwrap();
    let (_, stats) = app.get("/stats/").await;
    assert_eq!(stats["liveness"]["required"], "passive", "{stats}");
    let (status, body) = register(&app, "/register/", LIVE).await;
    assert_eq!(status, 200, "{body}");
    let id = body["user_id"].as_i64().unwrap();
    // Not asked, checked anyway; asking for less changes nothing.
    let (_, body) = verify(&app, id, "?liveness=off", ATTACK_PRINT).await;
    assert_eq!(body["reason"], "liveness_failed", "{body}");
    // Adding a face with a key that is not admin is a verification: the
    // requirement holds there too, and the attack is a failed attempt.
    let (_, kiosk) = app.new_key("kiosk", &["enrol"]).await;
    let (status, body) = common::post_as(
        &common::client_with_key(&kiosk),
        &app,
        &format!("/users/{id}/faces"),
        common::image_body(ATTACK_SCREEN),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "liveness_failed", "{body}");
    let (_, lockout) = app.get(&format!("/admin/users/{id}/lockout")).await;
    assert_eq!(lockout["failures"], 2, "{lockout}");
    let (_, body) = app.post_json("/recognize/", common::image_body(LIVE)).await;
    assert_eq!(body["liveness"], "live", "{body}");

    // The stream cannot check liveness yet: recognition there is refused
    // (an error event; the stream stays open for detection).
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
    let url = format!("{}/stream", app.base.replace("http://", "ws://"));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", app.token).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::text(json!({"mode": "identify"}).to_string()))
        .await
        .unwrap();
    let event = loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let e: Value = serde_json::from_str(&t).unwrap();
            if e["type"] == "error" {
                break e;
            }
        }
    };
    assert_eq!(event["error"], "liveness_unavailable", "{event}");
    app.cleanup().await;
}

#[tokio::test]
async fn without_the_files_stats_says_so_and_asking_is_501() {
    // The default pipeline's own models directory holds no PAD files.
    let app = common::spawn_with(StoreKind::Sqlite, common::use_default_pipeline)
        .await
        .unwrap();
    let (_, stats) = app.get("/stats/").await;
    assert_eq!(stats["liveness"]["passive_available"], false, "{stats}");
    let reason = stats["liveness"]["unavailable_reason"].as_str().unwrap();
    assert!(reason.contains("minifasnet_v2_2.7_80x80.onnx"), "{reason}");
    let (status, body) = register(&app, "/register/", LIVE).await;
    assert_eq!(status, 200, "{body}");
    let id = body["user_id"].as_i64().unwrap();
    let (status, body) = verify(&app, id, "?liveness=passive", LIVE).await;
    assert_eq!(status, 501, "{body}");
    assert_eq!(body["error"], "liveness_unavailable", "{body}");
    // Refused before the lockout: nothing was attempted.
    let (_, lockout) = app.get(&format!("/admin/users/{id}/lockout")).await;
    assert_eq!(lockout["failures"], 0, "{lockout}");
    app.cleanup().await;
}

#[tokio::test]
async fn requiring_liveness_without_the_files_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = common::settings(dir.path());
    common::use_default_pipeline(&mut s);
    s.security.require_liveness = face_service::LivenessMode::Passive;
    let err = match Application::build(s).await {
        Ok(_) => panic!("started without the PAD files"),
        Err(e) => e.to_string(),
    };
    for needed in [
        "require_liveness",
        "minifasnet_v2_2.7_80x80.onnx",
        "minifasnet_v1se_4.0_80x80.onnx",
        "models directory",
    ] {
        assert!(err.contains(needed), "{needed:?} not in: {err}");
    }
}
