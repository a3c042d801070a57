//! The shipped calibration file: it parses, validates, is for the model the
//! code builds, and every lookup returns exactly the file's numbers (no
//! threshold is hard-coded anywhere else).
#![allow(clippy::unwrap_used)]

use face_core::calibration::{shipped_dir, Band, Calibration, SHIPPED_DIR};
use face_core::dlib::ResnetEmbedder;
use serde_json::Value;

fn shipped() -> (Calibration, Value) {
    let model = ResnetEmbedder::model_info();
    let path = Calibration::path_in(&shipped_dir(), &model.id).unwrap();
    assert!(path.ends_with(format!("{SHIPPED_DIR}/dlib_resnet_v1.json")));
    let calibration = Calibration::find(&shipped_dir(), &model).unwrap();
    let raw: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    (calibration, raw)
}

fn number(v: &Value, path: &[&str]) -> f64 {
    let mut v = v;
    for key in path {
        v = &v[key];
    }
    v.as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number"))
}

#[test]
fn shipped_dlib_calibration_is_valid_and_used_as_written() {
    let (c, raw) = shipped();
    c.validate().unwrap();
    assert_eq!(raw["model_id"], "dlib_resnet_v1");
    assert_eq!(raw["metric"], "euclidean");
    let t = |k: &str| number(&raw, &["thresholds", k]) as f32;
    assert_eq!(c.verify_threshold(), t("verify"));
    assert_eq!(c.identify_threshold(), t("identify"));
    assert_eq!(c.thresholds.high, t("high"));
    assert_eq!(c.thresholds.medium, t("medium"));
    assert_eq!(number(&raw, &["thresholds", "verify_fmr"]), 1e-4);
    assert_eq!(number(&raw, &["thresholds", "high_fmr"]), 1e-5);
    assert_eq!(number(&raw, &["thresholds", "identify_fpir"]), 0.01);
    assert_eq!(
        number(&raw, &["thresholds", "identify_gallery_size"]),
        5000.0
    );
    // The policy: verify and medium are the FMR 1e-4 point, high the 1e-5.
    assert_eq!(c.threshold_for_fmr(1e-4), Some(t("verify")));
    assert_eq!(c.threshold_for_fmr(1e-5), Some(t("high")));
    assert_eq!(c.identify_threshold_for(5000, 0.01), Some(t("identify")));
    // Bands switch exactly at the file's numbers (match = strictly under).
    let below = |x: f32| f32::from_bits(x.to_bits() - 1);
    assert_eq!(c.confidence_band(below(t("high"))), Band::High);
    assert_eq!(c.confidence_band(t("high")), Band::Medium);
    assert_eq!(c.confidence_band(below(t("verify"))), Band::Medium);
    assert_eq!(c.confidence_band(t("verify")), Band::NoMatch);
    // dlib's published 0.6 is looser than the calibrated default.
    assert!(c.verify_threshold() < 0.6);
}

#[test]
fn wrong_model_or_edited_numbers_are_refused() {
    let (_, raw) = shipped();
    let cosine = face_core::ModelInfo {
        metric: face_core::Metric::Cosine,
        ..ResnetEmbedder::model_info()
    };
    assert!(Calibration::find(&shipped_dir(), &cosine).is_err());
    let mut bad = raw.clone();
    bad["thresholds"]["high"] = Value::from(0.9);
    assert!(Calibration::from_json(&bad.to_string()).is_err());
    let mut bad = raw;
    bad["thresholds"]["verify"] = Value::from(-1.0);
    assert!(Calibration::from_json(&bad.to_string()).is_err());
}
