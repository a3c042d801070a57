//! One JSON error shape for every failure, `{"error", "message", "detail",
//! "details"?}`, and the one exhaustive mapping from service errors to HTTP
//! statuses. `detail` repeats `message`: it is where the reference service
//! (FastAPI) puts its error text, so its clients read it unchanged.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use face_core::FaceError;
use face_service::ServiceError;
use serde::Serialize;
use serde_json::json;

/// An HTTP error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<serde_json::Value>,
    retry_after: Option<u32>,
    allow: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: &'a Option<serde_json::Value>,
}

impl ApiError {
    /// An error with a status, a machine-readable code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
            allow: None,
        }
    }

    /// A 405 for a method the path does not have, with `Allow`.
    pub fn method_not_allowed(
        method: &actix_web::http::Method,
        allowed: &[actix_web::http::Method],
    ) -> Self {
        let allow = allowed
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut e = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed here; use {allow}"),
        )
        .details(json!({ "allowed": allowed.iter().map(|m| m.as_str()).collect::<Vec<_>>() }));
        e.allow = Some(allow);
        e
    }

    /// Adds details.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// A 422 for a request field.
    pub fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            format!("{field}: {message}"),
        )
        .details(json!({ "field": field }))
    }

    /// A 429 from the request rate limiter.
    pub fn rate_limited(what: &str, retry_after_secs: u32) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests for this {what}; retry in {retry_after_secs} s"),
        )
        .details(json!({ "limit": what, "retry_after_secs": retry_after_secs }));
        e.retry_after = Some(retry_after_secs);
        e
    }

    /// A 400 for an unusable image payload.
    pub fn bad_image(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_image", message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if let Some(allow) = &self.allow {
            res.insert_header((header::ALLOW, allow.clone()));
        }
        res.json(Body {
            error: self.code,
            message: &self.message,
            detail: &self.message,
            details: &self.details,
        })
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let message = e.to_string();
        // Exhaustive on purpose: a new service error must choose its status.
        match e {
            ServiceError::BadImage(face) => match face {
                FaceError::LimitExceeded { limit, actual, max } => {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "image_too_large", message)
                        .details(json!({ "limit": limit, "actual": actual, "max": max }))
                }
                FaceError::EmptyInput
                | FaceError::UnsupportedFormat
                | FaceError::CorruptImage(_)
                | FaceError::DecoderLimit(_)
                | FaceError::ImageTooSmall { .. }
                | FaceError::ModelMismatch { .. }
                | FaceError::ModelMissing { .. }
                | FaceError::ModelCorrupt { .. }
                | FaceError::RuntimeUnavailable { .. }
                | FaceError::ModelUnfit { .. }
                | FaceError::Backend { .. }
                | FaceError::Io { .. } => ApiError::bad_image(message),
                // The service turns this one into LivenessUnavailable.
                FaceError::PadUnavailable { .. } => {
                    ApiError::new(StatusCode::NOT_IMPLEMENTED, "liveness_unavailable", message)
                }
            },
            ServiceError::NoFace => {
                ApiError::new(StatusCode::BAD_REQUEST, "no_face", "No face detected")
            }
            ServiceError::MultipleFaces { count } => {
                ApiError::new(StatusCode::BAD_REQUEST, "multiple_faces", message)
                    .details(json!({ "count": count }))
            }
            ServiceError::LowQuality { issues } => {
                ApiError::new(StatusCode::BAD_REQUEST, "low_quality", message)
                    .details(json!({ "issues": issues }))
            }
            ServiceError::Invalid { field, .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
                    .details(json!({ "field": field }))
            }
            ServiceError::TooManyToList { max } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_many_to_list",
                message,
            )
            .details(json!({ "max_list_users": max })),
            ServiceError::UserNotFound(id) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
                    .details(json!({ "user_id": id }))
            }
            ServiceError::Duplicate { user_id } => {
                let e = ApiError::new(StatusCode::CONFLICT, "duplicate_face", message);
                match user_id {
                    Some(id) => e.details(json!({ "user_id": id })),
                    None => e,
                }
            }
            ServiceError::TooManyTemplates {
                user_id,
                limit,
                existing,
            } => ApiError::new(StatusCode::CONFLICT, "template_limit", message)
                .details(json!({ "user_id": user_id, "limit": limit, "existing": existing })),
            ServiceError::PhotosDisagree { index } => {
                ApiError::new(StatusCode::BAD_REQUEST, "photos_disagree", message)
                    .details(json!({ "index": index }))
            }
            ServiceError::LivenessFailed { index } => {
                ApiError::new(StatusCode::BAD_REQUEST, "liveness_failed", message)
                    .details(json!({ "index": index }))
            }
            ServiceError::LivenessTokenRefused => {
                ApiError::new(StatusCode::FORBIDDEN, "liveness_token_refused", message)
            }
            ServiceError::TokenFaceMismatch { index } => {
                ApiError::new(StatusCode::BAD_REQUEST, "token_face_mismatch", message)
                    .details(json!({ "index": index }))
            }
            ServiceError::LivenessTokenRequired => {
                ApiError::new(StatusCode::FORBIDDEN, "liveness_token_required", message)
            }
            ServiceError::UserReferenceNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
            }
            ServiceError::LivenessSessionNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
            }
            // Not retryable (unlike 503): the operator must install the
            // files; /stats/ says what is missing.
            ServiceError::LivenessUnavailable(_) => {
                ApiError::new(StatusCode::NOT_IMPLEMENTED, "liveness_unavailable", message)
            }
            ServiceError::TemplateNotFound {
                user_id,
                template_id,
            } => ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
                .details(json!({ "user_id": user_id, "template_id": template_id })),
            ServiceError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            ServiceError::NoTemplateForModel(id) => {
                ApiError::new(StatusCode::CONFLICT, "no_template_for_model", message)
                    .details(json!({ "user_id": id }))
            }
            ServiceError::Unauthenticated(_) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
            }
            ServiceError::Forbidden { needed, .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
                    .details(json!({ "needed_scope": needed.as_str() }))
            }
            ServiceError::KeyNotFound(id) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
                    .details(json!({ "key_id": id }))
            }
            ServiceError::VerificationDelayed {
                user_id,
                retry_after_secs,
            } => {
                let mut e = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "verification_delayed",
                    message,
                )
                .details(json!({ "user_id": user_id, "retry_after_secs": retry_after_secs }));
                e.retry_after = Some(u32::try_from(retry_after_secs).unwrap_or(u32::MAX));
                e
            }
            ServiceError::VerificationDisabled(id) => {
                ApiError::new(StatusCode::LOCKED, "verification_disabled", message)
                    .details(json!({ "user_id": id }))
            }
            ServiceError::FailedIdentificationsExceeded { retry_after_secs } => {
                let mut e = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "identify_budget_spent",
                    message,
                )
                .details(json!({ "retry_after_secs": retry_after_secs }));
                e.retry_after = Some(u32::try_from(retry_after_secs).unwrap_or(u32::MAX));
                e
            }
            ServiceError::ClientGone => ApiError::new(
                // nginx's "client closed request": nobody reads it anyway.
                StatusCode::from_u16(499).unwrap_or(StatusCode::REQUEST_TIMEOUT),
                "client_closed_request",
                message,
            ),
            ServiceError::Busy => {
                let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message);
                e.retry_after = Some(1);
                e
            }
            ServiceError::RateLimitsUnavailable => {
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "rate_limits_unavailable",
                    message,
                );
                e.retry_after = Some(1);
                e
            }
            ServiceError::StoreUnavailable(detail) => {
                tracing::error!(%detail, "store unavailable");
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the database is unavailable; retry later",
                );
                e.retry_after = Some(5);
                e
            }
            ServiceError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; it has been logged",
                )
            }
        }
    }
}
