//! A fixed subset of LFW's View 2 pairs through the real pipeline gives the
//! accuracy the full calibration run measured.
//!
//! Subset: every 30th pair of `pairs.csv` (200 pairs, both classes, all
//! folds), deterministic. At the mean 10-fold threshold of the full run its
//! accuracy must be within 3 points of the full 10-fold accuracy; at the
//! calibrated verify threshold (FMR 1e-4, stricter, so lower accuracy)
//! within 5 points of the full run's accuracy there. A drift in decoding,
//! detection, alignment or the encoder shows up here in seconds, long
//! before anyone reruns the full evaluation.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;

use face_core::calibration::{shipped_dir, Calibration};
use face_core::dlib::DetectorKind;
use facegate_eval::backend::{BackendKind, BackendSpec};
use facegate_eval::lfw::Lfw;
use facegate_eval::verify::{accuracy_at, Scored};
use facegate_eval::{embed_all, shared_dir};

/// Every `STEP`-th pair.
const STEP: usize = 30;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn dlib_subset_accuracy_matches_the_full_run() {
    subset_accuracy_matches_the_full_run(BackendSpec {
        kind: BackendKind::Dlib,
        detector: DetectorKind::Hog,
        models_dir: Some(workspace().join("models")),
        onnx: Default::default(),
    });
}

#[test]
fn onnx_subset_accuracy_matches_the_full_run() {
    let mut onnx = face_core::onnx::OnnxOptions::default();
    onnx.runtime.library = Some(
        std::env::var_os("ORT_DYLIB_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join("runtime/libonnxruntime.so")),
    );
    subset_accuracy_matches_the_full_run(BackendSpec {
        kind: BackendKind::Onnx,
        detector: DetectorKind::Hog,
        models_dir: Some(shared_dir(&workspace()).join("models/onnx")),
        onnx,
    });
}

fn subset_accuracy_matches_the_full_run(spec: BackendSpec) {
    let dir = shared_dir(&workspace()).join("datasets/lfw");
    assert!(
        dir.join("pairs.csv").is_file(),
        "LFW not found at {}: set FACEGATE_SHARED_DIR",
        dir.display()
    );
    let lfw = Lfw::load(&dir).unwrap();
    let pairs: Vec<_> = lfw.pairs.iter().step_by(STEP).copied().collect();
    let mut images: Vec<usize> = pairs.iter().flat_map(|p| [p.a, p.b]).collect();
    images.sort_unstable();
    images.dedup();

    let (model, pipeline) = spec.identify().unwrap();
    let calibration = Calibration::find(&shipped_dir(), &model).unwrap();
    calibration.check_pipeline(&pipeline).unwrap();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    let run = embed_all::embed_indices(&lfw, &spec, threads, &images, false, |_| {}).unwrap();
    let vectors: HashMap<usize, Vec<f32>> =
        run.items.into_iter().map(|(i, e)| (i, e.values)).collect();
    let metric = model.metric;
    let scored: Vec<Scored> = pairs
        .iter()
        .map(|p| Scored {
            fold: p.fold,
            distance: metric.distance(&vectors[&p.a], &vectors[&p.b]),
            same: p.same,
        })
        .collect();

    let e = &calibration.evidence;
    let at_mean = accuracy_at(&scored, e.lfw_threshold_mean);
    let at_verify = accuracy_at(&scored, calibration.thresholds.verify);
    eprintln!(
        "{}: {} pairs, {} images in {:.1} s: accuracy {:.2} % at the 10-fold threshold {:.4} \
         (full run {:.2} %), {:.2} % at the verify threshold {:.4} (full run {:.2} %)",
        model.id,
        scored.len(),
        images.len(),
        run.seconds,
        100.0 * at_mean,
        e.lfw_threshold_mean,
        100.0 * e.lfw_accuracy_mean,
        100.0 * at_verify,
        calibration.thresholds.verify,
        100.0 * e.lfw_accuracy_at_verify,
    );
    assert_eq!(scored.len(), 200);
    assert!(
        (at_mean - e.lfw_accuracy_mean).abs() <= 0.03,
        "subset accuracy {at_mean} vs full {}",
        e.lfw_accuracy_mean
    );
    assert!(
        (at_verify - e.lfw_accuracy_at_verify).abs() <= 0.05,
        "subset accuracy at verify {at_verify} vs full {}",
        e.lfw_accuracy_at_verify
    );
}
