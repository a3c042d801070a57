//! `POST /recognize/?threshold=`: who is in this photo (1:N)?
//!
//! The reference fields describe the largest face; `faces` lists every
//! face with its own match.

use actix_web::{web, HttpRequest, HttpResponse};

use face_service::Caller;

use super::{check_length, AppState, ThresholdQuery};
use crate::api::{ErrorJson, FaceMatchJson, ImageBody, Recognized};
use crate::error::ApiError;
use crate::input;

/// Identifies every face in a photo against all enrolled users.
#[utoipa::path(post, path = "/recognize/", tag = "recognition",
    params(("threshold" = Option<f64>, Query, description = "match when the distance is under this (model's metric); default: calibrated for the gallery's size. A stricter (smaller) value is allowed to every key, a looser one only to admin keys (403)"),
        ("liveness" = Option<crate::api::LivenessLevel>, Query, description = "`passive`: check each face for a presentation attack (print, screen) first; a face that fails is not searched (`liveness: attack`, `reason: liveness_failed`). `off` (default) unless security.require_liveness is set")),
    request_body(content = ImageBody, description = "JSON with a base64 photo, or multipart/form-data with an `image` file"),
    responses(
        (status = 200, body = Recognized, description = "match or no match"),
        (status = 400, body = ErrorJson, description = "no face, bad image"),
        (status = 403, body = ErrorJson, description = "a threshold looser than the default without the admin scope"),
        (status = 429, body = ErrorJson, description = "the key's or client's budget of failed identifications is spent; see Retry-After"),
        (status = 413, body = ErrorJson), (status = 415, body = ErrorJson),
        (status = 422, body = ErrorJson, description = "invalid threshold (the message gives the valid range) or liveness level"),
        (status = 501, body = ErrorJson, description = "liveness asked for or required, and this server has no passive check (see /stats/)"),
        (status = 503, body = ErrorJson)))]
pub async fn recognize(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    query: web::Query<ThresholdQuery>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    check_length(&req, state.bodies.limit)?;
    let threshold = query.parse(&state.service)?;
    let liveness = query.liveness()?;
    let body = input::read(&req, payload, &state.bodies).await?;
    let image = input::single(body.images)?;
    let result = state
        .service
        .identify(&caller, image, threshold, liveness)
        .await?;
    let Some(main) = result.faces.first() else {
        return Err(face_service::ServiceError::NoFace.into());
    };
    let message = match (&main.name, main.distance) {
        _ if main.liveness == Some(face_service::LivenessVerdict::Attack) => {
            "No match: the liveness check failed".to_string()
        }
        (Some(name), Some(d)) if main.matched => format!("Recognized {name} (distance {d:.3})"),
        _ if result.comparisons == 0 => "No match found: nobody is enrolled".to_string(),
        _ => "No match found".to_string(),
    };
    let json = FaceMatchJson::from(main);
    Ok(HttpResponse::Ok().json(Recognized {
        matched: json.matched,
        name: json.name.clone(),
        distance: json.distance,
        nearest_distance: json.nearest_distance,
        user_id: json.user_id,
        confidence: json.confidence,
        confidence_band: json.confidence_band,
        fmr: json.fmr,
        expected_false_matches: json.expected_false_matches,
        message,
        threshold: result.threshold,
        default_threshold: result.default.threshold,
        threshold_extrapolated: result.default.extrapolated,
        comparisons: result.comparisons,
        faces: result.faces.iter().map(FaceMatchJson::from).collect(),
        faces_left_out: result.faces_left_out,
        liveness: json.liveness,
        reason: json.reason,
    }))
}
