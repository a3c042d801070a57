//! The `Embedder` trait and the embeddings it produces.
//!
//! An embedding always carries the identity of the model that made it
//! (id, version, dimension, distance metric). Callers never assume 128
//! dimensions or Euclidean distance: they ask the embedding. Comparing
//! embeddings of two models is an error, not a meaningless number.

use std::sync::Arc;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::detect::DetectedFace;
use crate::FaceError;

/// How two embeddings of a model are compared. Smaller is more similar for
/// both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Euclidean (L2) distance, in `[0, ∞)`. dlib's ResNet uses this.
    Euclidean,
    /// Cosine distance `1 − cos θ`, in `[0, 2]`. ArcFace-family models use this.
    Cosine,
}

impl Metric {
    /// The distance between two vectors of equal length.
    ///
    /// # Panics
    /// Never: vectors of different lengths compare over the shorter prefix,
    /// and [`Embedding::distance`] checks lengths before calling this.
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::Euclidean => a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f32>()
                .sqrt(),
            Metric::Cosine => {
                let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
                for (x, y) in a.iter().zip(b) {
                    dot += x * y;
                    na += x * x;
                    nb += y * y;
                }
                let denom = (na * nb).sqrt();
                if denom == 0.0 {
                    1.0
                } else {
                    1.0 - dot / denom
                }
            }
        }
    }

    /// The metric's name as the API reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Euclidean => "euclidean",
            Metric::Cosine => "cosine",
        }
    }
}

/// The identity of an embedding model.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Stable identifier stored with every template, e.g. `"dlib_resnet_v1"`.
    /// Two embeddings are comparable only when their ids are equal.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Version of the weights.
    pub version: String,
    /// Number of dimensions of the output.
    pub dimension: usize,
    /// How outputs are compared.
    pub metric: Metric,
}

/// Whether `id` can name a model: 1–63 bytes of ASCII letters, digits,
/// `_`, `-` and `.`, not starting with `.`. Ids become file names
/// (calibration) and parts of SQL identifiers (the store's indexes).
pub fn is_valid_model_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A face embedding: a vector and the model that made it.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    values: Vec<f32>,
    model: Arc<ModelInfo>,
}

impl Embedding {
    /// Wraps `values` produced by `model`.
    ///
    /// Fails when the length is not the model's dimension or a value is not
    /// finite: such a vector would poison every comparison.
    pub fn new(values: Vec<f32>, model: Arc<ModelInfo>) -> Result<Self, FaceError> {
        if values.len() != model.dimension {
            return Err(FaceError::Backend {
                backend: "embedder",
                message: format!(
                    "model {} produced {} values, expected {}",
                    model.id,
                    values.len(),
                    model.dimension
                ),
            });
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(FaceError::Backend {
                backend: "embedder",
                message: format!("model {} produced a non-finite value", model.id),
            });
        }
        Ok(Self { values, model })
    }

    /// The vector.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Consumes the embedding, returning the vector.
    pub fn into_values(self) -> Vec<f32> {
        self.values
    }

    /// The model that made it.
    pub fn model(&self) -> &Arc<ModelInfo> {
        &self.model
    }

    /// The distance to another embedding of the same model, in that model's
    /// metric.
    pub fn distance(&self, other: &Embedding) -> Result<f32, FaceError> {
        if self.model.id != other.model.id || self.values.len() != other.values.len() {
            return Err(FaceError::ModelMismatch {
                left: self.model.id.clone(),
                right: other.model.id.clone(),
            });
        }
        Ok(self.model.metric.distance(&self.values, &other.values))
    }
}

/// Turns detected faces into embeddings.
///
/// Takes `&mut self` for the same reason as [`crate::Detector`]. Several
/// faces of one image are embedded in one call, so a backend can batch them.
pub trait Embedder: Send {
    /// The model this embedder runs.
    fn model(&self) -> &Arc<ModelInfo>;

    /// The backend that runs it (`"dlib"`, `"onnx"`): the `backend` label
    /// of the pipeline's stage metrics.
    fn backend(&self) -> &'static str;

    /// Where inference runs, as `/stats/` reports it: `"cpu"` unless the
    /// backend says otherwise (the ONNX backend on CUDA says `"cuda"`).
    fn execution(&self) -> &str {
        "cpu"
    }

    /// One embedding per face, in the order of `faces`. The faces' boxes and
    /// landmarks are in `image`'s coordinates.
    fn embed(
        &mut self,
        image: &RgbImage,
        faces: &[DetectedFace],
    ) -> Result<Vec<Embedding>, FaceError>;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn model(id: &str, dimension: usize, metric: Metric) -> Arc<ModelInfo> {
        Arc::new(ModelInfo {
            id: id.into(),
            name: id.into(),
            version: "1".into(),
            dimension,
            metric,
        })
    }

    #[test]
    fn euclidean_and_cosine_distances() {
        assert!((Metric::Euclidean.distance(&[0.0, 0.0], &[3.0, 4.0]) - 5.0).abs() < 1e-6);
        assert!(Metric::Cosine.distance(&[1.0, 0.0], &[2.0, 0.0]).abs() < 1e-6);
        assert!((Metric::Cosine.distance(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-6);
        assert!((Metric::Cosine.distance(&[1.0, 0.0], &[-1.0, 0.0]) - 2.0).abs() < 1e-6);
    }

    #[test]
    fn embeddings_of_different_models_do_not_compare() {
        let a = Embedding::new(vec![0.0; 4], model("a", 4, Metric::Euclidean)).unwrap();
        let b = Embedding::new(vec![0.0; 4], model("b", 4, Metric::Euclidean)).unwrap();
        assert!(matches!(
            a.distance(&b),
            Err(FaceError::ModelMismatch { .. })
        ));
        assert_eq!(a.distance(&a).unwrap(), 0.0);
    }

    #[test]
    fn wrong_length_and_nan_are_refused() {
        let m = model("a", 4, Metric::Cosine);
        assert!(Embedding::new(vec![0.0; 3], m.clone()).is_err());
        assert!(Embedding::new(vec![0.0, f32::NAN, 0.0, 0.0], m).is_err());
    }
}
