//! `facegate-eval`: FaceGate's accuracy and calibration command.
//!
//! ```text
//! facegate-eval lfw --data ../shared/datasets/lfw [--backend dlib|onnx] [--detector hog|cnn]
//!                   [--onnx-detector FILE] [--onnx-detector-kind yunet|scrfd]
//!                   [--onnx-embedder FILE] [--onnx-runtime LIB]
//!                   [--cache DIR] [--out DIR] [--calibration-dir DIR] [--threads N]
//!                   [--models DIR] [--no-progress] [--identify-gallery N] [--rounds N]
//!                   [--cached-only]
//! facegate-eval enrol --data ../shared/datasets/lfw [the same pipeline flags]
//!                   [--people N] [--min-face-size PX] [--threads N]
//! facegate-eval idopts --data ../shared/datasets/lfw --backend onnx [pipeline flags] (see idopts.rs)
//! ```
//! `enrol` reports the failure-to-enrol rate: the share of the first
//! photos of N people (default 5,000) the server's enrolment rule refuses,
//! by reason, as JSON on stdout.
//! Embeddings are cached under `--cache` (default `.cache/embeddings`); the
//! calibration goes to `--calibration-dir` (default `config/calibration`),
//! the plot, `summary.json` and `report.md` to `--out` (default
//! `target/eval`). Run with `OPENBLAS_NUM_THREADS=1`.
//! See `docs/accuracy.md` for what it measures and the figures it produced.

use std::path::PathBuf;
use std::time::Instant;

use face_core::dlib::DetectorKind;
use facegate_eval::backend::{BackendKind, BackendSpec};
use facegate_eval::cache::Cache;
use facegate_eval::lfw::Lfw;
use facegate_eval::{embed_all, report, Result};

/// Which command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Lfw,
    Enrol,
}

/// Parsed command line of `lfw` and `enrol`.
#[derive(Debug)]
struct Args {
    command: Command,
    people: usize,
    min_face_size: u32,
    data: PathBuf,
    backend: BackendKind,
    detector: DetectorKind,
    cache: PathBuf,
    out: PathBuf,
    calibration_dir: PathBuf,
    threads: usize,
    models: Option<PathBuf>,
    progress: bool,
    cached_only: bool,
    identify_gallery: u32,
    rounds: usize,
    onnx: face_core::onnx::OnnxOptions,
}

const USAGE: &str = "usage: facegate-eval lfw --data DIR [--backend dlib|onnx] [--detector hog|cnn] \
[--onnx-detector FILE] [--onnx-detector-kind yunet|scrfd] [--onnx-embedder FILE] [--onnx-runtime LIB] \
[--cache DIR] [--out DIR] [--calibration-dir DIR] [--threads N] [--models DIR] [--no-progress] \
[--identify-gallery N] [--rounds N] [--cached-only]
       facegate-eval enrol --data DIR [pipeline flags as for lfw] [--people N] [--min-face-size PX] [--threads N]";

fn parse_args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let command = match it.next().as_deref() {
        Some("lfw") => Command::Lfw,
        Some("enrol") => Command::Enrol,
        Some("-h" | "--help") | None => {
            println!("{USAGE}");
            std::process::exit(0);
        }
        Some(other) => return Err(format!("unknown command {other:?}\n{USAGE}").into()),
    };
    let mut args = Args {
        command,
        people: 5000,
        // The server's default (face.min_face_size).
        min_face_size: 80,
        data: PathBuf::from("../shared/datasets/lfw"),
        backend: BackendKind::Dlib,
        detector: DetectorKind::Hog,
        cache: PathBuf::from(".cache/embeddings"),
        out: PathBuf::from("target/eval"),
        calibration_dir: PathBuf::from(face_core::calibration::SHIPPED_DIR),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        models: None,
        progress: true,
        cached_only: false,
        identify_gallery: 5000,
        rounds: 10,
        onnx: face_core::onnx::OnnxOptions::default(),
    };
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--data" => args.data = value()?.into(),
            "--backend" => args.backend = BackendKind::parse(&value()?)?,
            "--detector" => {
                args.detector = match value()?.as_str() {
                    "hog" => DetectorKind::Hog,
                    "cnn" => DetectorKind::Cnn,
                    other => return Err(format!("unknown detector {other:?} (hog|cnn)").into()),
                }
            }
            "--onnx-detector" => args.onnx.detector.model = value()?,
            "--onnx-detector-kind" => {
                args.onnx.detector.kind = match value()?.as_str() {
                    "yunet" => face_core::onnx::HeadKind::Yunet,
                    "scrfd" => face_core::onnx::HeadKind::Scrfd,
                    other => {
                        return Err(
                            format!("unknown ONNX detector kind {other:?} (yunet|scrfd)").into(),
                        )
                    }
                }
            }
            "--onnx-embedder" => args.onnx.embedder.model = value()?,
            "--onnx-runtime" => args.onnx.runtime.library = Some(value()?.into()),
            "--cache" => args.cache = value()?.into(),
            "--out" => args.out = value()?.into(),
            "--calibration-dir" => args.calibration_dir = value()?.into(),
            "--threads" => {
                args.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?
            }
            "--models" => args.models = Some(value()?.into()),
            "--no-progress" => args.progress = false,
            // Development aid: analyse only what the cache already holds
            // (pairs with an image missing are left out and the report says
            // so). Never writes the shipped calibration.
            "--cached-only" => args.cached_only = true,
            "--identify-gallery" => {
                args.identify_gallery = value()?
                    .parse()
                    .map_err(|e| format!("--identify-gallery: {e}"))?
            }
            "--rounds" => args.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--people" => args.people = value()?.parse().map_err(|e| format!("--people: {e}"))?,
            "--min-face-size" => {
                args.min_face_size = value()?
                    .parse()
                    .map_err(|e| format!("--min-face-size: {e}"))?
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other:?}\n{USAGE}").into()),
        }
    }
    Ok(args)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("facegate-eval: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    if std::env::args().nth(1).as_deref() == Some("idopts") {
        return facegate_eval::idopts::run(std::env::args().skip(2));
    }
    let started = Instant::now();
    let args = parse_args()?;
    let lfw = Lfw::load(&args.data)?;
    eprintln!(
        "LFW: {} images, {} people, {} pairs",
        lfw.images.len(),
        lfw.identities.len(),
        lfw.pairs.len()
    );
    let spec = BackendSpec {
        kind: args.backend,
        detector: args.detector,
        models_dir: args.models.clone(),
        onnx: args.onnx.clone(),
    };
    if args.command == Command::Enrol {
        use facegate_eval::enrol;
        let photos = enrol::first_photos(&lfw, args.people);
        let built = spec.pipelines(
            enrol::server_options(args.min_face_size),
            args.threads.max(1),
        )?;
        let (model, pipeline) = (
            built
                .pipelines
                .first()
                .map(|p| p.model().id.clone())
                .ok_or("the factory built no pipeline")?,
            built.fingerprint,
        );
        let counts = enrol::failure_to_enrol(&lfw, built.pipelines, &photos);
        let out = serde_json::json!({
            "model": model,
            "pipeline": pipeline,
            "min_face_size": args.min_face_size,
            "failure_to_enrol": counts.failure_rate(),
            "counts": counts,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let (model, pipeline) = spec.identify()?;
    eprintln!("pipeline: {pipeline}");
    // The cache is per model and per pipeline: another detector file, input
    // policy or normalisation gives other embeddings.
    let tag = format!("{}-{}", spec.detector_tag(), pipeline.tag());
    let cache_path = Cache::path(&args.cache, &model.id, &tag);
    let mut cache = Cache::load_or_new(&cache_path, &model, &tag)?;
    eprintln!(
        "cache {}: {} embeddings",
        cache_path.display(),
        cache.entries.len()
    );
    let run = if args.cached_only {
        embed_all::EmbedRun::default()
    } else {
        embed_all::embed_missing(
            &lfw,
            &spec,
            args.threads,
            &mut cache,
            &cache_path,
            args.progress,
        )?
    };
    eprintln!(
        "embedded {} images in {:.1} s ({:.1} s total)",
        run.embedded,
        run.seconds,
        started.elapsed().as_secs_f64()
    );
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    report::analyse(
        &lfw,
        &cache,
        &model,
        &report::Settings {
            detector: spec.detector_tag().to_string(),
            pipeline,
            secondary: spec.secondary_tag(),
            threads: args.threads,
            out: args.out.clone(),
            calibration_dir: (!args.cached_only).then(|| args.calibration_dir.clone()),
            identify_gallery: args.identify_gallery,
            rounds: args.rounds,
            embed_run: run,
            started,
            command,
        },
    )
}
