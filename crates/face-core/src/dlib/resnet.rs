//! dlib's ResNet face encoder: 128-D embeddings compared by Euclidean
//! distance (dlib's published threshold is 0.6; FaceGate's comes from its
//! own calibration).
//!
//! dlib aligns its 150×150 chip from its own 5-point landmarks, so the
//! encoder runs the 5-point predictor on each face box itself, whichever
//! detector found the face. The output is not unit length (norm ≈ 1.45):
//! thresholds from cosine models do not transfer.

use std::path::Path;
use std::sync::Arc;

use dlib_face_recognition::{FaceEncoderNetwork, FaceEncoderTrait};
use image::RgbImage;

use super::ffi::path_to_cstring;
use super::landmarks::{crop_around, Predictor};
use crate::detect::DetectedFace;
use crate::embed::{Embedder, Embedding, Metric, ModelInfo};
use crate::FaceError;

/// The model id stored with dlib templates.
pub const MODEL_ID: &str = "dlib_resnet_v1";

/// dlib's ResNet-29 face encoder.
pub struct ResnetEmbedder {
    net: FaceEncoderNetwork,
    predictor: Predictor,
    model: Arc<ModelInfo>,
}

impl ResnetEmbedder {
    /// Loads the encoder (`resnet`) and the 5-point predictor (`landmarks`).
    pub fn new(resnet: &Path, landmarks: &Path) -> Result<Self, FaceError> {
        path_to_cstring(resnet)?;
        let net = FaceEncoderNetwork::open(resnet).map_err(|reason| FaceError::ModelCorrupt {
            path: resnet.to_path_buf(),
            reason,
        })?;
        Ok(Self {
            net,
            predictor: Predictor::open(landmarks)?,
            model: Arc::new(Self::model_info()),
        })
    }

    /// The identity of the model, without loading it.
    pub fn model_info() -> ModelInfo {
        ModelInfo {
            id: MODEL_ID.into(),
            name: "dlib ResNet-29 face recognition (dlib_face_recognition_resnet_model_v1)".into(),
            version: "1".into(),
            dimension: 128,
            metric: Metric::Euclidean,
        }
    }
}

impl Embedder for ResnetEmbedder {
    fn model(&self) -> &Arc<ModelInfo> {
        &self.model
    }

    fn backend(&self) -> &'static str {
        "dlib"
    }

    #[tracing::instrument(level = "debug", skip_all, fields(faces = faces.len()))]
    fn embed(
        &mut self,
        image: &RgbImage,
        faces: &[DetectedFace],
    ) -> Result<Vec<Embedding>, FaceError> {
        if faces.is_empty() {
            return Ok(Vec::new());
        }
        let boxes: Vec<_> = faces.iter().map(|f| f.bbox).collect();
        let crop = crop_around(image, &boxes);
        let landmarks: Vec<_> = boxes.iter().map(|b| self.predictor.raw(&crop, b)).collect();
        let encodings = self.net.get_face_encodings(&crop.matrix, &landmarks, 0);
        if encodings.len() != faces.len() {
            return Err(FaceError::Backend {
                backend: "dlib-resnet",
                message: format!("{} encodings for {} faces", encodings.len(), faces.len()),
            });
        }
        encodings
            .iter()
            .map(|e| {
                let values = e.as_ref().iter().map(|&v| v as f32).collect();
                Embedding::new(values, self.model.clone())
            })
            .collect()
    }
}
