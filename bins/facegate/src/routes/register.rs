//! `POST /register/`: enrol a person from one or more photos.

use actix_web::{web, HttpRequest, HttpResponse};
use face_service::{EnrolRequest, UserName};
use serde_json::json;

use super::{check_length, AppState};
use crate::error::ApiError;
use crate::input;

/// Enrols a user: `{name, image | images, external_ref?, metadata?, allow_duplicate?}`.
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    check_length(&req, state.body_limit)?;
    let body = input::read(&req, payload, state.body_limit).await?;
    let name = UserName::parse(body.name.as_deref().unwrap_or(""))?;
    let enrolled = state
        .service
        .enrol(EnrolRequest {
            name,
            images: body.images,
            external_ref: body.external_ref,
            metadata: body.metadata,
            allow_duplicate: body.allow_duplicate,
        })
        .await?;
    let user = &enrolled.user;
    Ok(HttpResponse::Ok().json(json!({
        "status": "registered",
        "name": user.name,
        "user_id": user.id,
        "message": format!("User {} registered with {} face template(s)", user.name, enrolled.faces.len()),
        "template_count": user.template_count,
        "faces": enrolled.faces,
    })))
}
