//! The request and response bodies of the HTTP API, as typed structs: what
//! handlers serialize is exactly what the OpenAPI document describes.
//! Field names follow the reference service where it has them.

use face_service::{Band, EnrolledFace, FaceMatch, LivenessVerdict, Verification};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A face box in the photo's pixel coordinates.
#[derive(Debug, Serialize, ToSchema)]
pub struct BoxJson {
    /// Left edge.
    pub left: f32,
    /// Top edge.
    pub top: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
}

impl From<face_core::BoundingBox> for BoxJson {
    fn from(b: face_core::BoundingBox) -> Self {
        Self {
            left: b.left,
            top: b.top,
            width: b.width,
            height: b.height,
        }
    }
}

/// A face used for enrolment.
#[derive(Debug, Serialize, ToSchema)]
pub struct FaceJson {
    /// Where the face is.
    pub bbox: BoxJson,
    /// Detector confidence (the detector's own scale).
    pub detection_score: f32,
    /// Enrolment quality in [0, 1].
    pub quality: f32,
    /// Other faces in the photo too small to enrol (eyes closer than the
    /// minimum), which were not counted: people in the background.
    pub ignored_faces: usize,
}

impl From<&EnrolledFace> for FaceJson {
    fn from(f: &EnrolledFace) -> Self {
        Self {
            bbox: f.face.bbox.into(),
            detection_score: f.face.detection_score,
            quality: f.face.quality,
            ignored_faces: f.ignored_faces,
        }
    }
}

/// `POST /register/` body (JSON). Multipart forms use the same field names,
/// with files in `image`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// Display name (1–200 characters, not only spaces, no control or
    /// invisible characters).
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]*[^\s\u0000-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff][^\u0000-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]*$"
    )]
    pub name: String,
    /// One photo, base64 (a `data:image/...;base64,` prefix is accepted).
    /// `image` or `images` is required.
    #[schema(nullable = false)]
    pub image: Option<String>,
    /// Several photos of the same person, base64.
    #[schema(nullable = false, min_items = 1)]
    pub images: Option<Vec<String>>,
    /// Reference into another system (unique).
    pub external_ref: Option<String>,
    /// Free-form JSON metadata.
    #[schema(value_type = Object)]
    pub metadata: Option<serde_json::Value>,
    /// Enrol even if the face already matches another user.
    pub allow_duplicate: Option<bool>,
    /// The single-use token of a passed liveness challenge session of
    /// purpose `enrol` (`POST /liveness/sessions/{id}/frames`), redeemed by
    /// this enrolment: every photo must be the face that answered it.
    #[schema(nullable = false)]
    pub liveness_token: Option<String>,
}

/// A body carrying one photo.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ImageBody {
    /// The photo, base64 (a `data:` URL prefix is accepted).
    pub image: String,
    /// Verify only: the single-use token of a passed liveness challenge
    /// session (`POST /liveness/sessions/{id}/frames`), redeemed by this
    /// verification.
    pub liveness_token: Option<String>,
}

/// `POST /register/` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    /// Always `"registered"`.
    pub status: &'static str,
    /// The stored name.
    pub name: String,
    /// The new user's id.
    pub user_id: i64,
    /// Human-readable summary.
    pub message: String,
    /// Templates stored for the user.
    pub template_count: i64,
    /// The face used from each photo.
    pub faces: Vec<FaceJson>,
}

/// The reference API's `confidence`: the band's name for a match, null
/// without one.
fn confidence(band: Band) -> Option<&'static str> {
    band.is_match().then(|| band.as_str())
}

/// One face of a recognition, and who it is.
#[derive(Debug, Serialize, ToSchema)]
pub struct FaceMatchJson {
    /// Where the face is.
    pub bbox: BoxJson,
    /// Detector confidence.
    pub detection_score: f32,
    /// Whether the closest user is under the threshold.
    #[serde(rename = "match")]
    pub matched: bool,
    /// The matched user.
    pub user_id: Option<i64>,
    /// Their name.
    pub name: Option<String>,
    /// Distance to the matched user (model's metric; smaller is closer);
    /// null without a match.
    pub distance: Option<f32>,
    /// Without a match, the distance to the closest user, for `admin` keys
    /// only (a failed attempt's distance would let a caller hill-climb);
    /// null otherwise.
    pub nearest_distance: Option<f32>,
    /// `high`, `medium` or `low` for a match; null without one.
    pub confidence: Option<&'static str>,
    /// `high`, `medium`, `low` or `no_match`.
    #[schema(value_type = String)]
    pub confidence_band: Band,
    /// Measured share of stranger pairs this close (per comparison, from
    /// the calibration); null without a match.
    pub fmr: Option<f64>,
    /// `fmr` × the templates compared: false matches this close to expect
    /// in this gallery; null without a match.
    pub expected_false_matches: Option<f64>,
    /// `live` or `attack` when the face was checked (`?liveness=passive`
    /// or `security.require_liveness`); null otherwise. Never the score.
    #[schema(value_type = Option<String>)]
    pub liveness: Option<LivenessVerdict>,
    /// Why the face did not match when it was not searched at all:
    /// `liveness_failed`; null otherwise.
    pub reason: Option<&'static str>,
}

impl From<&FaceMatch> for FaceMatchJson {
    fn from(f: &FaceMatch) -> Self {
        Self {
            bbox: f.face.bbox.into(),
            detection_score: f.face.detection_score,
            matched: f.matched,
            user_id: f.user_id,
            name: f.name.clone(),
            distance: f.distance.filter(|_| f.matched),
            nearest_distance: f.distance.filter(|_| !f.matched),
            confidence: confidence(f.band),
            confidence_band: f.band,
            fmr: f.evidence.fmr,
            expected_false_matches: f.evidence.expected_false_matches,
            liveness: f.liveness,
            reason: (f.liveness == Some(LivenessVerdict::Attack)).then_some("liveness_failed"),
        }
    }
}

/// `POST /recognize/` answer: the reference fields describe the largest face.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recognized {
    /// Whether the largest face matched someone.
    #[serde(rename = "match")]
    pub matched: bool,
    /// Their name.
    pub name: Option<String>,
    /// Distance to the matched user; null without a match.
    pub distance: Option<f32>,
    /// Without a match, the distance to the closest user (`admin` keys
    /// only); null otherwise.
    pub nearest_distance: Option<f32>,
    /// Their id.
    pub user_id: Option<i64>,
    /// `high`, `medium` or `low` for a match; null without one.
    pub confidence: Option<&'static str>,
    /// Confidence band.
    #[schema(value_type = String)]
    pub confidence_band: Band,
    /// Measured per-comparison FMR at the match's distance; null without a
    /// match.
    pub fmr: Option<f64>,
    /// `fmr` × `comparisons`; null without a match.
    pub expected_false_matches: Option<f64>,
    /// Human-readable summary.
    pub message: String,
    /// The threshold applied.
    pub threshold: f32,
    /// The calibrated default for this gallery.
    pub default_threshold: f32,
    /// Whether the default lies beyond the measured calibration curve.
    pub threshold_extrapolated: bool,
    /// Templates of the active model compared.
    pub comparisons: u64,
    /// Faces of the photo identified, largest first (at most
    /// `face.max_faces_per_request`).
    pub faces: Vec<FaceMatchJson>,
    /// Smaller faces found beyond that cap, not identified.
    pub faces_left_out: usize,
    /// The largest face's liveness verdict (`live`, `attack`), when checked.
    #[schema(value_type = Option<String>)]
    pub liveness: Option<LivenessVerdict>,
    /// `liveness_failed` when the largest face was not searched; null
    /// otherwise.
    pub reason: Option<&'static str>,
}

/// `POST /users/{id}/verify` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verified {
    /// The user claimed.
    pub user_id: i64,
    /// Whether the photo is that user.
    #[serde(rename = "match")]
    pub matched: bool,
    /// Distance to the user's closest template; null when not verified.
    pub distance: Option<f32>,
    /// When not verified, the distance to the user's closest template, for
    /// `admin` keys only (a failed attempt's distance would let a caller
    /// hill-climb); null otherwise. As in `POST /recognize/`.
    pub nearest_distance: Option<f32>,
    /// `high`, `medium` or `low` when verified; null otherwise.
    pub confidence: Option<&'static str>,
    /// Confidence band.
    #[schema(value_type = String)]
    pub confidence_band: Band,
    /// Measured per-comparison FMR at the distance; null when not verified.
    pub fmr: Option<f64>,
    /// `fmr` × the user's templates compared; null when not verified.
    pub expected_false_matches: Option<f64>,
    /// The threshold applied.
    pub threshold: f32,
    /// The calibrated default for this user (stricter with more templates).
    pub default_threshold: f32,
    /// Whether the default lies beyond the measured calibration curve.
    pub threshold_extrapolated: bool,
    /// The user's templates of the active model compared.
    pub comparisons: u64,
    /// Faces in the photo (the largest is used).
    pub faces_in_image: usize,
    /// The face used.
    pub bbox: BoxJson,
    /// `live` or `attack` when the face was checked (`?liveness=passive`
    /// or `security.require_liveness`); null otherwise. Never the score.
    #[schema(value_type = Option<String>)]
    pub liveness: Option<LivenessVerdict>,
    /// Why it is not a match whatever its distance: `liveness_failed`
    /// (counts as a failed verification; no distance is reported); null
    /// otherwise.
    pub reason: Option<&'static str>,
    /// Human-readable summary.
    pub message: &'static str,
}

impl From<Verification> for Verified {
    fn from(v: Verification) -> Self {
        Self {
            user_id: v.user_id,
            matched: v.matched,
            distance: v.distance.filter(|_| v.matched),
            nearest_distance: v.distance.filter(|_| !v.matched),
            confidence: confidence(v.band),
            confidence_band: v.band,
            fmr: v.evidence.fmr,
            expected_false_matches: v.evidence.expected_false_matches,
            threshold: v.threshold,
            default_threshold: v.default.threshold,
            threshold_extrapolated: v.default.extrapolated,
            comparisons: v.default.comparisons,
            faces_in_image: v.faces_in_image,
            bbox: v.face.bbox.into(),
            liveness: v.liveness,
            reason: v.reason,
            message: match (v.matched, v.reason) {
                (true, _) => "Verified",
                (false, Some(_)) => {
                    "Not verified: the liveness check failed (a print or a screen, or a photo \
                     it mistook for one); take a new photo of the person in front of the camera"
                }
                (false, None) => "Not verified: the face does not match",
            },
        }
    }
}

/// An enrolled user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserJson {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// External reference.
    pub external_ref: Option<String>,
    /// Metadata; null when none was given.
    #[schema(value_type = Object, nullable = true)]
    pub metadata: Option<serde_json::Value>,
    /// Creation time (RFC 3339, UTC).
    pub created_at: String,
    /// Templates of all models.
    pub template_count: i64,
}

impl From<face_store::User> for UserJson {
    fn from(u: face_store::User) -> Self {
        Self {
            id: u.id,
            name: u.name,
            external_ref: u.external_ref,
            metadata: u.metadata,
            created_at: u
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            template_count: u.template_count,
        }
    }
}

/// `GET /admin/reenrolment` answer: users to ask for a new photo.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reenrolment {
    /// The active model they have no template of.
    pub model: String,
    /// Users in ascending id order.
    pub users: Vec<UserJson>,
    /// How many are in this page.
    pub count: usize,
    /// Pass as `?after=` for the next page; null on the last page.
    pub next_after: Option<i64>,
}

/// `DELETE /users/{id}` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    /// Always `"deleted"`.
    pub status: &'static str,
    /// The deleted user.
    pub user_id: i64,
    /// Human-readable summary.
    pub message: String,
}

/// `POST /users/{id}/faces` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct FacesAdded {
    /// Always `"added"`.
    pub status: &'static str,
    /// The user.
    pub user_id: i64,
    /// Templates added.
    pub added: usize,
    /// Templates the user now has.
    pub template_count: i64,
    /// The faces used.
    pub faces: Vec<FaceJson>,
}

/// One stored face template (never its vector).
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateJson {
    /// Template id (for `DELETE /users/{id}/faces/{template_id}`).
    pub id: i64,
    /// The model that made it.
    pub model: String,
    /// Whether it is of the active model (used for decisions).
    pub active_model: bool,
    /// Enrolment quality in [0, 1].
    pub quality: f32,
    /// Stored (RFC 3339, UTC).
    pub created_at: String,
}

/// `GET /users/{id}/faces` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateList {
    /// The user.
    pub user_id: i64,
    /// Their templates, in id order.
    pub faces: Vec<TemplateJson>,
}

/// `DELETE /users/{id}/faces/{template_id}` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateDeleted {
    /// Always `"deleted"`.
    pub status: &'static str,
    /// The user.
    pub user_id: i64,
    /// The deleted template.
    pub template_id: i64,
}

/// `GET /health` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `healthy` or `unhealthy`.
    pub status: &'static str,
    /// `connected` or `disconnected`.
    pub database: &'static str,
    /// Server time, RFC 3339.
    pub timestamp: String,
}

/// `POST /stream/tickets` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamTicket {
    /// Single use: `GET /stream?ticket=...`, or the WebSocket subprotocol
    /// `facegate.ticket.<ticket>`.
    pub ticket: String,
    /// Seconds it stays valid.
    pub expires_in: u64,
}

/// `GET /livez` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Live {
    /// Always `live`.
    pub status: &'static str,
}

/// `GET /readyz` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// Each check's result.
    pub checks: ReadyChecks,
}

/// The checks behind `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyChecks {
    /// `ok`, or `unavailable` when the store did not answer within a second.
    pub store: &'static str,
    /// `ok`, or `saturated` when a face job would be refused as busy.
    pub workers: &'static str,
}

/// `GET /stats/` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    /// Enrolled users.
    pub total_users: i64,
    /// Templates of the active model.
    pub total_templates: i64,
    /// `sqlite` or `postgresql`.
    pub database: &'static str,
    /// Active embedding model id.
    pub embedding_model: String,
    /// Its full name.
    pub embedding_model_name: String,
    /// Its output dimension.
    pub embedding_dimension: usize,
    /// `euclidean` or `cosine`.
    pub similarity_metric: &'static str,
    /// Active detector, e.g. `dlib-hog` or `onnx-yunet`.
    pub detector: String,
    /// Where embeddings are computed: `cpu` or `cuda`.
    pub execution_provider: String,
    /// Thresholds in force for the current gallery, with their measured
    /// rates, source, and whether identification's is extrapolated.
    #[schema(value_type = Object)]
    pub thresholds: face_service::ThresholdReport,
    /// Whether the thresholds come from a calibration file (false only
    /// with `thresholds.allow_uncalibrated`).
    pub calibrated: bool,
    /// The most templates of one model a user may have.
    pub max_templates_per_user: usize,
    /// Face jobs skipped because their client hung up while they waited.
    pub abandoned_jobs: u64,
    /// Templates of other embedding models, by model id: kept for switching
    /// back, unused by this one (see `GET /admin/reenrolment`).
    #[schema(value_type = Object)]
    pub templates_of_other_models: std::collections::BTreeMap<String, i64>,
    /// Presentation-attack detection: `required` (security.require_liveness),
    /// `passive_available`, and the calibrated threshold, its target BPCER
    /// and what it was measured with; or `unavailable_reason`.
    #[schema(value_type = Object)]
    pub liveness: face_service::LivenessReport,
}

/// Every error: `{"error", "message", "detail", "details"?}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorJson {
    /// Machine-readable code, e.g. `no_face`, `duplicate_face`, `busy`.
    pub error: String,
    /// What went wrong and what to do.
    pub message: String,
    /// The same text as `message`, where the reference service's (FastAPI)
    /// clients read it.
    pub detail: String,
    /// Facts: the face count, quality reasons, the limit, the field. Absent
    /// when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object, required = false)]
    pub details: Option<serde_json::Value>,
}

/// A key's scope, as the API names it (for the document; the service
/// parses scopes itself).
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ScopeName {
    /// Everything.
    Admin,
    /// Enrol people and add faces.
    Enrol,
    /// Verify and identify.
    Recognize,
}

/// A liveness level a request may ask for, as the document names it (the
/// service parses it; `challenge` is not served yet and left out).
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum LivenessLevel {
    /// No presentation-attack check (unless the server requires one).
    Off,
    /// The passive, single-image check.
    Passive,
}

/// `GET /auth/whoami`: the key that made the request.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    /// The key's id; null when authentication is switched off.
    pub key_id: Option<i64>,
    /// The key's name; null when authentication is switched off.
    pub name: Option<String>,
    /// What the key may do (`admin` holds every scope).
    #[schema(value_type = Vec<ScopeName>)]
    pub scopes: Vec<String>,
    /// Whether the server requires keys at all.
    pub authentication: bool,
}

/// An API key, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyJson {
    /// Id (appears in the audit log).
    pub id: i64,
    /// What it is for.
    pub name: String,
    /// The public part of the key (`fg_<prefix>_...`).
    pub prefix: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Created (RFC 3339, UTC).
    pub created_at: String,
    /// Revoked (RFC 3339, UTC), or null.
    pub revoked_at: Option<String>,
}

impl From<face_store::ApiKey> for KeyJson {
    fn from(k: face_store::ApiKey) -> Self {
        Self {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes,
            created_at: k.created_at.to_rfc3339(),
            revoked_at: k.revoked_at.map(|t| t.to_rfc3339()),
        }
    }
}

/// `POST /admin/keys` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyCreated {
    /// The stored key.
    #[serde(flatten)]
    pub key: KeyJson,
    /// The whole key, to send as `Authorization: Bearer <token>`. Shown once.
    pub token: String,
    /// A reminder to keep it.
    pub message: &'static str,
}

/// `GET /admin/keys` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    /// Every key, in id order.
    pub keys: Vec<KeyJson>,
}

/// A user's verification lockout.
#[derive(Debug, Serialize, ToSchema)]
pub struct LockoutJson {
    /// The user.
    pub user_id: i64,
    /// Consecutive failed verifications.
    pub failures: u32,
    /// No attempt is taken before this time (RFC 3339), or null.
    pub locked_until: Option<String>,
    /// Verification disabled until an administrator resets it.
    pub disabled: bool,
    /// The user's display name (in `GET /admin/lockouts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl LockoutJson {
    /// From the store's state.
    pub fn new(user_id: i64, l: face_store::Lockout) -> Self {
        Self {
            user_id,
            failures: l.failures,
            locked_until: l.locked_until.map(|t| t.to_rfc3339()),
            disabled: l.disabled,
            name: None,
        }
    }

    /// With the user's name.
    pub fn named(mut self, name: String) -> Self {
        self.name = Some(name);
        self
    }
}

/// One audit event.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditJson {
    /// Id (newest first; the pagination key).
    pub id: i64,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The API key that made the request.
    pub key_id: Option<i64>,
    /// The client's address.
    pub client: Option<String>,
    /// `enrol`, `add_faces`, `delete_face`, `delete`, `identify`, `verify`,
    /// `key_create`, `key_revoke`, `lockout_reset`.
    pub action: String,
    /// `ok`, `match`, `no_match`, `liveness_failed`, `refused`, or a
    /// security event: `admin_unverified_face`,
    /// `admin_first_template_of_model`.
    pub outcome: String,
    /// The user concerned.
    pub user_id: Option<i64>,
    /// The comparison's distance (identify, verify).
    pub distance: Option<f32>,
    /// Why it was refused (an error code), or another short remark.
    pub detail: Option<String>,
    /// The passive liveness score of the decided face (0..=1, live at or
    /// above the calibrated threshold), when it was checked: for
    /// administrators only, never in the caller's answer.
    pub liveness_score: Option<f32>,
}

impl From<face_store::AuditEvent> for AuditJson {
    fn from(e: face_store::AuditEvent) -> Self {
        Self {
            id: e.id,
            at: e.at.to_rfc3339(),
            key_id: e.key_id,
            client: e.client,
            action: e.action,
            outcome: e.outcome,
            user_id: e.user_id,
            distance: e.distance,
            detail: e.detail,
            liveness_score: e.liveness_score,
        }
    }
}

/// `GET /admin/audit` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Events, newest first.
    pub events: Vec<AuditJson>,
    /// How many are in this page.
    pub count: usize,
    /// Pass as `?before=` for the next (older) page; null on the last.
    pub next_before: Option<i64>,
}
