//! Failure to enrol: how many LFW photos the server's enrolment rule
//! refuses, and why, beside the rule it replaced; and what the faces each
//! rule accepts are worth for verification.
//!
//! Each photo goes through the pipeline with the server's options (working
//! copy, the detector's minimum eye distance) and through
//! [`face_core::enrolment::enrolment_face`], the rule the service applies,
//! so the figure is what an operator enrolling these photos would see. The
//! same analysis is also judged by the former rule (every face counted, the
//! largest box at least 80 px), so one run compares the two.
//!
//! With every image judged (not only each person's first), the accepted
//! faces' embeddings give the FNMR at FMR 1e-4 over all pairs of accepted
//! images, per rule: accepting smaller faces must not cost accuracy.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use face_core::enrolment::{enrolment_face, EnrolmentRefusal};
use face_core::{Analysis, FacePipeline, Metric, PipelineOptions, QualityIssue, QualityPolicy};
use serde::Serialize;

use crate::allpairs::{all_pairs, RatePoint};
use crate::lfw::Lfw;

/// The box size of the former rule.
pub const LEGACY_MIN_BOX: u32 = 80;

/// What a rule made of one photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Enrolled.
    Accepted,
    /// No face found.
    NoFace,
    /// More than one face counted.
    MultipleFaces,
    /// One face, too small (possibly with other issues).
    TooSmall,
    /// One face, refused for other quality reasons only.
    OtherQuality,
    /// Not decodable or a pipeline error.
    Error,
}

/// One photo judged by both rules.
#[derive(Debug, Clone)]
pub struct Judged {
    /// Image index in the dataset.
    pub image: usize,
    /// Under the server's rule.
    pub server: Outcome,
    /// Faces the server's rule ignored (under the minimum) when it accepted.
    pub ignored_faces: usize,
    /// Under the former rule.
    pub legacy: Outcome,
    /// Under the server's rule with each minimum eye distance of a sweep.
    pub sweep: Vec<Outcome>,
    /// The largest face's embedding, when there is a face.
    pub embedding: Option<Vec<f32>>,
}

/// The outcome counts of one rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EnrolCounts {
    /// Photos tried.
    pub photos: usize,
    /// Enrolled.
    pub accepted: usize,
    /// Enrolled with smaller faces beside the subject ignored (server rule).
    pub accepted_with_ignored_faces: usize,
    /// No face found.
    pub no_face: usize,
    /// More than one face.
    pub multiple_faces: usize,
    /// One face, too small (possibly with other issues).
    pub too_small: usize,
    /// One face, refused for other quality reasons only.
    pub other_quality: usize,
    /// Not decodable or a pipeline error.
    pub errors: usize,
}

impl EnrolCounts {
    /// The refused share.
    pub fn failure_rate(&self) -> f64 {
        if self.photos == 0 {
            return 0.0;
        }
        (self.photos - self.accepted) as f64 / self.photos as f64
    }

    fn add(&mut self, outcome: Outcome, ignored: usize) {
        self.photos += 1;
        match outcome {
            Outcome::Accepted => {
                self.accepted += 1;
                if ignored > 0 {
                    self.accepted_with_ignored_faces += 1;
                }
            }
            Outcome::NoFace => self.no_face += 1,
            Outcome::MultipleFaces => self.multiple_faces += 1,
            Outcome::TooSmall => self.too_small += 1,
            Outcome::OtherQuality => self.other_quality += 1,
            Outcome::Error => self.errors += 1,
        }
    }
}

/// Counts of the server's rule at the `k`-th minimum of the sweep.
pub fn count_swept(judged: &[Judged], k: usize) -> EnrolCounts {
    let mut c = EnrolCounts::default();
    for j in judged {
        c.add(j.sweep[k], 0);
    }
    c
}

/// Counts per rule over `judged`.
pub fn count(judged: &[Judged]) -> (EnrolCounts, EnrolCounts) {
    let (mut server, mut legacy) = (EnrolCounts::default(), EnrolCounts::default());
    for j in judged {
        server.add(j.server, j.ignored_faces);
        legacy.add(j.legacy, 0);
    }
    (server, legacy)
}

/// The first photo of each of the first `people` identities (in the
/// dataset's order), as image indices.
pub fn first_photos(lfw: &Lfw, people: usize) -> Vec<usize> {
    let mut seen = vec![false; lfw.identities.len()];
    let mut out = Vec::new();
    for (i, image) in lfw.images.iter().enumerate() {
        let id = image.identity as usize;
        if id < seen.len() && !seen[id] {
            seen[id] = true;
            out.push(i);
            if out.len() == people {
                break;
            }
        }
    }
    out
}

/// The server's pipeline options, with `min_eye_distance` when given (the
/// detector's own otherwise), the rest at their defaults as the server's
/// are.
pub fn server_options(min_eye_distance: Option<f32>) -> PipelineOptions {
    PipelineOptions {
        quality: QualityPolicy {
            min_eye_distance,
            ..QualityPolicy::default()
        },
        ..PipelineOptions::default()
    }
}

fn refusal_outcome(refusal: &EnrolmentRefusal) -> Outcome {
    match refusal {
        EnrolmentRefusal::NoFace => Outcome::NoFace,
        EnrolmentRefusal::MultipleFaces { .. } => Outcome::MultipleFaces,
        EnrolmentRefusal::LowQuality { issues } => quality_outcome(issues),
    }
}

fn quality_outcome(issues: &[QualityIssue]) -> Outcome {
    match issues
        .iter()
        .any(|i| matches!(i, QualityIssue::TooSmall { .. }))
    {
        true => Outcome::TooSmall,
        false => Outcome::OtherQuality,
    }
}

/// The former rule: exactly one face found, its box at least
/// [`LEGACY_MIN_BOX`] px, no other quality issue.
pub fn legacy_outcome(analysis: &Analysis) -> Outcome {
    let Some(face) = analysis.faces.first() else {
        return Outcome::NoFace;
    };
    if analysis.faces_found > 1 {
        return Outcome::MultipleFaces;
    }
    if face.quality.face_size < LEGACY_MIN_BOX {
        return Outcome::TooSmall;
    }
    // Only the size is judged differently; every other issue refuses.
    match face
        .quality
        .issues
        .iter()
        .all(|i| matches!(i, QualityIssue::TooSmall { .. }))
    {
        true => Outcome::Accepted,
        false => Outcome::OtherQuality,
    }
}

/// The server's rule on `analysis` as if the pipeline's minimum eye
/// distance were `min` (the size issue of the largest face re-judged; the
/// other quality checks do not depend on it).
pub fn rejudged(analysis: &Analysis, policy: &QualityPolicy, min: f32) -> Outcome {
    let mut a = analysis.clone();
    let policy = QualityPolicy {
        min_eye_distance: Some(min),
        ..*policy
    };
    if let Some(f) = a.faces.first_mut() {
        f.quality
            .issues
            .retain(|i| !matches!(i, QualityIssue::TooSmall { .. }));
        if f.quality.eye_distance < min {
            f.quality.issues.insert(
                0,
                QualityIssue::TooSmall {
                    eye_distance: f.quality.eye_distance,
                    min_eye_distance: min,
                },
            );
        }
    }
    match enrolment_face(a, &policy) {
        Ok(_) => Outcome::Accepted,
        Err(refusal) => refusal_outcome(&refusal),
    }
}

fn judge(
    pipeline: &mut FacePipeline,
    image: usize,
    bytes: Result<Vec<u8>, String>,
    sweep: &[f32],
) -> Judged {
    let analysis = bytes.and_then(|b| pipeline.analyze_largest(&b, 1).map_err(|e| e.to_string()));
    let Ok(analysis) = analysis else {
        return Judged {
            image,
            server: Outcome::Error,
            ignored_faces: 0,
            legacy: Outcome::Error,
            sweep: vec![Outcome::Error; sweep.len()],
            embedding: None,
        };
    };
    let legacy = legacy_outcome(&analysis);
    let policy = pipeline.options().quality;
    let swept = sweep
        .iter()
        .map(|&min| rejudged(&analysis, &policy, min))
        .collect();
    let embedding = analysis
        .faces
        .first()
        .map(|f| f.embedding.values().to_vec());
    let (server, ignored_faces) = match enrolment_face(analysis, &policy) {
        Ok(e) => (Outcome::Accepted, e.ignored_faces),
        Err(refusal) => (refusal_outcome(&refusal), 0),
    };
    Judged {
        image,
        server,
        ignored_faces,
        legacy,
        sweep: swept,
        embedding,
    }
}

/// Judges `images` by both rules (and the server's at each minimum of
/// `sweep`), one thread per pipeline (built with [`server_options`]).
/// Returns them in `images`' order and the wall time.
pub fn judge_all(
    lfw: &Lfw,
    pipelines: Vec<FacePipeline>,
    images: &[usize],
    sweep: &[f32],
) -> (Vec<Judged>, f64) {
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    let out = Mutex::new(Vec::with_capacity(images.len()));
    std::thread::scope(|scope| {
        for mut pipeline in pipelines {
            let (next, out) = (&next, &out);
            scope.spawn(move || loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&index) = images.get(k) else { break };
                let path = lfw.root.join(&lfw.images[index].path);
                let bytes = std::fs::read(&path).map_err(|e| e.to_string());
                let judged = judge(&mut pipeline, index, bytes, sweep);
                out.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((k, judged));
            });
        }
    });
    let mut out = out.into_inner().unwrap_or_else(|p| p.into_inner());
    out.sort_by_key(|(k, _)| *k);
    (
        out.into_iter().map(|(_, j)| j).collect(),
        start.elapsed().as_secs_f64(),
    )
}

/// FNMR at a target FMR over every pair of images `accepted` keeps.
pub fn accepted_pairs_at_fmr(
    lfw: &Lfw,
    judged: &[Judged],
    accepted: impl Fn(&Judged) -> bool,
    metric: Metric,
    target_fmr: f64,
    threads: usize,
) -> Option<(usize, RatePoint)> {
    let kept: Vec<&Judged> = judged
        .iter()
        .filter(|j| accepted(j) && j.embedding.is_some())
        .collect();
    let dim = kept.first()?.embedding.as_ref()?.len();
    let vectors: Vec<f32> = kept
        .iter()
        .flat_map(|j| j.embedding.iter().flatten().copied())
        .collect();
    let identity: Vec<u32> = kept.iter().map(|j| lfw.images[j.image].identity).collect();
    let pairs = all_pairs(&vectors, dim, &identity, metric, threads);
    Some((kept.len(), pairs.model.at_fmr(target_fmr)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lfw::Image;

    #[test]
    fn one_first_photo_per_person_in_dataset_order() {
        let image = |path: &str, identity| Image {
            path: path.into(),
            identity,
        };
        let lfw = Lfw {
            root: "/nowhere".into(),
            images: vec![
                image("A/A_0001.jpg", 0),
                image("A/A_0002.jpg", 0),
                image("B/B_0001.jpg", 1),
                image("C/C_0001.jpg", 2),
                image("C/C_0002.jpg", 2),
            ],
            identities: vec!["A".into(), "B".into(), "C".into()],
            pairs: vec![],
        };
        assert_eq!(first_photos(&lfw, 10), vec![0, 2, 3]);
        assert_eq!(first_photos(&lfw, 2), vec![0, 2]);
    }

    #[test]
    fn counts_split_by_rule_and_reason() {
        let j = |server, ignored_faces, legacy| Judged {
            image: 0,
            server,
            ignored_faces,
            legacy,
            sweep: vec![],
            embedding: None,
        };
        let judged = [
            j(Outcome::Accepted, 2, Outcome::MultipleFaces),
            j(Outcome::Accepted, 0, Outcome::TooSmall),
            j(Outcome::Accepted, 0, Outcome::Accepted),
            j(Outcome::NoFace, 0, Outcome::NoFace),
        ];
        let (server, legacy) = count(&judged);
        assert_eq!(server.accepted, 3);
        assert_eq!(server.accepted_with_ignored_faces, 1);
        assert_eq!(server.no_face, 1);
        assert!((server.failure_rate() - 0.25).abs() < 1e-12);
        assert_eq!(legacy.accepted, 1);
        assert_eq!(legacy.multiple_faces, 1);
        assert_eq!(legacy.too_small, 1);
        assert!((legacy.failure_rate() - 0.75).abs() < 1e-12);
    }
}
