//! Failure to enrol: how many of the first LFW photos of N people the
//! server's enrolment rule refuses, and why.
//!
//! Each person's first photo goes through the pipeline with the server's
//! options (working copy, minimum face size) and through
//! [`face_core::enrolment::enrolment_face`], the rule the service applies,
//! so the figure is what an operator enrolling these photos would see.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use face_core::enrolment::{enrolment_face, EnrolmentRefusal};
use face_core::{FacePipeline, PipelineOptions, QualityIssue, QualityPolicy};
use serde::Serialize;

use crate::lfw::Lfw;

/// The outcome counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EnrolCounts {
    /// Photos tried (one per person).
    pub photos: usize,
    /// Enrolled.
    pub accepted: usize,
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
    /// Wall time.
    pub seconds: f64,
}

impl EnrolCounts {
    /// The refused share.
    pub fn failure_rate(&self) -> f64 {
        if self.photos == 0 {
            return 0.0;
        }
        (self.photos - self.accepted) as f64 / self.photos as f64
    }
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

/// The server's pipeline options with its minimum face size
/// `min_face_size` (the rest at their defaults, as the server's are).
pub fn server_options(min_face_size: u32) -> PipelineOptions {
    PipelineOptions {
        quality: QualityPolicy {
            min_face_size,
            ..QualityPolicy::default()
        },
        ..PipelineOptions::default()
    }
}

/// Runs the enrolment rule over `photos`, one thread per pipeline (built
/// with [`server_options`]).
pub fn failure_to_enrol(lfw: &Lfw, pipelines: Vec<FacePipeline>, photos: &[usize]) -> EnrolCounts {
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    let counts = Mutex::new(EnrolCounts {
        photos: photos.len(),
        ..EnrolCounts::default()
    });
    std::thread::scope(|scope| {
        for mut pipeline in pipelines {
            let (next, counts) = (&next, &counts);
            scope.spawn(move || loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&index) = photos.get(k) else { break };
                let path = lfw.root.join(&lfw.images[index].path);
                let outcome = std::fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| {
                        pipeline
                            .analyze_largest(&bytes, 1)
                            .map_err(|e| e.to_string())
                    })
                    .map(enrolment_face);
                let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
                match outcome {
                    Err(_) => c.errors += 1,
                    Ok(Ok(_)) => c.accepted += 1,
                    Ok(Err(EnrolmentRefusal::NoFace)) => c.no_face += 1,
                    Ok(Err(EnrolmentRefusal::MultipleFaces { .. })) => c.multiple_faces += 1,
                    Ok(Err(EnrolmentRefusal::LowQuality { issues })) => {
                        if issues
                            .iter()
                            .any(|i| matches!(i, QualityIssue::TooSmall { .. }))
                        {
                            c.too_small += 1;
                        } else {
                            c.other_quality += 1;
                        }
                    }
                }
            });
        }
    });
    let mut counts = counts.into_inner().unwrap_or_else(|p| p.into_inner());
    counts.seconds = start.elapsed().as_secs_f64();
    counts
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
        let counts = EnrolCounts {
            photos: 4,
            accepted: 3,
            ..EnrolCounts::default()
        };
        assert!((counts.failure_rate() - 0.25).abs() < 1e-12);
    }
}
