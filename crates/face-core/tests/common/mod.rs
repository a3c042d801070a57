//! Shared helpers for face-core's integration tests: where the shared test
//! photos and the model files are, and one pipeline per test binary.
#![allow(dead_code, clippy::unwrap_used)]

pub mod bars;

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use face_core::image::{codecs::jpeg::JpegEncoder, imageops, RgbImage};
use face_core::models::ModelLocator;
use face_core::{decode, dlib, FacePipeline, PipelineOptions};

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `$FACEGATE_SHARED_DIR`, else `../shared` beside the checkout.
pub fn shared() -> PathBuf {
    let dir = std::env::var_os("FACEGATE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared"));
    assert!(
        dir.join("faces/labels.csv").is_file(),
        "test photos not found at {}: set FACEGATE_SHARED_DIR",
        dir.display()
    );
    dir
}

/// The models directory the setup script fills (or `$FACEGATE_MODELS_DIR`).
pub fn locator() -> ModelLocator {
    ModelLocator::new(Some(&workspace().join("models")))
}

/// One HOG pipeline for the whole test binary: loading models costs ~0.5 s.
pub fn pipeline() -> std::sync::MutexGuard<'static, FacePipeline> {
    static P: OnceLock<Mutex<FacePipeline>> = OnceLock::new();
    P.get_or_init(|| {
        Mutex::new(
            dlib::pipeline(
                &locator(),
                dlib::DetectorKind::Hog,
                PipelineOptions::default(),
            )
            .expect("dlib models: run scripts/fetch-models.sh"),
        )
    })
    .lock()
    .unwrap_or_else(|e| e.into_inner())
}

/// Rows of a CSV file under `shared/faces` (header skipped; simple CSV with
/// at most one quoted last field).
pub fn csv(name: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(shared().join("faces").join(name)).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut fields = Vec::new();
            let mut cur = String::new();
            let mut quoted = false;
            for c in l.chars() {
                match c {
                    '"' => quoted = !quoted,
                    ',' if !quoted => fields.push(std::mem::take(&mut cur)),
                    _ => cur.push(c),
                }
            }
            fields.push(cur);
            fields
        })
        .collect()
}

/// Bytes of a file under `shared/faces`.
pub fn photo(rel: &str) -> Vec<u8> {
    std::fs::read(shared().join("faces").join(rel)).unwrap()
}

/// `(path, identity)` of every labelled single-person photo.
pub fn people() -> Vec<(String, String)> {
    csv("labels.csv")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

/// The deliberately partial faces.
pub fn is_partial(path: &str) -> bool {
    path.contains("partial_face")
}

/// A minimal big-endian EXIF APP1 segment holding only an orientation tag.
pub fn exif_orientation_segment(orientation: u16) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\0\x2a\0\0\0\x08"); // header, IFD at offset 8
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padding
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut seg = vec![0xFF, 0xE1];
    let len = (2 + 6 + tiff.len()) as u16;
    seg.extend_from_slice(&len.to_be_bytes());
    seg.extend_from_slice(b"Exif\0\0");
    seg.extend_from_slice(&tiff);
    seg
}

pub fn jpeg(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 95)
        .encode_image(img)
        .unwrap();
    out
}

/// A 4032x3024 (12 MP phone-sized) JPEG with one face: the 1080p Obama
/// photo scaled up onto a grey canvas.
pub fn large_jpeg() -> Vec<u8> {
    let src = decode(
        &photo("people/obama/face_recognition_obama-1080p.jpg"),
        &Default::default(),
    )
    .unwrap()
    .image;
    let scaled = imageops::resize(&src, 4032, 2268, imageops::FilterType::Triangle);
    let mut canvas = RgbImage::from_pixel(4032, 3024, face_core::image::Rgb([120, 120, 120]));
    imageops::replace(&mut canvas, &scaled, 0, 378);
    jpeg(&canvas)
}

/// A 640x480 JPEG with one face (the 480p photo cropped to 4:3).
pub fn vga_jpeg() -> Vec<u8> {
    let src = decode(
        &photo("people/obama/face_recognition_obama-480p.jpg"),
        &Default::default(),
    )
    .unwrap()
    .image;
    let x = (src.width().saturating_sub(640)) / 2;
    jpeg(&imageops::crop_imm(&src, x, 0, 640, 480).to_image())
}

/// The photos both backends' pipeline benchmarks time, by label: VGA,
/// 12 MP, and the load test's probe (scripts/loadtest.sh).
pub fn pipeline_photos() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("640x480", vga_jpeg()),
        ("4032x3024", large_jpeg()),
        (
            "854x480",
            photo("people/obama/face_recognition_obama-480p.jpg"),
        ),
    ]
}

/// The ONNX Runtime library: `$ORT_DYLIB_PATH`, else the one
/// `scripts/fetch-onnxruntime.sh` put in `runtime/`.
#[cfg(feature = "onnx")]
pub fn onnx_runtime() -> face_core::onnx::RuntimeOptions {
    let library = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("runtime/libonnxruntime.so"));
    face_core::onnx::RuntimeOptions {
        library: Some(library),
        ..Default::default()
    }
}

/// The shared ONNX models (`shared/models/onnx`).
#[cfg(feature = "onnx")]
pub fn onnx_locator() -> ModelLocator {
    ModelLocator::with_dirs(vec![shared().join("models/onnx")])
}

/// The default ONNX options (YuNet-s + MobileFaceNet) on the test runtime.
#[cfg(feature = "onnx")]
pub fn onnx_options() -> face_core::onnx::OnnxOptions {
    face_core::onnx::OnnxOptions {
        runtime: onnx_runtime(),
        ..Default::default()
    }
}

/// One YuNet-s + MobileFaceNet pipeline for the whole test binary (the
/// first of [`ONNX_PIPELINES`]).
#[cfg(feature = "onnx")]
pub fn onnx_pipeline() -> std::sync::MutexGuard<'static, FacePipeline> {
    ONNX_PIPELINES[0].pipeline()
}

/// An ONNX pipeline the shared bars run on: a detector and an embedder file
/// found in one models directory, with what that pipeline is expected to
/// measure where it legitimately differs from the others.
#[cfg(feature = "onnx")]
#[derive(Debug)]
pub struct OnnxCase {
    /// How test output names it.
    pub name: &'static str,
    /// The detector file (a YuNet).
    pub detector: &'static str,
    /// The directory both files are in.
    pub models_dir: fn() -> PathBuf,
    /// The embedder file.
    pub embedder: &'static str,
    /// The model id its embeddings carry (and its calibration file's name).
    pub model_id: &'static str,
    /// What to do when the files are missing.
    pub setup: &'static str,
    /// Least share of the annotated group-photo faces it must find (the
    /// shared bar is 0.80; each pipeline's is set just under what it
    /// measured, so it cannot get worse unnoticed).
    pub min_group_recall: f64,
    /// The detector's longest input side and upscale limit, as its
    /// configuration sets them.
    pub input: (u32, f32),
}

/// The ONNX pipelines the shared bars run on.
#[cfg(feature = "onnx")]
pub const ONNX_PIPELINES: [OnnxCase; 3] = [
    OnnxCase {
        name: "YuNet-s + MobileFaceNet",
        detector: face_core::models::YUNET_S_640.file_name,
        models_dir: shared_onnx_models,
        embedder: face_core::models::MOBILEFACENET_128D.file_name,
        model_id: "mobilefacenet_128d_85cdeb73",
        setup: "run scripts/setup.sh --test (ONNX Runtime) and check ../shared/models/onnx",
        // Measured 54/56: it misses one small turned face in each of two
        // PASCAL photos (dlib HOG finds 56/56).
        min_group_recall: 0.95,
        input: (640, 2.0),
    },
    OnnxCase {
        name: "default: YuNet 2023mar + SFace",
        detector: face_core::models::YUNET_2023MAR.file_name,
        models_dir: workspace_models,
        embedder: face_core::models::SFACE_2021DEC.file_name,
        model_id: "sface_2021dec_107111c7",
        setup:
            "the default pipeline is read from the workspace models/, which scripts/setup.sh fills",
        min_group_recall: 0.95,
        input: (640, 2.0),
    },
    OnnxCase {
        name: "fast: YuNet-n + MobileFaceNet (config/fast.toml)",
        detector: face_core::models::YUNET_N_DYNAMIC.file_name,
        models_dir: shared_onnx_models,
        embedder: face_core::models::MOBILEFACENET_128D.file_name,
        model_id: "mobilefacenet_128d_85cdeb73",
        setup: "run scripts/setup.sh --test (ONNX Runtime) and check ../shared/models/onnx",
        // Measured 55/56 at 640 px without enlarging (facegate-eval detectors).
        min_group_recall: 0.95,
        input: (640, 1.0),
    },
];

/// The fast configuration's pipeline (YuNet-n up to 640 px, never
/// enlarged), shared by the test binary.
#[cfg(feature = "onnx")]
pub fn fast_pipeline() -> std::sync::MutexGuard<'static, FacePipeline> {
    ONNX_PIPELINES
        .iter()
        .find(|c| c.name.starts_with("fast"))
        .expect("the fast case of ONNX_PIPELINES")
        .pipeline()
}

/// `shared/models/onnx`.
#[cfg(feature = "onnx")]
fn shared_onnx_models() -> PathBuf {
    shared().join("models/onnx")
}

/// The workspace's `models/`, where scripts/setup.sh installs the default
/// pipeline's files.
#[cfg(feature = "onnx")]
fn workspace_models() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models"))
}

/// A built pipeline and the fingerprint the factory read off it.
#[cfg(feature = "onnx")]
type BuiltOnnx = (
    Mutex<FacePipeline>,
    face_core::calibration::PipelineFingerprint,
);

#[cfg(feature = "onnx")]
impl OnnxCase {
    /// Only this case's models directory.
    pub fn locator(&self) -> ModelLocator {
        ModelLocator::with_dirs(vec![(self.models_dir)()])
    }

    /// Its options on the test runtime, everything else at the defaults
    /// (those of config/default.toml).
    pub fn options(&self) -> face_core::onnx::OnnxOptions {
        face_core::onnx::OnnxOptions {
            runtime: onnx_runtime(),
            detector: face_core::onnx::DetectorOptions {
                model: self.detector.into(),
                kind: face_core::onnx::HeadKind::Yunet,
                input_size: self.input.0,
                max_upscale: self.input.1,
                ..Default::default()
            },
            embedder: face_core::onnx::EmbedderOptions {
                model: self.embedder.into(),
                ..Default::default()
            },
        }
    }

    /// One pipeline per case for the whole test binary, built by the
    /// backend factory the server uses. Panics with what to run when the
    /// models are missing.
    fn built(&self) -> &'static BuiltOnnx {
        static BUILT: [OnceLock<BuiltOnnx>; ONNX_PIPELINES.len()] =
            [const { OnceLock::new() }; ONNX_PIPELINES.len()];
        let index = ONNX_PIPELINES
            .iter()
            .position(|c| c.name == self.name)
            .expect("a case of ONNX_PIPELINES");
        BUILT[index].get_or_init(|| {
            let config = face_core::backend::BackendConfig::Onnx(Box::new(self.options()));
            let mut built =
                face_core::backend::build(&config, &self.locator(), PipelineOptions::default(), 1)
                    .unwrap_or_else(|e| panic!("{} pipeline: {e}; {}", self.name, self.setup));
            (
                Mutex::new(built.pipelines.pop().unwrap()),
                built.fingerprint,
            )
        })
    }

    /// Its pipeline.
    pub fn pipeline(&self) -> std::sync::MutexGuard<'static, FacePipeline> {
        self.built().0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What its pipeline runs, as the calibration records it.
    pub fn fingerprint(&self) -> &'static face_core::calibration::PipelineFingerprint {
        &self.built().1
    }
}
