//! The ONNX backend (feature `onnx`): YuNet or SCRFD detection with five
//! landmarks, ArcFace-family embeddings, on ONNX Runtime's CPU or CUDA
//! provider.
//!
//! A second implementation of [`crate::Detector`] and [`crate::Embedder`]:
//! the service and store see the same [`crate::FacePipeline`] as with dlib,
//! only with a different [`crate::ModelInfo`] (cosine metric, the model's
//! own id and dimension). ONNX Runtime itself is a shared library loaded at
//! run time ([`runtime`]); models are files found by
//! [`crate::models::ModelLocator`], checksummed when FaceGate knows them.
//!
//! ```no_run
//! use face_core::{models::ModelLocator, onnx, PipelineOptions};
//! # fn main() -> Result<(), face_core::FaceError> {
//! let locator = ModelLocator::with_dirs(vec!["../shared/models/onnx".into()]);
//! let mut pipeline = onnx::pipeline(&locator, &onnx::OnnxOptions::default(), PipelineOptions::default())?;
//! let analysis = pipeline.analyze(&std::fs::read("photo.jpg").unwrap_or_default())?;
//! # Ok(()) }
//! ```

mod arcface;
mod detector;
pub mod runtime;
mod tensor;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use arcface::{default_model_id, ArcFaceEmbedder, ChannelOrder, EmbedderOptions};
pub use detector::{DetectorOptions, HeadKind, OnnxDetector};
pub use runtime::{Provider, RuntimeOptions};

use crate::models::{sha256_hex, verify_sha256, ModelLocator, KNOWN_ONNX};
use crate::{FaceError, FacePipeline, PipelineOptions};

/// Largest embedding dimension accepted (the store's pgvector index limit).
pub const MAX_DIMENSION: usize = 2000;

/// Everything the ONNX backend needs: runtime, detector, embedder.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OnnxOptions {
    /// Runtime library and execution provider.
    pub runtime: RuntimeOptions,
    /// The detector model and its thresholds.
    pub detector: DetectorOptions,
    /// The embedder model and its normalisation.
    pub embedder: EmbedderOptions,
}

/// A model file, found and identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModel {
    /// Where it is.
    pub path: PathBuf,
    /// Its SHA-256 (verified when FaceGate knows the file name).
    pub sha256: String,
}

/// Finds `name` (a file name searched in the locator's directories, or a
/// path when it contains a `/`), checks a known model's checksum, and
/// returns its SHA-256.
pub fn resolve_model(locator: &ModelLocator, name: &str) -> Result<ResolvedModel, FaceError> {
    let path = if name.contains('/') {
        let p = PathBuf::from(name);
        if !p.is_file() {
            return Err(FaceError::ModelMissing {
                file: name.to_string(),
                searched: "(a path was given)".into(),
            });
        }
        p
    } else {
        locator.find(name)?
    };
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sha256 = match KNOWN_ONNX.iter().find(|k| k.file_name == file_name) {
        Some(known) => {
            verify_sha256(&path, known.sha256)?;
            known.sha256.to_string()
        }
        None => sha256_hex(&path)?,
    };
    Ok(ResolvedModel { path, sha256 })
}

/// The model files of `options`, found once for any number of pipelines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnnxModels {
    /// The detector.
    pub detector: ResolvedModel,
    /// The embedder.
    pub embedder: ResolvedModel,
}

impl OnnxModels {
    /// Finds and identifies both model files.
    pub fn locate(locator: &ModelLocator, options: &OnnxOptions) -> Result<Self, FaceError> {
        Ok(Self {
            detector: resolve_model(locator, &options.detector.model)?,
            embedder: resolve_model(locator, &options.embedder.model)?,
        })
    }
}

/// One ready pipeline.
pub fn pipeline(
    locator: &ModelLocator,
    options: &OnnxOptions,
    pipeline_options: PipelineOptions,
) -> Result<FacePipeline, FaceError> {
    pipelines(locator, options, pipeline_options, 1)?
        .pop()
        .ok_or_else(|| FaceError::Backend {
            backend: "onnx",
            message: "no pipeline was built".into(),
        })
}

/// `count` independent pipelines (one per worker thread), with the model
/// files found and checksummed once. Each has its own sessions: a session
/// runs one inference at a time here, and per-thread sessions need no lock.
pub fn pipelines(
    locator: &ModelLocator,
    options: &OnnxOptions,
    pipeline_options: PipelineOptions,
    count: usize,
) -> Result<Vec<FacePipeline>, FaceError> {
    let models = OnnxModels::locate(locator, options)?;
    (0..count)
        .map(|_| {
            let (detector, embedder) = parts(&models, options)?;
            Ok(FacePipeline::new(
                Box::new(detector),
                Box::new(embedder),
                pipeline_options,
            ))
        })
        .collect()
}

/// What a pipeline of `detector` and `embedder` (built from `models`)
/// runs, for the calibration.
pub fn fingerprint(
    models: &OnnxModels,
    detector: &OnnxDetector,
    embedder: &ArcFaceEmbedder,
) -> crate::calibration::PipelineFingerprint {
    let stem = |m: &ResolvedModel| {
        m.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    crate::calibration::PipelineFingerprint {
        embedder: default_model_id(&stem(&models.embedder), &models.embedder.sha256),
        detector: format!(
            "{}:{}",
            crate::Detector::name(detector),
            default_model_id(&stem(&models.detector), &models.detector.sha256)
        ),
        detector_input: detector.input_policy(),
        normalisation: embedder.normalisation(),
    }
}

/// A detector and an embedder on already located models.
pub fn parts(
    models: &OnnxModels,
    options: &OnnxOptions,
) -> Result<(OnnxDetector, ArcFaceEmbedder), FaceError> {
    let detector = OnnxDetector::new(
        &models.detector.path,
        options.detector.clone(),
        &options.runtime,
    )?;
    let embedder = ArcFaceEmbedder::new(
        &models.embedder.path,
        &models.embedder.sha256,
        &options.embedder,
        &options.runtime,
    )?;
    Ok((detector, embedder))
}
