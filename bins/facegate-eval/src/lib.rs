//! facegate-eval: measures FaceGate's face pipelines and derives their
//! calibrated thresholds.
//!
//! The `lfw` command runs a pipeline over Labeled Faces in the Wild, caches
//! the embeddings, and from them measures 10-fold verification accuracy,
//! the false-match rate over every different-person pair, open-set 1:N
//! identification, and writes a [`face_core::calibration::Calibration`]
//! file the service loads. The library half exists so that the CI tests run
//! the same code as the command.
//!
//! - [`lfw`]: the dataset's images, identities and View 2 pairs.
//! - [`backend`]: which pipeline embeds the images (chosen by a flag), and
//!   the no-face policy.
//! - [`cache`]: embeddings on disk, per model and detector.
//! - [`embed_all`]: multi-threaded embedding with a progress bar.
//! - [`detectors`]: detector settings side by side (recall, time).
//! - [`enrol`]: the failure-to-enrol rate on the first photos of N people.
//! - [`idopts`]: identification options (flip-averaging, several photos,
//!   fused templates) on LFW 1:N.
//! - [`verify`]: 10-fold accuracy and fixed-threshold accuracy on pairs.
//! - [`allpairs`]: distance histograms over all same- and different-person
//!   pairs, and the thresholds for a target FMR.
//! - [`openset`]: 1:N identification with held-out strangers.
//! - [`pad`]: the passive liveness threshold of a detector, on bona fide
//!   faces, with the attack samples as a check.
//! - [`plot`]: the ROC/DET figure.
//! - [`report`]: the whole analysis, the calibration file and the report.
//! - [`rng`]: a small seeded generator, so every draw is reproducible.

pub mod allpairs;
pub mod backend;
pub mod cache;
pub mod detectors;
pub mod embed_all;
pub mod enrol;
pub mod idopts;
pub mod lfw;
pub mod openset;
pub mod pad;
pub mod plot;
pub mod report;
pub mod rng;
pub mod verify;

/// Errors of the evaluation tools: a message for a person to read.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// `$FACEGATE_SHARED_DIR`, else `../shared` beside the repository root
/// `workspace` (the convention of face-core's tests).
pub fn shared_dir(workspace: &std::path::Path) -> std::path::PathBuf {
    std::env::var_os("FACEGATE_SHARED_DIR")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace.join("../shared"))
}
