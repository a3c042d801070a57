//! The service's error type: every way a use case can fail, classified so
//! the server maps each to one HTTP status in one exhaustive `match`.

use face_core::{FaceError, QualityIssue};
use face_store::StoreError;

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The image could not be decoded or broke a limit.
    #[error("{0}")]
    BadImage(FaceError),
    /// No face was found.
    #[error("No face detected in the image")]
    NoFace,
    /// Enrolment needs exactly one face.
    #[error("Multiple faces detected ({count}); enrolment needs a photo with exactly one face")]
    MultipleFaces {
        /// How many faces were found.
        count: usize,
    },
    /// The face is not good enough to enrol.
    #[error("Face quality too low: {}", issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; "))]
    LowQuality {
        /// Every problem found.
        issues: Vec<QualityIssue>,
    },
    /// A request field is invalid (name, threshold, page, …).
    #[error("{field}: {message}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// More users than one unpaged list may hold.
    #[error(
        "there are more than {max} users, too many to list at once: page with \
         ?limit=1000, then ?after=<last id> (each page's Link header names the next)"
    )]
    TooManyToList {
        /// The most one list holds.
        max: usize,
    },
    /// No such user.
    #[error("user {0} not found")]
    UserNotFound(i64),
    /// The face already belongs to an enrolled user.
    #[error("this face already matches an enrolled user{}; an administrator may enrol it anyway with allow_duplicate", user_id.map(|id| format!(" ({id})")).unwrap_or_default())]
    Duplicate {
        /// The existing user; shown to `admin` only.
        user_id: Option<i64>,
    },
    /// A write clashes with stored data (e.g. a duplicate external reference).
    #[error("{0}")]
    Conflict(String),
    /// The user has no template of the active model (enrolled under another model).
    #[error("user {0} has no face template for the active model; re-enrol them")]
    NoTemplateForModel(i64),
    /// No valid API key was presented.
    #[error("{0}")]
    Unauthenticated(String),
    /// The key is valid but lacks the scope this operation needs.
    #[error("this API key lacks the {} scope needed to {action}", needed.as_str())]
    Forbidden {
        /// The scope needed.
        needed: crate::access::Scope,
        /// What it is needed for, e.g. "loosen the threshold".
        action: &'static str,
    },
    /// The user would have more templates of the active model than allowed.
    #[error("at most {limit} face templates of the active model per user (thresholds.max_templates_per_user); an administrator can delete one (DELETE /users/{{id}}/faces/{{template_id}})")]
    TooManyTemplates {
        /// The user (0 for a new enrolment).
        user_id: i64,
        /// `thresholds.max_templates_per_user`.
        limit: usize,
        /// Templates of the active model the user has (0 when the request
        /// alone is over the limit, checked before reading the store).
        existing: usize,
    },
    /// The photos of one enrolment are not all of one person.
    #[error("photo {index} does not match the first photo at the verify threshold; one enrolment holds one person (send each person separately)")]
    PhotosDisagree {
        /// Position of the photo in the request (0-based).
        index: usize,
    },
    /// A photo of an enrolment asked to be checked for liveness scored as
    /// a presentation attack.
    #[error("photo {index} failed the liveness check (it looks like a print or a screen, not a live face); take a new photo of the person in front of the camera, in even light")]
    LivenessFailed {
        /// Position of the photo in the request (0-based).
        index: usize,
    },
    /// The liveness token is not one this key may redeem here now (used,
    /// expired, another key's, user's or purpose's, unknown).
    #[error("the liveness token is not valid for this key and this verification or enrolment (used, expired, or issued for another); answer a new challenge session")]
    LivenessTokenRefused,
    /// A photo of an enrolment with a liveness token is not the face that
    /// answered the token's session (the token is spent).
    #[error("photo {index} is not the face that answered the liveness session; answer a new session and enrol with photos of the person who answered it")]
    TokenFaceMismatch {
        /// Position of the photo in the request (0-based).
        index: usize,
    },
    /// The operator requires the challenge, and the verification came
    /// without a token.
    #[error("this server requires a liveness challenge for verification (security.require_liveness = \"challenge\"): answer a session (POST /liveness/sessions) and send its token as liveness_token")]
    LivenessTokenRequired,
    /// No user has this external reference.
    #[error("no user has the external reference {0:?}")]
    UserReferenceNotFound(String),
    /// No such liveness session (or not this key's).
    #[error(
        "liveness session {0:?} not found (sessions are visible only to the key that created them)"
    )]
    LivenessSessionNotFound(String),
    /// Liveness was asked for (or is required) and this server cannot
    /// check it.
    #[error("liveness checks are unavailable on this server: {0}")]
    LivenessUnavailable(String),
    /// No such template for this user.
    #[error("user {user_id} has no face template {template_id}")]
    TemplateNotFound {
        /// The user.
        user_id: i64,
        /// The template.
        template_id: i64,
    },
    /// No such API key.
    #[error("API key {0} not found")]
    KeyNotFound(i64),
    /// Too many consecutive failed verifications of this user: the next
    /// attempt is delayed.
    #[error("too many failed verifications of user {user_id}; retry in {retry_after_secs} s")]
    VerificationDelayed {
        /// The user.
        user_id: i64,
        /// Seconds until the next attempt is taken.
        retry_after_secs: u64,
    },
    /// Biometric verification of this user is disabled until an
    /// administrator resets it.
    #[error("biometric verification of user {0} is disabled after repeated failures; an administrator must reset it (POST /admin/users/{0}/lockout/reset)")]
    VerificationDisabled(i64),
    /// The caller's budget of failed identifications is spent.
    #[error("too many failed identifications from this API key or client; retry in {retry_after_secs} s")]
    FailedIdentificationsExceeded {
        /// Seconds until the budget allows another identification.
        retry_after_secs: u64,
    },
    /// The shared rate-limit store (Redis) did not answer, so the request
    /// could not be counted and is refused (fail closed).
    #[error(
        "the rate-limit store (Redis) is not answering; the request was refused, retry shortly"
    )]
    RateLimitsUnavailable,
    /// The client hung up before its queued face work began; the work was
    /// skipped and nothing is audited.
    #[error("the client closed the connection before its request was processed")]
    ClientGone,
    /// Too many requests are queued for face processing; retry shortly.
    #[error("the face workers are busy; retry in a moment")]
    Busy,
    /// The database cannot be reached.
    #[error("storage unavailable: {0}")]
    StoreUnavailable(String),
    /// A bug or a backend failure; logged, reported without detail.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// A short code for the audit log's outcome column.
    pub fn kind(&self) -> &'static str {
        match self {
            ServiceError::BadImage(_) => "bad_image",
            ServiceError::NoFace => "no_face",
            ServiceError::MultipleFaces { .. } => "multiple_faces",
            ServiceError::LowQuality { .. } => "low_quality",
            ServiceError::Invalid { .. } => "invalid",
            ServiceError::TooManyToList { .. } => "too_many_to_list",
            ServiceError::UserNotFound(_) => "not_found",
            ServiceError::Duplicate { .. } => "duplicate_face",
            ServiceError::Conflict(_) => "conflict",
            ServiceError::NoTemplateForModel(_) => "no_template_for_model",
            ServiceError::Unauthenticated(_) => "unauthenticated",
            ServiceError::Forbidden { .. } => "forbidden",
            ServiceError::TooManyTemplates { .. } => "template_limit",
            ServiceError::PhotosDisagree { .. } => "photos_disagree",
            ServiceError::TemplateNotFound { .. } => "not_found",
            ServiceError::LivenessFailed { .. } => "liveness_failed",
            ServiceError::LivenessUnavailable(_) => "liveness_unavailable",
            ServiceError::LivenessSessionNotFound(_) => "not_found",
            ServiceError::LivenessTokenRefused => "liveness_token_refused",
            ServiceError::TokenFaceMismatch { .. } => "token_face_mismatch",
            ServiceError::LivenessTokenRequired => "liveness_token_required",
            ServiceError::UserReferenceNotFound(_) => "not_found",
            ServiceError::KeyNotFound(_) => "not_found",
            ServiceError::VerificationDelayed { .. } => "delayed",
            ServiceError::VerificationDisabled(_) => "disabled",
            ServiceError::FailedIdentificationsExceeded { .. } => "identify_budget",
            ServiceError::RateLimitsUnavailable => "rate_limits_unavailable",
            ServiceError::ClientGone => "client_gone",
            ServiceError::Busy => "busy",
            ServiceError::StoreUnavailable(_) => "store_unavailable",
            ServiceError::Internal(_) => "internal",
        }
    }
}

impl From<FaceError> for ServiceError {
    fn from(e: FaceError) -> Self {
        if let FaceError::PadUnavailable { reason } = e {
            // The reason names files and directories: the operator's, in
            // the log; the caller gets what to do.
            tracing::warn!(%reason, "passive liveness unavailable");
            return ServiceError::LivenessUnavailable(crate::liveness::UNAVAILABLE.into());
        }
        if e.is_bad_input() {
            ServiceError::BadImage(e)
        } else {
            ServiceError::Internal(e.to_string())
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ServiceError::Internal(format!("unexpected not-found: {m}")),
            StoreError::Conflict(m) => ServiceError::Conflict(m),
            StoreError::Unavailable(m) => ServiceError::StoreUnavailable(m),
            StoreError::BadData(m) => ServiceError::Invalid {
                field: "request",
                message: m,
            },
            StoreError::TemplateLimit { limit, existing } => ServiceError::TooManyTemplates {
                user_id: 0,
                limit,
                existing,
            },
            StoreError::Duplicate { user_id } => ServiceError::Duplicate {
                user_id: Some(user_id),
            },
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

/// Maps a store error for an operation on one user: not-found becomes
/// [`ServiceError::UserNotFound`].
pub(crate) fn for_user(id: i64) -> impl Fn(StoreError) -> ServiceError {
    move |e| match e {
        StoreError::NotFound(_) => ServiceError::UserNotFound(id),
        StoreError::TemplateLimit { limit, existing } => ServiceError::TooManyTemplates {
            user_id: id,
            limit,
            existing,
        },
        other => other.into(),
    }
}
