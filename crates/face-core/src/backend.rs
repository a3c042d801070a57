//! The one backend factory: a tagged backend configuration in, N ready
//! pipelines and the fingerprint of what they run out.
//!
//! The server (one pipeline per worker thread) and the evaluation command
//! (one per thread over LFW) both build pipelines here, so a backend is
//! chosen and assembled in one place. The [`PipelineFingerprint`] names
//! what shapes an embedding beyond the embedder's own weights — the
//! detector model and its input policy, and the embedder's normalisation —
//! so a calibration measured with one pipeline is never applied to another
//! (see [`crate::calibration`]).

use serde::{Deserialize, Serialize};

use crate::calibration::PipelineFingerprint;
use crate::models::ModelLocator;
use crate::{FaceError, FacePipeline, PipelineOptions};

/// Which backend, with its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum BackendConfig {
    /// dlib: HOG or CNN detection, 5 landmarks, ResNet 128-D.
    #[cfg(feature = "dlib")]
    Dlib {
        /// The detector.
        detector: crate::dlib::DetectorKind,
    },
    /// ONNX Runtime: YuNet or SCRFD, an ArcFace-family embedder.
    #[cfg(feature = "onnx")]
    Onnx(Box<crate::onnx::OnnxOptions>),
}

/// Pipelines built from one configuration.
pub struct Built {
    /// One per requested thread, each with its own models.
    pub pipelines: Vec<FacePipeline>,
    /// What they run (the same for all).
    pub fingerprint: PipelineFingerprint,
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Built")
            .field("pipelines", &self.pipelines.len())
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

/// Builds `count` pipelines of `config` (at least one, so the fingerprint
/// is read off a real one), model files found through `locator` and
/// checksummed once.
pub fn build(
    config: &BackendConfig,
    locator: &ModelLocator,
    options: PipelineOptions,
    count: usize,
) -> Result<Built, FaceError> {
    let count = count.max(1);
    match config {
        #[cfg(feature = "dlib")]
        BackendConfig::Dlib { detector } => {
            let pipelines =
                crate::dlib::pipelines(locator, *detector, Default::default(), options, count)?;
            Ok(Built {
                pipelines,
                fingerprint: crate::dlib::fingerprint(*detector),
            })
        }
        #[cfg(feature = "onnx")]
        BackendConfig::Onnx(onnx) => {
            let models = crate::onnx::OnnxModels::locate(locator, onnx)?;
            let mut fingerprint = None;
            let mut pipelines = Vec::with_capacity(count);
            for _ in 0..count {
                let (detector, embedder) = crate::onnx::parts(&models, onnx)?;
                if fingerprint.is_none() {
                    fingerprint = Some(crate::onnx::fingerprint(&models, &detector, &embedder));
                }
                pipelines.push(FacePipeline::new(
                    Box::new(detector),
                    Box::new(embedder),
                    options,
                ));
            }
            let fingerprint = fingerprint.ok_or_else(|| FaceError::Backend {
                backend: "onnx",
                message: "no pipeline was built".into(),
            })?;
            Ok(Built {
                pipelines,
                fingerprint,
            })
        }
    }
}

/// Gives every pipeline of `built` the passive presentation-attack
/// detector (the MiniFASNet pair, its files found through `locator`,
/// sessions on `runtime`), and returns what its liveness calibration must
/// have been measured with. [`FaceError::PadUnavailable`] when the files
/// are missing or damaged; the pipelines are then left as they were.
#[cfg(feature = "onnx")]
pub fn add_pad(
    built: &mut Built,
    locator: &ModelLocator,
    runtime: &crate::onnx::RuntimeOptions,
) -> Result<crate::liveness::calibration::PadFingerprint, FaceError> {
    use crate::liveness::minifasnet;
    let files = minifasnet::MiniFasNetFiles::locate(locator)?;
    let mut pads = Vec::with_capacity(built.pipelines.len());
    for _ in &built.pipelines {
        pads.push(files.open(runtime)?);
    }
    for (pipeline, pad) in built.pipelines.iter_mut().zip(pads) {
        pipeline.set_pad(Box::new(pad));
    }
    // The crops come from the working copy: its size is part of what the
    // threshold was measured on.
    let working = built
        .pipelines
        .first()
        .map_or(0, |p| p.options().max_working_side);
    Ok(crate::liveness::calibration::PadFingerprint {
        detector: built.fingerprint.detector.clone(),
        detector_input: format!(
            "{}; working copy at most {working} px",
            built.fingerprint.detector_input
        ),
        pad: minifasnet::fingerprint(),
    })
}
