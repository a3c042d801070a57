//! face-core: FaceGate's face pipeline as a library.
//!
//! From photo bytes to faces and embeddings, synchronously, with no async,
//! HTTP or SQL: the service and other Rust programs call it directly.
//!
//! - [`decode()`]: JPEG/PNG/WebP/BMP bytes to an upright RGB image, with limits
//!   checked before pixels are decoded.
//! - [`Detector`]: faces with box, score and five landmarks.
//! - [`Embedder`]: one [`Embedding`] per face, carrying its [`ModelInfo`].
//! - [`quality`]: whether a face is fit for enrolment, and why not.
//! - [`enrolment`]: the enrolment rule (one face, of enrolment quality).
//! - [`FacePipeline`]: all of the above with the downscaling policy.
//! - [`models`]: where model files are found, and their checksums.
//! - [`backend`]: the one factory from a backend configuration to pipelines.
//! - [`align`]: five-point similarity alignment onto the ArcFace template.
//! - `dlib` (feature `dlib`, on by default): the dlib backend.
//! - `onnx` (feature `onnx`): YuNet/SCRFD detection and ArcFace-family
//!   embedders on ONNX Runtime (CPU or CUDA), loaded at run time.
//!
//! ```no_run
//! use face_core::{dlib, models::ModelLocator, FacePipeline, PipelineOptions};
//!
//! # fn main() -> Result<(), face_core::FaceError> {
//! let locator = ModelLocator::new(None);
//! let mut pipeline = dlib::pipeline(&locator, dlib::DetectorKind::Hog, PipelineOptions::default())?;
//! let bytes = std::fs::read("photo.jpg").map_err(|e| face_core::FaceError::Io { path: "photo.jpg".into(), source: e })?;
//! let analysis = pipeline.analyze(&bytes)?;
//! for face in &analysis.faces {
//!     println!("{:?} quality ok: {}", face.detection.bbox, face.quality.is_acceptable());
//! }
//! # Ok(()) }
//! ```

pub mod align;
pub mod backend;
pub mod calibration;
pub mod decode;
pub mod detect;
pub mod embed;
pub mod enrolment;
mod error;
pub mod geometry;
pub mod liveness;
pub mod mjpeg;
pub mod models;
pub mod pipeline;
pub mod pose;
pub mod quality;
pub mod resize;
pub mod telemetry;
pub mod track;

#[cfg(feature = "dlib")]
pub mod dlib;

#[cfg(feature = "onnx")]
pub mod onnx;

pub use decode::{decode, decode_scaled, DecodeLimits, DecodedImage, ScaledImage};
pub use detect::{DetectedFace, Detector};
pub use embed::{Embedder, Embedding, Metric, ModelInfo};
pub use error::FaceError;
pub use geometry::{BoundingBox, LandmarkScheme, Landmarks, Point};
pub use pipeline::{
    Analysis, AnalyzedFace, FacePipeline, FaceRequest, PipelineOptions, StageTimings,
};
pub use quality::{Quality, QualityIssue, QualityPolicy};

/// Re-exported so callers use the same `image` version as face-core.
pub use image;
