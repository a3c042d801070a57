//! The head-turn state machine on the real head turns of the shared clips
//! (`shared/video/README.md`): the yaw ratio of the largest face of each
//! frame, measured by the fast pipeline's YuNet-n landmarks, fed in order
//! with the clip's own frame times as the server's clock. `d12` turns left
//! (frames 36–50), right (79–92) and left again (162–173); `d13` is
//! frontal throughout.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use face_core::models::ModelLocator;
use face_core::onnx::{self, HeadKind, OnnxOptions, RuntimeOptions};
use face_core::PipelineOptions;
use face_service::challenge::{
    Challenge, ChallengeFailure, ChallengePolicy, ChallengeProgress, Phase, Turn,
};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shared() -> PathBuf {
    let dir = std::env::var_os("FACEGATE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared"));
    assert!(
        dir.join("video").is_dir(),
        "no clips at {}: set FACEGATE_SHARED_DIR",
        dir.display()
    );
    dir
}

/// The yaw ratio of the largest face of every frame of `clip` (None where
/// no face was found).
fn yaw_trace(clip: &str) -> Vec<Option<f32>> {
    let mut options = OnnxOptions {
        runtime: RuntimeOptions {
            library: Some(
                std::env::var_os("ORT_DYLIB_PATH")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| workspace().join("runtime/libonnxruntime.so")),
            ),
            ..Default::default()
        },
        ..Default::default()
    };
    options.detector.model = "yunet_n_dynamic.onnx".into();
    options.detector.kind = HeadKind::Yunet;
    options.detector.max_upscale = 1.0;
    options.embedder.model = "mobilefacenet_128d.onnx".into();
    let locator = ModelLocator::with_dirs(vec![shared().join("models/onnx")]);
    let mut p = onnx::pipeline(&locator, &options, PipelineOptions::default()).unwrap();
    let bytes = std::fs::read(shared().join("video").join(clip)).unwrap();
    face_core::mjpeg::frames(&bytes)
        .into_iter()
        .map(|frame| {
            let image = face_core::decode(frame, &Default::default()).unwrap().image;
            p.detect_image(&image)
                .unwrap()
                .first()
                .and_then(|f| face_core::pose::yaw_ratio(&f.landmarks))
        })
        .collect()
}

/// Feeds frames `range` of `trace` at `fps` to a challenge of `steps`.
fn run(
    trace: &[Option<f32>],
    range: std::ops::Range<usize>,
    fps: u64,
    steps: &[Turn],
) -> Result<Phase, ChallengeFailure> {
    let t0 = Instant::now();
    let challenge = Challenge {
        steps: steps.to_vec(),
    };
    let mut progress = ChallengeProgress::new(challenge, ChallengePolicy::default(), t0);
    let mut phase = Ok(Phase::Start);
    for (i, r) in trace[range].iter().enumerate() {
        let now = t0 + Duration::from_millis(1000 * i as u64 / fps);
        if let Some(r) = r {
            phase = progress.observe(*r, now);
            if phase.is_err() {
                break;
            }
        }
    }
    phase
}

#[test]
fn the_turns_of_d12_pass_in_their_order_and_fail_in_the_other() {
    use Turn::*;
    let d12 = yaw_trace("d12.mjpeg");
    assert_eq!(
        run(&d12, 30..110, 25, &[TurnLeft, TurnRight]),
        Ok(Phase::Done)
    );
    assert_eq!(
        run(&d12, 60..183, 25, &[TurnRight, TurnLeft]),
        Ok(Phase::Done)
    );
    assert_eq!(
        run(&d12, 30..183, 25, &[TurnLeft, TurnRight, TurnLeft]),
        Ok(Phase::Done)
    );
    assert_eq!(
        run(&d12, 30..110, 25, &[TurnRight, TurnLeft]),
        Err(ChallengeFailure::WrongDirection)
    );
    assert_eq!(
        run(&d12, 30..183, 25, &[TurnRight, TurnLeft, TurnRight]),
        Err(ChallengeFailure::WrongDirection)
    );
}

#[test]
fn a_frontal_clip_never_passes() {
    let d13 = yaw_trace("d13.mjpeg");
    assert_eq!(
        run(&d13, 0..d13.len(), 30, &[Turn::TurnLeft, Turn::TurnRight]),
        Err(ChallengeFailure::StepTimeout)
    );
}
