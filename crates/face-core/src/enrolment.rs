//! The enrolment rule: which face of a photo may become a template, or why
//! none may.
//!
//! One photo, exactly one face, of enrolment quality. A pure function of an
//! [`Analysis`], so the service (which turns a refusal into its error) and
//! the evaluation command (which counts refusals on LFW to measure the
//! failure-to-enrol rate) apply the same rule.

use crate::pipeline::{Analysis, AnalyzedFace};
use crate::quality::QualityIssue;

/// Why a photo cannot be enrolled.
#[derive(Debug, Clone, PartialEq)]
pub enum EnrolmentRefusal {
    /// No face found.
    NoFace,
    /// More than one face found.
    MultipleFaces {
        /// How many.
        count: usize,
    },
    /// The one face is not fit for enrolment.
    LowQuality {
        /// Each reason.
        issues: Vec<QualityIssue>,
    },
}

/// The face of `analysis` to enrol, or why there is none. The analysis may
/// hold fewer faces than it found (an enrolment asks the pipeline for one);
/// `faces_found` is what counts.
pub fn enrolment_face(mut analysis: Analysis) -> Result<AnalyzedFace, EnrolmentRefusal> {
    match analysis.faces_found {
        0 => Err(EnrolmentRefusal::NoFace),
        1 if !analysis.faces.is_empty() => {
            let face = analysis.faces.remove(0);
            if face.quality.is_acceptable() {
                Ok(face)
            } else {
                Err(EnrolmentRefusal::LowQuality {
                    issues: face.quality.issues,
                })
            }
        }
        1 => Err(EnrolmentRefusal::NoFace),
        count => Err(EnrolmentRefusal::MultipleFaces { count }),
    }
}
