//! HTTP routes: each handler extracts, calls one service function, and
//! responds. Response shapes keep the reference API's field names.

pub mod admin;
pub mod health;
pub mod recognize;
pub mod register;
pub mod stats;
pub mod users;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use face_service::{FaceService, Threshold};
use serde::Deserialize;

use crate::error::ApiError;

/// Shared state of all handlers.
pub struct AppState {
    /// The use cases.
    pub service: FaceService,
    /// Body size limit and the in-flight body budget.
    pub bodies: crate::input::BodyBudget,
    /// Authentication and rate limits.
    pub guard: crate::auth::Guard,
}

/// `?threshold=` on recognize and verify.
#[derive(Debug, Deserialize)]
pub struct ThresholdQuery {
    threshold: Option<String>,
}

impl ThresholdQuery {
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
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        ApiError::invalid(
            "user_id",
            format!("{:?} is not a user id (a positive integer)", truncate(raw)),
        )
    })
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

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health::health))
        .route("/register/", web::post().to(register::register))
        .route("/register", web::post().to(register::register))
        .route("/recognize/", web::post().to(recognize::recognize))
        .route("/recognize", web::post().to(recognize::recognize))
        .route("/users/", web::get().to(users::list))
        .route("/users", web::get().to(users::list))
        .route("/users/{id}", web::get().to(users::get))
        .route("/users/{id}", web::delete().to(users::delete))
        .route("/users/{id}/faces", web::post().to(users::add_faces))
        .route("/users/{id}/faces", web::get().to(users::list_faces))
        .route(
            "/users/{id}/faces/{template_id}",
            web::delete().to(users::delete_face),
        )
        .route("/users/{id}/verify", web::post().to(users::verify))
        .route("/admin/reenrolment", web::get().to(admin::reenrolment))
        .route("/admin/keys", web::post().to(admin::create_key))
        .route("/admin/keys", web::get().to(admin::list_keys))
        .route("/admin/keys/{id}", web::delete().to(admin::revoke_key))
        .route("/admin/users/{id}/lockout", web::get().to(admin::lockout))
        .route(
            "/admin/users/{id}/lockout/reset",
            web::post().to(admin::reset_lockout),
        )
        .route("/admin/audit", web::get().to(admin::audit))
        .route("/stats/", web::get().to(stats::stats))
        .route("/stats", web::get().to(stats::stats));
}
