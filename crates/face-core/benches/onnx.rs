//! Criterion benchmarks of the ONNX backend, beside dlib's (`pipeline`):
//! ONNX Runtime's bare inference per model (`ort_raw`, the floor), each
//! detector setting on three photo shapes (`onnx_detect`), alignment and
//! embedding per face for each embedder (`onnx_embed`), and the two shipped
//! pipelines (`default`: config/default.toml; `fast`: config/fast.toml) and
//! the fast one's models with YuNet-n at 320 (`fast_320`) from a decoded
//! image (and from the JPEG) to the embedding (`onnx_pipeline`). Issue 15 asks the pipelines to stay within the sum of
//! their models' bare times plus 3 ms; `ort_raw` measures those times in the
//! same process and run, `scripts/ort-reference.py` outside it.
//!
//! Run (out of CI; ONNX Runtime single-threaded, as each server worker is):
//! ```text
//! FACEGATE_SHARED_DIR=../shared ORT_DYLIB_PATH=$PWD/runtime/libonnxruntime.so \
//!   cargo bench -p face-core --features onnx --bench onnx
//! ```
//! Short warm-up and measurement times keep the whole run to a few minutes;
//! compare figures as ratios within one run (the machines are shared).
//! `FACEGATE_BENCH_CLOCK=cpu` times the benchmark thread's CPU time instead
//! of wall-clock time (ONNX Runtime runs on the calling thread with one
//! intra-op thread), which other processes on a busy machine disturb far
//! less; `scripts/ort-reference.py --clock cpu` is its counterpart.
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use face_core::image::RgbImage;
use face_core::models::ModelLocator;
use face_core::onnx::{self, DetectorOptions, EmbedderOptions, HeadKind, OnnxOptions};
use face_core::{decode, Detector, Embedder, FacePipeline, PipelineOptions, QualityPolicy};

/// The workspace `models/` (the default pipeline's files) and the shared
/// ONNX models (YuNet-n, YuNet-s, MobileFaceNet).
fn locator() -> ModelLocator {
    ModelLocator::with_dirs(vec![
        common::workspace().join("models"),
        common::shared().join("models/onnx"),
    ])
}

fn model_path(file: &str) -> PathBuf {
    locator().find(file).unwrap()
}

/// The photos every detector and pipeline is timed on: a 640x480 selfie,
/// the 854x480 photo the load test posts, a 250x250 LFW photo.
fn photos() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("640x480", common::vga_jpeg()),
        (
            "854x480",
            common::photo("people/obama/face_recognition_obama-480p.jpg"),
        ),
        (
            "250x250",
            std::fs::read(
                common::shared().join("datasets/lfw/Aaron_Eckhart/Aaron_Eckhart_0001.jpg"),
            )
            .unwrap(),
        ),
    ]
}

fn decoded(bytes: &[u8]) -> RgbImage {
    decode(bytes, &Default::default()).unwrap().image
}

fn options(detector: &str, input_size: u32, max_upscale: f32, embedder: &str) -> OnnxOptions {
    OnnxOptions {
        runtime: common::onnx_runtime(),
        detector: DetectorOptions {
            model: detector.into(),
            kind: HeadKind::Yunet,
            input_size,
            max_upscale,
            ..Default::default()
        },
        embedder: EmbedderOptions {
            model: embedder.into(),
            ..Default::default()
        },
    }
}

/// The default pipeline (config/default.toml): YuNet 2023mar + SFace.
fn default_options() -> OnnxOptions {
    options("yunet_2023mar.onnx", 640, 2.0, "sface_2021dec.onnx")
}

/// The fast pipeline (config/fast.toml): YuNet-n at the image's own size up
/// to 640, never enlarged, + MobileFaceNet.
fn fast_options() -> OnnxOptions {
    options("yunet_n_dynamic.onnx", 640, 1.0, "mobilefacenet_128d.onnx")
}

/// The fast pipeline's models with YuNet-n at 320 (enlarging up to 2x).
fn fast_320_options() -> OnnxOptions {
    options("yunet_n_dynamic.onnx", 320, 2.0, "mobilefacenet_128d.onnx")
}

fn pipeline(options: &OnnxOptions) -> FacePipeline {
    onnx::pipeline(&locator(), options, PipelineOptions::default()).unwrap()
}

/// Deterministic filler in 0..255 (a tiny LCG): the networks' cost does not
/// depend on the values.
fn filler(len: usize) -> Vec<f32> {
    let mut s = 0x2545_f491_u32;
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 24) as f32
        })
        .collect()
}

/// Bare `Session::run` on a prepared tensor, with FaceGate's own session
/// options: what `scripts/ort-reference.py` measures, in this process.
fn bench_ort_raw(c: &mut Criterion<Clock>) {
    let mut g = c.benchmark_group("ort_raw");
    let runtime = common::onnx_runtime();
    for (label, file, shape) in [
        ("yunet_n", "yunet_n_dynamic.onnx", [1usize, 3, 320, 320]),
        ("yunet_n", "yunet_n_dynamic.onnx", [1, 3, 256, 320]),
        ("yunet_n", "yunet_n_dynamic.onnx", [1, 3, 192, 320]),
        ("yunet_n", "yunet_n_dynamic.onnx", [1, 3, 256, 256]),
        ("yunet_n", "yunet_n_dynamic.onnx", [1, 3, 480, 640]),
        ("yunet_n", "yunet_n_dynamic.onnx", [1, 3, 384, 640]),
        ("yunet_n", "yunet_n_dynamic.onnx", [1, 3, 640, 640]),
        ("yunet_s", "yunet_s_640_640.onnx", [1, 3, 640, 640]),
        ("yunet_2023mar", "yunet_2023mar.onnx", [1, 3, 640, 640]),
        ("mobilefacenet", "mobilefacenet_128d.onnx", [1, 3, 112, 112]),
        ("mobilefacenet", "mobilefacenet_128d.onnx", [8, 3, 112, 112]),
        ("sface", "sface_2021dec.onnx", [1, 3, 112, 112]),
    ] {
        let mut session = onnx::runtime::open_session(&model_path(file), &runtime)
            .unwrap()
            .session;
        let name = session.inputs()[0].name().to_string();
        let tensor =
            ort::value::Tensor::from_array((shape, filler(shape.iter().product()))).unwrap();
        let id = if shape[0] == 1 {
            format!("{}x{}", shape[3], shape[2])
        } else {
            format!("{}x{}x{}", shape[0], shape[3], shape[2])
        };
        if label == "sface" || shape[0] > 1 {
            g.sample_size(20);
        }
        g.bench_function(BenchmarkId::new(label, id), |b| {
            b.iter(|| {
                session
                    .run(ort::inputs![name.as_str() => &tensor])
                    .unwrap()
                    .len()
            })
        });
    }
    g.finish();
}

/// The pure-Rust steps around inference: the letterbox resize at the
/// sizes the detectors ask for, and the alignment warp.
fn bench_preprocess(c: &mut Criterion<Clock>) {
    let mut g = c.benchmark_group("onnx_preprocess");
    let images: Vec<_> = photos()
        .into_iter()
        .map(|(n, b)| (n, decoded(&b)))
        .collect();
    for (name, img) in &images {
        let (w, h) = img.dimensions();
        let mut targets = vec![];
        for side in [320u32, 640] {
            let s = (side as f32 / w as f32)
                .min(side as f32 / h as f32)
                .min(2.0);
            let t = ((w as f32 * s).round() as u32, (h as f32 * s).round() as u32);
            if t != (w, h) && !targets.contains(&t) {
                targets.push(t);
            }
        }
        for (tw, th) in targets {
            g.bench_with_input(
                BenchmarkId::new("resize_rgb", format!("{name}_to_{tw}x{th}")),
                img,
                |b, img| b.iter(|| face_core::resize::resize_rgb(img, tw, th)),
            );
        }
    }
    g.finish();
}

/// Every detector setting on every photo: letterbox, inference, decoding
/// and NMS. The upscale limit only matters for an image smaller than the
/// input, here the LFW photo, so its `_up1` variants run on that alone
/// (`yunet_n_640_up1` is the fast pipeline's setting; on the larger photos
/// it is `yunet_n_640`).
fn bench_detect(c: &mut Criterion<Clock>) {
    let mut g = c.benchmark_group("onnx_detect");
    let images: Vec<_> = photos()
        .into_iter()
        .map(|(n, b)| (n, decoded(&b)))
        .collect();
    for (label, model, input_size, max_upscale, only) in [
        ("yunet_n_320", "yunet_n_dynamic.onnx", 320, 2.0, None),
        (
            "yunet_n_320_up1",
            "yunet_n_dynamic.onnx",
            320,
            1.0,
            Some("250x250"),
        ),
        ("yunet_n_640", "yunet_n_dynamic.onnx", 640, 2.0, None),
        (
            "yunet_n_640_up1",
            "yunet_n_dynamic.onnx",
            640,
            1.0,
            Some("250x250"),
        ),
        ("yunet_s_640", "yunet_s_640_640.onnx", 640, 2.0, None),
        ("yunet_2023mar_640", "yunet_2023mar.onnx", 640, 2.0, None),
    ] {
        let options = options(model, input_size, max_upscale, "mobilefacenet_128d.onnx");
        let mut detector =
            onnx::OnnxDetector::new(&model_path(model), options.detector, &options.runtime)
                .unwrap();
        for (name, img) in &images {
            if only.is_some_and(|o| o != *name) {
                continue;
            }
            g.bench_with_input(BenchmarkId::new(label, name), img, |b, img| {
                b.iter(|| detector.detect(img).unwrap())
            });
        }
    }
    g.finish();
}

/// Per face, for each embedder: the alignment warp alone, and alignment +
/// normalisation + inference + L2 normalisation (`embed` of one face).
fn bench_embed(c: &mut Criterion<Clock>) {
    let img = decoded(&common::vga_jpeg());
    let mut g = c.benchmark_group("onnx_embed");
    for (label, options) in [
        ("mobilefacenet", fast_options()),
        ("sface", default_options()),
    ] {
        let models = onnx::OnnxModels::locate(&locator(), &options).unwrap();
        let (mut detector, mut embedder) = onnx::parts(&models, &options).unwrap();
        let faces = detector.detect(&img).unwrap();
        assert_eq!(faces.len(), 1);
        if label == "sface" {
            g.sample_size(20);
        }
        g.bench_function(BenchmarkId::new(label, "align"), |b| {
            b.iter(|| embedder.chip(&img, &faces[0]).unwrap())
        });
        g.bench_function(BenchmarkId::new(label, "align+embed"), |b| {
            b.iter(|| embedder.embed(&img, &faces).unwrap())
        });
        if label == "mobilefacenet" {
            // The pipeline's quality assessment of a face (sharpness of
            // the face crop), part of every analysis.
            let policy = QualityPolicy::default();
            g.bench_function("quality_assess", |b| {
                b.iter(|| face_core::quality::assess(&img, &faces[0], 1.0, &policy))
            });
        }
        if label == "mobilefacenet" {
            // Eight faces in one inference (a group photo).
            let eight = vec![faces[0]; 8];
            g.sample_size(20);
            g.bench_function(BenchmarkId::new(label, "align+embed_batch8"), |b| {
                b.iter(|| embedder.embed(&img, &eight).unwrap())
            });
        }
    }
    g.finish();
}

/// The shipped pipelines end to end: from a decoded image (what issue 15
/// compares with the models' sum) and from the JPEG bytes (what a request
/// costs, decoding included).
fn bench_pipeline(c: &mut Criterion<Clock>) {
    let mut g = c.benchmark_group("onnx_pipeline");
    let photos = photos();
    for (label, options) in [
        ("fast", fast_options()),
        ("fast_320", fast_320_options()),
        ("default", default_options()),
    ] {
        if label == "default" {
            g.sample_size(20);
        }
        let mut p = pipeline(&options);
        for (name, bytes) in &photos {
            let img = decoded(bytes);
            g.bench_with_input(
                BenchmarkId::new(format!("{label}/image_to_embedding"), name),
                &img,
                |b, img| {
                    b.iter(|| {
                        let a = p.analyze_image(img).unwrap();
                        assert_eq!(a.faces.len(), 1);
                        a
                    })
                },
            );
            g.bench_with_input(
                BenchmarkId::new(format!("{label}/jpeg_to_embedding"), name),
                bytes,
                |b, bytes| {
                    b.iter(|| {
                        let a = p.analyze(bytes).unwrap();
                        assert_eq!(a.faces.len(), 1);
                        a
                    })
                },
            );
        }
    }
    g.finish();
}

/// Passive liveness (issue 18): the MiniFASNet pair on one face of the
/// 640x480 photo (`onnx_pad/pair_one_face`), and the default pipeline from
/// the JPEG with and without it (`onnx_pad/default_jpeg_*`): the check's
/// share of a verification.
fn bench_pad(c: &mut Criterion<Clock>) {
    let mut g = c.benchmark_group("onnx_pad");
    g.sample_size(20);
    let options = default_options();
    let mut built = face_core::backend::build(
        &face_core::backend::BackendConfig::Onnx(Box::new(options.clone())),
        &locator(),
        PipelineOptions::default(),
        1,
    )
    .unwrap();
    face_core::backend::add_pad(&mut built, &locator(), &options.runtime).unwrap();
    let mut p = built.pipelines.pop().unwrap();
    let bytes = common::vga_jpeg();
    let img = decoded(&bytes);
    let face = p.detect_image(&img).unwrap()[0];
    g.bench_function("pair_one_face", |b| {
        b.iter(|| p.live_score(&img, &face).unwrap())
    });
    for (name, liveness) in [("default_jpeg_without", false), ("default_jpeg_with", true)] {
        let request = face_core::FaceRequest {
            max_faces: 1,
            liveness,
        };
        g.bench_function(name, |b| {
            b.iter(|| p.analyze_request(&bytes, request).unwrap())
        });
    }
    g.finish();
}

/// The stream's per-frame work on one core: decode a 480x480 JPEG frame of
/// `d12.mjpeg`, detect, track (`stream/<config>/detect_track`), cycling
/// through the clip's frames; frames per second per core = 1 / the time.
/// Issue 17's goal: 60 frames/s per core with the fast configuration.
fn bench_stream(c: &mut Criterion<Clock>) {
    let mut g = c.benchmark_group("stream");
    let bytes = std::fs::read(common::shared().join("video/d12.mjpeg")).unwrap();
    let frames = face_core::mjpeg::frames(&bytes);
    for (label, options) in [("fast", fast_options()), ("default", default_options())] {
        let mut p = pipeline(&options);
        let mut tracker = face_core::track::Tracker::new(Default::default());
        let mut i = 0;
        g.bench_function(BenchmarkId::new(label, "detect_track_480x480"), |b| {
            b.iter(|| {
                let image = face_core::decode(frames[i % frames.len()], &Default::default())
                    .unwrap()
                    .image;
                i += 1;
                let boxes: Vec<_> = p
                    .detect_image(&image)
                    .unwrap()
                    .iter()
                    .map(|f| f.bbox)
                    .collect();
                tracker.update(&boxes)
            })
        });
    }
    g.finish();
}

/// Wall-clock time, or with `FACEGATE_BENCH_CLOCK=cpu` the calling
/// thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`); both in nanoseconds.
struct Clock {
    cpu: bool,
    wall: WallTime,
}

enum Start {
    Wall(Instant),
    Cpu(Duration),
}

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Measurement for Clock {
    type Intermediate = Start;
    type Value = Duration;

    fn start(&self) -> Start {
        if self.cpu {
            Start::Cpu(thread_cpu_time())
        } else {
            Start::Wall(Instant::now())
        }
    }

    fn end(&self, start: Start) -> Duration {
        match start {
            Start::Wall(t) => t.elapsed(),
            Start::Cpu(t) => thread_cpu_time().saturating_sub(t),
        }
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

fn config() -> Criterion<Clock> {
    let cpu = match std::env::var("FACEGATE_BENCH_CLOCK").as_deref() {
        Ok("cpu") => true,
        Ok("wall") | Err(_) => false,
        Ok(other) => panic!("FACEGATE_BENCH_CLOCK={other}: wall or cpu"),
    };
    Criterion::default()
        .with_measurement(Clock {
            cpu,
            wall: WallTime,
        })
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .sample_size(40)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_ort_raw, bench_preprocess, bench_detect, bench_embed, bench_pipeline, bench_pad, bench_stream
}
criterion_main!(benches);
