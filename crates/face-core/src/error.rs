//! The one error type of face-core.
//!
//! Every failure a caller can act on has its own variant carrying the facts
//! (which limit, what value), so the service can map it to a precise HTTP
//! answer and a person can tell what to do next. Nothing here panics on bad
//! input: decoders, the dlib shim and model loading all report through this.

use std::path::PathBuf;

/// Errors from decoding, detection, embedding and model loading.
#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    /// The input had no bytes at all.
    #[error("the image is empty (0 bytes)")]
    EmptyInput,

    /// The bytes are not an image in a supported format.
    #[error("unsupported or unrecognised image format (supported: JPEG, PNG, WebP, BMP)")]
    UnsupportedFormat,

    /// The bytes look like a supported format but could not be decoded.
    #[error("the image data is corrupt or truncated: {0}")]
    CorruptImage(String),

    /// A decoding limit was exceeded; checked from the header, before pixel
    /// data is decoded.
    #[error("image {limit} is {actual}, above the limit of {max}")]
    LimitExceeded {
        /// Which limit: "width", "height", "pixel count" or "encoded size".
        limit: &'static str,
        /// The value the image has.
        actual: u64,
        /// The configured maximum.
        max: u64,
    },

    /// The decoder refused to allocate what this image needs (its data
    /// disagrees with its header, or it needs more memory than allowed).
    #[error("decoding this image would exceed the memory limit: {0}")]
    DecoderLimit(String),

    /// The image is too small to hold a face at all.
    #[error("image is {width}x{height} pixels; at least {min}x{min} is needed to find a face")]
    ImageTooSmall {
        /// Width of the decoded image.
        width: u32,
        /// Height of the decoded image.
        height: u32,
        /// Minimum side length.
        min: u32,
    },

    /// A model file is missing.
    #[error(
        "model file {file} not found (looked in: {searched}); run scripts/setup.sh (it \
         installs the dlib models and the default ONNX models, SFace and YuNet), copy your \
         own ONNX models into one of those directories, or set FACEGATE_MODELS_DIR to the \
         directory that holds it"
    )]
    ModelMissing {
        /// The model's file name.
        file: String,
        /// The directories searched, comma separated.
        searched: String,
    },

    /// A model file exists but is damaged or not the expected model.
    #[error("model file {} is corrupt or not the expected model: {reason}; delete it and run scripts/setup.sh (it installs the dlib and the default ONNX models, checksums checked)", path.display())]
    ModelCorrupt {
        /// Path of the file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },

    /// Embeddings of two different models cannot be compared.
    #[error("cannot compare an embedding of model {left} with one of model {right}")]
    ModelMismatch {
        /// Model of the left operand.
        left: String,
        /// Model of the right operand.
        right: String,
    },

    /// The face backend itself failed (a C++ exception in dlib, an ONNX
    /// runtime error). Not caused by the input; worth logging.
    #[error("face backend {backend} failed: {message}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// What it said.
        message: String,
    },

    /// The ONNX Runtime shared library could not be found or loaded.
    #[error(
        "ONNX Runtime library not usable: {reason}; run scripts/fetch-onnxruntime.sh, or set \
         ORT_DYLIB_PATH (or face.onnx.runtime_library) to libonnxruntime.so {version} or newer"
    )]
    RuntimeUnavailable {
        /// What went wrong (not found, wrong version, failed to load).
        reason: String,
        /// The ONNX Runtime version this build needs.
        version: &'static str,
    },

    /// A model loaded but is not what the configuration says it is (wrong
    /// inputs or outputs for its declared kind).
    #[error("model {} does not fit: {reason}", path.display())]
    ModelUnfit {
        /// The file.
        path: PathBuf,
        /// What does not fit, and what was expected.
        reason: String,
    },

    /// Presentation-attack detection was asked for and cannot run: its
    /// model files are missing or damaged, or this pipeline's detector has
    /// no liveness calibration.
    #[error("passive liveness (PAD) is unavailable: {reason}")]
    PadUnavailable {
        /// What is missing, and how to supply it.
        reason: String,
    },

    /// An I/O error reading a model file.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl FaceError {
    /// True when the error is the caller's input's fault (a 4xx), false when
    /// it is the deployment's or the backend's (a 5xx).
    pub fn is_bad_input(&self) -> bool {
        match self {
            FaceError::EmptyInput
            | FaceError::UnsupportedFormat
            | FaceError::CorruptImage(_)
            | FaceError::LimitExceeded { .. }
            | FaceError::DecoderLimit(_)
            | FaceError::ImageTooSmall { .. }
            | FaceError::ModelMismatch { .. } => true,
            FaceError::ModelMissing { .. }
            | FaceError::ModelCorrupt { .. }
            | FaceError::RuntimeUnavailable { .. }
            | FaceError::ModelUnfit { .. }
            | FaceError::Backend { .. }
            | FaceError::PadUnavailable { .. }
            | FaceError::Io { .. } => false,
        }
    }
}
