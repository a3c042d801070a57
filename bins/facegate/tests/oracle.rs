//! Identification is not an oracle, over HTTP against the real server and
//! models: a collage is searched only for its largest faces, and failed
//! identifications spend a budget per key and per client.
#![allow(clippy::unwrap_used)]

mod common;

use common::{KIT, ROSE, ROSE_2};
use facegate::settings::StoreKind;
use serde_json::json;

/// About 25 faces of 4 people.
const COLLAGE: &str = "group/dlib_bald_guys.jpg";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collage_is_searched_for_its_largest_faces_only() {
    let app = common::spawn_with(StoreKind::Sqlite, |s| {
        s.face.max_faces_per_request = 4;
    })
    .await
    .unwrap();
    app.register("Rose Leslie", ROSE).await;
    let (status, r) = app.recognize(COLLAGE).await;
    assert_eq!(status, 200, "{r}");
    let faces = r["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 4, "{r}");
    let left_out = r["faces_left_out"].as_u64().unwrap();
    assert!(left_out >= 10, "the collage has far more faces: {r}");
    let area = |f: &serde_json::Value| {
        f["bbox"]["width"].as_f64().unwrap() * f["bbox"]["height"].as_f64().unwrap()
    };
    assert!(
        faces.windows(2).all(|w| area(&w[0]) >= area(&w[1])),
        "largest first: {r}"
    );
    // Under the cap nothing is left out.
    let (_, r) = app.recognize(ROSE_2).await;
    assert_eq!(r["faces_left_out"], 0, "{r}");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_identifications_spend_a_budget() {
    let app = common::spawn_with(StoreKind::Sqlite, |s| {
        // Six, then one every ten seconds.
        s.security.failed_identifications_per_minute = 6;
    })
    .await
    .unwrap();
    let (_, kiosk) = app.new_key("door kiosk", &["recognize"]).await;
    let kiosk = common::client_with_key(&kiosk);
    let (_, reg) = app.register("Rose Leslie", ROSE).await;
    let rose = reg["user_id"].as_i64().unwrap();
    let recognize = |rel: &'static str| {
        let (kiosk, url) = (kiosk.clone(), app.url("/recognize/"));
        async move {
            let res = kiosk
                .post(url)
                .json(&json!({ "image": common::b64(&common::photo(rel)) }))
                .send()
                .await
                .unwrap();
            let retry = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let (status, body) = common::read(res).await;
            (status, body, retry)
        }
    };
    // A correct identification spends nothing.
    let (status, r, _) = recognize(ROSE_2).await;
    assert_eq!((status, r["match"].as_bool()), (200, Some(true)), "{r}");
    for _ in 0..6 {
        let (status, r, _) = recognize(KIT).await;
        assert_eq!((status, r["match"].as_bool()), (200, Some(false)), "{r}");
    }
    // Spent: every identification waits, the right face too.
    let (status, body, retry) = recognize(ROSE_2).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "identify_budget_spent", "{body}");
    let retry = retry.unwrap();
    assert!((1..=11).contains(&retry), "{retry}");
    // Another key from the same address: the address's budget is spent too.
    let (status, body) = app.recognize(KIT).await;
    assert_eq!(status, 429, "{body}");
    // Verification is not affected, and nobody was locked out or disabled.
    let (status, v) = app.verify(rose, ROSE_2).await;
    assert_eq!((status, v["match"].as_bool()), (200, Some(true)), "{v}");
    // Once a unit refills, a correct identification works again.
    tokio::time::sleep(std::time::Duration::from_secs(retry)).await;
    let (status, r, _) = recognize(ROSE_2).await;
    assert_eq!((status, r["match"].as_bool()), (200, Some(true)), "{r}");
    app.cleanup().await;
}
