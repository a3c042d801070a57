//! Concurrency against the real server and models, on both stores: the
//! verification lockout cannot be raced, and two enrolments of one face
//! cannot both pass the duplicate check.
#![allow(clippy::unwrap_used)]

mod common;

use common::{KIT, ROSE};
use facegate::settings::StoreKind;
use serde_json::{json, Value};

/// Sends `n` copies of one request at once; the statuses and bodies.
async fn flood(app: &common::TestApp, path: &str, body: Value, n: usize) -> Vec<(u16, Value)> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (client, url, body) = (app.client.clone(), app.url(path), body.clone());
            tokio::spawn(async move {
                common::read(client.post(url).json(&body).send().await.unwrap()).await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn count(results: &[(u16, Value)], status: u16) -> usize {
    results.iter().filter(|(s, _)| *s == status).count()
}

/// Before, the lockout was checked before the face work and the failure
/// recorded after it: 18 of 20 concurrent wrong faces were judged.
async fn concurrent_wrong_faces_are_judged_up_to_the_limit(store: StoreKind) {
    let app = common::spawn_with(store, |s| {
        // Deep enough that no request is refused as busy.
        s.face.queue_depth = 64;
    })
    .await
    .unwrap();
    let (_, rose) = app.register("Rose Leslie", ROSE).await;
    let rose = rose["user_id"].as_i64().unwrap();
    let kit = json!({ "image": common::b64(&common::photo(KIT)) });
    let results = flood(&app, &format!("/users/{rose}/verify"), kit.clone(), 20).await;
    let judged = results
        .iter()
        .filter(|(s, b)| *s == 200 && b["match"] == false)
        .count();
    assert_eq!(judged, 5, "{results:?}");
    assert_eq!(count(&results, 429), 15, "{results:?}");
    assert_eq!(count(&results, 503), 0, "{results:?}");
    for (status, body) in &results {
        if *status == 429 {
            assert_eq!(body["error"], "verification_delayed", "{body}");
            let wait = body["details"]["retry_after_secs"].as_u64().unwrap();
            assert!((1..=30).contains(&wait), "{body}");
        }
    }
    let (_, l) = app.get(&format!("/admin/users/{rose}/lockout")).await;
    assert_eq!(l["failures"], 5, "{l}");
    // Nothing is left reserved: the next attempt waits out the delay.
    let (status, body) = app.verify(rose, KIT).await;
    assert_eq!(status, 429, "{body}");
    app.cleanup().await;

    // At the disable limit, none beyond it.
    let app = common::spawn_with(store, |s| {
        s.face.queue_depth = 64;
        s.security.lockout_delay_after = 3;
        s.security.lockout_disable_after = 3;
    })
    .await
    .unwrap();
    let (_, rose) = app.register("Rose Leslie", ROSE).await;
    let rose = rose["user_id"].as_i64().unwrap();
    let results = flood(&app, &format!("/users/{rose}/verify"), kit, 20).await;
    assert_eq!(count(&results, 200), 3, "{results:?}");
    assert_eq!(
        count(&results, 429) + count(&results, 423),
        17,
        "{results:?}"
    );
    let (status, body) = app.verify(rose, ROSE).await;
    assert_eq!(status, 423, "disabled, even for the right face: {body}");
    let (_, l) = app.get(&format!("/admin/users/{rose}/lockout")).await;
    assert_eq!(
        (l["failures"].as_u64(), l["disabled"].as_bool()),
        (Some(3), Some(true)),
        "{l}"
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lockout_cannot_be_raced_sqlite() {
    concurrent_wrong_faces_are_judged_up_to_the_limit(StoreKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lockout_cannot_be_raced_postgres() {
    concurrent_wrong_faces_are_judged_up_to_the_limit(StoreKind::Postgres).await;
}

/// A photo with no face is not a failed attempt, and does not keep its
/// reservation: the right face verifies right after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_that_compare_nothing_count_nothing() {
    let app = common::spawn_with(StoreKind::Sqlite, |s| {
        s.security.lockout_delay_after = 1;
    })
    .await
    .unwrap();
    let (_, rose) = app.register("Rose Leslie", ROSE).await;
    let rose = rose["user_id"].as_i64().unwrap();
    for _ in 0..3 {
        let (status, body) = app.verify(rose, "noface/dlib_eagle.jpg").await;
        assert_eq!(status, 400, "{body}");
    }
    let (_, l) = app.get(&format!("/admin/users/{rose}/lockout")).await;
    assert_eq!(
        (l["failures"].as_u64(), l["locked_until"].is_null()),
        (Some(0), true),
        "{l}"
    );
    let (status, body) = app.verify(rose, ROSE).await;
    assert_eq!(
        (status, body["match"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    app.cleanup().await;
}

/// Before, concurrent enrolments of one face all searched, found nobody,
/// and all inserted. Ten requests of one face analysed at once finish
/// together, so their checks meet; three rounds (three faces), because
/// whether two checks meet depends on scheduling: the old code let a second
/// copy through in about half the rounds measured.
async fn concurrent_enrolments_of_one_face(store: StoreKind) {
    let app = common::spawn_with(store, |s| {
        s.face.queue_depth = 64;
        s.face.workers = 10;
    })
    .await
    .unwrap();
    let faces = [ROSE, KIT, "people/obama/face_recognition_obama.jpg"];
    for face in faces {
        let body = json!({ "name": face, "image": common::b64(&common::photo(face)) });
        let results = flood(&app, "/register/", body, 10).await;
        assert_eq!(count(&results, 200), 1, "{face}: {results:?}");
        assert_eq!(count(&results, 409), 9, "{face}: {results:?}");
        for (status, body) in &results {
            if *status == 409 {
                assert_eq!(body["error"], "duplicate_face", "{body}");
            }
        }
    }
    let (_, users) = app.get("/users/").await;
    assert_eq!(users.as_array().unwrap().len(), 3, "{users}");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_face_is_enrolled_once_sqlite() {
    concurrent_enrolments_of_one_face(StoreKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_face_is_enrolled_once_postgres() {
    concurrent_enrolments_of_one_face(StoreKind::Postgres).await;
}

/// Before, a queued job ran (and wrote its audit row) though its client had
/// hung up long before a worker took it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_whose_client_has_gone_is_not_run() {
    use tokio::io::AsyncWriteExt;
    let app = common::spawn_with(StoreKind::Sqlite, |s| {
        s.face.workers = 1;
        s.face.queue_depth = 16;
    })
    .await
    .unwrap();
    let big = "people/obama/face_recognition_obama-1080p.jpg";
    let body = json!({ "image": common::b64(&common::photo(big)) }).to_string();
    // Keep the one worker busy.
    let busy: Vec<_> = (0..4)
        .map(|_| {
            let (client, url, body) = (app.client.clone(), app.url("/recognize/"), body.clone());
            tokio::spawn(async move {
                client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // A whole request, then the client hangs up while it waits in the queue.
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "POST /recognize/ HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        app.token,
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    drop(socket);
    for t in busy {
        assert_eq!(t.await.unwrap(), 200);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (_, stats) = app.get("/stats/").await;
    assert_eq!(stats["abandoned_jobs"], 1, "{stats}");
    let (_, audit) = app.get("/admin/audit?limit=100").await;
    let identifications = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "identify")
        .count();
    assert_eq!(
        identifications, 4,
        "no audit row for the abandoned one: {audit}"
    );
    app.cleanup().await;
}
