//! The liveness calibration *file*: the live-score threshold of one
//! detector + PAD pair, with the measurement behind it. Written by
//! `facegate-eval pad`, read by the service, which decides with it.
//!
//! The PAD models score a context crop around the detector's box, so the
//! same face scores differently under another detector (the authors' boxes
//! are larger than YuNet's): a threshold holds only for the detector, its
//! input policy and the PAD files it was measured with, and the file says
//! which ([`PadFingerprint`]); it is found by that fingerprint's tag,
//! `config/calibration/liveness/pad_<tag>.json`.
//!
//! The threshold is chosen on bona fide (live) faces only, for a stated
//! live-rejection rate (BPCER); the attack samples the file lists are a
//! check with their margins, never calibration data (there are too few of
//! them to say anything about an attack-acceptance rate). The rule is *live
//! when `score >= threshold`*.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::FaceError;

/// The version of the layout this module reads and writes.
pub const FORMAT: u32 = 1;

/// What a liveness threshold was measured with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PadFingerprint {
    /// The detector whose boxes were cropped (backend, family, file).
    pub detector: String,
    /// How images were fitted to the detector, and the working copy's
    /// largest side (the crops are cut from it).
    pub detector_input: String,
    /// The PAD models and their preprocessing.
    pub pad: String,
}

impl PadFingerprint {
    /// Eight hex digits (FNV-1a of the text form, stable across builds)
    /// naming the file.
    pub fn tag(&self) -> String {
        let hash = self.to_string().bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        format!("{hash:08x}")
    }

    /// The calibration file of this pipeline under the calibration
    /// directory `dir`: `dir/liveness/pad_<tag>.json` (a subdirectory, so
    /// the embedders' `<model_id>.json` files stay alone beside it).
    pub fn path_in(&self, dir: &Path) -> PathBuf {
        dir.join("liveness")
            .join(format!("pad_{}.json", self.tag()))
    }
}

impl std::fmt::Display for PadFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "detector {} ({}), PAD {}",
            self.detector, self.detector_input, self.pad
        )
    }
}

/// Live scores of one set of faces at the chosen threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreSet {
    /// Short name (`portraits`, `clip_frames`, ...).
    pub name: String,
    /// What is in it, and where it came from.
    pub description: String,
    /// Faces scored.
    pub faces: usize,
    /// Faces at or above the threshold.
    pub accepted: usize,
    /// Share of faces refused: for bona fide sets the BPCER, for attack
    /// sets the share caught.
    pub refused_share: f64,
    /// The median live score (how live the set looks, whatever the
    /// threshold).
    pub median: f32,
}

/// One labelled sample's score: the check, not the calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleCheck {
    /// The file.
    pub sample: String,
    /// Whether it is a live person (bona fide) or an attack.
    pub bona_fide: bool,
    /// What it shows (`print`, `screen`, `live`).
    pub kind: String,
    /// Its live score.
    pub score: f32,
    /// `score - threshold`: how far on the right side it is when positive
    /// for a live sample, negative for an attack.
    pub margin: f32,
}

/// A liveness calibration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PadCalibration {
    /// [`FORMAT`].
    pub format: u32,
    /// What it was measured with.
    pub fingerprint: PadFingerprint,
    /// Live when the score is at or above this.
    pub threshold: f32,
    /// The live-rejection rate the threshold was chosen for, on the
    /// calibration sets' faces together.
    pub target_bpcer: f64,
    /// How the threshold was read off the sets.
    pub rule: String,
    /// The bona fide sets the threshold was chosen on.
    pub calibration: Vec<ScoreSet>,
    /// Sets reported apart (not used to choose): small tight crops, turned
    /// heads.
    pub reported: Vec<ScoreSet>,
    /// The labelled live and attack samples, as a check.
    pub samples: Vec<SampleCheck>,
    /// The command that wrote the file.
    pub command: String,
}

fn unavailable(reason: String) -> FaceError {
    FaceError::PadUnavailable { reason }
}

impl PadCalibration {
    /// Reads and validates the file for `fingerprint` in `dir`.
    pub fn load(dir: &Path, fingerprint: &PadFingerprint) -> Result<Self, FaceError> {
        let path = fingerprint.path_in(dir);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            unavailable(format!(
                "no liveness calibration for this detector: cannot read {} ({e}); it is \
                 measured for {fingerprint}: run `facegate-eval pad` with this pipeline's \
                 detector (see docs/liveness.md), or use a detector that has one",
                path.display()
            ))
        })?;
        let calibration: Self = serde_json::from_str(&text).map_err(|e| {
            unavailable(format!(
                "liveness calibration {} is malformed: {e}",
                path.display()
            ))
        })?;
        if calibration.fingerprint != *fingerprint {
            return Err(unavailable(format!(
                "liveness calibration {} was measured with {}, not {fingerprint}",
                path.display(),
                calibration.fingerprint
            )));
        }
        calibration
            .validate()
            .map_err(|reason| unavailable(format!("{}: {reason}", path.display())))?;
        Ok(calibration)
    }

    /// Refuses a file whose numbers could not have been measured: an
    /// unknown format, a threshold outside (0, 1), a rate outside [0, 1].
    pub fn validate(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "format {} (this build reads {FORMAT})",
                self.format
            ));
        }
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(format!("threshold {} is not inside (0, 1)", self.threshold));
        }
        if !(0.0..=1.0).contains(&self.target_bpcer) {
            return Err(format!("target_bpcer {} is not a rate", self.target_bpcer));
        }
        if self.calibration.is_empty() || self.calibration.iter().any(|s| s.faces == 0) {
            return Err("no bona fide faces behind the threshold".into());
        }
        Ok(())
    }

    /// Writes the file for its fingerprint into `dir`; returns its path.
    pub fn write(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = self.fingerprint.path_in(dir);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        text.push('\n');
        std::fs::write(&path, text)?;
        Ok(path)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fingerprint() -> PadFingerprint {
        PadFingerprint {
            detector: "onnx-yunet:yunet_n".into(),
            detector_input: "letterbox 640".into(),
            pad: "minifasnet".into(),
        }
    }

    fn calibration(threshold: f32) -> PadCalibration {
        PadCalibration {
            format: FORMAT,
            fingerprint: fingerprint(),
            threshold,
            target_bpcer: 0.1,
            rule: "test".into(),
            calibration: vec![ScoreSet {
                name: "portraits".into(),
                description: "test".into(),
                faces: 10,
                accepted: 9,
                refused_share: 0.1,
                median: 0.9,
            }],
            reported: vec![],
            samples: vec![],
            command: "test".into(),
        }
    }

    #[test]
    fn a_written_file_loads_for_its_fingerprint_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = calibration(0.3).write(dir.path()).unwrap();
        assert!(path.ends_with(format!("liveness/pad_{}.json", fingerprint().tag())));
        assert_eq!(
            PadCalibration::load(dir.path(), &fingerprint()).unwrap(),
            calibration(0.3)
        );
        let other = PadFingerprint {
            detector: "dlib-hog".into(),
            ..fingerprint()
        };
        let err = PadCalibration::load(dir.path(), &other).unwrap_err();
        assert!(
            err.to_string().contains("facegate-eval pad"),
            "the error says how to calibrate: {err}"
        );
    }

    #[test]
    fn a_threshold_outside_the_score_range_is_refused() {
        for t in [0.0, 1.0, f32::NAN, -0.2] {
            assert!(calibration(t).validate().is_err(), "{t}");
        }
        assert!(calibration(0.5).validate().is_ok());
    }
}
