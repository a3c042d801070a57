//! Face alignment: a similarity transform of five landmarks onto a
//! template, and the warp that cuts the aligned face chip out of an image.
//!
//! ArcFace-family embedders were trained on faces warped so that the eyes,
//! nose tip and mouth corners land on fixed points of a 112×112 chip; an
//! embedding is only as good as this alignment. The transform is a
//! *similarity* (scale, rotation, translation; no shear, no mirror), fitted
//! by least squares to all five points, so one badly placed landmark moves
//! the chip a little rather than distorting it. Pure Rust and backend-free,
//! so it is tested here without any model.

use image::RgbImage;

use crate::geometry::Point;

/// The standard ArcFace 5-point template for a 112×112 chip: eye on the
/// image's left, eye on the image's right, nose tip, mouth corner on the
/// left, mouth corner on the right (InsightFace's `arcface_dst`).
pub const ARCFACE_TEMPLATE_112: [Point; 5] = [
    Point {
        x: 38.2946,
        y: 51.6963,
    },
    Point {
        x: 73.5318,
        y: 51.5014,
    },
    Point {
        x: 56.0252,
        y: 71.7366,
    },
    Point {
        x: 41.5493,
        y: 92.3655,
    },
    Point {
        x: 70.7299,
        y: 92.2041,
    },
];

/// The template for a square chip of side `size` (the 112 template scaled).
pub fn arcface_template(size: u32) -> [Point; 5] {
    let f = size as f32 / 112.0;
    ARCFACE_TEMPLATE_112.map(|p| p.scaled(f))
}

/// A 2-D similarity transform `p ↦ [a −b; b a]·p + t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    /// `scale · cos θ`.
    pub a: f32,
    /// `scale · sin θ`.
    pub b: f32,
    /// Translation, x.
    pub tx: f32,
    /// Translation, y.
    pub ty: f32,
}

impl Similarity {
    /// The least-squares similarity mapping `src[i]` onto `dst[i]`
    /// (Umeyama's method restricted to proper rotations). `None` when the
    /// source points are all the same point (no scale can be fitted).
    pub fn estimate(src: &[Point], dst: &[Point]) -> Option<Similarity> {
        let n = src.len().min(dst.len());
        if n < 2 {
            return None;
        }
        let nf = n as f64;
        let mean = |ps: &[Point]| {
            let (sx, sy) = ps[..n].iter().fold((0.0f64, 0.0f64), |(x, y), p| {
                (x + f64::from(p.x), y + f64::from(p.y))
            });
            (sx / nf, sy / nf)
        };
        let (msx, msy) = mean(src);
        let (mdx, mdy) = mean(dst);
        let (mut dot, mut cross, mut norm) = (0.0f64, 0.0f64, 0.0f64);
        for (s, d) in src[..n].iter().zip(&dst[..n]) {
            let (sx, sy) = (f64::from(s.x) - msx, f64::from(s.y) - msy);
            let (dx, dy) = (f64::from(d.x) - mdx, f64::from(d.y) - mdy);
            dot += sx * dx + sy * dy;
            cross += sx * dy - sy * dx;
            norm += sx * sx + sy * sy;
        }
        if norm <= f64::EPSILON {
            return None;
        }
        let a = dot / norm;
        let b = cross / norm;
        let tx = mdx - (a * msx - b * msy);
        let ty = mdy - (b * msx + a * msy);
        let t = Similarity {
            a: a as f32,
            b: b as f32,
            tx: tx as f32,
            ty: ty as f32,
        };
        (t.scale() > 0.0 && t.scale().is_finite()).then_some(t)
    }

    /// The image of `p`.
    pub fn apply(&self, p: Point) -> Point {
        Point::new(
            self.a * p.x - self.b * p.y + self.tx,
            self.b * p.x + self.a * p.y + self.ty,
        )
    }

    /// The scale factor.
    pub fn scale(&self) -> f32 {
        self.a.hypot(self.b)
    }

    /// The inverse transform. Only called on an estimated transform, whose
    /// scale is positive.
    pub fn inverse(&self) -> Similarity {
        let s2 = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / s2, -self.b / s2);
        Similarity {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        }
    }
}

/// Cuts the `size`×`size` chip that `to_chip` maps `image` onto, with
/// bilinear sampling; chip pixels whose source lies outside the image are
/// black (as OpenCV's `warpAffine` with a constant border, which the
/// ArcFace models were trained with). Pixel `(u, v)` of the chip samples
/// `to_chip⁻¹(u, v)` in integer pixel coordinates, the convention the
/// template points use.
pub fn warp_chip(image: &RgbImage, to_chip: &Similarity, size: u32) -> RgbImage {
    let inv = to_chip.inverse();
    let (w, h) = (image.width() as i64, image.height() as i64);
    let raw = image.as_raw();
    let px = |x: i64, y: i64, c: usize| -> f32 {
        if x < 0 || y < 0 || x >= w || y >= h {
            0.0
        } else {
            f32::from(raw[((y * w + x) * 3) as usize + c])
        }
    };
    RgbImage::from_fn(size, size, |u, v| {
        let p = inv.apply(Point::new(u as f32, v as f32));
        let (x0, y0) = (p.x.floor(), p.y.floor());
        let (fx, fy) = (p.x - x0, p.y - y0);
        let (x0, y0) = (x0 as i64, y0 as i64);
        let mut out = [0u8; 3];
        for (c, o) in out.iter_mut().enumerate() {
            let top = px(x0, y0, c) * (1.0 - fx) + px(x0 + 1, y0, c) * fx;
            let bottom = px(x0, y0 + 1, c) * (1.0 - fx) + px(x0 + 1, y0 + 1, c) * fx;
            *o = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
        }
        image::Rgb(out)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn close(a: Point, b: Point) -> bool {
        (a.x - b.x).abs() < 1e-3 && (a.y - b.y).abs() < 1e-3
    }

    #[test]
    fn recovers_a_known_similarity_exactly() {
        let truth = Similarity {
            a: 0.8 * 0.3f32.cos(),
            b: 0.8 * 0.3f32.sin(),
            tx: 12.0,
            ty: -7.5,
        };
        let src = [
            Point::new(100.0, 120.0),
            Point::new(160.0, 118.0),
            Point::new(131.0, 150.0),
            Point::new(108.0, 182.0),
            Point::new(155.0, 181.0),
        ];
        let dst = src.map(|p| truth.apply(p));
        let t = Similarity::estimate(&src, &dst).unwrap();
        for (s, d) in src.iter().zip(&dst) {
            assert!(close(t.apply(*s), *d), "{:?} vs {:?}", t.apply(*s), d);
        }
        assert!((t.scale() - 0.8).abs() < 1e-4);
        let back = t.inverse();
        for s in &src {
            assert!(close(back.apply(t.apply(*s)), *s));
        }
    }

    #[test]
    fn degenerate_points_have_no_transform() {
        let p = [Point::new(5.0, 5.0); 5];
        assert!(Similarity::estimate(&p, &ARCFACE_TEMPLATE_112).is_none());
        assert!(Similarity::estimate(&p[..1], &ARCFACE_TEMPLATE_112[..1]).is_none());
    }

    #[test]
    fn warp_moves_landmarks_onto_the_template() {
        // Paint five bright dots at scaled, shifted template positions; the
        // warp must bring each dot onto its template point in the chip.
        let src = ARCFACE_TEMPLATE_112.map(|p| Point::new(p.x * 2.0 + 40.0, p.y * 2.0 + 30.0));
        let mut img = RgbImage::new(320, 320);
        for p in &src {
            for dy in -2..=2 {
                for dx in -2..=2 {
                    let (x, y) = (
                        (p.x.round() as i32 + dx) as u32,
                        (p.y.round() as i32 + dy) as u32,
                    );
                    img.put_pixel(x, y, image::Rgb([255, 255, 255]));
                }
            }
        }
        let t = Similarity::estimate(&src, &ARCFACE_TEMPLATE_112).unwrap();
        assert!((t.scale() - 0.5).abs() < 1e-4);
        let chip = warp_chip(&img, &t, 112);
        for p in ARCFACE_TEMPLATE_112 {
            let v = chip.get_pixel(p.x.round() as u32, p.y.round() as u32).0[0];
            assert!(v > 200, "template point {p:?} is {v}");
        }
        // A corner far from every dot stays dark; outside the image is black.
        assert_eq!(chip.get_pixel(0, 0).0, [0, 0, 0]);
    }

    #[test]
    fn template_scales_with_chip_size() {
        let t = arcface_template(224);
        assert!(close(t[0], Point::new(38.2946 * 2.0, 51.6963 * 2.0)));
    }
}
