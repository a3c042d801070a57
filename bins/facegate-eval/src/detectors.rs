//! Detector settings side by side: recall on the shared photos and time
//! per image, to choose an input-size policy by measurement.
//!
//! For each setting (an ONNX detector file with its input size and
//! upscale limit) it runs the detector alone, on one thread, over
//! `shared/faces`: the portraits (each must give exactly one face), the
//! photos without people (none), the annotated group photos (faces found,
//! capped at the annotation, and never more than one over it), and the
//! first photos of LFW people (250×250 press photos, the size of a
//! typical enrolment upload). Times are the detector's own call on the
//! decoded image, median over the photos, so decode is left out.

use std::path::Path;
use std::time::Instant;

use face_core::models::ModelLocator;
use face_core::onnx::{self, HeadKind, OnnxOptions};
use face_core::{decode, DecodeLimits, Detector};
use serde::Serialize;

use crate::Result;

/// One setting.
#[derive(Debug, Clone, Serialize)]
pub struct Setting {
    /// The detector file.
    pub model: String,
    /// Its family.
    pub kind: &'static str,
    /// Longest input side (dynamic models).
    pub input_size: u32,
    /// Upscale limit.
    pub max_upscale: f32,
}

impl Setting {
    /// Parses `FILE[:INPUT[:UPSCALE]]`, e.g. `yunet_n_dynamic.onnx:320:1`.
    pub fn parse(s: &str) -> Result<Self> {
        let mut it = s.split(':');
        let model = it.next().unwrap_or_default().to_string();
        let input_size = it.next().map(str::parse).transpose()?.unwrap_or(640);
        let max_upscale = it.next().map(str::parse).transpose()?.unwrap_or(2.0);
        let kind = if model.contains("scrfd") {
            "scrfd"
        } else {
            "yunet"
        };
        Ok(Self {
            model,
            kind,
            input_size,
            max_upscale,
        })
    }
}

/// What one setting measured.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    /// The setting.
    pub setting: Setting,
    /// Portraits with exactly one face, of those checked.
    pub portraits_one_face: (usize, usize),
    /// Photos without people that gave no face, of those checked.
    pub noface_clean: (usize, usize),
    /// Annotated group faces found (capped per photo at the annotation).
    pub group_found: (usize, usize),
    /// Group photos with more than one face over the annotation.
    pub group_overcounts: usize,
    /// LFW first photos with at least one face, of those checked.
    pub lfw_with_face: (usize, usize),
    /// Median detector time per portrait, ms.
    pub portrait_ms: f64,
    /// Median detector time per group photo, ms.
    pub group_ms: f64,
    /// Median detector time per LFW photo, ms.
    pub lfw_ms: f64,
}

fn median_ms(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2] * 1e3
}

fn csv_rows(path: &Path) -> Result<Vec<Vec<String>>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect())
}

/// Measures `setting` on the photos under `faces` (`shared/faces`) and the
/// LFW photos `lfw_photos`.
pub fn measure(
    setting: &Setting,
    base: &OnnxOptions,
    locator: &ModelLocator,
    faces: &Path,
    lfw_photos: &[std::path::PathBuf],
) -> Result<Measured> {
    let mut options = base.clone();
    options.detector.model = setting.model.clone();
    options.detector.kind = match setting.kind {
        "scrfd" => HeadKind::Scrfd,
        _ => HeadKind::Yunet,
    };
    options.detector.input_size = setting.input_size;
    options.detector.max_upscale = setting.max_upscale;
    let models = onnx::OnnxModels::locate(locator, &options)?;
    let (mut detector, _) = onnx::parts(&models, &options)?;
    let limits = DecodeLimits::default();
    let mut run = |path: &Path, times: &mut Vec<f64>| -> Result<usize> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let image = decode(&bytes, &limits)?.image;
        let t = Instant::now();
        let n = detector.detect(&image)?.len();
        times.push(t.elapsed().as_secs_f64());
        Ok(n)
    };
    let (mut portraits, mut portrait_times) = ((0, 0), Vec::new());
    for row in csv_rows(&faces.join("labels.csv"))? {
        if row[0].contains("partial_face") {
            continue;
        }
        let n = run(&faces.join(&row[0]), &mut portrait_times)?;
        portraits.1 += 1;
        portraits.0 += usize::from(n == 1);
    }
    let mut noface = (0, 0);
    for row in csv_rows(&faces.join("noface.csv"))? {
        let n = run(&faces.join(&row[0]), &mut Vec::new())?;
        noface.1 += 1;
        noface.0 += usize::from(n == 0);
    }
    let (mut group, mut over, mut group_times) = ((0, 0), 0, Vec::new());
    for row in csv_rows(&faces.join("group.csv"))? {
        let Ok(expected) = row[1].parse::<usize>() else {
            continue;
        };
        let n = run(&faces.join(&row[0]), &mut group_times)?;
        group.0 += n.min(expected);
        group.1 += expected;
        over += usize::from(n > expected + 1);
    }
    let (mut lfw, mut lfw_times) = ((0, 0), Vec::new());
    for path in lfw_photos {
        let n = run(path, &mut lfw_times)?;
        lfw.1 += 1;
        lfw.0 += usize::from(n >= 1);
    }
    Ok(Measured {
        setting: setting.clone(),
        portraits_one_face: portraits,
        noface_clean: noface,
        group_found: group,
        group_overcounts: over,
        lfw_with_face: lfw,
        portrait_ms: median_ms(portrait_times),
        group_ms: median_ms(group_times),
        lfw_ms: median_ms(lfw_times),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_with_defaults() {
        let s = Setting::parse("yunet_n_dynamic.onnx:320:1").unwrap();
        assert_eq!((s.input_size, s.max_upscale, s.kind), (320, 1.0, "yunet"));
        let s = Setting::parse("scrfd_500m_bnkps.onnx").unwrap();
        assert_eq!((s.input_size, s.max_upscale, s.kind), (640, 2.0, "scrfd"));
        assert!(Setting::parse("x.onnx:big").is_err());
    }
}
