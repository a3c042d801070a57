//! The stream use case on real clips (`shared/video`) with the fast
//! pipeline (YuNet-n + MobileFaceNet) and a real store: a person enrolled
//! from one frame of their clip is decided as themselves on the track of
//! other frames, within the attempt budget and never as one of the
//! distractors; a person who is not enrolled is never decided as anyone;
//! detect mode tracks without recognising; a frame that is not a photo is
//! an error that leaves the session usable.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use face_service::stream::{StreamMode, StreamSession, TrackState};
use face_service::{Caller, EnrolRequest, FaceService, ServiceError, UserName};

mod common;

use common::{frames, shared};

/// The fast pipeline on two workers, a fresh SQLite store, the fast
/// pipeline's calibration.
async fn service(dir: &std::path::Path) -> FaceService {
    common::fast_service(dir, 2).await
}

async fn enrol(service: &FaceService, name: &str, image: Vec<u8>) -> Result<i64, ServiceError> {
    let req = EnrolRequest {
        name: UserName::parse(name).unwrap(),
        images: vec![image],
        external_ref: None,
        metadata: None,
        allow_duplicate: false,
        liveness: Default::default(),
        liveness_token: None,
    };
    Ok(service.enrol(&Caller::command_line(), req).await?.user.id)
}

/// The shared portraits' people, one photo each, as distractors (but
/// those in `except`).
async fn enrol_distractors(service: &FaceService, except: &[&str]) -> usize {
    let people = shared().join("faces/people");
    let mut dirs: Vec<_> = std::fs::read_dir(&people)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let mut enrolled = 0;
    for dir in dirs {
        let mut photos: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        photos.sort();
        let folder = dir.file_name().unwrap().to_string_lossy().to_string();
        if except.contains(&folder.as_str()) {
            continue;
        }
        let name = folder.replace('_', " ");
        if let Some(photo) = photos.first() {
            if enrol(service, &name, std::fs::read(photo).unwrap())
                .await
                .is_ok()
            {
                enrolled += 1;
            }
        }
    }
    enrolled
}

/// Streams `frames` in identify mode: per frame, (track id, state) of
/// each face, and the faces recognised in all.
async fn identify(
    service: &FaceService,
    frames: &[Vec<u8>],
) -> (Vec<Vec<(u64, TrackState)>>, usize) {
    let caller = Caller::command_line();
    let mut session = StreamSession::new(&caller, StreamMode::Identify).unwrap();
    let mut recognised = 0;
    let mut out = Vec::new();
    for frame in frames {
        let f = service
            .stream_frame(&caller, &mut session, frame.clone())
            .await
            .unwrap();
        recognised += f.recognised;
        out.push(
            f.faces
                .into_iter()
                .map(|face| (face.track_id, face.state))
                .collect(),
        );
    }
    (out, recognised)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enrolled_person_is_decided_on_their_track_and_a_stranger_never_is() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path()).await;
    let distractors = enrol_distractors(&service, &[]).await;
    assert!(distractors >= 15, "{distractors} distractors enrolled");
    // d12: enrolled from frame 120 (frontal), streamed on frames 0–99.
    let clip = frames("d12.mjpeg");
    let me = enrol(&service, "Man With Glasses", clip[120].clone())
        .await
        .unwrap();
    let (per_frame, recognised) = identify(&service, &clip[..100]).await;
    let states: Vec<&TrackState> = per_frame.iter().flatten().map(|(_, s)| s).collect();
    let identified: HashSet<i64> = states
        .iter()
        .filter_map(|s| match s {
            TrackState::Identified { user_id, .. } => Some(*user_id),
            _ => None,
        })
        .collect();
    println!(
        "d12: {} faces, {recognised} recognised, identified as {identified:?}",
        states.len()
    );
    assert_eq!(identified, HashSet::from([me]), "never a distractor");
    let first = per_frame
        .iter()
        .position(|faces| {
            faces
                .iter()
                .any(|(_, s)| matches!(s, TrackState::Identified { .. }))
        })
        .unwrap();
    assert!(first < 10, "decided on frame {first}");
    assert!(
        recognised <= 12,
        "{recognised} recognitions: over the budget of one track"
    );

    // Six people who are not enrolled, against the same gallery: 120
    // frames each, every attempt of the budget spent on each track.
    for clip in [
        "d19.mjpeg",
        "d18.mjpeg",
        "d13.mjpeg",
        "d11.mjpeg",
        "d20.mjpeg",
        "d3.mjpeg",
    ] {
        let frames = frames(clip);
        let (per_frame, recognised) = identify(&service, &frames[..120]).await;
        let wrongly: Vec<_> = per_frame
            .iter()
            .flatten()
            .filter(|(_, s)| matches!(s, TrackState::Identified { .. }))
            .collect();
        println!(
            "{clip}: {recognised} recognised, identified {} times",
            wrongly.len()
        );
        assert!(
            wrongly.is_empty(),
            "{clip}: a stranger was decided as {:?}",
            wrongly.first()
        );
        assert!(
            per_frame
                .iter()
                .flatten()
                .any(|(_, s)| *s == TrackState::Unknown),
            "{clip}: the stranger's track is decided unknown"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detect_mode_tracks_without_recognising_and_garbage_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path()).await;
    let caller = Caller::command_line();
    let mut session = StreamSession::new(&caller, StreamMode::Detect).unwrap();
    let clip = frames("d3.mjpeg");
    let mut ids = HashSet::new();
    for (i, frame) in clip[..30].iter().enumerate() {
        if i == 10 {
            let err = service
                .stream_frame(&caller, &mut session, b"not a jpeg at all".to_vec())
                .await
                .unwrap_err();
            assert!(matches!(err, ServiceError::BadImage(_)), "{err:?}");
        }
        let f = service
            .stream_frame(&caller, &mut session, frame.clone())
            .await
            .unwrap();
        assert_eq!(f.recognised, 0);
        assert_eq!(f.faces.len(), 1, "frame {i}");
        assert_eq!(f.faces[0].state, TrackState::Detected);
        ids.insert(f.faces[0].track_id);
    }
    assert_eq!(ids.len(), 1, "one track through the bad frame: {ids:?}");
    // A key without `recognize` may not identify.
    let enrol_only = Caller {
        scopes: vec![face_service::Scope::Enrol],
        ..Caller::command_line()
    };
    assert!(StreamSession::new(&enrol_only, StreamMode::Detect).is_ok());
    assert!(matches!(
        StreamSession::new(&enrol_only, StreamMode::Identify),
        Err(ServiceError::Forbidden { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stage_clip_finds_miranda_and_no_track_carries_two_identities() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path()).await;
    // Everyone but him: his photo is enrolled instead.
    let distractors = enrol_distractors(&service, &["lin_manuel_miranda"]).await;
    let photo = std::fs::read(shared().join("video/lin-manuel-miranda.png")).unwrap();
    let miranda = enrol(&service, "Lin-Manuel Miranda", photo).await.unwrap();
    let (per_frame, recognised) = identify(&service, &frames("hamilton.mjpeg")).await;
    let mut identities: std::collections::HashMap<u64, HashSet<i64>> = Default::default();
    let mut tracks = HashSet::new();
    for (track, state) in per_frame.iter().flatten() {
        tracks.insert(*track);
        if let TrackState::Identified { user_id, .. } = state {
            identities.entry(*track).or_default().insert(*user_id);
        }
    }
    let his: Vec<_> = identities
        .iter()
        .filter(|(_, users)| users.contains(&miranda))
        .map(|(t, _)| *t)
        .collect();
    println!(
        "hamilton: {} frames, {} tracks, {recognised} recognitions, {} identified ({} as Miranda), {distractors} distractors",
        per_frame.len(),
        tracks.len(),
        identities.len(),
        his.len()
    );
    assert!(!his.is_empty(), "Miranda decided on no track");
    for (track, users) in &identities {
        assert_eq!(users.len(), 1, "track {track} carried {users:?}");
        assert!(
            users.contains(&miranda),
            "track {track} decided as a distractor {users:?}"
        );
    }
}
