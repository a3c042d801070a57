//! The shipped calibration file: it parses, validates, is for the model the
//! code builds, and reads back exactly the file's numbers (no threshold is
//! hard-coded anywhere else). What the service decides from them is tested
//! with the service (`crates/service/tests/thresholds.rs`).
#![allow(clippy::unwrap_used)]

use face_core::calibration::{shipped_dir, Calibration, SHIPPED_DIR};
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
    assert_eq!(c.thresholds.verify, t("verify"));
    assert_eq!(c.thresholds.identify, t("identify"));
    assert_eq!(c.thresholds.high, t("high"));
    assert_eq!(c.thresholds.medium, t("medium"));
    assert_eq!(number(&raw, &["thresholds", "verify_fmr"]), 1e-4);
    assert_eq!(number(&raw, &["thresholds", "high_fmr"]), 1e-5);
    assert_eq!(number(&raw, &["thresholds", "identify_fpir"]), 0.01);
    assert_eq!(
        number(&raw, &["thresholds", "identify_gallery_size"]),
        5000.0
    );
    // Verify and medium are the FMR 1e-4 operating point, high the 1e-5.
    let point = |fmr: f64| {
        c.operating_points
            .iter()
            .find(|p| p.target_fmr == fmr)
            .unwrap()
            .threshold
    };
    assert_eq!(point(1e-4), t("verify"));
    assert_eq!(point(1e-5), t("high"));
    // dlib's published 0.6 is looser than the calibrated default.
    assert!(c.thresholds.verify < 0.6);
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
