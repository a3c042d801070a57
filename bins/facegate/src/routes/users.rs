//! `/users/...`: list, get, delete, add faces, verify (1:1).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{check_length, user_id, AppState, ThresholdQuery};
use crate::error::ApiError;
use crate::input;

/// `?after=&limit=` keyset pagination.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    after: Option<i64>,
    limit: Option<usize>,
}

/// `GET /users/`.
pub async fn list(
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(100);
    let users = state.service.list_users(q.after, limit).await?;
    let next_after = if users.len() == limit {
        users.last().map(|u| u.id)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(json!({
        "users": users,
        "count": users.len(),
        "next_after": next_after,
    })))
}

/// `GET /users/{id}`.
pub async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    Ok(HttpResponse::Ok().json(state.service.get_user(id).await?))
}

/// `DELETE /users/{id}`.
pub async fn delete(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    state.service.delete_user(id).await?;
    Ok(HttpResponse::Ok().json(json!({
        "status": "deleted",
        "user_id": id,
        "message": format!("User {id} and their face templates were deleted"),
    })))
}

/// `POST /users/{id}/faces`: more photos of an enrolled person.
pub async fn add_faces(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    check_length(&req, state.body_limit)?;
    let body = input::read(&req, payload, state.body_limit).await?;
    let added = state
        .service
        .add_faces(id, body.images, body.allow_duplicate)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "status": "added",
        "user_id": id,
        "added": added.faces.len(),
        "template_count": added.user.template_count,
        "faces": added.faces,
    })))
}

/// `POST /users/{id}/verify?threshold=`: is this photo that user? (1:1)
pub async fn verify(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ThresholdQuery>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    check_length(&req, state.body_limit)?;
    let threshold = query.parse(&state.service)?;
    let mut body = input::read(&req, payload, state.body_limit).await?;
    if body.images.len() != 1 {
        return Err(ApiError::invalid(
            "image",
            "exactly one image is verified per request",
        ));
    }
    let v = state
        .service
        .verify(id, body.images.remove(0), threshold)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "user_id": v.user_id,
        "match": v.matched,
        "distance": v.distance,
        "confidence": v.confidence,
        "confidence_band": v.band,
        "threshold": v.threshold,
        "faces_in_image": v.faces_in_image,
        "bbox": v.face.bbox,
        "message": if v.matched { "Verified" } else { "Not verified: the face does not match" },
    })))
}
