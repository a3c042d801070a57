//! `/admin/...`: operator views. `GET /admin/reenrolment` lists the users
//! who have no template of the active embedding model, the people to ask
//! for a new photo after switching models (see README, "Switching the
//! embedding model").

use actix_web::{web, HttpResponse};

use super::users::ListQuery;
use super::AppState;
use crate::api::{ErrorJson, Reenrolment, UserJson};
use crate::error::ApiError;

/// Users without a template of the active model, in ascending id order.
#[utoipa::path(get, path = "/admin/reenrolment", tag = "users", params(ListQuery),
    responses((status = 200, body = Reenrolment), (status = 422, body = ErrorJson), (status = 503, body = ErrorJson)))]
pub async fn reenrolment(
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = q.limit();
    let users = state
        .service
        .users_without_active_model(q.after(), limit)
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
