//! Frame-to-event latency of `GET /stream` under a flood: a benchmark, not
//! a test (no assertion on time; it prints figures to record).
//!
//! A real server (fast pipeline, SQLite, two face workers, so streams hold
//! one) is started on port 0, the man of `d12.mjpeg` is enrolled from frame
//! 120, and one WebSocket client sends the clip's frames four ways: paced
//! at the clip's own 25 fps, at 30 fps and at 60 fps, and all at once. For each processed
//! frame the latency is the time from the client sending it to the client
//! receiving its `frame` event (so it includes the wait in the mailbox and
//! the socket both ways); dropped frames are counted apart.
//!
//! Run (out of CI):
//! ```text
//! FACEGATE_SHARED_DIR=../shared ORT_DYLIB_PATH=$PWD/runtime/libonnxruntime.so \
//!   cargo bench -p facegate --profile dev --bench stream_latency
//! ```
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// Sends `count` frames of the clip (cycling) with `gap` between them and
/// prints the latency of the processed ones.
async fn run(app: &common::TestApp, frames: &[Vec<u8>], label: &str, count: usize, gap: Duration) {
    let mut req = format!("{}/stream", app.base.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", app.token).parse().unwrap(),
    );
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let (mut tx, mut rx) = ws.split();
    let sent: std::sync::Arc<std::sync::Mutex<HashMap<u64, Instant>>> = Default::default();
    let sender = {
        let sent = sent.clone();
        let frames = frames.to_vec();
        tokio::spawn(async move {
            let start = Instant::now();
            for i in 0..count {
                if !gap.is_zero() {
                    let due = start + gap * i as u32;
                    tokio::time::sleep_until(due.into()).await;
                }
                let seq = i as u32 + 1;
                sent.lock().unwrap().insert(u64::from(seq), Instant::now());
                tx.send(common::stream_frame(seq, &frames[i % frames.len()]))
                    .await
                    .unwrap();
            }
            tx
        })
    };
    let (mut latencies, mut dropped, mut errors) = (Vec::new(), 0usize, 0usize);
    let started = Instant::now();
    while latencies.len() + dropped + errors < count {
        let msg = tokio::time::timeout(Duration::from_secs(60), rx.next())
            .await
            .expect("no event in 60 s")
            .unwrap()
            .unwrap();
        let Message::Text(t) = msg else { continue };
        let e: Value = serde_json::from_str(&t).unwrap();
        match e["type"].as_str().unwrap() {
            "frame" => {
                let seq = e["seq"].as_u64().unwrap();
                let at = sent.lock().unwrap()[&seq];
                latencies.push(at.elapsed().as_secs_f64() * 1e3);
            }
            "dropped" => dropped += 1,
            _ => errors += 1,
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let mut tx = sender.await.unwrap();
    tx.send(Message::Close(None)).await.ok();
    latencies.sort_by(f64::total_cmp);
    println!(
        "{label:<22} sent {count:>4}  processed {:>4} ({:>5.1}/s)  dropped {dropped:>4}  errors {errors}  latency ms p50 {:>6.1}  p95 {:>6.1}  max {:>6.1}",
        latencies.len(),
        latencies.len() as f64 / wall,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        latencies.last().copied().unwrap_or(f64::NAN),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; nothing here takes arguments.
    let app = common::spawn_with(facegate::settings::StoreKind::Sqlite, |s| {
        common::use_fast_pipeline(s);
        s.face.workers = 2;
        s.stream.max_fps = 1000;
    })
    .await
    .unwrap();
    let frames = common::clip("d12.mjpeg");
    common::enrol_d12(&app, &frames).await;
    println!("d12.mjpeg 480x480, fast pipeline, one stream worker, one client");
    run(
        &app,
        &frames,
        "paced 25 fps",
        250,
        Duration::from_millis(40),
    )
    .await;
    run(
        &app,
        &frames,
        "paced 30 fps",
        300,
        Duration::from_micros(33_333),
    )
    .await;
    run(
        &app,
        &frames,
        "paced 60 fps",
        600,
        Duration::from_micros(16_667),
    )
    .await;
    run(
        &app,
        &frames,
        "flood (all at once)",
        frames.len(),
        Duration::ZERO,
    )
    .await;
}
