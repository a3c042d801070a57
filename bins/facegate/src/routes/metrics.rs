//! `GET /metrics`: the Prometheus text format.
//!
//! On the main listener it needs `admin` (the route table says so): the
//! distance histograms are for operators. On `server.metrics_address`, the
//! second listener, the same handler answers without a key. Each scrape
//! first sets the gauges that describe the instance now (worker load,
//! users, templates per model).

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use super::AppState;

/// The content type of the Prometheus text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every series of this process, in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, content_type = "text/plain", body = String,
        description = "the Prometheus text format (version 0.0.4)")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state.service.record_gauges().await;
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, TEXT_FORMAT))
        .body(crate::metrics::render(state.metrics))
}
