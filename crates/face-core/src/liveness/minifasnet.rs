//! The MiniFASNetV2 (2.7× context) + MiniFASNetV1SE (4.0× context) pair
//! from Silent-Face-Anti-Spoofing (Apache-2.0), run with ONNX Runtime.
//! Preprocessing follows the authors: the context box shifted inside the
//! image, resized to 80×80, raw BGR 0–255 as floats; each model's three
//! logits go through a softmax, the two are added, and class 1 is live.
//! The score is that sum halved, so 0..=1. Both files take a batch of one.

use std::path::Path;

use image::imageops::{self, FilterType};
use image::RgbImage;
use ort::session::Session;
use ort::value::Tensor;

use super::{context_box, PresentationAttackDetector};
use crate::geometry::BoundingBox;
use crate::onnx::runtime::{self, RuntimeOptions};
use crate::FaceError;

/// The two files' names in the models directory, with their context scale.
pub const MODELS: [(&str, f32); 2] = [
    ("minifasnet_v2_2.7_80x80.onnx", 2.7),
    ("minifasnet_v1se_4.0_80x80.onnx", 4.0),
];

const SIDE: u32 = 80;

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

impl MiniFasNet {
    /// Opens both files of [`MODELS`] in `dir`.
    pub fn open(dir: &Path, options: &RuntimeOptions) -> Result<Self, FaceError> {
        let mut members = Vec::with_capacity(MODELS.len());
        for (file, scale) in MODELS {
            let path = dir.join(file);
            let opened = runtime::open_session(&path, options)?;
            let (input, _) = runtime::image_input(&opened.session, &path)?;
            members.push(Member {
                session: opened.session,
                input,
                scale,
            });
        }
        Ok(Self { members })
    }
}

/// The 80×80 BGR float tensor of one context crop.
fn crop_tensor(image: &RgbImage, face: &BoundingBox, scale: f32) -> Vec<f32> {
    let (l, t, r, b) = context_box(face, image.width(), image.height(), scale);
    let crop = imageops::crop_imm(image, l, t, r - l + 1, b - t + 1).to_image();
    let chip = imageops::resize(&crop, SIDE, SIDE, FilterType::Triangle);
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
