//! Enrolment quality: is this face good enough to become a template?
//!
//! A template is compared against every future probe, so a bad one does
//! lasting harm: it makes its owner hard to recognise and strangers easy to
//! confuse with them. Three checks, each with a reason a person can act on:
//! the face is too small, it is cut off by the image border, or it is too
//! blurry. Identification and verification probes are not held to this bar
//! (a probe is compared once); enrolment is.

use image::{imageops, GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

use crate::detect::DetectedFace;

/// Thresholds for [`assess`]. All configurable.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QualityPolicy {
    /// Smallest accepted face, as the distance between the eye centres in
    /// the original photo's pixels. `None`: the detector's own
    /// ([`crate::Detector::min_eye_distance`]), which stands for the same
    /// face size whatever the detector, because landmarks, unlike boxes,
    /// do not depend on how tightly a detector draws.
    pub min_eye_distance: Option<f32>,
    /// How far (as a fraction of the box size) a face box may extend past
    /// the image border before the face counts as cut off. Detectors draw
    /// boxes a little loosely, so a face touching the border is tolerated.
    pub border_tolerance: f32,
    /// Smallest accepted sharpness (see [`sharpness`]).
    pub min_sharpness: f32,
}

impl Default for QualityPolicy {
    fn default() -> Self {
        Self {
            min_eye_distance: None,
            border_tolerance: 0.10,
            min_sharpness: DEFAULT_MIN_SHARPNESS,
        }
    }
}

impl QualityPolicy {
    /// The minimum eye distance in force: the configured one, else
    /// [`DEFAULT_MIN_EYE_DISTANCE`] (a pipeline fills in its detector's).
    pub fn min_eye_distance(&self) -> f32 {
        self.min_eye_distance.unwrap_or(DEFAULT_MIN_EYE_DISTANCE)
    }

    /// Whether a face is big enough to count as a face of the photo at
    /// enrolment (smaller ones in the background are ignored).
    pub fn counts(&self, face: &DetectedFace) -> bool {
        face.landmarks.eye_distance() >= self.min_eye_distance()
    }
}

/// The minimum eye distance when neither the configuration nor a detector
/// says: that of the eye-centre detectors.
pub const DEFAULT_MIN_EYE_DISTANCE: f32 = EYE_CENTRE_MIN_EYE_DISTANCE;

/// The minimum eye distance of detectors whose landmarks are eye centres
/// (YuNet-s, YuNet-n, YuNet 2023mar, SCRFD): the eye distance of a face
/// whose dlib HOG box is 80 px, the floor the size rule was first set at
/// (dlib's encoder works on a 150 px chip; smaller faces are upscaled about
/// 2× and lose identity detail). On the 91 shared portraits the ratio of
/// each detector's eye distance to dlib's box side has a median of 0.445
/// for all three YuNets and SCRFD (0.33–0.59 over poses): 80 × 0.445 ≈
/// 35.5. The `eye_distance` test re-measures it per detector.
pub const EYE_CENTRE_MIN_EYE_DISTANCE: f32 = 35.5;

/// The same for dlib's 5-point landmarks: the midpoints of the eye corners
/// sit a little closer together than the pupils (median ratio 0.431 to its
/// own box: 80 × 0.431 ≈ 34.5).
pub const DLIB5_MIN_EYE_DISTANCE: f32 = 34.5;

/// Default sharpness threshold.
///
/// Measured on the 91 whole-face photos in `shared/faces/people`: sharp
/// photos scored 18.7 to 2800 (the lowest are soft video frames of the dlib
/// "johns" set); the same faces blurred with a Gaussian of σ = 2 px at the
/// measuring scale scored 3.7 to 14.7 (faces of at least 80 px). 15 refuses
/// every blurred copy and accepts every original; the `quality` integration
/// test re-measures both sides.
pub const DEFAULT_MIN_SHARPNESS: f32 = 15.0;

/// Why a face was judged unfit for enrolment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum QualityIssue {
    /// The face is smaller than the minimum.
    TooSmall {
        /// Distance between the eye centres, pixels of the photo.
        eye_distance: f32,
        /// The minimum.
        min_eye_distance: f32,
    },
    /// The face is cut off by the image border.
    CutOff {
        /// The border(s) that cut it: "left", "top", "right", "bottom".
        sides: Vec<String>,
    },
    /// The face is too blurry.
    Blurry {
        /// Measured sharpness.
        sharpness: f32,
        /// The minimum.
        min: f32,
    },
}

impl std::fmt::Display for QualityIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QualityIssue::TooSmall {
                eye_distance,
                min_eye_distance,
            } => write!(
                f,
                "face is too small (eyes {eye_distance:.0} px apart, at least {min_eye_distance:.0} px needed): move closer or use a larger photo"
            ),
            QualityIssue::CutOff { sides } => write!(
                f,
                "face is cut off by the image border ({}): the whole face must be in the photo",
                sides.join(", ")
            ),
            QualityIssue::Blurry { sharpness, min } => write!(
                f,
                "face is too blurry (sharpness {sharpness:.1}, at least {min:.1} needed): hold still and focus"
            ),
        }
    }
}

/// The quality of one face.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// Shorter side of the face box, pixels of the original image (for
    /// display: the box's tightness is the detector's own).
    pub face_size: u32,
    /// Distance between the eye centres, pixels of the original image:
    /// what the size rule judges.
    pub eye_distance: f32,
    /// Sharpness measure (see [`sharpness`]).
    pub sharpness: f32,
    /// Everything wrong with the face for enrolment; empty when fit.
    pub issues: Vec<QualityIssue>,
    /// A summary in `[0, 1]` stored with templates: 1 for a large sharp
    /// face, lower as size or sharpness approach their minimums.
    pub score: f32,
}

impl Quality {
    /// Whether the face may be enrolled.
    pub fn is_acceptable(&self) -> bool {
        self.issues.is_empty()
    }
}

/// Judges `face` (in `image`'s coordinates). `scale` maps `image`'s pixels
/// to the original photo's (the pipeline may work on a resized copy), so
/// sizes are judged in the photo the user sent.
pub fn assess(
    image: &RgbImage,
    face: &DetectedFace,
    scale: f32,
    policy: &QualityPolicy,
) -> Quality {
    let b = &face.bbox;
    let face_size = (b.min_side() * scale).round().max(0.0) as u32;
    let eye_distance = face.landmarks.eye_distance() * scale;
    let min_eye_distance = policy.min_eye_distance();
    let sharp = sharpness(image, face);
    let mut issues = Vec::new();

    if eye_distance < min_eye_distance {
        issues.push(QualityIssue::TooSmall {
            eye_distance,
            min_eye_distance,
        });
    }

    let (w, h) = (image.width() as f32, image.height() as f32);
    let tol_x = b.width * policy.border_tolerance;
    let tol_y = b.height * policy.border_tolerance;
    let mut sides = Vec::new();
    if b.left < -tol_x {
        sides.push("left".to_string());
    }
    if b.top < -tol_y {
        sides.push("top".to_string());
    }
    if b.right() > w + tol_x {
        sides.push("right".to_string());
    }
    if b.bottom() > h + tol_y {
        sides.push("bottom".to_string());
    }
    if !sides.is_empty() {
        issues.push(QualityIssue::CutOff { sides });
    }

    if sharp < policy.min_sharpness {
        issues.push(QualityIssue::Blurry {
            sharpness: sharp,
            min: policy.min_sharpness,
        });
    }

    let size_score = (eye_distance / (2.0 * min_eye_distance.max(1.0))).min(1.0);
    let sharp_score = (sharp / (2.0 * policy.min_sharpness.max(1e-3))).min(1.0);
    Quality {
        face_size,
        eye_distance,
        sharpness: sharp,
        issues,
        score: size_score.min(sharp_score),
    }
}

/// Side of the square the face is resampled to before measuring sharpness,
/// so the measure does not depend on the photo's resolution.
const SHARPNESS_SIDE: u32 = 128;

/// Sharpness of a face: the variance of the 4-neighbour Laplacian of the
/// face box (clipped to the image), in grey levels², after resampling it to
/// 128×128 (or to its own shorter side when smaller: small faces are not
/// upscaled). Sharp faces have strong edges (high variance); blur flattens
/// them. Returns 0 when the box does not overlap the image.
pub fn sharpness(image: &RgbImage, face: &DetectedFace) -> f32 {
    let b = &face.bbox;
    let left = b.left.max(0.0) as u32;
    let top = b.top.max(0.0) as u32;
    let right = (b.right().min(image.width() as f32)).max(0.0) as u32;
    let bottom = (b.bottom().min(image.height() as f32)).max(0.0) as u32;
    if right <= left + 2 || bottom <= top + 2 {
        return 0.0;
    }
    let crop = imageops::crop_imm(image, left, top, right - left, bottom - top).to_image();
    let grey: GrayImage = imageops::grayscale(&crop);
    // Resample down to the measuring scale, never up: upscaling a small
    // face would itself look like blur.
    let side = SHARPNESS_SIDE.min(grey.width()).min(grey.height());
    let grey = imageops::resize(&grey, side, side, imageops::FilterType::Triangle);
    laplacian_variance(&grey)
}

fn laplacian_variance(grey: &GrayImage) -> f32 {
    let (w, h) = grey.dimensions();
    if w < 3 || h < 3 {
        return 0.0;
    }
    let px = |x: u32, y: u32| f64::from(grey.get_pixel(x, y).0[0]);
    let mut sum = 0.0f64;
    let mut sum_sq = 0.0f64;
    let mut n = 0.0f64;
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let lap = px(x - 1, y) + px(x + 1, y) + px(x, y - 1) + px(x, y + 1) - 4.0 * px(x, y);
            sum += lap;
            sum_sq += lap * lap;
            n += 1.0;
        }
    }
    let mean = sum / n;
    (sum_sq / n - mean * mean) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{BoundingBox, LandmarkScheme, Landmarks, Point};

    /// A square face box with its eyes 0.4 of its side apart.
    fn face(left: f32, top: f32, size: f32) -> DetectedFace {
        let eye = |x: f32| Point::new(left + x * size, top + 0.4 * size);
        let mut points = [Point::default(); 5];
        points[0] = eye(0.3);
        points[1] = eye(0.7);
        DetectedFace {
            bbox: BoundingBox {
                left,
                top,
                width: size,
                height: size,
            },
            score: 1.0,
            landmarks: Landmarks {
                scheme: LandmarkScheme::ArcFace5,
                points,
            },
        }
    }

    fn checkerboard(side: u32, cell: u32) -> RgbImage {
        RgbImage::from_fn(side, side, |x, y| {
            if (x / cell + y / cell).is_multiple_of(2) {
                image::Rgb([255, 255, 255])
            } else {
                image::Rgb([0, 0, 0])
            }
        })
    }

    #[test]
    fn flat_image_has_zero_sharpness_and_edges_have_a_lot() {
        let flat = RgbImage::from_pixel(200, 200, image::Rgb([128, 128, 128]));
        assert_eq!(sharpness(&flat, &face(10.0, 10.0, 150.0)), 0.0);
        let edges = checkerboard(200, 8);
        assert!(sharpness(&edges, &face(10.0, 10.0, 150.0)) > 1000.0);
    }

    #[test]
    fn small_cut_off_and_blurry_faces_each_give_their_reason() {
        let img = checkerboard(300, 8);
        let policy = QualityPolicy::default();
        let ok = assess(&img, &face(50.0, 50.0, 150.0), 1.0, &policy);
        assert!(ok.is_acceptable(), "{:?}", ok.issues);

        // Eyes 24 px apart, under the 35.5 px minimum.
        let small = assess(&img, &face(50.0, 50.0, 60.0), 1.0, &policy);
        match small.issues[0] {
            QualityIssue::TooSmall {
                eye_distance,
                min_eye_distance,
            } => {
                assert!((eye_distance - 24.0).abs() < 1e-3);
                assert_eq!(min_eye_distance, DEFAULT_MIN_EYE_DISTANCE);
            }
            ref other => panic!("{other:?}"),
        }
        assert!(small.issues[0].to_string().contains("eyes 24 px apart"));
        // A configured minimum wins over the default.
        let strict = QualityPolicy {
            min_eye_distance: Some(70.0),
            ..policy
        };
        assert!(!assess(&img, &face(50.0, 50.0, 150.0), 1.0, &strict).is_acceptable());
        // The same 60 px box in a working copy at half scale is 120 px in the photo.
        assert!(assess(&img, &face(50.0, 50.0, 60.0), 2.0, &policy).is_acceptable());

        let cut = assess(&img, &face(200.0, -40.0, 150.0), 1.0, &policy);
        assert_eq!(
            cut.issues,
            vec![QualityIssue::CutOff {
                sides: vec!["top".into(), "right".into()]
            }]
        );

        let flat = RgbImage::from_pixel(300, 300, image::Rgb([90, 90, 90]));
        let blurry = assess(&flat, &face(50.0, 50.0, 150.0), 1.0, &policy);
        assert!(matches!(blurry.issues[0], QualityIssue::Blurry { .. }));
        assert!(blurry.issues[0].to_string().contains("blurry"));
    }
}
