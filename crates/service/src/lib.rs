//! face-service: FaceGate's use cases over face-core and the store.
//!
//! Enrol, add faces, identify (1:N), verify (1:1), list and delete users,
//! stats; thresholds and confidence per embedding model; API keys and
//! scopes, the verification lockout and the audit log. No HTTP types: the
//! server parses requests into the validated values here ([`UserName`],
//! [`Threshold`]) and maps [`ServiceError`] to statuses.

pub mod access;
pub mod answer;
pub mod audit;
pub mod challenge;
pub mod domain;
mod error;
pub mod keys;
pub mod limits;
pub mod liveness;
pub mod lockout;
pub mod service;
pub mod sessions;
pub mod stream;
pub mod telemetry;
pub mod thresholds;
pub mod tickets;
pub mod track_identity;
pub mod workers;

pub use access::{Caller, ClientProbe, IssuedKey, Principal, Scope};
pub use domain::{Threshold, UserName};
pub use error::ServiceError;
pub use liveness::{Liveness, LivenessMode, LivenessReport, LivenessVerdict};
pub use service::{
    AdminOverride, EnrolRequest, Enrolled, EnrolledFace, FaceBox, FaceMatch, FaceService,
    Identification, Readiness, ServiceStats, Verification, DEFAULT_MAX_TEMPLATES_PER_USER,
    READY_STORE_TIMEOUT,
};
pub use thresholds::{
    Band, DecisionThreshold, FmrPoint, MatchEvidence, ThresholdReport, Thresholds,
};
pub use workers::{FaceWorkers, WorkerLoad};
