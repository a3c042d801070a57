//! `POST /register/`: enrol a person from one or more photos.

use actix_web::{web, HttpRequest, HttpResponse};
use face_service::{Caller, EnrolRequest, UserName};

use super::{check_length, AppState, LivenessQuery};
use crate::api::{ErrorJson, FaceJson, RegisterRequest, Registered};
use crate::error::ApiError;
use crate::input;

/// Enrols a user. Each photo must hold exactly one face of enrolment
/// quality; a face that already matches another user is refused (409)
/// unless `allow_duplicate` is set.
#[utoipa::path(post, path = "/register/", tag = "users",
    params(("liveness" = Option<crate::api::LivenessLevel>, Query, description = "`passive`: refuse a photo that looks like a print or a screen (400 liveness_failed)")),
    request_body(content = RegisterRequest, description = "JSON with base64 photos, or multipart/form-data with the same field names"),
    responses(
        (status = 200, body = Registered),
        (status = 400, body = ErrorJson, description = "no face, several faces, low quality, bad image, liveness_failed; token_face_mismatch: a photo is not the face that answered the liveness_token's session (the token is spent)"),
        (status = 403, body = ErrorJson, description = "the key lacks the enrol scope; allow_duplicate without the admin scope; liveness_token_refused: the liveness_token is not a passed enrol session's of this key (used, expired, a verify session's, unknown)"),
        (status = 409, body = ErrorJson, description = "the face matches an enrolled user"),
        (status = 413, body = ErrorJson), (status = 415, body = ErrorJson), (status = 422, body = ErrorJson),
        (status = 501, body = ErrorJson, description = "liveness asked for, and this server has no passive check (see /stats/)"),
        (status = 503, body = ErrorJson, description = "busy or store unavailable; see Retry-After")))]
pub async fn register(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    query: web::Query<LivenessQuery>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    check_length(&req, state.bodies.limit)?;
    let liveness = query.level()?;
    let body = input::read(&req, payload, &state.bodies).await?;
    let name = UserName::parse(body.name.as_deref().unwrap_or(""))?;
    let enrolled = state
        .service
        .enrol(
            &caller,
            EnrolRequest {
                name,
                images: body.images,
                external_ref: body.external_ref,
                metadata: body.metadata,
                allow_duplicate: body.allow_duplicate,
                liveness,
                liveness_token: body.liveness_token,
            },
        )
        .await?;
    let user = enrolled.user;
    Ok(HttpResponse::Ok().json(Registered {
        status: "registered",
        message: format!(
            "User {} registered with {} face template(s)",
            user.name,
            enrolled.faces.len()
        ),
        name: user.name,
        user_id: user.id,
        template_count: user.template_count,
        faces: enrolled.faces.iter().map(FaceJson::from).collect(),
    }))
}
