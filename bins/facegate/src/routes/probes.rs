//! `GET`/`HEAD /livez` and `/readyz`: what an orchestrator asks.
//!
//! Liveness says only that the process answers HTTP: it touches neither
//! the store nor the workers, so a database outage never gets healthy
//! replicas restarted. Readiness says whether this instance should get
//! traffic now: the store answers (within `READY_STORE_TIMEOUT`, so the
//! probe itself answers within about a second even when the database
//! hangs) and the face workers have room. Both are public and exempt from
//! rate limits (public routes never reach the limiters). `/health` keeps
//! the reference's body beside them.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use super::AppState;
use crate::api::{Live, Ready, ReadyChecks};

/// The process answers.
#[utoipa::path(get, path = "/livez", tag = "system",
    responses((status = 200, body = Live, description = "the process answers")))]
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(Live { status: "live" })
}

/// The store answers and the face workers have room.
#[utoipa::path(get, path = "/readyz", tag = "system",
    responses(
        (status = 200, body = Ready, description = "ready for traffic"),
        (status = 503, body = Ready, description = "not ready: the store does not answer, or the face workers are saturated")))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let r = state.service.readiness().await;
    let body = Ready {
        status: if r.is_ready() { "ready" } else { "not_ready" },
        checks: ReadyChecks {
            store: if r.store.is_ok() { "ok" } else { "unavailable" },
            workers: if r.workers.has_room() {
                "ok"
            } else {
                "saturated"
            },
        },
    };
    if let Err(e) = &r.store {
        tracing::warn!(error = %e, "readiness: store unavailable");
    }
    if r.is_ready() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "1"))
            .json(body)
    }
}
