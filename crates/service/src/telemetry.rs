//! The use cases' metrics: decisions and their distances, lockouts,
//! refused keys, and the state of the face workers and the gallery.
//!
//! Emitted through the `metrics` facade; the server binary installs the
//! exporter and serves `/metrics`, this crate knows neither. Labels are
//! bounded sets (operations, outcomes, model ids, reasons): never a user,
//! a name, a key or an address. The distance histogram aggregates the
//! distances of decisions by operation, outcome and model; it is the
//! signal for threshold drift and is served only to administrators and on
//! the operator's metrics listener, never per request.

use crate::audit::AuditOutcome;
use crate::ServiceError;

/// Decisions, labelled `operation` (`verify`, `identify`, `enrol`,
/// `add_faces`) and `outcome` (`match`, `no_match`, `ok`, an override's
/// name, or the refusal's error kind: `no_face`, `delayed`, `busy`, ...).
pub const DECISIONS: &str = "facegate_decisions_total";
/// The distance each verification and identification was decided on (the
/// nearest template's, in the model's metric), labelled `operation`,
/// `outcome` and `model`.
pub const DECISION_DISTANCE: &str = "facegate_decision_distance";
/// Users who entered a lockout state, labelled `state` (`delayed`,
/// `disabled`).
pub const LOCKOUTS: &str = "facegate_lockouts_total";
/// Requests refused for their key, labelled `reason` (`missing`,
/// `malformed`, `unknown`, `revoked`, `wrong_secret`).
pub const AUTH_FAILURES: &str = "facegate_authentication_failures_total";
/// Face jobs refused because the queue was full (the request got 503).
pub const JOBS_REJECTED: &str = "facegate_face_jobs_rejected_total";
/// Face jobs skipped because their client had gone.
pub const JOBS_ABANDONED: &str = "facegate_face_jobs_abandoned_total";
/// Face worker threads.
pub const WORKERS: &str = "facegate_face_workers";
/// Face workers running a job now.
pub const WORKERS_BUSY: &str = "facegate_face_workers_busy";
/// Face jobs waiting for a worker.
pub const QUEUE_DEPTH: &str = "facegate_face_queue_depth";
/// The most jobs that may wait.
pub const QUEUE_CAPACITY: &str = "facegate_face_queue_capacity";
/// Templates in the store, labelled `model`.
pub const TEMPLATES: &str = "facegate_templates";
/// Enrolled users.
pub const USERS: &str = "facegate_users";

/// Records one decision of `operation`, and the distance it was decided on
/// when there was one.
pub(crate) fn decision<T: AuditOutcome>(
    operation: &'static str,
    result: &Result<T, ServiceError>,
    distance: Option<f32>,
    model: &str,
) {
    let outcome = match result {
        Ok(v) => v.outcome(),
        Err(e) => e.kind(),
    };
    metrics::counter!(DECISIONS, "operation" => operation, "outcome" => outcome).increment(1);
    if let Some(d) = distance.filter(|d| d.is_finite()) {
        metrics::histogram!(
            DECISION_DISTANCE,
            "operation" => operation,
            "outcome" => outcome,
            "model" => model.to_string()
        )
        .record(f64::from(d));
    }
}
