//! `GET /health`: 200 when the store answers, 503 with
//! `"database": "disconnected"` when it does not.

use actix_web::{web, HttpResponse};

use super::AppState;
use crate::api::Health;

/// Liveness and store reachability.
#[utoipa::path(get, path = "/health", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = Health, description = "store unreachable")))]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let timestamp = chrono::Utc::now().to_rfc3339();
    match state.service.health().await {
        Ok(()) => HttpResponse::Ok().json(Health {
            status: "healthy",
            database: "connected",
            timestamp,
        }),
        Err(e) => {
            tracing::warn!(error = %e, "health check: store unavailable");
            HttpResponse::ServiceUnavailable()
                .insert_header((actix_web::http::header::RETRY_AFTER, "5"))
                .json(Health {
                    status: "unhealthy",
                    database: "disconnected",
                    timestamp,
                })
        }
    }
}
