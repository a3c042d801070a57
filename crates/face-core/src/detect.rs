//! The `Detector` trait: from an image to faces with boxes, scores and
//! landmarks.
//!
//! A trait because there are two families of detectors (dlib's HOG/CNN and
//! the ONNX models), chosen by configuration. Detectors take `&mut self`:
//! the native models inside are not safe to use from two threads at once,
//! and the signature makes the caller own that exclusivity (one detector per
//! worker thread) instead of hiding a lock inside.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::geometry::{BoundingBox, Landmarks};
use crate::FaceError;

/// One face found by a detector, in the coordinates of the image it was given.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectedFace {
    /// The face box; may extend past the image border.
    pub bbox: BoundingBox,
    /// The detector's confidence. Its scale is the detector's own (dlib HOG:
    /// SVM margin, usually 0–3; CNN: MMOD score; ONNX: probability 0–1), so
    /// compare scores only within one detector.
    pub score: f32,
    /// Five landmarks, used for alignment and quality.
    pub landmarks: Landmarks,
}

impl DetectedFace {
    /// This face with box and landmarks multiplied by `factor`.
    pub fn scaled(&self, factor: f32) -> DetectedFace {
        DetectedFace {
            bbox: self.bbox.scaled(factor),
            score: self.score,
            landmarks: self.landmarks.scaled(factor),
        }
    }
}

/// Finds faces in an image.
pub trait Detector: Send {
    /// A short stable name, e.g. `"dlib-hog"`.
    fn name(&self) -> &str;

    /// The eye distance (pixels) that stands for the smallest face worth
    /// enrolling, for this detector's landmarks: see
    /// [`crate::quality::EYE_CENTRE_MIN_EYE_DISTANCE`].
    fn min_eye_distance(&self) -> f32;

    /// All faces in `image`, in no particular order.
    fn detect(&mut self, image: &RgbImage) -> Result<Vec<DetectedFace>, FaceError>;
}

/// How many times to double a small image before detection.
///
/// dlib's HOG detector slides an 80×80 window, so it misses faces smaller
/// than about 80 px. Images whose longest side is under `upsample_below`
/// are doubled once (faces down to about 40 px are then found); larger
/// images are not, because doubling quadruples the cost and a face under
/// 80 px in a large photo is too small to enrol anyway.
pub fn upsample_steps(width: u32, height: u32, upsample_below: u32) -> u32 {
    if width.max(height) < upsample_below {
        1
    } else {
        0
    }
}

/// Greedy non-maximum suppression: keeps the highest-scoring face of every
/// group whose boxes overlap by more than `iou_threshold`, at most `max`
/// faces, best first. Detectors that score every anchor of a feature map
/// (the ONNX ones) report each face many times over; this reduces them to
/// one box per face.
pub fn non_max_suppression(
    mut faces: Vec<DetectedFace>,
    iou_threshold: f32,
    max: usize,
) -> Vec<DetectedFace> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<DetectedFace> = Vec::new();
    for face in faces {
        if kept.len() >= max {
            break;
        }
        if kept.iter().all(|k| k.bbox.iou(&face.bbox) <= iou_threshold) {
            kept.push(face);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{LandmarkScheme, Point};

    fn face(left: f32, score: f32) -> DetectedFace {
        DetectedFace {
            bbox: BoundingBox::from_edges(left, 0.0, left + 10.0, 10.0),
            score,
            landmarks: Landmarks {
                scheme: LandmarkScheme::ArcFace5,
                points: [Point::default(); 5],
            },
        }
    }

    #[test]
    fn nms_keeps_the_best_of_each_overlapping_group() {
        let faces = vec![
            face(0.0, 0.8),
            face(1.0, 0.95),
            face(50.0, 0.7),
            face(2.0, 0.9),
        ];
        let kept = non_max_suppression(faces.clone(), 0.3, 10);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.95);
        assert_eq!(kept[1].score, 0.7);
        assert_eq!(non_max_suppression(faces, 0.3, 1).len(), 1);
        assert!(non_max_suppression(Vec::new(), 0.3, 10).is_empty());
    }

    #[test]
    fn only_small_images_are_upsampled() {
        assert_eq!(upsample_steps(250, 250, 800), 1);
        assert_eq!(upsample_steps(640, 480, 640), 0);
        assert_eq!(upsample_steps(1920, 1080, 800), 0);
    }
}
