//! Passive PAD (MiniFASNetV2 + V1SE) on the shared samples, on the fast
//! pipeline's detector (YuNet-n): the two attack samples score below the
//! two live ones, and the EXIF orientation must be applied (the samples
//! are stored sideways, and the detector finds no face in them then). The scores are printed: they are the
//! calibration's raw material, not the threshold.
#![allow(clippy::unwrap_used)]

mod common;

use face_core::image::RgbImage;
use face_core::liveness::minifasnet::MiniFasNet;
use face_core::liveness::PresentationAttackDetector;
use face_core::{decode, BoundingBox, FacePipeline};

/// The box of the largest face found in `image`.
fn largest(p: &mut FacePipeline, image: &RgbImage) -> Option<BoundingBox> {
    p.detect_image(image)
        .unwrap()
        .iter()
        .map(|f| f.bbox)
        .max_by(|a, b| a.area().total_cmp(&b.area()))
}

#[test]
fn attacks_score_below_live_samples_and_only_upright() {
    let mut p = common::fast_pipeline();
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
        let face = largest(&mut p, &image).unwrap();
        upright.push(pad.live_score(&image, &face).unwrap());
        // The same bytes without EXIF orientation: how the image is stored.
        let raw = face_core::image::load_from_memory(&bytes)
            .unwrap()
            .to_rgb8();
        sideways.push(largest(&mut p, &raw).map(|f| pad.live_score(&raw, &f).unwrap()));
        if name != "T2" {
            // The upright box cropped from the stored pixels: what a
            // pipeline that detected upright but cropped the raw image
            // would score.
            misaligned.push(pad.live_score(&raw, &face).unwrap());
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
