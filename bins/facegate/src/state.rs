//! What every handler and the guard share: the use cases, the body budget,
//! and the guard's settings and limiters.
//!
//! Its own module so that the routes and the guard both depend on it and on
//! nothing of each other's (the guard reads the route table; the routes do
//! not know the guard exists).

use std::net::IpAddr;

use face_service::FaceService;
use ipnet::IpNet;

use crate::input::BodyBudget;
use crate::ratelimit::RateLimiter;

/// Shared state of all handlers.
pub struct AppState {
    /// The use cases.
    pub service: FaceService,
    /// Body size limit and the in-flight body budget.
    pub bodies: BodyBudget,
    /// Authentication and rate limits.
    pub guard: Guard,
    /// The OpenAPI document, serialised once at startup.
    pub openapi: String,
    /// Most users `GET /users/` lists without paging parameters.
    pub max_list_users: usize,
    /// The process's metrics recorder, rendered by `GET /metrics`.
    pub metrics: &'static metrics_exporter_prometheus::PrometheusHandle,
}

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
