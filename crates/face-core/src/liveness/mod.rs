//! Presentation-attack detection (PAD): is the face in front of the camera
//! a live person, or a print, a screen or a mask? This module owns the
//! trait beside `Detector` and `Embedder`, and the crop geometry the
//! passive models share; the models themselves live behind their backend's
//! feature (`minifasnet` with `onnx`), and `calibration` the file that
//! holds a detector's measured threshold. Decisions are the service's:
//! face-core turns a face into a live score and reads the calibration.

pub mod calibration;
#[cfg(feature = "onnx")]
pub mod minifasnet;

use crate::geometry::BoundingBox;
use crate::image::RgbImage;
use crate::FaceError;

/// A passive, single-image presentation-attack detector.
pub trait PresentationAttackDetector: Send {
    /// The probability-like live score of `face` in `image`, in 0..=1
    /// (higher is more likely live). The image must be upright (EXIF
    /// orientation applied), as `decode` returns it.
    fn live_score(&mut self, image: &RgbImage, face: &BoundingBox) -> Result<f32, FaceError>;
}

/// The context box the anti-spoofing models were trained on: `scale` times
/// the face box, centred on it, the scale reduced when the image is too
/// small, and the box *shifted* back inside the image rather than clipped
/// (so the crop keeps its aspect and its context). Returns inclusive pixel
/// bounds (left, top, right, bottom).
pub fn context_box(
    face: &BoundingBox,
    width: u32,
    height: u32,
    scale: f32,
) -> (u32, u32, u32, u32) {
    let (w, h) = (width as f32, height as f32);
    let (bw, bh) = (face.width.max(1.0), face.height.max(1.0));
    let scale = scale.min((h - 1.0) / bh).min((w - 1.0) / bw);
    let (nw, nh) = (bw * scale, bh * scale);
    let (cx, cy) = (face.left + bw / 2.0, face.top + bh / 2.0);
    let (mut l, mut t, mut r, mut b) = (cx - nw / 2.0, cy - nh / 2.0, cx + nw / 2.0, cy + nh / 2.0);
    if l < 0.0 {
        r -= l;
        l = 0.0;
    }
    if t < 0.0 {
        b -= t;
        t = 0.0;
    }
    if r > w - 1.0 {
        l -= r - w + 1.0;
        r = w - 1.0;
    }
    if b > h - 1.0 {
        t -= b - h + 1.0;
        b = h - 1.0;
    }
    let clamp = |v: f32, max: f32| v.clamp(0.0, max) as u32;
    (
        clamp(l, w - 1.0),
        clamp(t, h - 1.0),
        clamp(r, w - 1.0),
        clamp(b, h - 1.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(left: f32, top: f32, width: f32, height: f32) -> BoundingBox {
        BoundingBox {
            left,
            top,
            width,
            height,
        }
    }

    #[test]
    fn a_box_in_the_middle_is_scaled_about_its_centre() {
        assert_eq!(
            context_box(&face(300.0, 200.0, 40.0, 50.0), 1000, 1000, 2.0),
            (280, 175, 360, 275)
        );
    }

    #[test]
    fn a_box_near_an_edge_is_shifted_inside_not_clipped() {
        // 2.7 × 100 = 270 wide, centred at 60: shifted to start at 0.
        let (l, t, r, b) = context_box(&face(10.0, 300.0, 100.0, 100.0), 640, 640, 2.7);
        assert_eq!((l, r), (0, 270));
        assert_eq!(b - t, 270);
        // Near the far edge: ends at the last pixel, same width.
        let (l, _, r, _) = context_box(&face(580.0, 300.0, 50.0, 50.0), 640, 640, 4.0);
        assert_eq!((l, r), (439, 639));
    }

    #[test]
    fn the_scale_shrinks_to_fit_a_small_image() {
        let (l, t, r, b) = context_box(&face(100.0, 100.0, 100.0, 100.0), 300, 250, 4.0);
        assert_eq!((r - l, b - t), (249, 249));
        assert!(r <= 299 && b <= 249);
    }
}
