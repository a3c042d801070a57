//! Thresholds and confidence for the active model.
//!
//! A threshold is only meaningful with the false-match rate it buys, so
//! thresholds come from a calibration measured on LFW (`config/calibration`):
//! verification (1:1) uses the FMR ≤ 1e-4 threshold; identification (1:N)
//! a stricter one chosen for a false-positive identification rate ≤ 1% at
//! the expected gallery size, because a stranger compared against N people
//! gets N chances to match someone. Confidence is reported as a band and
//! as a number: one minus the estimated chance that a stranger comes this
//! close (times the gallery size for identification).

use face_core::calibration::{per_comparison_fmr, Calibration, IdentificationMethod};
use serde::{Deserialize, Serialize};

use crate::domain::Threshold;

/// How sure a match is, from its distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    /// Under the high-confidence distance (FMR ≤ 1e-5 as shipped).
    High,
    /// Under the medium distance (FMR ≤ 1e-4 as shipped).
    Medium,
    /// A match under the threshold in force, but in neither band above.
    Low,
    /// At or above the threshold in force: not a match.
    NoMatch,
}

impl Band {
    /// The band's name as the API reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            Band::High => "high",
            Band::Medium => "medium",
            Band::Low => "low",
            Band::NoMatch => "no_match",
        }
    }
}

/// An identification threshold for `gallery_size`: a measured row of the
/// calibration when there is one, else the strictest operating point that
/// keeps `1 − (1 − FMR)^N ≤ fpir`.
fn identify_threshold_for(cal: &Calibration, gallery_size: u32, fpir: f64) -> Option<f32> {
    if let Some(row) = cal.identification.iter().find(|r| {
        r.method == IdentificationMethod::Measured
            && r.gallery_size == gallery_size
            && r.target_fpir == fpir
    }) {
        return Some(row.threshold);
    }
    let fmr = per_comparison_fmr(fpir, gallery_size);
    cal.operating_points
        .iter()
        .filter(|p| p.fmr <= fmr)
        .map(|p| p.threshold)
        .max_by(f32::total_cmp)
}

/// One measured point of the false-match curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FmrPoint {
    /// Distance threshold.
    pub threshold: f32,
    /// Fraction of different-person pairs at or under it.
    pub fmr: f64,
    /// Fraction of same-person pairs over it, when measured.
    pub fnmr: Option<f64>,
}

/// The thresholds in force and where they came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Thresholds {
    /// Default for 1:1 verification.
    pub verify: f32,
    /// Default for 1:N identification.
    pub identify: f32,
    /// Gallery size the identify default was chosen for.
    pub identify_gallery_size: usize,
    /// Upper distance of the `high` band.
    pub high: f32,
    /// Upper distance of the `medium` band.
    pub medium: f32,
    /// Enrolment refuses a face this close to another user's.
    pub duplicate: f32,
    /// Measured false-match curve, ascending by threshold (may be empty).
    pub curve: Vec<FmrPoint>,
    /// Where these numbers come from, for `/stats/` and logs.
    pub source: String,
}

impl Thresholds {
    /// The uncalibrated fallback for dlib's ResNet: dlib's published
    /// Euclidean 0.6 for everything, no confidence bands. Used only when no
    /// calibration file exists for the model, and reported as such.
    pub fn dlib_published() -> Self {
        Self {
            verify: 0.6,
            identify: 0.6,
            identify_gallery_size: 0,
            high: 0.6,
            medium: 0.6,
            duplicate: 0.6,
            curve: Vec::new(),
            source: "dlib's published threshold 0.6 (uncalibrated)".into(),
        }
    }

    /// Thresholds from a model's calibration. The identify default is
    /// chosen for FPIR ≤ 1% at `expected_gallery_size` (a stranger searched
    /// against N people has N chances to match someone).
    pub fn from_calibration(cal: &Calibration, expected_gallery_size: u32, source: String) -> Self {
        let t = &cal.thresholds;
        let identify = identify_threshold_for(cal, expected_gallery_size, t.identify_fpir)
            .unwrap_or(t.identify);
        let mut curve: Vec<FmrPoint> = cal
            .operating_points
            .iter()
            .map(|p| FmrPoint {
                threshold: p.threshold,
                fmr: p.fmr,
                fnmr: Some(p.fnmr),
            })
            .collect();
        curve.sort_by(|a, b| a.threshold.total_cmp(&b.threshold));
        Self {
            verify: t.verify,
            identify,
            identify_gallery_size: expected_gallery_size as usize,
            high: t.high,
            medium: t.medium,
            // Enrolment refuses a face under the FMR 1e-5 distance of
            // someone else: one stranger pair in 100,000 comes that close.
            duplicate: t.high,
            curve,
            source,
        }
    }

    /// The verify default as a validated threshold.
    pub fn verify_threshold(&self) -> Threshold {
        Threshold::trusted(self.verify)
    }

    /// The identify default as a validated threshold.
    pub fn identify_threshold(&self) -> Threshold {
        Threshold::trusted(self.identify)
    }

    /// Whether `distance` matches under `threshold`: strictly under, as in
    /// the calibration (NaN never matches).
    pub fn matches(distance: f32, threshold: Threshold) -> bool {
        distance < threshold.value()
    }

    /// The band of a distance judged against `threshold`.
    pub fn band(&self, distance: f32, threshold: Threshold) -> Band {
        if !Self::matches(distance, threshold) {
            Band::NoMatch
        } else if distance < self.high {
            Band::High
        } else if distance < self.medium {
            Band::Medium
        } else {
            Band::Low
        }
    }

    /// Estimated false-match rate at `distance`: log-linear interpolation
    /// of the measured curve, clamped to its ends. `None` without a curve.
    pub fn fmr_at(&self, distance: f32) -> Option<f64> {
        let c = &self.curve;
        let first = c.first()?;
        let last = c.last()?;
        if distance <= first.threshold {
            return Some(first.fmr);
        }
        if distance >= last.threshold {
            return Some(last.fmr);
        }
        let i = c.iter().position(|p| p.threshold >= distance)?;
        let (a, b) = (c[i - 1], c[i]);
        let t = f64::from((distance - a.threshold) / (b.threshold - a.threshold));
        let (la, lb) = (a.fmr.max(1e-12).ln(), b.fmr.max(1e-12).ln());
        Some((la + t * (lb - la)).exp())
    }

    /// Confidence in `[0, 1]` that a match at `distance` is the right person
    /// among `comparisons` candidates (1 for verification, the gallery size
    /// for identification): `1 − comparisons × FMR(distance)`. Without a
    /// calibration curve, a plain linear score `1 − distance / (2 × verify)`.
    pub fn confidence(&self, distance: f32, comparisons: usize) -> f32 {
        let c = match self.fmr_at(distance) {
            Some(fmr) => 1.0 - (fmr * comparisons.max(1) as f64).min(1.0),
            None => f64::from(1.0 - distance / (2.0 * self.verify)),
        };
        (c.clamp(0.0, 1.0) * 1e4).round() as f32 / 1e4
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use face_core::Metric;

    fn calibrated() -> Thresholds {
        Thresholds {
            verify: 0.5,
            identify: 0.42,
            identify_gallery_size: 5000,
            high: 0.42,
            medium: 0.5,
            duplicate: 0.42,
            curve: vec![
                FmrPoint {
                    threshold: 0.42,
                    fmr: 1e-5,
                    fnmr: None,
                },
                FmrPoint {
                    threshold: 0.5,
                    fmr: 1e-4,
                    fnmr: None,
                },
                FmrPoint {
                    threshold: 0.55,
                    fmr: 1e-3,
                    fnmr: None,
                },
            ],
            source: "test".into(),
        }
    }

    #[test]
    fn bands_follow_the_calibrated_thresholds() {
        let t = calibrated();
        let loose = Threshold::parse(0.6, Metric::Euclidean).unwrap();
        assert_eq!(t.band(0.3, loose), Band::High);
        assert_eq!(t.band(0.45, loose), Band::Medium);
        assert_eq!(t.band(0.55, loose), Band::Low);
        assert_eq!(t.band(0.65, loose), Band::NoMatch);
        assert_eq!(
            t.band(0.6, loose),
            Band::NoMatch,
            "the threshold itself is not a match"
        );
    }

    #[test]
    fn fmr_interpolates_log_linearly_and_confidence_scales_with_gallery() {
        let t = calibrated();
        let mid = t.fmr_at(0.46).unwrap();
        assert!((mid - 10f64.powf(-4.5)).abs() / mid < 1e-3, "{mid}");
        assert_eq!(t.fmr_at(0.1), Some(1e-5));
        assert!((t.confidence(0.5, 1) - 0.9999).abs() < 1e-6);
        // The same distance against 5,000 people: 0.5 chance a stranger
        // somewhere is this close.
        assert!((t.confidence(0.5, 5000) - 0.5).abs() < 1e-6);
    }
}
