//! The use cases: enrol, add faces, identify, verify, list, delete, stats.
//!
//! Each takes validated values, runs face work on the worker pool and
//! storage work on the store, and returns plain data the server turns into
//! JSON. Biometric data (images, embeddings) never enters a span or a log
//! line: functions that touch it are instrumented with `skip`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use face_core::{AnalyzedFace, BoundingBox, Metric as CoreMetric, ModelInfo};
use face_store::{FaceStore, LockoutRule, Metric, ModelKey, NewTemplate, NewUser, Page, User};
use serde::Serialize;

use crate::access::Caller;
use crate::domain::{Threshold, UserName};
use crate::error::for_user;
use crate::thresholds::{Band, Thresholds};
use crate::workers::FaceWorkers;
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
    /// Enrol even if the face already matches another user.
    pub allow_duplicate: bool,
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

/// The result of an enrolment.
#[derive(Debug, Clone, Serialize)]
pub struct Enrolled {
    /// The stored user.
    pub user: User,
    /// The face used from each photo, in request order.
    pub faces: Vec<FaceBox>,
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
    /// Distance to the closest user's best template, in the model's metric
    /// (`None` when nobody is enrolled).
    pub distance: Option<f32>,
    /// `1 − gallery size × FMR(distance)` when matched, else 0.
    pub confidence: f32,
    /// Confidence band.
    pub band: Band,
}

/// The result of an identification: every face, largest first.
#[derive(Debug, Clone, Serialize)]
pub struct Identification {
    /// Faces, largest first.
    pub faces: Vec<FaceMatch>,
    /// The threshold applied.
    pub threshold: f32,
    /// Users enrolled (recounted at most every 5 s), which the confidence
    /// accounts for.
    pub gallery_size: i64,
}

/// The result of a 1:1 verification.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// The user claimed.
    pub user_id: i64,
    /// Whether the photo's face is that user.
    pub matched: bool,
    /// Distance to the user's closest template.
    pub distance: f32,
    /// `1 − FMR(distance)` when matched, else 0.
    pub confidence: f32,
    /// Confidence band.
    pub band: Band,
    /// The threshold applied.
    pub threshold: f32,
    /// The face used (the largest in the photo).
    pub face: FaceBox,
    /// Faces in the photo.
    pub faces_in_image: usize,
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
    /// Thresholds in force.
    pub thresholds: Thresholds,
}

/// FaceGate's use cases over a face pipeline pool and a store.
pub struct FaceService {
    pub(crate) workers: FaceWorkers,
    pub(crate) store: Arc<dyn FaceStore>,
    store_kind: &'static str,
    model: ModelKey,
    thresholds: Thresholds,
    /// When failed verifications delay and disable a user (see
    /// `security.rs`).
    pub(crate) lockout: LockoutRule,
    /// Enrolled-user count and when it was read. Identification scales its
    /// confidence by the gallery size; counting users on every request
    /// would put a table count on the hot path, and a few seconds' drift
    /// does not change a confidence meaningfully. A std mutex: held for a
    /// read or a write of two words, never across an await.
    gallery: Mutex<Option<(Instant, i64)>>,
}

/// How long a gallery count is reused.
const GALLERY_COUNT_TTL: Duration = Duration::from_secs(5);

impl FaceService {
    /// Joins workers, a store (`store_kind` names it for `/stats/`) and the
    /// thresholds for the workers' model.
    pub fn new(
        workers: FaceWorkers,
        store: Arc<dyn FaceStore>,
        store_kind: &'static str,
        thresholds: Thresholds,
    ) -> Self {
        let info = workers.model();
        let model = ModelKey::new(
            info.id.clone(),
            info.dimension,
            match info.metric {
                CoreMetric::Euclidean => Metric::Euclidean,
                CoreMetric::Cosine => Metric::Cosine,
            },
        );
        Self {
            workers,
            store,
            store_kind,
            model,
            thresholds,
            lockout: crate::security::DEFAULT_LOCKOUT,
            gallery: Mutex::new(None),
        }
    }

    /// The same service with another lockout rule (validated by
    /// [`crate::security::lockout_rule`]).
    pub fn with_lockout(mut self, rule: LockoutRule) -> Self {
        self.lockout = rule;
        self
    }

    /// The number of enrolled users, read at most every few seconds.
    async fn gallery_size(&self) -> Result<i64, ServiceError> {
        let cached = *self.gallery.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, n)) = cached {
            if at.elapsed() < GALLERY_COUNT_TTL {
                return Ok(n);
            }
        }
        let n = self.store.stats().await?.users;
        *self.gallery.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), n));
        Ok(n)
    }

    /// The thresholds in force.
    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
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

    async fn analyze(&self, image: Vec<u8>) -> Result<Vec<AnalyzedFace>, ServiceError> {
        let analysis = self
            .workers
            .run(move |p| p.analyze(&image))
            .await?
            .map_err(ServiceError::from)?;
        Ok(analysis.faces)
    }

    /// The one face of an enrolment photo, checked for quality.
    async fn enrolment_face(&self, image: Vec<u8>) -> Result<AnalyzedFace, ServiceError> {
        let mut faces = self.analyze(image).await?;
        match faces.len() {
            0 => Err(ServiceError::NoFace),
            1 => {
                let face = faces.remove(0);
                if face.quality.is_acceptable() {
                    Ok(face)
                } else {
                    Err(ServiceError::LowQuality {
                        issues: face.quality.issues,
                    })
                }
            }
            count => Err(ServiceError::MultipleFaces { count }),
        }
    }

    /// Refuses a face that already matches a user other than `except` at
    /// the strict (duplicate) threshold.
    async fn check_duplicate(
        &self,
        embedding: &[f32],
        except: Option<i64>,
    ) -> Result<(), ServiceError> {
        let hits = self.store.search(&self.model, embedding, 2).await?;
        if let Some(hit) = hits
            .iter()
            .find(|m| Some(m.user_id) != except && m.distance < self.thresholds.duplicate)
        {
            return Err(ServiceError::Duplicate {
                user_id: hit.user_id,
                distance: hit.distance,
            });
        }
        Ok(())
    }

    /// Enrols a new user from one or more photos.
    #[tracing::instrument(skip_all, fields(images = req.images.len()))]
    pub async fn enrol(
        &self,
        caller: &Caller,
        req: EnrolRequest,
    ) -> Result<Enrolled, ServiceError> {
        let result = self.enrol_inner(req).await;
        let user_id = result.as_ref().ok().map(|e| e.user.id);
        self.audit_result(caller, "enrol", &result, user_id, None)
            .await;
        result
    }

    async fn enrol_inner(&self, req: EnrolRequest) -> Result<Enrolled, ServiceError> {
        if req.images.is_empty() {
            return Err(ServiceError::Invalid {
                field: "image",
                message: "at least one image is required".into(),
            });
        }
        let mut templates = Vec::with_capacity(req.images.len());
        let mut faces = Vec::with_capacity(req.images.len());
        for image in req.images {
            let face = self.enrolment_face(image).await?;
            if !req.allow_duplicate {
                self.check_duplicate(face.embedding.values(), None).await?;
            }
            faces.push(face_box(&face));
            templates.push(NewTemplate {
                quality: face.quality.score,
                embedding: face.embedding.into_values(),
            });
        }
        let user = self
            .store
            .create_user(
                NewUser {
                    name: req.name.as_str().to_string(),
                    external_ref: req.external_ref,
                    metadata: req.metadata,
                },
                &self.model,
                &templates,
            )
            .await?;
        tracing::info!(user_id = user.id, templates = templates.len(), "enrolled");
        Ok(Enrolled { user, faces })
    }

    /// Adds photos of an enrolled user.
    #[tracing::instrument(skip(self, caller, images), fields(images = images.len()))]
    pub async fn add_faces(
        &self,
        caller: &Caller,
        user_id: i64,
        images: Vec<Vec<u8>>,
        allow_duplicate: bool,
    ) -> Result<Enrolled, ServiceError> {
        let result = self.add_faces_inner(user_id, images, allow_duplicate).await;
        self.audit_result(caller, "add_faces", &result, Some(user_id), None)
            .await;
        result
    }

    async fn add_faces_inner(
        &self,
        user_id: i64,
        images: Vec<Vec<u8>>,
        allow_duplicate: bool,
    ) -> Result<Enrolled, ServiceError> {
        self.store
            .get_user(user_id)
            .await
            .map_err(for_user(user_id))?;
        if images.is_empty() {
            return Err(ServiceError::Invalid {
                field: "image",
                message: "at least one image is required".into(),
            });
        }
        let mut templates = Vec::new();
        let mut faces = Vec::new();
        for image in images {
            let face = self.enrolment_face(image).await?;
            if !allow_duplicate {
                self.check_duplicate(face.embedding.values(), Some(user_id))
                    .await?;
            }
            faces.push(face_box(&face));
            templates.push(NewTemplate {
                quality: face.quality.score,
                embedding: face.embedding.into_values(),
            });
        }
        self.store
            .add_templates(user_id, &self.model, &templates)
            .await
            .map_err(for_user(user_id))?;
        let user = self
            .store
            .get_user(user_id)
            .await
            .map_err(for_user(user_id))?;
        tracing::info!(user_id, added = templates.len(), "faces added");
        Ok(Enrolled { user, faces })
    }

    /// Identifies every face in a photo against all enrolled users.
    #[tracing::instrument(skip(self, caller, image))]
    pub async fn identify(
        &self,
        caller: &Caller,
        image: Vec<u8>,
        threshold: Option<Threshold>,
    ) -> Result<Identification, ServiceError> {
        let result = self.identify_inner(image, threshold).await;
        // One row per photo, about its largest face.
        let first = result.as_ref().ok().and_then(|r| r.faces.first());
        let (user_id, distance) = (
            first.and_then(|f| f.user_id),
            first.and_then(|f| f.distance),
        );
        self.audit_result(caller, "identify", &result, user_id, distance)
            .await;
        result
    }

    async fn identify_inner(
        &self,
        image: Vec<u8>,
        threshold: Option<Threshold>,
    ) -> Result<Identification, ServiceError> {
        let threshold = threshold.unwrap_or(self.thresholds.identify_threshold());
        let faces = self.analyze(image).await?;
        if faces.is_empty() {
            return Err(ServiceError::NoFace);
        }
        let gallery_size = self.gallery_size().await?;
        let mut out = Vec::with_capacity(faces.len());
        for face in &faces {
            let best = self
                .store
                .search(&self.model, face.embedding.values(), 1)
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
            let confidence = match (matched, distance) {
                (true, Some(d)) => self
                    .thresholds
                    .confidence(d, usize::try_from(gallery_size).unwrap_or(1)),
                _ => 0.0,
            };
            out.push(FaceMatch {
                face: face_box(face),
                matched,
                user_id: best.as_ref().filter(|_| matched).map(|m| m.user_id),
                name: best.as_ref().filter(|_| matched).map(|m| m.name.clone()),
                distance,
                confidence,
                band,
            });
        }
        tracing::info!(
            faces = out.len(),
            matched = out.iter().filter(|f| f.matched).count(),
            "identified"
        );
        Ok(Identification {
            faces: out,
            threshold: threshold.value(),
            gallery_size,
        })
    }

    /// Verifies that the largest face in a photo is `user_id` (1:1).
    ///
    /// Subject to the lockout: after `lockout.delay_after` consecutive
    /// failures each attempt waits out a delay, after `disable_after` the
    /// user cannot be verified until an administrator resets them. A
    /// success clears the count; photos without a face do not count.
    #[tracing::instrument(skip(self, caller, image))]
    pub async fn verify(
        &self,
        caller: &Caller,
        user_id: i64,
        image: Vec<u8>,
        threshold: Option<Threshold>,
    ) -> Result<Verification, ServiceError> {
        let result = self.verify_inner(user_id, image, threshold).await;
        let distance = result.as_ref().ok().map(|v| v.distance);
        self.audit_result(caller, "verify", &result, Some(user_id), distance)
            .await;
        result
    }

    async fn verify_inner(
        &self,
        user_id: i64,
        image: Vec<u8>,
        threshold: Option<Threshold>,
    ) -> Result<Verification, ServiceError> {
        let threshold = threshold.unwrap_or(self.thresholds.verify_threshold());
        self.store
            .get_user(user_id)
            .await
            .map_err(for_user(user_id))?;
        let lockout = self.check_lockout(user_id).await?;
        let faces = self.analyze(image).await?;
        let face = faces.first().ok_or(ServiceError::NoFace)?;
        let distance = self
            .store
            .distance_to_user(user_id, &self.model, face.embedding.values())
            .await
            .map_err(for_user(user_id))?
            .ok_or(ServiceError::NoTemplateForModel(user_id))?;
        let matched = Thresholds::matches(distance, threshold);
        let confidence = if matched {
            self.thresholds.confidence(distance, 1)
        } else {
            0.0
        };
        // The lockout counts against the calibrated default, whatever
        // threshold the caller asked for: a loose `?threshold=` must not
        // turn a wrong face into a success that clears the count.
        let passes_default = Thresholds::matches(distance, self.thresholds.verify_threshold());
        if passes_default && lockout.failures > 0 {
            self.store.reset_lockout(user_id).await?;
        } else if !passes_default {
            let after = self
                .store
                .record_verify_failure(user_id, self.lockout)
                .await
                .map_err(for_user(user_id))?;
            if after.failures >= self.lockout.delay_after {
                tracing::warn!(
                    user_id,
                    failures = after.failures,
                    disabled = after.disabled,
                    "verification lockout"
                );
            }
        }
        tracing::info!(user_id, matched, "verified");
        Ok(Verification {
            user_id,
            matched,
            distance,
            confidence,
            band: self.thresholds.band(distance, threshold),
            threshold: threshold.value(),
            face: face_box(face),
            faces_in_image: faces.len(),
        })
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

    /// Deletes a user and all their templates (and lockout state). The
    /// audit rows about them stay; they hold no biometric data.
    #[tracing::instrument(skip(self, caller))]
    pub async fn delete_user(&self, caller: &Caller, user_id: i64) -> Result<(), ServiceError> {
        let result = self
            .store
            .delete_user(user_id)
            .await
            .map_err(for_user(user_id));
        self.audit_result(caller, "delete", &result, Some(user_id), None)
            .await;
        result?;
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
            thresholds: self.thresholds.clone(),
        })
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
