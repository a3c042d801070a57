//! Authentication, scopes and rate limits, for every request, in one
//! middleware, so no handler can forget them.
//!
//! Which scope a route needs is decided here, from its route pattern, and
//! anything not listed needs `admin`: a new route is closed until someone
//! opens it on purpose. Public: `/health` and the API docs. Keys come as
//! `Authorization: Bearer fg_...` or `X-API-Key: fg_...`. The per-address
//! limit applies before the key is even looked at, so guessing keys is
//! throttled too; the per-key limit after. The caller (key id and address)
//! is put in the request for the handlers to pass to the audited use cases.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use face_service::{Caller, Principal, Scope};

use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::ApiError;
use crate::ratelimit::RateLimiter;
use crate::routes::AppState;

/// The guard's settings and state, shared by all workers.
pub struct Guard {
    /// Whether API keys are required.
    pub enabled: bool,
    /// Per-key limits.
    pub per_key: RateLimiter<i64>,
    /// Per-client limits (IPv6 by /64).
    pub per_ip: RateLimiter<IpAddr>,
    /// Peers whose `X-Forwarded-For` names the client.
    pub proxies: Vec<IpNet>,
}

/// The scope a route needs; `None` for public routes.
pub fn required_scope(method: &Method, pattern: Option<&str>) -> Option<Scope> {
    let Some(pattern) = pattern else {
        // No pattern matched the raw path. The router matches the
        // percent-decoded path, so `/admin/%6beys` reaches a route this
        // check did not see: treat anything unmatched as admin-only (an
        // unknown path then needs a key before it gets its 404).
        return Some(Scope::Admin);
    };
    match (method, pattern) {
        (_, "/health" | "/openapi.json" | "/docs" | "/docs/" | "/redoc" | "/redoc/") => None,
        (_, p) if p.starts_with("/docs/assets/") => None,
        (&Method::POST, "/register/" | "/register" | "/users/{id}/faces") => Some(Scope::Enrol),
        (&Method::POST, "/recognize/" | "/recognize" | "/users/{id}/verify") => {
            Some(Scope::Recognize)
        }
        _ => Some(Scope::Admin),
    }
}

/// The presented key: `Authorization: Bearer ...`, else `X-API-Key`.
fn token(req: &ServiceRequest) -> Option<String> {
    let headers = req.headers();
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let mut parts = v.splitn(2, ' ');
        if let (Some(scheme), Some(rest)) = (parts.next(), parts.next()) {
            if scheme.eq_ignore_ascii_case("bearer") {
                return Some(rest.trim().to_string());
            }
        }
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
}

/// The middleware (`actix_web::middleware::from_fn`). A refusal is turned
/// into its response here, not passed up as an error, so the outer
/// middleware (security headers, CORS) still sees and decorates it.
pub async fn guard<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    match admit(&req).await {
        Ok(()) => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Err(e) => Ok(req.error_response(e).map_into_right_body()),
    }
}

/// Decides whether `req` may proceed; on success the caller is in its
/// extensions.
async fn admit(req: &ServiceRequest) -> Result<(), ApiError> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(
            face_service::ServiceError::Internal("application state missing".into()).into(),
        );
    };
    let Some(scope) = required_scope(req.method(), req.match_pattern().as_deref()) else {
        return Ok(());
    };
    let guard = &state.guard;
    let client = crate::client::of(req, &guard.proxies);
    if let Some(c) = client {
        if let Err(wait) = guard.per_ip.check(&c.limit_key()) {
            return Err(ApiError::rate_limited("client address", wait));
        }
    }
    let principal = if guard.enabled {
        let token = token(req);
        match state.service.keys().authenticate(token.as_deref()).await {
            Ok(p) => p,
            Err(e) => {
                if let (face_service::ServiceError::Unauthenticated(_), Some(c)) = (&e, client) {
                    state.service.keys().refused(&c.limit_key_text());
                }
                return Err(e.into());
            }
        }
    } else {
        Principal::unauthenticated()
    };
    if let Some(id) = principal.key_id {
        if let Err(wait) = guard.per_key.check(&id) {
            return Err(ApiError::rate_limited("API key", wait));
        }
    }
    let client_key = client
        .map(|c| c.limit_key_text())
        .filter(|k| Some(k.as_str()) != client.map(|c| c.to_string()).as_deref());
    let client = client.map(|c| c.to_string());
    principal.require(scope)?;
    req.extensions_mut().insert(Caller {
        key_id: principal.key_id,
        client,
        client_key,
        scopes: principal.scopes,
        probe: req
            .request()
            .conn_data::<crate::client::PeerSocket>()
            .cloned()
            .map(|socket| face_service::ClientProbe::new(move || socket.is_open())),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_closed_unless_opened_on_purpose() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(required_scope(&get, Some("/health")), None);
        assert_eq!(required_scope(&get, Some("/docs/assets/{file}")), None);
        assert_eq!(
            required_scope(&post, Some("/register/")),
            Some(Scope::Enrol)
        );
        assert_eq!(
            required_scope(&post, Some("/users/{id}/verify")),
            Some(Scope::Recognize)
        );
        assert_eq!(required_scope(&get, Some("/users/")), Some(Scope::Admin));
        assert_eq!(
            required_scope(&Method::DELETE, Some("/users/{id}")),
            Some(Scope::Admin)
        );
        assert_eq!(
            required_scope(&get, Some("/some/new/route")),
            Some(Scope::Admin)
        );
        // Listing and deleting a user's templates is administration.
        assert_eq!(
            required_scope(&get, Some("/users/{id}/faces")),
            Some(Scope::Admin)
        );
        assert_eq!(
            required_scope(&Method::DELETE, Some("/users/{id}/faces/{template_id}")),
            Some(Scope::Admin)
        );
        // A GET on an enrol path is not an enrolment.
        assert_eq!(required_scope(&get, Some("/register/")), Some(Scope::Admin));
    }
}
