//! The shipped liveness calibration of the default pipeline (YuNet 2023mar)
//! is what `facegate-eval pad` measures on the shared data today, and it
//! accepts at least 80 % of the live portraits and of the frontal clip
//! frames. Prints every set (the dlib "john" crops and the turned heads
//! apart) and the attack samples' margins: the figures README states.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use face_core::backend::{self, BackendConfig};
use face_core::calibration::shipped_dir;
use face_core::liveness::calibration::PadCalibration;
use face_core::models::ModelLocator;
use face_core::onnx::{DetectorOptions, OnnxOptions, RuntimeOptions};
use face_core::PipelineOptions;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_shipped_default_calibration_reproduces_and_accepts_most_live_faces() {
    let shared = facegate_eval::shared_dir(&workspace());
    assert!(
        shared.join("faces/spoof").is_dir(),
        "shared data not found at {}: set FACEGATE_SHARED_DIR",
        shared.display()
    );
    let options = OnnxOptions {
        runtime: RuntimeOptions {
            library: Some(
                std::env::var_os("ORT_DYLIB_PATH")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| workspace().join("runtime/libonnxruntime.so")),
            ),
            ..Default::default()
        },
        detector: DetectorOptions {
            model: face_core::models::YUNET_2023MAR.file_name.into(),
            ..Default::default()
        },
        ..Default::default()
    };
    // The default pipeline from the workspace models (scripts/setup.sh),
    // the PAD files from the shared models.
    let locator =
        ModelLocator::with_dirs(vec![workspace().join("models"), shared.join("models/onnx")]);
    let config = BackendConfig::Onnx(Box::new(options.clone()));
    let mut built = backend::build(&config, &locator, PipelineOptions::default(), 1).unwrap();
    let fingerprint = backend::add_pad(&mut built, &locator, &options.runtime).unwrap();
    let shipped = PadCalibration::load(&shipped_dir(), &fingerprint).unwrap();
    let measured = facegate_eval::pad::calibrate(
        &mut built.pipelines[0],
        fingerprint,
        &shared,
        shipped.target_bpcer,
        shipped.command.clone(),
    )
    .unwrap();
    for set in measured.calibration.iter().chain(&measured.reported) {
        println!(
            "{:>15}: {}/{} accepted ({:.1} %), median score {:.3}",
            set.name,
            set.accepted,
            set.faces,
            100.0 * set.accepted as f64 / set.faces as f64,
            set.median
        );
    }
    for s in &measured.samples {
        println!(
            "{}: {} score {:.4}, margin {:+.4}",
            s.sample, s.kind, s.score, s.margin
        );
    }
    assert_eq!(
        measured.threshold, shipped.threshold,
        "the shipped threshold is not what the data gives today: rerun {}",
        shipped.command
    );
    for set in &measured.calibration {
        assert!(
            set.accepted as f64 >= 0.8 * set.faces as f64,
            "{}: only {}/{} live faces accepted",
            set.name,
            set.accepted,
            set.faces
        );
    }
}
