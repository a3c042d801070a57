//! dlib's 5-point landmark predictor, run on a crop around each face.
//!
//! Both the dlib detectors (to report landmarks) and the ResNet encoder (to
//! align its chip) need dlib's own `full_object_detection`, which the crate
//! only builds by running the predictor. So each holds a predictor, and
//! both run it on a crop around the face rather than copying the whole
//! photo into a dlib matrix: the predictor and the chip extraction read
//! only pixels near the face, and the result is identical.

use std::os::raw::c_long;
use std::path::Path;

use dlib_face_recognition::{
    FaceLandmarks, ImageMatrix, LandmarkPredictor, LandmarkPredictorTrait, Rectangle,
};
use image::RgbImage;

use super::ffi::path_to_cstring;
use crate::geometry::{BoundingBox, LandmarkScheme, Landmarks, Point};
use crate::FaceError;

/// A crop of the image as a dlib matrix, and where it sits in the image.
pub(crate) struct Crop {
    pub matrix: ImageMatrix,
    pub left: u32,
    pub top: u32,
}

/// The region around `boxes` (each grown by its own size on every side),
/// clipped to the image, as a dlib matrix.
pub(crate) fn crop_around(image: &RgbImage, boxes: &[BoundingBox]) -> Crop {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let mut l = w;
    let mut t = h;
    let mut r = 0.0f32;
    let mut b = 0.0f32;
    for bb in boxes {
        let m = bb.width.max(bb.height);
        l = l.min(bb.left - m);
        t = t.min(bb.top - m);
        r = r.max(bb.right() + m);
        b = b.max(bb.bottom() + m);
    }
    let left = l.clamp(0.0, w) as u32;
    let top = t.clamp(0.0, h) as u32;
    let right = (r.clamp(0.0, w).ceil() as u32)
        .max(left + 1)
        .min(image.width());
    let bottom = (b.clamp(0.0, h).ceil() as u32)
        .max(top + 1)
        .min(image.height());
    let (cw, ch) = (right.saturating_sub(left), bottom.saturating_sub(top));
    let mut buf = Vec::with_capacity(cw as usize * ch as usize * 3);
    let stride = image.width() as usize * 3;
    let raw = image.as_raw();
    for y in top..bottom {
        let start = y as usize * stride + left as usize * 3;
        buf.extend_from_slice(&raw[start..start + cw as usize * 3]);
    }
    // SAFETY: buf holds exactly cw*ch*3 bytes of packed RGB, alive for the
    // call; ImageMatrix::new copies them.
    let matrix = unsafe { ImageMatrix::new(cw as usize, ch as usize, buf.as_ptr()) };
    Crop { matrix, left, top }
}

/// The dlib rectangle (inclusive corners) for a box, relative to a crop.
pub(crate) fn to_rectangle(bbox: &BoundingBox, crop: &Crop) -> Rectangle {
    let l = (bbox.left - crop.left as f32).round() as c_long;
    let t = (bbox.top - crop.top as f32).round() as c_long;
    let r = (bbox.right() - crop.left as f32).round() as c_long - 1;
    let b = (bbox.bottom() - crop.top as f32).round() as c_long - 1;
    Rectangle {
        left: l,
        top: t,
        right: r.max(l),
        bottom: b.max(t),
    }
}

/// dlib's 5-point shape predictor.
pub(crate) struct Predictor(LandmarkPredictor);

impl Predictor {
    pub fn open(path: &Path) -> Result<Self, FaceError> {
        path_to_cstring(path)?;
        LandmarkPredictor::open(path)
            .map(Predictor)
            .map_err(|reason| FaceError::ModelCorrupt {
                path: path.to_path_buf(),
                reason,
            })
    }

    /// dlib's landmarks for a face box, relative to the crop.
    pub fn raw(&self, crop: &Crop, bbox: &BoundingBox) -> FaceLandmarks {
        self.0
            .face_landmarks(&crop.matrix, &to_rectangle(bbox, crop))
    }

    /// The five landmarks of a face, in image coordinates.
    pub fn landmarks(&self, crop: &Crop, bbox: &BoundingBox) -> Result<Landmarks, FaceError> {
        let raw = self.raw(crop, bbox);
        if raw.len() != 5 {
            return Err(FaceError::Backend {
                backend: "dlib-landmarks",
                message: format!(
                    "the landmark model gave {} points, expected 5: is it the 5-point model?",
                    raw.len()
                ),
            });
        }
        let mut points = [Point::default(); 5];
        for (dst, p) in points.iter_mut().zip(raw.iter()) {
            *dst = Point::new(
                p.x() as f32 + crop.left as f32,
                p.y() as f32 + crop.top as f32,
            );
        }
        Ok(Landmarks {
            scheme: LandmarkScheme::Dlib5,
            points,
        })
    }
}
