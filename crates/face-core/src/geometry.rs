//! Points, boxes and landmark sets in image pixel coordinates.
//!
//! Plain `f32` data shared by every backend, so a box from dlib and a box
//! from an ONNX detector mean the same thing: `(left, top)` is the top-left
//! corner, `width`/`height` extend right and down, and a box may extend past
//! the image (a face cut off by the border).

use serde::{Deserialize, Serialize};

/// A point in pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Point {
    /// Column, pixels from the left edge.
    pub x: f32,
    /// Row, pixels from the top edge.
    pub y: f32,
}

impl Point {
    /// A point at `(x, y)`.
    pub fn new(x: f32, y: f32) -> Self {
        Self { x, y }
    }

    /// The midpoint of two points.
    pub fn midpoint(self, other: Point) -> Point {
        Point::new((self.x + other.x) / 2.0, (self.y + other.y) / 2.0)
    }

    /// This point with both coordinates multiplied by `factor`.
    pub fn scaled(self, factor: f32) -> Point {
        Point::new(self.x * factor, self.y * factor)
    }
}

/// An axis-aligned box in pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BoundingBox {
    /// Left edge.
    pub left: f32,
    /// Top edge.
    pub top: f32,
    /// Width in pixels.
    pub width: f32,
    /// Height in pixels.
    pub height: f32,
}

impl BoundingBox {
    /// A box from its left, top, right and bottom edges.
    pub fn from_edges(left: f32, top: f32, right: f32, bottom: f32) -> Self {
        Self {
            left,
            top,
            width: (right - left).max(0.0),
            height: (bottom - top).max(0.0),
        }
    }

    /// Right edge.
    pub fn right(&self) -> f32 {
        self.left + self.width
    }

    /// Bottom edge.
    pub fn bottom(&self) -> f32 {
        self.top + self.height
    }

    /// Area in square pixels.
    pub fn area(&self) -> f32 {
        self.width * self.height
    }

    /// The shorter side: what "face size" means for quality checks.
    pub fn min_side(&self) -> f32 {
        self.width.min(self.height)
    }

    /// Centre point.
    pub fn center(&self) -> Point {
        Point::new(self.left + self.width / 2.0, self.top + self.height / 2.0)
    }

    /// This box with every coordinate multiplied by `factor` (mapping
    /// between a resized working copy and the original image).
    pub fn scaled(&self, factor: f32) -> BoundingBox {
        BoundingBox {
            left: self.left * factor,
            top: self.top * factor,
            width: self.width * factor,
            height: self.height * factor,
        }
    }

    /// Intersection over union with another box, in `[0, 1]`.
    pub fn iou(&self, other: &BoundingBox) -> f32 {
        let w = (self.right().min(other.right()) - self.left.max(other.left)).max(0.0);
        let h = (self.bottom().min(other.bottom()) - self.top.max(other.top)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }
}

/// Which five points a [`Landmarks`] holds, in which order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LandmarkScheme {
    /// dlib's 5-point model: the two corners of the eye on the image's left,
    /// the two corners of the eye on the image's right, the base of the nose.
    /// Stored in dlib's own order: points 0–1 one eye, 2–3 the other, 4 nose.
    Dlib5,
    /// The InsightFace/ArcFace convention: eye on the image's left, eye on
    /// the image's right, nose tip, mouth corner on the left, mouth corner on
    /// the right.
    ArcFace5,
}

/// Five facial landmarks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Landmarks {
    /// What the points are.
    pub scheme: LandmarkScheme,
    /// The points, in the scheme's order.
    pub points: [Point; 5],
}

impl Landmarks {
    /// The two eye centres, the one on the image's left first.
    pub fn eye_centers(&self) -> (Point, Point) {
        let p = &self.points;
        let (a, b) = match self.scheme {
            LandmarkScheme::Dlib5 => (p[0].midpoint(p[1]), p[2].midpoint(p[3])),
            LandmarkScheme::ArcFace5 => (p[0], p[1]),
        };
        if a.x <= b.x {
            (a, b)
        } else {
            (b, a)
        }
    }

    /// The distance between the eye centres, pixels: the size measure that
    /// does not depend on how tightly a detector draws its box.
    pub fn eye_distance(&self) -> f32 {
        let (a, b) = self.eye_centers();
        (a.x - b.x).hypot(a.y - b.y)
    }

    /// The nose point.
    pub fn nose(&self) -> Point {
        match self.scheme {
            LandmarkScheme::Dlib5 => self.points[4],
            LandmarkScheme::ArcFace5 => self.points[2],
        }
    }

    /// These landmarks with every point multiplied by `factor`.
    pub fn scaled(&self, factor: f32) -> Landmarks {
        Landmarks {
            scheme: self.scheme,
            points: self.points.map(|p| p.scaled(factor)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_identical_boxes_is_one_and_disjoint_is_zero() {
        let a = BoundingBox::from_edges(0.0, 0.0, 10.0, 10.0);
        let b = BoundingBox::from_edges(20.0, 20.0, 30.0, 30.0);
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
        assert_eq!(a.iou(&b), 0.0);
        let c = BoundingBox::from_edges(5.0, 0.0, 15.0, 10.0);
        assert!((a.iou(&c) - 50.0 / 150.0).abs() < 1e-6);
    }

    #[test]
    fn eye_centers_are_ordered_left_to_right() {
        let lm = Landmarks {
            scheme: LandmarkScheme::Dlib5,
            points: [
                Point::new(80.0, 10.0),
                Point::new(70.0, 10.0),
                Point::new(20.0, 10.0),
                Point::new(30.0, 10.0),
                Point::new(50.0, 40.0),
            ],
        };
        let (l, r) = lm.eye_centers();
        assert_eq!(l, Point::new(25.0, 10.0));
        assert_eq!(r, Point::new(75.0, 10.0));
        assert_eq!(lm.nose(), Point::new(50.0, 40.0));
    }
}
