//! Liveness policy: when a face must be checked for a presentation attack,
//! and what its live score means.
//!
//! Owns the passive check's calibrated threshold (face-core measures the
//! score; the decision is here) and the operator's requirement
//! (`security.require_liveness`). A caller asks per request
//! (`?liveness=passive`); the requirement raises every verification and
//! identification to at least that level, whatever the caller asked.
//!
//! The challenge level is a head-turn session (`sessions.rs`,
//! `answer.rs`) whose single-use token verification redeems: required, a
//! verification without a token is refused (`LivenessTokenRequired`). A
//! photo-only decision (identification, a face added by a key without
//! admin) cannot answer a challenge, so under that requirement it gets the
//! passive check; asking a photo-only route for `challenge` is invalid.
//! The challenge needs the passive check's files (its frames and the
//! token's photo are checked for prints and screens), so requiring it
//! without them refuses to start, as for `passive`.
//!
//! Biometric data stays in: callers learn live or attack, never the score;
//! the score goes only to the audit row and the outcome counter has no
//! score label.

use face_core::liveness::calibration::PadCalibration;
use serde::{Deserialize, Serialize};

use crate::ServiceError;

/// What a caller is told when the passive check cannot run.
pub const UNAVAILABLE: &str = "the passive check's model files are not installed, or not \
     calibrated for this server's detector; an administrator sees which in GET /stats/ \
     (liveness.unavailable_reason)";

/// A liveness level, asked for by a request or required by the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LivenessMode {
    /// No presentation-attack check.
    #[default]
    Off,
    /// The passive, single-image check on the face that is decided on.
    Passive,
    /// A head-turn challenge session, redeemed by verification with its
    /// token (and the passive check on everything else).
    Challenge,
}

impl LivenessMode {
    /// Parses `off`, `passive` or `challenge`.
    pub fn parse(raw: &str) -> Result<Self, ServiceError> {
        match raw.trim() {
            "off" => Ok(Self::Off),
            "passive" => Ok(Self::Passive),
            "challenge" => Ok(Self::Challenge),
            other => Err(ServiceError::Invalid {
                field: "liveness",
                message: format!(
                    "{:?} is not a liveness level; use off, passive or challenge",
                    other.chars().take(40).collect::<String>()
                ),
            }),
        }
    }

    /// The name settings and answers use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Passive => "passive",
            Self::Challenge => "challenge",
        }
    }
}

/// What the passive check decided about one face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LivenessVerdict {
    /// Scored at or above the calibrated threshold.
    Live,
    /// Scored below it: a print, a screen, or a live face the model
    /// mistook (the BPCER).
    Attack,
}

/// The passive check as `/stats/` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct LivenessReport {
    /// `security.require_liveness`.
    pub required: LivenessMode,
    /// Whether `?liveness=passive` can be served.
    pub passive_available: bool,
    /// Why not, and how to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable_reason: Option<String>,
    /// The calibrated threshold (live at or above).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    /// The live-rejection rate it was chosen for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_bpcer: Option<f64>,
    /// The detector and PAD files it was measured with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibrated_for: Option<String>,
}

/// The liveness policy of one service.
#[derive(Debug, Clone)]
pub struct Liveness {
    passive: Result<PadCalibration, String>,
    required: LivenessMode,
}

impl Liveness {
    /// No liveness at all: nothing required, passive unavailable with
    /// `reason`.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self {
            passive: Err(reason.into()),
            required: LivenessMode::Off,
        }
    }

    /// The policy from the passive calibration (or why there is none) and
    /// the operator's requirement. Refuses a requirement that cannot be
    /// met, so a server never runs believing it checks what it cannot.
    pub fn new(
        passive: Result<PadCalibration, String>,
        required: LivenessMode,
    ) -> Result<Self, String> {
        match (required, &passive) {
            (LivenessMode::Off, _) => {}
            (LivenessMode::Passive | LivenessMode::Challenge, Ok(_)) => {}
            (level, Err(reason)) => {
                return Err(format!(
                    "security.require_liveness = \"{}\" needs the passive check, but {reason}; \
                     install the files or set security.require_liveness = \"off\"",
                    level.as_str()
                ));
            }
        }
        Ok(Self { passive, required })
    }

    /// The level a verification or identification runs at: the higher of
    /// what was asked and what is required. `LivenessUnavailable` when it
    /// cannot be served.
    pub fn level_for_decision(&self, asked: LivenessMode) -> Result<LivenessMode, ServiceError> {
        self.serve(asked.max(self.required))
    }

    /// The level a decision on one photo alone runs at (identification, a
    /// face added by a key without admin): as for
    /// [`Liveness::level_for_decision`], but a photo cannot answer a
    /// challenge, so a required challenge is the passive check here, and
    /// asking for one is invalid.
    pub fn level_for_photo(&self, asked: LivenessMode) -> Result<LivenessMode, ServiceError> {
        Self::photo_level(asked)?;
        Ok(self.level_for_decision(asked)?.min(LivenessMode::Passive))
    }

    /// The level an enrolment runs at: what was asked (enrolment is not
    /// under the requirement: an operator enrols people in person).
    pub fn level_for_enrolment(&self, asked: LivenessMode) -> Result<LivenessMode, ServiceError> {
        Self::photo_level(asked)?;
        self.serve(asked)
    }

    fn photo_level(asked: LivenessMode) -> Result<(), ServiceError> {
        match asked {
            LivenessMode::Off | LivenessMode::Passive => Ok(()),
            LivenessMode::Challenge => Err(ServiceError::Invalid {
                field: "liveness",
                message: "a photo cannot answer the challenge: use passive here, or answer a \
                          liveness session (POST /liveness/sessions) and send its token \
                          (liveness_token) with the verification or the enrolment"
                    .into(),
            }),
        }
    }

    fn serve(&self, level: LivenessMode) -> Result<LivenessMode, ServiceError> {
        match (level, &self.passive) {
            (LivenessMode::Off, _) => Ok(level),
            (LivenessMode::Passive | LivenessMode::Challenge, Ok(_)) => Ok(level),
            // The reason (file paths, the detector) is for the operator, in
            // /stats/ and the startup log; the caller learns what to do.
            (LivenessMode::Passive | LivenessMode::Challenge, Err(_)) => {
                Err(ServiceError::LivenessUnavailable(UNAVAILABLE.into()))
            }
        }
    }

    /// The verdict on a live score. Without a calibration (never reached:
    /// the level was refused first) everything is an attack.
    pub fn verdict(&self, score: f32) -> LivenessVerdict {
        match &self.passive {
            Ok(c) if score >= c.threshold => LivenessVerdict::Live,
            _ => LivenessVerdict::Attack,
        }
    }

    /// `security.require_liveness`.
    pub fn required(&self) -> LivenessMode {
        self.required
    }

    /// The verdict on a face that was (`checked`) or was not scored: none
    /// when the check was not asked for; an attack when it was and no
    /// score came back (fail closed), else [`Liveness::verdict`].
    pub fn judge(&self, checked: bool, score: Option<f32>) -> Option<LivenessVerdict> {
        checked.then(|| score.map_or(LivenessVerdict::Attack, |s| self.verdict(s)))
    }

    /// Whether the passive check can run.
    pub fn passive_available(&self) -> bool {
        self.passive.is_ok()
    }

    /// What `/stats/` says.
    pub fn report(&self) -> LivenessReport {
        let calibration = self.passive.as_ref().ok();
        LivenessReport {
            required: self.required,
            passive_available: calibration.is_some(),
            unavailable_reason: self.passive.as_ref().err().cloned(),
            threshold: calibration.map(|c| c.threshold),
            target_bpcer: calibration.map(|c| c.target_bpcer),
            calibrated_for: calibration.map(|c| c.fingerprint.to_string()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use face_core::liveness::calibration::{PadFingerprint, ScoreSet, FORMAT};

    fn calibration() -> PadCalibration {
        PadCalibration {
            format: FORMAT,
            fingerprint: PadFingerprint {
                detector: "d".into(),
                detector_input: "i".into(),
                pad: "p".into(),
            },
            threshold: 0.2,
            target_bpcer: 0.05,
            rule: "r".into(),
            calibration: vec![ScoreSet {
                name: "portraits".into(),
                description: "d".into(),
                faces: 1,
                accepted: 1,
                refused_share: 0.0,
                median: 0.9,
            }],
            reported: vec![],
            samples: vec![],
            command: "c".into(),
        }
    }

    #[test]
    fn the_requirement_raises_what_a_caller_asks_for_decisions_only() {
        let l = Liveness::new(Ok(calibration()), LivenessMode::Passive).unwrap();
        assert_eq!(
            l.level_for_decision(LivenessMode::Off).unwrap(),
            LivenessMode::Passive
        );
        assert_eq!(
            l.level_for_enrolment(LivenessMode::Off).unwrap(),
            LivenessMode::Off
        );
    }

    #[test]
    fn a_required_challenge_is_the_passive_check_for_photo_only_decisions() {
        let l = Liveness::new(Ok(calibration()), LivenessMode::Challenge).unwrap();
        assert_eq!(
            l.level_for_decision(LivenessMode::Off).unwrap(),
            LivenessMode::Challenge
        );
        assert_eq!(
            l.level_for_photo(LivenessMode::Off).unwrap(),
            LivenessMode::Passive
        );
        for asked in [
            l.level_for_photo(LivenessMode::Challenge),
            l.level_for_enrolment(LivenessMode::Challenge),
        ] {
            assert!(
                matches!(
                    asked,
                    Err(ServiceError::Invalid {
                        field: "liveness",
                        ..
                    })
                ),
                "{asked:?}"
            );
        }
    }

    #[test]
    fn a_requirement_that_cannot_be_met_is_refused() {
        let err = Liveness::new(Err("files missing".into()), LivenessMode::Passive).unwrap_err();
        assert!(err.contains("files missing"), "{err}");
        let err = Liveness::new(Err("no files".into()), LivenessMode::Challenge).unwrap_err();
        assert!(
            err.contains("challenge") && err.contains("no files"),
            "{err}"
        );
        assert!(Liveness::new(Ok(calibration()), LivenessMode::Challenge).is_ok());
        assert!(Liveness::new(Err("x".into()), LivenessMode::Off).is_ok());
    }

    #[test]
    fn asking_for_an_unavailable_check_says_why() {
        let l = Liveness::unavailable("no PAD files");
        match l.level_for_decision(LivenessMode::Passive) {
            Err(ServiceError::LivenessUnavailable(reason)) => {
                assert!(reason.contains("/stats/"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            l.report().unavailable_reason.as_deref(),
            Some("no PAD files")
        );
        assert_eq!(
            l.level_for_decision(LivenessMode::Off).unwrap(),
            LivenessMode::Off
        );
    }

    #[test]
    fn a_checked_face_without_a_score_is_an_attack() {
        let l = Liveness::new(Ok(calibration()), LivenessMode::Off).unwrap();
        assert_eq!(l.judge(true, None), Some(LivenessVerdict::Attack));
        assert_eq!(l.judge(true, Some(0.9)), Some(LivenessVerdict::Live));
        assert_eq!(l.judge(false, Some(0.9)), None);
    }

    #[test]
    fn the_threshold_is_inclusive() {
        let l = Liveness::new(Ok(calibration()), LivenessMode::Off).unwrap();
        assert_eq!(l.verdict(0.2), LivenessVerdict::Live);
        assert_eq!(l.verdict(0.1999), LivenessVerdict::Attack);
    }

    #[test]
    fn levels_parse_and_anything_else_is_invalid() {
        assert_eq!(
            LivenessMode::parse("passive").unwrap(),
            LivenessMode::Passive
        );
        assert!(matches!(
            LivenessMode::parse("yes"),
            Err(ServiceError::Invalid {
                field: "liveness",
                ..
            })
        ));
    }
}
