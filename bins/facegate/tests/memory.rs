//! Memory before any bound: a flood of large bodies and of PNGs that
//! decompress to big pixel buffers, against the real server binary (its own
//! process, so its peak RSS is its own): only 200, 4xx or 503 answers, the
//! server healthy after, and its peak RSS within a bound derived from the
//! configuration.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

const WORKERS: u64 = 2;
const BODY_LIMIT: u64 = 11 * 1024 * 1024;
const INFLIGHT: u64 = 32 * 1024 * 1024;
/// `face.max_full_decode_pixels`' default.
const FULL_DECODE_PIXELS: u64 = 16_000_000;

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn start(port: u16, data: &std::path::Path) -> Child {
    common::facegate_binary(env!("CARGO_BIN_EXE_facegate"), data)
        .env("FACEGATE__FACE__WORKERS", WORKERS.to_string())
        .env("FACEGATE__FACE__QUEUE_DEPTH", "16")
        .env("FACEGATE__SERVER__PORT", port.to_string())
        .env("FACEGATE__SERVER__BODY_LIMIT_BYTES", BODY_LIMIT.to_string())
        .env(
            "FACEGATE__SERVER__MAX_INFLIGHT_BODY_BYTES",
            INFLIGHT.to_string(),
        )
        .env("FACEGATE__SECURITY__AUTH", "false")
        .env("FACEGATE__SECURITY__RATE_PER_IP_PER_MINUTE", "0")
        .env("FACEGATE__LOG__LEVEL", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A PNG of `w`×`h` grey pixels: a few kilobytes that decode to w·h·3 bytes.
fn grey_png(w: u32, h: u32) -> Vec<u8> {
    use face_core::image::{codecs::png::PngEncoder, ExtendedColorType, ImageEncoder};
    let pixels = vec![128u8; (w * h * 3) as usize];
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(&pixels, w, h, ExtendedColorType::Rgb8)
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn floods_of_big_bodies_and_decompression_bombs_stay_bounded() {
    let data = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = start(port, data.path());
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !client
        .get(format!("{base}/health"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let baseline_kib = status_kib(child.id(), "VmRSS:");

    // 50 concurrent bodies of 10 MB (base64 of random bytes: not an image).
    let junk: Vec<u8> = (0..7_500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let body = json!({ "image": common::b64(&junk) }).to_string();
    assert!(body.len() > 10_000_000);
    // 20 concurrent PNGs of 15.2 MP (decoded in full), and 20 of 49 MP (over
    // the full-decode limit: refused from the header).
    let decodable = json!({ "image": common::b64(&grey_png(3900, 3900)) }).to_string();
    let bomb = json!({ "image": common::b64(&grey_png(7000, 7000)) }).to_string();
    let flood = |payloads: Vec<(String, usize)>| {
        let (client, url) = (client.clone(), format!("{base}/recognize/"));
        async move {
            let mut tasks = Vec::new();
            for (payload, n) in payloads {
                for _ in 0..n {
                    let (client, url, payload) = (client.clone(), url.clone(), payload.clone());
                    tasks.push(tokio::spawn(async move {
                        let res = client
                            .post(url)
                            .header("content-type", "application/json")
                            .body(payload)
                            .send()
                            .await
                            .unwrap();
                        res.status().as_u16()
                    }));
                }
            }
            let mut statuses = std::collections::BTreeMap::new();
            for t in tasks {
                *statuses.entry(t.await.unwrap()).or_insert(0) += 1;
            }
            statuses
        }
    };
    let statuses = flood(vec![(body, 50), (decodable, 20)]).await;
    println!("answers by status: {statuses:?}");
    assert!(
        statuses
            .keys()
            .all(|s| *s == 200 || (400..500).contains(s) || *s == 503),
        "{statuses:?}"
    );
    assert!(
        statuses.contains_key(&503),
        "the body budget refused some: {statuses:?}"
    );
    let bombs = flood(vec![(bomb, 20)]).await;
    println!("49 MP PNGs by status: {bombs:?}");
    assert_eq!(
        bombs.get(&413),
        Some(&20),
        "refused from the header: {bombs:?}"
    );
    let res = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200, "healthy after the flood");

    // The bound: what was resident before, four times the in-flight body
    // budget (bytes, base64 text, decoded bytes, parser copies), and per
    // worker one full decode at the limit (8 bytes a pixel for 16-bit RGBA
    // plus the RGB8 copy), with 128 MiB for everything else. Before these
    // bounds, 50 bodies of 10 MB alone held about 2 GB.
    let bound_kib =
        baseline_kib + 4 * INFLIGHT / 1024 + WORKERS * FULL_DECODE_PIXELS * 11 / 1024 + 128 * 1024;
    let peak_kib = status_kib(child.id(), "VmHWM:");
    println!(
        "peak RSS {} MiB (baseline {} MiB, bound {} MiB)",
        peak_kib / 1024,
        baseline_kib / 1024,
        bound_kib / 1024
    );
    assert!(
        peak_kib <= bound_kib,
        "peak {peak_kib} KiB over the bound {bound_kib} KiB"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
