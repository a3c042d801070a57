//! dlib's HOG + linear SVM frontal face detector: the default detector.
//!
//! Fast on a CPU (about 26 ms for a 512×512 photo) and good on frontal
//! faces, which is what an enrolment or login photo is. Turned-away faces
//! are its weakness; the CNN detector covers those at ~20× the cost.

use std::path::Path;

use image::RgbImage;

use super::ffi::HogHandle;
use super::landmarks::{crop_around, Predictor};
use super::DlibDetectorOptions;
use crate::detect::{upsample_steps, DetectedFace, Detector};
use crate::FaceError;

/// dlib's HOG face detector with 5-point landmarks.
pub struct HogDetector {
    handle: HogHandle,
    predictor: Predictor,
    options: DlibDetectorOptions,
}

impl HogDetector {
    /// Loads the detector; `landmarks` is the 5-point predictor's file.
    pub fn new(landmarks: &Path, options: DlibDetectorOptions) -> Result<Self, FaceError> {
        Ok(Self {
            handle: HogHandle::new()?,
            predictor: Predictor::open(landmarks)?,
            options,
        })
    }
}

impl Detector for HogDetector {
    fn name(&self) -> &str {
        "dlib-hog"
    }

    fn min_eye_distance(&self) -> f32 {
        crate::quality::DLIB5_MIN_EYE_DISTANCE
    }

    #[tracing::instrument(level = "debug", skip_all, fields(w = image.width(), h = image.height()))]
    fn detect(&mut self, image: &RgbImage) -> Result<Vec<DetectedFace>, FaceError> {
        let up = upsample_steps(image.width(), image.height(), self.options.upsample_below);
        let raw = self
            .handle
            .detect(image, up, self.options.hog_adjust_threshold)?;
        with_landmarks(&self.predictor, image, raw)
    }
}

/// Adds dlib landmarks to raw detections.
pub(crate) fn with_landmarks(
    predictor: &Predictor,
    image: &RgbImage,
    raw: Vec<super::ffi::RawFace>,
) -> Result<Vec<DetectedFace>, FaceError> {
    raw.into_iter()
        .map(|f| {
            let crop = crop_around(image, std::slice::from_ref(&f.bbox));
            Ok(DetectedFace {
                bbox: f.bbox,
                score: f.score,
                landmarks: predictor.landmarks(&crop, &f.bbox)?,
            })
        })
        .collect()
}
