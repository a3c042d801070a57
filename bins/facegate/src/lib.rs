//! facegate: the HTTP server. Thin by design: settings, routes, one error
//! mapping; all logic lives in `face-service`.

pub mod api;
pub mod auth;
pub mod client;
pub mod error;
pub mod input;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod tls;
