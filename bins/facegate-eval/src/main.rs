//! `facegate-eval`: FaceGate's accuracy and calibration command.
//!
//! ```text
//! facegate-eval lfw --data ../shared/datasets/lfw [--backend dlib|onnx] [--detector hog|cnn]
//!                   [--onnx-detector FILE] [--onnx-detector-kind yunet|scrfd]
//!                   [--onnx-embedder FILE] [--onnx-runtime LIB]
//!                   [--onnx-input-size PX] [--onnx-max-upscale X]
//!                   [--cache DIR] [--out DIR] [--calibration-dir DIR] [--threads N]
//!                   [--models DIR] [--no-progress] [--identify-gallery N] [--rounds N]
//!                   [--cached-only]
//! facegate-eval enrol --data ../shared/datasets/lfw [the same pipeline flags]
//!                   [--people N] [--min-eye-distance PX] [--all-images]
//!                   [--sweep PX,PX,...] [--threads N]
//! facegate-eval detectors --setting FILE[:INPUT[:UPSCALE]] ... [--models DIR]
//!                   [--onnx-runtime LIB] [--data LFW] [--lfw-photos N]
//! facegate-eval idopts --data ../shared/datasets/lfw --backend onnx [pipeline flags] (see idopts.rs)
//! facegate-eval pad [the same pipeline flags] [--target-bpcer RATE] [--calibration-dir DIR]
//!                   [--write]
//! ```
//! `pad` scores the shared bona fide faces and the spoof samples with the
//! passive liveness models on the pipeline's detector, chooses the
//! threshold for `--target-bpcer` (default 0.05) on the bona fide faces,
//! prints the calibration and, with `--write`, writes it to
//! `--calibration-dir` as `liveness/pad_<tag>.json` (see docs/liveness.md).
//! `enrol` reports the failure-to-enrol rate: the share of the first
//! photos of N people (default 5,000) the server's enrolment rule refuses,
//! by reason, beside the former rule's, as JSON on stdout; with
//! `--all-images` it judges every image and adds, per rule, the FNMR at
//! FMR 1e-4 over all pairs of the images the rule accepts; `--sweep`
//! re-judges the same analyses at other minimum eye distances.
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
    Pad,
}

/// Parsed command line of `lfw` and `enrol`.
#[derive(Debug)]
struct Args {
    command: Command,
    people: usize,
    min_eye_distance: Option<f32>,
    all_images: bool,
    sweep: Vec<f32>,
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
    target_bpcer: f64,
    write: bool,
}

const USAGE: &str = "usage: facegate-eval lfw --data DIR [--backend dlib|onnx] [--detector hog|cnn] \
[--onnx-detector FILE] [--onnx-detector-kind yunet|scrfd] [--onnx-embedder FILE] [--onnx-runtime LIB] [--onnx-input-size PX] [--onnx-max-upscale X] \
[--cache DIR] [--out DIR] [--calibration-dir DIR] [--threads N] [--models DIR] [--no-progress] \
[--identify-gallery N] [--rounds N] [--cached-only]
       facegate-eval enrol --data DIR [pipeline flags as for lfw] [--people N] [--min-eye-distance PX] [--all-images] [--sweep PX,PX,...] [--threads N]
       facegate-eval pad [pipeline flags as for lfw] [--target-bpcer RATE] [--calibration-dir DIR] [--write]";

fn parse_args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let command = match it.next().as_deref() {
        Some("lfw") => Command::Lfw,
        Some("enrol") => Command::Enrol,
        Some("pad") => Command::Pad,
        Some("-h" | "--help") | None => {
            println!("{USAGE}");
            std::process::exit(0);
        }
        Some(other) => return Err(format!("unknown command {other:?}\n{USAGE}").into()),
    };
    let mut args = Args {
        command,
        people: 5000,
        // The server's default: the detector's own.
        min_eye_distance: None,
        all_images: false,
        sweep: Vec::new(),
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
        target_bpcer: 0.05,
        write: false,
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
            "--onnx-input-size" => {
                args.onnx.detector.input_size = value()?
                    .parse()
                    .map_err(|e| format!("--onnx-input-size: {e}"))?
            }
            "--onnx-max-upscale" => {
                args.onnx.detector.max_upscale = value()?
                    .parse()
                    .map_err(|e| format!("--onnx-max-upscale: {e}"))?
            }
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
            "--min-eye-distance" => {
                args.min_eye_distance = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--min-eye-distance: {e}"))?,
                )
            }
            "--all-images" => args.all_images = true,
            "--target-bpcer" => {
                args.target_bpcer = value()?
                    .parse()
                    .map_err(|e| format!("--target-bpcer: {e}"))?
            }
            "--write" => args.write = true,
            "--sweep" => {
                args.sweep = value()?
                    .split(',')
                    .map(|v| v.trim().parse::<f32>())
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| format!("--sweep: {e}"))?
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
    if std::env::args().nth(1).as_deref() == Some("detectors") {
        return detectors(std::env::args().skip(2));
    }
    if std::env::args().nth(1).as_deref() == Some("idopts") {
        return facegate_eval::idopts::run(std::env::args().skip(2));
    }
    let started = Instant::now();
    let args = parse_args()?;
    if args.command == Command::Pad {
        return pad(&args);
    }
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
        return enrol(&args, &spec, &lfw);
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

/// `facegate-eval enrol`: both rules over the first photos of N people
/// (and, with `--all-images`, over every image, with the FNMR at FMR 1e-4
/// of the faces each rule accepts).
fn enrol(args: &Args, spec: &BackendSpec, lfw: &Lfw) -> Result<()> {
    use facegate_eval::enrol;
    let built = spec.pipelines(
        enrol::server_options(args.min_eye_distance),
        args.threads.max(1),
    )?;
    let first = built
        .pipelines
        .first()
        .ok_or("the factory built no pipeline")?;
    let (model, min_eye_distance) = (
        first.model().clone(),
        first.options().quality.min_eye_distance,
    );
    let photos: Vec<usize> = match args.all_images {
        true => (0..lfw.images.len()).collect(),
        false => enrol::first_photos(lfw, args.people),
    };
    let (judged, seconds) = enrol::judge_all(lfw, built.pipelines, &photos, &args.sweep);
    let firsts: std::collections::HashSet<usize> =
        enrol::first_photos(lfw, args.people).into_iter().collect();
    let first_judged: Vec<enrol::Judged> = judged
        .iter()
        .filter(|j| firsts.contains(&j.image))
        .cloned()
        .collect();
    let (server, legacy) = enrol::count(&first_judged);
    let mut out = serde_json::json!({
        "model": model.id,
        "pipeline": built.fingerprint,
        "people": first_judged.len(),
        "min_eye_distance": min_eye_distance,
        "failure_to_enrol": server.failure_rate(),
        "counts": server,
        "legacy_rule": {
            "min_box": enrol::LEGACY_MIN_BOX,
            "failure_to_enrol": legacy.failure_rate(),
            "counts": legacy,
        },
        "seconds": seconds,
    });
    if args.all_images {
        let (all_server, all_legacy) = enrol::count(&judged);
        let at = |keep: fn(&enrol::Judged) -> bool| {
            enrol::accepted_pairs_at_fmr(lfw, &judged, keep, model.metric, 1e-4, args.threads).map(
                |(images, point)| serde_json::json!({ "images": images, "at_fmr_1e-4": point }),
            )
        };
        out["all_images"] = serde_json::json!({
            "images": judged.len(),
            "server_rule": {
                "failure_to_enrol": all_server.failure_rate(),
                "counts": all_server,
                "accepted_pairs": at(|j| j.server == enrol::Outcome::Accepted),
            },
            "legacy_rule": {
                "failure_to_enrol": all_legacy.failure_rate(),
                "counts": all_legacy,
                "accepted_pairs": at(|j| j.legacy == enrol::Outcome::Accepted),
            },
        });
    }
    let mut sweep = Vec::new();
    for (k, &min) in args.sweep.iter().enumerate() {
        let c = enrol::count_swept(&first_judged, k);
        let mut row = serde_json::json!({
            "min_eye_distance": min,
            "failure_to_enrol": c.failure_rate(),
            "counts": c,
        });
        if args.all_images {
            let keep = |j: &enrol::Judged| j.sweep[k] == enrol::Outcome::Accepted;
            row["accepted_pairs"] = enrol::accepted_pairs_at_fmr(
                lfw,
                &judged,
                keep,
                model.metric,
                1e-4,
                args.threads,
            )
            .map(|(images, point)| serde_json::json!({ "images": images, "at_fmr_1e-4": point }))
            .into();
        }
        sweep.push(row);
    }
    out["sweep"] = sweep.into();
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// `facegate-eval pad`: the liveness calibration of the chosen pipeline's
/// detector, printed, and written with `--write`.
fn pad(args: &Args) -> Result<()> {
    let spec = BackendSpec {
        kind: args.backend,
        detector: args.detector,
        models_dir: args.models.clone(),
        onnx: args.onnx.clone(),
    };
    let (mut pipeline, fingerprint) = spec.pad_pipeline()?;
    eprintln!("liveness calibration for {fingerprint}");
    let shared = facegate_eval::shared_dir(&std::env::current_dir()?);
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let calibration = facegate_eval::pad::calibrate(
        &mut pipeline,
        fingerprint,
        &shared,
        args.target_bpcer,
        command,
    )?;
    println!("{}", serde_json::to_string_pretty(&calibration)?);
    if args.write {
        let path = calibration.write(&args.calibration_dir)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// `facegate-eval detectors`: recall and time of each detector setting on
/// the shared photos (see `detectors.rs`), as a table and JSON.
fn detectors(mut it: impl Iterator<Item = String>) -> Result<()> {
    use facegate_eval::detectors::{measure, Setting};
    let mut settings = Vec::new();
    let mut dirs = vec![PathBuf::from("models")];
    let mut options = face_core::onnx::OnnxOptions::default();
    let mut data = PathBuf::from("../shared/datasets/lfw");
    let mut lfw_photos = 300;
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--setting" => settings.push(Setting::parse(&value()?)?),
            "--models" => dirs.push(value()?.into()),
            "--onnx-runtime" => options.runtime.library = Some(value()?.into()),
            "--data" => data = value()?.into(),
            "--lfw-photos" => lfw_photos = value()?.parse()?,
            other => return Err(format!("unknown flag {other:?}").into()),
        }
    }
    let shared = facegate_eval::shared_dir(&std::env::current_dir()?);
    dirs.push(shared.join("models/onnx"));
    let locator = face_core::models::ModelLocator::with_dirs(dirs);
    let lfw = Lfw::load(&data)?;
    let photos: Vec<PathBuf> = facegate_eval::enrol::first_photos(&lfw, lfw_photos)
        .into_iter()
        .map(|i| lfw.root.join(&lfw.images[i].path))
        .collect();
    println!("| setting | portraits 1 face | no-face clean | group found | group over+1 | LFW with a face | ms portrait | ms group | ms LFW |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut all = Vec::new();
    for s in &settings {
        let m = measure(s, &options, &locator, &shared.join("faces"), &photos)?;
        println!(
            "| {} @{} ≤{}× | {}/{} | {}/{} | {}/{} | {} | {}/{} | {:.1} | {:.1} | {:.1} |",
            s.model,
            s.input_size,
            s.max_upscale,
            m.portraits_one_face.0,
            m.portraits_one_face.1,
            m.noface_clean.0,
            m.noface_clean.1,
            m.group_found.0,
            m.group_found.1,
            m.group_overcounts,
            m.lfw_with_face.0,
            m.lfw_with_face.1,
            m.portrait_ms,
            m.group_ms,
            m.lfw_ms
        );
        all.push(m);
    }
    eprintln!("{}", serde_json::to_string(&all)?);
    Ok(())
}
