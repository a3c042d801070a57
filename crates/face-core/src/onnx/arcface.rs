//! ArcFace-family embedders in ONNX: MobileFaceNet (128-D), InsightFace's
//! ResNets (512-D), and any model of the same shape.
//!
//! Each face is aligned by a similarity transform of its five landmarks
//! onto the standard template ([`crate::align`]), normalised as the model
//! was trained, embedded in one batched inference for all faces of a photo,
//! and L2-normalised; embeddings are compared by cosine distance.
//!
//! What varies between models is read, in order of precedence, from the
//! configuration, from the model file's metadata (`facegate.mean`,
//! `facegate.std`, `facegate.channels`, `facegate.model_id`), from the
//! model's own input/output shapes (chip size, dimension), and else from
//! InsightFace's conventions (RGB, `(x − 127.5) / 127.5`). The model id
//! defaults to the file's stem plus the first 8 hex digits of its SHA-256,
//! so different weights never share an id, and so never share templates.

use std::path::Path;
use std::sync::Arc;

use image::RgbImage;
use ort::session::Session;
use ort::value::Tensor;
use serde::{Deserialize, Serialize};

use super::runtime::{self, Provider, RuntimeOptions};
use crate::align::{arcface_template, warp_chip, Similarity};
use crate::detect::DetectedFace;
use crate::embed::{Embedder, Embedding, Metric, ModelInfo};
use crate::geometry::LandmarkScheme;
use crate::FaceError;

/// Channel order of the model's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red.
    Bgr,
}

impl ChannelOrder {
    fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rgb" => Some(ChannelOrder::Rgb),
            "bgr" => Some(ChannelOrder::Bgr),
            _ => None,
        }
    }
}

/// Embedder settings. `None` means "from the model file, else the default".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedderOptions {
    /// Model file name (looked up in the models directories) or path.
    pub model: String,
    /// Stable model id stored with every template.
    pub id: Option<String>,
    /// Side of the square aligned chip, when the model's input is dynamic.
    pub input_size: Option<u32>,
    /// Subtracted from every 0–255 channel value.
    pub mean: Option<f32>,
    /// Divides it after.
    pub std: Option<f32>,
    /// Channel order.
    pub channels: Option<ChannelOrder>,
    /// Most faces in one inference.
    pub max_batch: usize,
}

impl Default for EmbedderOptions {
    fn default() -> Self {
        Self {
            model: crate::models::MOBILEFACENET_128D.file_name.into(),
            id: None,
            input_size: None,
            mean: None,
            std: None,
            channels: None,
            max_batch: 16,
        }
    }
}

/// The normalisation (mean, std) of the models FaceGate knows by checksum.
/// MobileFaceNet (as shipped in `shared/models/onnx`) was trained on
/// `(x − 127.5) / 128`; SFace normalises inside its graph and takes the raw
/// 0–255 RGB values; InsightFace's models, the default for any other file,
/// take `(x − 127.5) / 127.5`.
fn builtin_normalisation(sha256: &str) -> Option<(f32, f32)> {
    if sha256 == crate::models::MOBILEFACENET_128D.sha256 {
        Some((127.5, 128.0))
    } else if sha256 == crate::models::SFACE_2021DEC.sha256 {
        Some((0.0, 1.0))
    } else {
        None
    }
}

/// The model-specific numbers, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Normalisation {
    size: u32,
    mean: f32,
    std: f32,
    channels: ChannelOrder,
}

/// An ONNX ArcFace-family embedder.
pub struct ArcFaceEmbedder {
    session: Session,
    input_name: String,
    norm: Normalisation,
    /// `Some(1)` when the model takes one face per inference.
    fixed_batch: Option<usize>,
    max_batch: usize,
    model: Arc<ModelInfo>,
    provider: Provider,
}

impl ArcFaceEmbedder {
    /// Opens the model at `path` (whose SHA-256 is `sha256`), resolves its
    /// input size, normalisation and dimension, and runs one inference.
    pub fn new(
        path: &Path,
        sha256: &str,
        options: &EmbedderOptions,
        runtime: &RuntimeOptions,
    ) -> Result<Self, FaceError> {
        let opened = runtime::open_session(path, runtime)?;
        let session = opened.session;
        let unfit = |reason: String| FaceError::ModelUnfit {
            path: path.to_path_buf(),
            reason,
        };
        let meta = |key: &str| runtime::metadata(&session, key);

        let (input_name, shape) = runtime::image_input(&session, path)?;
        let size = match (shape[2], shape[3]) {
            (h, w) if h > 0 && w > 0 && h != w => {
                return Err(unfit(format!("expected a square input, found {w}×{h}")))
            }
            (h, _) if h > 0 => h as u32,
            _ => options.input_size.unwrap_or(112),
        };
        if !(32..=1024).contains(&size) {
            return Err(unfit(format!("chip size {size} is outside 32..=1024")));
        }
        let parse_f32 = |key: &str| -> Result<Option<f32>, FaceError> {
            match meta(key) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<f32>()
                    .map(Some)
                    .map_err(|_| unfit(format!("metadata {key} = {v:?} is not a number"))),
            }
        };
        let builtin = builtin_normalisation(sha256);
        let mean = match options.mean {
            Some(m) => m,
            None => parse_f32("facegate.mean")?
                .or(builtin.map(|(mean, _)| mean))
                .unwrap_or(127.5),
        };
        let std = match options.std {
            Some(s) => s,
            None => parse_f32("facegate.std")?
                .or(builtin.map(|(_, std)| std))
                .unwrap_or(127.5),
        };
        let channels = match options.channels {
            Some(c) => c,
            None => match meta("facegate.channels") {
                None => ChannelOrder::Rgb,
                Some(v) => ChannelOrder::parse(&v).ok_or_else(|| {
                    unfit(format!("metadata facegate.channels = {v:?}: rgb or bgr"))
                })?,
            },
        };
        if !(mean.is_finite() && std.is_finite() && std > 0.0) {
            return Err(unfit(format!(
                "normalisation mean {mean}, std {std}: both must be finite, std positive"
            )));
        }
        let fixed_batch = (shape[0] > 0).then_some(shape[0] as usize);
        if fixed_batch.is_some_and(|b| b != 1) {
            return Err(unfit(format!(
                "the input's batch size is fixed at {}; expected 1 or dynamic",
                shape[0]
            )));
        }

        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "onnx".into());
        let id = match options.id.clone().or_else(|| meta("facegate.model_id")) {
            Some(id) => id,
            None => default_model_id(&stem, sha256),
        };
        check_model_id(&id).map_err(unfit)?;

        let mut embedder = Self {
            session,
            input_name,
            norm: Normalisation {
                size,
                mean,
                std,
                channels,
            },
            fixed_batch,
            max_batch: options.max_batch.max(1),
            // The dimension is learnt from the trial inference below.
            model: Arc::new(ModelInfo {
                id,
                name: stem,
                version: sha256.chars().take(12).collect(),
                dimension: 0,
                metric: Metric::Cosine,
            }),
            provider: opened.provider,
        };
        let chip = RgbImage::from_pixel(size, size, image::Rgb([128, 128, 128]));
        let raw = embedder
            .infer(&[chip])
            .map_err(|e| unfit(format!("trial inference failed: {e}")))?;
        let dimension = raw.first().map(Vec::len).unwrap_or(0);
        if !(2..=crate::onnx::MAX_DIMENSION).contains(&dimension) {
            return Err(unfit(format!(
                "the output has {dimension} values per face; expected 2..={}",
                crate::onnx::MAX_DIMENSION
            )));
        }
        Arc::make_mut(&mut embedder.model).dimension = dimension;
        tracing::debug!(
            model = %embedder.model.id,
            dimension,
            size,
            mean,
            std,
            ?channels,
            "ArcFace embedder ready"
        );
        Ok(embedder)
    }

    /// The normalisation applied to an aligned chip, for the pipeline's
    /// fingerprint.
    pub fn normalisation(&self) -> String {
        let n = &self.norm;
        let channels = match n.channels {
            ChannelOrder::Rgb => "rgb",
            ChannelOrder::Bgr => "bgr",
        };
        format!(
            "{channels}, (x - {}) / {}, chip {}x{}",
            n.mean, n.std, n.size, n.size
        )
    }

    /// The provider inference runs on.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The aligned chip of `face` in `image`.
    pub fn chip(&self, image: &RgbImage, face: &DetectedFace) -> Result<RgbImage, FaceError> {
        if face.landmarks.scheme != LandmarkScheme::ArcFace5 {
            return Err(FaceError::Backend {
                backend: "onnx",
                message: format!(
                    "ArcFace alignment needs the five ArcFace landmarks, got {:?}",
                    face.landmarks.scheme
                ),
            });
        }
        let template = arcface_template(self.norm.size);
        let t = Similarity::estimate(&face.landmarks.points, &template).ok_or_else(|| {
            FaceError::Backend {
                backend: "onnx",
                message: "the face's landmarks are degenerate (all at one point)".into(),
            }
        })?;
        Ok(warp_chip(image, &t, self.norm.size))
    }

    /// Raw (not normalised) outputs for aligned chips, in batches.
    fn infer(&mut self, chips: &[RgbImage]) -> Result<Vec<Vec<f32>>, FaceError> {
        let batch = self.fixed_batch.unwrap_or(self.max_batch);
        let side = self.norm.size as usize;
        let plane = side * side;
        let order = match self.norm.channels {
            ChannelOrder::Rgb => [0usize, 1, 2],
            ChannelOrder::Bgr => [2usize, 1, 0],
        };
        let backend = |e: ort::Error| FaceError::Backend {
            backend: "onnx",
            message: format!("embedder inference failed: {e}"),
        };
        if let Some(chip) = chips
            .iter()
            .find(|c| c.dimensions() != (side as u32, side as u32))
        {
            return Err(FaceError::Backend {
                backend: "onnx",
                message: format!(
                    "an aligned chip is {}x{}, the model takes {side}x{side}",
                    chip.width(),
                    chip.height()
                ),
            });
        }
        // The tensor is written front to back, one plane at a time, with no
        // zero-filled buffer first.
        let (mean, std) = (self.norm.mean, self.norm.std);
        let mut out = Vec::with_capacity(chips.len());
        for group in chips.chunks(batch) {
            let mut data = Vec::with_capacity(group.len() * 3 * plane);
            for chip in group {
                for &src in &order {
                    super::tensor::push_channel(&mut data, chip.as_raw(), src, mean, std);
                }
            }
            let tensor =
                Tensor::from_array(([group.len(), 3, side, side], data)).map_err(backend)?;
            let outputs = self
                .session
                .run(ort::inputs![self.input_name.as_str() => tensor])
                .map_err(backend)?;
            let (_, values) = outputs[0].try_extract_tensor::<f32>().map_err(backend)?;
            if values.is_empty() || values.len() % group.len() != 0 {
                return Err(FaceError::Backend {
                    backend: "onnx",
                    message: format!(
                        "embedder returned {} values for {} faces",
                        values.len(),
                        group.len()
                    ),
                });
            }
            let dim = values.len() / group.len();
            out.extend(values.chunks_exact(dim).map(<[f32]>::to_vec));
        }
        Ok(out)
    }
}

impl Embedder for ArcFaceEmbedder {
    fn model(&self) -> &Arc<ModelInfo> {
        &self.model
    }

    fn backend(&self) -> &'static str {
        "onnx"
    }

    fn execution(&self) -> &str {
        self.provider.as_str()
    }

    fn embed(
        &mut self,
        image: &RgbImage,
        faces: &[DetectedFace],
    ) -> Result<Vec<Embedding>, FaceError> {
        if faces.is_empty() {
            return Ok(Vec::new());
        }
        let chips = faces
            .iter()
            .map(|f| self.chip(image, f))
            .collect::<Result<Vec<_>, _>>()?;
        self.infer(&chips)?
            .into_iter()
            .map(|mut v| {
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                if !(norm.is_finite() && norm > 0.0) {
                    return Err(FaceError::Backend {
                        backend: "onnx",
                        message: format!(
                            "model {} produced a zero or non-finite vector",
                            self.model.id
                        ),
                    });
                }
                v.iter_mut().for_each(|x| *x /= norm);
                Embedding::new(v, self.model.clone())
            })
            .collect()
    }
}

/// `<stem>_<first 8 hex digits of the SHA-256>`, with characters the store
/// does not accept in ids replaced by `_`, at most 63 bytes.
pub fn default_model_id(stem: &str, sha256: &str) -> String {
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(50)
        .collect();
    format!("{clean}_{}", &sha256[..sha256.len().min(8)])
}

fn check_model_id(id: &str) -> Result<(), String> {
    if crate::embed::is_valid_model_id(id) {
        Ok(())
    } else {
        Err(format!(
            "model id {id:?} must be 1–63 ASCII letters, digits, '_', '-' or '.', not starting with '.'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ids_carry_the_checksum_and_are_store_safe() {
        let id = default_model_id("my model (v2)", "85cdeb7368ed6a1e");
        assert_eq!(id, "my_model__v2__85cdeb73");
        assert!(check_model_id(&id).is_ok());
        assert!(check_model_id("").is_err());
        assert!(check_model_id("a b").is_err());
        assert!(check_model_id(&"x".repeat(64)).is_err());
        let long = default_model_id(&"y".repeat(100), "0123456789");
        assert!(check_model_id(&long).is_ok(), "{long}");
    }

    #[test]
    fn channel_order_parses_both_spellings() {
        assert_eq!(ChannelOrder::parse(" BGR "), Some(ChannelOrder::Bgr));
        assert_eq!(ChannelOrder::parse("rgb"), Some(ChannelOrder::Rgb));
        assert_eq!(ChannelOrder::parse("yuv"), None);
    }
}
