//! HTTP routes: each handler extracts, calls one service function, and
//! responds. Response shapes keep the reference API's field names.

pub mod admin;
pub mod docs;
pub mod health;
pub mod integer;
pub mod liveness;
pub mod metrics;
pub mod probes;
pub mod recognize;
pub mod register;
pub mod stats;
pub mod stream;
pub mod table;
pub mod ui;
pub mod users;
pub mod whoami;

pub use table::configure;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use face_service::{FaceService, LivenessMode, Threshold};
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;

/// `?threshold=` and `?liveness=` on recognize and verify.
#[derive(Debug, Deserialize)]
pub struct ThresholdQuery {
    threshold: Option<String>,
    liveness: Option<String>,
}

/// `?liveness=` on enrolment.
#[derive(Debug, Deserialize)]
pub struct LivenessQuery {
    liveness: Option<String>,
}

impl LivenessQuery {
    /// The level asked for (`off` when absent).
    pub fn level(&self) -> Result<LivenessMode, ApiError> {
        liveness_level(self.liveness.as_deref())
    }
}

fn liveness_level(raw: Option<&str>) -> Result<LivenessMode, ApiError> {
    Ok(raw
        .map(LivenessMode::parse)
        .transpose()?
        .unwrap_or_default())
}

impl ThresholdQuery {
    /// The liveness level asked for (`off` when absent).
    pub fn liveness(&self) -> Result<LivenessMode, ApiError> {
        liveness_level(self.liveness.as_deref())
    }

    /// The parsed threshold, validated for the active model's metric.
    pub fn parse(&self, service: &FaceService) -> Result<Option<Threshold>, ApiError> {
        let Some(raw) = &self.threshold else {
            return Ok(None);
        };
        let value: f64 = raw.trim().parse().map_err(|_| {
            let (lo, hi) = Threshold::range(service.model().metric);
            ApiError::invalid(
                "threshold",
                format!(
                    "{raw:?} is not a number; use a distance greater than {lo} and at most {hi}"
                ),
            )
        })?;
        Ok(Some(service.parse_threshold(value)?))
    }
}

/// Parses a user id from the path; anything but a positive integer is a 422.
pub fn user_id(raw: &str) -> Result<i64, ApiError> {
    integer::parse(raw).filter(|id| *id > 0).ok_or_else(|| {
        ApiError::invalid(
            "user_id",
            format!("{:?} is not a user id (a positive integer)", truncate(raw)),
        )
    })
}

/// Parses another positive id (a template, a key) from the path.
pub fn positive_id(field: &str, raw: &str) -> Result<i64, ApiError> {
    integer::parse(raw)
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid(field, "must be a positive integer"))
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Refuses a body whose declared length is over the limit before reading it.
pub fn check_length(req: &HttpRequest, limit: usize) -> Result<(), ApiError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match declared {
        Some(n) if n > limit => Err(crate::input::too_large(limit)),
        _ => Ok(()),
    }
}

/// JSON 404 for unknown routes.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {} {}", req.method(), req.path()),
    ))
}
