//! What every handler and the guard share: the use cases, the body budget,
//! and the guard's settings and limiters.
//!
//! Its own module so that the routes and the guard both depend on it and on
//! nothing of each other's (the guard reads the route table; the routes do
//! not know the guard exists).

use face_service::FaceService;
use ipnet::IpNet;

use crate::input::BodyBudget;

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
    /// The stream's limits and the streams each key holds.
    pub streams: std::sync::Arc<StreamLimits>,
    /// The SQLite data directory's lock, held while the server runs
    /// (`startup::claim_data_dir`); `None` on PostgreSQL. The last field:
    /// fields drop in order, so the lock goes after the service and its
    /// store.
    pub data_dir_lock: Option<std::fs::File>,
}

/// `[stream]`'s limits, and how many streams each key holds open.
pub struct StreamLimits {
    /// The settings.
    pub settings: crate::settings::StreamSettings,
    open: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl StreamLimits {
    /// No stream open yet.
    pub fn new(settings: crate::settings::StreamSettings) -> Self {
        Self {
            settings,
            open: Default::default(),
        }
    }

    /// Counts one more stream of `holder` (a key; without authentication,
    /// a client address), or `None` when it already holds
    /// `max_streams_per_key`. The stream is counted until the returned
    /// guard is dropped.
    pub fn hold(self: &std::sync::Arc<Self>, holder: String) -> Option<StreamHold> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(holder.clone()).or_default();
        if *n >= self.settings.max_streams_per_key {
            return None;
        }
        *n += 1;
        Some(StreamHold {
            limits: std::sync::Arc::clone(self),
            holder,
        })
    }
}

/// One open stream, counted against its key until dropped.
pub struct StreamHold {
    limits: std::sync::Arc<StreamLimits>,
    holder: String,
}

impl Drop for StreamHold {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.holder) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.holder);
            }
        }
    }
}

/// The guard's settings and state, shared by all workers.
pub struct Guard {
    /// Whether API keys are required.
    pub enabled: bool,
    /// Peers whose `X-Forwarded-For` names the client.
    pub proxies: Vec<IpNet>,
}
