//! Criterion benchmarks of the face pipeline, one group per question.
//!
//! Run (out of CI; single-threaded BLAS so figures are per core):
//! ```text
//! OPENBLAS_NUM_THREADS=1 cargo bench -p face-core --bench pipeline
//! ```
//! Inputs are real photos from `shared/faces` (see tests/common), scaled
//! deterministically: no randomness, so nothing to seed.
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use face_core::image::{imageops, RgbImage};
use face_core::{decode, decode_scaled, DecodeLimits, Detector, Embedder};

fn scaled_photo(w: u32, h: u32) -> RgbImage {
    let src = decode(
        &common::photo("people/obama/face_recognition_obama-1080p.jpg"),
        &Default::default(),
    )
    .unwrap()
    .image;
    imageops::resize(&src, w, h, imageops::FilterType::Triangle)
}

fn sizes() -> Vec<(&'static str, RgbImage)> {
    let lfw = decode(
        &std::fs::read(common::shared().join("datasets/lfw/Aaron_Eckhart/Aaron_Eckhart_0001.jpg"))
            .unwrap(),
        &Default::default(),
    )
    .unwrap()
    .image;
    vec![
        ("250x250", lfw),
        (
            "640x480",
            decode(&common::vga_jpeg(), &Default::default())
                .unwrap()
                .image,
        ),
        ("1920x1080", scaled_photo(1920, 1080)),
        (
            "4032x3024",
            decode(&common::large_jpeg(), &Default::default())
                .unwrap()
                .image,
        ),
    ]
}

fn bench_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    let limits = DecodeLimits::default();
    for (name, bytes) in [
        ("640x480", common::vga_jpeg()),
        ("4032x3024", common::large_jpeg()),
    ] {
        g.bench_with_input(BenchmarkId::new("full", name), &bytes, |b, bytes| {
            b.iter(|| decode(bytes, &limits).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("to_1024", name), &bytes, |b, bytes| {
            b.iter(|| decode_scaled(bytes, &limits, 1024).unwrap())
        });
    }
    g.finish();
}

fn bench_detect(c: &mut Criterion) {
    let models = face_core::dlib::DlibModels::locate(&common::locator()).unwrap();
    let mut hog = face_core::dlib::HogDetector::new(&models.landmarks, Default::default()).unwrap();
    let mut g = c.benchmark_group("hog_detect");
    // Whole images straight into the detector (no working copy), to show
    // what the downscaling policy saves.
    for (name, img) in sizes() {
        if name == "4032x3024" {
            g.sample_size(10);
        }
        g.bench_with_input(BenchmarkId::from_parameter(name), &img, |b, img| {
            b.iter(|| hog.detect(img).unwrap())
        });
    }
    g.finish();
}

fn bench_landmarks_and_embedding(c: &mut Criterion) {
    let models = face_core::dlib::DlibModels::locate(&common::locator()).unwrap();
    let mut hog = face_core::dlib::HogDetector::new(&models.landmarks, Default::default()).unwrap();
    let mut enc = face_core::dlib::ResnetEmbedder::new(&models.resnet, &models.landmarks).unwrap();
    let img = decode(&common::vga_jpeg(), &Default::default())
        .unwrap()
        .image;
    let faces = hog.detect(&img).unwrap();
    assert_eq!(faces.len(), 1);
    let mut g = c.benchmark_group("per_face");
    g.bench_function("landmarks+embedding", |b| {
        b.iter(|| enc.embed(&img, &faces).unwrap())
    });
    g.finish();
}

fn bench_pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.measurement_time(Duration::from_secs(8));
    for (name, bytes) in common::pipeline_photos() {
        g.bench_with_input(
            BenchmarkId::new("jpeg_to_embedding", name),
            &bytes,
            |b, bytes| {
                let mut p = common::pipeline();
                b.iter(|| {
                    let a = p.analyze(bytes).unwrap();
                    assert_eq!(a.faces.len(), 1);
                    a
                })
            },
        );
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_decode,
    bench_detect,
    bench_landmarks_and_embedding,
    bench_pipeline
);
criterion_main!(benches);
