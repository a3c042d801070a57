//! `GET /auth/whoami`: the calling key's name and scopes, so a client (or
//! the web UI) can tell what it may do before it tries.

use actix_web::{web, HttpResponse};
use face_service::Caller;

use super::AppState;
use crate::api::WhoAmI;

/// The key that made this request.
#[utoipa::path(get, path = "/auth/whoami", tag = "system",
    responses((status = 200, body = WhoAmI)))]
pub async fn whoami(state: web::Data<AppState>, caller: web::ReqData<Caller>) -> HttpResponse {
    HttpResponse::Ok().json(WhoAmI {
        key_id: caller.key_id,
        name: caller.key_name.clone(),
        scopes: caller
            .scopes
            .iter()
            .map(|s| s.as_str().to_string())
            .collect(),
        authentication: state.guard.enabled,
    })
}
