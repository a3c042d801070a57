//! Criterion benchmarks of the ONNX backend, beside dlib's (`pipeline`):
//! detection at several sizes, alignment + embedding per face and batched,
//! and the whole pipeline on the same photos as dlib's bench.
//!
//! Run (out of CI; ONNX Runtime single-threaded, as each server worker is):
//! ```text
//! ORT_DYLIB_PATH=$PWD/runtime/libonnxruntime.so cargo bench -p face-core --features onnx --bench onnx
//! ```
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use face_core::image::{imageops, RgbImage};
use face_core::onnx::{self, HeadKind};
use face_core::{decode, Detector, Embedder};

fn scaled_photo(w: u32, h: u32) -> RgbImage {
    let src = decode(
        &common::photo("people/obama/face_recognition_obama-1080p.jpg"),
        &Default::default(),
    )
    .unwrap()
    .image;
    imageops::resize(&src, w, h, imageops::FilterType::Triangle)
}

fn bench_detect(c: &mut Criterion) {
    let mut g = c.benchmark_group("onnx_detect");
    let images = [
        (
            "640x480",
            decode(&common::vga_jpeg(), &Default::default())
                .unwrap()
                .image,
        ),
        ("1024x576", scaled_photo(1024, 576)),
    ];
    for (label, model, kind) in [
        ("yunet_s_640", "yunet_s_640_640.onnx", HeadKind::Yunet),
        ("yunet_n_640", "yunet_n_dynamic.onnx", HeadKind::Yunet),
        ("scrfd_500m_640", "scrfd_500m_bnkps.onnx", HeadKind::Scrfd),
    ] {
        let mut options = common::onnx_options();
        options.detector.model = model.into();
        options.detector.kind = kind;
        let models = onnx::OnnxModels::locate(&common::onnx_locator(), &options).unwrap();
        let (mut detector, _) = onnx::parts(&models, &options).unwrap();
        for (name, img) in &images {
            g.bench_with_input(BenchmarkId::new(label, name), img, |b, img| {
                b.iter(|| detector.detect(img).unwrap())
            });
        }
    }
    g.finish();
}

fn bench_embed(c: &mut Criterion) {
    let options = common::onnx_options();
    let models = onnx::OnnxModels::locate(&common::onnx_locator(), &options).unwrap();
    let (mut detector, mut embedder) = onnx::parts(&models, &options).unwrap();
    let img = decode(&common::vga_jpeg(), &Default::default())
        .unwrap()
        .image;
    let faces = detector.detect(&img).unwrap();
    assert_eq!(faces.len(), 1);
    let mut g = c.benchmark_group("onnx_per_face");
    g.bench_function("align", |b| {
        b.iter(|| embedder.chip(&img, &faces[0]).unwrap())
    });
    g.bench_function("align+mobilefacenet", |b| {
        b.iter(|| embedder.embed(&img, &faces).unwrap())
    });
    // Eight faces in one inference, against eight one at a time.
    let eight = vec![faces[0]; 8];
    g.bench_function("align+mobilefacenet_batch8", |b| {
        b.iter(|| embedder.embed(&img, &eight).unwrap())
    });
    g.bench_function("align+mobilefacenet_8_single", |b| {
        b.iter(|| {
            for f in &eight {
                embedder.embed(&img, std::slice::from_ref(f)).unwrap();
            }
        })
    });
    g.finish();
}

fn bench_pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("onnx_pipeline");
    g.measurement_time(Duration::from_secs(8));
    for (name, bytes) in common::pipeline_photos() {
        g.bench_with_input(
            BenchmarkId::new("jpeg_to_embedding", name),
            &bytes,
            |b, bytes| {
                let mut p = common::onnx_pipeline();
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

criterion_group!(benches, bench_detect, bench_embed, bench_pipeline);
criterion_main!(benches);
