//! `/users/...`: list, get, delete, add faces, verify (1:1).

use actix_web::{web, HttpRequest, HttpResponse};
use face_service::Caller;
use serde::Deserialize;

use super::{check_length, integer, positive_id, user_id, AppState, LivenessQuery, ThresholdQuery};
use crate::api::{
    Deleted, ErrorJson, FaceJson, FacesAdded, ImageBody, TemplateDeleted, TemplateJson,
    TemplateList, UserJson, Verified,
};
use crate::error::ApiError;
use crate::input;

/// `?after=&limit=` keyset pagination; neither: the whole list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Only users with a larger id (the last id of the previous page).
    #[param(minimum = 0)]
    #[serde(default, deserialize_with = "integer::optional")]
    after: Option<i64>,
    /// Page size, 1–1000 (default 100 when only `after` is given).
    #[param(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "integer::optional")]
    limit: Option<usize>,
}

impl PageQuery {
    /// `?after=` (checked: not negative) and `?limit=` (default 100; the
    /// service checks its range).
    pub fn page(&self) -> Result<(Option<i64>, usize), ApiError> {
        if self.after.is_some_and(|a| a < 0) {
            return Err(ApiError::invalid("after", "must be a user id (0 or more)"));
        }
        Ok((self.after, self.limit.unwrap_or(100)))
    }
}

/// `GET /users/` filters (with [`PageQuery`] from the same query string).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilterQuery {
    /// Only users whose name contains this (case-insensitive, matched
    /// literally); pages like the listing.
    #[param(max_length = 200)]
    name: Option<String>,
    /// Only the user with this external reference.
    #[param(max_length = 200)]
    external_ref: Option<String>,
}

/// Lists users in ascending id order, as a JSON array. Without `limit`
/// and `after`, every user (at most `server.max_list_users`; beyond it a
/// 422 asks the client to page); with either, one page and, when the page
/// is full, a `Link: <...>; rel="next"` header.
#[utoipa::path(get, path = "/users/", tag = "users", params(PageQuery, FilterQuery),
    responses(
        (status = 200, body = Vec<UserJson>, headers(("Link" = String, description = "`<next page URL>; rel=\"next\"` when paging and the page is full"))),
        (status = 422, body = ErrorJson, description = "bad paging parameters, or more users than `server.max_list_users` without paging"),
        (status = 503, body = ErrorJson)))]
pub async fn list(
    state: web::Data<AppState>,
    q: web::Query<PageQuery>,
    filter: web::Query<FilterQuery>,
) -> Result<HttpResponse, ApiError> {
    let (after, limit) = q.page()?;
    if filter.name.is_some() || filter.external_ref.is_some() {
        let filter = face_store::UserFilter {
            name_contains: filter.name.clone(),
            external_ref: filter.external_ref.clone(),
        };
        // One page; the next is `?after=<the last id>` with the same
        // filter.
        let users = state.service.find_users(filter, after, limit).await?;
        return Ok(
            HttpResponse::Ok().json(users.into_iter().map(UserJson::from).collect::<Vec<_>>())
        );
    }
    if q.after.is_none() && q.limit.is_none() {
        let users = state.service.all_users(state.max_list_users).await?;
        return Ok(
            HttpResponse::Ok().json(users.into_iter().map(UserJson::from).collect::<Vec<_>>())
        );
    }
    let users = state.service.list_users(after, limit).await?;
    let mut res = HttpResponse::Ok();
    if users.len() == limit {
        if let Some(last) = users.last() {
            res.insert_header((
                actix_web::http::header::LINK,
                format!("</users/?limit={limit}&after={}>; rel=\"next\"", last.id),
            ));
        }
    }
    Ok(res.json(users.into_iter().map(UserJson::from).collect::<Vec<_>>()))
}

/// One user.
#[utoipa::path(get, path = "/users/{id}", tag = "users", params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = UserJson), (status = 404, body = ErrorJson), (status = 422, body = ErrorJson)))]
pub async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    Ok(HttpResponse::Ok().json(UserJson::from(state.service.get_user(id).await?)))
}

/// Deletes a user and all their face templates.
#[utoipa::path(delete, path = "/users/{id}", tag = "users", params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = Deleted), (status = 404, body = ErrorJson), (status = 422, body = ErrorJson)))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    state.service.delete_user(&caller, id).await?;
    Ok(HttpResponse::Ok().json(Deleted {
        status: "deleted",
        user_id: id,
        message: format!("User {id} and their face templates were deleted"),
    }))
}

/// Adds photos of an enrolled person; identification uses the best of a
/// user's templates. Each photo must verify as the user against their
/// closest template of the active model; only `admin` may add one that
/// does not, or the first template of a new model (re-enrolment after a
/// model switch). Both are audited as security events.
#[utoipa::path(post, path = "/users/{id}/faces", tag = "users", params(("id" = i64, Path, description = "user id"),
        ("liveness" = Option<crate::api::LivenessLevel>, Query, description = "`passive`: refuse a photo that looks like a print or a screen (400 liveness_failed; for keys without admin a failed verification, and required under security.require_liveness)")),
    request_body(content = ImageBody, description = "JSON (`image` or `images`), or multipart/form-data"),
    responses((status = 200, body = FacesAdded), (status = 400, body = ErrorJson, description = "no face, several faces, low quality, bad image, liveness_failed"),
        (status = 501, body = ErrorJson, description = "liveness asked for or required, and this server has no passive check (see /stats/)"),
        (status = 403, body = ErrorJson, description = "the face does not verify as the user, the user has no template of the active model, or allow_duplicate, without the admin scope"),
        (status = 404, body = ErrorJson),
        (status = 409, body = ErrorJson, description = "the face matches another user, or the user would exceed thresholds.max_templates_per_user"),
        (status = 422, body = ErrorJson), (status = 503, body = ErrorJson)))]
pub async fn add_faces(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    path: web::Path<String>,
    query: web::Query<LivenessQuery>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    check_length(&req, state.bodies.limit)?;
    let liveness = query.level()?;
    let body = input::read(&req, payload, &state.bodies).await?;
    let added = state
        .service
        .add_faces(&caller, id, body.images, body.allow_duplicate, liveness)
        .await?;
    Ok(HttpResponse::Ok().json(FacesAdded {
        status: "added",
        user_id: id,
        added: added.faces.len(),
        template_count: added.user.template_count,
        faces: added.faces.iter().map(FaceJson::from).collect(),
    }))
}

/// A user's face templates (never the vectors).
#[utoipa::path(get, path = "/users/{id}/faces", tag = "users", params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = TemplateList), (status = 404, body = ErrorJson), (status = 422, body = ErrorJson)))]
pub async fn list_faces(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    let active = &state.service.model().id;
    let faces = state.service.faces_of(id).await?;
    Ok(HttpResponse::Ok().json(TemplateList {
        user_id: id,
        faces: faces
            .into_iter()
            .map(|t| TemplateJson {
                id: t.id,
                active_model: t.model_id == *active,
                model: t.model_id,
                quality: t.quality,
                created_at: t
                    .created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            })
            .collect(),
    }))
}

/// Deletes one of a user's face templates.
#[utoipa::path(delete, path = "/users/{id}/faces/{template_id}", tag = "users",
    params(("id" = i64, Path, description = "user id"), ("template_id" = i64, Path, description = "template id")),
    responses((status = 200, body = TemplateDeleted), (status = 404, body = ErrorJson), (status = 422, body = ErrorJson)))]
pub async fn delete_face(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (raw_user, raw_template) = path.into_inner();
    let id = user_id(&raw_user)?;
    let template_id = positive_id("template_id", &raw_template)?;
    state.service.delete_face(&caller, id, template_id).await?;
    Ok(HttpResponse::Ok().json(TemplateDeleted {
        status: "deleted",
        user_id: id,
        template_id,
    }))
}

/// Is this photo that user? The authentication call (1:1).
#[utoipa::path(post, path = "/users/{id}/verify", tag = "recognition",
    params(("id" = i64, Path, description = "user id"),
        ("threshold" = Option<f64>, Query, description = "match when the distance is under this; default: FMR 1e-4 per decision for the user's number of templates. A stricter (smaller) value is allowed to every key, a looser one only to admin keys (403)"),
        ("liveness" = Option<crate::api::LivenessLevel>, Query, description = "`passive`: check the face for a presentation attack (print, screen) first; an attack is `match: false`, `reason: liveness_failed`, and counts towards the lockout. `off` (default) unless security.require_liveness is set")),
    request_body(content = ImageBody, description = "JSON with a base64 photo, or multipart/form-data"),
    responses((status = 200, body = Verified), (status = 400, body = ErrorJson),
        (status = 403, body = ErrorJson, description = "a threshold looser than the default without the admin scope; a liveness token refused (liveness_token_refused: used, expired, another key's or user's); no token while security.require_liveness is challenge (liveness_token_required)"),
        (status = 404, body = ErrorJson),
        (status = 409, body = ErrorJson, description = "the user has no template for the active model"),
        (status = 422, body = ErrorJson),
        (status = 501, body = ErrorJson, description = "liveness asked for or required, and this server has no passive check (see /stats/)"),
        (status = 503, body = ErrorJson)))]
pub async fn verify(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    path: web::Path<String>,
    query: web::Query<ThresholdQuery>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    check_length(&req, state.bodies.limit)?;
    let threshold = query.parse(&state.service)?;
    let liveness = query.liveness()?;
    let body = input::read(&req, payload, &state.bodies).await?;
    let image = input::single(body.images)?;
    let v = match &body.liveness_token {
        Some(token) => {
            state
                .service
                .verify_with_token(&caller, id, image, threshold, token)
                .await?
        }
        None => {
            state
                .service
                .verify(&caller, id, image, threshold, liveness)
                .await?
        }
    };
    Ok(HttpResponse::Ok().json(Verified::from(v)))
}
