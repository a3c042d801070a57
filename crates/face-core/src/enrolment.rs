//! The enrolment rule: which face of a photo may become a template, or why
//! none may.
//!
//! One photo, one person, of enrolment quality. The candidate is the
//! largest face; every other face that is itself big enough to enrol (see
//! [`QualityPolicy::counts`]) makes the photo ambiguous and refuses it,
//! while smaller ones (people in the background of a press photo, a face
//! on a poster) are ignored and reported. A pure function of an
//! [`Analysis`] and the pipeline's policy, so the service (which turns a
//! refusal into its error) and the evaluation command (which counts
//! refusals on LFW to measure the failure-to-enrol rate) apply the same
//! rule.

use crate::pipeline::{Analysis, AnalyzedFace};
use crate::quality::{QualityIssue, QualityPolicy};

/// Why a photo cannot be enrolled.
#[derive(Debug, Clone, PartialEq)]
pub enum EnrolmentRefusal {
    /// No face found.
    NoFace,
    /// More than one face big enough to enrol.
    MultipleFaces {
        /// How many (the candidate included; smaller ones not).
        count: usize,
    },
    /// The one face is not fit for enrolment.
    LowQuality {
        /// Each reason.
        issues: Vec<QualityIssue>,
    },
}

/// The face to enrol and what was left aside.
#[derive(Debug, Clone)]
pub struct EnrolmentFace {
    /// The face.
    pub face: AnalyzedFace,
    /// Other faces in the photo, each smaller than the enrolment minimum,
    /// that were not counted.
    pub ignored_faces: usize,
}

/// The face of `analysis` to enrol, or why there is none. The analysis may
/// have embedded only the largest face (an enrolment asks the pipeline for
/// one); the rest are judged by their landmarks in
/// [`Analysis::not_embedded`]. `policy` is the pipeline's (its minimum eye
/// distance filled in).
pub fn enrolment_face(
    mut analysis: Analysis,
    policy: &QualityPolicy,
) -> Result<EnrolmentFace, EnrolmentRefusal> {
    if analysis.faces.is_empty() {
        return Err(EnrolmentRefusal::NoFace);
    }
    let face = analysis.faces.remove(0);
    let others = analysis
        .faces
        .iter()
        .map(|f| &f.detection)
        .chain(&analysis.not_embedded);
    let (counted, ignored) = others.fold((0, 0), |(c, i), f| match policy.counts(f) {
        true => (c + 1, i),
        false => (c, i + 1),
    });
    if counted > 0 {
        return Err(EnrolmentRefusal::MultipleFaces { count: counted + 1 });
    }
    if !face.quality.is_acceptable() {
        return Err(EnrolmentRefusal::LowQuality {
            issues: face.quality.issues,
        });
    }
    Ok(EnrolmentFace {
        face,
        ignored_faces: ignored,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::detect::DetectedFace;
    use crate::embed::{Embedding, Metric, ModelInfo};
    use crate::geometry::{BoundingBox, LandmarkScheme, Landmarks, Point};
    use crate::pipeline::StageTimings;
    use crate::quality::Quality;
    use std::sync::Arc;

    /// A face whose eyes are `eyes` px apart.
    fn detection(eyes: f32) -> DetectedFace {
        let mut points = [Point::default(); 5];
        points[1] = Point::new(eyes, 0.0);
        DetectedFace {
            bbox: BoundingBox {
                left: 0.0,
                top: 0.0,
                width: eyes * 2.2,
                height: eyes * 2.2,
            },
            score: 0.99,
            landmarks: Landmarks {
                scheme: LandmarkScheme::ArcFace5,
                points,
            },
        }
    }

    fn analyzed(eyes: f32, issues: Vec<QualityIssue>) -> AnalyzedFace {
        let model = Arc::new(ModelInfo {
            id: "m".into(),
            name: "m".into(),
            version: "1".into(),
            dimension: 2,
            metric: Metric::Cosine,
        });
        AnalyzedFace {
            detection: detection(eyes),
            quality: Quality {
                face_size: (eyes * 2.2) as u32,
                eye_distance: eyes,
                sharpness: 100.0,
                issues,
                score: 1.0,
            },
            embedding: Embedding::new(vec![1.0, 0.0], model).unwrap(),
            live_score: None,
        }
    }

    fn analysis(faces: Vec<AnalyzedFace>, not_embedded: Vec<DetectedFace>) -> Analysis {
        Analysis {
            width: 500,
            height: 500,
            faces_found: faces.len() + not_embedded.len(),
            faces,
            not_embedded,
            timings: StageTimings::default(),
        }
    }

    fn policy() -> QualityPolicy {
        QualityPolicy {
            min_eye_distance: Some(35.0),
            ..QualityPolicy::default()
        }
    }

    #[test]
    fn faces_under_the_minimum_are_ignored_and_counted_as_such() {
        let a = analysis(
            vec![analyzed(60.0, vec![])],
            vec![detection(20.0), detection(34.9)],
        );
        let e = enrolment_face(a, &policy()).unwrap();
        assert_eq!(e.ignored_faces, 2);
        assert_eq!(e.face.quality.eye_distance, 60.0);
    }

    #[test]
    fn a_second_face_big_enough_to_enrol_refuses_the_photo() {
        let a = analysis(
            vec![analyzed(60.0, vec![])],
            vec![detection(35.0), detection(10.0)],
        );
        assert_eq!(
            enrolment_face(a, &policy()).unwrap_err(),
            EnrolmentRefusal::MultipleFaces { count: 2 }
        );
        // Embedded faces count the same way as the ones only detected.
        let a = analysis(vec![analyzed(60.0, vec![]), analyzed(50.0, vec![])], vec![]);
        assert_eq!(
            enrolment_face(a, &policy()).unwrap_err(),
            EnrolmentRefusal::MultipleFaces { count: 2 }
        );
    }

    #[test]
    fn no_face_and_a_low_quality_face_give_their_reasons() {
        assert_eq!(
            enrolment_face(analysis(vec![], vec![]), &policy()).unwrap_err(),
            EnrolmentRefusal::NoFace
        );
        let small = QualityIssue::TooSmall {
            eye_distance: 20.0,
            min_eye_distance: 35.0,
        };
        let a = analysis(
            vec![analyzed(20.0, vec![small.clone()])],
            vec![detection(10.0)],
        );
        assert_eq!(
            enrolment_face(a, &policy()).unwrap_err(),
            EnrolmentRefusal::LowQuality {
                issues: vec![small]
            }
        );
    }
}
