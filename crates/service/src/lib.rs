//! face-service: FaceGate's use cases over face-core and the store.
//!
//! Enrol, add faces, identify (1:N), verify (1:1), list and delete users,
//! stats; thresholds and confidence per embedding model. No HTTP types: the
//! server parses requests into the validated values here ([`UserName`],
//! [`Threshold`]) and maps [`ServiceError`] to statuses.

pub mod domain;
mod error;
pub mod service;
pub mod thresholds;
pub mod workers;

pub use domain::{Threshold, UserName};
pub use error::ServiceError;
pub use service::{
    EnrolRequest, Enrolled, FaceBox, FaceMatch, FaceService, Identification, ServiceStats,
    Verification,
};
pub use thresholds::{Band, FmrPoint, Thresholds};
pub use workers::FaceWorkers;
