//! The evaluation's threshold policy and the shipped calibration agree:
//! the file's target rates are the constants the command uses, and each
//! threshold is the operating point of its rate.
#![allow(clippy::unwrap_used)]

use face_core::calibration::{shipped_dir, Calibration, IdentificationMethod};
use face_core::dlib::ResnetEmbedder;
use facegate_eval::report::{HIGH_FMR, IDENTIFY_FPIR, VERIFY_FMR};

#[test]
fn shipped_thresholds_follow_the_policy() {
    let c = Calibration::find(&shipped_dir(), &ResnetEmbedder::model_info()).unwrap();
    let t = c.thresholds;
    assert_eq!(
        (t.verify_fmr, t.medium_fmr, t.high_fmr),
        (VERIFY_FMR, VERIFY_FMR, HIGH_FMR)
    );
    assert_eq!(t.identify_fpir, IDENTIFY_FPIR);
    let point = |fmr: f64| {
        c.operating_points
            .iter()
            .find(|p| p.target_fmr == fmr)
            .unwrap()
    };
    assert_eq!(t.verify, point(VERIFY_FMR).threshold);
    assert_eq!(t.medium, point(VERIFY_FMR).threshold);
    assert_eq!(t.high, point(HIGH_FMR).threshold);
    assert!(point(VERIFY_FMR).fmr <= VERIFY_FMR);
    assert!(point(HIGH_FMR).fmr <= HIGH_FMR);
    let row = c
        .identification
        .iter()
        .find(|r| r.gallery_size == t.identify_gallery_size)
        .unwrap();
    assert_eq!(row.method, IdentificationMethod::Measured);
    assert_eq!(t.identify, row.threshold);
    assert!(row.fpir <= IDENTIFY_FPIR);
    // 10,000 distinct people do not exist in LFW: that row is extrapolated.
    let big = c
        .identification
        .iter()
        .find(|r| r.gallery_size == 10_000)
        .unwrap();
    assert_eq!(big.method, IdentificationMethod::Extrapolated);
}
