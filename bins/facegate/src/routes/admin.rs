//! `/admin/...`: the operator's routes, all needing the `admin` scope:
//! API keys, verification lockouts, the audit log, and the re-enrolment
//! report (users with no template of the active embedding model, the people
//! to ask for a new photo after switching models; see README, "Switching
//! the embedding model").

use actix_web::{web, HttpResponse};

use face_service::{Caller, Scope};
use face_store::AuditQuery;

use super::users::PageQuery;
use super::{integer, positive_id, user_id, AppState};
use crate::api::{
    AuditJson, AuditPage, ErrorJson, KeyCreated, KeyJson, KeyList, LockoutJson, Reenrolment,
    UserJson,
};
use crate::error::ApiError;

/// Users without a template of the active model, in ascending id order.
#[utoipa::path(get, path = "/admin/reenrolment", tag = "users", params(PageQuery),
    responses((status = 200, body = Reenrolment), (status = 422, body = ErrorJson), (status = 503, body = ErrorJson)))]
pub async fn reenrolment(
    state: web::Data<AppState>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (after, limit) = q.page()?;
    let users = state
        .service
        .users_without_active_model(after, limit)
        .await?;
    let next_after = if users.len() == limit {
        users.last().map(|u| u.id)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(Reenrolment {
        model: state.service.model().id.clone(),
        count: users.len(),
        users: users.into_iter().map(UserJson::from).collect(),
        next_after,
    }))
}

/// `POST /admin/keys` body.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct KeyCreateRequest {
    /// What the key is for, e.g. "front door kiosk" (1–200 characters, not
    /// only spaces, no control characters).
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: String,
    /// Any of `admin`, `enrol`, `recognize`.
    #[schema(value_type = Vec<crate::api::ScopeName>, min_items = 1)]
    pub scopes: Vec<String>,
}

/// Creates an API key. The `token` in the answer is shown this once.
#[utoipa::path(post, path = "/admin/keys", tag = "admin", request_body = KeyCreateRequest,
    responses((status = 201, body = KeyCreated), (status = 401, body = ErrorJson), (status = 403, body = ErrorJson),
        (status = 422, body = ErrorJson)))]
pub async fn create_key(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    body: web::Json<KeyCreateRequest>,
) -> Result<HttpResponse, ApiError> {
    let scopes = body
        .scopes
        .iter()
        .map(|s| Scope::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let issued = state
        .service
        .keys()
        .create(&caller, &body.name, &scopes)
        .await?;
    Ok(HttpResponse::Created().json(KeyCreated {
        key: KeyJson::from(issued.key),
        token: issued.token,
        message: "store this token now: it is not shown again and cannot be recovered",
    }))
}

/// Lists API keys (never their secrets: those are not stored).
#[utoipa::path(get, path = "/admin/keys", tag = "admin",
    responses((status = 200, body = KeyList), (status = 401, body = ErrorJson), (status = 403, body = ErrorJson)))]
pub async fn list_keys(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let keys = state.service.keys().list().await?;
    Ok(HttpResponse::Ok().json(KeyList {
        keys: keys.into_iter().map(KeyJson::from).collect(),
    }))
}

/// Revokes an API key, at once and on every instance.
#[utoipa::path(delete, path = "/admin/keys/{id}", tag = "admin", params(("id" = i64, Path, description = "key id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorJson),
        (status = 409, body = ErrorJson, description = "the key making the request cannot revoke itself"),
        (status = 422, body = ErrorJson)))]
pub async fn revoke_key(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = positive_id("key_id", &path)?;
    state.service.keys().revoke(&caller, id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "revoked", "key_id": id })))
}

/// A user's verification lockout.
#[utoipa::path(get, path = "/admin/users/{id}/lockout", tag = "admin", params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = LockoutJson), (status = 404, body = ErrorJson)))]
pub async fn lockout(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    let l = state.service.lockouts().of(id).await?;
    Ok(HttpResponse::Ok().json(LockoutJson::new(id, l)))
}

/// `GET /admin/lockouts?limit=`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LockoutsQuery {
    /// At most this many users (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "integer::optional")]
    limit: Option<usize>,
}

/// The users with failed verifications counted or verification disabled,
/// in id order: each with their lockout (a user deleted meanwhile is left
/// out).
#[utoipa::path(get, path = "/admin/lockouts", tag = "admin", params(LockoutsQuery),
    responses((status = 200, body = Vec<LockoutJson>), (status = 422, body = ErrorJson)))]
pub async fn lockouts(
    state: web::Data<AppState>,
    q: web::Query<LockoutsQuery>,
) -> Result<HttpResponse, ApiError> {
    let listed = state
        .service
        .lockouts()
        .failing(q.limit.unwrap_or(100))
        .await?;
    let mut out = Vec::with_capacity(listed.len());
    for (id, l) in listed {
        match state.service.get_user(id).await {
            Ok(user) => out.push(LockoutJson::new(id, l).named(user.name)),
            Err(face_service::ServiceError::UserNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(HttpResponse::Ok().json(out))
}

/// Clears a user's failed verifications and re-enables a disabled user.
#[utoipa::path(post, path = "/admin/users/{id}/lockout/reset", tag = "admin", params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = LockoutJson), (status = 404, body = ErrorJson)))]
pub async fn reset_lockout(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    state.service.lockouts().reset(&caller, id).await?;
    let l = state.service.lockouts().of(id).await?;
    Ok(HttpResponse::Ok().json(LockoutJson::new(id, l)))
}

/// `GET /admin/audit` filters.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only events about this user.
    #[param(minimum = 1)]
    #[serde(default, deserialize_with = "integer::optional")]
    user_id: Option<i64>,
    /// Only events at or after this time (RFC 3339).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Only events before this time (RFC 3339).
    #[param(format = DateTime)]
    until: Option<String>,
    /// Only events older than this id (the previous page's `next_before`).
    #[param(minimum = 1)]
    #[serde(default, deserialize_with = "integer::optional")]
    before: Option<i64>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "integer::optional")]
    limit: Option<usize>,
}

fn time(
    field: &str,
    raw: &Option<String>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    raw.as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| {
                    ApiError::invalid(field, format!("{s:?} is not an RFC 3339 time: {e}"))
                })
        })
        .transpose()
}

/// The audit log, newest first: every enrolment, deletion, identification
/// and verification, and key and lockout changes. No images, no embeddings.
#[utoipa::path(get, path = "/admin/audit", tag = "admin", params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 401, body = ErrorJson), (status = 403, body = ErrorJson),
        (status = 422, body = ErrorJson)))]
pub async fn audit(
    state: web::Data<AppState>,
    q: web::Query<AuditParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if q.user_id.is_some_and(|id| id < 1) {
        return Err(ApiError::invalid("user_id", "must be a positive integer"));
    }
    if q.before.is_some_and(|id| id < 1) {
        return Err(ApiError::invalid("before", "must be a positive integer"));
    }
    let events = state
        .service
        .audit()
        .list(AuditQuery {
            user_id: q.user_id,
            since: time("since", &q.since)?,
            until: time("until", &q.until)?,
            before: q.before,
            limit,
        })
        .await?;
    let next_before = if events.len() == limit {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(AuditPage {
        count: events.len(),
        events: events.into_iter().map(AuditJson::from).collect(),
        next_before,
    }))
}
