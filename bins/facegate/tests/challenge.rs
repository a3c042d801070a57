//! The head-turn challenge over HTTP, on the fast pipeline with the PAD
//! files (a passive check on every fifth frame): a verify session for the
//! person of `d12`, answered with the clip's real frames in one multipart
//! request, passes and gives a token that verifies the person once; the
//! token cannot be used twice, and the session cannot be answered twice.
#![allow(clippy::unwrap_used)]

mod common;

use facegate::settings::StoreKind;
use serde_json::{json, Value};

/// Frames of d12 that turn as `steps` ask, if the clip has such a run.
fn d12_run(steps: &[Value]) -> Option<std::ops::Range<usize>> {
    let steps: Vec<&str> = steps.iter().map(|s| s.as_str().unwrap()).collect();
    match steps.as_slice() {
        ["turn_left", "turn_right"] => Some(30..110),
        ["turn_right", "turn_left"] => Some(60..183),
        ["turn_left", "turn_right", "turn_left"] => Some(30..183),
        _ => None,
    }
}

#[tokio::test]
async fn a_session_answered_over_http_gives_a_token_that_verifies_once() {
    let app = common::spawn_with(StoreKind::Sqlite, common::use_fast_pipeline)
        .await
        .unwrap();
    let d12 = common::clip("d12.mjpeg");
    let id = common::enrol_d12(&app, &d12).await;
    let (session, run) = loop {
        let (status, s) = app
            .post_json(
                "/liveness/sessions",
                json!({"purpose": "verify", "user_id": id}),
            )
            .await;
        assert_eq!(status, 201, "{s}");
        if let Some(run) = d12_run(s["challenge"]["steps"].as_array().unwrap()) {
            break (s, run);
        }
    };
    let sid = session["id"].as_str().unwrap();
    let (status, again) = app.get(&format!("/liveness/sessions/{sid}")).await;
    assert_eq!((status, &again["id"]), (200, &session["id"]), "{again}");

    // The frames as captured at 25 a second, sent once that long has
    // passed since the session began.
    let frames = &d12[run];
    tokio::time::sleep(std::time::Duration::from_millis(40 * frames.len() as u64)).await;
    let form = |frames: &[Vec<u8>]| {
        let mut form = reqwest::multipart::Form::new();
        for (i, f) in frames.iter().enumerate() {
            let part = reqwest::multipart::Part::bytes(f.clone())
                .file_name(format!("{i}.jpg"))
                .mime_str("image/jpeg")
                .unwrap();
            form = form.part("frame", part);
        }
        let times: Vec<String> = (0..frames.len()).map(|i| (40 * i).to_string()).collect();
        form.text("timestamps", times.join(","))
    };
    let url = app.url(&format!("/liveness/sessions/{sid}/frames"));
    let res = app
        .client
        .post(&url)
        .multipart(form(frames))
        .send()
        .await
        .unwrap();
    let (status, result) = common::read(res).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["passed"], true, "{result}");
    let token = result["token"].as_str().unwrap().to_string();
    let res = app
        .client
        .post(&url)
        .multipart(form(frames))
        .send()
        .await
        .unwrap();
    assert_eq!(common::read(res).await.0, 409, "answered once");
    // Counted by purpose, outcome and reason (the refusal too).
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        r#"facegate_liveness_sessions_total{purpose="verify",outcome="passed",reason="none"} 1"#,
        r#"facegate_liveness_sessions_total{purpose="verify",outcome="refused",reason="conflict"} 1"#,
    ] {
        assert!(metrics.contains(series), "{series} not in:\n{metrics}");
    }

    let verify = |token: &str| json!({"image": common::b64(&d12[0]), "liveness_token": token});
    let (status, body) = app
        .post_json(&format!("/users/{id}/verify"), verify(&token))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["match"], true, "{body}");
    let (status, body) = app
        .post_json(&format!("/users/{id}/verify"), verify(&token))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "liveness_token_refused", "{body}");
    app.cleanup().await;
}
