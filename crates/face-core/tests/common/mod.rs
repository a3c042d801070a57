//! Shared helpers for face-core's integration tests: where the shared test
//! photos and the model files are, and one pipeline per test binary.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use face_core::models::ModelLocator;
use face_core::{dlib, FacePipeline, PipelineOptions};

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `$FACEGATE_SHARED_DIR`, else `../shared` beside the checkout.
pub fn shared() -> PathBuf {
    let dir = std::env::var_os("FACEGATE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared"));
    assert!(
        dir.join("faces/labels.csv").is_file(),
        "test photos not found at {}: set FACEGATE_SHARED_DIR",
        dir.display()
    );
    dir
}

/// The models directory the setup script fills (or `$FACEGATE_MODELS_DIR`).
pub fn locator() -> ModelLocator {
    ModelLocator::new(Some(&workspace().join("models")))
}

/// One HOG pipeline for the whole test binary: loading models costs ~0.5 s.
pub fn pipeline() -> std::sync::MutexGuard<'static, FacePipeline> {
    static P: OnceLock<Mutex<FacePipeline>> = OnceLock::new();
    P.get_or_init(|| {
        Mutex::new(
            dlib::pipeline(
                &locator(),
                dlib::DetectorKind::Hog,
                PipelineOptions::default(),
            )
            .expect("dlib models: run scripts/fetch-models.sh"),
        )
    })
    .lock()
    .unwrap_or_else(|e| e.into_inner())
}

/// Rows of a CSV file under `shared/faces` (header skipped; simple CSV with
/// at most one quoted last field).
pub fn csv(name: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(shared().join("faces").join(name)).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut fields = Vec::new();
            let mut cur = String::new();
            let mut quoted = false;
            for c in l.chars() {
                match c {
                    '"' => quoted = !quoted,
                    ',' if !quoted => fields.push(std::mem::take(&mut cur)),
                    _ => cur.push(c),
                }
            }
            fields.push(cur);
            fields
        })
        .collect()
}

/// Bytes of a file under `shared/faces`.
pub fn photo(rel: &str) -> Vec<u8> {
    std::fs::read(shared().join("faces").join(rel)).unwrap()
}

/// `(path, identity)` of every labelled single-person photo.
pub fn people() -> Vec<(String, String)> {
    csv("labels.csv")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

/// The deliberately partial faces.
pub fn is_partial(path: &str) -> bool {
    path.contains("partial_face")
}
