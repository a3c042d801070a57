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
/// The distance each decision was made on (verify and identify: the
/// nearest template's; add_faces: the farthest of the new faces from the
/// user), in the model's metric, rounded up to [`DISTANCE_STEP`], labelled
/// `operation`, `outcome` and `model`.
pub const DECISION_DISTANCE: &str = "facegate_decision_distance";
/// Users who entered a lockout state, labelled `state` (`delayed`,
/// `disabled`).
pub const LOCKOUTS: &str = "facegate_lockouts_total";
/// Requests refused for their key, labelled `reason` (`missing`,
/// `malformed`, `unknown`, `revoked`, `wrong_secret`).
pub const AUTH_FAILURES: &str = "facegate_authentication_failures_total";
/// Rate-limit checks that the shared limit store (Redis) did not answer;
/// each refused its request with 503 (fail closed).
pub const RATE_STORE_ERRORS: &str = "facegate_rate_store_errors_total";
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
/// Faces checked by the passive liveness detector, labelled `operation`
/// (`verify`, `identify`, `enrol`) and `verdict` (`live`, `attack`). Its
/// latency is the pipeline stage `pad`. No score leaves the service.
pub const LIVENESS_CHECKS: &str = "facegate_liveness_checks_total";

/// Challenge sessions answered, labelled `purpose` (`verify`, `enrol`),
/// `outcome` (`passed`, `failed`, `refused`) and `reason` (the failure's
/// code, the refusal's error kind, or `none`).
pub const LIVENESS_SESSIONS: &str = "facegate_liveness_sessions_total";

/// Counts one answered session.
pub(crate) fn session(purpose: &'static str, outcome: &'static str, reason: &'static str) {
    metrics::counter!(
        LIVENESS_SESSIONS,
        "purpose" => purpose,
        "outcome" => outcome,
        "reason" => reason
    )
    .increment(1);
}

/// Counts one face's liveness verdict.
pub(crate) fn liveness(operation: &'static str, verdict: crate::liveness::LivenessVerdict) {
    let verdict = match verdict {
        crate::liveness::LivenessVerdict::Live => "live",
        crate::liveness::LivenessVerdict::Attack => "attack",
    };
    metrics::counter!(LIVENESS_CHECKS, "operation" => operation, "verdict" => verdict).increment(1);
}

/// The precision the distance histogram keeps. Its `_sum` would otherwise
/// give away one attempt's exact distance to whoever compares two scrapes
/// around it on a quiet server; rounded up to a multiple of the bucket
/// step, every value stays in the bucket it was in, and the sum says no
/// more than the buckets do.
pub const DISTANCE_STEP: f64 = 0.05;

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
        .record(coarse(f64::from(d)));
    }
}

/// `d` rounded up to a multiple of [`DISTANCE_STEP`].
fn coarse(d: f64) -> f64 {
    // The small epsilon keeps a distance already on a step (0.3 computed
    // as 0.30000000000000004) on it.
    ((d / DISTANCE_STEP) - 1e-9).ceil() * DISTANCE_STEP
}

#[cfg(test)]
mod tests {
    use super::coarse;

    #[test]
    fn distances_are_rounded_up_to_the_step() {
        for (d, want) in [
            (0.0, 0.0),
            (0.01, 0.05),
            (0.3, 0.3),
            (0.31, 0.35),
            (0.5663, 0.6),
            (1.99, 2.0),
        ] {
            assert!((coarse(d) - want).abs() < 1e-9, "{d} -> {}", coarse(d));
        }
    }
}
