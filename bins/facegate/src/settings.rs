//! Typed settings, layered from `config/default.toml`, an optional
//! `config/$FACEGATE_ENV.toml`, and `FACEGATE__SECTION__KEY` environment
//! variables. Invalid settings stop startup with a message naming the key,
//! and so do unknown ones (a typo such as `FACEGATE__SERVER__PROT` or
//! `treshold` in a file would otherwise be silently ignored): every section
//! refuses fields it does not know.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// All settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// HTTP server.
    pub server: ServerSettings,
    /// Storage.
    pub store: StoreSettings,
    /// Face pipeline.
    pub face: FaceSettings,
    /// Thresholds.
    pub thresholds: ThresholdSettings,
    /// Logging.
    pub log: LogSettings,
    /// API keys, rate limits, lockout, CORS.
    pub security: SecuritySettings,
    /// The WebSocket stream.
    #[serde(default)]
    pub stream: StreamSettings,
}

/// `[stream]`: the limits of `GET /stream`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamSettings {
    /// Largest WebSocket message (one frame); larger closes with 1009.
    pub max_frame_bytes: usize,
    /// Frames per second a stream may send; faster ones are dropped with
    /// a `dropped` event (reason `rate`), never a close.
    pub max_fps: u32,
    /// Streams one API key may hold open at once.
    pub max_streams_per_key: usize,
    /// Seconds without a message before the stream is closed.
    pub idle_timeout_secs: u64,
    /// Seconds a stream may last.
    pub max_session_secs: u64,
    /// Face workers all streams together may hold (0: all but one).
    pub max_workers: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            max_frame_bytes: 2 * 1024 * 1024,
            max_fps: 30,
            max_streams_per_key: 4,
            idle_timeout_secs: 30,
            max_session_secs: 3600,
            max_workers: 0,
        }
    }
}

/// Where the rate limits keep their state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateStoreKind {
    /// In this process (one instance).
    Memory,
    /// In Redis, shared by every instance.
    Redis,
}

/// `[security]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    /// Require an API key on every route but `/health` and the docs. Only
    /// an explicit `false` switches it off (startup then warns loudly).
    pub auth: bool,
    /// Requests per minute per API key (0: unlimited).
    pub rate_per_key_per_minute: u32,
    /// Requests per minute per client address, keyed or not (0: unlimited).
    pub rate_per_ip_per_minute: u32,
    /// Extra requests a client may send at once above the steady rate.
    pub rate_burst: u32,
    /// Where the limits keep their state: this process, or Redis (shared
    /// by every instance).
    pub rate_store: RateStoreKind,
    /// The Redis URL for `rate_store = "redis"`; from the environment only
    /// (`FACEGATE__SECURITY__REDIS_URL`), since it may hold a password.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// How long a limit check waits for Redis before refusing, ms.
    pub redis_timeout_ms: u64,
    /// Consecutive failed verifications after which attempts are delayed.
    pub lockout_delay_after: u32,
    /// The delay, seconds (at least 30).
    pub lockout_delay_secs: u32,
    /// Consecutive failed verifications after which verification of the
    /// user is disabled until an administrator resets it (at most 50).
    pub lockout_disable_after: u32,
    /// Failed identifications (no face matched) allowed per API key and
    /// per client address a minute, then 429; 0 switches the budget off.
    pub failed_identifications_per_minute: u32,
    /// Refused authentications are written to the audit log once per
    /// client per this many seconds, with their count.
    pub auth_failure_audit_secs: u64,
    /// Presentation-attack detection every verification and
    /// identification must pass: `off`, `passive` (needs the PAD files
    /// and a calibration for the detector, or startup refuses), or
    /// `challenge` (as passive, and verification needs the token of a
    /// passed liveness session).
    pub require_liveness: face_service::LivenessMode,
    /// How long a liveness challenge session may take to be answered,
    /// seconds (10..=600).
    pub liveness_session_ttl_secs: u32,
    /// How long a passed session's token may wait to be redeemed, seconds
    /// (1..=600).
    pub liveness_token_ttl_secs: u32,
    /// Origins allowed to call the API from a browser; none by default.
    pub cors_origins: Vec<String>,
    /// PEM certificate chain for TLS; TLS is on when both files are set.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

impl SecuritySettings {
    /// How long challenge sessions and tokens last, checked.
    pub fn challenge_times(&self) -> Result<face_service::sessions::ChallengeTimes, SettingsError> {
        face_service::sessions::ChallengeTimes::new(
            self.liveness_session_ttl_secs,
            self.liveness_token_ttl_secs,
        )
        .map_err(|e| SettingsError(format!("security.liveness_*_ttl_secs: {e}")))
    }

    /// The lockout rule, checked against NIST's bounds.
    pub fn lockout(&self) -> Result<face_service::lockout::LockoutRule, SettingsError> {
        face_service::lockout::rule(
            self.lockout_delay_after,
            self.lockout_delay_secs,
            self.lockout_disable_after,
        )
        .map_err(|e| SettingsError(format!("security.lockout: {e}")))
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to bind.
    pub host: String,
    /// Port; 0 picks a free one (tests).
    pub port: u16,
    /// Largest request body in bytes.
    pub body_limit_bytes: usize,
    /// Request-body bytes held at once by all requests together (at least
    /// one body of `body_limit_bytes`); beyond it, 503 busy.
    pub max_inflight_body_bytes: usize,
    /// Grace period on shutdown.
    pub shutdown_timeout_secs: u64,
    /// Proxies (addresses or CIDR blocks) whose `X-Forwarded-For` names
    /// the client; none by default (the TCP peer is the client).
    pub trusted_proxies: Vec<String>,
    /// Most users `GET /users/` returns without paging parameters; beyond
    /// it, a 422 tells the client to page.
    #[serde(default = "default_max_list_users")]
    pub max_list_users: usize,
    /// A second listener (`host:port`) that serves `GET /metrics` without
    /// an API key, for a scraper on the operator's network; none by
    /// default (then `/metrics` is on the main listener with `admin`).
    #[serde(default)]
    pub metrics_address: Option<String>,
}

fn default_max_list_users() -> usize {
    100_000
}

/// Which store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL with pgvector.
    Postgres,
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// Which store.
    pub kind: StoreKind,
    /// Directory for the SQLite file.
    pub data_dir: PathBuf,
    /// PostgreSQL URL; from the environment only.
    #[serde(default)]
    pub postgres_url: Option<String>,
    /// PostgreSQL pool size.
    #[serde(default = "default_pool")]
    pub pool_size: usize,
}

fn default_pool() -> usize {
    16
}

/// Which face backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendSetting {
    /// dlib: HOG or CNN detector, ResNet 128-D (Euclidean).
    Dlib,
    /// ONNX Runtime: YuNet/SCRFD detector, ArcFace-family embedder (cosine).
    Onnx,
}

/// Which dlib detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectorSetting {
    /// dlib HOG.
    Hog,
    /// dlib CNN.
    Cnn,
}

impl FaceSettings {
    /// The backend to build, for face-core's factory.
    pub fn backend_config(&self) -> face_core::backend::BackendConfig {
        use face_core::backend::BackendConfig;
        match self.backend {
            BackendSetting::Dlib => BackendConfig::Dlib {
                detector: match self.detector {
                    DetectorSetting::Hog => face_core::dlib::DetectorKind::Hog,
                    DetectorSetting::Cnn => face_core::dlib::DetectorKind::Cnn,
                },
            },
            BackendSetting::Onnx => BackendConfig::Onnx(Box::new(self.onnx.clone())),
        }
    }
}

/// `[face]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaceSettings {
    /// Backend.
    pub backend: BackendSetting,
    /// dlib detector (with `backend = "dlib"`).
    pub detector: DetectorSetting,
    /// `[face.onnx]` (with `backend = "onnx"`): runtime, detector and
    /// embedder models and their parameters.
    #[serde(default)]
    pub onnx: face_core::onnx::OnnxOptions,
    /// Models directory; empty for the standard search.
    pub models_dir: String,
    /// Worker threads; 0 = cores.
    pub workers: usize,
    /// Queue depth.
    pub queue_depth: usize,
    /// Working-copy size.
    pub max_working_side: u32,
    /// Enrolment minimum face size, as the distance between the eye
    /// centres in the photo's pixels; unset: the detector's own (35.5 for
    /// the ONNX detectors, 34.5 for dlib's landmarks: both stand for a
    /// face whose dlib box is 80 px).
    #[serde(default)]
    pub min_eye_distance: Option<f32>,
    /// Faces of one photo an identification embeds and searches (the
    /// largest; the answer counts the others).
    pub max_faces_per_request: usize,
}

/// `[thresholds]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdSettings {
    /// Calibration directory.
    pub calibration_dir: PathBuf,
    /// Identification never assumes fewer comparisons than this (FPIR ≤ 1 %
    /// is kept for the larger of this and the templates enrolled).
    pub expected_gallery_size: u32,
    /// Start without a calibration file for the active model, on dlib's
    /// published 0.6 (dlib only; reported as uncalibrated in `/stats/`).
    pub allow_uncalibrated: bool,
    /// The most face templates of one model a user may have.
    pub max_templates_per_user: usize,
}

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// Format.
    pub format: LogFormat,
    /// Filter.
    pub level: String,
}

/// A setting that is wrong, by key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct SettingsError(pub String);

impl Settings {
    /// Loads settings from `config_dir` and the environment.
    pub fn load(config_dir: &Path) -> Result<Self, SettingsError> {
        let env = std::env::var("FACEGATE_ENV").unwrap_or_else(|_| "local".into());
        let built = config::Config::builder()
            .add_source(config::File::from(config_dir.join("default")).required(true))
            .add_source(config::File::from(config_dir.join(&env)).required(false))
            .add_source(
                config::Environment::with_prefix("FACEGATE")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    // The list settings, comma separated in the
                    // environment (`FACEGATE__SERVER__TRUSTED_PROXIES=10.0.0.10/32,10.0.1.0/24`);
                    // every other value stays one string.
                    .list_separator(",")
                    .with_list_parse_key("server.trusted_proxies")
                    .with_list_parse_key("security.cors_origins"),
            )
            .build()
            .map_err(|e| SettingsError(format!("{e} (config dir {})", config_dir.display())))?;
        let settings: Settings = built
            .try_deserialize()
            .map_err(|e| SettingsError(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bad = |key: &str, msg: &str| Err(SettingsError(format!("{key}: {msg}")));
        self.security.challenge_times()?;
        if self.server.max_list_users == 0 {
            return bad("server.max_list_users", "must be at least 1");
        }
        if self.server.body_limit_bytes < 1024 {
            return bad("server.body_limit_bytes", "must be at least 1024");
        }
        if self.server.max_inflight_body_bytes < self.server.body_limit_bytes {
            return bad(
                "server.max_inflight_body_bytes",
                "must be at least server.body_limit_bytes (room for one body)",
            );
        }
        if self.face.queue_depth == 0 {
            return bad("face.queue_depth", "must be at least 1");
        }
        let onnx = &self.face.onnx;
        if onnx.detector.input_size < 32 || !onnx.detector.input_size.is_multiple_of(32) {
            return bad(
                "face.onnx.detector.input_size",
                "must be a positive multiple of 32",
            );
        }
        if !(0.0..=1.0).contains(&onnx.detector.score_threshold) {
            return bad("face.onnx.detector.score_threshold", "must be within 0..=1");
        }
        if !(0.0..=1.0).contains(&onnx.detector.nms_iou) {
            return bad("face.onnx.detector.nms_iou", "must be within 0..=1");
        }
        if !(onnx.detector.max_upscale.is_finite() && onnx.detector.max_upscale > 0.0) {
            return bad(
                "face.onnx.detector.max_upscale",
                "must be a positive number",
            );
        }
        if onnx.embedder.max_batch == 0 {
            return bad("face.onnx.embedder.max_batch", "must be at least 1");
        }
        if let Some(d) = self.face.min_eye_distance {
            if !(d.is_finite() && (8.0..=1000.0).contains(&d)) {
                return bad(
                    "face.min_eye_distance",
                    "must be within 8..=1000 pixels (or left out for the detector's own)",
                );
            }
        }
        if !(1..=100).contains(&self.face.max_faces_per_request) {
            return bad("face.max_faces_per_request", "must be within 1..=100");
        }
        if self.face.max_working_side < 160 {
            return bad("face.max_working_side", "must be at least 160");
        }
        if self.security.rate_store == RateStoreKind::Redis
            && self.security.redis_url.as_deref().unwrap_or("").is_empty()
        {
            return bad(
                "security.redis_url",
                "is required when security.rate_store = \"redis\"; set FACEGATE__SECURITY__REDIS_URL (redis://host:port)",
            );
        }
        if !(10..=10_000).contains(&self.security.redis_timeout_ms) {
            return bad("security.redis_timeout_ms", "must be within 10..=10000");
        }
        if self.store.kind == StoreKind::Postgres
            && self.store.postgres_url.as_deref().unwrap_or("").is_empty()
        {
            return bad(
                "store.postgres_url",
                "is required when store.kind = \"postgres\"; set FACEGATE__STORE__POSTGRES_URL",
            );
        }
        if self.thresholds.expected_gallery_size == 0 {
            return bad("thresholds.expected_gallery_size", "must be at least 1");
        }
        if !(1..=1000).contains(&self.thresholds.max_templates_per_user) {
            return bad(
                "thresholds.max_templates_per_user",
                "must be within 1..=1000",
            );
        }
        self.security.lockout()?;
        for origin in &self.security.cors_origins {
            if !(origin.starts_with("https://") || origin.starts_with("http://"))
                || origin.ends_with('/')
            {
                return bad(
                    "security.cors_origins",
                    "each origin is scheme://host[:port] with no path, e.g. https://app.example.com",
                );
            }
        }
        if self.security.tls_cert.is_some() != self.security.tls_key.is_some() {
            return bad(
                "security.tls_cert",
                "TLS needs both tls_cert and tls_key (PEM files)",
            );
        }
        if let Err(e) = crate::client::parse_proxies(&self.server.trusted_proxies) {
            return bad("server.trusted_proxies", &e);
        }
        if !(1..=3600).contains(&self.security.auth_failure_audit_secs) {
            return bad(
                "security.auth_failure_audit_secs",
                "must be within 1..=3600",
            );
        }
        if self.store.pool_size == 0 {
            return bad("store.pool_size", "must be at least 1");
        }
        Ok(())
    }
}
