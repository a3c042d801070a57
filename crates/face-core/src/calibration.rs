//! The calibration *file* of an embedding model: its JSON layout, loading
//! and validation, shared by the evaluation command that writes it and the
//! service that reads it.
//!
//! A distance threshold means nothing on its own: 0.6 is a sensible
//! Euclidean threshold for dlib's ResNet and a meaningless one for a cosine
//! model. FaceGate therefore never hard-codes thresholds. Each model has a
//! calibration file, `config/calibration/<model_id>.json`, written by
//! `facegate-eval lfw` from a measured false-match-rate (FMR) curve: the
//! operating points (threshold, measured FMR and FNMR at a grid of target
//! FMRs), the target rates the evaluation chose its thresholds for (verify
//! and medium at FMR 1e-4, high at 1e-5, identify at FPIR 1 %), the 1:N
//! table by gallery size, and the evidence behind them (dataset, accuracy,
//! command).
//!
//! What the numbers *mean for a decision* — the threshold for a given number
//! of comparisons, the confidence bands, the FMR reported with a match — is
//! policy, and lives in the service (`face_service::thresholds`): this crate
//! turns pixels into embeddings and describes the measurement, nothing more.
//!
//! The rule everywhere is *match when `distance < threshold`* (strictly
//! under), in the model's own [`Metric`]. [`Calibration::validate`] refuses
//! a file whose numbers are not finite, not positive, or out of order
//! (`high ≤ medium ≤ verify`, operating points strictest first), so a typo
//! cannot silently open the gate.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::embed::{Metric, ModelInfo};

/// The version of the JSON layout this module reads and writes.
pub const SCHEMA_VERSION: u32 = 2;

/// Where calibration files live, relative to the repository root (and to
/// the working directory of a deployed service).
pub const SHIPPED_DIR: &str = "config/calibration";

/// The calibration directory of this source checkout (absolute, resolved at
/// compile time from this crate's location). For tools and tests run from
/// the repository; a deployed service uses its configured directory or
/// [`SHIPPED_DIR`].
pub fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(SHIPPED_DIR)
}

/// Why a calibration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    /// The file could not be read.
    #[error("cannot read calibration file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The text is not JSON of the expected shape.
    #[error("calibration JSON is malformed: {0}")]
    Parse(#[from] serde_json::Error),
    /// The JSON parsed but its content is unusable.
    #[error("calibration for model {model_id:?} is invalid: {reason}")]
    Invalid {
        /// The model id the file names (may be empty).
        model_id: String,
        /// What is wrong.
        reason: String,
    },
    /// The file is for this model but was measured with another pipeline
    /// (detector, its input policy, or normalisation).
    #[error(
        "calibration for model {model_id:?} was measured with {calibrated}; this server runs \
         {running}. Its thresholds do not apply: configure the pipeline it was measured with, \
         or calibrate this one (facegate-eval lfw, see docs/accuracy.md; it writes \
         {model_id}@{}.json beside the other)", .running.tag()
    )]
    WrongPipeline {
        /// The model.
        model_id: String,
        /// What the file was measured with.
        calibrated: Box<PipelineFingerprint>,
        /// What runs.
        running: Box<PipelineFingerprint>,
    },
    /// The file is for another model than the one asked for.
    #[error("calibration file is for model {found:?} (metric {found_metric}), expected {expected:?} (metric {expected_metric})")]
    WrongModel {
        /// The model asked for.
        expected: String,
        /// Its metric.
        expected_metric: &'static str,
        /// The model the file is for.
        found: String,
        /// The file's metric.
        found_metric: &'static str,
    },
}

/// The decision thresholds the service uses. All are distances in the
/// model's metric; a pair matches when its distance is strictly under.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Default 1:1 verification threshold.
    pub verify: f32,
    /// The FMR the verify threshold was chosen for (1e-4).
    pub verify_fmr: f64,
    /// High-confidence band: distances under this.
    pub high: f32,
    /// The FMR the high threshold was chosen for (1e-5).
    pub high_fmr: f64,
    /// Medium-confidence band: distances under this (and not under `high`).
    pub medium: f32,
    /// The FMR the medium threshold was chosen for (1e-4).
    pub medium_fmr: f64,
    /// Default 1:N identification threshold.
    pub identify: f32,
    /// The FPIR the identify threshold was chosen for (0.01).
    pub identify_fpir: f64,
    /// The expected gallery size the identify threshold was chosen for.
    pub identify_gallery_size: u32,
}

/// One point of the measured verification trade-off.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OperatingPoint {
    /// The FMR asked for.
    pub target_fmr: f64,
    /// The largest threshold whose measured FMR is at most `target_fmr`.
    pub threshold: f32,
    /// The FMR measured at `threshold` on all different-person pairs.
    pub fmr: f64,
    /// The false-non-match rate at `threshold` on all same-person pairs.
    pub fnmr: f64,
}

/// How an identification row was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentificationMethod {
    /// Measured with galleries of that many distinct people.
    Measured,
    /// Not measurable on the dataset; derived from the verification FMR
    /// curve assuming independent comparisons:
    /// `FPIR ≈ 1 − (1 − FMR)^N`, FNIR ≈ FNMR.
    Extrapolated,
}

/// The 1:N trade-off at one gallery size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IdentificationPoint {
    /// Number of enrolled people.
    pub gallery_size: u32,
    /// Measured or extrapolated.
    pub method: IdentificationMethod,
    /// The FPIR asked for.
    pub target_fpir: f64,
    /// The threshold giving at most `target_fpir`.
    pub threshold: f32,
    /// The FPIR at `threshold`.
    pub fpir: f64,
    /// The false-negative identification rate at `threshold` (enrolled
    /// person not matched, or matched to someone else).
    pub fnir: f64,
    /// Stranger probes behind `fpir` (0 when extrapolated).
    pub stranger_probes: u64,
    /// Enrolled-person probes behind `fnir` (0 when extrapolated).
    pub genuine_probes: u64,
}

/// Where the numbers came from. Informative: the service does not use it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Evidence {
    /// Dataset name and variant, e.g. "LFW (deep-funneled)".
    pub dataset: String,
    /// Images embedded.
    pub images: u64,
    /// Distinct people.
    pub identities: u64,
    /// Same-person image pairs behind the FNMR figures.
    pub genuine_pairs: u64,
    /// Different-person image pairs behind the FMR figures.
    pub impostor_pairs: u64,
    /// The detector, e.g. "dlib-hog".
    pub detector: String,
    /// What was done with images where the detector found no face.
    pub no_face_policy: String,
    /// Images where the detector found no face.
    pub no_face_images: u64,
    /// Standard 10-fold accuracy on the View 2 pairs (mean over folds).
    pub lfw_accuracy_mean: f64,
    /// Its standard deviation over the 10 folds.
    pub lfw_accuracy_std: f64,
    /// Mean of the 10 thresholds chosen on 9 folds each.
    pub lfw_threshold_mean: f32,
    /// Accuracy on all 6,000 View 2 pairs at the verify threshold.
    pub lfw_accuracy_at_verify: f64,
    /// Wall-clock seconds of the full evaluation (embedding included).
    pub runtime_seconds: f64,
    /// The command that produced this file.
    pub command: String,
    /// Free-form remarks.
    pub notes: Vec<String>,
}

/// What, beside the embedder's weights (the model id), shapes the
/// embeddings a pipeline produces: the detector (its landmarks place the
/// alignment) with its input policy, and the embedder's normalisation. A
/// calibration holds the fingerprint of the pipeline it was measured with,
/// and applies to that pipeline only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFingerprint {
    /// The embedder file: its stem and checksum prefix (independent of a
    /// configured model id, so another file given a shipped id differs).
    pub embedder: String,
    /// The detector: backend, family, model file and checksum prefix.
    pub detector: String,
    /// How images are fitted to the detector's input.
    pub detector_input: String,
    /// How an aligned face is normalised for the embedder.
    pub normalisation: String,
}

impl PipelineFingerprint {
    /// Eight hex digits (FNV-1a of the text form, stable across builds)
    /// naming the pipeline in file names: a second calibration of one
    /// model, for another pipeline, is `<model_id>@<tag>.json`.
    pub fn tag(&self) -> String {
        let hash = self.to_string().bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        format!("{hash:08x}")
    }
}

impl std::fmt::Display for PipelineFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "embedder {}, detector {} ({}), normalisation {}",
            self.embedder, self.detector, self.detector_input, self.normalisation
        )
    }
}

/// A model's calibration: thresholds and the evidence behind them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Layout version; [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The model these thresholds are for (see [`ModelInfo::id`]).
    pub model_id: String,
    /// The model's metric; must match the model's.
    pub metric: Metric,
    /// The pipeline the numbers were measured with; must match the one
    /// that runs.
    pub pipeline: PipelineFingerprint,
    /// The decision thresholds.
    pub thresholds: Thresholds,
    /// The verification trade-off at a grid of FMRs, strictest first.
    #[serde(default)]
    pub operating_points: Vec<OperatingPoint>,
    /// The 1:N trade-off by gallery size.
    #[serde(default)]
    pub identification: Vec<IdentificationPoint>,
    /// Where the numbers came from.
    #[serde(default)]
    pub evidence: Evidence,
}

impl Calibration {
    /// Parses and validates a calibration from JSON text.
    pub fn from_json(text: &str) -> Result<Self, CalibrationError> {
        // The layout version first, so an old file says so rather than
        // naming the first field it lacks.
        #[derive(Deserialize)]
        struct Version {
            schema_version: u32,
            #[serde(default)]
            model_id: String,
        }
        let version: Version = serde_json::from_str(text)?;
        if version.schema_version != SCHEMA_VERSION {
            return Err(CalibrationError::Invalid {
                model_id: version.model_id,
                reason: format!(
                    "schema_version {} (this build reads {SCHEMA_VERSION}: re-run facegate-eval \
                     lfw to measure the pipeline again)",
                    version.schema_version
                ),
            });
        }
        let calibration: Calibration = serde_json::from_str(text)?;
        calibration.validate()?;
        Ok(calibration)
    }

    /// Reads, parses and validates a calibration file.
    pub fn load(path: &Path) -> Result<Self, CalibrationError> {
        let text = std::fs::read_to_string(path).map_err(|source| CalibrationError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text)
    }

    /// The file name of a model's calibration inside `dir`:
    /// `<dir>/<model_id>.json`. Fails for ids that are not plain names, so
    /// an id can never point outside `dir`.
    pub fn path_in(dir: &Path, model_id: &str) -> Result<PathBuf, CalibrationError> {
        check_model_id(model_id)?;
        Ok(dir.join(format!("{model_id}.json")))
    }

    /// The file of a model's calibration for one pipeline other than the
    /// one in `<model_id>.json`: `<dir>/<model_id>@<tag>.json`.
    pub fn path_for_pipeline(
        dir: &Path,
        model_id: &str,
        pipeline: &PipelineFingerprint,
    ) -> Result<PathBuf, CalibrationError> {
        check_model_id(model_id)?;
        Ok(dir.join(format!("{model_id}@{}.json", pipeline.tag())))
    }

    /// Loads the calibration of `model` from `dir` and checks that it is
    /// for that model (id and metric).
    pub fn find(dir: &Path, model: &ModelInfo) -> Result<Self, CalibrationError> {
        let calibration = Self::load(&Self::path_in(dir, &model.id)?)?;
        calibration.check_model(model)?;
        Ok(calibration)
    }

    /// The calibration of `model` measured with `pipeline`: the
    /// pipeline's own file (`<model_id>@<tag>.json`) when there is one,
    /// else `<model_id>.json`, which must then be for this pipeline. Also
    /// returns the path read.
    pub fn find_for_pipeline(
        dir: &Path,
        model: &ModelInfo,
        pipeline: &PipelineFingerprint,
    ) -> Result<(Self, PathBuf), CalibrationError> {
        let own = Self::path_for_pipeline(dir, &model.id, pipeline)?;
        let path = if own.is_file() {
            own
        } else {
            Self::path_in(dir, &model.id)?
        };
        let calibration = Self::load(&path)?;
        calibration.check_model(model)?;
        calibration.check_pipeline(pipeline)?;
        Ok((calibration, path))
    }

    /// Where a new calibration of `self`'s model and pipeline goes in
    /// `dir`: `<model_id>.json` unless that file holds another pipeline's
    /// calibration (kept), then the pipeline's own `<model_id>@<tag>.json`.
    pub fn destination_in(&self, dir: &Path) -> Result<PathBuf, CalibrationError> {
        let main = Self::path_in(dir, &self.model_id)?;
        match Self::load(&main) {
            Ok(existing) if existing.pipeline != self.pipeline => {
                Self::path_for_pipeline(dir, &self.model_id, &self.pipeline)
            }
            _ => Ok(main),
        }
    }

    /// Fails unless this calibration is for `model` (same id and metric).
    pub fn check_model(&self, model: &ModelInfo) -> Result<(), CalibrationError> {
        if self.model_id != model.id || self.metric != model.metric {
            return Err(CalibrationError::WrongModel {
                expected: model.id.clone(),
                expected_metric: model.metric.as_str(),
                found: self.model_id.clone(),
                found_metric: self.metric.as_str(),
            });
        }
        Ok(())
    }

    /// Fails unless this calibration was measured with `running`.
    pub fn check_pipeline(&self, running: &PipelineFingerprint) -> Result<(), CalibrationError> {
        if &self.pipeline != running {
            return Err(CalibrationError::WrongPipeline {
                model_id: self.model_id.clone(),
                calibrated: Box::new(self.pipeline.clone()),
                running: Box::new(running.clone()),
            });
        }
        Ok(())
    }

    /// Pretty JSON, as committed under [`SHIPPED_DIR`].
    pub fn to_json_pretty(&self) -> Result<String, CalibrationError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Checks what the service relies on: a known layout version, a plain
    /// model id, finite positive thresholds ordered `high ≤ medium ≤
    /// verify`, rates in (0, 1) ordered the same way, a positive gallery
    /// size, and finite operating points sorted strictest first.
    pub fn validate(&self) -> Result<(), CalibrationError> {
        let invalid = |reason: String| CalibrationError::Invalid {
            model_id: self.model_id.clone(),
            reason,
        };
        if self.schema_version != SCHEMA_VERSION {
            return Err(invalid(format!(
                "schema_version {} (this build reads {SCHEMA_VERSION})",
                self.schema_version
            )));
        }
        check_model_id(&self.model_id)?;
        let t = &self.thresholds;
        for (name, value) in [
            ("verify", t.verify),
            ("high", t.high),
            ("medium", t.medium),
            ("identify", t.identify),
        ] {
            if !value.is_finite() || value <= 0.0 {
                return Err(invalid(format!(
                    "threshold {name} = {value} is not a finite positive distance"
                )));
            }
        }
        if self.metric == Metric::Cosine && t.verify > 2.0 {
            return Err(invalid(format!(
                "cosine distance threshold {} exceeds 2 (would accept everything)",
                t.verify
            )));
        }
        if !(t.high <= t.medium && t.medium <= t.verify) {
            return Err(invalid(format!(
                "thresholds out of order: need high ({}) <= medium ({}) <= verify ({})",
                t.high, t.medium, t.verify
            )));
        }
        for (name, rate) in [
            ("verify_fmr", t.verify_fmr),
            ("high_fmr", t.high_fmr),
            ("medium_fmr", t.medium_fmr),
            ("identify_fpir", t.identify_fpir),
        ] {
            if !(rate.is_finite() && rate > 0.0 && rate < 1.0) {
                return Err(invalid(format!("{name} = {rate} is not in (0, 1)")));
            }
        }
        if !(t.high_fmr <= t.medium_fmr && t.medium_fmr <= t.verify_fmr) {
            return Err(invalid(
                "target rates out of order: need high_fmr <= medium_fmr <= verify_fmr".into(),
            ));
        }
        if t.identify_gallery_size == 0 {
            return Err(invalid("identify_gallery_size is 0".into()));
        }
        let mut previous: Option<&OperatingPoint> = None;
        for p in &self.operating_points {
            let finite = p.threshold.is_finite()
                && [p.target_fmr, p.fmr, p.fnmr]
                    .iter()
                    .all(|r| r.is_finite() && (0.0..=1.0).contains(r));
            if !finite || p.fmr > p.target_fmr {
                return Err(invalid(format!("operating point {p:?} is not usable")));
            }
            if let Some(q) = previous {
                if p.target_fmr < q.target_fmr || p.threshold < q.threshold {
                    return Err(invalid(
                        "operating points must be sorted strictest (smallest FMR) first".into(),
                    ));
                }
            }
            previous = Some(p);
        }
        for p in &self.identification {
            if !p.threshold.is_finite() || p.gallery_size == 0 {
                return Err(invalid(format!("identification row {p:?} is not usable")));
            }
        }
        Ok(())
    }
}

/// The per-comparison FMR at which a stranger searched against
/// `gallery_size` independent people is falsely matched with probability
/// `fpir`: `1 − (1 − fpir)^(1/N)` (≈ `fpir / N`).
pub fn per_comparison_fmr(fpir: f64, gallery_size: u32) -> f64 {
    let n = f64::from(gallery_size.max(1));
    // ln_1p/exp_m1 keep precision for tiny rates.
    -((1.0 - fpir).ln() / n).exp_m1()
}

/// The FPIR expected at gallery size `gallery_size` from a per-comparison
/// FMR, assuming independent comparisons: `1 − (1 − fmr)^N`.
pub fn expected_fpir(fmr: f64, gallery_size: u32) -> f64 {
    -(f64::from(gallery_size) * (-fmr).ln_1p()).exp_m1()
}

/// Model ids name files: letters, digits, `_`, `-` and `.` only, not
/// starting with `.`.
fn check_model_id(model_id: &str) -> Result<(), CalibrationError> {
    if crate::embed::is_valid_model_id(model_id) {
        Ok(())
    } else {
        Err(CalibrationError::Invalid {
            model_id: model_id.to_string(),
            reason: "model id must be a plain name of 1-63 letters, digits, _ - .".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Calibration {
        Calibration {
            schema_version: SCHEMA_VERSION,
            model_id: "m".into(),
            metric: Metric::Euclidean,
            pipeline: PipelineFingerprint {
                embedder: "e".into(),
                detector: "d".into(),
                detector_input: "i".into(),
                normalisation: "n".into(),
            },
            thresholds: Thresholds {
                verify: 0.5,
                verify_fmr: 1e-4,
                high: 0.4,
                high_fmr: 1e-5,
                medium: 0.5,
                medium_fmr: 1e-4,
                identify: 0.35,
                identify_fpir: 0.01,
                identify_gallery_size: 5000,
            },
            operating_points: vec![
                OperatingPoint {
                    target_fmr: 1e-6,
                    threshold: 0.3,
                    fmr: 9e-7,
                    fnmr: 0.2,
                },
                OperatingPoint {
                    target_fmr: 1e-5,
                    threshold: 0.4,
                    fmr: 1e-5,
                    fnmr: 0.1,
                },
            ],
            identification: vec![],
            evidence: Evidence::default(),
        }
    }

    #[test]
    fn a_calibration_applies_only_to_its_pipeline() {
        let c = sample();
        assert!(c.check_pipeline(&c.pipeline.clone()).is_ok());
        let mut other = c.pipeline.clone();
        other.normalisation = "rgb, (x - 127.5) / 127.5, chip 112x112".into();
        let err = c.check_pipeline(&other).unwrap_err().to_string();
        assert!(err.contains("normalisation n"), "{err}");
        assert!(err.contains("(x - 127.5) / 127.5"), "{err}");
        // An old file without the pipeline is refused with its version.
        let mut v1 = serde_json::to_value(&c).unwrap();
        v1["schema_version"] = 1.into();
        v1.as_object_mut().unwrap().remove("pipeline");
        let err = Calibration::from_json(&v1.to_string())
            .unwrap_err()
            .to_string();
        assert!(err.contains("schema_version 1"), "{err}");
    }

    #[test]
    fn out_of_order_or_non_finite_is_refused() {
        let mut c = sample();
        c.thresholds.high = 0.6;
        assert!(c.validate().is_err());
        let mut c = sample();
        c.thresholds.verify = f32::INFINITY;
        assert!(c.validate().is_err());
        let mut c = sample();
        c.model_id = "../etc".into();
        assert!(c.validate().is_err());
        assert!(Calibration::path_in(Path::new("x"), "a/b").is_err());
    }

    #[test]
    fn json_round_trip_and_independence_formulas() {
        let c = sample();
        let back = Calibration::from_json(&c.to_json_pretty().unwrap()).unwrap();
        assert_eq!(back, c);
        // 1 % over 10,000 people needs FMR ≈ 1e-6 per comparison.
        assert!((per_comparison_fmr(0.01, 10_000) - 1.005e-6).abs() < 1e-9);
        assert!((expected_fpir(per_comparison_fmr(0.01, 5000), 5000) - 0.01).abs() < 1e-12);
    }
}
