//! The MiniFASNetV2 (2.7× context) + MiniFASNetV1SE (4.0× context) pair
//! from Silent-Face-Anti-Spoofing (Apache-2.0), run with ONNX Runtime.
//! Preprocessing follows the authors: the context box shifted inside the
//! image, resized to 80×80, raw BGR 0–255 as floats; each model's three
//! logits go through a softmax, the two are added, and class 1 is live.
//! The score is that sum halved, so 0..=1. Both files take a batch of one.
//!
//! The files are in no package registry, so they are located (and
//! checksummed) once as [`MiniFasNetFiles`], with an error that says where
//! to get them, and each worker opens its own sessions from them.

use std::path::PathBuf;

use image::imageops;
use image::RgbImage;
use ort::session::Session;
use ort::value::Tensor;

use super::{context_box, PresentationAttackDetector};
use crate::geometry::BoundingBox;
use crate::models::{KnownModel, ModelLocator, MINIFASNET_V1SE, MINIFASNET_V2};
use crate::onnx::runtime::{self, RuntimeOptions};
use crate::FaceError;

/// The pair with the context scale each was trained on.
pub const MODELS: [(KnownModel, f32); 2] = [(MINIFASNET_V2, 2.7), (MINIFASNET_V1SE, 4.0)];

const SIDE: u32 = 80;

/// The pair's files, found and checksummed.
#[derive(Debug, Clone)]
pub struct MiniFasNetFiles {
    paths: Vec<(PathBuf, f32)>,
}

impl MiniFasNetFiles {
    /// Finds both files of [`MODELS`] through `locator` and checks their
    /// SHA-256; [`FaceError::PadUnavailable`] names every missing or
    /// damaged file and where to get it.
    pub fn locate(locator: &ModelLocator) -> Result<Self, FaceError> {
        let mut paths = Vec::with_capacity(MODELS.len());
        let mut problems = Vec::new();
        for (model, scale) in MODELS {
            match locator.find_verified(&model) {
                Ok(path) => paths.push((path, scale)),
                Err(FaceError::ModelMissing { file, searched }) => {
                    problems.push(format!("{file} not found (looked in: {searched})"));
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        if problems.is_empty() {
            return Ok(Self { paths });
        }
        Err(FaceError::PadUnavailable {
            reason: format!(
                "{}; get the MiniFASNetV2 and MiniFASNetV1SE ONNX files (Apache-2.0, from the \
                 Silent-Face-Anti-Spoofing weights; see README, \"Liveness\"), check their \
                 SHA-256 and put them in the models directory (face.models_dir or \
                 FACEGATE_MODELS_DIR)",
                problems.join("; ")
            ),
        })
    }

    /// Opens a session on each file: one detector for one thread.
    pub fn open(&self, options: &RuntimeOptions) -> Result<MiniFasNet, FaceError> {
        let mut members = Vec::with_capacity(self.paths.len());
        for (path, scale) in &self.paths {
            let opened = runtime::open_session(path, options)?;
            let (input, _) = runtime::image_input(&opened.session, path)?;
            members.push(Member {
                session: opened.session,
                input,
                scale: *scale,
            });
        }
        Ok(MiniFasNet { members })
    }
}

/// What the pair is, for the liveness calibration's fingerprint: the
/// files' checksum prefixes and the preprocessing.
pub fn fingerprint() -> String {
    let parts: Vec<String> = MODELS
        .iter()
        .map(|(m, scale)| format!("{} {} at {scale}x", m.file_name, &m.sha256[..8]))
        .collect();
    format!(
        "{}; {SIDE}x{SIDE} BGR 0-255, context box shifted inside the image",
        parts.join(" + ")
    )
}

/// One model of the pair with the context scale it was trained on.
struct Member {
    session: Session,
    input: String,
    scale: f32,
}

/// The MiniFASNet pair as one [`PresentationAttackDetector`].
pub struct MiniFasNet {
    members: Vec<Member>,
}

fn backend(e: impl std::fmt::Display) -> FaceError {
    FaceError::Backend {
        backend: "onnx",
        message: format!("anti-spoofing inference failed: {e}"),
    }
}

/// The 80×80 BGR float tensor of one context crop.
fn crop_tensor(image: &RgbImage, face: &BoundingBox, scale: f32) -> Vec<f32> {
    let (l, t, r, b) = context_box(face, image.width(), image.height(), scale);
    let crop = imageops::crop_imm(image, l, t, r - l + 1, b - t + 1).to_image();
    // The SIMD resizer: a 4x context box is most of a VGA frame, and
    // `image`'s own triangle filter took most of the check's time on it.
    let chip = crate::resize::resize_rgb(&crop, SIDE, SIDE);
    let plane = (SIDE * SIDE) as usize;
    let mut data = vec![0.0f32; 3 * plane];
    for (i, px) in chip.pixels().enumerate() {
        // BGR planes: the models were trained on OpenCV's channel order.
        data[i] = f32::from(px[2]);
        data[plane + i] = f32::from(px[1]);
        data[2 * plane + i] = f32::from(px[0]);
    }
    data
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|v| v / sum).collect()
}

impl PresentationAttackDetector for MiniFasNet {
    fn live_score(&mut self, image: &RgbImage, face: &BoundingBox) -> Result<f32, FaceError> {
        let mut live = 0.0f32;
        for m in &mut self.members {
            let data = crop_tensor(image, face, m.scale);
            let tensor = Tensor::from_array(([1usize, 3, SIDE as usize, SIDE as usize], data))
                .map_err(backend)?;
            let outputs = m
                .session
                .run(ort::inputs![m.input.as_str() => tensor])
                .map_err(backend)?;
            let (_, values) = outputs[0].try_extract_tensor::<f32>().map_err(backend)?;
            if values.len() != 3 {
                return Err(backend(format!("{} logits, expected 3", values.len())));
            }
            live += softmax(values)[1];
        }
        Ok(live / self.members.len() as f32)
    }
}
