//! The whole path from photo bytes to faces with quality and embeddings.
//!
//! Owns the one policy that spans stages: large photos are worked on as a
//! downscaled copy. Detection cost grows with pixel count, but a face big
//! enough to recognise stays big enough after scaling a 12-megapixel photo
//! down to `max_working_side`, so every stage runs on the copy and boxes and
//! landmarks are mapped back to the original's coordinates at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use image::{imageops, RgbImage};
use serde::{Deserialize, Serialize};

use crate::decode::{decode, DecodeLimits};
use crate::detect::{DetectedFace, Detector};
use crate::embed::{Embedder, Embedding, ModelInfo};
use crate::quality::{assess, Quality, QualityPolicy};
use crate::FaceError;

/// Options for a [`FacePipeline`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PipelineOptions {
    /// Limits on the input photo.
    pub decode: DecodeLimits,
    /// Photos whose longest side exceeds this are processed as a copy
    /// scaled down to it. 1280 keeps a 12 MP photo's cost near a 1 MP one's
    /// while a face filling a tenth of the frame stays over 100 px.
    pub max_working_side: u32,
    /// Enrolment quality thresholds.
    pub quality: QualityPolicy,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            decode: DecodeLimits::default(),
            max_working_side: 1280,
            quality: QualityPolicy::default(),
        }
    }
}

/// One face of a photo: where it is, how good it is, and its embedding.
#[derive(Debug, Clone)]
pub struct AnalyzedFace {
    /// Box, score and landmarks in the original photo's coordinates.
    pub detection: DetectedFace,
    /// Enrolment quality.
    pub quality: Quality,
    /// The embedding.
    pub embedding: Embedding,
}

/// Time spent in each stage of one [`FacePipeline`] call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageTimings {
    /// Decoding (zero when given pixels).
    pub decode: Duration,
    /// Scaling to the working copy.
    pub resize: Duration,
    /// Detection and landmarks.
    pub detect: Duration,
    /// Quality and embedding.
    pub embed: Duration,
}

/// The faces of one photo, largest first.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// Width of the (upright) photo.
    pub width: u32,
    /// Height of the (upright) photo.
    pub height: u32,
    /// Faces, largest box first.
    pub faces: Vec<AnalyzedFace>,
    /// Where the time went.
    pub timings: StageTimings,
}

/// A detector and an embedder with the policies that join them.
///
/// Not `Sync`: one pipeline serves one thread at a time (the models inside
/// are not thread-safe). A server keeps a pool of them.
pub struct FacePipeline {
    detector: Box<dyn Detector>,
    embedder: Box<dyn Embedder>,
    options: PipelineOptions,
}

impl FacePipeline {
    /// Joins a detector and an embedder.
    pub fn new(
        detector: Box<dyn Detector>,
        embedder: Box<dyn Embedder>,
        options: PipelineOptions,
    ) -> Self {
        Self {
            detector,
            embedder,
            options,
        }
    }

    /// The embedding model.
    pub fn model(&self) -> &Arc<ModelInfo> {
        self.embedder.model()
    }

    /// The detector's name.
    pub fn detector_name(&self) -> &str {
        self.detector.name()
    }

    /// The options in force.
    pub fn options(&self) -> &PipelineOptions {
        &self.options
    }

    /// Decodes, detects and embeds every face of a photo.
    pub fn analyze(&mut self, bytes: &[u8]) -> Result<Analysis, FaceError> {
        let start = Instant::now();
        let decoded = decode(bytes, &self.options.decode)?;
        let decode_time = start.elapsed();
        let mut analysis = self.analyze_image(&decoded.image)?;
        analysis.timings.decode = decode_time;
        Ok(analysis)
    }

    /// Detects and embeds every face of an already decoded, upright image.
    pub fn analyze_image(&mut self, image: &RgbImage) -> Result<Analysis, FaceError> {
        let mut timings = StageTimings::default();
        let t = Instant::now();
        let (working, scale) = self.working_copy(image);
        let working: &RgbImage = working.as_ref().unwrap_or(image);
        timings.resize = t.elapsed();

        let t = Instant::now();
        let mut faces = self.detector.detect(working)?;
        faces.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
        timings.detect = t.elapsed();

        let t = Instant::now();
        let embeddings = self.embedder.embed(working, &faces)?;
        let faces = faces
            .iter()
            .zip(embeddings)
            .map(|(face, embedding)| AnalyzedFace {
                detection: face.scaled(scale),
                quality: assess(working, face, scale, &self.options.quality),
                embedding,
            })
            .collect();
        timings.embed = t.elapsed();

        Ok(Analysis {
            width: image.width(),
            height: image.height(),
            faces,
            timings,
        })
    }

    /// Detects faces (no embeddings) in an already decoded image; boxes in
    /// its coordinates, largest first.
    pub fn detect_image(&mut self, image: &RgbImage) -> Result<Vec<DetectedFace>, FaceError> {
        let (working, scale) = self.working_copy(image);
        let working: &RgbImage = working.as_ref().unwrap_or(image);
        let mut faces: Vec<_> = self
            .detector
            .detect(working)?
            .iter()
            .map(|f| f.scaled(scale))
            .collect();
        faces.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
        Ok(faces)
    }

    /// The downscaled copy (None when the image is small enough) and the
    /// factor from working-copy pixels to original pixels.
    fn working_copy(&self, image: &RgbImage) -> (Option<RgbImage>, f32) {
        let longest = image.width().max(image.height());
        let max = self.options.max_working_side.max(64);
        if longest <= max {
            return (None, 1.0);
        }
        let scale = longest as f32 / max as f32;
        let w = ((image.width() as f32 / scale).round() as u32).max(1);
        let h = ((image.height() as f32 / scale).round() as u32).max(1);
        let copy = imageops::thumbnail(image, w, h);
        // Map with the exact per-axis factor actually used.
        (Some(copy), image.width() as f32 / w as f32)
    }
}
