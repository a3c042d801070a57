//! `GET /stats/`: counts and the active model, metric and thresholds.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;
use crate::error::ApiError;

/// Counts and configuration.
pub async fn stats(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let s = state.service.stats().await?;
    Ok(HttpResponse::Ok().json(json!({
        "total_users": s.total_users,
        "total_templates": s.templates,
        "database": s.database,
        "embedding_model": s.model.id,
        "embedding_model_name": s.model.name,
        "embedding_dimension": s.model.dimension,
        "similarity_metric": s.model.metric.as_str(),
        "detector": s.detector,
        "thresholds": s.thresholds,
    })))
}
