//! `POST /recognize/?threshold=`: who is in this photo (1:N)?
//!
//! The reference fields describe the largest face; `faces` lists every
//! face with its own match.

use actix_web::{web, HttpRequest, HttpResponse};
use face_service::FaceMatch;
use serde_json::{json, Value};

use super::{check_length, AppState, ThresholdQuery};
use crate::error::ApiError;
use crate::input;

fn face_json(f: &FaceMatch) -> Value {
    json!({
        "bbox": f.face.bbox,
        "detection_score": f.face.detection_score,
        "match": f.matched,
        "user_id": f.user_id,
        "name": f.name,
        "distance": f.distance,
        "confidence": f.confidence,
        "confidence_band": f.band,
    })
}

/// Identifies the faces in a photo.
pub async fn recognize(
    state: web::Data<AppState>,
    query: web::Query<ThresholdQuery>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    check_length(&req, state.body_limit)?;
    let threshold = query.parse(&state.service)?;
    let mut body = input::read(&req, payload, state.body_limit).await?;
    if body.images.len() != 1 {
        return Err(ApiError::invalid(
            "image",
            "exactly one image is recognised per request",
        ));
    }
    let image = body.images.remove(0);
    let result = state.service.identify(image, threshold).await?;
    let Some(main) = result.faces.first() else {
        return Err(face_service::ServiceError::NoFace.into());
    };
    let message = match (&main.name, main.distance) {
        (Some(name), Some(d)) if main.matched => format!("Recognized {name} (distance {d:.3})"),
        (_, None) => "No match found: nobody is enrolled".to_string(),
        _ => "No match found".to_string(),
    };
    Ok(HttpResponse::Ok().json(json!({
        "match": main.matched,
        "name": main.name,
        "distance": main.distance,
        "user_id": main.user_id,
        "confidence": main.confidence,
        "confidence_band": main.band,
        "message": message,
        "threshold": result.threshold,
        "gallery_size": result.gallery_size,
        "faces": result.faces.iter().map(face_json).collect::<Vec<_>>(),
    })))
}
