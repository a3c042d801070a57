//! The analysis behind `facegate-eval lfw`: from cached embeddings to the
//! figures, the calibration file and the report.
//!
//! Order of work: the no-face accounting; 10-fold accuracy on the View 2
//! pairs (plus fixed thresholds: dlib's Euclidean 0.6 and the reference
//! design's cosine 0.45); every same- and different-person pair for FMR,
//! FNMR and the thresholds at FMR 1e-3…1e-6; open-set identification; the
//! ROC/DET plot; then the [`Calibration`] written to
//! `<calibration dir>/<model_id>.json` and, in the output directory,
//! `summary.json` (all numbers) and `report.md` (the tables of
//! `docs/accuracy.md`).
//!
//! Threshold policy (see `face_core::calibration`): verify = FMR 1e-4,
//! medium band = FMR 1e-4, high band = FMR 1e-5, identify = FPIR ≤ 1 % at
//! the expected gallery size, measured where LFW allows.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use face_core::calibration::{
    expected_fpir, per_comparison_fmr, Calibration, Evidence, IdentificationMethod,
    IdentificationPoint, OperatingPoint, Thresholds, SCHEMA_VERSION,
};
use face_core::{Metric, ModelInfo};
use serde_json::json;

use crate::allpairs::{self, RatePoint};
use crate::backend::Source;
use crate::cache::Cache;
use crate::embed_all::EmbedRun;
use crate::lfw::Lfw;
use crate::openset::{self, OpenSetConfig};
use crate::plot::{self, Curve, Mark};
use crate::verify::{self, Scored};
use crate::Result;

/// FMRs reported and stored as operating points.
pub const FMR_GRID: [f64; 5] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2];
/// FMR of the high-confidence band.
pub const HIGH_FMR: f64 = 1e-5;
/// FMR of the medium band and of the verify default (NIST SP 800-63B).
pub const VERIFY_FMR: f64 = 1e-4;
/// FPIR the identify default is chosen for.
pub const IDENTIFY_FPIR: f64 = 0.01;
/// Gallery sizes of the open-set table.
pub const GALLERY_SIZES: [usize; 3] = [1_000, 5_000, 10_000];
/// Seed of the open-set draws (round r uses SEED + r).
pub const OPENSET_SEED: u64 = 20_240_605;
/// The reference design's threshold: cosine similarity ≥ 0.45.
pub const REFERENCE_COSINE_SIMILARITY: f32 = 0.45;
/// dlib's published Euclidean threshold.
pub const DLIB_PUBLISHED_EUCLIDEAN: f32 = 0.6;

/// How the command was run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Primary detector tag.
    pub detector: String,
    /// The primary pipeline, written into the calibration.
    pub pipeline: face_core::calibration::PipelineFingerprint,
    /// Fallback detector tag, if any.
    pub secondary: Option<String>,
    /// Worker threads.
    pub threads: usize,
    /// Output directory (plot, summary, report).
    pub out: PathBuf,
    /// Where to write the calibration; None in `--cached-only` runs.
    pub calibration_dir: Option<PathBuf>,
    /// Expected gallery size for the identify default.
    pub identify_gallery: u32,
    /// Open-set rounds.
    pub rounds: usize,
    /// This run's embedding work.
    pub embed_run: EmbedRun,
    /// When the command started.
    pub started: Instant,
    /// The command line.
    pub command: String,
}

fn pct(x: f64) -> String {
    format!("{:.2} %", 100.0 * x)
}

/// Runs the analysis and writes its outputs.
pub fn analyse(lfw: &Lfw, cache: &Cache, model: &ModelInfo, s: &Settings) -> Result<()> {
    let dim = model.dimension;
    // Images with an embedding (all of them, unless --cached-only).
    let present: Vec<bool> = lfw
        .images
        .iter()
        .map(|im| cache.entries.contains_key(&im.path))
        .collect();
    let complete = present.iter().all(|&p| p);
    let kept: Vec<usize> = (0..lfw.images.len()).filter(|&i| present[i]).collect();
    if kept.len() < 2 {
        return Err("no embeddings to analyse".into());
    }
    let mut position = vec![usize::MAX; lfw.images.len()];
    for (k, &i) in kept.iter().enumerate() {
        position[i] = k;
    }
    let mut vectors = Vec::with_capacity(kept.len() * dim);
    let mut identity = Vec::with_capacity(kept.len());
    let mut sources = Vec::with_capacity(kept.len());
    let mut boxes = Vec::new();
    for &i in &kept {
        let e = &cache.entries[&lfw.images[i].path];
        vectors.extend_from_slice(&e.values);
        identity.push(lfw.images[i].identity);
        sources.push(e.source);
        if e.source == Source::Primary {
            boxes.push(e.bbox);
        }
    }
    let row = |k: usize| &vectors[k * dim..(k + 1) * dim];
    let metric = model.metric;

    // --- No-face accounting -------------------------------------------
    let count = |src: Source| sources.iter().filter(|&&x| x == src).count();
    let (n_primary, n_secondary, n_central) = (
        count(Source::Primary),
        count(Source::Secondary),
        count(Source::CentralBox),
    );
    let fallback_images: Vec<(String, &'static str)> = kept
        .iter()
        .zip(&sources)
        .filter(|(_, &src)| src != Source::Primary)
        .map(|(&i, &src)| {
            (
                lfw.images[i].path.clone(),
                if src == Source::Secondary {
                    "second detector"
                } else {
                    "central box"
                },
            )
        })
        .collect();
    let median = |k: usize| {
        let mut v: Vec<f32> = boxes.iter().map(|b| b[k] / 250.0).collect();
        v.sort_by(f32::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f32::NAN)
    };
    let median_box = [median(0), median(1), median(2), median(3)];

    // --- View 2 pairs ---------------------------------------------------
    // (model-metric pair, cosine pair, touches a fallback image, the pair).
    let pairs: Vec<(Scored, Scored, bool, crate::lfw::Pair)> = lfw
        .pairs
        .iter()
        .filter(|p| present[p.a] && present[p.b])
        .map(|p| {
            let (a, b) = (row(position[p.a]), row(position[p.b]));
            let fallback = sources[position[p.a]] != Source::Primary
                || sources[position[p.b]] != Source::Primary;
            (
                Scored {
                    fold: p.fold,
                    distance: metric.distance(a, b),
                    same: p.same,
                },
                Scored {
                    fold: p.fold,
                    distance: Metric::Cosine.distance(a, b),
                    same: p.same,
                },
                fallback,
                *p,
            )
        })
        .collect();
    let model_pairs: Vec<Scored> = pairs.iter().map(|p| p.0).collect();
    let cosine_pairs: Vec<Scored> = pairs.iter().map(|p| p.1).collect();
    let pairs_with_fallback = pairs.iter().filter(|p| p.2).count();
    let ten = verify::ten_fold(&model_pairs);
    let ten_cos = verify::ten_fold(&cosine_pairs);
    // The stricter accounting: a pair touching a fallback image counts as
    // an error whatever its distance, at each fold's own threshold.
    let strict_folds: Vec<f64> = ten
        .folds
        .iter()
        .map(|f| {
            let fold: Vec<_> = pairs.iter().filter(|p| p.0.fold == f.fold).collect();
            let ok = fold
                .iter()
                .filter(|p| !p.2 && ((p.0.distance < f.threshold) == p.0.same))
                .count();
            ok as f64 / fold.len().max(1) as f64
        })
        .collect();
    // The 10-fold errors, for the investigation of what LFW still gets wrong.
    let errors: Vec<serde_json::Value> = ten
        .folds
        .iter()
        .flat_map(|f| {
            pairs
                .iter()
                .filter(move |p| p.0.fold == f.fold && (p.0.distance < f.threshold) != p.0.same)
                .map(move |p| {
                    let lp = p.3;
                    json!({
                        "fold": f.fold, "same": p.0.same, "distance": p.0.distance,
                        "threshold": f.threshold, "fallback": p.2,
                        "a": lfw.images[lp.a].path, "b": lfw.images[lp.b].path,
                    })
                })
        })
        .collect();
    let false_non_matches = errors.iter().filter(|e| e["same"] == true).count();
    let strict_mean = strict_folds.iter().sum::<f64>() / strict_folds.len().max(1) as f64;
    let acc_published = verify::accuracy_at(&model_pairs, DLIB_PUBLISHED_EUCLIDEAN);
    let cosine_distance_ref = 1.0 - REFERENCE_COSINE_SIMILARITY; // sim ≥ 0.45 ⇔ dist ≤ 0.55
    let acc_ref_cos = verify::accuracy_at(&cosine_pairs, cosine_distance_ref + 1e-7);
    let acc_ref_cos_as_distance = verify::accuracy_at(&cosine_pairs, REFERENCE_COSINE_SIMILARITY);
    eprintln!(
        "10-fold accuracy {:.4} ± {:.4} (threshold mean {:.4}); {} pairs",
        ten.mean,
        ten.std,
        ten.threshold_mean,
        model_pairs.len()
    );

    // --- All pairs ------------------------------------------------------
    eprintln!("all pairs of {} images ...", kept.len());
    let all = allpairs::all_pairs(&vectors, dim, &identity, metric, s.threads);
    let genuine_pairs = all.model.genuine.total();
    let impostor_pairs = all.model.impostor.total();
    eprintln!(
        "{genuine_pairs} same-person and {impostor_pairs} different-person pairs in {:.1} s",
        all.seconds
    );
    let grid: Vec<RatePoint> = FMR_GRID.iter().map(|&f| all.model.at_fmr(f)).collect();
    let high = all.model.at_fmr(HIGH_FMR);
    let medium = all.model.at_fmr(VERIFY_FMR);
    let at_published = all.model.at_threshold(DLIB_PUBLISHED_EUCLIDEAN);
    let at_ref_cos = all.cosine.at_threshold(cosine_distance_ref);
    let cos_grid: Vec<RatePoint> = FMR_GRID.iter().map(|&f| all.cosine.at_fmr(f)).collect();

    // --- Open set -------------------------------------------------------
    let by_identity_all = lfw.images_by_identity();
    // Only images with embeddings, re-indexed; people without any dropped.
    let by_identity: Vec<Vec<usize>> = by_identity_all
        .iter()
        .map(|imgs| {
            imgs.iter()
                .filter(|&&i| present[i])
                .map(|&i| position[i])
                .collect::<Vec<_>>()
        })
        .filter(|v: &Vec<usize>| !v.is_empty())
        .collect();
    let people = by_identity.len();
    let measurable_max = GALLERY_SIZES
        .iter()
        .copied()
        .filter(|&n| n + 500 <= people)
        .max()
        .unwrap_or(0);
    let open_cfg = OpenSetConfig {
        gallery_sizes: GALLERY_SIZES.to_vec(),
        strangers: people.saturating_sub(measurable_max),
        rounds: s.rounds,
        seed: OPENSET_SEED,
        target_fpir: IDENTIFY_FPIR,
    };
    let t_open = Instant::now();
    let open = openset::run(
        &vectors,
        dim,
        &by_identity,
        |a, b| metric.distance(a, b),
        &open_cfg,
        s.threads,
    );
    let open_seconds = t_open.elapsed().as_secs_f64();

    let mut identification: Vec<IdentificationPoint> = Vec::new();
    for &n in &GALLERY_SIZES {
        if let Some(r) = open.iter().find(|r| r.gallery_size == n) {
            identification.push(IdentificationPoint {
                gallery_size: n as u32,
                method: IdentificationMethod::Measured,
                target_fpir: IDENTIFY_FPIR,
                threshold: r.threshold,
                fpir: r.fpir,
                fnir: r.fnir,
                stranger_probes: r.stranger_probes as u64,
                genuine_probes: r.genuine_probes as u64,
            });
        } else {
            let p = all
                .model
                .at_fmr(per_comparison_fmr(IDENTIFY_FPIR, n as u32));
            identification.push(IdentificationPoint {
                gallery_size: n as u32,
                method: IdentificationMethod::Extrapolated,
                target_fpir: IDENTIFY_FPIR,
                threshold: p.threshold,
                fpir: expected_fpir(p.fmr, n as u32),
                fnir: p.fnmr,
                stranger_probes: 0,
                genuine_probes: 0,
            });
        }
    }
    let identify_row = identification
        .iter()
        .find(|r| r.gallery_size == s.identify_gallery)
        .copied();
    let (identify_threshold, identify_method) = match identify_row {
        Some(r) => (r.threshold, r.method),
        None => {
            let p = all
                .model
                .at_fmr(per_comparison_fmr(IDENTIFY_FPIR, s.identify_gallery));
            (p.threshold, IdentificationMethod::Extrapolated)
        }
    };

    // --- Plot -----------------------------------------------------------
    std::fs::create_dir_all(&s.out)
        .map_err(|e| format!("cannot create {}: {e}", s.out.display()))?;
    let plot_path = s.out.join(format!("roc_det_{}.png", model.id));
    let curve = |split: &allpairs::Split| -> Vec<(f64, f64)> {
        split.curve().into_iter().map(|(_, a, b)| (a, b)).collect()
    };
    let mut curves = vec![Curve {
        label: format!("{} ({}, {})", model.id, s.detector, metric.as_str()),
        points: curve(&all.model),
    }];
    if metric != Metric::Cosine {
        curves.push(Curve {
            label: format!("{} cosine distance, same vectors", model.id),
            points: curve(&all.cosine),
        });
    }
    let marks: Vec<Mark> = [1e-3, 1e-4, 1e-5]
        .iter()
        .map(|&f| {
            let p = all.model.at_fmr(f);
            Mark {
                label: format!("FMR {f:.0e}"),
                fmr: p.fmr,
                fnmr: p.fnmr,
            }
        })
        .collect();
    let with_text = plot::roc_det(
        &plot_path,
        &format!(
            "LFW deep-funneled, all pairs: {} same-person, {} different-person",
            genuine_pairs, impostor_pairs
        ),
        &curves,
        &marks,
    )?;
    if !with_text {
        eprintln!("warning: no font found (install fonts-dejavu-core); plot drawn without text");
    }

    // --- Calibration ----------------------------------------------------
    let runtime = cache.compute_seconds + s.started.elapsed().as_secs_f64() - s.embed_run.seconds;
    let no_face_policy = format!(
        "primary detector {}; where it finds no face, the {} detector; where that finds none \
         either, the face is embedded from LFW's fixed central box (LFW guarantees one centred \
         face). Every image gets an embedding; no pair is dropped. Of several faces, the one \
         nearest the image centre is used.",
        s.detector,
        s.secondary.as_deref().unwrap_or("(no second)")
    );
    let calibration = Calibration {
        schema_version: SCHEMA_VERSION,
        model_id: model.id.clone(),
        metric,
        pipeline: s.pipeline.clone(),
        thresholds: Thresholds {
            verify: medium.threshold,
            verify_fmr: VERIFY_FMR,
            high: high.threshold,
            high_fmr: HIGH_FMR,
            medium: medium.threshold,
            medium_fmr: VERIFY_FMR,
            identify: identify_threshold,
            identify_fpir: IDENTIFY_FPIR,
            identify_gallery_size: s.identify_gallery,
        },
        operating_points: grid
            .iter()
            .map(|p| OperatingPoint {
                target_fmr: p.target,
                threshold: p.threshold,
                fmr: p.fmr,
                fnmr: p.fnmr,
            })
            .collect(),
        identification: identification.clone(),
        evidence: Evidence {
            dataset: "LFW (deep-funneled variant), all images".into(),
            images: kept.len() as u64,
            identities: people as u64,
            genuine_pairs,
            impostor_pairs,
            detector: s.detector.clone(),
            no_face_policy: no_face_policy.clone(),
            no_face_images: (n_secondary + n_central) as u64,
            lfw_accuracy_mean: ten.mean,
            lfw_accuracy_std: ten.std,
            lfw_threshold_mean: ten.threshold_mean,
            lfw_accuracy_at_verify: verify::accuracy_at(&model_pairs, medium.threshold),
            runtime_seconds: runtime,
            command: "cargo run --release -p facegate-eval -- lfw --data ../shared/datasets/lfw"
                .into(),
            notes: vec![
                "match rule: distance strictly under the threshold".into(),
                format!(
                    "thresholds are bin edges of a {}-wide distance histogram over all pairs",
                    allpairs::BIN_WIDTH
                ),
                format!(
                    "no face from {}: {} images; {} found by the second detector, {} embedded \
                     from the central box",
                    s.detector,
                    n_secondary + n_central,
                    n_secondary,
                    n_central
                ),
                format!(
                    "identify threshold: {} for FPIR <= 1% at {} enrolled people",
                    match identify_method {
                        IdentificationMethod::Measured => "measured",
                        IdentificationMethod::Extrapolated => "extrapolated",
                    },
                    s.identify_gallery
                ),
            ],
        },
    };
    calibration.validate()?;
    let json = calibration.to_json_pretty()?;
    std::fs::write(s.out.join(format!("{}.json", model.id)), &json)?;
    if let Some(dir) = &s.calibration_dir {
        if complete {
            std::fs::create_dir_all(dir)?;
            let path = calibration.destination_in(dir)?;
            std::fs::write(&path, format!("{json}\n"))?;
            eprintln!("wrote {}", path.display());
        }
    }

    // --- Summary and report ----------------------------------------------
    let open_json: Vec<_> = open
        .iter()
        .map(|r| {
            let (fpir_v, fnir_v) = r.rates_at(medium.threshold);
            let (fpir_i, fnir_i) = r.rates_at(identify_threshold);
            json!({
                "gallery_size": r.gallery_size, "stranger_probes": r.stranger_probes,
                "genuine_probes": r.genuine_probes, "threshold": r.threshold,
                "fpir": r.fpir, "fnir": r.fnir, "rank1_error": r.rank1_error,
                "predicted_fpir_from_fmr": expected_fpir(all.model.share_below_impostor(r.threshold), r.gallery_size as u32),
                "at_verify_threshold": {"fpir": fpir_v, "fnir": fnir_v},
                "at_identify_threshold": {"fpir": fpir_i, "fnir": fnir_i},
            })
        })
        .collect();
    let summary = json!({
        "complete": complete,
        "model": model,
        "detector": s.detector,
        "images": kept.len(), "identities": people,
        "no_face": {
            "policy": no_face_policy, "primary": n_primary, "second_detector": n_secondary,
            "central_box": n_central, "images": fallback_images,
            "view2_pairs_touching_fallback": pairs_with_fallback,
            "median_detected_box_fraction": median_box,
        },
        "view2": {
            "pairs": model_pairs.len(), "ten_fold": ten,
            "errors": {"false_non_matches": false_non_matches,
                       "false_matches": errors.len() - false_non_matches, "pairs": errors},
            "ten_fold_fallback_pairs_as_errors": {"mean": strict_mean, "folds": strict_folds},
            "accuracy_at_euclidean_0_6": acc_published,
            "accuracy_at_verify_threshold": verify::accuracy_at(&model_pairs, medium.threshold),
            "cosine": {
                "ten_fold": ten_cos,
                "accuracy_at_similarity_0_45": acc_ref_cos,
                "accuracy_at_distance_0_45": acc_ref_cos_as_distance,
            },
        },
        "all_pairs": {
            "genuine": genuine_pairs, "impostor": impostor_pairs, "seconds": all.seconds,
            "operating_points": grid, "cosine_operating_points": cos_grid,
            "at_euclidean_0_6": at_published, "at_cosine_similarity_0_45": at_ref_cos,
            "closest_impostors": all.closest_impostors.iter().map(|c| json!({
                "distance": c.distance,
                "a": lfw.images[kept[c.a]].path, "b": lfw.images[kept[c.b]].path,
            })).collect::<Vec<_>>(),
        },
        "open_set": {
            "protocol": {
                "strangers_per_round": open_cfg.strangers, "rounds": open_cfg.rounds,
                "seed": open_cfg.seed, "target_fpir": IDENTIFY_FPIR,
            },
            "seconds": open_seconds,
            "measured": open_json,
            "table": identification,
        },
        "calibration": calibration,
        "runtime": {
            "embedding_seconds_cached_total": cache.compute_seconds,
            "embedded_this_run": s.embed_run.embedded,
            "embedding_seconds_this_run": s.embed_run.seconds,
            "threads": s.threads,
            "this_run_seconds": s.started.elapsed().as_secs_f64(),
            "full_evaluation_seconds": runtime,
        },
        "command": s.command,
        "plot": plot_path,
    });
    std::fs::write(
        s.out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;

    // Markdown tables for docs/accuracy.md.
    let mut md = String::new();
    let w = &mut md;
    writeln!(
        w,
        "## {} with {} on LFW (deep-funneled){}\n",
        model.id,
        s.detector,
        if complete {
            ""
        } else {
            " — PARTIAL (--cached-only)"
        }
    )?;
    writeln!(
        w,
        "- images {} / people {} / View 2 pairs {}",
        kept.len(),
        people,
        model_pairs.len()
    )?;
    writeln!(w, "- 10-fold accuracy: **{:.2} % ± {:.2}** (std over folds; threshold mean {:.4}, range {:.4}–{:.4})",
        100.0 * ten.mean, 100.0 * ten.std, ten.threshold_mean,
        ten.folds.iter().map(|f| f.threshold).fold(f32::INFINITY, f32::min),
        ten.folds.iter().map(|f| f.threshold).fold(0.0, f32::max))?;
    writeln!(w, "- no face from {}: {} images; {} found by the second detector, {} embedded from the central box; {} View 2 pairs touch them. Counting those pairs as errors instead: {:.2} %",
        s.detector, n_secondary + n_central, n_secondary, n_central, pairs_with_fallback, 100.0 * strict_mean)?;
    writeln!(
        w,
        "- median detected box (fraction of side): left {:.3} top {:.3} w {:.3} h {:.3}",
        median_box[0], median_box[1], median_box[2], median_box[3]
    )?;
    // dlib's published 0.6 is a Euclidean distance on dlib's scale; on
    // another model's vectors it means nothing, so it is reported for
    // Euclidean models only.
    let euclidean = model.metric == Metric::Euclidean;
    if euclidean {
        writeln!(
            w,
            "- accuracy at Euclidean 0.6 (dlib's published): {}",
            pct(acc_published)
        )?;
    }
    writeln!(w, "- cosine similarity ≥ 0.45 (reference design) on the same vectors: {} (FMR {:.4}, FNMR {:.4} over all pairs); read as cosine distance < 0.45: {}; cosine 10-fold (threshold learnt): {:.2} % ± {:.2}, threshold {:.4}",
        pct(acc_ref_cos), at_ref_cos.fmr, at_ref_cos.fnmr, pct(acc_ref_cos_as_distance), 100.0 * ten_cos.mean, 100.0 * ten_cos.std, ten_cos.threshold_mean)?;
    writeln!(w, "\n### FMR / FNMR over all pairs ({genuine_pairs} same-person, {impostor_pairs} different-person)\n")?;
    writeln!(
        w,
        "| target FMR | threshold | measured FMR | false matches | FNMR |\n|---|---|---|---|---|"
    )?;
    for p in &grid {
        writeln!(
            w,
            "| {:.0e} | {:.4} | {:.2e} | {} | {} |",
            p.target,
            p.threshold,
            p.fmr,
            p.false_matches,
            pct(p.fnmr)
        )?;
    }
    if euclidean {
        writeln!(
            w,
            "| (dlib 0.6) | 0.6000 | {:.2e} | {} | {} |",
            at_published.fmr,
            at_published.false_matches,
            pct(at_published.fnmr)
        )?;
    }
    writeln!(w, "\n### Thresholds\n\n- verify {:.4} (FMR ≤ 1e-4) · high < {:.4} · medium < {:.4} · identify {:.4} ({} for FPIR ≤ 1 % at {})",
        calibration.thresholds.verify, calibration.thresholds.high, calibration.thresholds.medium,
        calibration.thresholds.identify, if identify_method == IdentificationMethod::Measured {"measured"} else {"extrapolated"}, s.identify_gallery)?;
    writeln!(w, "\n### Open-set identification ({} strangers held out per round, {} rounds pooled, seed {})\n",
        open_cfg.strangers, open_cfg.rounds, open_cfg.seed)?;
    writeln!(w, "| gallery | method | stranger probes | genuine probes | threshold FPIR ≤ 1 % | FPIR | FNIR | rank-1 error | FPIR / FNIR at verify {:.4} |\n|---|---|---|---|---|---|---|---|---|", medium.threshold)?;
    for row in &identification {
        let m = open
            .iter()
            .find(|r| r.gallery_size as u32 == row.gallery_size);
        let at_verify = m.map(|r| r.rates_at(medium.threshold));
        writeln!(
            w,
            "| {} | {} | {} | {} | {:.4} | {} | {} | {} | {} |",
            row.gallery_size,
            if row.method == IdentificationMethod::Measured {
                "measured"
            } else {
                "extrapolated (not measurable: LFW has 5,749 people)"
            },
            row.stranger_probes,
            row.genuine_probes,
            row.threshold,
            pct(row.fpir),
            pct(row.fnir),
            m.map_or("—".to_string(), |r| pct(r.rank1_error)),
            at_verify.map_or("—".to_string(), |(a, b)| format!(
                "{} / {}",
                pct(a),
                pct(b)
            ))
        )?;
    }
    for r in &open {
        writeln!(
            w,
            "\n- gallery {}: FPIR predicted from the all-pairs FMR at {:.4}, 1 − (1 − FMR)^N = {}",
            r.gallery_size,
            r.threshold,
            pct(expected_fpir(
                all.model.share_below_impostor(r.threshold),
                r.gallery_size as u32
            ))
        )?;
    }
    writeln!(w, "\n### Runtime\n\n- embedding {} images: {:.0} s ({} threads; recorded in the cache), i.e. {:.1} ms of one thread per 250×250 image (decode, detection, alignment, embedding); all pairs {:.1} s; open set {:.1} s; this run {:.1} s; full evaluation ≈ {:.0} s",
        kept.len(), cache.compute_seconds, s.threads,
        1000.0 * cache.compute_seconds * s.threads as f64 / kept.len().max(1) as f64,
        all.seconds, open_seconds, s.started.elapsed().as_secs_f64(), runtime)?;
    writeln!(w, "\n### Closest different-person pairs\n")?;
    for c in all.closest_impostors.iter().take(10) {
        writeln!(
            w,
            "- {:.4} {} ↔ {}",
            c.distance, lfw.images[kept[c.a]].path, lfw.images[kept[c.b]].path
        )?;
    }
    std::fs::write(s.out.join("report.md"), &md)?;
    println!("{md}");
    Ok(())
}
