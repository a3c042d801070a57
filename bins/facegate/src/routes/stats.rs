//! `GET /stats/`: counts and the active model, metric and thresholds.

use actix_web::{web, HttpResponse};

use super::AppState;
use crate::api::{ErrorJson, Stats};
use crate::error::ApiError;

/// Counts, the active model and metric, and the thresholds in force.
#[utoipa::path(get, path = "/stats/", tag = "system",
    responses((status = 200, body = Stats), (status = 503, body = ErrorJson)))]
pub async fn stats(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let s = state.service.stats().await?;
    Ok(HttpResponse::Ok().json(Stats {
        total_users: s.total_users,
        total_templates: s.templates,
        database: s.database,
        embedding_model: s.model.id,
        embedding_model_name: s.model.name,
        embedding_dimension: s.model.dimension,
        similarity_metric: s.model.metric.as_str(),
        detector: s.detector,
        execution_provider: s.execution,
        calibrated: s.thresholds.calibrated,
        thresholds: s.thresholds,
        max_templates_per_user: s.max_templates_per_user,
        abandoned_jobs: s.abandoned_jobs,
        templates_of_other_models: s.other_models.into_iter().collect(),
        liveness: s.liveness,
    }))
}
