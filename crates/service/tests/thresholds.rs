//! The decision policy on the shipped calibrations (dlib and MobileFaceNet,
//! measured on LFW): thresholds for any gallery size are monotonic, lie
//! between the measured operating points that bracket their FMR, agree with
//! the measured 1:N rows, are flagged beyond the measured curve, and a user
//! with more templates is judged more strictly.
#![allow(clippy::unwrap_used)]

use face_core::calibration::{per_comparison_fmr, shipped_dir, Calibration, IdentificationMethod};
use face_service::{Band, Thresholds};

fn shipped() -> Vec<Calibration> {
    let dir = shipped_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "expected dlib and MobileFaceNet in {}",
        dir.display()
    );
    files
        .iter()
        .map(|p| Calibration::load(p).unwrap())
        .collect()
}

const SIZES: [u64; 7] = [1_000, 2_000, 5_000, 10_000, 20_000, 100_000, 1_000_000];

#[test]
fn identify_thresholds_for_any_gallery_size() {
    for cal in shipped() {
        let t = Thresholds::from_calibration(&cal, 1, cal.model_id.clone()).unwrap();
        let limit = t.measured_comparisons_limit().unwrap();
        let mut points = cal.operating_points.clone();
        points.sort_by(|a, b| a.threshold.total_cmp(&b.threshold));
        let strictest = points[0];
        let mut previous = f32::INFINITY;
        println!("{}: measured up to {limit} comparisons", cal.model_id);
        for n in SIZES {
            let d = t.identify(n);
            println!(
                "  N = {n:>9}: threshold {:.4}{}",
                d.threshold,
                if d.extrapolated {
                    " (extrapolated)"
                } else {
                    ""
                }
            );
            assert_eq!(d.comparisons, n);
            assert!(
                d.threshold < previous,
                "{}: not monotonic at {n}",
                cal.model_id
            );
            previous = d.threshold;
            let fmr = per_comparison_fmr(cal.thresholds.identify_fpir, n as u32);
            assert_eq!(d.extrapolated, fmr < strictest.fmr, "{n}");
            assert_eq!(d.extrapolated, n > limit, "{n}");
            if d.extrapolated {
                assert!(d.threshold < strictest.threshold, "{n}");
            } else {
                // Between the measured points whose FMRs bracket the target.
                let lo = points.iter().rfind(|p| p.fmr <= fmr).unwrap();
                let hi = points.iter().find(|p| p.fmr >= fmr).unwrap();
                assert!(
                    lo.threshold <= d.threshold && d.threshold <= hi.threshold,
                    "{}: N = {n}: {} not within [{}, {}]",
                    cal.model_id,
                    d.threshold,
                    lo.threshold,
                    hi.threshold
                );
            }
        }
        // 100,000 and 1,000,000 are beyond every curve measured on LFW.
        assert!(t.identify(100_000).extrapolated && t.identify(1_000_000).extrapolated);
        assert!(!t.identify(1_000).extrapolated && !t.identify(5_000).extrapolated);

        // The measured 1:N rows (real galleries of distinct people) agree
        // with the curve-derived threshold to within one measured decade.
        for row in cal
            .identification
            .iter()
            .filter(|r| r.method == IdentificationMethod::Measured)
        {
            let d = t.identify(u64::from(row.gallery_size));
            let decade = points[1].threshold - points[0].threshold;
            assert!(
                (d.threshold - row.threshold).abs() < decade / 2.0,
                "{}: N = {}: curve {} vs measured {}",
                cal.model_id,
                row.gallery_size,
                d.threshold,
                row.threshold
            );
        }
    }
}

#[test]
fn expected_gallery_size_is_a_floor_and_duplicates_follow_identify() {
    for cal in shipped() {
        let t = Thresholds::from_calibration(&cal, 5000, cal.model_id.clone()).unwrap();
        assert_eq!(t.identify(10), t.identify(5000), "never below the floor");
        assert_eq!(t.identify(10).comparisons, 5000);
        assert!(t.identify(50_000).threshold < t.identify(5000).threshold);
        for n in SIZES {
            assert_eq!(t.duplicate(n), t.identify(n));
        }
    }
}

#[test]
fn verify_is_calibrated_per_decision_and_stricter_with_more_templates() {
    for cal in shipped() {
        let t = Thresholds::from_calibration(&cal, 5000, cal.model_id.clone()).unwrap();
        // One template: the file's FMR 1e-4 operating point.
        let one = t.verify(1);
        assert!(
            (one.threshold - cal.thresholds.verify).abs() < 1e-3,
            "{one:?}"
        );
        assert!(!one.extrapolated);
        let mut previous = one.threshold;
        for templates in 2..=10 {
            let d = t.verify(templates);
            assert!(d.threshold < previous, "{templates}: {d:?}");
            previous = d.threshold;
        }
        // Ten templates: FMR 1e-5 per comparison, the file's `high` point.
        assert!((t.verify(10).threshold - cal.thresholds.high).abs() < 2e-3);
        // Bands switch at the file's numbers (match = strictly under).
        let loose = face_service::Threshold::parse(2.0, face_core::Metric::Cosine).unwrap();
        let below = |x: f32| f32::from_bits(x.to_bits() - 1);
        assert_eq!(t.band(below(cal.thresholds.high), loose), Band::High);
        assert_eq!(t.band(cal.thresholds.high, loose), Band::Medium);
        assert_eq!(t.band(below(cal.thresholds.medium), loose), Band::Medium);
        assert_eq!(t.band(cal.thresholds.medium, loose), Band::Low);
        // The FMR reported at the verify threshold is the one it buys.
        let fmr = t.fmr_at(one.threshold).unwrap();
        assert!((fmr / 1e-4 - 1.0).abs() < 0.01, "{fmr}");
    }
}
