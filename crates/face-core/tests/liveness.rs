//! Passive PAD (MiniFASNetV2 + V1SE) on the shared samples, on the fast
//! pipeline's detector (YuNet-n): the two attack samples score below the
//! two live ones, and the crops need the EXIF orientation applied (the
//! samples are stored sideways). The scores are printed: they are the
//! calibration's raw material, not the threshold.
#![allow(clippy::unwrap_used)]

mod common;

use face_core::image::RgbImage;
use face_core::liveness::minifasnet::MiniFasNet;
use face_core::liveness::PresentationAttackDetector;
use face_core::onnx::{self, HeadKind};
use face_core::{decode, FacePipeline, PipelineOptions};

fn detector() -> FacePipeline {
    let mut options = common::onnx_options();
    options.detector.model = "yunet_n_dynamic.onnx".into();
    options.detector.kind = HeadKind::Yunet;
    options.detector.input_size = 640;
    options.detector.max_upscale = 1.0;
    onnx::pipeline(
        &common::onnx_locator(),
        &options,
        PipelineOptions::default(),
    )
    .unwrap()
}

/// The live score of the largest face in `image`.
fn score(p: &mut FacePipeline, pad: &mut MiniFasNet, image: &RgbImage) -> Option<f32> {
    let faces = p.detect_image(image).unwrap();
    let face = faces
        .iter()
        .max_by(|a, b| a.bbox.area().total_cmp(&b.bbox.area()))?;
    Some(pad.live_score(image, &face.bbox).unwrap())
}

#[test]
fn attacks_score_below_live_samples_and_only_upright() {
    let mut p = detector();
    let mut pad = MiniFasNet::open(
        &common::shared().join("models/onnx"),
        &common::onnx_options().runtime,
    )
    .unwrap();
    let dir = common::shared().join("faces/spoof");
    let mut upright = Vec::new();
    let mut sideways = Vec::new();
    let mut misaligned = Vec::new();
    for name in ["F1", "F2", "T1", "T2"] {
        let bytes = std::fs::read(dir.join(format!("silentface_image_{name}.jpg"))).unwrap();
        let image = decode(&bytes, &Default::default()).unwrap().image;
        upright.push(score(&mut p, &mut pad, &image).unwrap());
        // The same bytes without EXIF orientation: how the image is stored.
        let raw = face_core::image::load_from_memory(&bytes)
            .unwrap()
            .to_rgb8();
        sideways.push(score(&mut p, &mut pad, &raw));
        if name != "T2" {
            // The upright box cropped from the stored pixels: what a
            // pipeline that detected upright but cropped the raw image
            // would score.
            let faces = p.detect_image(&image).unwrap();
            let face = faces
                .iter()
                .max_by(|a, b| a.bbox.area().total_cmp(&b.bbox.area()))
                .unwrap();
            misaligned.push(pad.live_score(&raw, &face.bbox).unwrap());
        }
    }
    println!(
        "upright live scores F1 F2 T1 T2: {upright:?}; stored sideways: {sideways:?}; upright boxes on stored pixels F1 F2 T1: {misaligned:?}"
    );
    // Ignoring the orientation loses the face: YuNet finds none in the
    // sideways pixels of the three tagged samples, so nothing is scored.
    assert_eq!(
        &sideways[..3],
        &[None, None, None],
        "stored sideways, a face was found"
    );
    let worst_live = upright[2].min(upright[3]);
    let best_attack = upright[0].max(upright[1]);
    assert!(
        best_attack < worst_live,
        "attacks {:?} must score below live samples {:?}",
        &upright[..2],
        &upright[2..]
    );
}
