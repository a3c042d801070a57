//! `GET /stream` over a real WebSocket (tokio-tungstenite), with the fast
//! pipeline and the shared clips: identification per track, backpressure
//! under a flood (with `/users/{id}/verify` still answered), tickets, and
//! every limit with its close code.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use facegate::settings::{Settings, StoreKind};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use common::ws::{connect, next, open, ws_url, Ws};

async fn app(tweak: impl FnOnce(&mut Settings)) -> common::TestApp {
    common::spawn_with(StoreKind::Sqlite, |s| {
        common::use_fast_pipeline(s);
        s.face.workers = 2;
        tweak(s);
    })
    .await
    .unwrap()
}

/// Events until `frames` frames are accounted for (processed or dropped).
async fn account(ws: &mut Ws, frames: usize) -> (Vec<Value>, Vec<Value>) {
    let (mut processed, mut dropped) = (Vec::new(), Vec::new());
    while processed.len() + dropped.len() < frames {
        let e = next(ws, Duration::from_secs(60)).await.unwrap();
        match e["type"].as_str().unwrap() {
            "frame" => processed.push(e),
            "dropped" => dropped.push(e),
            other => panic!("unexpected {other} event: {e}"),
        }
    }
    (processed, dropped)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_is_identified_on_their_track_and_a_flood_is_absorbed() {
    let app = app(|_| {}).await;
    let frames = common::clip("d12.mjpeg");
    let me = common::enrol_d12(&app, &frames).await;
    let (status, other) = app.register("Rose Leslie", common::ROSE).await;
    assert_eq!(status, 200, "{other}");

    // Frames 0-59 at 25 fps: every one processed (none dropped on time).
    let mut ws = connect(&app, Some(&app.token)).await.unwrap();
    for (seq, frame) in frames[..60].iter().enumerate() {
        ws.send(common::stream_frame(seq as u32 + 1, frame))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let (processed, dropped) = account(&mut ws, 60).await;
    // What this test saw, for the metrics at the end: processed frames and
    // frames dropped for the rate limit.
    let rated = |dropped: &[Value]| dropped.iter().filter(|e| e["reason"] == "rate").count();
    let mut seen = (processed.len(), rated(&dropped));
    println!(
        "paced: {} processed, {} dropped",
        processed.len(),
        dropped.len()
    );
    let mut tracks = std::collections::HashSet::new();
    let mut identified = std::collections::HashSet::new();
    let mut first_identified = None;
    for e in &processed {
        for face in e["faces"].as_array().unwrap() {
            tracks.insert(face["track_id"].as_u64().unwrap());
            if face["state"] == "identified" {
                identified.insert(face["user_id"].as_i64().unwrap());
                first_identified.get_or_insert(e["seq"].as_u64().unwrap());
                assert_eq!(face["name"], "Man With Glasses");
            }
        }
    }
    assert_eq!(
        identified,
        std::collections::HashSet::from([me]),
        "never the distractor"
    );
    assert!(
        first_identified.is_some_and(|s| s <= 30),
        "identified at {first_identified:?}"
    );
    assert_eq!(tracks.len(), 1, "{tracks:?}");

    // A flood: the whole clip at once on a second stream, while verify is
    // called over HTTP; then 30 fps for 10 s.
    let mut flood = connect(&app, Some(&app.token)).await.unwrap();
    for (seq, frame) in frames.iter().enumerate() {
        flood
            .send(common::stream_frame(seq as u32 + 1, frame))
            .await
            .unwrap();
    }
    let (status, v) = app.verify(me, common::ROSE).await;
    assert_eq!(status, 200, "verify during the flood: {v}");
    let (processed, dropped) = account(&mut flood, frames.len()).await;
    println!(
        "flood: {} sent, {} processed, {} dropped",
        frames.len(),
        processed.len(),
        dropped.len()
    );
    assert_eq!(processed.len() + dropped.len(), frames.len());
    assert!(!processed.is_empty());
    seen = (seen.0 + processed.len(), seen.1 + rated(&dropped));
    let seqs: Vec<u64> = processed
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let started = Instant::now();
    let mut sent = 0u32;
    let base = frames.len() as u32 + 1;
    while started.elapsed() < Duration::from_secs(10) {
        flood
            .send(common::stream_frame(
                base + sent,
                &frames[sent as usize % frames.len()],
            ))
            .await
            .unwrap();
        sent += 1;
        tokio::time::sleep(Duration::from_millis(33)).await;
    }
    let (status, v) = app.verify(me, common::ROSE).await;
    assert_eq!(status, 200, "verify during 30 fps: {v}");
    let (processed, dropped) = account(&mut flood, sent as usize).await;
    println!(
        "30 fps: {sent} sent, {} processed, {} dropped",
        processed.len(),
        dropped.len()
    );
    assert!(
        processed.len() as u32 * 4 >= sent,
        "a quarter of the frames processed at 30 fps"
    );
    seen = (seen.0 + processed.len(), seen.1 + rated(&dropped));
    // The stream's series counted at least what this test saw (other
    // tests in this binary add to them); how many a loaded machine
    // processes is not the question here.
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    let text = res.text().await.unwrap();
    let sample = |prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    };
    let (processed, rate) = (seen.0 as f64, seen.1 as f64);
    assert!(rate > 0.0, "the flood is faster than max_fps (30)");
    assert!(
        sample("facegate_stream_frames_total{outcome=\"rate\"}") >= rate,
        "{rate} rate drops seen: {text}"
    );
    assert!(
        sample("facegate_stream_frames_total{outcome=\"processed\"}") >= processed,
        "{processed} processed seen: {text}"
    );
    assert!(
        sample("facegate_stream_frame_duration_seconds_count") >= processed,
        "{processed} processed seen: {text}"
    );
    assert!(sample("facegate_streams_open") >= 2.0, "{text}");
    flood.close(None).await.unwrap();
    ws.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_identification_budget_stops_the_searches() {
    // One failed identification a minute: the first track decided unknown
    // spends it.
    let app = app(|s| {
        s.security.failed_identifications_per_minute = 1;
        // One frame at a time, each after the last one's event.
        s.stream.max_fps = 1_000_000;
    })
    .await;
    let (status, _) = app.register("Rose Leslie", common::ROSE).await;
    assert_eq!(status, 200);
    let frames = common::clip("d19.mjpeg");
    let mut ws = connect(&app, Some(&app.token)).await.unwrap();
    let mut states = Vec::new();
    let mut refused = None;
    for (seq, frame) in frames[..60].iter().enumerate() {
        ws.send(common::stream_frame(seq as u32 + 1, frame))
            .await
            .unwrap();
        let e = next(&mut ws, Duration::from_secs(30)).await.unwrap();
        match e["type"].as_str().unwrap() {
            "frame" => states.extend(
                e["faces"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f["state"].as_str().unwrap().to_string()),
            ),
            "error" => {
                refused = Some(e);
                break;
            }
            other => panic!("{other}: {e}"),
        }
    }
    let refused = refused.expect("the budget never stopped the stream's searches");
    assert_eq!(refused["error"], "identify_budget", "{refused}");
    assert!(states.iter().any(|s| s == "unknown"), "{states:?}");
    // The same key's HTTP identification is refused too.
    let (status, body) = app.recognize(common::ROSE).await;
    assert_eq!(status, 429, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_messages_are_requests_under_the_keys_limit() {
    // Three requests at once per key, then one a minute: the upgrade and
    // two mode changes pass, the next messages are refused.
    let app = app(|s| {
        s.security.rate_per_key_per_minute = 1;
        s.security.rate_burst = 2;
    })
    .await;
    let (_, kiosk) = app.new_key("kiosk", &["recognize"]).await;
    let mut ws = connect(&app, Some(&kiosk)).await.unwrap();
    let mut answers = Vec::new();
    for _ in 0..6 {
        let ask = json!({"mode": "detect"}).to_string();
        ws.send(Message::text(ask)).await.unwrap();
        answers.push(next(&mut ws, Duration::from_secs(10)).await.unwrap());
    }
    let kinds: Vec<&str> = answers
        .iter()
        .map(|e| e["error"].as_str().unwrap_or(e["type"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds[0], "mode", "{answers:?}");
    let refused = answers
        .iter()
        .find(|e| e["error"] == "rate_limited")
        .unwrap_or_else(|| panic!("no message refused: {kinds:?}"));
    assert!(
        refused["retry_after_secs"].as_u64().unwrap() >= 1,
        "{refused}"
    );
    assert!(
        kinds.iter().all(|k| ["mode", "rate_limited"].contains(k)),
        "{kinds:?}"
    );
    // Refused, not closed: the stream serves frames in its mode, and a
    // frame sent right behind a refused message is answered too.
    let frame = common::clip("d12.mjpeg").swap_remove(0);
    ws.send(common::stream_frame(1, &frame)).await.unwrap();
    let event = next(&mut ws, Duration::from_secs(30)).await.unwrap();
    assert_eq!(event["type"], "frame", "{event}");
    let ask = json!({"mode": "detect"}).to_string();
    ws.send(Message::text(ask)).await.unwrap();
    ws.send(common::stream_frame(2, &frame)).await.unwrap();
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let e = next(&mut ws, Duration::from_secs(30)).await.unwrap();
        kinds.push(
            e["error"]
                .as_str()
                .unwrap_or(e["type"].as_str().unwrap())
                .to_string(),
        );
    }
    kinds.sort();
    assert_eq!(kinds, ["frame", "rate_limited"], "both answered");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_limits_and_bad_frames() {
    let app = app(|s| {
        s.stream.max_frame_bytes = 200_000;
        s.stream.max_streams_per_key = 2;
        s.stream.idle_timeout_secs = 1;
        s.stream.max_session_secs = 3;
        // Frames here follow each other at once; the rate limit is the
        // flood test's.
        s.stream.max_fps = 1_000_000;
    })
    .await;
    let frame = common::clip("d3.mjpeg").swap_remove(0);

    // No key, no ticket; a wrong key.
    assert_eq!(connect(&app, None).await.err(), Some(401));
    assert_eq!(connect(&app, Some("fg_nope")).await.err(), Some(401));

    // A ticket opens one stream, once; by query and by subprotocol.
    let (status, t) = app.post_json("/stream/tickets", json!({})).await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(t["expires_in"], 30);
    let ticket = t["ticket"].as_str().unwrap().to_string();
    let query = format!("?ticket={ticket}");
    let by_ticket = open(ws_url(&app, &query).into_client_request().unwrap()).await;
    let mut by_ticket = by_ticket.unwrap();
    assert_eq!(
        open(ws_url(&app, &query).into_client_request().unwrap())
            .await
            .err(),
        Some(401),
        "a used ticket"
    );
    // A ticket whose key is revoked before it is used opens nothing.
    let (kiosk_id, kiosk) = app.new_key("kiosk", &["recognize"]).await;
    let res = common::client_with_key(&kiosk)
        .post(app.url("/stream/tickets"))
        .send()
        .await
        .unwrap();
    let (status, t) = common::read(res).await;
    assert_eq!(status, 201, "{t}");
    let (status, _) = app.delete(&format!("/admin/keys/{kiosk_id}")).await;
    assert_eq!(status, 200);
    let revoked = format!("?ticket={}", t["ticket"].as_str().unwrap());
    assert_eq!(
        open(ws_url(&app, &revoked).into_client_request().unwrap())
            .await
            .err(),
        Some(401),
        "a ticket of a revoked key"
    );
    let (_, t) = app.post_json("/stream/tickets", json!({})).await;
    let mut req = ws_url(&app, "").into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!(
            "facegate, facegate.ticket.{}",
            t["ticket"].as_str().unwrap()
        )
        .parse()
        .unwrap(),
    );
    let (mut by_protocol, res) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(res.headers()["sec-websocket-protocol"], "facegate");

    // Two streams for this key are open: a third is closed with 1013.
    let mut third = connect(&app, Some(&app.token)).await.unwrap();
    let (code, reason) = next(&mut third, Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(code, u16::from(CloseCode::Again), "{reason}");

    // Garbage as a frame: an error event, and the stream goes on.
    by_ticket
        .send(common::stream_frame(1, b"garbage, not a jpeg"))
        .await
        .unwrap();
    let e = next(&mut by_ticket, Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        (e["type"].as_str(), e["error"].as_str()),
        (Some("error"), Some("bad_image")),
        "{e}"
    );
    assert_eq!(e["seq"], 1);
    by_ticket
        .send(common::stream_frame(2, &frame))
        .await
        .unwrap();
    let e = next(&mut by_ticket, Duration::from_secs(10)).await.unwrap();
    assert_eq!(e["type"], "frame", "{e}");
    assert_eq!(e["faces"].as_array().unwrap().len(), 1, "{e}");
    // A header too short; a sequence number that does not increase.
    by_ticket.send(Message::binary(vec![0u8; 5])).await.unwrap();
    let e = next(&mut by_ticket, Duration::from_secs(10)).await.unwrap();
    assert_eq!(e["error"], "bad_frame", "{e}");
    by_ticket
        .send(common::stream_frame(2, &frame))
        .await
        .unwrap();
    let e = next(&mut by_ticket, Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        (e["type"].as_str(), e["reason"].as_str()),
        (Some("dropped"), Some("out_of_order")),
        "{e}"
    );
    // A bad mode message, then detect mode.
    by_ticket
        .send(Message::text("{\"mode\": \"dance\"}"))
        .await
        .unwrap();
    let e = next(&mut by_ticket, Duration::from_secs(10)).await.unwrap();
    assert_eq!(e["error"], "bad_message", "{e}");
    by_ticket
        .send(Message::text("{\"mode\": \"detect\"}"))
        .await
        .unwrap();
    let e = next(&mut by_ticket, Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        (e["type"].as_str(), e["mode"].as_str()),
        (Some("mode"), Some("detect")),
        "{e}"
    );
    by_ticket
        .send(common::stream_frame(3, &frame))
        .await
        .unwrap();
    let e = next(&mut by_ticket, Duration::from_secs(10)).await.unwrap();
    assert_eq!(e["faces"][0]["state"], "detected", "{e}");

    // Too large a frame: 1009.
    by_ticket
        .send(common::stream_frame(4, &vec![0u8; 300_000]))
        .await
        .unwrap();
    let (code, reason) = next(&mut by_ticket, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(code, u16::from(CloseCode::Size), "{reason}");

    // Idle for over a second: closed, 1000 "idle timeout".
    let (code, reason) = next(&mut by_protocol, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(code, 1000);
    assert!(reason.contains("idle"), "{reason}");

    // Busy but over the session length (3 s): closed, 1000 "session length".
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut long = connect(&app, Some(&app.token)).await.unwrap();
    let started = Instant::now();
    let mut seq = 1;
    let (code, reason) = loop {
        long.send(Message::Ping(vec![1].into())).await.unwrap();
        seq += 1;
        match tokio::time::timeout(Duration::from_millis(500), long.next()).await {
            Ok(Some(Ok(Message::Close(Some(c))))) => {
                break (u16::from(c.code), c.reason.to_string())
            }
            Ok(Some(Ok(_))) | Err(_) => {}
            other => panic!("{other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "not closed at the session length"
        );
    };
    assert_eq!(code, 1000);
    assert!(reason.contains("session length"), "{reason}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?} after {seq} pings",
        started.elapsed()
    );
}

/// Streams `frames` paced at 25 fps after `mode`, and collects the faces'
/// states.
async fn stream_states(app: &common::TestApp, mode: Value, frames: &[Vec<u8>]) -> Vec<Value> {
    let mut ws = connect(app, Some(&app.token)).await.unwrap();
    ws.send(Message::text(mode.to_string())).await.unwrap();
    let e = next(&mut ws, Duration::from_secs(10)).await.unwrap();
    assert_eq!(e["type"], "mode", "{e}");
    for (seq, frame) in frames.iter().enumerate() {
        ws.send(common::stream_frame(seq as u32 + 1, frame))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let (processed, _) = account(&mut ws, frames.len()).await;
    ws.close(None).await.unwrap();
    processed
        .iter()
        .flat_map(|e| e["faces"].as_array().unwrap().clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_mode_confirms_the_claimed_person_and_refuses_another() {
    let app = app(|_| {}).await;
    let d12 = common::clip("d12.mjpeg");
    let me = common::enrol_d12(&app, &d12).await;
    let mode = json!({"mode": "verify", "user_id": me});

    let faces = stream_states(&app, mode.clone(), &d12[..40]).await;
    let states: Vec<&str> = faces.iter().map(|f| f["state"].as_str().unwrap()).collect();
    println!(
        "d12 as himself: {:?}",
        states.iter().collect::<std::collections::BTreeSet<_>>()
    );
    assert!(states.contains(&"verified"), "{states:?}");
    assert!(!states.contains(&"not_verified"), "{states:?}");
    assert!(faces
        .iter()
        .filter(|f| f["state"] == "verified")
        .all(|f| f["user_id"] == me));
    let (_, lockout) = app.get(&format!("/admin/users/{me}/lockout")).await;
    assert_eq!(lockout["failures"], 0, "{lockout}");

    // Another man claiming to be him, on one track over 60 frames: refused
    // once, one failure of the lockout (not one per frame).
    let d19 = common::clip("d19.mjpeg");
    let faces = stream_states(&app, mode, &d19[..60]).await;
    let states: Vec<&str> = faces.iter().map(|f| f["state"].as_str().unwrap()).collect();
    println!(
        "d19 as him: {:?}",
        states.iter().collect::<std::collections::BTreeSet<_>>()
    );
    assert!(states.contains(&"not_verified"), "{states:?}");
    assert!(!states.contains(&"verified"), "{states:?}");
    let (_, lockout) = app.get(&format!("/admin/users/{me}/lockout")).await;
    assert_eq!(lockout["failures"], 1, "{lockout}");
    let (_, audit) = app
        .get(&format!("/admin/audit?user_id={me}&limit=100"))
        .await;
    let verdicts: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "stream_verify")
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, vec!["no_match", "match"], "newest first: {audit}");

    // A user who does not exist: an error event, the stream stays open.
    let mut ws = connect(&app, Some(&app.token)).await.unwrap();
    ws.send(Message::text(
        json!({"mode": "verify", "user_id": 999_999}).to_string(),
    ))
    .await
    .unwrap();
    let e = next(&mut ws, Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        (e["type"].as_str(), e["error"].as_str()),
        (Some("error"), Some("not_found")),
        "{e}"
    );
    ws.send(common::stream_frame(1, &d12[0])).await.unwrap();
    let e = next(&mut ws, Duration::from_secs(10)).await.unwrap();
    assert_eq!(e["type"], "frame", "{e}");
}
