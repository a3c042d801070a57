//! Durability across a crash: enrol, kill the server with SIGKILL, start it
//! again on the same data directory, and the person is still recognised.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(port: u16, data: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_facegate"))
        .current_dir(common::workspace())
        .env("FACEGATE_CONFIG_DIR", common::workspace().join("config"))
        .env("FACEGATE__SERVER__PORT", port.to_string())
        .env("FACEGATE__STORE__DATA_DIR", data)
        .env("FACEGATE__FACE__WORKERS", "1")
        .env(
            "FACEGATE__FACE__MODELS_DIR",
            common::workspace().join("models"),
        )
        .env("FACEGATE__LOG__LEVEL", "warn")
        .env("FACEGATE__THRESHOLDS__EXPECTED_GALLERY_SIZE", "100")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(res) = client.get(format!("{base}/health")).send().await {
            if res.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "server did not become healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_survives_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    let mut server = start(port, data.path());
    wait_healthy(&client, &base).await;
    let body = serde_json::json!({
        "name": "Rose Leslie",
        "image": common::b64(&common::photo("people/rose_leslie/face_recognition_img1.jpg")),
    });
    let res = client
        .post(format!("{base}/register/"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, reg) = common::read(res).await;
    assert_eq!(status, 200, "{reg}");
    // SIGKILL right after the success reply: no graceful shutdown, no flush.
    server.kill().unwrap();
    server.wait().unwrap();

    let mut server = start(port, data.path());
    wait_healthy(&client, &base).await;
    let probe = serde_json::json!({
        "image": common::b64(&common::photo("people/rose_leslie/face_recognition_img2.jpg")),
    });
    let res = client
        .post(format!("{base}/recognize/"))
        .json(&probe)
        .send()
        .await
        .unwrap();
    let (status, rec) = common::read(res).await;
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["match"], true, "{rec}");
    assert_eq!(rec["user_id"], reg["user_id"]);
    assert_eq!(rec["name"], "Rose Leslie");
}
