//! `POST /liveness/sessions`, `GET /liveness/sessions/{id}`,
//! `POST /liveness/sessions/{id}/frames`: the head-turn challenge over
//! HTTP (a session, its frames in one multipart request, the single-use
//! token a pass gives). Any key may call them; the use case checks the
//! purpose's scope (verify: `recognize`, enrol: `enrol`).

use actix_web::{web, HttpRequest, HttpResponse};
use face_service::sessions::{SessionFrame, SessionPurpose};
use face_service::Caller;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{check_length, AppState};
use crate::api::ErrorJson;
use crate::error::ApiError;
use crate::input;

/// `POST /liveness/sessions` body: `{"purpose": "verify", "user_id": 42}`
/// (scope `recognize`) or `{"purpose": "enrol"}` (scope `enrol`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "purpose", rename_all = "snake_case")]
pub enum SessionCreateRequest {
    /// Prove that the person in front of the camera is this user, named
    /// by FaceGate's id or by their external reference (exactly one).
    Verify {
        /// The claimed user (JSON Schema's integer: `42.0` is 42).
        #[schema(value_type = Option<i64>, minimum = 1)]
        user_id: Option<serde_json::Number>,
        /// Or the claimed user's external reference (a badge number, an
        /// employee id).
        #[schema(max_length = 200)]
        external_ref: Option<String>,
    },
    /// Prove a live person before enrolling them.
    Enrol,
}

/// `POST /liveness/sessions/{id}/frames` body (multipart/form-data).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct SessionFrames {
    /// The frames, JPEG, in capture order (one `frame` part each).
    #[schema(value_type = Vec<String>, format = Binary, min_items = 1)]
    pub frame: Vec<Vec<u8>>,
    /// The frames' capture times, milliseconds, comma separated, one per
    /// frame, increasing.
    #[schema(pattern = "^[0-9]+(,[0-9]+)*$")]
    pub timestamps: String,
}

/// Starts a challenge session: the turns to make, the expiry, the limits.
#[utoipa::path(post, path = "/liveness/sessions", tag = "recognition", request_body = SessionCreateRequest,
    responses((status = 201, body = Object, description = "the session: id, purpose, user_id, challenge.steps (turn_left / turn_right, each followed by a return to frontal), expires_at, max_frames, phase_timeout_secs"),
        (status = 401, body = ErrorJson), (status = 403, body = ErrorJson, description = "the key lacks the purpose's scope"),
        (status = 404, body = ErrorJson, description = "no such user"), (status = 422, body = ErrorJson)))]
pub async fn create(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    body: web::Json<SessionCreateRequest>,
) -> Result<HttpResponse, ApiError> {
    let purpose = match *body {
        SessionCreateRequest::Verify {
            user_id: Some(ref user_id),
            external_ref: None,
        } => {
            let whole = user_id.as_i64().or_else(|| {
                user_id
                    .as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            });
            let id = whole
                .map(|n| n.to_string())
                .unwrap_or_else(|| user_id.to_string());
            SessionPurpose::Verify {
                user_id: super::user_id(&id)?,
            }
        }
        SessionCreateRequest::Verify {
            user_id: None,
            external_ref: Some(ref reference),
        } => {
            // The key must be one that may verify before it learns whom a
            // reference names.
            caller.require(
                face_service::Scope::Recognize,
                "start a liveness session to verify",
            )?;
            SessionPurpose::Verify {
                user_id: state.service.user_by_reference(reference).await?.id,
            }
        }
        SessionCreateRequest::Verify { .. } => {
            return Err(ApiError::invalid(
                "user_id",
                "a verify session names its user by user_id or by external_ref, exactly one",
            ))
        }
        SessionCreateRequest::Enrol => SessionPurpose::Enrol,
    };
    let session = state
        .service
        .create_challenge_session(&caller, purpose)
        .await?;
    Ok(HttpResponse::Created().json(session))
}

/// A session, to the key that created it.
#[utoipa::path(get, path = "/liveness/sessions/{id}", tag = "recognition", params(("id" = String, Path, description = "session id")),
    responses((status = 200, body = Object), (status = 401, body = ErrorJson), (status = 404, body = ErrorJson)))]
pub async fn get(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let session = state.service.challenge_session(&caller, &path).await?;
    Ok(HttpResponse::Ok().json(session))
}

/// Answers a session with its frames, once: `frame` files in capture
/// order and a `timestamps` field (milliseconds, comma separated). The
/// answer is pass or fail with a reason code (`no_face`,
/// `multiple_faces`, `track_lost`, `repeated_frame`, `wrong_direction`,
/// `step_timeout`, `pad`, `identity`, `not_claimed_user`, `expired`,
/// `frame_limit`), and a pass's single-use token for
/// `POST /users/{id}/verify` (`liveness_token` in the body).
#[utoipa::path(post, path = "/liveness/sessions/{id}/frames", tag = "recognition", params(("id" = String, Path, description = "session id")),
    request_body(content = SessionFrames, content_type = "multipart/form-data", description = "`frame` files in order, and `timestamps`"),
    responses((status = 200, body = Object, description = "passed, reason, token (shown once), frames"),
        (status = 400, body = ErrorJson), (status = 401, body = ErrorJson), (status = 404, body = ErrorJson),
        (status = 409, body = ErrorJson, description = "the session was already answered"),
        (status = 413, body = ErrorJson), (status = 415, body = ErrorJson), (status = 422, body = ErrorJson),
        (status = 423, body = ErrorJson), (status = 429, body = ErrorJson), (status = 503, body = ErrorJson)))]
pub async fn frames(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    check_length(&req, state.bodies.limit)?;
    // An unknown session is a 404 before its body is read.
    state.service.challenge_session(&caller, &path).await?;
    let (frames, _reservation) = input::read_frames(&req, payload, &state.bodies).await?;
    let frames = frames
        .into_iter()
        .map(|(bytes, client_ms)| SessionFrame { bytes, client_ms })
        .collect();
    let result = state
        .service
        .answer_challenge_session(&caller, &path, frames)
        .await?;
    Ok(HttpResponse::Ok().json(result))
}
