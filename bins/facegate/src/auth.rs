//! Authentication, scopes and rate limits, for every request, in one
//! middleware, so no handler can forget them.
//!
//! Which access a route needs is read from the route table
//! (`routes::table`), where every route is registered with it; anything the
//! table does not list needs `admin`. Keys come as
//! `Authorization: Bearer fg_...` or `X-API-Key: fg_...`. The per-address
//! limit applies before the key is even looked at, so guessing keys is
//! throttled too; the per-key limit after. The caller (key id and address)
//! is put in the request for the handlers to pass to the audited use cases.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use face_service::limits::{Limit, RateLimits, Refusal};
use face_service::{Caller, Principal};

use crate::error::ApiError;
use crate::routes::table::{self, Access};
use crate::state::AppState;

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

/// A stream ticket: `?ticket=`, else the subprotocol
/// `facegate.ticket.<ticket>` (`Sec-WebSocket-Protocol`).
fn ticket(req: &ServiceRequest) -> Option<String> {
    let from_query = req
        .query_string()
        .split('&')
        .find_map(|pair| pair.strip_prefix("ticket="))
        .map(str::to_string);
    from_query.or_else(|| {
        req.headers()
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.split(',')
                    .find_map(|p| p.trim().strip_prefix("facegate.ticket."))
                    .map(str::to_string)
            })
    })
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

/// Spends one request of `key` under `limit`, counting a refusal in
/// `facegate_rate_limited_total`: the guard's requests and the stream's
/// text messages are charged through it.
pub(crate) async fn charge(
    limits: &dyn RateLimits,
    limit: Limit,
    key: &str,
) -> Result<(), Refusal> {
    let taken = limits.take(limit, key).await;
    if matches!(taken, Err(Refusal::Limited { .. })) {
        metrics::counter!(crate::metrics::RATE_LIMITED, "limit" => limit.as_str()).increment(1);
    }
    taken
}

/// What `limit` counts, as a refusal's message names it.
pub(crate) fn counted(limit: Limit) -> &'static str {
    match limit {
        Limit::ApiKey => "API key",
        Limit::ClientAddress => "client address",
        Limit::FailedIdentifications => "failed identifications",
    }
}

/// Spends one request of `key` under `limit`: 429 with the wait when over,
/// 503 when the shared limit store does not answer (fail closed).
async fn limited(limits: &dyn RateLimits, limit: Limit, key: &str) -> Result<(), ApiError> {
    match charge(limits, limit, key).await {
        Ok(()) => Ok(()),
        Err(Refusal::Limited { retry_after_secs }) => Err(ApiError::rate_limited(
            counted(limit),
            u32::try_from(retry_after_secs).unwrap_or(u32::MAX),
        )),
        Err(Refusal::Unavailable) => Err(face_service::ServiceError::RateLimitsUnavailable.into()),
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
    let pattern = req.match_pattern();
    let access = match table::listed(req.method(), pattern.as_deref()) {
        Some(access) => access,
        None => {
            // A known path with a method it does not have: 405 naming those
            // it has, before any key is asked for (the API docs list them
            // anyway). Only looked up off the common path.
            if let Some(p) = pattern.as_deref() {
                let allowed = table::methods(p);
                if !allowed.is_empty() {
                    return Err(ApiError::method_not_allowed(req.method(), &allowed));
                }
            }
            table::access(req.method(), pattern.as_deref())
        }
    };
    if access == Access::Public {
        return Ok(());
    }
    let guard = &state.guard;
    let client = crate::client::of(req, &guard.proxies);
    let limits = state.service.limits();
    if let Some(c) = client {
        limited(limits, Limit::ClientAddress, &c.limit_key_text()).await?;
    }
    let ticket = (access == Access::KeyOrTicket)
        .then(|| ticket(req))
        .flatten();
    let principal = if let (true, Some(ticket)) = (guard.enabled, ticket) {
        // A ticket is as good as its key now: a key revoked since it asked
        // for the ticket opens nothing, and one issued while
        // authentication was off opens nothing once it is on.
        match state.service.tickets().redeem(&ticket).await? {
            Some(p) if p.key_id.is_some() => p,
            _ => {
                metrics::counter!(face_service::telemetry::AUTH_FAILURES, "reason" => "ticket")
                    .increment(1);
                return Err(face_service::ServiceError::Unauthenticated(
                    "the stream ticket is unknown, expired or already used: ask POST \
                     /stream/tickets for a new one"
                        .into(),
                )
                .into());
            }
        }
    } else if guard.enabled {
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
        limited(limits, Limit::ApiKey, &id.to_string()).await?;
    }
    let client_key = client
        .map(|c| c.limit_key_text())
        .filter(|k| Some(k.as_str()) != client.map(|c| c.to_string()).as_deref());
    let client = client.map(|c| c.to_string());
    if let Access::Scope(scope) = access {
        principal.require(scope)?;
    }
    req.extensions_mut().insert(Caller {
        key_id: principal.key_id,
        key_name: principal.key_id.map(|_| principal.key_name.clone()),
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
