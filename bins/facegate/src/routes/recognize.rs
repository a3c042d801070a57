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
    params(("threshold" = Option<f64>, Query, description = "match when the distance is under this (model's metric); default from calibration")),
    request_body(content = ImageBody, description = "JSON with a base64 photo, or multipart/form-data with an `image` file"),
    responses(
        (status = 200, body = Recognized, description = "match or no match"),
        (status = 400, body = ErrorJson, description = "no face, bad image"),
        (status = 413, body = ErrorJson), (status = 415, body = ErrorJson),
        (status = 422, body = ErrorJson, description = "invalid threshold (the message gives the valid range)"),
        (status = 503, body = ErrorJson)))]
pub async fn recognize(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    query: web::Query<ThresholdQuery>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    check_length(&req, state.body_limit)?;
    let threshold = query.parse(&state.service)?;
    let body = input::read(&req, payload, state.body_limit).await?;
    let image = input::single(body.images)?;
    let result = state.service.identify(&caller, image, threshold).await?;
    let Some(main) = result.faces.first() else {
        return Err(face_service::ServiceError::NoFace.into());
    };
    let message = match (&main.name, main.distance) {
        (Some(name), Some(d)) if main.matched => format!("Recognized {name} (distance {d:.3})"),
        (_, None) => "No match found: nobody is enrolled".to_string(),
        _ => "No match found".to_string(),
    };
    Ok(HttpResponse::Ok().json(Recognized {
        matched: main.matched,
        name: main.name.clone(),
        distance: main.distance,
        user_id: main.user_id,
        confidence: main.confidence,
        confidence_band: main.band,
        message,
        threshold: result.threshold,
        gallery_size: result.gallery_size,
        faces: result.faces.iter().map(FaceMatchJson::from).collect(),
    }))
}
