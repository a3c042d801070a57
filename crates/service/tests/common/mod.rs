//! What the service's integration tests share: where the shared data and
//! models are, the clips' frames, and the fast pipeline's service over a
//! real SQLite store.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use face_core::calibration::Calibration;
use face_core::models::ModelLocator;
use face_core::onnx::{self, HeadKind, OnnxOptions, RuntimeOptions};
use face_core::{FacePipeline, PipelineOptions};
use face_service::{FaceService, FaceWorkers, Thresholds};
use face_store::{SqliteConfig, SqliteStore};

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `$FACEGATE_SHARED_DIR`, else `../shared` beside the checkout.
pub fn shared() -> PathBuf {
    let dir = std::env::var_os("FACEGATE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared"));
    assert!(
        dir.join("video").is_dir(),
        "no clips at {}: set FACEGATE_SHARED_DIR",
        dir.display()
    );
    dir
}

/// The frames of an MJPEG clip (JPEGs back to back).
pub fn frames(name: &str) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(shared().join("video").join(name)).unwrap();
    face_core::mjpeg::frames(&bytes)
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect()
}

/// The fast configuration (YuNet-n up to 640, never enlarged, +
/// MobileFaceNet) from `shared/models/onnx`.
fn fast_options() -> OnnxOptions {
    let mut options = OnnxOptions {
        runtime: RuntimeOptions {
            library: Some(
                std::env::var_os("ORT_DYLIB_PATH")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| workspace().join("runtime/libonnxruntime.so")),
            ),
            ..Default::default()
        },
        ..Default::default()
    };
    options.detector.model = "yunet_n_dynamic.onnx".into();
    options.detector.kind = HeadKind::Yunet;
    options.detector.input_size = 640;
    options.detector.max_upscale = 1.0;
    options.embedder.model = "mobilefacenet_128d.onnx".into();
    options
}

fn locator() -> ModelLocator {
    ModelLocator::with_dirs(vec![shared().join("models/onnx")])
}

/// One fast pipeline.
pub fn fast_pipeline() -> FacePipeline {
    onnx::pipeline(&locator(), &fast_options(), PipelineOptions::default()).unwrap()
}

/// The fast pipeline on `workers` workers over the SQLite store in `dir`,
/// with the fast pipeline's calibration.
pub async fn fast_service(dir: &Path, workers: usize) -> FaceService {
    let pipelines = onnx::pipelines(
        &locator(),
        &fast_options(),
        PipelineOptions::default(),
        workers,
    )
    .unwrap();
    let workers = FaceWorkers::start(pipelines, 16).unwrap();
    let cal = Calibration::load(
        &workspace().join("config/calibration/mobilefacenet_128d_85cdeb73@0e9935dd.json"),
    )
    .unwrap();
    let thresholds = Thresholds::from_calibration(&cal, 100, "test".into()).unwrap();
    let store = SqliteStore::open(SqliteConfig::in_data_dir(dir))
        .await
        .unwrap();
    FaceService::new(workers, Arc::new(store), "sqlite", thresholds)
}
