//! The decision policy: which distance decides a verification, an
//! identification or a duplicate check, for how many comparisons, and what
//! a match's distance means.
//!
//! A threshold is only meaningful with the false-match rate it buys, and a
//! false-match rate only with the number of comparisons it is paid on. The
//! calibration file (`config/calibration/<model_id>.json`, read by
//! face-core) measured the per-comparison FMR at a grid of distances on LFW.
//! This module turns that curve into decisions:
//!
//! - **verify** (1:1) compares the probe with each of the claimed user's T
//!   templates and accepts the closest, so a stranger has T chances: the
//!   threshold is chosen for a per-*decision* FMR of 1e-4 (the file's
//!   `verify_fmr`), i.e. a per-comparison FMR of `1 − (1 − 1e-4)^(1/T)`. A
//!   user with ten templates is judged at a stricter distance than a user
//!   with one.
//! - **identify** (1:N) compares the probe with every template of the active
//!   model: N comparisons, where N is the template count (cached a few
//!   seconds) but never below `thresholds.expected_gallery_size`. The
//!   threshold keeps the false-positive identification rate at the file's
//!   `identify_fpir` (1 %): per-comparison FMR `1 − (1 − 0.01)^(1/N)`.
//! - **duplicate** (the enrolment check "is this face already someone?") is
//!   an identification against the same gallery and uses the same threshold.
//!
//! The threshold for a per-comparison FMR is read off the measured curve by
//! interpolating log FMR linearly in distance between measured points, so it
//! is monotonic in N and exact at every measured point. Below the strictest
//! measured FMR (about 10,000 comparisons at 1 % FPIR for a curve measured
//! to 1e-6) the last measured decade is extended and the threshold is marked
//! *extrapolated*: the server still starts, warns, and `/stats/` says so.
//!
//! Matches are reported honestly: the per-comparison FMR at the match's
//! distance and the expected number of false matches among the comparisons
//! made, both from the same curve (at the strict end its FMR is an upper
//! bound; beyond the loose end, reachable only with an administrator's
//! looser threshold, nothing is reported).
//!
//! The rule everywhere is *match when `distance < threshold`* (strictly
//! under), as in the calibration.

use face_core::calibration::{per_comparison_fmr, Calibration};
use serde::{Deserialize, Serialize};

use crate::domain::Threshold;

/// How sure a match is, from its distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    /// Under the high-confidence distance (per-comparison FMR ≤ 1e-5 as
    /// shipped).
    High,
    /// Under the medium distance (per-comparison FMR ≤ 1e-4 as shipped).
    Medium,
    /// A match under the threshold in force, but in neither band above
    /// (an administrator's looser threshold).
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

    /// Whether the distance was accepted as a match.
    pub fn is_match(self) -> bool {
        !matches!(self, Band::NoMatch)
    }
}

/// One measured point of the false-match curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FmrPoint {
    /// Distance threshold.
    pub threshold: f32,
    /// Fraction of different-person pairs under it.
    pub fmr: f64,
    /// Fraction of same-person pairs at or over it, when measured.
    pub fnmr: Option<f64>,
}

/// A decision threshold chosen for a number of comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DecisionThreshold {
    /// The distance: a match is strictly under it.
    pub threshold: f32,
    /// The comparisons it was chosen for (templates of the user for verify;
    /// templates in the gallery, at least the expected gallery size, for
    /// identify).
    pub comparisons: u64,
    /// The per-comparison FMR it was read off the curve at (`None`
    /// uncalibrated).
    pub fmr_per_comparison: Option<f64>,
    /// Whether the FMR lies beyond the strictest measured point, so the
    /// threshold comes from extending the curve's last measured decade.
    pub extrapolated: bool,
}

impl DecisionThreshold {
    /// As a validated threshold.
    pub fn as_threshold(&self) -> Threshold {
        Threshold::trusted(self.threshold)
    }
}

/// What a match's distance means, measured: `None` fields when uncalibrated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MatchEvidence {
    /// The per-comparison FMR at the distance: the share of stranger pairs
    /// measured this close (at most this, at the curve's strict end; `None`
    /// beyond its loose end, where nothing bounds it).
    pub fmr: Option<f64>,
    /// `comparisons × fmr`: how many false matches this close one would
    /// expect among the comparisons made.
    pub expected_false_matches: Option<f64>,
}

impl MatchEvidence {
    /// No match: nothing to report.
    pub fn none() -> Self {
        Self {
            fmr: None,
            expected_false_matches: None,
        }
    }
}

/// The thresholds in force, for `/stats/` and logs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdReport {
    /// Whether the thresholds come from a calibration file.
    pub calibrated: bool,
    /// Where the numbers come from.
    pub source: String,
    /// Verify threshold for a user with one template.
    pub verify: f32,
    /// The per-decision FMR verify is chosen for.
    pub verify_fmr: Option<f64>,
    /// Identify threshold for the current gallery.
    pub identify: DecisionThreshold,
    /// The FPIR identify is chosen for.
    pub identify_fpir: Option<f64>,
    /// Identify never assumes fewer comparisons than this.
    pub expected_gallery_size: u64,
    /// The most comparisons an identification can make before its
    /// threshold is extrapolated (`None` uncalibrated).
    pub measured_comparisons_limit: Option<u64>,
    /// Duplicate-enrolment threshold for the current gallery.
    pub duplicate: DecisionThreshold,
    /// Upper distance of the `high` band.
    pub high: f32,
    /// Upper distance of the `medium` band.
    pub medium: f32,
    /// The measured curve, ascending by threshold.
    pub curve: Vec<FmrPoint>,
}

/// The decision policy of the active model.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Measured points, strictly ascending in threshold and FMR; at least
    /// two when calibrated, empty when not.
    curve: Vec<FmrPoint>,
    /// Per-decision FMR for verification.
    verify_fmr: f64,
    /// FPIR for identification and duplicates.
    identify_fpir: f64,
    high: f32,
    medium: f32,
    expected_gallery_size: u64,
    /// The one threshold used for everything when uncalibrated.
    uncalibrated: Option<f32>,
    source: String,
}

impl Thresholds {
    /// dlib's published Euclidean 0.6 for every decision, no curve, no
    /// bands: only with `thresholds.allow_uncalibrated = true`, and reported
    /// as uncalibrated. dlib's 0.6 measured FMR 6e-3 per comparison on LFW:
    /// against 5,000 people nearly every stranger matches someone.
    pub fn dlib_published(expected_gallery_size: u64) -> Self {
        Self {
            curve: Vec::new(),
            verify_fmr: 0.0,
            identify_fpir: 0.0,
            high: 0.6,
            medium: 0.6,
            expected_gallery_size: expected_gallery_size.max(1),
            uncalibrated: Some(0.6),
            source: "UNCALIBRATED: dlib's published threshold 0.6 (thresholds.allow_uncalibrated)"
                .into(),
        }
    }

    /// The policy from a model's calibration. Fails when the file has
    /// fewer than two usable operating points (a curve needs two to be
    /// read between or beyond).
    pub fn from_calibration(
        cal: &Calibration,
        expected_gallery_size: u64,
        source: String,
    ) -> Result<Self, String> {
        let mut points: Vec<FmrPoint> = cal
            .operating_points
            .iter()
            .filter(|p| p.fmr > 0.0 && p.threshold > 0.0)
            .map(|p| FmrPoint {
                threshold: p.threshold,
                fmr: p.fmr,
                fnmr: Some(p.fnmr),
            })
            .collect();
        points.sort_by(|a, b| a.threshold.total_cmp(&b.threshold));
        // Keep a strictly increasing curve, so it can be inverted.
        let mut curve: Vec<FmrPoint> = Vec::with_capacity(points.len());
        for p in points {
            match curve.last() {
                Some(q) if p.threshold <= q.threshold || p.fmr <= q.fmr => {}
                _ => curve.push(p),
            }
        }
        if curve.len() < 2 {
            return Err(format!(
                "calibration for {} has {} usable operating point(s); at least two are needed",
                cal.model_id,
                curve.len()
            ));
        }
        let t = &cal.thresholds;
        Ok(Self {
            curve,
            verify_fmr: t.verify_fmr,
            identify_fpir: t.identify_fpir,
            high: t.high,
            medium: t.medium,
            expected_gallery_size: expected_gallery_size.max(1),
            uncalibrated: None,
            source,
        })
    }

    /// Whether the thresholds come from a calibration.
    pub fn is_calibrated(&self) -> bool {
        self.uncalibrated.is_none()
    }

    /// Where the numbers come from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Identification never assumes fewer comparisons than this.
    pub fn expected_gallery_size(&self) -> u64 {
        self.expected_gallery_size
    }

    /// The distance at which the curve's per-comparison FMR is `fmr`, and
    /// whether it lies beyond the measured points (then the nearest measured
    /// decade is extended). Log FMR is interpolated linearly in distance.
    fn distance_at_fmr(&self, fmr: f64) -> (f32, bool) {
        let c = &self.curve;
        let y = fmr.max(f64::MIN_POSITIVE).ln();
        let n = c.len();
        let (i, extrapolated) = if y < c[0].fmr.ln() {
            (0, true)
        } else if y > c[n - 1].fmr.ln() {
            (n - 2, true)
        } else {
            let i = (0..n - 1)
                .find(|&i| y <= c[i + 1].fmr.ln())
                .unwrap_or(n - 2);
            (i, false)
        };
        let (a, b) = (c[i], c[i + 1]);
        let (ya, yb) = (a.fmr.ln(), b.fmr.ln());
        let t = (y - ya) / (yb - ya);
        let d = f64::from(a.threshold) + t * f64::from(b.threshold - a.threshold);
        ((d.max(0.0)) as f32, extrapolated)
    }

    fn decision(&self, fmr_per_comparison: f64, comparisons: u64) -> DecisionThreshold {
        match self.uncalibrated {
            Some(t) => DecisionThreshold {
                threshold: t,
                comparisons,
                fmr_per_comparison: None,
                extrapolated: false,
            },
            None => {
                let (threshold, extrapolated) = self.distance_at_fmr(fmr_per_comparison);
                DecisionThreshold {
                    threshold,
                    comparisons,
                    fmr_per_comparison: Some(fmr_per_comparison),
                    extrapolated,
                }
            }
        }
    }

    /// The verify threshold for a user with `templates` templates of the
    /// active model (per-decision FMR `verify_fmr`).
    pub fn verify(&self, templates: u64) -> DecisionThreshold {
        let t = templates.max(1);
        self.decision(per_comparison_fmr(self.verify_fmr, saturate(t)), t)
    }

    /// The identify threshold for a gallery of `templates` templates of the
    /// active model (at least `expected_gallery_size` comparisons).
    pub fn identify(&self, templates: u64) -> DecisionThreshold {
        let n = templates.max(self.expected_gallery_size);
        self.decision(per_comparison_fmr(self.identify_fpir, saturate(n)), n)
    }

    /// The duplicate-enrolment threshold: the identify threshold of the same
    /// gallery (a new face that would be identified as someone else is that
    /// someone, as far as identification can tell).
    pub fn duplicate(&self, templates: u64) -> DecisionThreshold {
        self.identify(templates)
    }

    /// The most comparisons an identification can make with its threshold
    /// still inside the measured curve; `None` uncalibrated.
    pub fn measured_comparisons_limit(&self) -> Option<u64> {
        if !self.is_calibrated() {
            return None;
        }
        let strictest = self.curve[0].fmr;
        // per_comparison_fmr(fpir, N) ≥ strictest ⇔ N ≤ ln(1 − fpir) / ln(1 − strictest).
        let n = (-self.identify_fpir).ln_1p() / (-strictest).ln_1p();
        Some(n.floor().max(1.0) as u64)
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
        } else if self.uncalibrated.is_some() {
            Band::Low
        } else if distance < self.high {
            Band::High
        } else if distance < self.medium {
            Band::Medium
        } else {
            Band::Low
        }
    }

    /// Per-comparison FMR at `distance`: the curve interpolated log-linearly.
    /// Closer than the strictest measured point it is that point's FMR (an
    /// upper bound); beyond the loosest point nothing was measured that
    /// would bound it, so `None`, as uncalibrated.
    pub fn fmr_at(&self, distance: f32) -> Option<f64> {
        let c = &self.curve;
        let first = c.first()?;
        let last = c.last()?;
        if distance <= first.threshold {
            return Some(first.fmr);
        }
        if distance > last.threshold || distance.is_nan() {
            return None;
        }
        let i = c.iter().position(|p| p.threshold >= distance)?;
        let (a, b) = (c[i - 1], c[i]);
        let t = f64::from((distance - a.threshold) / (b.threshold - a.threshold));
        let (la, lb) = (a.fmr.ln(), b.fmr.ln());
        Some((la + t * (lb - la)).exp())
    }

    /// What a match at `distance` after `comparisons` comparisons means.
    pub fn evidence(&self, distance: f32, comparisons: u64) -> MatchEvidence {
        let fmr = self.fmr_at(distance);
        MatchEvidence {
            fmr,
            expected_false_matches: fmr.map(|f| f * comparisons.max(1) as f64),
        }
    }

    /// The thresholds in force with `gallery_templates` templates of the
    /// active model enrolled.
    pub fn report(&self, gallery_templates: u64) -> ThresholdReport {
        let calibrated = self.is_calibrated();
        ThresholdReport {
            calibrated,
            source: self.source.clone(),
            verify: self.verify(1).threshold,
            verify_fmr: calibrated.then_some(self.verify_fmr),
            identify: self.identify(gallery_templates),
            identify_fpir: calibrated.then_some(self.identify_fpir),
            expected_gallery_size: self.expected_gallery_size,
            measured_comparisons_limit: self.measured_comparisons_limit(),
            duplicate: self.duplicate(gallery_templates),
            high: self.high,
            medium: self.medium,
            curve: self.curve.clone(),
        }
    }
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use face_core::calibration::{Evidence, OperatingPoint, SCHEMA_VERSION};
    use face_core::Metric;

    fn calibration() -> Calibration {
        let point = |target_fmr: f64, threshold: f32| OperatingPoint {
            target_fmr,
            threshold,
            fmr: target_fmr,
            fnmr: 0.1,
        };
        Calibration {
            schema_version: SCHEMA_VERSION,
            model_id: "m".into(),
            metric: Metric::Euclidean,
            pipeline: face_core::calibration::PipelineFingerprint {
                embedder: "e".into(),
                detector: "d".into(),
                detector_input: "i".into(),
                normalisation: "n".into(),
            },
            thresholds: face_core::calibration::Thresholds {
                verify: 0.5,
                verify_fmr: 1e-4,
                high: 0.42,
                high_fmr: 1e-5,
                medium: 0.5,
                medium_fmr: 1e-4,
                identify: 0.4,
                identify_fpir: 0.01,
                identify_gallery_size: 5000,
            },
            operating_points: vec![point(1e-6, 0.36), point(1e-5, 0.42), point(1e-4, 0.5)],
            identification: vec![],
            evidence: Evidence::default(),
        }
    }

    fn policy(expected: u64) -> Thresholds {
        Thresholds::from_calibration(&calibration(), expected, "test".into()).unwrap()
    }

    #[test]
    fn bands_follow_the_calibrated_distances() {
        let t = policy(1);
        let loose = Threshold::parse(0.6, Metric::Euclidean).unwrap();
        assert_eq!(t.band(0.3, loose), Band::High);
        assert_eq!(t.band(0.45, loose), Band::Medium);
        assert_eq!(t.band(0.55, loose), Band::Low);
        assert_eq!(t.band(0.65, loose), Band::NoMatch);
        assert_eq!(
            t.band(0.6, loose),
            Band::NoMatch,
            "the threshold is not a match"
        );
        assert_eq!(t.band(f32::NAN, loose), Band::NoMatch);
    }

    #[test]
    fn measured_points_are_exact_and_between_them_log_fmr_is_linear() {
        let t = policy(1);
        assert!((t.verify(1).threshold - 0.5).abs() < 1e-6);
        assert!(!t.verify(1).extrapolated);
        // Ten templates: ten chances, so FMR 1e-5 per comparison.
        let ten = t.verify(10);
        assert!((ten.threshold - 0.42).abs() < 1e-4, "{ten:?}");
        assert!(ten.threshold < t.verify(1).threshold);
        // Halfway in log FMR is halfway in distance.
        let (d, x) = t.distance_at_fmr(10f64.powf(-4.5));
        assert!((d - 0.46).abs() < 1e-5 && !x);
        let mid = t.fmr_at(0.46).unwrap();
        assert!((mid - 10f64.powf(-4.5)).abs() / mid < 1e-3, "{mid}");
        assert_eq!(
            t.fmr_at(0.1),
            Some(1e-6),
            "an upper bound at the strict end"
        );
        assert!((t.fmr_at(0.5).unwrap() - 1e-4).abs() < 1e-12);
        assert_eq!(
            t.fmr_at(0.51),
            None,
            "nothing bounds it beyond the loose end"
        );
    }

    #[test]
    fn identify_is_monotonic_in_n_and_flags_extrapolation() {
        let t = policy(1000);
        let limit = t.measured_comparisons_limit().unwrap();
        assert!((10_000..10_100).contains(&limit), "{limit}");
        let mut last = f32::INFINITY;
        for n in [1, 1000, 2000, 5000, 10_000, 20_000, 100_000, 1_000_000] {
            let d = t.identify(n);
            assert!(d.threshold <= last, "{n}: {d:?}");
            assert_eq!(d.extrapolated, d.comparisons > limit, "{n}: {d:?}");
            assert!(d.comparisons >= 1000);
            last = d.threshold;
        }
        // Extrapolation extends the last decade: 0.06 per decade here.
        let big = t.identify(1_000_000).threshold;
        assert!((big - (0.36 - 2.0 * 0.06)).abs() < 2e-3, "{big}");
        assert_eq!(t.duplicate(5000), t.identify(5000));
    }

    #[test]
    fn evidence_scales_with_comparisons() {
        let t = policy(1);
        let e = t.evidence(0.5, 1);
        assert!((e.fmr.unwrap() - 1e-4).abs() < 1e-9);
        let e = t.evidence(0.5, 5000);
        assert!((e.expected_false_matches.unwrap() - 0.5).abs() < 1e-6);
        let u = Thresholds::dlib_published(5000);
        assert_eq!(u.evidence(0.3, 1).fmr, None);
        assert_eq!(u.identify(1).threshold, 0.6);
        assert!(!u.is_calibrated() && !u.report(0).calibrated);
    }

    #[test]
    fn a_curve_needs_two_points() {
        let mut c = calibration();
        c.operating_points.truncate(1);
        assert!(Thresholds::from_calibration(&c, 1, "x".into()).is_err());
    }
}
