//! Building the application: models, store, service, HTTP server.
//!
//! `Application::build` binds the listener first, so tests pass port 0 and
//! read the real port back before the server runs.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::http::{header, Method};
use actix_web::middleware::{from_fn, Condition, DefaultHeaders};
use actix_web::{web, App, HttpServer};
use face_core::calibration::{Calibration, CalibrationError};
use face_core::liveness::calibration::PadCalibration;
use face_core::models::ModelLocator;
use face_core::{PipelineOptions, QualityPolicy};
use face_service::{FaceService, FaceWorkers, Liveness, Thresholds};
use face_store::{FaceStore, PgStore, PostgresConfig, SqliteConfig, SqliteStore};

use crate::error::ApiError;
use crate::routes;
use crate::settings::{Settings, SettingsError, StoreKind};
use crate::state::{AppState, Guard};

/// A built, bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    /// The metrics listener (`server.metrics_address`) and its port.
    metrics: Option<(u16, Server)>,
    state: web::Data<AppState>,
}

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Models missing or corrupt, or the pipeline failed to load.
    #[error("face models: {0}")]
    Models(#[from] face_core::FaceError),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] face_store::StoreError),
    /// The service could not start.
    #[error("service: {0}")]
    Service(#[from] face_service::ServiceError),
    /// No usable calibration for the active model.
    #[error("calibration: {0}")]
    Calibration(String),
    /// Settings that parse but cannot be used.
    #[error("settings: {0}")]
    Settings(#[from] crate::settings::SettingsError),
    /// The TLS certificate or key could not be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// `security.require_liveness` cannot be met.
    #[error("liveness: {0}")]
    Liveness(String),
    /// The metrics recorder could not be installed.
    #[error("metrics: {0}")]
    Metrics(String),
    /// Another server holds the SQLite data directory.
    #[error("{0}")]
    DataDirInUse(String),
    /// Binding the port failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
}

impl Application {
    /// Loads models, opens the store and binds the port.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let metrics = crate::metrics::handle().map_err(StartupError::Metrics)?;
        let data_dir_lock = match settings.store.kind {
            StoreKind::Sqlite => Some(claim_data_dir(&settings.store.data_dir)?),
            StoreKind::Postgres => None,
        };
        let service = build_service(&settings).await?;
        crate::metrics::build_info(service.backend(), &service.model().id);
        let addr = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&addr).map_err(|source| StartupError::Bind {
            addr: addr.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(settings.server.port);
        let security = &settings.security;
        if !security.auth {
            for _ in 0..3 {
                tracing::warn!(
                    "AUTHENTICATION IS OFF (security.auth = false): anyone who can reach this \
                     port can enrol, identify, verify and delete people. Run it only behind a \
                     gateway that authenticates callers."
                );
            }
        }
        let openapi =
            crate::openapi::document_json(face_service::Threshold::range(service.model().metric));
        let state = web::Data::new(AppState {
            service,
            bodies: crate::input::BodyBudget::new(
                settings.server.body_limit_bytes,
                settings.server.max_inflight_body_bytes,
            ),
            openapi,
            max_list_users: settings.server.max_list_users,
            metrics,
            streams: std::sync::Arc::new(crate::state::StreamLimits::new(settings.stream.clone())),
            data_dir_lock,
            guard: Guard {
                enabled: security.auth,
                proxies: crate::client::parse_proxies(&settings.server.trusted_proxies)
                    .map_err(|e| SettingsError(format!("server.trusted_proxies: {e}")))?,
            },
        });
        housekeeping(
            state.clone(),
            Duration::from_secs(security.auth_failure_audit_secs),
        );
        let state_handle = state.clone();
        let query_cfg = web::QueryConfig::default()
            .error_handler(|err, _| ApiError::invalid("query", err).into());
        let json_cfg = web::JsonConfig::default()
            .limit(64 * 1024)
            .error_handler(|err, _| ApiError::invalid("body", err).into());
        let tls = match (&security.tls_cert, &security.tls_key) {
            (Some(cert), Some(key)) => Some(
                crate::tls::server_config(cert, key)
                    .map_err(|e| StartupError::Tls(e.to_string()))?,
            ),
            _ => None,
        };
        let hsts = tls.is_some();
        let origins = security.cors_origins.clone();
        let server = HttpServer::new(move || {
            let mut headers = DefaultHeaders::new()
                .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .add((header::X_FRAME_OPTIONS, "DENY"))
                .add((header::REFERRER_POLICY, "no-referrer"))
                .add((header::CACHE_CONTROL, "no-store"))
                .add((
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; frame-ancestors 'none'",
                ));
            if hsts {
                headers = headers.add((header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"));
            }
            App::new()
                .wrap(from_fn(crate::auth::guard))
                .wrap(headers)
                .wrap(Condition::new(!origins.is_empty(), cors(&origins)))
                .wrap(tracing_actix_web::TracingLogger::<
                    crate::telemetry::RequestSpan,
                >::new())
                .wrap(from_fn(crate::metrics::http))
                .app_data(state.clone())
                .app_data(query_cfg.clone())
                .app_data(json_cfg.clone())
                .configure(routes::configure)
                .default_service(web::to(routes::not_found))
        })
        .on_connect(|conn, data| {
            if let Some(socket) = crate::client::PeerSocket::of_connection(conn) {
                data.insert(socket);
            }
        })
        .shutdown_timeout(settings.server.shutdown_timeout_secs);
        let server = match tls {
            Some(config) => server.listen_rustls_0_23(listener, config),
            None => server.listen(listener),
        }
        .map_err(|source| StartupError::Bind { addr, source })?
        .run();
        let metrics = match &settings.server.metrics_address {
            Some(addr) => Some(metrics_listener(addr, state_handle.clone())?),
            None => None,
        };
        Ok(Self {
            port,
            server,
            metrics,
            state: state_handle,
        })
    }

    /// The service behind the server (for tests and admin commands that
    /// run beside it, e.g. to create the first key).
    pub fn service(&self) -> &FaceService {
        &self.state.service
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The metrics listener's bound port, when `server.metrics_address` is
    /// set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// Stops the main listener when asked (`stop(true)`: gracefully,
    /// finishing the requests in flight), as SIGTERM does.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Runs until stopped (SIGINT/SIGTERM finish in-flight requests first).
    /// When it returns, the state is released: the store is closed and,
    /// with SQLite, the data directory's lock is free for the next server.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Self {
            server,
            metrics,
            state,
            ..
        } = self;
        let served = match metrics {
            Some((_, metrics)) => futures_util::future::try_join(server, metrics)
                .await
                .map(|_| ()),
            None => server.await,
        };
        released(state).await;
        served
    }
}

/// Waits, at most `RELEASE_WAIT`, until `state` is the last handle to the
/// state, then drops it. The server's future ends when its workers are told
/// to stop; each worker thread drops its copy of the app, and with it a
/// handle to the state, a moment later. Without the wait, a server started
/// on the same SQLite directory right after this one returned could find
/// the directory still claimed.
async fn released(state: web::Data<AppState>) {
    let state = state.into_inner();
    let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
    while Arc::strong_count(&state) > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if Arc::strong_count(&state) > 1 {
        tracing::warn!(
            handles = Arc::strong_count(&state) - 1,
            "the server stopped with its state still in use elsewhere; the store closes when \
             the last use ends"
        );
    }
}

/// How long a stopped server waits for its workers to let go of the state.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// The second listener: `GET /metrics` without a key, nothing else (every
/// other path is a JSON 404). For a scraper on the operator's network; the
/// address says who can reach it.
fn metrics_listener(addr: &str, state: web::Data<AppState>) -> Result<(u16, Server), StartupError> {
    let bind_error = |source| StartupError::Bind {
        addr: format!("{addr} (server.metrics_address)"),
        source,
    };
    let listener = TcpListener::bind(addr).map_err(bind_error)?;
    let port = listener.local_addr().map_err(bind_error)?.port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(routes::metrics::metrics))
            .default_service(web::to(routes::not_found))
    })
    .workers(1)
    .listen(listener)
    .map_err(bind_error)?
    .run();
    tracing::info!(port, "metrics listener: GET /metrics without a key");
    Ok((port, server))
}

/// The service alone (models, store, thresholds), for the server and for
/// admin commands.
pub async fn build_service(settings: &Settings) -> Result<FaceService, StartupError> {
    let face = &settings.face;
    let models_dir = (!face.models_dir.is_empty()).then(|| PathBuf::from(&face.models_dir));
    let locator = ModelLocator::new(models_dir.as_deref());
    let options = PipelineOptions {
        max_working_side: face.max_working_side,
        quality: QualityPolicy {
            min_eye_distance: face.min_eye_distance,
            ..QualityPolicy::default()
        },
        ..PipelineOptions::default()
    };
    let workers = if face.workers == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        face.workers
    };
    let mut built =
        face_core::backend::build(&settings.face.backend_config(), &locator, options, workers)?;
    let liveness = liveness_policy(&mut built, &locator, settings)?;
    let fingerprint = built.fingerprint;
    let workers = FaceWorkers::start(built.pipelines, face.queue_depth)?;
    tracing::info!(
        workers = workers.threads(),
        detector = workers.detector(),
        model = %workers.model().id,
        dimension = workers.model().dimension,
        metric = workers.model().metric.as_str(),
        execution = workers.execution(),
        "face workers started"
    );

    let (store, kind) = open_store(settings).await?;

    let thresholds = load_thresholds(settings, workers.model(), &fingerprint)?;
    let at_start = thresholds.report(0);
    tracing::info!(
        calibrated = at_start.calibrated,
        verify = at_start.verify,
        identify = at_start.identify.threshold,
        identify_comparisons = at_start.identify.comparisons,
        measured_comparisons_limit = at_start.measured_comparisons_limit,
        source = %at_start.source,
        "thresholds"
    );
    let service = FaceService::new(workers, store, kind, thresholds)
        .with_lockout(settings.security.lockout()?)
        .with_max_templates_per_user(settings.thresholds.max_templates_per_user)
        .with_max_faces_per_request(face.max_faces_per_request)
        .with_rate_limits(rate_limits(&settings.security)?)
        .with_liveness(liveness)
        .with_challenge_times(settings.security.challenge_times()?);
    let service = match settings.stream.max_workers {
        0 => service,
        n => service.with_stream_workers(n),
    };
    warn_if_enrolled_under_other_models(&service).await?;
    Ok(service)
}

/// The passive liveness check: the PAD files given to every pipeline and
/// the calibration of this detector, or why not. A requirement
/// (`security.require_liveness`) that cannot be met refuses to start,
/// naming what is missing; without one the server runs and `/stats/` says
/// the check is unavailable.
fn liveness_policy(
    built: &mut face_core::backend::Built,
    locator: &ModelLocator,
    settings: &Settings,
) -> Result<Liveness, StartupError> {
    let passive = face_core::backend::add_pad(built, locator, &settings.face.onnx.runtime)
        .and_then(|fingerprint| {
            PadCalibration::load(&settings.thresholds.calibration_dir, &fingerprint)
        })
        .map_err(|e| match e {
            face_core::FaceError::PadUnavailable { reason } => reason,
            other => other.to_string(),
        });
    match &passive {
        Ok(c) => tracing::info!(
            threshold = c.threshold,
            target_bpcer = c.target_bpcer,
            required = settings.security.require_liveness.as_str(),
            "passive liveness ready"
        ),
        Err(reason) => tracing::info!(
            required = settings.security.require_liveness.as_str(),
            "passive liveness unavailable: {reason}"
        ),
    }
    Liveness::new(passive, settings.security.require_liveness).map_err(StartupError::Liveness)
}

/// A store whose users were enrolled under another model (the default
/// pipeline changed, or the configuration did) recognises nobody until
/// they are re-enrolled: say so at startup, with the count and the way out.
async fn warn_if_enrolled_under_other_models(service: &FaceService) -> Result<(), StartupError> {
    let stats = service.stats().await?;
    if stats.templates == 0 && !stats.other_models.is_empty() {
        let others = stats
            .other_models
            .iter()
            .map(|(id, n)| format!("{n} of {id}"))
            .collect::<Vec<_>>()
            .join(", ");
        tracing::warn!(
            users = stats.total_users,
            active_model = %stats.model.id,
            "the store holds {} user(s) but no template of the active model {} (it holds \
             templates: {others}); nobody can be recognised until they are re-enrolled. \
             List them with `facegate reenrolment` (or GET /admin/reenrolment), or configure \
             the backend they were enrolled with to keep serving it",
            stats.total_users,
            stats.model.id
        );
    }
    Ok(())
}

/// The lock file of a SQLite data directory, held (an exclusive `flock`)
/// while this server runs. The SQLite store is one server's: its rate
/// limits, gallery count and search cache are this process's, so a second
/// server on the same file would double every limit. The lock goes with
/// the process, however it ends (a SIGKILL included), so it never needs
/// clearing by hand. Admin commands (`facegate keys ...`) do not take it
/// and work beside the running server.
fn claim_data_dir(dir: &std::path::Path) -> Result<std::fs::File, StartupError> {
    use std::io::{Read, Seek, Write};
    let path = dir.join("facegate-server.lock");
    std::fs::create_dir_all(dir).map_err(|e| {
        face_store::StoreError::Unavailable(format!(
            "cannot create data directory {}: {e}",
            dir.display()
        ))
    })?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| {
            face_store::StoreError::Unavailable(format!("cannot open {}: {e}", path.display()))
        })?;
    match file.try_lock() {
        Ok(()) => {
            // The holder's pid, for the next server's message.
            let _ = file.set_len(0);
            let _ = file.rewind();
            let _ = writeln!(file, "{}", std::process::id());
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            Err(StartupError::DataDirInUse(format!(
                "another FaceGate server (pid {}) is running on the SQLite store in {}: the \
                 embedded store is for one server. Stop it, give this one another \
                 store.data_dir, or run several instances on PostgreSQL \
                 (store.kind = \"postgres\", README \"Production\")",
                holder.trim(),
                dir.display()
            )))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(face_store::StoreError::Unavailable(format!(
            "cannot lock {}: {e}",
            path.display()
        ))
        .into()),
    }
}

/// The rate limits the settings ask for: in memory, or in Redis (the
/// connection is made on first use, so the server starts while Redis is
/// down and refuses limited requests until it answers).
fn rate_limits(
    security: &crate::settings::SecuritySettings,
) -> Result<std::sync::Arc<dyn face_service::limits::RateLimits>, StartupError> {
    use face_service::limits::{MemoryLimits, Quota, Quotas, SharedLimits};
    let quotas = Quotas {
        api_key: Quota {
            per_minute: security.rate_per_key_per_minute,
            burst: security.rate_burst,
        },
        client_address: Quota {
            per_minute: security.rate_per_ip_per_minute,
            burst: security.rate_burst,
        },
        failed_identifications_per_minute: security.failed_identifications_per_minute,
    };
    Ok(match security.rate_store {
        crate::settings::RateStoreKind::Memory => std::sync::Arc::new(MemoryLimits::new(quotas)),
        crate::settings::RateStoreKind::Redis => {
            let url = security.redis_url.as_deref().unwrap_or_default();
            let rates =
                face_store::RedisRates::new(url, Duration::from_millis(security.redis_timeout_ms))
                    .map_err(|e| SettingsError(format!("security.redis_url: {e}")))?;
            tracing::info!("rate limits shared through Redis");
            std::sync::Arc::new(SharedLimits::new(rates, quotas))
        }
    })
}

/// Periodic work beside the requests: refused authentications go to the
/// audit log once per window, and the rate limiters forget idle clients
/// (which bounds their memory). Ends with the last handle to the state.
fn housekeeping(state: web::Data<AppState>, window: Duration) {
    let weak = std::sync::Arc::downgrade(&state.into_inner());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(window);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(state) = weak.upgrade() else { break };
            state.service.limits().forget_idle();
            state.service.keys().flush_refused(window).await;
        }
    });
}

/// The configured store, opened and migrated, and its name for `/stats/`.
/// No face models: the `keys` admin command needs only this.
pub async fn open_store(
    settings: &Settings,
) -> Result<(Arc<dyn FaceStore>, &'static str), StartupError> {
    Ok(match settings.store.kind {
        StoreKind::Sqlite => {
            std::fs::create_dir_all(&settings.store.data_dir).map_err(|e| {
                face_store::StoreError::Unavailable(format!(
                    "cannot create data directory {}: {e}",
                    settings.store.data_dir.display()
                ))
            })?;
            let store =
                SqliteStore::open(SqliteConfig::in_data_dir(&settings.store.data_dir)).await?;
            tracing::info!(path = %store.path().display(), "embedded SQLite store open");
            (Arc::new(store), "sqlite")
        }
        StoreKind::Postgres => {
            let url = settings.store.postgres_url.clone().unwrap_or_default();
            let mut config = PostgresConfig::new(url);
            config.pool_size = settings.store.pool_size;
            let store = PgStore::open(config).await?;
            tracing::info!("PostgreSQL store open");
            (Arc::new(store), "postgresql")
        }
    })
}

/// CORS for the configured browser origins only: the methods and headers
/// the API uses, credentials never (keys travel in a header the page sets).
fn cors(origins: &[String]) -> Cors {
    origins
        .iter()
        .fold(Cors::default(), |c, o| c.allowed_origin(o))
        .allowed_methods([Method::GET, Method::POST, Method::DELETE])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("x-api-key"),
        ])
        .max_age(3600)
}

/// The decision policy for the active model, from its calibration file.
/// No file (or an unusable one) stops startup, naming the file and the fix,
/// unless `thresholds.allow_uncalibrated` is set and the model has a
/// published threshold (dlib's 0.6).
fn load_thresholds(
    settings: &Settings,
    model: &face_core::ModelInfo,
    pipeline: &face_core::calibration::PipelineFingerprint,
) -> Result<Thresholds, StartupError> {
    let dir = &settings.thresholds.calibration_dir;
    let expected = u64::from(settings.thresholds.expected_gallery_size);
    let path = Calibration::path_in(dir, &model.id)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| format!("{}/<model id>.json", dir.display()));
    let refused = match Calibration::find_for_pipeline(dir, model, pipeline) {
        Err(e @ CalibrationError::WrongPipeline { .. }) => {
            return Err(StartupError::Calibration(format!("{path}: {e}")));
        }
        Ok((cal, read)) => {
            let path = read.display().to_string();
            return Thresholds::from_calibration(
                &cal,
                expected,
                format!("calibration {path} ({})", cal.evidence.dataset),
            )
            .map_err(|e| StartupError::Calibration(format!("{path}: {e}")));
        }
        Err(e) => e,
    };
    let dlib = model.id == face_core::dlib::MODEL_ID;
    // Only a *missing* file may be waived: a file that exists but does not
    // parse or is for another model is a mistake to fix, not to run past.
    let missing = matches!(&refused, CalibrationError::Io { source, .. }
        if source.kind() == std::io::ErrorKind::NotFound);
    if dlib && missing && settings.thresholds.allow_uncalibrated {
        for _ in 0..3 {
            tracing::warn!(
                error = %refused,
                "NO CALIBRATION for {} (thresholds.allow_uncalibrated = true): using dlib's \
                 published 0.6, which measured FMR 6e-3 per comparison on LFW: against \
                 thousands of people nearly every stranger matches someone",
                model.id
            );
        }
        return Ok(Thresholds::dlib_published(expected));
    }
    let backend = if dlib { "" } else { " --backend onnx" };
    let escape = if dlib && missing {
        "; or, knowing that strangers will match, set thresholds.allow_uncalibrated = true"
    } else {
        ""
    };
    Err(StartupError::Calibration(format!(
        "no usable calibration for model {} at {path}: {refused}. Restore the shipped file \
         (config/calibration), point thresholds.calibration_dir at it, or measure one with \
         `cargo run --release -p facegate-eval -- lfw{backend}` with the same models{escape}",
        model.id
    )))
}
