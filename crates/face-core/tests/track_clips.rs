//! The tracker on real clips (`shared/video`), with the fast pipeline's
//! detector (YuNet-n, never enlarging): a person filmed alone keeps one
//! track id, and the stage clip's cuts end tracks instead of carrying them
//! onto whoever is in the next shot.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use face_core::track::{Tracker, TrackerConfig};
use face_core::{decode, BoundingBox, FacePipeline};

/// The frames of an MJPEG clip: JPEGs back to back, each starting with
/// `FF D8 FF`.
fn frames(name: &str) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(common::shared().join("video").join(name)).unwrap();
    face_core::mjpeg::frames(&bytes)
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect()
}

/// The boxes of the faces found in one frame.
fn boxes(p: &mut FacePipeline, jpeg: &[u8]) -> Vec<BoundingBox> {
    let image = decode(jpeg, &Default::default()).unwrap().image;
    p.detect_image(&image)
        .unwrap()
        .iter()
        .map(|f| f.bbox)
        .collect()
}

/// Per frame, the track id of each face found.
fn track(clip: &str) -> Vec<Vec<u64>> {
    let mut p = common::fast_pipeline();
    let mut tracker = Tracker::new(TrackerConfig::default());
    frames(clip)
        .iter()
        .map(|jpeg| {
            tracker
                .update(&boxes(&mut p, jpeg))
                .assignments
                .iter()
                .map(|a| a.track_id)
                .collect()
        })
        .collect()
}

#[test]
fn one_person_keeps_one_track_id() {
    for clip in ["d12.mjpeg", "d3.mjpeg", "d20.mjpeg"] {
        let per_frame = track(clip);
        let with_face = per_frame.iter().filter(|ids| !ids.is_empty()).count();
        let mut count: HashMap<u64, usize> = HashMap::new();
        for ids in &per_frame {
            for id in ids {
                *count.entry(*id).or_default() += 1;
            }
        }
        let (main, on) = count
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(id, n)| (*id, *n))
            .unwrap();
        let share = on as f64 / with_face as f64;
        println!(
            "{clip}: {} frames, a face on {with_face}, track {main} on {on} ({:.1} %), {} tracks",
            per_frame.len(),
            100.0 * share,
            count.len()
        );
        assert!(
            with_face as f64 >= 0.9 * per_frame.len() as f64,
            "{clip}: faces on {with_face}"
        );
        assert!(share >= 0.95, "{clip}: {count:?}");
    }
}

#[test]
fn the_stage_clip_gives_no_track_a_second_place_after_a_cut() {
    // hamilton.mjpeg cuts between shots; a track must not jump from a face
    // in one shot to a face elsewhere in the next: between two frames a
    // track's box never moves by more than its own size.
    let mut p = common::fast_pipeline();
    let mut tracker = Tracker::new(TrackerConfig::default());
    let mut last: HashMap<u64, BoundingBox> = HashMap::new();
    let mut tracks = 0;
    for (i, jpeg) in frames("hamilton.mjpeg").iter().enumerate() {
        let boxes = boxes(&mut p, jpeg);
        let update = tracker.update(&boxes);
        for (a, b) in update.assignments.iter().zip(&boxes) {
            if a.new {
                tracks += 1;
            } else if let Some(prev) = last.get(&a.track_id) {
                let (c, d) = (prev.center(), b.center());
                let jump = ((c.x - d.x).powi(2) + (c.y - d.y).powi(2)).sqrt();
                assert!(
                    jump <= prev.width.max(b.width),
                    "frame {i}: track {} jumped {jump:.0} px",
                    a.track_id
                );
            }
            last.insert(a.track_id, *b);
        }
    }
    println!("hamilton.mjpeg: {tracks} tracks");
    assert!(
        tracks >= 3,
        "the cuts and the audience make several tracks: {tracks}"
    );
}
