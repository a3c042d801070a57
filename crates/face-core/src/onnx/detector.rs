//! ONNX face detectors with five landmarks: YuNet (the default) and SCRFD.
//!
//! Both are anchor-free single-shot detectors with heads at strides 8, 16
//! and 32: every cell of each feature map scores "a face centred here" and
//! regresses its box and five landmarks relative to the cell. They differ
//! only in input normalisation, output names and how a cell's numbers
//! become a box, which is the [`HeadKind`] below; letterboxing, decoding
//! loops and non-maximum suppression are shared.
//!
//! Any input size: a model with a fixed input (YuNet-s 640×640) gets the
//! image scaled to fit inside it; a model with a dynamic input gets the
//! image scaled so its longest side is `input_size`, padded to a multiple
//! of 32. Padding is at the right and bottom, so boxes map back with one
//! scale factor.

use std::path::Path;

use image::RgbImage;
use ort::session::Session;
use ort::value::Tensor;
use serde::{Deserialize, Serialize};

use super::runtime::{self, Provider, RuntimeOptions};
use crate::detect::{non_max_suppression, DetectedFace, Detector};
use crate::geometry::{BoundingBox, LandmarkScheme, Landmarks, Point};
use crate::resize::resize_rgb;
use crate::FaceError;

/// Which detector family a model file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadKind {
    /// YuNet (libfacedetection): BGR 0–255 input; outputs `cls_S`, `obj_S`,
    /// `bbox_S` (centre offset, log size), `kps_S`.
    Yunet,
    /// SCRFD (InsightFace): RGB `(x − 127.5) / 128` input; outputs
    /// `score_S`, `bbox_S` (distances to the edges), `kps_S`, two anchors
    /// per cell. Listed by position (InsightFace exports have numeric names).
    Scrfd,
}

impl HeadKind {
    fn name(self) -> &'static str {
        match self {
            HeadKind::Yunet => "onnx-yunet",
            HeadKind::Scrfd => "onnx-scrfd",
        }
    }
}

/// Detector settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorOptions {
    /// Model file name (looked up in the models directories) or path.
    pub model: String,
    /// The model's family.
    pub kind: HeadKind,
    /// Longest input side for models with a dynamic input size (ignored
    /// when the model's input size is fixed). Multiple of 32.
    pub input_size: u32,
    /// Faces scoring under this are dropped. YuNet's scores are
    /// probabilities and 0.9 is OpenCV's default; on the shared photos it
    /// sits between the weakest portrait (0.93) and the strongest
    /// non-face, a dog (0.87): see the detection tests.
    pub score_threshold: f32,
    /// Small images are enlarged at most this much to fill the network
    /// input. A tight 150 px face crop blown up to fill 640×640 is a face
    /// with no surroundings, which these detectors were not trained on
    /// (YuNet-s scores such crops 0.71–0.75 at 4.3×, 0.93 at 2×).
    pub max_upscale: f32,
    /// Boxes overlapping a better one by more than this IoU are dropped.
    pub nms_iou: f32,
    /// Most faces reported for one image.
    pub max_faces: usize,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        Self {
            model: crate::models::YUNET_S_640.file_name.into(),
            kind: HeadKind::Yunet,
            input_size: 640,
            score_threshold: 0.9,
            max_upscale: 2.0,
            nms_iou: 0.3,
            max_faces: 100,
        }
    }
}

const STRIDES: [u32; 3] = [8, 16, 32];

/// An ONNX face detector.
pub struct OnnxDetector {
    session: Session,
    kind: HeadKind,
    input_name: String,
    /// Output indices per stride: score (and obj for YuNet), bbox, kps.
    heads: Vec<Head>,
    /// `Some((w, h))` when the model's input size is fixed.
    fixed_input: Option<(u32, u32)>,
    options: DetectorOptions,
    provider: Provider,
}

#[derive(Debug, Clone)]
struct Head {
    stride: u32,
    score: usize,
    obj: Option<usize>,
    bbox: usize,
    kps: usize,
}

impl OnnxDetector {
    /// How images are fitted to the network's input, for the pipeline's
    /// fingerprint.
    pub fn input_policy(&self) -> String {
        let o = &self.options;
        match self.fixed_input {
            Some((w, h)) => format!("fixed {w}x{h}, upscale at most {}", o.max_upscale),
            None => format!(
                "longest side {}, upscale at most {}",
                o.input_size, o.max_upscale
            ),
        }
    }

    /// Opens the model at `path`, checks that its outputs are those of
    /// `options.kind`, and runs one inference to prove it works.
    pub fn new(
        path: &Path,
        options: DetectorOptions,
        runtime: &RuntimeOptions,
    ) -> Result<Self, FaceError> {
        let opened = runtime::open_session(path, runtime)?;
        let session = opened.session;
        let unfit = |reason: String| FaceError::ModelUnfit {
            path: path.to_path_buf(),
            reason,
        };
        let (input_name, shape) = runtime::image_input(&session, path)?;
        let fixed_input =
            (shape[2] > 0 && shape[3] > 0).then(|| (shape[3] as u32, shape[2] as u32));
        if options.input_size < 32 || !options.input_size.is_multiple_of(32) {
            return Err(unfit(format!(
                "input_size {} must be a positive multiple of 32",
                options.input_size
            )));
        }

        let names: Vec<String> = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        let heads = match options.kind {
            HeadKind::Yunet => {
                let find = |n: String| {
                    names.iter().position(|x| *x == n).ok_or_else(|| {
                        unfit(format!(
                            "not a YuNet model: no output {n} (outputs: {names:?})"
                        ))
                    })
                };
                STRIDES
                    .iter()
                    .map(|&s| {
                        Ok(Head {
                            stride: s,
                            score: find(format!("cls_{s}"))?,
                            obj: Some(find(format!("obj_{s}"))?),
                            bbox: find(format!("bbox_{s}"))?,
                            kps: find(format!("kps_{s}"))?,
                        })
                    })
                    .collect::<Result<Vec<_>, FaceError>>()?
            }
            HeadKind::Scrfd => {
                // InsightFace's export order: scores for the three strides,
                // then boxes, then landmarks.
                if names.len() != 9 {
                    return Err(unfit(format!(
                        "not an SCRFD model with landmarks: expected 9 outputs, found {}",
                        names.len()
                    )));
                }
                STRIDES
                    .iter()
                    .enumerate()
                    .map(|(i, &s)| Head {
                        stride: s,
                        score: i,
                        obj: None,
                        bbox: 3 + i,
                        kps: 6 + i,
                    })
                    .collect()
            }
        };

        let mut detector = Self {
            session,
            kind: options.kind,
            input_name,
            heads,
            fixed_input,
            options,
            provider: opened.provider,
        };
        // One inference on a blank image: proves the outputs have the shapes
        // the decoder expects before the first request does.
        detector
            .detect(&RgbImage::new(64, 64))
            .map_err(|e| unfit(format!("trial inference failed: {e}")))?;
        Ok(detector)
    }

    /// The provider inference runs on.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The network input size for an image of `w`×`h`, and the factor from
    /// image pixels to network pixels.
    fn input_geometry(&self, w: u32, h: u32) -> (u32, u32, f32) {
        let (max_w, max_h) = self
            .fixed_input
            .unwrap_or((self.options.input_size, self.options.input_size));
        let scale = (max_w as f32 / w as f32)
            .min(max_h as f32 / h as f32)
            .min(self.options.max_upscale.max(f32::MIN_POSITIVE));
        match self.fixed_input {
            Some((fw, fh)) => (fw, fh, scale),
            None => {
                let round_up = |v: f32| ((v.ceil() as u32).div_ceil(32) * 32).max(32);
                (
                    round_up(w as f32 * scale),
                    round_up(h as f32 * scale),
                    scale,
                )
            }
        }
    }

    /// The image letterboxed into an NCHW float tensor in the model's
    /// channel order and normalisation.
    fn input_tensor(&self, image: &RgbImage, nw: u32, nh: u32, scale: f32) -> Vec<f32> {
        let tw = ((image.width() as f32 * scale).round() as u32).clamp(1, nw);
        let th = ((image.height() as f32 * scale).round() as u32).clamp(1, nh);
        // The image itself when it is already the size (no copy).
        let resized = if (tw, th) == image.dimensions() {
            std::borrow::Cow::Borrowed(image)
        } else {
            std::borrow::Cow::Owned(resize_rgb(image, tw, th))
        };
        let (channels, mean, std) = match self.kind {
            // BGR, raw 0–255.
            HeadKind::Yunet => ([2usize, 1, 0], 0.0f32, 1.0f32),
            // RGB, (x − 127.5) / 128; padding is the mean (0 after
            // normalisation), as in InsightFace's preprocessing.
            HeadKind::Scrfd => ([0usize, 1, 2], 127.5, 128.0),
        };
        // The tensor written front to back, one plane at a time, padding
        // included: no zero-filled buffer written twice.
        let (nw, tw) = (nw as usize, tw as usize);
        let plane = nw * nh as usize;
        let mut data = Vec::with_capacity(3 * plane);
        for (plane_idx, &src_c) in channels.iter().enumerate() {
            for row in resized.as_raw().chunks_exact(tw * 3) {
                super::tensor::push_channel(&mut data, row, src_c, mean, std);
                data.resize(data.len() + (nw - tw), 0.0);
            }
            data.resize((plane_idx + 1) * plane, 0.0);
        }
        data
    }
}

impl Detector for OnnxDetector {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn min_eye_distance(&self) -> f32 {
        crate::quality::EYE_CENTRE_MIN_EYE_DISTANCE
    }

    fn detect(&mut self, image: &RgbImage) -> Result<Vec<DetectedFace>, FaceError> {
        let (w, h) = image.dimensions();
        if w == 0 || h == 0 {
            return Ok(Vec::new());
        }
        let (nw, nh, scale) = self.input_geometry(w, h);
        let data = self.input_tensor(image, nw, nh, scale);
        let backend = |e: ort::Error| FaceError::Backend {
            backend: "onnx",
            message: format!("detector inference failed: {e}"),
        };
        let tensor =
            Tensor::from_array(([1usize, 3, nh as usize, nw as usize], data)).map_err(backend)?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(backend)?;
        let out = |i: usize| -> Result<&[f32], FaceError> {
            outputs[i]
                .try_extract_tensor::<f32>()
                .map(|(_, d)| d)
                .map_err(backend)
        };

        let mut faces = Vec::new();
        let inv = 1.0 / scale;
        for head in &self.heads {
            let s = head.stride as f32;
            let cols = (nw / head.stride) as usize;
            let rows = (nh / head.stride) as usize;
            let cells = cols * rows;
            let score = out(head.score)?;
            let obj = head.obj.map(out).transpose()?;
            let bbox = out(head.bbox)?;
            let kps = out(head.kps)?;
            if cells == 0 || score.len() % cells != 0 {
                return Err(FaceError::Backend {
                    backend: "onnx",
                    message: format!(
                        "stride {} output has {} scores for a {cols}×{rows} grid",
                        head.stride,
                        score.len()
                    ),
                });
            }
            let anchors = score.len() / cells;
            if bbox.len() != score.len() * 4
                || kps.len() != score.len() * 10
                || obj.is_some_and(|o| o.len() != score.len())
            {
                return Err(FaceError::Backend {
                    backend: "onnx",
                    message: format!("stride {} outputs disagree in length", head.stride),
                });
            }
            for idx in 0..score.len() {
                let p = match obj {
                    Some(obj) => (score[idx].clamp(0.0, 1.0) * obj[idx].clamp(0.0, 1.0)).sqrt(),
                    None => score[idx],
                };
                // NaN scores fail this too.
                if p.is_nan() || p < self.options.score_threshold {
                    continue;
                }
                let cell = idx / anchors;
                let (cx, cy) = ((cell % cols) as f32, (cell / cols) as f32);
                let b = &bbox[idx * 4..idx * 4 + 4];
                let k = &kps[idx * 10..idx * 10 + 10];
                let (bbox, points) = match self.kind {
                    HeadKind::Yunet => {
                        let (x, y) = ((cx + b[0]) * s, (cy + b[1]) * s);
                        let (bw, bh) = (b[2].exp() * s, b[3].exp() * s);
                        let bbox = BoundingBox::from_edges(
                            x - bw / 2.0,
                            y - bh / 2.0,
                            x + bw / 2.0,
                            y + bh / 2.0,
                        );
                        let points = std::array::from_fn(|i| {
                            Point::new((k[2 * i] + cx) * s, (k[2 * i + 1] + cy) * s)
                        });
                        (bbox, points)
                    }
                    HeadKind::Scrfd => {
                        let (ax, ay) = (cx * s, cy * s);
                        let bbox = BoundingBox::from_edges(
                            ax - b[0] * s,
                            ay - b[1] * s,
                            ax + b[2] * s,
                            ay + b[3] * s,
                        );
                        let points = std::array::from_fn(|i| {
                            Point::new(ax + k[2 * i] * s, ay + k[2 * i + 1] * s)
                        });
                        (bbox, points)
                    }
                };
                if !(bbox.width.is_finite() && bbox.height.is_finite())
                    || bbox.width <= 0.0
                    || bbox.height <= 0.0
                {
                    continue;
                }
                faces.push(DetectedFace {
                    bbox: bbox.scaled(inv),
                    score: p,
                    landmarks: Landmarks {
                        scheme: LandmarkScheme::ArcFace5,
                        points: points.map(|p: Point| p.scaled(inv)),
                    },
                });
            }
        }
        Ok(non_max_suppression(
            faces,
            self.options.nms_iou,
            self.options.max_faces,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_name_the_licence_clean_yunet() {
        let d = DetectorOptions::default();
        assert_eq!(d.model, "yunet_s_640_640.onnx");
        assert_eq!(d.kind, HeadKind::Yunet);
        assert_eq!(d.input_size % 32, 0);
    }
}
