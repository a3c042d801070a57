//! Durability across a crash: enrol, kill the server with SIGKILL, start it
//! again on the same data directory, and the person is still recognised;
//! a verification lockout holds across the same crash. The key comes from
//! `facegate keys create`, as an operator's first key does. One SQLite
//! directory is one server's: a second is refused, and a stopped one lets
//! go of it at once.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn facegate(data: &std::path::Path) -> Command {
    let mut cmd = common::facegate_binary(env!("CARGO_BIN_EXE_facegate"), data);
    cmd.env("FACEGATE__FACE__WORKERS", "1")
        .env("FACEGATE__LOG__LEVEL", "warn")
        .env("FACEGATE__THRESHOLDS__EXPECTED_GALLERY_SIZE", "100");
    cmd
}

/// `facegate keys create`: the token it prints.
fn create_key(data: &std::path::Path, scopes: &str) -> String {
    common::create_key(facegate(data), "restart test", scopes)
}

fn start(port: u16, data: &std::path::Path) -> Child {
    facegate(data)
        .env("FACEGATE__SERVER__PORT", port.to_string())
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
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = common::client_with_key(&create_key(data.path(), "admin"));

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_survives_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = common::client_with_key(&create_key(data.path(), "admin"));
    let mut server = start(port, data.path());
    wait_healthy(&client, &base).await;
    let post = |path: String, rel: &'static str| {
        let client = client.clone();
        async move {
            let res = client
                .post(path)
                .json(&serde_json::json!({ "name": "Rose Leslie", "image": common::b64(&common::photo(rel)) }))
                .send()
                .await
                .unwrap();
            let retry_after = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let (status, body) = common::read(res).await;
            (status, body, retry_after)
        }
    };
    let (status, reg, _) = post(
        format!("{base}/register/"),
        "people/rose_leslie/face_recognition_img1.jpg",
    )
    .await;
    assert_eq!(status, 200, "{reg}");
    let id = reg["user_id"].as_i64().unwrap();
    let verify = format!("{base}/users/{id}/verify");
    // Five failed verifications with someone else's face.
    for n in 1..=5 {
        let (status, v, _) = post(
            verify.clone(),
            "people/kit_harington/face_recognition_john1.jpeg",
        )
        .await;
        assert_eq!(status, 200, "attempt {n}: {v}");
        assert_eq!(v["match"], false, "attempt {n}: {v}");
    }
    // The sixth is delayed, even with the right face.
    let (status, v, retry) = post(
        verify.clone(),
        "people/rose_leslie/face_recognition_img2.jpg",
    )
    .await;
    assert_eq!(status, 429, "{v}");
    assert_eq!(v["error"], "verification_delayed");
    let retry: u64 = retry.unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");

    server.kill().unwrap();
    server.wait().unwrap();
    let mut server = start(port, data.path());
    wait_healthy(&client, &base).await;
    let (status, v, retry) = post(
        verify.clone(),
        "people/rose_leslie/face_recognition_img2.jpg",
    )
    .await;
    let res = client
        .get(format!("{base}/admin/users/{id}/lockout"))
        .send()
        .await
        .unwrap();
    let (_, lockout) = common::read(res).await;
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(status, 429, "the lockout must survive the restart: {v}");
    assert!(retry.is_some());
    assert_eq!(lockout["failures"], 5, "{lockout}");
    assert!(lockout["locked_until"].is_string(), "{lockout}");
}

/// The binary on the fast ONNX pipeline (YuNet-n + MobileFaceNet from the
/// shared models, with the PAD files there).
fn fast(cmd: &mut Command) -> &mut Command {
    let models = common::shared().join("models/onnx");
    let runtime = std::env::var_os("ORT_DYLIB_PATH")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| common::workspace().join("runtime/libonnxruntime.so"));
    cmd.env("FACEGATE_ENV", "fast")
        .env("FACEGATE__FACE__BACKEND", "onnx")
        .env("FACEGATE__FACE__MODELS_DIR", models)
        .env("FACEGATE__FACE__ONNX__RUNTIME__LIBRARY", runtime)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_liveness_session_created_before_a_crash_is_answered_after_it() {
    let data = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = common::client_with_key(&create_key(data.path(), "admin"));
    let start = || {
        fast(&mut facegate(data.path()))
            .env("FACEGATE__SERVER__PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    };
    let post = |path: &str, body: serde_json::Value| {
        let req = client.post(format!("{base}{path}")).json(&body);
        async move { common::read(req.send().await.unwrap()).await }
    };
    let mut server = start();
    wait_healthy(&client, &base).await;
    let d12 = common::clip("d12.mjpeg");
    let (status, reg) = post(
        "/register/",
        serde_json::json!({"name": "Man With Glasses", "image": common::b64(&d12[120])}),
    )
    .await;
    assert_eq!(status, 200, "{reg}");
    let id = reg["user_id"].as_i64().unwrap();
    // A session whose steps d12 covers.
    let (sid, run) = loop {
        let (status, s) = post(
            "/liveness/sessions",
            serde_json::json!({"purpose": "verify", "user_id": id}),
        )
        .await;
        assert_eq!(status, 201, "{s}");
        if let Some(run) = common::d12_run(&common::steps_of(&s)) {
            break (s["id"].as_str().unwrap().to_string(), run);
        }
    };
    server.kill().unwrap();
    server.wait().unwrap();

    let mut server = start();
    wait_healthy(&client, &base).await;
    let frames = &d12[run];
    // As if filmed at 25 a second since the session began (the restart
    // took some of it).
    tokio::time::sleep(Duration::from_millis(40 * frames.len() as u64)).await;
    let res = client
        .post(format!("{base}/liveness/sessions/{sid}/frames"))
        .multipart(common::frames_form(frames))
        .send()
        .await
        .unwrap();
    let (status, result) = common::read(res).await;
    let verify = match result["token"].as_str() {
        Some(token) => Some(
            post(
                &format!("/users/{id}/verify"),
                serde_json::json!({"image": common::b64(&d12[0]), "liveness_token": token}),
            )
            .await,
        ),
        None => None,
    };
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["passed"], true, "{result}");
    let (status, v) = verify.unwrap();
    assert_eq!(
        (status, &v["match"]),
        (200, &serde_json::json!(true)),
        "{v}"
    );
}

/// The SQLite store is one server's: a second server on the same data
/// directory refuses to start, naming the first's pid, while an admin
/// command still works beside the first; once the first is killed, a new
/// server starts on the directory (the lock went with the process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_one_sqlite_directory_refuses_to_start() {
    let data = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = common::client_with_key(&create_key(data.path(), "admin"));
    let mut first = start(port, data.path());
    wait_healthy(&client, &base).await;
    create_key(data.path(), "recognize");

    let mut second = facegate(data.path())
        .env("FACEGATE__SERVER__PORT", common::free_port().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            second.kill().unwrap();
            panic!("a second server on the same SQLite directory kept running");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("another FaceGate server (pid {})", first.id())),
        "{stderr}"
    );
    let (status, _) =
        common::read(client.get(format!("{base}/users/")).send().await.unwrap()).await;
    assert_eq!(status, 200, "the first server is untouched");

    first.kill().unwrap();
    first.wait().unwrap();
    let mut again = start(port, data.path());
    wait_healthy(&client, &base).await;
    again.kill().unwrap();
    again.wait().unwrap();
}

/// A server stopped gracefully in this process lets go of its SQLite
/// directory by the time its run returns, so the next one starts on it at
/// once (the workers drop their copies of the state a moment after the
/// server's future ends; model_switch.rs once lost that race).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_frees_its_data_directory_for_the_next_at_once() {
    let data = tempfile::tempdir().unwrap();
    for _ in 0..5 {
        let mut app = common::spawn_with(facegate::settings::StoreKind::Sqlite, |s| {
            common::use_fast_pipeline(s);
            s.store.data_dir = data.path().to_path_buf();
        })
        .await
        .unwrap();
        // Requests on several connections, so that several workers hold
        // the app when it stops.
        let requests = (0..8).map(|_| {
            let client = reqwest::Client::new();
            let url = app.url("/health");
            async move { client.get(url).send().await.unwrap().status() }
        });
        for status in futures_util::future::join_all(requests).await {
            assert_eq!(status, 200);
        }
        app.stop().await;
    }
}
