//! How far a face is turned, from its five landmarks: pure geometry, no
//! model. The measure is where the nose sits between the eyes along the
//! image's x axis, `r = (nose.x − left eye.x) / (right eye.x − left eye.x)`
//! with the eyes ordered left to right in the image: about 0.5 for a
//! frontal face, lower when the nose is towards the image's left (the
//! person turned to their right, as the camera sees it), higher the other
//! way. A ratio rather than an angle because it needs no 3-D model and
//! means the same at any face size; the shared clips' turns are annotated
//! in it (`../shared/video/README.md`).

use crate::geometry::Landmarks;

/// The nose's place between the eyes, in image x (see the module docs);
/// `None` when the eyes are on top of each other (no width to measure in).
pub fn yaw_ratio(landmarks: &Landmarks) -> Option<f32> {
    let (left, right) = landmarks.eye_centers();
    let span = right.x - left.x;
    if span.abs() < 1e-3 {
        return None;
    }
    Some((landmarks.nose().x - left.x) / span)
}

/// The widest ratio still counted as frontal, each side of 0.5: beyond it
/// (r < 0.36 or r > 0.64) the head is clearly turned, as the clips'
/// annotations count it.
pub const FRONTAL_HALF_WIDTH: f32 = 0.14;

/// Whether a face looks at the camera (|r − 0.5| ≤ [`FRONTAL_HALF_WIDTH`]).
pub fn is_frontal(landmarks: &Landmarks) -> bool {
    yaw_ratio(landmarks).is_some_and(|r| (r - 0.5).abs() <= FRONTAL_HALF_WIDTH)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::geometry::{LandmarkScheme, Point};

    /// ArcFace order: right eye, left eye (of the person), nose, mouth.
    fn face(nose_x: f32) -> Landmarks {
        let p = |x, y| Point { x, y };
        Landmarks {
            scheme: LandmarkScheme::ArcFace5,
            points: [
                p(100.0, 100.0),
                p(160.0, 100.0),
                p(nose_x, 130.0),
                p(110.0, 160.0),
                p(150.0, 160.0),
            ],
        }
    }

    #[test]
    fn a_centred_nose_is_frontal() {
        assert_eq!(yaw_ratio(&face(130.0)), Some(0.5));
        assert!(is_frontal(&face(130.0)));
    }

    #[test]
    fn a_nose_towards_either_eye_is_turned() {
        let r = yaw_ratio(&face(115.0)).unwrap();
        assert!((r - 0.25).abs() < 1e-6);
        assert!(!is_frontal(&face(115.0)));
        assert!(!is_frontal(&face(150.0)));
        // Either side of the edge (0.64).
        assert!(is_frontal(&face(100.0 + 0.63 * 60.0)));
        assert!(!is_frontal(&face(100.0 + 0.66 * 60.0)));
    }

    #[test]
    fn the_eye_order_in_the_points_does_not_matter() {
        let mut l = face(115.0);
        l.points.swap(0, 1);
        assert!((yaw_ratio(&l).unwrap() - 0.25).abs() < 1e-6);
    }

    #[test]
    fn eyes_on_one_vertical_line_have_no_ratio() {
        let mut l = face(130.0);
        l.points[1].x = 100.0;
        l.points[1].y = 140.0;
        assert_eq!(yaw_ratio(&l), None);
        assert!(!is_frontal(&l));
    }
}
