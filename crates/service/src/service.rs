//! The use cases: enrol, add faces, identify, verify, list, delete, stats.
//!
//! Each takes validated values, runs face work on the worker pool and
//! storage work on the store, and returns plain data the server turns into
//! JSON. Biometric data (images, embeddings) never enters a span or a log
//! line: functions that touch it are instrumented with `skip`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use face_core::enrolment::{EnrolmentFace, EnrolmentRefusal};
use face_core::{
    Analysis, AnalyzedFace, BoundingBox, Embedding, FaceRequest, Metric as CoreMetric, ModelInfo,
};
use face_store::{FaceStore, Metric, ModelKey, NewTemplate, NewUser, Page, TemplateInfo, User};

use crate::audit::{AuditOutcome, AuditTrail};
use crate::keys::Keys;
use crate::limits::{self, Limit, MemoryLimits, Quota, Quotas, RateLimits, Refusal};
use crate::liveness::{Liveness, LivenessMode, LivenessReport, LivenessVerdict};
use crate::lockout::{LockoutRule, Lockouts, Outcome};
use serde::Serialize;

use crate::access::{Caller, Scope};
use crate::domain::{Threshold, UserName};
use crate::error::for_user;
use crate::stream::Streams;
use crate::telemetry;
use crate::thresholds::{Band, DecisionThreshold, MatchEvidence, ThresholdReport, Thresholds};
use crate::tickets::StreamTickets;
use crate::track_identity::RecognitionPolicy;
use crate::workers::{FaceWorkers, WorkerLoad};
use crate::ServiceError;

/// A new user to enrol.
#[derive(Debug)]
pub struct EnrolRequest {
    /// Display name.
    pub name: UserName,
    /// One or more photos, each with exactly one face.
    pub images: Vec<Vec<u8>>,
    /// Optional reference into another system.
    pub external_ref: Option<String>,
    /// Optional JSON metadata.
    pub metadata: Option<serde_json::Value>,
    /// Enrol even if the face already matches another user (`admin` only).
    pub allow_duplicate: bool,
    /// Check every photo for a presentation attack (`?liveness=passive`).
    pub liveness: LivenessMode,
    /// The token of a passed enrol session (`POST /liveness/sessions`
    /// with purpose `enrol`): redeemed once, and every photo must be the
    /// face that answered the session.
    pub liveness_token: Option<String>,
}

/// A face found in a photo, without biometric data.
#[derive(Debug, Clone, Serialize)]
pub struct FaceBox {
    /// Box in the photo's pixel coordinates.
    pub bbox: BoundingBox,
    /// Detector confidence (detector's own scale).
    pub detection_score: f32,
    /// Enrolment quality in `[0, 1]`.
    pub quality: f32,
}

/// The face an enrolment photo gave, and how many smaller faces beside it
/// were ignored.
#[derive(Debug, Clone, Serialize)]
pub struct EnrolledFace {
    /// The face used.
    pub face: FaceBox,
    /// Other faces in the photo, each under the enrolment minimum size,
    /// that were not counted (people in the background).
    pub ignored_faces: usize,
}

/// A face addition that only `admin` may make, recorded as a security
/// event in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminOverride {
    /// A face that does not verify as the user at the verify threshold.
    UnverifiedFace,
    /// The first template of the active model (re-enrolment after a model
    /// switch): there is nothing of this model to verify it against.
    FirstTemplateOfModel,
    /// `allow_duplicate`: the check against other users was skipped.
    DuplicateAllowed,
}

impl AdminOverride {
    /// The audit outcome.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminOverride::UnverifiedFace => "admin_unverified_face",
            AdminOverride::FirstTemplateOfModel => "admin_first_template_of_model",
            AdminOverride::DuplicateAllowed => "admin_allow_duplicate",
        }
    }
}

/// The result of an enrolment or a face addition.
#[derive(Debug, Clone, Serialize)]
pub struct Enrolled {
    /// The stored user.
    pub user: User,
    /// The face used from each photo, in request order.
    pub faces: Vec<EnrolledFace>,
    /// Set when `admin` added what only `admin` may add.
    pub admin_override: Option<AdminOverride>,
}

/// One face of an identification request and who it is, if anyone.
#[derive(Debug, Clone, Serialize)]
pub struct FaceMatch {
    /// Where the face is.
    pub face: FaceBox,
    /// Whether the closest user is within the threshold.
    pub matched: bool,
    /// The closest user (reported only when matched).
    pub user_id: Option<i64>,
    /// Their name (only when matched).
    pub name: Option<String>,
    /// Distance to the closest user's best template, in the model's metric:
    /// reported when matched, and to `admin` always (a failed attempt's
    /// distance would let a caller hill-climb towards a match).
    pub distance: Option<f32>,
    /// What the match's distance means (`None` fields without a match).
    pub evidence: MatchEvidence,
    /// Confidence band.
    pub band: Band,
    /// The passive liveness verdict, when it was checked; an attack is not
    /// searched (`matched` is false).
    pub liveness: Option<LivenessVerdict>,
}

/// The result of an identification: every face, largest first.
#[derive(Debug, Clone, Serialize)]
pub struct Identification {
    /// Faces, largest first.
    pub faces: Vec<FaceMatch>,
    /// The threshold applied.
    pub threshold: f32,
    /// The calibrated default for this gallery (the threshold applied
    /// unless the caller chose a stricter one, or `admin` a looser one).
    pub default: DecisionThreshold,
    /// Templates of the active model compared per face (recounted at most
    /// every few seconds).
    pub comparisons: u64,
    /// Faces found beyond `face.max_faces_per_request`, smallest first,
    /// neither embedded nor searched.
    pub faces_left_out: usize,
    /// The largest face's live score, for the audit row only.
    #[serde(skip)]
    pub live_score: Option<f32>,
}

/// The result of a 1:1 verification.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// The user claimed.
    pub user_id: i64,
    /// Whether the photo's face is that user.
    pub matched: bool,
    /// Distance to the user's closest template: reported when matched, and
    /// to `admin` always.
    pub distance: Option<f32>,
    /// What the match's distance means (`None` fields without a match).
    pub evidence: MatchEvidence,
    /// Confidence band.
    pub band: Band,
    /// The threshold applied.
    pub threshold: f32,
    /// The calibrated default for this user's templates.
    pub default: DecisionThreshold,
    /// The face used (the largest in the photo).
    pub face: FaceBox,
    /// Faces in the photo.
    pub faces_in_image: usize,
    /// The passive liveness verdict, when it was checked.
    pub liveness: Option<LivenessVerdict>,
    /// Why it did not match when the face was not compared at all:
    /// `liveness_failed`.
    pub reason: Option<&'static str>,
}

/// Counts and the active configuration, for `/stats/`.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStats {
    /// Enrolled users.
    pub total_users: i64,
    /// Templates of the active model.
    pub templates: i64,
    /// `"sqlite"` or `"postgresql"`.
    pub database: &'static str,
    /// The active embedding model.
    pub model: ModelInfo,
    /// The active detector.
    pub detector: String,
    /// Where the embedder runs (`"cpu"`, `"cuda"`).
    pub execution: String,
    /// Thresholds in force for the current gallery.
    pub thresholds: ThresholdReport,
    /// The most templates of one model a user may have.
    pub max_templates_per_user: usize,
    /// Face jobs skipped because their client had gone.
    pub abandoned_jobs: u64,
    /// Templates of other models than the active one, by model id (kept
    /// for switching back; unused while this model is active).
    pub other_models: Vec<(String, i64)>,
    /// Presentation-attack detection: required, available, calibrated.
    pub liveness: LivenessReport,
}

/// FaceGate's use cases over a face pipeline pool and a store.
pub struct FaceService {
    workers: FaceWorkers,
    store: Arc<dyn FaceStore>,
    store_kind: &'static str,
    model: ModelKey,
    thresholds: Thresholds,
    /// The most templates of one model a user may have.
    max_templates_per_user: usize,
    /// Faces of one photo an identification embeds and searches (the
    /// largest).
    max_faces_per_request: usize,
    /// Request limits and the budget of failed identifications (per key
    /// and client), in memory or shared.
    limits: Arc<dyn RateLimits>,
    /// API keys.
    keys: Keys,
    /// The audit trail every use case writes.
    audit: AuditTrail,
    /// When failed verifications delay and disable a user.
    lockouts: Lockouts,
    /// Templates of the active model and when they were counted.
    /// Identification's threshold depends on how many comparisons it makes;
    /// counting on every request would put a table count on the hot path,
    /// and a few seconds' drift moves the threshold by a hair. A std mutex:
    /// held for a read or a write of two words, never across an await.
    gallery: Mutex<Option<(Instant, u64)>>,
    /// When the store's gauges were last counted for a scrape.
    gauges_counted: Mutex<Option<Instant>>,
    /// The streams' share of the workers and their recognition policy.
    streams: Streams,
    /// Outstanding stream tickets.
    tickets: StreamTickets,
    /// When faces are checked for presentation attacks, and the verdict.
    liveness: Liveness,
    /// How long challenge sessions and their tokens last.
    challenge_times: crate::sessions::ChallengeTimes,
    /// Whether identification's threshold is extrapolated beyond the
    /// measured curve, so crossing the limit is logged once each way.
    extrapolating: AtomicBool,
}

/// How long the readiness probe waits for the store.
pub const READY_STORE_TIMEOUT: Duration = Duration::from_secs(1);

/// What the readiness probe found.
#[derive(Debug)]
pub struct Readiness {
    /// Whether the store answered in time.
    pub store: Result<(), ServiceError>,
    /// The face workers' load.
    pub workers: WorkerLoad,
}

impl Readiness {
    /// Ready: the store answers and the workers have room.
    pub fn is_ready(&self) -> bool {
        self.store.is_ok() && self.workers.has_room()
    }
}

/// How long a gallery count is reused.
const GALLERY_COUNT_TTL: Duration = Duration::from_secs(5);

/// Default for `thresholds.max_templates_per_user`.
pub const DEFAULT_MAX_TEMPLATES_PER_USER: usize = 10;

/// Default for `face.max_faces_per_request`.
pub const DEFAULT_MAX_FACES_PER_REQUEST: usize = 10;

/// Default for `security.failed_identifications_per_minute`.
pub const DEFAULT_FAILED_IDENTIFICATIONS_PER_MINUTE: u32 = 20;

impl FaceService {
    /// Joins workers, a store (`store_kind` names it for `/stats/`) and the
    /// decision policy for the workers' model.
    pub fn new(
        workers: FaceWorkers,
        store: Arc<dyn FaceStore>,
        store_kind: &'static str,
        thresholds: Thresholds,
    ) -> Self {
        // Streams leave one worker to the HTTP requests (all of one, on a
        // one-worker machine: they wait for it in turn).
        let stream_workers = workers.threads().saturating_sub(1);
        let info = workers.model();
        let model = ModelKey::new(
            info.id.clone(),
            info.dimension,
            match info.metric {
                CoreMetric::Euclidean => Metric::Euclidean,
                CoreMetric::Cosine => Metric::Cosine,
            },
        );
        let at_start = thresholds.identify(thresholds.expected_gallery_size());
        if at_start.extrapolated {
            warn_extrapolated(&thresholds, &at_start);
        }
        // Every store call is timed (store_kind labels it), whoever makes it.
        let store = face_store::Metered::wrap(store, store_kind);
        let audit = AuditTrail::new(Arc::clone(&store));
        let keys = Keys::new(Arc::clone(&store), audit.clone());
        Self {
            tickets: StreamTickets::new(Arc::clone(&store), keys.clone()),
            keys,
            lockouts: Lockouts::new(
                Arc::clone(&store),
                crate::lockout::DEFAULT_RULE,
                audit.clone(),
            ),
            audit,
            workers,
            store,
            store_kind,
            model,
            thresholds,
            max_templates_per_user: DEFAULT_MAX_TEMPLATES_PER_USER,
            max_faces_per_request: DEFAULT_MAX_FACES_PER_REQUEST,
            limits: Arc::new(MemoryLimits::new(Quotas {
                api_key: Quota::UNLIMITED,
                client_address: Quota::UNLIMITED,
                failed_identifications_per_minute: DEFAULT_FAILED_IDENTIFICATIONS_PER_MINUTE,
            })),
            gallery: Mutex::new(None),
            gauges_counted: Mutex::new(None),
            streams: Streams::new(stream_workers, RecognitionPolicy::default()),
            liveness: Liveness::unavailable(
                "no presentation-attack detector is configured for this service",
            ),
            challenge_times: Default::default(),
            extrapolating: AtomicBool::new(at_start.extrapolated),
        }
    }

    /// The same service with another lockout rule (validated by
    /// [`crate::lockout::rule`]).
    pub fn with_lockout(mut self, rule: LockoutRule) -> Self {
        self.lockouts = Lockouts::new(Arc::clone(&self.store), rule, self.audit.clone());
        self
    }

    /// The same service letting streams hold at most `max` face workers
    /// together (at least one).
    pub fn with_stream_workers(mut self, max: usize) -> Self {
        self.streams = Streams::new(max, self.streams.policy);
        self
    }

    /// The same service with another liveness policy (the server builds
    /// it from the PAD files and their calibration).
    pub fn with_liveness(mut self, liveness: Liveness) -> Self {
        self.liveness = liveness;
        self
    }

    /// The same service with other lifetimes for challenge sessions and
    /// their tokens (validated by [`crate::sessions::ChallengeTimes::new`]).
    pub fn with_challenge_times(mut self, times: crate::sessions::ChallengeTimes) -> Self {
        self.challenge_times = times;
        self
    }

    /// How long challenge sessions and their tokens last.
    pub fn challenge_times(&self) -> crate::sessions::ChallengeTimes {
        self.challenge_times
    }

    /// The store (every call timed).
    pub(crate) fn store(&self) -> &Arc<dyn FaceStore> {
        &self.store
    }

    /// The liveness policy.
    pub fn liveness(&self) -> &Liveness {
        &self.liveness
    }

    /// Stream tickets: issue and redeem.
    pub fn tickets(&self) -> &StreamTickets {
        &self.tickets
    }

    /// The face workers.
    pub(crate) fn workers(&self) -> &FaceWorkers {
        &self.workers
    }

    /// The streams' settings.
    pub(crate) fn streams(&self) -> &Streams {
        &self.streams
    }

    /// Faces of one photo an identification searches.
    pub(crate) fn max_faces_per_request(&self) -> usize {
        self.max_faces_per_request
    }

    /// The rate limits (the server's guard takes its request limits here).
    pub fn limits(&self) -> &dyn RateLimits {
        self.limits.as_ref()
    }

    /// `FailedIdentificationsExceeded` while the caller's budget of failed
    /// identifications is spent (by its key or its client address).
    pub(crate) async fn identify_budget_check(&self, caller: &Caller) -> Result<(), ServiceError> {
        for key in limits::budget_keys(caller) {
            match self.limits.check(Limit::FailedIdentifications, &key).await {
                Ok(()) => {}
                Err(Refusal::Limited { retry_after_secs }) => {
                    return Err(ServiceError::FailedIdentificationsExceeded { retry_after_secs })
                }
                Err(Refusal::Unavailable) => return Err(ServiceError::RateLimitsUnavailable),
            }
        }
        Ok(())
    }

    /// Spends one unit of the caller's budget for a failed identification
    /// (a shared store that does not answer loses the unit; it is logged
    /// and counted there).
    pub(crate) async fn identify_budget_failed(&self, caller: &Caller) {
        for key in limits::budget_keys(caller) {
            let _ = self.limits.take(Limit::FailedIdentifications, &key).await;
        }
    }

    /// API keys: authentication, issue, revocation.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The audit trail.
    pub fn audit(&self) -> &AuditTrail {
        &self.audit
    }

    /// Verification lockouts.
    pub fn lockouts(&self) -> &Lockouts {
        &self.lockouts
    }

    /// The same service with another cap on faces per identification (at
    /// least 1).
    pub fn with_max_faces_per_request(mut self, max: usize) -> Self {
        self.max_faces_per_request = max.max(1);
        self
    }

    /// The same service with these rate limits (the default: in memory,
    /// no request limits, the default budget of failed identifications).
    pub fn with_rate_limits(mut self, limits: Arc<dyn RateLimits>) -> Self {
        self.limits = limits;
        self
    }

    /// The same service with another cap on templates per user (at least 1).
    pub fn with_max_templates_per_user(mut self, max: usize) -> Self {
        self.max_templates_per_user = max.max(1);
        self
    }

    /// Templates of the active model, counted at most every few seconds.
    pub(crate) async fn gallery_templates(&self) -> Result<u64, ServiceError> {
        let cached = *self.gallery.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, n)) = cached {
            if at.elapsed() < GALLERY_COUNT_TTL {
                return Ok(n);
            }
        }
        let n = self
            .store
            .stats()
            .await?
            .templates_by_model
            .iter()
            .find(|(id, _)| *id == self.model.id)
            .map_or(0, |(_, n)| u64::try_from(*n).unwrap_or(0));
        *self.gallery.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), n));
        Ok(n)
    }

    /// Forgets the template count after this instance changed it, so its
    /// own writes count at once (another instance's within the TTL).
    fn gallery_changed(&self) {
        *self.gallery.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *self
            .gauges_counted
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The identification threshold for a gallery of `templates`; logs when
    /// the gallery crosses the measured range, either way.
    pub(crate) fn identify_default(&self, templates: u64) -> DecisionThreshold {
        let d = self.thresholds.identify(templates);
        if self.extrapolating.swap(d.extrapolated, Ordering::Relaxed) != d.extrapolated {
            if d.extrapolated {
                warn_extrapolated(&self.thresholds, &d);
            } else {
                tracing::info!(
                    comparisons = d.comparisons,
                    threshold = d.threshold,
                    "identification threshold back within the measured calibration curve"
                );
            }
        }
        d
    }

    /// The decision policy in force.
    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    /// The face backend the workers run (`"dlib"`, `"onnx"`).
    pub fn backend(&self) -> &'static str {
        self.workers.backend()
    }

    /// The active model.
    pub fn model(&self) -> &Arc<ModelInfo> {
        self.workers.model()
    }

    /// Parses a caller's threshold in the active model's metric.
    pub fn parse_threshold(&self, value: f64) -> Result<Threshold, ServiceError> {
        Threshold::parse(value, self.workers.model().metric)
    }

    /// Whether the store answers.
    pub async fn health(&self) -> Result<(), ServiceError> {
        self.store.health().await.map_err(ServiceError::from)
    }

    /// Whether this instance can take work now (an orchestrator's readiness
    /// probe): the store answers within [`READY_STORE_TIMEOUT`], and the
    /// face workers would take a job.
    pub async fn readiness(&self) -> Readiness {
        let store = match tokio::time::timeout(READY_STORE_TIMEOUT, self.store.health()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ServiceError::from(e)),
            Err(_) => Err(ServiceError::StoreUnavailable(format!(
                "the store did not answer within {READY_STORE_TIMEOUT:?}"
            ))),
        };
        Readiness {
            store,
            workers: self.workers.load(),
        }
    }

    /// Sets the gauges that describe this instance now (worker load,
    /// users, templates per model), for a metrics scrape. The store is
    /// counted at most every [`GALLERY_COUNT_TTL`] (and again after this
    /// instance changed the gallery), so scraping (the
    /// metrics listener takes no key and has no rate limit) costs the
    /// database nothing more; a store that does not answer leaves its
    /// gauges as they were, and the scrape still succeeds.
    pub async fn record_gauges(&self) {
        let load = self.workers.load();
        metrics::gauge!(telemetry::WORKERS).set(load.threads as f64);
        metrics::gauge!(telemetry::WORKERS_BUSY).set(load.busy as f64);
        metrics::gauge!(telemetry::QUEUE_DEPTH).set(load.waiting as f64);
        metrics::gauge!(telemetry::QUEUE_CAPACITY).set(load.capacity as f64);
        {
            let mut counted = self
                .gauges_counted
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if counted.is_some_and(|at| at.elapsed() < GALLERY_COUNT_TTL) {
                return;
            }
            *counted = Some(Instant::now());
        }
        match tokio::time::timeout(READY_STORE_TIMEOUT, self.store.stats()).await {
            Ok(Ok(stats)) => {
                metrics::gauge!(telemetry::USERS).set(stats.users as f64);
                for (model, n) in stats.templates_by_model {
                    metrics::gauge!(telemetry::TEMPLATES, "model" => model).set(n as f64);
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "metrics: store counts not refreshed"),
            Err(_) => tracing::warn!("metrics: store counts not refreshed (no answer in time)"),
        }
    }

    /// Detects every face of a photo and embeds the `max_faces` largest;
    /// `ClientGone` when the caller hung up before a worker took it.
    async fn analyze(
        &self,
        caller: &Caller,
        image: Vec<u8>,
        request: FaceRequest,
    ) -> Result<Analysis, ServiceError> {
        self.workers
            .run(
                move |p| p.analyze_request(&image, request),
                caller.probe.clone(),
            )
            .await?
            .map_err(ServiceError::from)
    }

    /// The one face of an enrolment photo, checked for quality, by the
    /// enrolment rule with the pipeline's own policy. A second face is
    /// refused before anything more is embedded.
    async fn enrolment_face(
        &self,
        caller: &Caller,
        image: Vec<u8>,
        liveness: bool,
    ) -> Result<EnrolmentFace, ServiceError> {
        let request = FaceRequest {
            max_faces: 1,
            liveness,
        };
        self.workers
            .run(
                move |p| {
                    p.analyze_request(&image, request)
                        .map(|a| face_core::enrolment::enrolment_face(a, &p.options().quality))
                },
                caller.probe.clone(),
            )
            .await?
            .map_err(ServiceError::from)?
            .map_err(|refusal| match refusal {
                EnrolmentRefusal::NoFace => ServiceError::NoFace,
                EnrolmentRefusal::MultipleFaces { count } => ServiceError::MultipleFaces { count },
                EnrolmentRefusal::LowQuality { issues } => ServiceError::LowQuality { issues },
            })
    }

    /// The distance from `embedding` to the closest of a user's templates
    /// of the active model, timed as the `search` stage; `UserNotFound`,
    /// or `NoTemplateForModel` when they have none of this model.
    pub(crate) async fn nearest_of_user(
        &self,
        user_id: i64,
        embedding: &[f32],
    ) -> Result<face_store::UserDistance, ServiceError> {
        let started = Instant::now();
        let nearest = self
            .store
            .distance_to_user(user_id, &self.model, embedding)
            .await;
        face_core::telemetry::stage("search", self.workers.backend(), started.elapsed());
        nearest
            .map_err(for_user(user_id))?
            .ok_or(ServiceError::NoTemplateForModel(user_id))
    }

    /// The `k` users nearest to `embedding` among the active model's
    /// templates, timed as the pipeline's `search` stage.
    pub(crate) async fn search(
        &self,
        embedding: &[f32],
        k: usize,
    ) -> Result<Vec<face_store::Match>, ServiceError> {
        let started = Instant::now();
        let hits = self.store.search(&self.model, embedding, k).await;
        face_core::telemetry::stage("search", self.workers.backend(), started.elapsed());
        Ok(hits?)
    }

    /// The duplicate-enrolment threshold for the current gallery.
    async fn duplicate_threshold(&self) -> Result<f32, ServiceError> {
        Ok(self
            .thresholds
            .duplicate(self.gallery_templates().await?)
            .threshold)
    }

    /// Refuses a face that already matches a user other than `except` at
    /// the duplicate threshold for the current gallery.
    async fn check_duplicate(
        &self,
        embedding: &[f32],
        except: Option<i64>,
    ) -> Result<(), ServiceError> {
        let threshold = Threshold::trusted(self.duplicate_threshold().await?);
        let hits = self.search(embedding, 2).await?;
        if let Some(hit) = hits
            .iter()
            .find(|m| Some(m.user_id) != except && Thresholds::matches(m.distance, threshold))
        {
            return Err(ServiceError::Duplicate {
                user_id: Some(hit.user_id),
            });
        }
        Ok(())
    }

    /// Whether two faces of one request are one person: the verify
    /// threshold of a single comparison.
    pub(crate) fn same_person(&self, a: &Embedding, b: &Embedding) -> Result<bool, ServiceError> {
        let d = a.distance(b).map_err(ServiceError::from)?;
        Ok(Thresholds::matches(
            d,
            self.thresholds.verify(1).as_threshold(),
        ))
    }

    /// Whether `face` is the face that answered the session of a redeemed
    /// token: the same model, and one person at the verify threshold.
    pub(crate) fn is_session_face(
        &self,
        session: &face_store::liveness::RedeemedToken,
        face: &Embedding,
    ) -> Result<bool, ServiceError> {
        if session.model_id != self.model().id {
            return Ok(false);
        }
        let session_face = Embedding::new(session.embedding.clone(), Arc::clone(self.model()))
            .map_err(ServiceError::from)?;
        self.same_person(&session_face, face)
    }

    /// The faces of one request, each of enrolment quality, all of one
    /// person (every photo matches the first at the verify threshold), and
    /// with `liveness` each live: `live_score` receives the lowest score,
    /// for the audit row.
    async fn enrolment_faces(
        &self,
        caller: &Caller,
        images: Vec<Vec<u8>>,
        (operation, liveness): (&'static str, LivenessMode),
        live_score: &mut Option<f32>,
    ) -> Result<Vec<EnrolmentFace>, ServiceError> {
        let check = liveness == LivenessMode::Passive;
        if images.is_empty() {
            return Err(ServiceError::Invalid {
                field: "image",
                message: "at least one image is required".into(),
            });
        }
        let mut faces: Vec<EnrolmentFace> = Vec::with_capacity(images.len());
        for (index, image) in images.into_iter().enumerate() {
            let face = self.enrolment_face(caller, image, check).await?;
            if let Some(score) = face.face.live_score {
                *live_score = Some(live_score.map_or(score, |s| s.min(score)));
            }
            if let Some(verdict) = self.liveness.judge(check, face.face.live_score) {
                telemetry::liveness(operation, verdict);
                if verdict == LivenessVerdict::Attack {
                    return Err(ServiceError::LivenessFailed { index });
                }
            }
            if let Some(first) = faces.first() {
                if !self.same_person(&first.face.embedding, &face.face.embedding)? {
                    return Err(ServiceError::PhotosDisagree { index });
                }
            }
            faces.push(face);
        }
        Ok(faces)
    }

    /// Enrols a new user from one or more photos of one person.
    #[tracing::instrument(skip_all, fields(images = req.images.len()))]
    pub async fn enrol(
        &self,
        caller: &Caller,
        req: EnrolRequest,
    ) -> Result<Enrolled, ServiceError> {
        let mut live_score = None;
        let result = self.enrol_inner(caller, req, &mut live_score).await;
        let user_id = result.as_ref().ok().map(|e| e.user.id);
        telemetry::decision("enrol", &result, None, &self.model.id);
        self.audit
            .result_scored(caller, "enrol", &result, user_id, None, live_score)
            .await;
        redact_duplicate(caller, result)
    }

    async fn enrol_inner(
        &self,
        caller: &Caller,
        req: EnrolRequest,
        live_score: &mut Option<f32>,
    ) -> Result<Enrolled, ServiceError> {
        let mut liveness = self.liveness.level_for_enrolment(req.liveness)?;
        // As for a verification with a token: the session proved a live
        // person, not that these photos are of one.
        if req.liveness_token.is_some() && self.liveness.passive_available() {
            liveness = liveness.max(LivenessMode::Passive);
        }
        if req.allow_duplicate {
            caller.require(
                Scope::Admin,
                "enrol a face that matches another user (allow_duplicate)",
            )?;
        }
        if req.images.len() > self.max_templates_per_user {
            return Err(ServiceError::TooManyTemplates {
                user_id: 0,
                limit: self.max_templates_per_user,
                existing: 0,
            });
        }
        let faces = self
            .enrolment_faces(caller, req.images, ("enrol", liveness), live_score)
            .await?;
        if !req.allow_duplicate {
            for face in &faces {
                self.check_duplicate(face.face.embedding.values(), None)
                    .await?;
            }
        }
        let new_user = NewUser {
            name: req.name.as_str().to_string(),
            external_ref: req.external_ref,
            metadata: req.metadata,
        };
        let unique_below = match req.allow_duplicate {
            true => None,
            false => Some(self.duplicate_threshold().await?),
        };
        if let Some(token) = &req.liveness_token {
            // Spent as late as can be: what the write would refuse for
            // the user's own fields is checked first. Only a concurrent
            // enrolment of the same face or reference, or a store failure,
            // can still refuse the write after it (a new session, then).
            face_store::validate::user(&new_user)?;
            if let Some(reference) = &new_user.external_ref {
                if self.user_by_reference(reference).await.is_ok() {
                    return Err(ServiceError::Conflict("external_ref already in use".into()));
                }
            }
            let session = self.redeem_liveness_token(caller, token, None).await?;
            for (index, face) in faces.iter().enumerate() {
                if !self.is_session_face(&session, &face.face.embedding)? {
                    return Err(ServiceError::TokenFaceMismatch { index });
                }
            }
        }
        let boxes = faces.iter().map(enrolled_face).collect();
        let templates: Vec<NewTemplate> = faces.into_iter().map(|f| template(f.face)).collect();
        // The check above answers fast; the store checks again inside the
        // write, so two concurrent enrolments of one face cannot both pass.
        let user = match unique_below {
            None => {
                self.store
                    .create_user(new_user, &self.model, &templates)
                    .await?
            }
            Some(unique_below) => {
                self.store
                    .create_unique_user(new_user, &self.model, &templates, unique_below)
                    .await?
            }
        };
        self.gallery_changed();
        tracing::info!(user_id = user.id, templates = templates.len(), "enrolled");
        Ok(Enrolled {
            user,
            faces: boxes,
            admin_override: req
                .allow_duplicate
                .then_some(AdminOverride::DuplicateAllowed),
        })
    }

    /// Adds photos of an enrolled user. Each must verify as that user
    /// against their closest template of the active model; only `admin` may
    /// add a face that does not, or the first template of a new model.
    ///
    /// For everyone else this is a biometric comparison with the user like
    /// a verification, and is treated as one: a delayed or disabled user
    /// cannot have faces added, and a face that does not verify counts as a
    /// failed verification (or the route would be a lockout-free way to
    /// search for a face that passes).
    ///
    /// With `liveness` each photo is checked first; for anyone but admin
    /// the requirement (`security.require_liveness`) applies as to a
    /// verification, and an attack counts as a failed one.
    #[tracing::instrument(skip(self, caller, images), fields(images = images.len()))]
    pub async fn add_faces(
        &self,
        caller: &Caller,
        user_id: i64,
        images: Vec<Vec<u8>>,
        allow_duplicate: bool,
        liveness: LivenessMode,
    ) -> Result<Enrolled, ServiceError> {
        let mut distance = None;
        let mut live_score = None;
        let scores = (&mut distance, &mut live_score);
        let result = self
            .add_faces_inner(caller, user_id, images, (allow_duplicate, liveness), scores)
            .await;
        if let Ok(Enrolled {
            admin_override: Some(o),
            ..
        }) = &result
        {
            tracing::warn!(
                user_id,
                event = o.as_str(),
                "security event: face added by admin override"
            );
        }
        telemetry::decision("add_faces", &result, distance, &self.model.id);
        self.audit
            .result_scored(
                caller,
                "add_faces",
                &result,
                Some(user_id),
                distance,
                live_score,
            )
            .await;
        redact_duplicate(caller, result)
    }

    /// `distance` receives the largest distance of a new face to the user's
    /// templates, `live_score` the lowest live score, for the audit row.
    async fn add_faces_inner(
        &self,
        caller: &Caller,
        user_id: i64,
        images: Vec<Vec<u8>>,
        (allow_duplicate, liveness): (bool, LivenessMode),
        (distance, live_score): (&mut Option<f32>, &mut Option<f32>),
    ) -> Result<Enrolled, ServiceError> {
        let admin = caller.allows(Scope::Admin);
        // For anyone but admin this is a verification: under the
        // requirement, and refused before the lockout when it cannot run.
        let liveness = match admin {
            true => self.liveness.level_for_enrolment(liveness)?,
            // A face added by anyone else is a verification of the user
            // by photo, and stores a template: under a required challenge
            // there is no token for it to redeem, so only admin adds faces.
            false if self.liveness.required() == LivenessMode::Challenge => {
                return Err(ServiceError::LivenessTokenRequired)
            }
            false => self.liveness.level_for_photo(liveness)?,
        };
        if allow_duplicate {
            caller.require(
                Scope::Admin,
                "add a face that matches another user (allow_duplicate)",
            )?;
        }
        self.store
            .get_user(user_id)
            .await
            .map_err(for_user(user_id))?;
        // For anyone but admin, comparing the new faces with the user is a
        // verification attempt: reserved first, settled as failed when a
        // face does not verify (a verified one clears nothing: only
        // verification does).
        let attempt = match admin {
            true => None,
            false => Some(self.lockouts.reserve(user_id).await?),
        };
        let mut unverified = false;
        let result = self
            .add_verified_faces(
                caller,
                user_id,
                images,
                (allow_duplicate, liveness),
                (distance, live_score),
                &mut unverified,
            )
            .await;
        if let Some(attempt) = attempt {
            let attack = matches!(result, Err(ServiceError::LivenessFailed { .. }));
            let outcome = if unverified || attack {
                Outcome::Failed
            } else {
                Outcome::Released
            };
            let settled = self.lockouts.settle(attempt, outcome).await;
            match (&result, settled) {
                // The faces are stored: the answer must say so; the lease
                // returns the reservation if settling failed.
                (Ok(_), Err(e)) => {
                    tracing::error!(user_id, error = %e, "lockout reservation not settled");
                }
                (_, Err(e)) => return Err(e),
                (_, Ok(())) => {}
            }
        }
        result
    }

    /// The body of [`FaceService::add_faces`] after the lockout: sets
    /// `unverified` when a face does not verify as the user.
    async fn add_verified_faces(
        &self,
        caller: &Caller,
        user_id: i64,
        images: Vec<Vec<u8>>,
        (allow_duplicate, liveness): (bool, LivenessMode),
        (distance, live_score): (&mut Option<f32>, &mut Option<f32>),
        unverified: &mut bool,
    ) -> Result<Enrolled, ServiceError> {
        if images.len() > self.max_templates_per_user {
            // Cannot fit whatever the user has; the store checks the rest.
            return Err(ServiceError::TooManyTemplates {
                user_id,
                limit: self.max_templates_per_user,
                existing: 0,
            });
        }
        let faces = self
            .enrolment_faces(caller, images, ("add_faces", liveness), live_score)
            .await?;
        let mut admin_override = None;
        for face in &faces {
            let nearest = self
                .store
                .distance_to_user(user_id, &self.model, face.face.embedding.values())
                .await
                .map_err(for_user(user_id))?;
            match nearest {
                None => {
                    caller.require(
                        Scope::Admin,
                        "add the first face template of the active model (re-enrolment)",
                    )?;
                    admin_override = Some(AdminOverride::FirstTemplateOfModel);
                }
                Some(d) => {
                    *distance = Some(distance.map_or(d.distance, |x| x.max(d.distance)));
                    let threshold = self.thresholds.verify(d.templates).as_threshold();
                    if !Thresholds::matches(d.distance, threshold) {
                        *unverified = true;
                        caller.require(
                            Scope::Admin,
                            "add a face that does not verify as this user",
                        )?;
                        admin_override.get_or_insert(AdminOverride::UnverifiedFace);
                    }
                }
            }
            if !allow_duplicate {
                self.check_duplicate(face.face.embedding.values(), Some(user_id))
                    .await?;
            }
        }
        if allow_duplicate {
            admin_override.get_or_insert(AdminOverride::DuplicateAllowed);
        }
        let boxes = faces.iter().map(enrolled_face).collect();
        let templates: Vec<NewTemplate> = faces.into_iter().map(|f| template(f.face)).collect();
        let unique_below = match allow_duplicate {
            true => None,
            false => Some(self.duplicate_threshold().await?),
        };
        self.store
            .add_templates(
                user_id,
                &self.model,
                &templates,
                self.max_templates_per_user,
                unique_below,
            )
            .await
            .map_err(for_user(user_id))?;
        let user = self
            .store
            .get_user(user_id)
            .await
            .map_err(for_user(user_id))?;
        self.gallery_changed();
        tracing::info!(user_id, added = templates.len(), "faces added");
        Ok(Enrolled {
            user,
            faces: boxes,
            admin_override,
        })
    }

    /// A user's templates, without vectors.
    pub async fn faces_of(&self, user_id: i64) -> Result<Vec<TemplateInfo>, ServiceError> {
        self.store
            .templates_of(user_id)
            .await
            .map_err(for_user(user_id))
    }

    /// Deletes one of a user's templates.
    #[tracing::instrument(skip(self, caller))]
    pub async fn delete_face(
        &self,
        caller: &Caller,
        user_id: i64,
        template_id: i64,
    ) -> Result<(), ServiceError> {
        let result = self.delete_face_inner(user_id, template_id).await;
        self.audit
            .record(
                caller,
                "delete_face",
                match &result {
                    Ok(()) => "ok",
                    Err(_) => "refused",
                },
                Some(user_id),
                None,
                Some(match &result {
                    Ok(()) => format!("template {template_id}"),
                    Err(e) => format!("template {template_id}: {}", e.kind()),
                }),
            )
            .await;
        result
    }

    async fn delete_face_inner(&self, user_id: i64, template_id: i64) -> Result<(), ServiceError> {
        self.store
            .get_user(user_id)
            .await
            .map_err(for_user(user_id))?;
        self.store
            .delete_template(user_id, template_id)
            .await
            .map_err(|e| match e {
                face_store::StoreError::NotFound(_) => ServiceError::TemplateNotFound {
                    user_id,
                    template_id,
                },
                other => other.into(),
            })?;
        self.gallery_changed();
        tracing::info!(user_id, template_id, "face template deleted");
        Ok(())
    }

    /// The threshold a decision uses: the calibrated default, a caller's
    /// stricter one, or (only for `admin`) a looser one.
    fn decision_threshold(
        caller: &Caller,
        asked: Option<Threshold>,
        default: &DecisionThreshold,
        action: &'static str,
    ) -> Result<Threshold, ServiceError> {
        match asked {
            None => Ok(default.as_threshold()),
            Some(t) if t.value() <= default.threshold => Ok(t),
            Some(t) => {
                caller.require(Scope::Admin, action)?;
                Ok(t)
            }
        }
    }

    /// Identifies the faces of a photo (the `face.max_faces_per_request`
    /// largest) against all enrolled users. A photo where no face matches
    /// spends the caller's budget of failed identifications; a spent budget
    /// refuses identification (429) until it refills.
    ///
    /// With `liveness` (or `security.require_liveness`) each face is
    /// checked first, and a face that scores as an attack is not searched.
    #[tracing::instrument(skip(self, caller, image))]
    pub async fn identify(
        &self,
        caller: &Caller,
        image: Vec<u8>,
        threshold: Option<Threshold>,
        liveness: LivenessMode,
    ) -> Result<Identification, ServiceError> {
        let mut result = match self.identify_budget_check(caller).await {
            Ok(()) => {
                self.identify_inner(caller, image, threshold, liveness)
                    .await
            }
            Err(e) => Err(e),
        };
        if let Ok(r) = &result {
            // A photo with an attack face spends the budget even when
            // another face matched: otherwise one enrolled face would let
            // a caller test prints against the check for free.
            let attack = r
                .faces
                .iter()
                .any(|f| f.liveness == Some(LivenessVerdict::Attack));
            if attack || !r.faces.iter().any(|f| f.matched) {
                self.identify_budget_failed(caller).await;
            }
        }
        // One row per photo, about its largest face, with its distance.
        let first = result.as_ref().ok().and_then(|r| r.faces.first());
        let (user_id, distance) = (
            first.and_then(|f| f.user_id),
            first.and_then(|f| f.distance),
        );
        let live_score = result.as_ref().ok().and_then(|r| r.live_score);
        telemetry::decision("identify", &result, distance, &self.model.id);
        self.audit
            .result_scored(caller, "identify", &result, user_id, distance, live_score)
            .await;
        if let Ok(r) = &mut result {
            for f in &mut r.faces {
                if !f.matched && !caller.allows(Scope::Admin) {
                    f.distance = None;
                }
            }
        }
        result
    }

    async fn identify_inner(
        &self,
        caller: &Caller,
        image: Vec<u8>,
        threshold: Option<Threshold>,
        liveness: LivenessMode,
    ) -> Result<Identification, ServiceError> {
        let check = self.liveness.level_for_photo(liveness)? == LivenessMode::Passive;
        let comparisons = self.gallery_templates().await?;
        let default = self.identify_default(comparisons);
        let threshold = Self::decision_threshold(
            caller,
            threshold,
            &default,
            "loosen the identification threshold beyond the calibrated default",
        )?;
        let request = FaceRequest {
            max_faces: self.max_faces_per_request,
            liveness: check,
        };
        let analysis = self.analyze(caller, image, request).await?;
        let faces = analysis.faces;
        if faces.is_empty() {
            return Err(ServiceError::NoFace);
        }
        let mut out = Vec::with_capacity(faces.len());
        for face in &faces {
            let verdict = self.liveness.judge(check, face.live_score);
            if let Some(v) = verdict {
                telemetry::liveness("identify", v);
            }
            if verdict == Some(LivenessVerdict::Attack) {
                out.push(FaceMatch {
                    face: face_box(face),
                    matched: false,
                    user_id: None,
                    name: None,
                    distance: None,
                    evidence: MatchEvidence::none(),
                    band: Band::NoMatch,
                    liveness: verdict,
                });
                continue;
            }
            let best = self
                .search(face.embedding.values(), 1)
                .await?
                .into_iter()
                .next();
            let (matched, distance) = match &best {
                Some(m) => (Thresholds::matches(m.distance, threshold), Some(m.distance)),
                None => (false, None),
            };
            let band = match distance {
                Some(d) => self.thresholds.band(d, threshold),
                None => Band::NoMatch,
            };
            let evidence = match (matched, distance) {
                (true, Some(d)) => self.thresholds.evidence(d, comparisons),
                _ => MatchEvidence::none(),
            };
            out.push(FaceMatch {
                face: face_box(face),
                matched,
                user_id: best.as_ref().filter(|_| matched).map(|m| m.user_id),
                name: best.as_ref().filter(|_| matched).map(|m| m.name.clone()),
                distance,
                evidence,
                band,
                liveness: verdict,
            });
        }
        tracing::info!(
            faces = out.len(),
            matched = out.iter().filter(|f| f.matched).count(),
            "identified"
        );
        Ok(Identification {
            live_score: faces.first().and_then(|f| f.live_score),
            faces_left_out: analysis.faces_found.saturating_sub(out.len()),
            faces: out,
            threshold: threshold.value(),
            default,
            comparisons,
        })
    }

    /// Verifies that the largest face in a photo is `user_id` (1:1).
    ///
    /// The threshold is chosen for the user's number of templates (each is
    /// one chance for a stranger). Subject to the lockout: after
    /// `lockout.delay_after` consecutive failures each attempt waits out a
    /// delay, after `disable_after` the user cannot be verified until an
    /// administrator resets them. A success clears the count; photos
    /// without a face do not count.
    ///
    /// With `liveness` (or `security.require_liveness`) the face is checked
    /// first: an attack is `matched: false` with the reason
    /// `liveness_failed`, and counts as a failed verification.
    #[tracing::instrument(skip(self, caller, image))]
    pub async fn verify(
        &self,
        caller: &Caller,
        user_id: i64,
        image: Vec<u8>,
        threshold: Option<Threshold>,
        liveness: LivenessMode,
    ) -> Result<Verification, ServiceError> {
        self.verify_proven(caller, user_id, image, threshold, (liveness, None))
            .await
    }

    /// [`FaceService::verify`] with the single-use token of a passed
    /// liveness challenge session: redeemed atomically for this key and
    /// this user (used, expired, another key's, another user's: refused,
    /// and a failed attempt), and the photo's face must be the session's
    /// face (else `reason: token_face_mismatch`, a failed attempt), before
    /// the usual decision against the user's templates.
    #[tracing::instrument(skip(self, caller, image, token))]
    pub async fn verify_with_token(
        &self,
        caller: &Caller,
        user_id: i64,
        image: Vec<u8>,
        threshold: Option<Threshold>,
        token: &str,
    ) -> Result<Verification, ServiceError> {
        // The photo redeeming the token is checked for a presentation
        // attack too, where the check can run: the session proved a live
        // person, not that this photo is one.
        let mode = match self.liveness.passive_available() {
            true => LivenessMode::Passive,
            false => LivenessMode::Off,
        };
        let proof = (mode, Some(token));
        self.verify_proven(caller, user_id, image, threshold, proof)
            .await
    }

    async fn verify_proven(
        &self,
        caller: &Caller,
        user_id: i64,
        image: Vec<u8>,
        threshold: Option<Threshold>,
        proof: (LivenessMode, Option<&str>),
    ) -> Result<Verification, ServiceError> {
        let mut live_score = None;
        let mut result = self
            .verify_inner(caller, user_id, image, threshold, proof, &mut live_score)
            .await;
        let distance = result.as_ref().ok().and_then(|v| v.distance);
        telemetry::decision("verify", &result, distance, &self.model.id);
        self.audit
            .result_scored(
                caller,
                "verify",
                &result,
                Some(user_id),
                distance,
                live_score,
            )
            .await;
        if let Ok(v) = &mut result {
            if !v.matched && !caller.allows(Scope::Admin) {
                v.distance = None;
            }
        }
        result
    }

    async fn verify_inner(
        &self,
        caller: &Caller,
        user_id: i64,
        image: Vec<u8>,
        threshold: Option<Threshold>,
        (liveness, token): (LivenessMode, Option<&str>),
        live_score: &mut Option<f32>,
    ) -> Result<Verification, ServiceError> {
        // Refused before the lockout: a check this server cannot make, or a
        // required challenge not answered, is not an attempt.
        let level = self.liveness.level_for_decision(liveness)?;
        if level == LivenessMode::Challenge && token.is_none() {
            return Err(ServiceError::LivenessTokenRequired);
        }
        let check = level >= LivenessMode::Passive;
        self.store
            .get_user(user_id)
            .await
            .map_err(for_user(user_id))?;
        let attempt = self.lockouts.reserve(user_id).await?;
        let judged = self
            .judge(
                caller,
                user_id,
                image,
                threshold,
                (check, token),
                live_score,
            )
            .await;
        // The lockout counts against the calibrated default, whatever
        // threshold was asked for: an administrator's loose `?threshold=`
        // must not turn a wrong face into a success that clears the count.
        // No face, a bad image, busy workers: nothing was compared.
        // A refused token is a failed attempt: it stands for a session.
        let outcome = match &judged {
            Ok((_, true)) => Outcome::Passed,
            Ok((_, false)) | Err(ServiceError::LivenessTokenRefused) => Outcome::Failed,
            Err(_) => Outcome::Released,
        };
        self.lockouts.settle(attempt, outcome).await?;
        let (verification, _) = judged?;
        tracing::info!(user_id, matched = verification.matched, "verified");
        Ok(verification)
    }

    /// One reserved verification: the verification, and whether it passes
    /// the calibrated default (an attack never does).
    async fn judge(
        &self,
        caller: &Caller,
        user_id: i64,
        image: Vec<u8>,
        threshold: Option<Threshold>,
        (liveness, token): (bool, Option<&str>),
        live_score: &mut Option<f32>,
    ) -> Result<(Verification, bool), ServiceError> {
        // The largest face decides; the others need no embedding.
        let request = FaceRequest {
            max_faces: 1,
            liveness,
        };
        let analysis = self.analyze(caller, image, request).await?;
        let face = analysis.faces.first().ok_or(ServiceError::NoFace)?;
        let nearest = self
            .nearest_of_user(user_id, face.embedding.values())
            .await?;
        let default = self.thresholds.verify(nearest.templates);
        let threshold = Self::decision_threshold(
            caller,
            threshold,
            &default,
            "loosen the verification threshold beyond the calibrated default",
        )?;
        // The token is spent last, once nothing else can refuse the
        // request: a photo without a face, a user without templates, a
        // threshold the key may not ask for leave it for the next try.
        let bound = match token {
            None => None,
            Some(t) => Some(self.redeem_liveness_token(caller, t, Some(user_id)).await?),
        };
        *live_score = face.live_score;
        let verdict = self.liveness.judge(liveness, face.live_score);
        if let Some(v) = verdict {
            telemetry::liveness("verify", v);
        }
        // Not the face the token's session saw: refused like an attack,
        // whatever its distance to the user.
        let mismatch = match &bound {
            None => false,
            Some(t) => !self.is_session_face(t, &face.embedding)?,
        };
        let reason = match (verdict == Some(LivenessVerdict::Attack), mismatch) {
            (true, _) => Some("liveness_failed"),
            (false, true) => Some("token_face_mismatch"),
            (false, false) => None,
        };
        let attack = reason.is_some();
        let distance = nearest.distance;
        let matched = !attack && Thresholds::matches(distance, threshold);
        let passes_default = !attack && Thresholds::matches(distance, default.as_threshold());
        let verification = Verification {
            user_id,
            matched,
            // An attack is not judged on its distance, so none is reported
            // or recorded, to admin neither: how close a print came is
            // what would help the next one.
            distance: (!attack).then_some(distance),
            evidence: if matched {
                self.thresholds.evidence(distance, nearest.templates)
            } else {
                MatchEvidence::none()
            },
            band: match attack {
                true => Band::NoMatch,
                false => self.thresholds.band(distance, threshold),
            },
            threshold: threshold.value(),
            default,
            face: face_box(face),
            faces_in_image: analysis.faces_found,
            liveness: verdict,
            reason,
        };
        Ok((verification, passes_default))
    }

    /// One user.
    pub async fn get_user(&self, user_id: i64) -> Result<User, ServiceError> {
        self.store
            .get_user(user_id)
            .await
            .map_err(for_user(user_id))
    }

    /// Users in ascending id order.
    pub async fn list_users(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<User>, ServiceError> {
        Ok(self.store.list_users(page(after, limit)?).await?)
    }

    /// The users whose name contains `name` (case-insensitive, literally)
    /// or whose external reference is `external_ref`, one page.
    pub async fn find_users(
        &self,
        filter: face_store::UserFilter,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<User>, ServiceError> {
        let too_long = |t: &Option<String>| t.as_ref().is_some_and(|t| t.len() > 200);
        if too_long(&filter.name_contains) || too_long(&filter.external_ref) {
            return Err(ServiceError::Invalid {
                field: "name",
                message: "a search text is at most 200 bytes".into(),
            });
        }
        Ok(self.store.find_users(&filter, page(after, limit)?).await?)
    }

    /// The user with this external reference (any key that may verify
    /// asks: a kiosk knows people by their badge, not by FaceGate's id).
    pub async fn user_by_reference(&self, external_ref: &str) -> Result<User, ServiceError> {
        let filter = face_store::UserFilter {
            external_ref: Some(external_ref.to_string()),
            ..Default::default()
        };
        self.find_users(filter, None, 1)
            .await?
            .pop()
            .ok_or_else(|| {
                ServiceError::UserReferenceNotFound(external_ref.chars().take(64).collect())
            })
    }

    /// Every user in ascending id order, if there are at most `max`;
    /// `TooManyToList` otherwise (the caller should page).
    pub async fn all_users(&self, max: usize) -> Result<Vec<User>, ServiceError> {
        let mut users: Vec<User> = Vec::new();
        loop {
            let after = users.last().map(|u| u.id);
            let batch = self.store.list_users(page(after, Page::MAX_LIMIT)?).await?;
            let full = batch.len() == Page::MAX_LIMIT;
            users.extend(batch);
            if users.len() > max {
                return Err(ServiceError::TooManyToList { max });
            }
            if !full {
                return Ok(users);
            }
        }
    }

    /// Deletes a user and all their templates (and lockout state). The
    /// audit rows about them stay; they hold no biometric data.
    #[tracing::instrument(skip(self, caller))]
    pub async fn delete_user(&self, caller: &Caller, user_id: i64) -> Result<(), ServiceError> {
        let result = self
            .store
            .delete_user(user_id)
            .await
            .map_err(for_user(user_id));
        self.audit
            .result(caller, "delete", &result, Some(user_id), None)
            .await;
        result?;
        self.gallery_changed();
        tracing::info!(user_id, "deleted");
        Ok(())
    }

    /// Users with no template of the active model (re-enrolment report).
    pub async fn users_without_active_model(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<User>, ServiceError> {
        Ok(self
            .store
            .users_without_model(&self.model, page(after, limit)?)
            .await?)
    }

    /// Counts and configuration.
    pub async fn stats(&self) -> Result<ServiceStats, ServiceError> {
        let stats = self.store.stats().await?;
        let templates = stats
            .templates_by_model
            .iter()
            .find(|(id, _)| *id == self.model.id)
            .map(|(_, n)| *n)
            .unwrap_or(0);
        Ok(ServiceStats {
            total_users: stats.users,
            templates,
            database: self.store_kind,
            model: (**self.workers.model()).clone(),
            detector: self.workers.detector().to_string(),
            execution: self.workers.execution().to_string(),
            thresholds: self
                .thresholds
                .report(u64::try_from(templates).unwrap_or(0)),
            max_templates_per_user: self.max_templates_per_user,
            abandoned_jobs: self.workers.abandoned(),
            other_models: stats
                .templates_by_model
                .iter()
                .filter(|(id, n)| *id != self.model.id && *n > 0)
                .cloned()
                .collect(),
            liveness: self.liveness.report(),
        })
    }
}

/// A duplicate's user id is for `admin` only: to anyone else it would make
/// enrolment an identification service.
fn redact_duplicate(
    caller: &Caller,
    result: Result<Enrolled, ServiceError>,
) -> Result<Enrolled, ServiceError> {
    match result {
        Err(ServiceError::Duplicate { .. }) if !caller.allows(Scope::Admin) => {
            Err(ServiceError::Duplicate { user_id: None })
        }
        other => other,
    }
}

impl AuditOutcome for Enrolled {
    fn outcome(&self) -> &'static str {
        self.admin_override.map_or("ok", |o| o.as_str())
    }
}

impl AuditOutcome for Verification {
    fn outcome(&self) -> &'static str {
        if let Some(reason) = self.reason {
            reason
        } else if self.matched {
            "match"
        } else {
            "no_match"
        }
    }
}

impl AuditOutcome for Identification {
    fn outcome(&self) -> &'static str {
        let first = self.faces.first();
        if first.is_some_and(|f| f.liveness == Some(LivenessVerdict::Attack)) {
            "liveness_failed"
        } else if first.is_some_and(|f| f.matched) {
            "match"
        } else {
            "no_match"
        }
    }
}

fn warn_extrapolated(thresholds: &Thresholds, d: &DecisionThreshold) {
    tracing::warn!(
        comparisons = d.comparisons,
        measured_limit = thresholds.measured_comparisons_limit(),
        threshold = d.threshold,
        "identification threshold is EXTRAPOLATED beyond the measured calibration curve \
         (more comparisons than the calibration measured): the false-positive rate is an \
         estimate; calibrate on a larger data set"
    );
}

fn template(face: AnalyzedFace) -> NewTemplate {
    NewTemplate {
        quality: face.quality.score,
        embedding: face.embedding.into_values(),
    }
}

fn enrolled_face(face: &EnrolmentFace) -> EnrolledFace {
    EnrolledFace {
        face: face_box(&face.face),
        ignored_faces: face.ignored_faces,
    }
}

fn face_box(face: &AnalyzedFace) -> FaceBox {
    FaceBox {
        bbox: face.detection.bbox,
        detection_score: face.detection.score,
        quality: face.quality.score,
    }
}

/// A keyset page, with the limit checked (1..=`Page::MAX_LIMIT`).
fn page(after: Option<i64>, limit: usize) -> Result<Page, ServiceError> {
    if limit == 0 || limit > Page::MAX_LIMIT {
        return Err(ServiceError::Invalid {
            field: "limit",
            message: format!("must be between 1 and {}", Page::MAX_LIMIT),
        });
    }
    Ok(Page { after, limit })
}
