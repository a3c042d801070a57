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
///
/// Runs once per face on every request, so it is written for speed with
/// the arithmetic of the straightforward version kept exactly (the tests
/// compare it with that version bit for bit): the four neighbours' bounds
/// are checked once per pixel, not per channel; floor and round are done
/// with integer conversions, because `f32::floor`/`round` are calls into
/// libm on baseline x86-64 (no SSE4.1), which made them most of the cost.
pub fn warp_chip(image: &RgbImage, to_chip: &Similarity, size: u32) -> RgbImage {
    let inv = to_chip.inverse();
    let (w, h) = (i64::from(image.width()), i64::from(image.height()));
    let raw = image.as_raw();
    let stride = w as usize * 3;
    let side = size as usize;
    let mut out = vec![0u8; side * side * 3];
    // The offset of pixel (x, y) in `raw`, or None outside the image.
    let at = |x: i64, y: i64| -> Option<usize> {
        (x >= 0 && y >= 0 && x < w && y < h).then(|| ((y * w + x) * 3) as usize)
    };
    let sample = |o: Option<usize>, c: usize| -> f32 { o.map_or(0.0, |o| f32::from(raw[o + c])) };
    for (v, row) in out.chunks_exact_mut(side * 3).enumerate() {
        for (u, o) in row.chunks_exact_mut(3).enumerate() {
            let p = inv.apply(Point::new(u as f32, v as f32));
            let (x0, y0) = (floor(p.x), floor(p.y));
            let (fx, fy) = (p.x - x0 as f32, p.y - y0 as f32);
            // All four neighbours inside, and one byte beyond the right
            // one (read, unused, by the four-lane loads): the common case.
            if x0 >= 0 && y0 >= 0 && x0 + 2 < w && y0 + 1 < h {
                let top = ((y0 * w + x0) * 3) as usize;
                let rgb = lerp4(raw, top, top + stride, fx, fy);
                o.copy_from_slice(&rgb[..3]);
                continue;
            }
            let (p00, p10) = (at(x0, y0), at(x0 + 1, y0));
            let (p01, p11) = (at(x0, y0 + 1), at(x0 + 1, y0 + 1));
            if p00.is_none() && p10.is_none() && p01.is_none() && p11.is_none() {
                continue; // wholly outside: black, as `out` starts
            }
            for (c, o) in o.iter_mut().enumerate() {
                let top = sample(p00, c) * (1.0 - fx) + sample(p10, c) * fx;
                let bottom = sample(p01, c) * (1.0 - fx) + sample(p11, c) * fx;
                *o = round_u8(top * (1.0 - fy) + bottom * fy);
            }
        }
    }
    // The buffer is exactly size × size × 3, so this cannot fail; a black
    // chip would be the only possible fallback.
    RgbImage::from_raw(size, size, out).unwrap_or_else(|| RgbImage::new(size, size))
}

/// Bilinear interpolation of the three channels at once: the pixels at
/// byte offsets `top` and `top + 3` of `raw`, and the two at `bottom` and
/// `bottom + 3`, weighted by `fx` across and `fy` down, rounded to u8 (the
/// fourth lane is a neighbour's byte, computed and thrown away). The same
/// IEEE operations, in the same order, as the scalar formula in
/// [`warp_chip`]'s edge path, so both give identical bytes. Needs 7 bytes
/// readable at `top` and at `bottom`.
#[cfg(target_arch = "x86_64")]
#[inline]
fn lerp4(raw: &[u8], top: usize, bottom: usize, fx: f32, fy: f32) -> [u8; 4] {
    // SAFETY: SSE2 is part of the x86-64 baseline: every x86-64 CPU has it.
    unsafe { lerp4_sse2(raw, top, bottom, fx, fy) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn lerp4_sse2(raw: &[u8], top: usize, bottom: usize, fx: f32, fy: f32) -> [u8; 4] {
    use std::arch::x86_64::*;
    let zero = _mm_setzero_si128();
    let load = |at: usize| {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(&raw[at..at + 4]);
        let v = _mm_cvtsi32_si128(i32::from_le_bytes(bytes));
        _mm_cvtepi32_ps(_mm_unpacklo_epi16(_mm_unpacklo_epi8(v, zero), zero))
    };
    let (wx, fx) = (_mm_set1_ps(1.0 - fx), _mm_set1_ps(fx));
    let (wy, fy) = (_mm_set1_ps(1.0 - fy), _mm_set1_ps(fy));
    let t = _mm_add_ps(_mm_mul_ps(load(top), wx), _mm_mul_ps(load(top + 3), fx));
    let b = _mm_add_ps(
        _mm_mul_ps(load(bottom), wx),
        _mm_mul_ps(load(bottom + 3), fx),
    );
    let v = _mm_add_ps(_mm_mul_ps(t, wy), _mm_mul_ps(b, fy));
    // round_u8, lane-wise: clamp (NaN to 0), truncate, add one where the
    // fraction is at least a half.
    let v = _mm_min_ps(_mm_max_ps(v, _mm_setzero_ps()), _mm_set1_ps(255.0));
    let t = _mm_cvttps_epi32(v);
    let up = _mm_cmpge_ps(_mm_sub_ps(v, _mm_cvtepi32_ps(t)), _mm_set1_ps(0.5));
    let r = _mm_sub_epi32(t, _mm_castps_si128(up)); // the mask is -1
    let r = _mm_packus_epi16(_mm_packs_epi32(r, zero), zero);
    _mm_cvtsi128_si32(r).to_le_bytes()
}

/// The portable form of the x86-64 [`lerp4`].
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn lerp4(raw: &[u8], top: usize, bottom: usize, fx: f32, fy: f32) -> [u8; 4] {
    let mut out = [0u8; 4];
    for (c, o) in out.iter_mut().enumerate() {
        let s = |at: usize| f32::from(raw[at + c]);
        let t = s(top) * (1.0 - fx) + s(top + 3) * fx;
        let b = s(bottom) * (1.0 - fx) + s(bottom + 3) * fx;
        *o = round_u8(t * (1.0 - fy) + b * fy);
    }
    out
}

/// `x.floor()` as an integer, without libm: exact for |x| < 2⁶³ (beyond,
/// and for NaN, it saturates as `f32::floor(x) as i64` does).
#[inline]
fn floor(x: f32) -> i64 {
    let t = x as i64; // truncates toward zero
    if (t as f32) > x {
        t - 1
    } else {
        t
    }
}

/// `x.round().clamp(0.0, 255.0) as u8` (round half away from zero), without
/// libm. After clamping, `x` is in [0, 255], where `x - trunc(x)` is exact.
#[inline]
fn round_u8(x: f32) -> u8 {
    // A NaN stays NaN, converts to 0 and is never >= 0.5: 0, as before.
    let x = x.clamp(0.0, 255.0);
    let t = x as u8;
    t + u8::from(x - f32::from(t) >= 0.5)
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

    /// The straightforward warp the fast one must equal bit for bit.
    fn reference_warp(image: &RgbImage, to_chip: &Similarity, size: u32) -> RgbImage {
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

    #[test]
    fn fast_warp_equals_the_reference_bit_for_bit() {
        // A textured image (every value 0..=255 occurs) and transforms that
        // shrink, enlarge, rotate and run off every edge.
        let img = RgbImage::from_fn(257, 190, |x, y| {
            image::Rgb([
                (x * 7 + y * 3) as u8,
                (x ^ y) as u8,
                ((x * x + y * 5) % 256) as u8,
            ])
        });
        for (scale, angle, tx, ty) in [
            (0.5f32, 0.0f32, 0.0f32, 0.0f32),
            (0.37, 0.2, -10.5, 3.25),
            (1.7, -0.6, -40.0, -80.0),
            (0.9, 3.0, 150.0, 120.0),
            (0.25, 1.1, 60.0, -20.0),
            (2.0, 0.05, -300.0, -200.0),
        ] {
            let t = Similarity {
                a: scale * angle.cos(),
                b: scale * angle.sin(),
                tx,
                ty,
            };
            for size in [112, 96] {
                assert_eq!(
                    warp_chip(&img, &t, size),
                    reference_warp(&img, &t, size),
                    "scale {scale}, angle {angle}, t ({tx}, {ty}), size {size}"
                );
            }
        }
    }

    #[test]
    fn integer_floor_and_round_match_libm() {
        for i in -40_000..40_000 {
            let x = i as f32 * 0.0137 - 0.5;
            assert_eq!(floor(x), x.floor() as i64, "floor {x}");
            assert_eq!(round_u8(x), x.round().clamp(0.0, 255.0) as u8, "round {x}");
        }
        for x in [
            0.5f32,
            1.5,
            254.5,
            255.49,
            255.5,
            300.0,
            -0.49,
            -0.5,
            f32::NAN,
        ] {
            assert_eq!(round_u8(x), x.round().clamp(0.0, 255.0) as u8, "round {x}");
        }
        assert_eq!(round_u8(0.499_999_97), 0);
    }

    #[test]
    fn template_scales_with_chip_size() {
        let t = arcface_template(224);
        assert!(close(t[0], Point::new(38.2946 * 2.0, 51.6963 * 2.0)));
    }
}
