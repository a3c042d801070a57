//! `GET /health`: 200 when the store answers, 503 with
//! `"database": "disconnected"` when it does not.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;

/// Liveness and store reachability.
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let timestamp = chrono::Utc::now().to_rfc3339();
    match state.service.health().await {
        Ok(()) => HttpResponse::Ok().json(json!({
            "status": "healthy", "database": "connected", "timestamp": timestamp
        })),
        Err(e) => {
            tracing::warn!(error = %e, "health check: store unavailable");
            HttpResponse::ServiceUnavailable()
                .insert_header((actix_web::http::header::RETRY_AFTER, "5"))
                .json(json!({
                    "status": "unhealthy", "database": "disconnected", "timestamp": timestamp
                }))
        }
    }
}
