//! The dlib backend: HOG and CNN (MMOD) detectors, the 5-point landmark
//! predictor and the ResNet 128-D encoder.
//!
//! Detection goes through our own small C++ shim (`cpp/detect_shim.cpp`),
//! because the `dlib-face-recognition` crate hides detection scores and has
//! no upsampling; landmarks and the encoder go through the crate. Both sit
//! on the system dlib, built with OpenBLAS (`scripts/setup.sh`).

mod cnn;
mod ffi;
mod hog;
mod landmarks;
mod resnet;

use std::path::PathBuf;

pub use cnn::CnnDetector;
pub use hog::HogDetector;
pub use resnet::{ResnetEmbedder, MODEL_ID};

use crate::models::{ModelLocator, DLIB_LANDMARKS_5, DLIB_MMOD, DLIB_RESNET};
use crate::FaceError;

/// Paths of the dlib model files, found and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlibModels {
    /// `shape_predictor_5_face_landmarks.dat`.
    pub landmarks: PathBuf,
    /// `dlib_face_recognition_resnet_model_v1.dat`.
    pub resnet: PathBuf,
}

impl DlibModels {
    /// Finds and verifies the landmark and encoder models.
    pub fn locate(locator: &ModelLocator) -> Result<Self, FaceError> {
        Ok(Self {
            landmarks: locator.find_verified(&DLIB_LANDMARKS_5)?,
            resnet: locator.find_verified(&DLIB_RESNET)?,
        })
    }

    /// Finds and verifies the CNN (MMOD) detector model.
    pub fn locate_mmod(locator: &ModelLocator) -> Result<PathBuf, FaceError> {
        locator.find_verified(&DLIB_MMOD)
    }
}

/// Options shared by the dlib detectors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DlibDetectorOptions {
    /// Images whose longest side is under this are doubled once before
    /// detection (see [`crate::detect::upsample_steps`]).
    pub upsample_below: u32,
    /// Added to the HOG detector's decision threshold: above 0 finds fewer,
    /// surer faces; below 0 more. Ignored by the CNN detector.
    pub hog_adjust_threshold: f64,
}

impl Default for DlibDetectorOptions {
    fn default() -> Self {
        Self {
            upsample_below: 600,
            hog_adjust_threshold: 0.0,
        }
    }
}

/// Which dlib detector to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorKind {
    /// HOG + linear SVM: fast, frontal faces. The default.
    Hog,
    /// MMOD CNN: ~20× slower on a CPU, finds turned faces.
    Cnn,
}

/// What a dlib pipeline with the default detector options runs, for the
/// calibration (see [`crate::calibration::PipelineFingerprint`]).
pub fn fingerprint(kind: DetectorKind) -> crate::calibration::PipelineFingerprint {
    let d = DlibDetectorOptions::default();
    crate::calibration::PipelineFingerprint {
        embedder: format!(
            "dlib_face_recognition_resnet_model_v1_{}",
            &crate::models::DLIB_RESNET.sha256[..8]
        ),
        detector: match kind {
            DetectorKind::Hog => "dlib-hog".into(),
            DetectorKind::Cnn => "dlib-cnn".into(),
        },
        detector_input: format!(
            "doubled once below {} px, HOG threshold {:+}",
            d.upsample_below, d.hog_adjust_threshold
        ),
        normalisation: "dlib ResNet: its own 150x150 chip from 5 landmarks".into(),
    }
}

/// A ready pipeline: the chosen dlib detector and the ResNet encoder, with
/// models found through `locator` and verified.
pub fn pipeline(
    locator: &ModelLocator,
    kind: DetectorKind,
    options: crate::PipelineOptions,
) -> Result<crate::FacePipeline, FaceError> {
    pipeline_with(locator, kind, DlibDetectorOptions::default(), options)
}

/// [`pipeline`] with explicit detector options.
pub fn pipeline_with(
    locator: &ModelLocator,
    kind: DetectorKind,
    detector_options: DlibDetectorOptions,
    options: crate::PipelineOptions,
) -> Result<crate::FacePipeline, FaceError> {
    let mut built = pipelines(locator, kind, detector_options, options, 1)?;
    built.pop().ok_or_else(|| FaceError::Backend {
        backend: "dlib",
        message: "no pipeline was built".into(),
    })
}

/// `count` independent pipelines (one per worker thread), with the model
/// files found and checksummed once rather than once per pipeline.
pub fn pipelines(
    locator: &ModelLocator,
    kind: DetectorKind,
    detector_options: DlibDetectorOptions,
    options: crate::PipelineOptions,
    count: usize,
) -> Result<Vec<crate::FacePipeline>, FaceError> {
    let models = DlibModels::locate(locator)?;
    let mmod = match kind {
        DetectorKind::Hog => None,
        DetectorKind::Cnn => Some(DlibModels::locate_mmod(locator)?),
    };
    (0..count)
        .map(|_| {
            let detector: Box<dyn crate::Detector> = match &mmod {
                None => Box::new(HogDetector::new(&models.landmarks, detector_options)?),
                Some(mmod) => {
                    Box::new(CnnDetector::new(mmod, &models.landmarks, detector_options)?)
                }
            };
            let embedder = Box::new(ResnetEmbedder::new(&models.resnet, &models.landmarks)?);
            Ok(crate::FacePipeline::new(detector, embedder, options))
        })
        .collect()
}
