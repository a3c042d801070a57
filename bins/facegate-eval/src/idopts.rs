//! `facegate-eval idopts`: three identification options measured on LFW 1:N.
//!
//! - **Flip-averaged embeddings.** Each image is also embedded as its
//!   horizontal mirror (the decoded image flipped, the detection mirrored:
//!   [`mirror_face`]), and the two vectors are averaged and re-normalised
//!   ([`fuse`]), for templates and probes alike. The mirrored embeddings are
//!   cached in a second file beside the `lfw` command's cache
//!   (`<model>.<tag>-flip.bin`), so a rerun only analyses.
//! - **Several photos per person** (`Enrolment::Nearest(k)`): a person is
//!   enrolled with up to `k` templates and a probe matches its nearest one.
//! - **Fused templates** (`Enrolment::Fused(k)`): the same `k` photos, but
//!   one template, their normalised mean.
//!
//! Two protocols, both with `openset.rs`'s seeded draws (round `r` shuffles
//! with seed `OPENSET_SEED + r`; the first 749 people are strangers, the
//! gallery is the first N of the rest), so both have exactly the same
//! strangers and gallery people:
//!
//! 1. *Standard* (`openset::run`, as in `docs/accuracy.md`): one template
//!    (first photo), genuine probe = second photo. Baseline vs flip.
//! 2. *Multi-photo* ([`run_multi`]): every person with `n ≥ 2` photos is
//!    probed with photo `min(n, K + 1)` (K = 3: the 2nd, 3rd or 4th photo),
//!    and enrolled from the photos before it, at most `k`:
//!    `min(k, n − 1)` templates. People with one photo are enrolled with it
//!    and never probed. So every row of this protocol has the *same* stranger
//!    and genuine probes and the same gallery people; only the templates
//!    change. Only the 610 people with ≥ 4 photos can have 3 templates and
//!    the 291 with 3 photos 2, so the rates are also given on the probes of
//!    people with ≥ 4 photos (`fnir_k3_people`), at the same threshold.
//!
//! The threshold of each row is the one giving FPIR ≤ 1 % on its own
//! stranger scores (more templates give strangers more chances), chosen as
//! in `openset.rs`. Noise: each comparison of two rows is given with a 95 %
//! interval from a paired person-level bootstrap ([`paired_bootstrap`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use face_core::dlib::DetectorKind;
use face_core::image::RgbImage;
use face_core::models::ModelLocator;
use face_core::onnx::{self, HeadKind, OnnxOptions};
use face_core::{
    decode, BoundingBox, DetectedFace, Embedder, FacePipeline, LandmarkScheme, Landmarks, Metric,
    PipelineOptions, Point,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::backend::{
    BackendKind, BackendSpec, Embedded, Source, LFW_CENTRAL_BOX, ONNX_SECOND_SCORE_THRESHOLD,
};
use crate::cache::Cache;
use crate::lfw::Lfw;
use crate::openset::{self, OpenSetConfig};
use crate::report::{IDENTIFY_FPIR, OPENSET_SEED};
use crate::rng::SplitMix64;
use crate::{embed_all, Result};

/// Usage of the subcommand.
pub const USAGE: &str = "usage: facegate-eval idopts --data DIR --backend onnx [--models DIR] \
[--onnx-detector FILE] [--onnx-detector-kind yunet|scrfd] [--onnx-embedder FILE] [--onnx-runtime LIB] \
[--cache DIR] [--threads N] [--rounds N] [--timing N] [--out FILE] [--no-progress]";

/// Gallery sizes measured.
pub const SIZES: [usize; 2] = [1_000, 5_000];
/// People held out as strangers (5,749 − 5,000, as the `lfw` command).
pub const STRANGERS: usize = 749;
/// The most templates per person in the multi-photo protocol.
pub const MAX_TEMPLATES: usize = 3;
/// Bootstrap draws for the intervals.
pub const BOOTSTRAP_REPS: usize = 1000;

// ---------------------------------------------------------------------------
// Pure parts: mirroring, fusion, the multi-photo protocol.

/// `face` as found in the horizontal mirror of an image `width` pixels wide.
///
/// The box's edges map as `x → width − x` (a box covers pixels
/// `[left, right)`); landmark points are in the integer pixel-centre
/// convention of `face_core::align::warp_chip` (pixel `i` is at `x = i`),
/// so they map as `x → width − 1 − x`, which lands every point on the same
/// image content. Left and right swap, so the pairs are swapped back into
/// the scheme's order: ArcFace5 swaps the eyes and the mouth corners, dlib's
/// five points swap the two eyes' corner pairs (0 ↔ 2, 1 ↔ 3).
pub fn mirror_face(face: &DetectedFace, width: u32) -> DetectedFace {
    let w = width as f32;
    let b = face.bbox;
    let p = face
        .landmarks
        .points
        .map(|p| Point::new(w - 1.0 - p.x, p.y));
    let order: [usize; 5] = match face.landmarks.scheme {
        LandmarkScheme::ArcFace5 => [1, 0, 2, 4, 3],
        LandmarkScheme::Dlib5 => [2, 3, 0, 1, 4],
    };
    DetectedFace {
        bbox: BoundingBox {
            left: w - b.right(),
            top: b.top,
            width: b.width,
            height: b.height,
        },
        score: face.score,
        landmarks: Landmarks {
            scheme: face.landmarks.scheme,
            points: order.map(|i| p[i]),
        },
    }
}

/// The mean of `vectors` (all of one length), L2-normalised when
/// `normalise` (cosine models; each input is normalised first, so every
/// photo weighs the same).
pub fn fuse(vectors: &[&[f32]], normalise: bool) -> Vec<f32> {
    let dim = vectors.first().map_or(0, |v| v.len());
    let mut out = vec![0.0f32; dim];
    for v in vectors {
        let n = if normalise { norm(v) } else { 1.0 };
        for (o, x) in out.iter_mut().zip(v.iter()) {
            *o += x / n;
        }
    }
    if normalise {
        let n = norm(&out);
        out.iter_mut().for_each(|x| *x /= n);
    } else {
        let k = vectors.len().max(1) as f32;
        out.iter_mut().for_each(|x| *x /= k);
    }
    out
}

fn norm(v: &[f32]) -> f32 {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 && n.is_finite() {
        n
    } else {
        1.0
    }
}

/// How a gallery person is enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Enrolment {
    /// Up to `k` templates; a probe matches the nearest.
    Nearest(usize),
    /// The normalised mean of the same up-to-`k` photos, one template.
    Fused(usize),
}

impl Enrolment {
    fn k(self) -> usize {
        match self {
            Enrolment::Nearest(k) | Enrolment::Fused(k) => k.max(1),
        }
    }

    /// A label for the tables.
    pub fn label(self) -> String {
        match self {
            Enrolment::Nearest(1) | Enrolment::Fused(1) => "1 photo".into(),
            Enrolment::Nearest(k) => format!("{k} photos, nearest"),
            Enrolment::Fused(k) => format!("{k} photos, fused"),
        }
    }
}

/// Position in a person's photo list of their genuine probe: photo
/// `min(n, max_templates + 1)` (1-based), so that up to `max_templates`
/// photos precede it. None for people with one photo.
pub fn probe_position(photos: usize, max_templates: usize) -> Option<usize> {
    (photos >= 2).then(|| (photos - 1).min(max_templates.max(1)))
}

/// How many of a person's first photos enrol them with at most `k`: all
/// photos before the probe, at most `k`, at least one.
pub fn template_count(photos: usize, k: usize, max_templates: usize) -> usize {
    probe_position(photos, max_templates)
        .unwrap_or(1)
        .min(k.max(1))
        .max(1)
}

/// Settings of [`run_multi`].
#[derive(Debug, Clone)]
pub struct MultiConfig {
    /// Gallery sizes (nested prefixes of each round's draw).
    pub sizes: Vec<usize>,
    /// Strangers per round.
    pub strangers: usize,
    /// Rounds pooled.
    pub rounds: usize,
    /// Seed of round 0 (round r: seed + r, as `openset::run`).
    pub seed: u64,
    /// FPIR the threshold is chosen for.
    pub target_fpir: f64,
    /// `K`: fixes the probe photo (see [`probe_position`]).
    pub max_templates: usize,
    /// Fuse with normalisation (cosine models).
    pub normalise: bool,
}

/// One row of the multi-photo protocol at one gallery size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MultiResult {
    /// How people were enrolled.
    pub enrolment: Enrolment,
    /// Gallery people.
    pub gallery_size: usize,
    /// Templates per gallery person, mean over rounds.
    pub templates_per_person: f64,
    /// Stranger probes pooled.
    pub stranger_probes: usize,
    /// Genuine probes pooled.
    pub genuine_probes: usize,
    /// Threshold for FPIR ≤ target over the pooled strangers.
    pub threshold: f32,
    /// FPIR there.
    pub fpir: f64,
    /// FNIR there.
    pub fnir: f64,
    /// Nearest template of the wrong person, whatever the threshold.
    pub rank1_error: f64,
    /// Genuine probes of people with more than `K` photos (those who can
    /// have `K` templates).
    pub k3_people_probes: usize,
    /// FNIR of those at the same threshold.
    pub fnir_k3_people: f64,
    /// Stranger probes: nearest distance and person, sorted by distance.
    #[serde(skip)]
    strangers: Vec<(f32, u32)>,
    #[serde(skip)]
    genuine: Vec<Genuine>,
}

/// A genuine probe's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Genuine {
    distance: f32,
    correct: bool,
    rich: bool,
    person: u32,
}

impl MultiResult {
    /// FNIR and rank-1 error with probes weighted by `weights[person]`
    /// (a bootstrap draw of people), the threshold re-chosen on the
    /// weighted strangers by the same rule.
    fn weighted(&self, weights: &[u32], target: f64) -> (f64, f64) {
        let total: u64 = self
            .strangers
            .iter()
            .map(|&(_, p)| u64::from(weights[p as usize]))
            .sum();
        let allowed = (target * total as f64).floor() as u64;
        let mut seen = 0u64;
        let mut threshold = f32::INFINITY;
        for &(d, p) in &self.strangers {
            let w = u64::from(weights[p as usize]);
            if w == 0 {
                continue;
            }
            if seen + w > allowed {
                threshold = ((f64::from(d) * 1e4).floor() / 1e4) as f32;
                break;
            }
            seen += w;
        }
        let (mut all, mut ok, mut right) = (0u64, 0u64, 0u64);
        for g in &self.genuine {
            let w = u64::from(weights[g.person as usize]);
            all += w;
            if g.correct {
                right += w;
                if g.distance < threshold {
                    ok += w;
                }
            }
        }
        let all = all.max(1) as f64;
        (1.0 - ok as f64 / all, 1.0 - right as f64 / all)
    }
}

/// A paired difference `b − a` with its 95 % bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Delta {
    /// FNIR difference: measured, 2.5 % and 97.5 % bootstrap percentiles.
    pub fnir: [f64; 3],
    /// Rank-1 error difference, likewise.
    pub rank1: [f64; 3],
}

/// Person-level paired bootstrap of `b − a` (two rows measured on the same
/// draws): `reps` times, `people` people are drawn with replacement, every
/// probe (stranger or genuine, in every round) weighs as many times as its
/// person was drawn, and both rows' thresholds and rates are recomputed.
/// Resampling people rather than probes keeps a person's probes of several
/// rounds together, so the interval is not narrowed by the rounds' overlap.
pub fn paired_bootstrap(
    a: &MultiResult,
    b: &MultiResult,
    people: usize,
    reps: usize,
    seed: u64,
    target: f64,
) -> Delta {
    let mut rng = SplitMix64::new(seed);
    let mut weights = vec![0u32; people];
    let (mut dn, mut dr) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
    for _ in 0..reps {
        weights.iter_mut().for_each(|w| *w = 0);
        for _ in 0..people {
            weights[rng.below(people.max(1) as u64) as usize] += 1;
        }
        let (fa, ra) = a.weighted(&weights, target);
        let (fb, rb) = b.weighted(&weights, target);
        dn.push(fb - fa);
        dr.push(rb - ra);
    }
    let interval = |v: &mut Vec<f64>, point: f64| {
        v.sort_by(f64::total_cmp);
        let at = |q: f64| {
            v.get((q * (v.len() as f64 - 1.0)).round() as usize)
                .copied()
        };
        [
            point,
            at(0.025).unwrap_or(point),
            at(0.975).unwrap_or(point),
        ]
    };
    Delta {
        fnir: interval(&mut dn, b.fnir - a.fnir),
        rank1: interval(&mut dr, b.rank1_error - a.rank1_error),
    }
}

/// `openset.rs`'s rule: the largest threshold (rounded down to 1e-4) with at
/// most `target · count` of the sorted stranger distances under it.
fn threshold_for(sorted: &[f32], target: f64) -> f32 {
    let allowed = (target * sorted.len() as f64).floor() as usize;
    sorted.get(allowed).map_or(f32::INFINITY, |&d| {
        ((f64::from(d) * 1e4).floor() / 1e4) as f32
    })
}

fn fnir_at(genuine: &[Genuine], threshold: f32) -> f64 {
    let ok = genuine
        .iter()
        .filter(|g| g.correct && g.distance < threshold)
        .count();
    1.0 - ok as f64 / genuine.len().max(1) as f64
}

/// The multi-photo protocol for each of `enrolments` (see the module
/// documentation). `vectors`: row-major, `dim` wide, one row per image;
/// `by_identity[p]`: person p's images in file order. Returns, per
/// enrolment, one result per measurable gallery size.
pub fn run_multi(
    vectors: &[f32],
    dim: usize,
    by_identity: &[Vec<usize>],
    distance: impl Fn(&[f32], &[f32]) -> f32 + Sync,
    enrolments: &[Enrolment],
    config: &MultiConfig,
    threads: usize,
) -> Vec<Vec<MultiResult>> {
    let people = by_identity.len();
    let available = people.saturating_sub(config.strangers);
    let sizes: Vec<usize> = config
        .sizes
        .iter()
        .copied()
        .filter(|&n| n > 0 && n <= available)
        .collect();
    let Some(&largest) = sizes.iter().max() else {
        return vec![Vec::new(); enrolments.len()];
    };
    let row = |i: usize| &vectors[i * dim..(i + 1) * dim];
    let k_max = config.max_templates;
    // [enrolment][size] → (strangers, genuine, templates per person)
    type Pool = (Vec<(f32, u32)>, Vec<Genuine>, f64);
    let mut pooled: Vec<Vec<Pool>> =
        vec![vec![(Vec::new(), Vec::new(), 0.0); sizes.len()]; enrolments.len()];
    for round in 0..config.rounds {
        let mut rng = SplitMix64::new(config.seed.wrapping_add(round as u64));
        let mut order: Vec<usize> = (0..people).collect();
        rng.shuffle(&mut order);
        let (held_out, candidates) = order.split_at(config.strangers);
        let gallery = &candidates[..largest];
        // (image, person, Some((gallery position, has > K photos)) if genuine)
        let mut probes: Vec<Probe> = held_out
            .iter()
            .map(|&p| (by_identity[p][0], p as u32, None))
            .collect();
        probes.extend(gallery.iter().enumerate().filter_map(|(pos, &p)| {
            let n = by_identity[p].len();
            probe_position(n, k_max).map(|i| (by_identity[p][i], p as u32, Some((pos, n > k_max))))
        }));
        for (e, &enrolment) in enrolments.iter().enumerate() {
            // Templates in gallery order, with their owner's position.
            let mut templates: Vec<f32> = Vec::new();
            let mut owners: Vec<usize> = Vec::new();
            for (pos, &p) in gallery.iter().enumerate() {
                let imgs = &by_identity[p];
                let count = template_count(imgs.len(), enrolment.k(), k_max);
                let rows: Vec<&[f32]> = imgs[..count].iter().map(|&i| row(i)).collect();
                match enrolment {
                    Enrolment::Nearest(_) => {
                        for r in rows {
                            templates.extend_from_slice(r);
                            owners.push(pos);
                        }
                    }
                    Enrolment::Fused(_) => {
                        templates.extend(fuse(&rows, config.normalise));
                        owners.push(pos);
                    }
                }
            }
            // Templates belonging to the first n people, per size.
            let ends: Vec<usize> = sizes
                .iter()
                .map(|&n| owners.partition_point(|&o| o < n))
                .collect();
            for (k, &n) in sizes.iter().enumerate() {
                pooled[e][k].2 += ends[k] as f64 / n as f64 / config.rounds as f64;
            }
            let outcomes = nearest_per_size(
                &probes, &templates, &owners, dim, &ends, &row, &distance, threads,
            );
            for ((_, person, truth), per_size) in probes.iter().zip(outcomes) {
                for (k, &(d, pos)) in per_size.iter().enumerate() {
                    match *truth {
                        None => pooled[e][k].0.push((d, *person)),
                        Some((p, rich)) if p < sizes[k] => pooled[e][k].1.push(Genuine {
                            distance: d,
                            correct: pos == p,
                            rich,
                            person: *person,
                        }),
                        Some(_) => {}
                    }
                }
            }
        }
    }
    pooled
        .into_iter()
        .zip(enrolments)
        .map(|(per_size, &enrolment)| {
            per_size
                .into_iter()
                .zip(&sizes)
                .map(|((mut strangers, g, templates), &n)| {
                    strangers.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let s: Vec<f32> = strangers.iter().map(|x| x.0).collect();
                    let threshold = threshold_for(&s, config.target_fpir);
                    let rich: Vec<Genuine> = g.iter().copied().filter(|x| x.rich).collect();
                    MultiResult {
                        enrolment,
                        gallery_size: n,
                        templates_per_person: templates,
                        stranger_probes: s.len(),
                        genuine_probes: g.len(),
                        threshold,
                        fpir: s.iter().filter(|&&d| d < threshold).count() as f64
                            / s.len().max(1) as f64,
                        fnir: fnir_at(&g, threshold),
                        rank1_error: g.iter().filter(|x| !x.correct).count() as f64
                            / g.len().max(1) as f64,
                        k3_people_probes: rich.len(),
                        fnir_k3_people: fnir_at(&rich, threshold),
                        strangers,
                        genuine: g,
                    }
                })
                .collect()
        })
        .collect()
}

/// A probe: image, person, and for a genuine one its gallery position and
/// whether the person has more than `K` photos.
type Probe = (usize, u32, Option<(usize, bool)>);

/// Each probe's nearest `(distance, owner)` within each prefix.
type Outcome = Vec<(f32, usize)>;

/// For each probe, the nearest template among the first `ends[k]`
/// templates, for every k, on `threads` threads.
#[allow(clippy::too_many_arguments)]
fn nearest_per_size<'a>(
    probes: &[Probe],
    templates: &[f32],
    owners: &[usize],
    dim: usize,
    ends: &[usize],
    row: &(impl Fn(usize) -> &'a [f32] + Sync),
    distance: &(impl Fn(&[f32], &[f32]) -> f32 + Sync),
    threads: usize,
) -> Vec<Outcome> {
    let mut by_end: Vec<(usize, usize)> = ends.iter().copied().enumerate().collect();
    by_end.sort_by_key(|&(_, e)| e);
    let chunk = probes.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = probes
            .chunks(chunk)
            .map(|part| {
                let by_end = &by_end;
                s.spawn(move || {
                    part.iter()
                        .map(|&(image, _, _)| {
                            let probe = row(image);
                            let mut best = (f32::INFINITY, usize::MAX);
                            let mut answers = vec![best; ends.len()];
                            let mut next = 0;
                            while next < by_end.len() && by_end[next].1 == 0 {
                                next += 1;
                            }
                            for (t, &owner) in owners.iter().enumerate() {
                                let d = distance(probe, &templates[t * dim..(t + 1) * dim]);
                                if d < best.0 {
                                    best = (d, owner);
                                }
                                while next < by_end.len() && by_end[next].1 == t + 1 {
                                    answers[by_end[next].0] = best;
                                    next += 1;
                                }
                            }
                            answers
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

// ---------------------------------------------------------------------------
// The mirrored embeddings.

/// One worker's models: the pipelines of the `lfw` command's no-face policy
/// (for the detection) and the same embedder, called on the mirror.
struct FlipEmbedder {
    primary: FacePipeline,
    secondary: FacePipeline,
    embedder: Box<dyn Embedder>,
}

/// Time of one mirrored embedding.
#[derive(Debug, Clone, Copy, Default)]
struct FlipTime {
    mirror: Duration,
    embed: Duration,
}

impl FlipEmbedder {
    fn new(spec: &BackendSpec) -> Result<Self> {
        let locator = ModelLocator::new(spec.models_dir.as_deref());
        let models = onnx::OnnxModels::locate(&locator, &spec.onnx)?;
        let primary = spec
            .pipelines(PipelineOptions::default(), 1)?
            .pipelines
            .pop()
            .ok_or("the factory built no pipeline")?;
        let mut second = spec.onnx.clone();
        second.detector.score_threshold = ONNX_SECOND_SCORE_THRESHOLD;
        let (detector, embedder) = onnx::parts(&models, &second)?;
        let secondary = FacePipeline::new(
            Box::new(detector),
            Box::new(embedder),
            PipelineOptions::default(),
        );
        let (_, embedder) = onnx::parts(&models, &spec.onnx)?;
        Ok(Self {
            primary,
            secondary,
            embedder: Box::new(embedder),
        })
    }

    /// LFW's subject as the `lfw` command finds it: the face nearest the
    /// centre from the primary detector, else from the second try, else
    /// the central box with the template's landmarks.
    fn subject(&mut self, image: &RgbImage) -> Result<(DetectedFace, Source)> {
        let centre = Point::new(image.width() as f32 / 2.0, image.height() as f32 / 2.0);
        let off = |f: &DetectedFace| {
            let c = f.bbox.center();
            (c.x - centre.x).powi(2) + (c.y - centre.y).powi(2)
        };
        for (pipeline, source) in [
            (&mut self.primary, Source::Primary),
            (&mut self.secondary, Source::Secondary),
        ] {
            let faces = pipeline.detect_image(image)?;
            if let Some(f) = faces.into_iter().min_by(|a, b| off(a).total_cmp(&off(b))) {
                return Ok((f, source));
            }
        }
        let (w, h) = (image.width() as f32, image.height() as f32);
        let [l, t, bw, bh] = LFW_CENTRAL_BOX;
        let bbox = BoundingBox {
            left: l * w,
            top: t * h,
            width: bw * w,
            height: bh * h,
        };
        let points = face_core::align::ARCFACE_TEMPLATE_112.map(|p| {
            Point::new(
                bbox.left + p.x / 112.0 * bbox.width,
                bbox.top + p.y / 112.0 * bbox.height,
            )
        });
        let landmarks = Landmarks {
            scheme: LandmarkScheme::ArcFace5,
            points,
        };
        Ok((
            DetectedFace {
                bbox,
                score: 0.0,
                landmarks,
            },
            Source::CentralBox,
        ))
    }

    fn embed_face(&mut self, image: &RgbImage, face: &DetectedFace) -> Result<Vec<f32>> {
        Ok(self
            .embedder
            .embed(image, std::slice::from_ref(face))?
            .pop()
            .ok_or("the embedder returned nothing")?
            .into_values())
    }

    /// The embedding of the mirror of `face` in `image`.
    fn embed_mirrored(
        &mut self,
        image: &RgbImage,
        face: &DetectedFace,
    ) -> Result<(Vec<f32>, FlipTime)> {
        let t = Instant::now();
        let mirrored = face_core::image::imageops::flip_horizontal(image);
        let mface = mirror_face(face, image.width());
        let mirror = t.elapsed();
        let t = Instant::now();
        let values = self.embed_face(&mirrored, &mface)?;
        Ok((
            values,
            FlipTime {
                mirror,
                embed: t.elapsed(),
            },
        ))
    }

    /// Read, decode, find the subject, embed its mirror.
    fn flipped(&mut self, path: &Path) -> Result<(Embedded, FlipTime)> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let image = decode(&bytes, &Default::default())?.image;
        let (face, source) = self.subject(&image)?;
        let (values, time) = self.embed_mirrored(&image, &face)?;
        let b = face.bbox;
        Ok((
            Embedded {
                values,
                source,
                bbox: [b.left, b.top, b.width, b.height],
            },
            time,
        ))
    }
}

/// What the mirrored pass did.
#[derive(Debug, Clone, Copy, Default, Serialize)]
struct FlipRun {
    embedded: usize,
    seconds: f64,
    /// Mean per image over the pass (all threads, a shared machine).
    mirror_ms: f64,
    embed_ms: f64,
}

/// Embeds the mirror of every image missing from `cache`, on `threads`
/// workers, saving every two minutes and at the end.
fn flip_missing(
    lfw: &Lfw,
    spec: &BackendSpec,
    threads: usize,
    cache: &mut Cache,
    cache_path: &Path,
    progress: bool,
) -> Result<FlipRun> {
    let todo: Vec<usize> = (0..lfw.images.len())
        .filter(|&i| !cache.entries.contains_key(&lfw.images[i].path))
        .collect();
    if todo.is_empty() {
        return Ok(FlipRun::default());
    }
    let start = Instant::now();
    let base_seconds = cache.compute_seconds;
    let bar = if progress {
        ProgressBar::new(todo.len() as u64).with_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} mirrored ({per_sec}, eta {eta})",
            )
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
        )
    } else {
        ProgressBar::hidden()
    };
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let mut first_error: Option<String> = None;
    let mut run = FlipRun::default();
    let (mut mirror, mut embed) = (Duration::ZERO, Duration::ZERO);
    std::thread::scope(|scope| {
        type Message = std::result::Result<(usize, Embedded, FlipTime), String>;
        let (tx, rx) = mpsc::channel::<Message>();
        for _ in 0..threads.clamp(1, todo.len()) {
            let tx = tx.clone();
            let (next, stop, todo) = (&next, &stop, &todo);
            scope.spawn(move || {
                let mut worker = match FlipEmbedder::new(spec) {
                    Ok(w) => w,
                    Err(e) => {
                        let _ = tx.send(Err(format!("cannot load the pipeline: {e}")));
                        return;
                    }
                };
                while !stop.load(Ordering::Relaxed) {
                    let Some(&i) = todo.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    let path = lfw.file(i);
                    let result = worker
                        .flipped(&path)
                        .map(|(e, t)| (i, e, t))
                        .map_err(|e| format!("{}: {e}", path.display()));
                    if tx.send(result).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut last_save = Instant::now();
        for message in rx {
            match message {
                Ok((i, e, t)) => {
                    cache.entries.insert(lfw.images[i].path.clone(), e);
                    mirror += t.mirror;
                    embed += t.embed;
                    run.embedded += 1;
                    bar.inc(1);
                    if last_save.elapsed() > Duration::from_secs(120) {
                        cache.compute_seconds = base_seconds + start.elapsed().as_secs_f64();
                        if let Err(e) = cache.save(cache_path) {
                            eprintln!("warning: checkpoint of the flip cache failed: {e}");
                        }
                        last_save = Instant::now();
                    }
                }
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    first_error.get_or_insert(e);
                }
            }
        }
    });
    bar.finish();
    run.seconds = start.elapsed().as_secs_f64();
    cache.compute_seconds = base_seconds + run.seconds;
    cache.save(cache_path)?;
    if let Some(e) = first_error {
        return Err(e.into());
    }
    let n = run.embedded.max(1) as f64;
    run.mirror_ms = mirror.as_secs_f64() * 1e3 / n;
    run.embed_ms = embed.as_secs_f64() * 1e3 / n;
    Ok(run)
}

/// Single-thread cost of flip-averaging on a sample of images, interleaved
/// with the plain pipeline so both see the same machine load.
#[derive(Debug, Clone, Default, Serialize)]
struct Cost {
    images: usize,
    /// `FacePipeline::analyze` (decode → every face's embedding), median ms.
    pipeline_ms: f64,
    /// One embedder call for the subject (warp + inference), median ms.
    embed_ms: f64,
    /// Mirroring image and detection, median ms.
    mirror_ms: f64,
    /// Mirror + embedder call: what flip-averaging adds, median ms.
    extra_ms: f64,
    /// Means of the same.
    pipeline_mean_ms: f64,
    extra_mean_ms: f64,
    /// Largest |difference| between this path's unmirrored embedding and
    /// the `lfw` command's cached one (checks that the same face is
    /// embedded the same way).
    max_abs_diff_vs_cache: f32,
}

fn measure_cost(lfw: &Lfw, spec: &BackendSpec, cache: &Cache, images: usize) -> Result<Cost> {
    let mut w = FlipEmbedder::new(spec)?;
    let step = (lfw.images.len() / images.max(1)).max(1);
    let (mut pipe, mut emb, mut mir, mut extra) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut max_diff = 0.0f32;
    for i in (0..lfw.images.len()).step_by(step).take(images) {
        let bytes = std::fs::read(lfw.file(i))?;
        let t = Instant::now();
        let analysis = w.primary.analyze(&bytes)?;
        pipe.push(t.elapsed().as_secs_f64() * 1e3);
        drop(analysis);
        let image = decode(&bytes, &Default::default())?.image;
        let (face, _) = w.subject(&image)?;
        let t = Instant::now();
        let plain = w.embed_face(&image, &face)?;
        emb.push(t.elapsed().as_secs_f64() * 1e3);
        let (_, time) = w.embed_mirrored(&image, &face)?;
        mir.push(time.mirror.as_secs_f64() * 1e3);
        extra.push((time.mirror + time.embed).as_secs_f64() * 1e3);
        if let Some(c) = cache.entries.get(&lfw.images[i].path) {
            for (a, b) in plain.iter().zip(&c.values) {
                max_diff = max_diff.max((a - b).abs());
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    Ok(Cost {
        images: pipe.len(),
        pipeline_mean_ms: mean(&pipe),
        extra_mean_ms: mean(&extra),
        pipeline_ms: median(&mut pipe),
        embed_ms: median(&mut emb),
        mirror_ms: median(&mut mir),
        extra_ms: median(&mut extra),
        max_abs_diff_vs_cache: max_diff,
    })
}

// ---------------------------------------------------------------------------
// The command.

#[derive(Debug)]
struct Args {
    data: PathBuf,
    spec: BackendSpec,
    cache: PathBuf,
    threads: usize,
    rounds: usize,
    timing: usize,
    out: PathBuf,
    progress: bool,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args> {
    let mut args = Args {
        data: PathBuf::from("../shared/datasets/lfw"),
        spec: BackendSpec {
            kind: BackendKind::Onnx,
            detector: DetectorKind::Hog,
            models_dir: None,
            onnx: OnnxOptions::default(),
        },
        cache: PathBuf::from(".cache/embeddings"),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        rounds: 10,
        timing: 200,
        out: PathBuf::from("target/eval/idopts.json"),
        progress: true,
    };
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        let number = |v: String, name: &str| -> Result<usize> {
            v.parse().map_err(|e| format!("{name}: {e}").into())
        };
        match flag.as_str() {
            "--data" => args.data = value()?.into(),
            "--backend" => args.spec.kind = BackendKind::parse(&value()?)?,
            "--models" => args.spec.models_dir = Some(value()?.into()),
            "--onnx-detector" => args.spec.onnx.detector.model = value()?,
            "--onnx-detector-kind" => {
                args.spec.onnx.detector.kind = match value()?.as_str() {
                    "yunet" => HeadKind::Yunet,
                    "scrfd" => HeadKind::Scrfd,
                    other => return Err(format!("unknown ONNX detector kind {other:?}").into()),
                }
            }
            "--onnx-embedder" => args.spec.onnx.embedder.model = value()?,
            "--onnx-runtime" => args.spec.onnx.runtime.library = Some(value()?.into()),
            "--cache" => args.cache = value()?.into(),
            "--threads" => args.threads = number(value()?, "--threads")?.max(1),
            "--rounds" => args.rounds = number(value()?, "--rounds")?.max(1),
            "--timing" => args.timing = number(value()?, "--timing")?,
            "--out" => args.out = value()?.into(),
            "--no-progress" => args.progress = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other:?}\n{USAGE}").into()),
        }
    }
    if args.spec.kind != BackendKind::Onnx {
        return Err("idopts mirrors ArcFace landmarks: use --backend onnx".into());
    }
    Ok(args)
}

/// Vectors of every LFW image, in `lfw.images` order, from `cache`.
fn vectors(lfw: &Lfw, cache: &Cache) -> Result<Vec<f32>> {
    let mut v = Vec::with_capacity(lfw.images.len() * cache.dimension);
    for im in &lfw.images {
        let e = cache
            .entries
            .get(&im.path)
            .ok_or_else(|| format!("{} has no embedding in the cache", im.path))?;
        v.extend_from_slice(&e.values);
    }
    Ok(v)
}

/// `facegate-eval idopts ...` (the arguments after the subcommand).
pub fn run(argv: impl Iterator<Item = String>) -> Result<()> {
    let started = Instant::now();
    let args = parse_args(argv)?;
    let lfw = Lfw::load(&args.data)?;
    let spec = &args.spec;
    let (model, pipeline) = spec.identify()?;
    eprintln!("pipeline: {pipeline}");
    // The `lfw` command's cache (same key), and the mirrored one beside it.
    let tag = format!("{}-{}", spec.detector_tag(), pipeline.tag());
    let base_path = Cache::path(&args.cache, &model.id, &tag);
    let mut base = Cache::load_or_new(&base_path, &model, &tag)?;
    let base_run = embed_all::embed_missing(
        &lfw,
        spec,
        args.threads,
        &mut base,
        &base_path,
        args.progress,
    )?;
    let flip_tag = format!("{tag}-flip");
    let flip_path = Cache::path(&args.cache, &model.id, &flip_tag);
    let mut flip = Cache::load_or_new(&flip_path, &model, &flip_tag)?;
    let flip_run = flip_missing(
        &lfw,
        spec,
        args.threads,
        &mut flip,
        &flip_path,
        args.progress,
    )?;
    eprintln!(
        "baseline: {} embedded now ({:.0} s; cache {:.0} s), mirrored: {} now ({:.0} s; cache {:.0} s)",
        base_run.embedded,
        base_run.seconds,
        base.compute_seconds,
        flip_run.embedded,
        flip_run.seconds,
        flip.compute_seconds
    );
    // The mirrored pass must have embedded the same face as the plain one.
    let other_face = lfw
        .images
        .iter()
        .filter(
            |im| match (base.entries.get(&im.path), flip.entries.get(&im.path)) {
                (Some(a), Some(b)) => {
                    a.source != b.source
                        || a.bbox
                            .iter()
                            .zip(&b.bbox)
                            .any(|(x, y)| (x - y).abs() > 0.01)
                }
                _ => true,
            },
        )
        .count();
    let cost = if args.timing > 0 {
        eprintln!("timing {} images on one thread ...", args.timing);
        Some(measure_cost(&lfw, spec, &base, args.timing)?)
    } else {
        None
    };

    let dim = model.dimension;
    let normalise = model.metric == Metric::Cosine;
    let plain = vectors(&lfw, &base)?;
    let mirrored = vectors(&lfw, &flip)?;
    let averaged: Vec<f32> = plain
        .chunks(dim)
        .zip(mirrored.chunks(dim))
        .flat_map(|(a, b)| fuse(&[a, b], normalise))
        .collect();
    let by_identity = lfw.images_by_identity();
    let metric = model.metric;
    let distance = |a: &[f32], b: &[f32]| metric.distance(a, b);
    let t = Instant::now();

    // 1. The standard protocol, through openset.rs.
    let open_cfg = OpenSetConfig {
        gallery_sizes: SIZES.to_vec(),
        strangers: STRANGERS,
        rounds: args.rounds,
        seed: OPENSET_SEED,
        target_fpir: IDENTIFY_FPIR,
    };
    let embeddings = [("plain", &plain), ("flip", &averaged)];
    let standard: BTreeMap<&str, Vec<openset::OpenSetResult>> = embeddings
        .iter()
        .map(|&(name, v)| {
            let r = openset::run(v, dim, &by_identity, distance, &open_cfg, args.threads);
            (name, r)
        })
        .collect();
    // The multi-photo code with K = 1 is the standard protocol: it must
    // reproduce openset.rs exactly; its per-probe outcomes feed the
    // bootstrap.
    let mut cfg = MultiConfig {
        sizes: SIZES.to_vec(),
        strangers: STRANGERS,
        rounds: args.rounds,
        seed: OPENSET_SEED,
        target_fpir: IDENTIFY_FPIR,
        max_templates: 1,
        normalise,
    };
    let mut standard_multi: BTreeMap<&str, Vec<MultiResult>> = BTreeMap::new();
    for &(name, v) in &embeddings {
        let mut m = run_multi(
            v,
            dim,
            &by_identity,
            distance,
            &[Enrolment::Nearest(1)],
            &cfg,
            args.threads,
        );
        let m = m.pop().unwrap_or_default();
        for (m, o) in m.iter().zip(standard.get(name).into_iter().flatten()) {
            if (m.threshold, m.fnir, m.rank1_error, m.genuine_probes)
                != (o.threshold, o.fnir, o.rank1_error, o.genuine_probes)
            {
                return Err(format!(
                    "run_multi with K = 1 disagrees with openset::run: {m:?} vs {o:?}"
                )
                .into());
            }
        }
        standard_multi.insert(name, m);
    }

    // 2. The multi-photo protocol.
    cfg.max_templates = MAX_TEMPLATES;
    let enrolments = [
        Enrolment::Nearest(1),
        Enrolment::Nearest(2),
        Enrolment::Fused(2),
        Enrolment::Nearest(3),
        Enrolment::Fused(3),
    ];
    let multi: BTreeMap<&str, Vec<Vec<MultiResult>>> = embeddings
        .iter()
        .map(|&(name, v)| {
            let r = run_multi(
                v,
                dim,
                &by_identity,
                distance,
                &enrolments,
                &cfg,
                args.threads,
            );
            (name, r)
        })
        .collect();
    let row = |mode: &str, e: Enrolment| -> Option<&Vec<MultiResult>> {
        let i = enrolments.iter().position(|&x| x == e)?;
        multi.get(mode)?.get(i)
    };

    // 3. Paired comparisons with person-level bootstrap intervals.
    let people = by_identity.len();
    type Rows<'a> = Option<&'a Vec<MultiResult>>;
    let pairs: Vec<(String, Rows, Rows)> = vec![
        (
            "standard: flip vs plain".into(),
            standard_multi.get("plain"),
            standard_multi.get("flip"),
        ),
        (
            "multi: flip vs plain, 1 photo".into(),
            row("plain", Enrolment::Nearest(1)),
            row("flip", Enrolment::Nearest(1)),
        ),
        (
            "multi: 2 photos nearest vs 1 photo".into(),
            row("plain", Enrolment::Nearest(1)),
            row("plain", Enrolment::Nearest(2)),
        ),
        (
            "multi: 3 photos nearest vs 1 photo".into(),
            row("plain", Enrolment::Nearest(1)),
            row("plain", Enrolment::Nearest(3)),
        ),
        (
            "multi: 2 photos fused vs nearest".into(),
            row("plain", Enrolment::Nearest(2)),
            row("plain", Enrolment::Fused(2)),
        ),
        (
            "multi: 3 photos fused vs nearest".into(),
            row("plain", Enrolment::Nearest(3)),
            row("plain", Enrolment::Fused(3)),
        ),
        (
            "multi: 3 photos fused vs 1 photo".into(),
            row("plain", Enrolment::Nearest(1)),
            row("plain", Enrolment::Fused(3)),
        ),
        (
            "multi: flip vs plain, 3 photos fused".into(),
            row("plain", Enrolment::Fused(3)),
            row("flip", Enrolment::Fused(3)),
        ),
    ];
    let comparisons: Vec<(String, Vec<(usize, Delta)>)> = pairs
        .iter()
        .filter_map(|(name, a, b)| {
            let per_size = (*a)?
                .iter()
                .zip((*b)?.iter())
                .map(|(a, b)| {
                    let d = paired_bootstrap(
                        a,
                        b,
                        people,
                        BOOTSTRAP_REPS,
                        OPENSET_SEED ^ a.gallery_size as u64,
                        IDENTIFY_FPIR,
                    );
                    (a.gallery_size, d)
                })
                .collect();
            Some((name.clone(), per_size))
        })
        .collect();
    let analysis_seconds = t.elapsed().as_secs_f64();

    // --- Report ---------------------------------------------------------
    let pct = |x: f64| format!("{:.2} %", 100.0 * x);
    println!("## Identification options: {} ({pipeline})\n", model.id);
    println!(
        "Standard protocol (openset.rs: template = 1st photo, probe = 2nd photo), {} rounds:\n",
        args.rounds
    );
    println!("| embeddings | FNIR @ FPIR 1 %, 1,000 (threshold) | FNIR, 5,000 (threshold) | rank-1 error 1,000 / 5,000 | genuine / stranger probes 5,000 |");
    println!("|---|---|---|---|---|");
    for (name, _) in &embeddings {
        if let Some([a, b]) = standard.get(name).map(Vec::as_slice) {
            println!(
                "| {name} | {} ({:.4}) | {} ({:.4}) | {} / {} | {} / {} |",
                pct(a.fnir),
                a.threshold,
                pct(b.fnir),
                b.threshold,
                pct(a.rank1_error),
                pct(b.rank1_error),
                b.genuine_probes,
                b.stranger_probes
            );
        }
    }
    println!(
        "\nMulti-photo protocol (probe = photo min(n, {}) of each person with n ≥ 2 photos; templates = up to k of the photos before it), {} rounds:\n",
        MAX_TEMPLATES + 1,
        args.rounds
    );
    println!("| embeddings | enrolment | templates/person at 5,000 | FNIR 1,000 (threshold) | FNIR 5,000 (threshold) | FNIR 5,000, people with ≥ 4 photos | rank-1 error 1,000 / 5,000 |");
    println!("|---|---|---|---|---|---|---|");
    for mode in ["plain", "flip"] {
        for per_size in multi.get(mode).into_iter().flatten() {
            if let [a, b] = per_size.as_slice() {
                println!(
                    "| {mode} | {} | {:.2} | {} ({:.4}) | {} ({:.4}) | {} ({} probes) | {} / {} |",
                    b.enrolment.label(),
                    b.templates_per_person,
                    pct(a.fnir),
                    a.threshold,
                    pct(b.fnir),
                    b.threshold,
                    pct(b.fnir_k3_people),
                    b.k3_people_probes,
                    pct(a.rank1_error),
                    pct(b.rank1_error),
                );
            }
        }
    }
    if let Some(r) = row("plain", Enrolment::Nearest(1)).and_then(|r| r.last()) {
        println!(
            "\n(at 5,000: {} genuine and {} stranger probes in every row)",
            r.genuine_probes, r.stranger_probes
        );
    }
    println!(
        "\nPaired differences (points; [95 % interval], person-level bootstrap, {BOOTSTRAP_REPS} draws):\n"
    );
    println!("| comparison | Δ FNIR 1,000 | Δ FNIR 5,000 | Δ rank-1 error 5,000 |");
    println!("|---|---|---|---|");
    let fmt = |d: [f64; 3]| {
        format!(
            "{:+.2} [{:+.2}, {:+.2}]",
            100.0 * d[0],
            100.0 * d[1],
            100.0 * d[2]
        )
    };
    for (name, d) in &comparisons {
        if let [(_, s), (_, l)] = d.as_slice() {
            println!(
                "| {name} | {} | {} | {} |",
                fmt(s.fnir),
                fmt(l.fnir),
                fmt(l.rank1)
            );
        }
    }
    if let Some(c) = &cost {
        println!(
            "\nCost, one thread, {} images (medians): pipeline decode → embeddings {:.1} ms; one embedder call {:.1} ms; mirroring {:.2} ms; flip adds {:.1} ms ({:.0} %; means {:.1} of {:.1} ms). Unmirrored embedding vs cache: max |Δ| {:.2e}.",
            c.images,
            c.pipeline_ms,
            c.embed_ms,
            c.mirror_ms,
            c.extra_ms,
            100.0 * c.extra_ms / c.pipeline_ms.max(1e-9),
            c.extra_mean_ms,
            c.pipeline_mean_ms,
            c.max_abs_diff_vs_cache
        );
    }
    println!(
        "Mirrored pass: {} images now in {:.0} s (2-thread means: mirror {:.2} ms, embed {:.1} ms); images whose mirrored face differs from the plain one: {other_face}. Analysis {analysis_seconds:.0} s, total {:.0} s.",
        flip_run.embedded,
        flip_run.seconds,
        flip_run.mirror_ms,
        flip_run.embed_ms,
        started.elapsed().as_secs_f64()
    );

    let summary = serde_json::json!({
        "model": model.id,
        "pipeline": pipeline.to_string(),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "standard": standard,
        "multi": multi,
        "comparisons": comparisons,
        "cost": cost,
        "flip_run": flip_run,
        "mirrored_face_differs": other_face,
        "analysis_seconds": analysis_seconds,
    });
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&summary)?)
        .map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn face() -> DetectedFace {
        DetectedFace {
            bbox: BoundingBox::from_edges(60.0, 70.0, 160.0, 190.0),
            score: 0.9,
            landmarks: Landmarks {
                scheme: LandmarkScheme::ArcFace5,
                points: [
                    Point::new(90.0, 110.0),  // eye, image left
                    Point::new(130.0, 112.0), // eye, image right
                    Point::new(108.0, 135.0), // nose
                    Point::new(94.0, 160.0),  // mouth, left
                    Point::new(126.0, 161.0), // mouth, right
                ],
            },
        }
    }

    #[test]
    fn mirroring_keeps_the_scheme_order_and_is_an_involution() {
        let f = face();
        let m = mirror_face(&f, 250);
        assert_eq!(m.bbox.left, 250.0 - 160.0);
        assert_eq!(
            (m.bbox.width, m.bbox.top, m.bbox.height),
            (100.0, 70.0, 120.0)
        );
        let p = m.landmarks.points;
        // Eyes and mouth corners still left-to-right in the image.
        assert!(p[0].x < p[1].x && p[3].x < p[4].x);
        assert_eq!(p[0], Point::new(249.0 - 130.0, 112.0));
        assert_eq!(p[1], Point::new(249.0 - 90.0, 110.0));
        assert_eq!(p[2], Point::new(249.0 - 108.0, 135.0));
        assert_eq!(p[3], Point::new(249.0 - 126.0, 161.0));
        assert_eq!(mirror_face(&m, 250), f);
        let (l, r) = m.landmarks.eye_centers();
        assert!(l.x < r.x);
    }

    #[test]
    fn mirroring_dlib_points_swaps_the_eye_pairs() {
        let mut f = face();
        f.landmarks.scheme = LandmarkScheme::Dlib5;
        // dlib: 0–1 corners of one eye, 2–3 of the other, 4 nose.
        f.landmarks.points = [
            Point::new(140.0, 110.0),
            Point::new(120.0, 110.0),
            Point::new(80.0, 110.0),
            Point::new(100.0, 110.0),
            Point::new(110.0, 140.0),
        ];
        let m = mirror_face(&f, 200);
        assert_eq!(m.landmarks.points[0], Point::new(199.0 - 80.0, 110.0));
        assert_eq!(m.landmarks.points[1], Point::new(199.0 - 100.0, 110.0));
        assert_eq!(m.landmarks.points[4], Point::new(199.0 - 110.0, 140.0));
        assert_eq!(mirror_face(&m, 200), f);
    }

    #[test]
    fn mirrored_landmarks_sit_on_the_same_pixels() {
        // A bright pixel under each landmark stays under it after the flip.
        let f = face();
        let mut img = RgbImage::new(250, 250);
        for p in f.landmarks.points {
            img.put_pixel(p.x as u32, p.y as u32, face_core::image::Rgb([255, 0, 0]));
        }
        let flipped = face_core::image::imageops::flip_horizontal(&img);
        for p in mirror_face(&f, 250).landmarks.points {
            assert_eq!(flipped.get_pixel(p.x as u32, p.y as u32)[0], 255);
        }
    }

    #[test]
    fn fusion_is_the_normalised_mean() {
        let a = [3.0f32, 0.0];
        let b = [0.0f32, 1.0];
        let f = fuse(&[&a, &b], true);
        let s = std::f32::consts::FRAC_1_SQRT_2;
        assert!((f[0] - s).abs() < 1e-6 && (f[1] - s).abs() < 1e-6);
        assert_eq!(fuse(&[&a], true), vec![1.0, 0.0]);
        assert_eq!(fuse(&[&a, &b], false), vec![1.5, 0.5]);
    }

    #[test]
    fn probes_and_templates_follow_the_protocol() {
        assert_eq!(probe_position(1, 3), None);
        assert_eq!(probe_position(2, 3), Some(1));
        assert_eq!(probe_position(3, 3), Some(2));
        assert_eq!(probe_position(4, 3), Some(3));
        assert_eq!(probe_position(530, 3), Some(3));
        assert_eq!(template_count(1, 3, 3), 1);
        assert_eq!(template_count(2, 3, 3), 1);
        assert_eq!(template_count(3, 3, 3), 2);
        assert_eq!(template_count(3, 1, 3), 1);
        assert_eq!(template_count(10, 2, 3), 2);
        assert_eq!(template_count(10, 3, 3), 3);
    }

    /// 60 people on a line; person p's photos at 10p + small offsets.
    fn line() -> (Vec<f32>, Vec<Vec<usize>>) {
        let (mut v, mut by) = (Vec::new(), Vec::new());
        for p in 0..60usize {
            let n = 1 + p % 5;
            let first = v.len();
            for j in 0..n {
                v.push(p as f32 * 10.0 + [0.0, 2.0, -2.0, 1.0, 0.5][j]);
            }
            by.push((first..first + n).collect());
        }
        (v, by)
    }

    #[test]
    fn with_one_template_it_is_openset_run() {
        let (v, by) = line();
        let d = |a: &[f32], b: &[f32]| (a[0] - b[0]).abs() + 0.001 * a[0].abs().sin().abs();
        let o = openset::run(
            &v,
            1,
            &by,
            d,
            &OpenSetConfig {
                gallery_sizes: vec![20, 40],
                strangers: 15,
                rounds: 4,
                seed: 3,
                target_fpir: 0.1,
            },
            2,
        );
        let cfg = MultiConfig {
            sizes: vec![20, 40],
            strangers: 15,
            rounds: 4,
            seed: 3,
            target_fpir: 0.1,
            max_templates: 1,
            normalise: false,
        };
        let m = run_multi(&v, 1, &by, d, &[Enrolment::Nearest(1)], &cfg, 3);
        assert_eq!(m[0].len(), 2);
        for (m, o) in m[0].iter().zip(&o) {
            assert_eq!(
                (
                    m.threshold,
                    m.fnir,
                    m.rank1_error,
                    m.genuine_probes,
                    m.stranger_probes
                ),
                (
                    o.threshold,
                    o.fnir,
                    o.rank1_error,
                    o.genuine_probes,
                    o.stranger_probes
                )
            );
        }
    }

    #[test]
    fn more_templates_find_the_probe_and_fusion_averages_them() {
        let (v, by) = line();
        let d = |a: &[f32], b: &[f32]| (a[0] - b[0]).abs();
        let cfg = MultiConfig {
            sizes: vec![40],
            strangers: 15,
            rounds: 3,
            seed: 11,
            target_fpir: 0.0,
            max_templates: 3,
            normalise: false,
        };
        let enrolments = [
            Enrolment::Nearest(1),
            Enrolment::Nearest(3),
            Enrolment::Fused(3),
        ];
        let r = run_multi(&v, 1, &by, d, &enrolments, &cfg, 2);
        let (one, three, fused) = (&r[0][0], &r[1][0], &r[2][0]);
        // Same probes in every row.
        assert_eq!(one.genuine_probes, three.genuine_probes);
        assert_eq!(one.stranger_probes, fused.stranger_probes);
        assert!(three.templates_per_person > 1.0);
        assert_eq!(fused.templates_per_person, 1.0);
        // Offsets 0, 2, −2 then probe 1: the nearest of three is 1 away,
        // the first photo 1 away, the fused mean (0) 1 away; all identify.
        for x in [one, three, fused] {
            assert_eq!(x.rank1_error, 0.0);
            assert_eq!(x.fpir, 0.0);
        }
        // Weights of one per person give the measured rates; a row against
        // itself differs by nothing.
        let ones = vec![1u32; by.len()];
        assert_eq!(three.weighted(&ones, 0.0), (three.fnir, three.rank1_error));
        let d = paired_bootstrap(one, one, by.len(), 20, 1, 0.0);
        assert_eq!(d.fnir, [0.0; 3]);
    }

    #[test]
    fn weighted_rates_follow_the_draw() {
        // Two strangers (people 0, 1) and two genuine probes (people 2, 3).
        let r = MultiResult {
            enrolment: Enrolment::Nearest(1),
            gallery_size: 2,
            templates_per_person: 1.0,
            stranger_probes: 2,
            genuine_probes: 2,
            threshold: 0.3,
            fpir: 0.0,
            fnir: 0.5,
            rank1_error: 0.0,
            k3_people_probes: 0,
            fnir_k3_people: 0.0,
            strangers: vec![(0.3, 0), (0.6, 1)],
            genuine: vec![
                Genuine {
                    distance: 0.2,
                    correct: true,
                    rich: false,
                    person: 2,
                },
                Genuine {
                    distance: 0.5,
                    correct: true,
                    rich: false,
                    person: 3,
                },
            ],
        };
        // Target 0: the threshold is the closest drawn stranger.
        assert_eq!(r.weighted(&[1, 1, 1, 1], 0.0), (0.5, 0.0));
        // Without stranger 0 the threshold moves to 0.6: both identified.
        assert_eq!(r.weighted(&[0, 2, 1, 1], 0.0), (0.0, 0.0));
        // Person 3 drawn three times: three of four genuine weights missed.
        assert_eq!(r.weighted(&[1, 1, 1, 3], 0.0), (0.75, 0.0));
    }
}
