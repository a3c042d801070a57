//! The ONNX backend on the real photos and models: both ONNX pipelines
//! (YuNet-s + MobileFaceNet from the shared models, and the default YuNet
//! 2023mar + SFace that scripts/setup.sh installs) meet the dlib
//! pipeline's bars and separate the labelled pairs at their calibrated
//! thresholds, the 512-D path agrees with onnxruntime's Python API on a generated model, faces
//! are batched, and misconfiguration fails with errors that say what to do.
#![allow(clippy::unwrap_used)]

mod common;

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::Command;

use face_core::calibration::{shipped_dir, Calibration};
use face_core::geometry::{BoundingBox, LandmarkScheme, Landmarks, Point};
use face_core::image::{imageops, RgbImage};
use face_core::onnx::{self, HeadKind, OnnxOptions, Provider};
use face_core::{decode, DetectedFace, Embedder, FaceError, FacePipeline, Metric, PipelineOptions};

/// Runs `bar` on each of [`common::ONNX_PIPELINES`], every one even when
/// an earlier one failed (missing models included: that is a failure with
/// what to run, never a skip), and fails naming those that failed.
fn on_every_pipeline(bar: impl Fn(&common::OnnxCase, &mut FacePipeline)) {
    let mut failed = Vec::new();
    for case in &common::ONNX_PIPELINES {
        println!("== {}", case.name);
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| bar(case, &mut case.pipeline())));
        if result.is_err() {
            failed.push(case.name);
        }
    }
    assert!(failed.is_empty(), "failed on: {failed:?} (see above)");
}

#[test]
fn every_portrait_has_exactly_one_face() {
    on_every_pipeline(|_, p| common::bars::every_portrait_has_exactly_one_face(p));
}

#[test]
fn photos_without_people_have_no_face() {
    on_every_pipeline(|_, p| common::bars::photos_without_people_have_no_face(p));
}

#[test]
fn group_photos_find_most_annotated_faces_and_invent_none() {
    on_every_pipeline(|case, p| {
        let recall = common::bars::group_photos_find_most_annotated_faces_and_invent_none(p);
        // The shared bar is 80%; each pipeline's own (see its entry)
        // guards against its detector getting worse.
        assert!(
            recall >= case.min_group_recall,
            "{}: recall {recall:.3} under {}",
            case.name,
            case.min_group_recall
        );
    });
}

#[test]
fn same_and_different_people_separate_at_the_calibrated_threshold() {
    on_every_pipeline(|case, p| {
        let model = p.model().clone();
        assert_eq!(model.dimension, 128);
        assert_eq!(model.metric, Metric::Cosine);
        assert_eq!(model.id, case.model_id);
        // The calibration measured on LFW with this very pipeline (the
        // fingerprint check refuses one measured with another detector or
        // normalisation), not a threshold tuned here.
        let calibration =
            Calibration::find_for_pipeline(&shipped_dir(), &model, case.fingerprint())
                .unwrap()
                .0;
        calibration.check_pipeline(case.fingerprint()).unwrap();
        let threshold = calibration.thresholds.verify;
        println!(
            "{}: verify threshold {threshold} (FMR {:e} on LFW)",
            case.name, calibration.thresholds.verify_fmr
        );
        common::bars::same_person_pairs_are_close_and_different_people_far(p, threshold);
    });
}

#[test]
fn embeddings_are_unit_length_and_stable_across_resolutions() {
    on_every_pipeline(|_, p| {
        let sizes = ["240p", "480p", "720p", "1080p"];
        let embs: Vec<_> = sizes
            .iter()
            .map(|s| {
                let bytes = common::photo(&format!("people/obama/face_recognition_obama-{s}.jpg"));
                common::bars::embed_one(p, &bytes).unwrap_or_else(|| panic!("no face at {s}"))
            })
            .collect();
        for e in &embs {
            let norm: f32 = e.values().iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "{norm}");
        }
        for i in 0..embs.len() {
            for j in i + 1..embs.len() {
                let d = embs[i].distance(&embs[j]).unwrap();
                println!("{} vs {}: cosine distance {d:.4}", sizes[i], sizes[j]);
                assert!(d < 0.1, "{} vs {}: {d}", sizes[i], sizes[j]);
            }
        }
    });
}

#[test]
fn exif_rotated_photo_is_found_upright() {
    on_every_pipeline(|_, p| {
        common::bars::exif_rotated_photo_is_found_upright(p);
    });
}

#[test]
fn landmarks_are_in_arcface_order_and_inside_the_box() {
    on_every_pipeline(|_, p| {
        let a = p
            .analyze(&common::photo("people/obama/face_recognition_obama.jpg"))
            .unwrap();
        assert_eq!(a.faces.len(), 1);
        let f = &a.faces[0].detection;
        assert_eq!(f.landmarks.scheme, LandmarkScheme::ArcFace5);
        let [le, re, nose, lm, rm] = f.landmarks.points;
        assert!(le.x < re.x && lm.x < rm.x, "{:?}", f.landmarks);
        assert!(le.y < nose.y && nose.y < lm.y, "{:?}", f.landmarks);
        for pt in f.landmarks.points {
            assert!(
                pt.x > f.bbox.left
                    && pt.x < f.bbox.right()
                    && pt.y > f.bbox.top
                    && pt.y < f.bbox.bottom(),
                "{pt:?} outside {:?}",
                f.bbox
            );
        }
        println!("score {:.3}", f.score);
        assert!(f.score > 0.9 && f.score <= 1.0, "{}", f.score);
    });
}

#[test]
fn faces_of_one_photo_are_embedded_in_one_batch_like_one_by_one() {
    let mut p = common::onnx_pipeline();
    let bytes = common::photo("group/face_recognition_obama_and_biden.jpg");
    let image = decode(&bytes, &Default::default()).unwrap().image;
    let faces = p.detect_image(&image).unwrap();
    assert!(faces.len() >= 2, "{}", faces.len());
    let (_, mut embedder) = onnx::parts(
        &onnx::OnnxModels::locate(&common::onnx_locator(), &common::onnx_options()).unwrap(),
        &common::onnx_options(),
    )
    .unwrap();
    let batched = embedder.embed(&image, &faces).unwrap();
    assert_eq!(batched.len(), faces.len());
    for (face, b) in faces.iter().zip(&batched) {
        let single = embedder.embed(&image, std::slice::from_ref(face)).unwrap();
        let d = single[0].distance(b).unwrap();
        assert!(d < 1e-5, "batched vs single: {d}");
    }
    let d = batched[0].distance(&batched[1]).unwrap();
    assert!(d > 0.5, "two different people: {d}");
}

#[test]
fn scrfd_and_dynamic_yunet_run_through_the_same_detector_code() {
    let bytes = common::photo("people/obama/face_recognition_obama.jpg");
    let image = decode(&bytes, &Default::default()).unwrap().image;
    let reference = common::onnx_pipeline().detect_image(&image).unwrap();
    assert_eq!(reference.len(), 1);

    for (model, kind, input_size) in [
        ("scrfd_500m_bnkps.onnx", HeadKind::Scrfd, 640),
        ("yunet_n_dynamic.onnx", HeadKind::Yunet, 480),
        ("yunet_n_dynamic.onnx", HeadKind::Yunet, 320),
    ] {
        let mut options = common::onnx_options();
        options.detector.model = model.into();
        options.detector.kind = kind;
        options.detector.input_size = input_size;
        options.detector.score_threshold = 0.5;
        let mut p = onnx::pipeline(
            &common::onnx_locator(),
            &options,
            PipelineOptions::default(),
        )
        .unwrap();
        let faces = p.detect_image(&image).unwrap();
        assert_eq!(faces.len(), 1, "{model} at {input_size}: {faces:?}");
        let iou = faces[0].bbox.iou(&reference[0].bbox);
        let eye_shift = faces[0].landmarks.points[0].x - reference[0].landmarks.points[0].x;
        println!("{model} at {input_size}: IoU with YuNet-s {iou:.3}, left eye dx {eye_shift:.1} px, score {:.3}", faces[0].score);
        assert!(iou > 0.6, "{model}: IoU {iou}");
        assert!(
            eye_shift.abs() < 0.05 * reference[0].bbox.width,
            "{model}: {eye_shift}"
        );
    }
}

/// The Python interpreter with onnx and onnxruntime (scripts/setup.sh --test).
fn python() -> PathBuf {
    std::env::var_os("FACEGATE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::workspace().join(".cache/pyenv/bin/python"))
}

/// Chip `k` of scripts/tiny-arcface.py: RGB (7x + 13y + 29c + 31k) mod 256.
fn procedural_chip(k: u32) -> RgbImage {
    RgbImage::from_fn(112, 112, |x, y| {
        face_core::image::Rgb(
            [0u32, 1, 2].map(|c| ((7 * x + 13 * y + 29 * c + 31 * k) % 256) as u8),
        )
    })
}

#[test]
fn a_512_d_arcface_shaped_model_matches_onnxruntime_python() {
    let dir = tempfile_dir("tiny-arcface");
    let script = common::workspace().join("scripts/tiny-arcface.py");
    let status = Command::new(python())
        .arg(&script)
        .arg(&dir)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; run scripts/setup.sh --test",
                python().display()
            )
        });
    assert!(status.success(), "{} failed", script.display());
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("tiny_arcface_512.reference.json")).unwrap(),
    )
    .unwrap();
    let expected: Vec<Vec<f32>> = serde_json::from_value(reference["normalized"].clone()).unwrap();
    assert_eq!(expected.len(), 3);

    let model = onnx::resolve_model(
        &face_core::models::ModelLocator::with_dirs(vec![dir.clone()]),
        "tiny_arcface_512.onnx",
    )
    .unwrap();
    let mut embedder = onnx::ArcFaceEmbedder::new(
        &model.path,
        &model.sha256,
        &onnx::EmbedderOptions {
            model: "tiny_arcface_512.onnx".into(),
            ..Default::default()
        },
        &common::onnx_runtime(),
    )
    .unwrap();
    let info = embedder.model().clone();
    assert_eq!(info.dimension, 512);
    assert_eq!(info.metric, Metric::Cosine);
    assert_eq!(info.id, format!("tiny_arcface_512_{}", &model.sha256[..8]));

    // The three chips side by side; each face's landmarks are the template
    // itself shifted onto its chip, so alignment is an exact translation and
    // the model sees the same pixels as the Python reference. One call, so
    // the three are one batch.
    let mut canvas = RgbImage::new(3 * 112, 112);
    let faces: Vec<DetectedFace> = (0..3u32)
        .map(|k| {
            imageops::replace(&mut canvas, &procedural_chip(k), i64::from(k) * 112, 0);
            let dx = k as f32 * 112.0;
            DetectedFace {
                bbox: BoundingBox::from_edges(dx, 0.0, dx + 112.0, 112.0),
                score: 1.0,
                landmarks: Landmarks {
                    scheme: LandmarkScheme::ArcFace5,
                    points: face_core::align::ARCFACE_TEMPLATE_112
                        .map(|p| Point::new(p.x + dx, p.y)),
                },
            }
        })
        .collect();
    for (k, face) in faces.iter().enumerate() {
        let chip = embedder.chip(&canvas, face).unwrap();
        assert_eq!(
            chip,
            procedural_chip(k as u32),
            "chip {k} is not an exact copy"
        );
    }
    let got = embedder.embed(&canvas, &faces).unwrap();
    let mut worst = 0.0f32;
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g.values().len(), 512);
        for (a, b) in g.values().iter().zip(e) {
            worst = worst.max((a - b).abs());
        }
    }
    println!("512-D: largest difference from onnxruntime Python: {worst:e}");
    assert!(worst < 1e-5, "{worst}");
}

#[test]
fn cuda_asked_for_on_a_cpu_library_falls_back_to_the_cpu() {
    let mut options = common::onnx_options();
    options.runtime.provider = Provider::Cuda;
    let mut p = onnx::pipeline(
        &common::onnx_locator(),
        &options,
        PipelineOptions::default(),
    )
    .unwrap();
    assert_eq!(p.execution(), "cpu");
    let a = p
        .analyze(&common::photo("people/obama/face_recognition_obama.jpg"))
        .unwrap();
    assert_eq!(a.faces.len(), 1);
}

#[test]
fn misconfigured_models_fail_with_a_reason() {
    let locator = common::onnx_locator();
    // An embedder given as the detector.
    let mut options = common::onnx_options();
    options.detector.model = "mobilefacenet_128d.onnx".into();
    let err = onnx::pipeline(&locator, &options, PipelineOptions::default())
        .err()
        .unwrap();
    println!("{err}");
    assert!(matches!(err, FaceError::ModelUnfit { .. }), "{err}");
    assert!(err.to_string().contains("YuNet"), "{err}");

    // A detector given as the embedder: its first output is no embedding.
    let mut options = common::onnx_options();
    options.embedder.model = "yunet_s_640_640.onnx".into();
    let err = onnx::pipeline(&locator, &options, PipelineOptions::default())
        .err()
        .unwrap();
    println!("{err}");
    assert!(matches!(err, FaceError::ModelUnfit { .. }), "{err}");

    // A missing file names itself and where it was looked for.
    let mut options = common::onnx_options();
    options.embedder.model = "w600k_r50.onnx".into();
    let err = onnx::pipeline(&locator, &options, PipelineOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, FaceError::ModelMissing { .. }), "{err}");
    assert!(err.to_string().contains("w600k_r50.onnx"), "{err}");

    // A known model name whose bytes are not that model.
    let dir = tempfile_dir("corrupt-onnx");
    std::fs::write(dir.join("mobilefacenet_128d.onnx"), b"not a model").unwrap();
    let err = onnx::resolve_model(
        &face_core::models::ModelLocator::with_dirs(vec![dir]),
        "mobilefacenet_128d.onnx",
    )
    .unwrap_err();
    assert!(matches!(err, FaceError::ModelCorrupt { .. }), "{err}");

    // An unknown file that is not ONNX at all.
    let dir = tempfile_dir("garbage-onnx");
    std::fs::write(dir.join("mine.onnx"), b"\x08\x07garbage").unwrap();
    let mut options = common::onnx_options();
    options.embedder.model = dir.join("mine.onnx").display().to_string();
    let err = onnx::pipeline(&locator, &options, PipelineOptions::default())
        .err()
        .unwrap();
    println!("{err}");
    assert!(matches!(err, FaceError::Backend { .. }), "{err}");
}

#[test]
fn settings_parse_from_toml_and_refuse_unknown_keys() {
    let options: OnnxOptions = toml_like(
        r#"{"runtime": {"provider": "cuda", "intra_threads": 2},
            "detector": {"model": "scrfd_500m_bnkps.onnx", "kind": "scrfd"},
            "embedder": {"model": "w600k_r50.onnx", "channels": "bgr", "std": 127.5}}"#,
    )
    .unwrap();
    assert_eq!(options.runtime.provider, Provider::Cuda);
    assert_eq!(options.detector.kind, HeadKind::Scrfd);
    assert_eq!(options.detector.score_threshold, 0.9);
    assert_eq!(options.embedder.max_batch, 16);
    assert!(toml_like(r#"{"detector": {"modle": "x.onnx"}}"#).is_err());
}

fn toml_like(json: &str) -> Result<OnnxOptions, serde_json::Error> {
    serde_json::from_str(json)
}

/// A fresh directory under the target directory's temp area.
fn tempfile_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fg-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
