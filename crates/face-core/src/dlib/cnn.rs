//! dlib's CNN (MMOD) face detector: slower, finds turned and partly hidden
//! faces the HOG detector misses. Selectable by configuration.

use std::path::Path;

use image::RgbImage;

use super::ffi::CnnHandle;
use super::hog::with_landmarks;
use super::landmarks::Predictor;
use super::DlibDetectorOptions;
use crate::detect::{upsample_steps, DetectedFace, Detector};
use crate::FaceError;

/// dlib's MMOD CNN face detector with 5-point landmarks.
pub struct CnnDetector {
    handle: CnnHandle,
    predictor: Predictor,
    options: DlibDetectorOptions,
}

impl CnnDetector {
    /// Loads the network from `mmod` and the 5-point predictor from
    /// `landmarks`.
    pub fn new(
        mmod: &Path,
        landmarks: &Path,
        options: DlibDetectorOptions,
    ) -> Result<Self, FaceError> {
        Ok(Self {
            handle: CnnHandle::open(mmod)?,
            predictor: Predictor::open(landmarks)?,
            options,
        })
    }
}

impl Detector for CnnDetector {
    fn name(&self) -> &str {
        "dlib-cnn"
    }

    fn min_eye_distance(&self) -> f32 {
        crate::quality::DLIB5_MIN_EYE_DISTANCE
    }

    #[tracing::instrument(level = "debug", skip_all, fields(w = image.width(), h = image.height()))]
    fn detect(&mut self, image: &RgbImage) -> Result<Vec<DetectedFace>, FaceError> {
        let up = upsample_steps(image.width(), image.height(), self.options.upsample_below);
        let raw = self.handle.detect(image, up)?;
        with_landmarks(&self.predictor, image, raw)
    }
}
