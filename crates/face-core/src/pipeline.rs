//! The whole path from photo bytes to faces with quality and embeddings.
//!
//! Owns the one policy that spans stages: large photos are worked on as a
//! downscaled copy. Detection cost grows with pixel count, but a face big
//! enough to recognise stays big enough after scaling a 12-megapixel photo
//! down to `max_working_side`, so every stage runs on the copy and boxes and
//! landmarks are mapped back to the original's coordinates at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::decode::{decode_scaled, DecodeLimits};
use crate::detect::{DetectedFace, Detector};
use crate::embed::{Embedder, Embedding, ModelInfo};
use crate::liveness::PresentationAttackDetector;
use crate::quality::{assess, Quality, QualityPolicy};
use crate::resize::{fit_within, resize_rgb};
use crate::FaceError;

/// Options for a [`FacePipeline`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PipelineOptions {
    /// Limits on the input photo.
    pub decode: DecodeLimits,
    /// Photos whose longest side exceeds this are processed as a copy
    /// scaled down to it. 1024 keeps a 12 MP photo's cost near a 0.8 MP
    /// one's; a face must then fill about 8% of the photo's longest side to
    /// stay over the detector's 80 px window. Raise it for crowd photos.
    pub max_working_side: u32,
    /// Enrolment quality thresholds.
    pub quality: QualityPolicy,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            decode: DecodeLimits::default(),
            max_working_side: 1024,
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
    /// The presentation-attack detector's live score (0..=1), when the
    /// call asked for liveness.
    pub live_score: Option<f32>,
}

/// What one analysis of a photo asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaceRequest {
    /// Embed (and score) at most this many faces, the largest.
    pub max_faces: usize,
    /// Score each embedded face for liveness (needs a pipeline with a
    /// presentation-attack detector).
    pub liveness: bool,
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
    /// Presentation-attack detection (zero when not asked).
    pub pad: Duration,
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
    /// Faces the detector found: more than `faces.len()` when the caller
    /// asked for at most a few (the largest are kept).
    pub faces_found: usize,
    /// The faces found beyond those embedded (box, score and landmarks in
    /// the original photo's coordinates), largest box first: what the
    /// enrolment rule needs to tell a second person from a face in the
    /// background.
    pub not_embedded: Vec<DetectedFace>,
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
    /// Passive liveness, when its models are installed.
    pad: Option<Box<dyn PresentationAttackDetector>>,
    options: PipelineOptions,
}

impl FacePipeline {
    /// Joins a detector and an embedder.
    /// A minimum eye distance left open in `options` becomes the
    /// detector's own.
    pub fn new(
        detector: Box<dyn Detector>,
        embedder: Box<dyn Embedder>,
        mut options: PipelineOptions,
    ) -> Self {
        options
            .quality
            .min_eye_distance
            .get_or_insert(detector.min_eye_distance());
        Self {
            detector,
            embedder,
            pad: None,
            options,
        }
    }

    /// Adds a presentation-attack detector: faces can then be scored for
    /// liveness (see [`FaceRequest::liveness`]).
    pub fn set_pad(&mut self, pad: Box<dyn PresentationAttackDetector>) {
        self.pad = Some(pad);
    }

    /// Whether this pipeline can score liveness.
    pub fn has_pad(&self) -> bool {
        self.pad.is_some()
    }

    /// The embedding model.
    pub fn model(&self) -> &Arc<ModelInfo> {
        self.embedder.model()
    }

    /// Where the embedder runs (`"cpu"`, `"cuda"`).
    pub fn execution(&self) -> &str {
        self.embedder.execution()
    }

    /// The backend that runs the embedder (`"dlib"`, `"onnx"`).
    pub fn backend(&self) -> &'static str {
        self.embedder.backend()
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
    ///
    /// Decodes straight to the working copy (see [`decode_scaled`]), so a
    /// 12 MP JPEG is never decoded at full size.
    pub fn analyze(&mut self, bytes: &[u8]) -> Result<Analysis, FaceError> {
        self.analyze_largest(bytes, usize::MAX)
    }

    /// [`FacePipeline::analyze`], embedding only the `max_faces` largest
    /// faces (`faces_found` counts them all). Embedding is the costly step
    /// per face: a collage of fifty faces costs one detection and
    /// `max_faces` embeddings, and an enrolment that needs exactly one face
    /// asks for one and checks `faces_found`.
    pub fn analyze_largest(
        &mut self,
        bytes: &[u8],
        max_faces: usize,
    ) -> Result<Analysis, FaceError> {
        self.analyze_request(
            bytes,
            FaceRequest {
                max_faces,
                liveness: false,
            },
        )
    }

    /// [`FacePipeline::analyze_largest`], with the faces embedded also
    /// scored for liveness when `request` asks: on the upright, decoded
    /// pixels (EXIF orientation applied), before the embedding.
    /// [`FaceError::PadUnavailable`] when asked without a detector.
    pub fn analyze_request(
        &mut self,
        bytes: &[u8],
        request: FaceRequest,
    ) -> Result<Analysis, FaceError> {
        if request.liveness && self.pad.is_none() {
            return Err(no_pad());
        }
        let start = Instant::now();
        let decoded = decode_scaled(bytes, &self.options.decode, self.options.max_working_side)?;
        let decode_time = start.elapsed();
        let mut analysis = self.analyze_working(&decoded.image, decoded.scale, request)?;
        analysis.width = decoded.width;
        analysis.height = decoded.height;
        analysis.timings.decode = decode_time;
        crate::telemetry::stages(self.embedder.backend(), &analysis.timings, true);
        Ok(analysis)
    }

    /// Detects and embeds every face of an already decoded, upright image.
    pub fn analyze_image(&mut self, image: &RgbImage) -> Result<Analysis, FaceError> {
        let t = Instant::now();
        let (working, scale) = self.working_copy(image);
        let working: &RgbImage = working.as_ref().unwrap_or(image);
        let resize = t.elapsed();
        let mut analysis = self.analyze_working(
            working,
            scale,
            FaceRequest {
                max_faces: usize::MAX,
                liveness: false,
            },
        )?;
        analysis.width = image.width();
        analysis.height = image.height();
        analysis.timings.resize = resize;
        crate::telemetry::stages(self.embedder.backend(), &analysis.timings, false);
        Ok(analysis)
    }

    /// The stages after the working copy exists; `scale` maps its pixels to
    /// the original's.
    fn analyze_working(
        &mut self,
        working: &RgbImage,
        scale: f32,
        request: FaceRequest,
    ) -> Result<Analysis, FaceError> {
        let max_faces = request.max_faces;
        let mut timings = StageTimings::default();
        let t = Instant::now();
        let mut faces = self.detector.detect(working)?;
        faces.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
        let faces_found = faces.len();
        let not_embedded = faces
            .split_off(max_faces.min(faces.len()))
            .iter()
            .map(|f| f.scaled(scale))
            .collect();
        timings.detect = t.elapsed();

        let mut live = vec![None; faces.len()];
        if request.liveness {
            let t = Instant::now();
            for (score, face) in live.iter_mut().zip(&faces) {
                *score = Some(self.live_score(working, face)?);
            }
            timings.pad = t.elapsed();
            crate::telemetry::stage("pad", self.embedder.backend(), timings.pad);
        }

        let t = Instant::now();
        let embeddings = self.embedder.embed(working, &faces)?;
        let faces = faces
            .iter()
            .zip(embeddings)
            .zip(live)
            .map(|((face, embedding), live_score)| AnalyzedFace {
                detection: face.scaled(scale),
                quality: assess(working, face, scale, &self.options.quality),
                embedding,
                live_score,
            })
            .collect();
        timings.embed = t.elapsed();

        Ok(Analysis {
            width: working.width(),
            height: working.height(),
            faces,
            faces_found,
            not_embedded,
            timings,
        })
    }

    /// Embeds chosen faces of an image (boxes and landmarks in its
    /// coordinates, as [`FacePipeline::detect_image`] gives them), with
    /// their quality: a stream detects every frame but embeds only the
    /// tracks that are due a recognition.
    pub fn embed_faces(
        &mut self,
        image: &RgbImage,
        faces: &[DetectedFace],
    ) -> Result<Vec<AnalyzedFace>, FaceError> {
        let t = Instant::now();
        let embeddings = self.embedder.embed(image, faces)?;
        let faces = faces
            .iter()
            .zip(embeddings)
            .map(|(face, embedding)| AnalyzedFace {
                detection: *face,
                quality: assess(image, face, 1.0, &self.options.quality),
                embedding,
                live_score: None,
            })
            .collect();
        crate::telemetry::stage("embed", self.embedder.backend(), t.elapsed());
        Ok(faces)
    }

    /// The live score of one face of an upright image (box in its
    /// coordinates); [`FaceError::PadUnavailable`] without a detector.
    pub fn live_score(&mut self, image: &RgbImage, face: &DetectedFace) -> Result<f32, FaceError> {
        let pad = self.pad.as_mut().ok_or_else(no_pad)?;
        pad.live_score(image, &face.bbox)
    }

    /// Detects faces (no embeddings) in an already decoded image; boxes in
    /// its coordinates, largest first.
    pub fn detect_image(&mut self, image: &RgbImage) -> Result<Vec<DetectedFace>, FaceError> {
        let (working, scale) = self.working_copy(image);
        let working: &RgbImage = working.as_ref().unwrap_or(image);
        let t = Instant::now();
        let mut faces: Vec<_> = self
            .detector
            .detect(working)?
            .iter()
            .map(|f| f.scaled(scale))
            .collect();
        crate::telemetry::stage("detect", self.embedder.backend(), t.elapsed());
        faces.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
        Ok(faces)
    }

    /// The downscaled copy (None when the image is small enough) and the
    /// factor from working-copy pixels to original pixels.
    fn working_copy(&self, image: &RgbImage) -> (Option<RgbImage>, f32) {
        let (w, h) = image.dimensions();
        let (tw, th) = fit_within(w, h, self.options.max_working_side.max(64));
        if (tw, th) == (w, h) {
            return (None, 1.0);
        }
        (Some(resize_rgb(image, tw, th)), w as f32 / tw as f32)
    }
}

fn no_pad() -> FaceError {
    FaceError::PadUnavailable {
        reason: "this pipeline was built without a presentation-attack detector".into(),
    }
}
