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
    /// Smallest accepted face, as the shorter side of its box in original
    /// image pixels. dlib's encoder works on a 150 px chip; faces under
    /// 80 px are upscaled more than 2× and lose identity detail.
    pub min_face_size: u32,
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
            min_face_size: 80,
            border_tolerance: 0.10,
            min_sharpness: DEFAULT_MIN_SHARPNESS,
        }
    }
}

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
        /// Shorter side of the face box, pixels.
        size: u32,
        /// The minimum.
        min: u32,
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
            QualityIssue::TooSmall { size, min } => write!(
                f,
                "face is too small ({size} px, at least {min} px needed): move closer or use a larger photo"
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
    /// Shorter side of the face box, pixels of the original image.
    pub face_size: u32,
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
    let sharp = sharpness(image, face);
    let mut issues = Vec::new();

    if face_size < policy.min_face_size {
        issues.push(QualityIssue::TooSmall {
            size: face_size,
            min: policy.min_face_size,
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

    let size_score = (face_size as f32 / (2.0 * policy.min_face_size.max(1) as f32)).min(1.0);
    let sharp_score = (sharp / (2.0 * policy.min_sharpness.max(1e-3))).min(1.0);
    Quality {
        face_size,
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

    fn face(left: f32, top: f32, size: f32) -> DetectedFace {
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
                points: [Point::default(); 5],
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

        let small = assess(&img, &face(50.0, 50.0, 60.0), 1.0, &policy);
        assert!(matches!(
            small.issues[0],
            QualityIssue::TooSmall { size: 60, min: 80 }
        ));
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
