//! The metrics exporter: the one Prometheus recorder of the process, the
//! HTTP series, and `facegate_build_info`.
//!
//! The library crates (face-core, store, service) emit their series through
//! the `metrics` facade and know no exporter; this module installs
//! `metrics-exporter-prometheus`'s recorder once per process, gives the
//! series their help text and their histogram buckets, and renders the
//! text format for `GET /metrics` (`routes/metrics.rs`). HTTP requests are
//! counted and timed here, in a middleware outside every other one, so the
//! guard's refusals (401, 403, 405, 429) are counted too. The route label is
//! the route table's pattern (`/users/{id}`), never the path: ids, names
//! and keys never become labels.

use std::sync::OnceLock;
use std::time::Instant;

use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, labelled `method`, `route` and `status`.
pub const HTTP_REQUESTS: &str = "facegate_http_requests_total";
/// Request latency (seconds) until the response starts, same labels.
pub const HTTP_SECONDS: &str = "facegate_http_request_duration_seconds";
/// Requests refused by a rate limit, labelled `limit` (`client_address`,
/// `api_key`).
pub const RATE_LIMITED: &str = "facegate_rate_limited_total";
/// Requests answered 503 `busy` before their body was read: the in-flight
/// body budget (`server.max_inflight_body_bytes`) was full.
pub const BODIES_REJECTED: &str = "facegate_request_bodies_rejected_total";
/// Frames streams sent, labelled `outcome`: `processed`, `error`, or why
/// one was dropped (`superseded`, `rate`, `out_of_order`).
pub const STREAM_FRAMES: &str = "facegate_stream_frames_total";
/// From a frame's arrival to its event leaving (seconds): the stream's
/// frame-to-event latency, waiting in the mailbox included.
pub const STREAM_FRAME_SECONDS: &str = "facegate_stream_frame_duration_seconds";
/// Streams open now.
pub const STREAMS_OPEN: &str = "facegate_streams_open";
/// Always 1, labelled with the version, the backend and the model.
pub const BUILD_INFO: &str = "facegate_build_info";

/// Buckets for durations: 1 ms to 10 s (a store call is about a
/// millisecond, a face pipeline tens, a queued request up to seconds).
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets for decision distances: both metrics in use (cosine distance,
/// 0–2; dlib's Euclidean, 0–~1.5), finest where thresholds lie. Each a
/// multiple of the service's `DISTANCE_STEP`, so its rounding never moves
/// a distance to another bucket.
const DISTANCE_BUCKETS: &[f64] = &[
    0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5, 2.0,
];

static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// The process's recorder, installed on first use. Tests start several
/// servers in one process; they share it, as the series of one process
/// are one set.
pub fn handle() -> Result<&'static PrometheusHandle, String> {
    HANDLE.get_or_init(install).as_ref().map_err(Clone::clone)
}

fn install() -> Result<PrometheusHandle, String> {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(face_service::telemetry::DECISION_DISTANCE.into()),
                DISTANCE_BUCKETS,
            )
        })
        .map_err(|e| format!("metrics buckets: {e}"))?
        .build_recorder();
    let handle = recorder.handle();
    ::metrics::set_global_recorder(recorder).map_err(|_| {
        "another metrics recorder is installed in this process; FaceGate cannot serve \
         /metrics"
            .to_string()
    })?;
    describe();
    Ok(handle)
}

/// Records what this build runs, as `facegate_build_info`.
pub fn build_info(backend: &str, model: &str) {
    ::metrics::gauge!(
        BUILD_INFO,
        "version" => env!("CARGO_PKG_VERSION"),
        "backend" => backend.to_string(),
        "model" => model.to_string()
    )
    .set(1.0);
}

/// The text the scraper gets; upkeep first, so histograms are current and
/// their memory bounded.
pub fn render(handle: &PrometheusHandle) -> String {
    handle.run_upkeep();
    handle.render()
}

/// Counts and times every request (`actix_web::middleware::from_fn`).
pub async fn http<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let result = next.call(req).await;
    let status = match &result {
        Ok(res) => res.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    let labels = [
        ("method", method.to_string()),
        ("route", route),
        ("status", status.as_u16().to_string()),
    ];
    ::metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    ::metrics::histogram!(HTTP_SECONDS, &labels).record(started.elapsed().as_secs_f64());
    result
}

/// The methods the API answers, and `other` for any a client invents (a
/// label must come from a bounded set).
fn method_label(m: &Method) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "HEAD", "POST", "DELETE", "PUT", "PATCH", "OPTIONS"];
    KNOWN
        .into_iter()
        .find(|k| *k == m.as_str())
        .unwrap_or("other")
}

/// Help text and units for every series of the process.
fn describe() {
    use face_service::telemetry as svc;
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route pattern and status"
    );
    describe_histogram!(
        HTTP_SECONDS,
        Unit::Seconds,
        "HTTP request latency until the response starts, by method, route pattern and status"
    );
    describe_counter!(RATE_LIMITED, "Requests refused by a rate limit, by limit");
    describe_counter!(
        BODIES_REJECTED,
        "Requests answered 503 busy because the in-flight body budget was full"
    );
    describe_counter!(
        STREAM_FRAMES,
        "Frames sent on streams, by outcome (processed, error, superseded, rate, out_of_order)"
    );
    describe_histogram!(
        STREAM_FRAME_SECONDS,
        Unit::Seconds,
        "Stream frame-to-event latency, from arrival to the event leaving"
    );
    describe_gauge!(STREAMS_OPEN, "WebSocket streams open now");
    describe_gauge!(
        BUILD_INFO,
        "The version, face backend and embedding model this server runs"
    );
    describe_histogram!(
        face_core::telemetry::STAGE_SECONDS,
        Unit::Seconds,
        "Face pipeline stage latency (decode, resize, detect, pad, embed, search), by backend"
    );
    describe_histogram!(
        face_store::metered::OPERATION_SECONDS,
        Unit::Seconds,
        "Store call latency, by store, operation and outcome"
    );
    describe_counter!(
        svc::DECISIONS,
        "Decisions (verify, identify, enrol, add_faces) by outcome"
    );
    describe_histogram!(
        svc::DECISION_DISTANCE,
        "Distance each decision was made on (rounded up to 0.05), by operation, outcome and \
         model (the signal for threshold drift)"
    );
    describe_counter!(
        svc::LOCKOUTS,
        "Users who entered a verification lockout (delayed or disabled)"
    );
    describe_counter!(
        svc::AUTH_FAILURES,
        "Requests refused for their API key, by reason"
    );
    describe_counter!(
        svc::RATE_STORE_ERRORS,
        "Rate-limit checks the shared limit store (Redis) did not answer; each refused its \
         request with 503"
    );
    describe_counter!(
        svc::JOBS_REJECTED,
        "Face jobs refused because the worker queue was full (503 busy)"
    );
    describe_counter!(
        svc::JOBS_ABANDONED,
        "Face jobs skipped because their client had gone"
    );
    describe_gauge!(svc::WORKERS, "Face worker threads");
    describe_gauge!(svc::WORKERS_BUSY, "Face workers running a job");
    describe_gauge!(svc::QUEUE_DEPTH, "Face jobs waiting for a worker");
    describe_gauge!(svc::QUEUE_CAPACITY, "The most face jobs that may wait");
    describe_gauge!(svc::TEMPLATES, "Face templates in the store, by model");
    describe_gauge!(svc::USERS, "Enrolled users");
    describe_counter!(
        svc::LIVENESS_SESSIONS,
        "Liveness challenge sessions answered, by purpose, outcome and reason"
    );
    describe_counter!(
        svc::LIVENESS_CHECKS,
        "Faces checked by the passive liveness detector, by operation and verdict (live, attack)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_buckets_are_multiples_of_the_rounding_step() {
        let step = face_service::telemetry::DISTANCE_STEP;
        for b in DISTANCE_BUCKETS {
            let k = b / step;
            assert!((k - k.round()).abs() < 1e-9, "{b}");
        }
    }

    #[test]
    fn invented_methods_are_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(
            method_label(&Method::from_bytes(b"BREW").unwrap_or_default()),
            "other"
        );
    }
}
