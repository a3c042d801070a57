//! Embeddings on the real photos: same person close, different people far,
//! stable across resolutions and EXIF orientation.
#![allow(clippy::unwrap_used)]

mod common;

use face_core::Embedding;

/// dlib's published same-person threshold (Euclidean) until the calibrated
/// one lands.
const THRESHOLD: f32 = 0.6;

fn embed_one(bytes: &[u8]) -> Option<Embedding> {
    common::bars::embed_one(&mut common::pipeline(), bytes)
}

#[test]
fn same_person_pairs_are_close_and_different_people_far() {
    common::bars::same_person_pairs_are_close_and_different_people_far(
        &mut common::pipeline(),
        THRESHOLD,
    );
}

#[test]
fn resolutions_of_one_photo_embed_alike() {
    let sizes = ["240p", "480p", "720p", "1080p"];
    let embs: Vec<_> = sizes
        .iter()
        .map(|s| {
            embed_one(&common::photo(&format!(
                "people/obama/face_recognition_obama-{s}.jpg"
            )))
            .unwrap_or_else(|| panic!("no face at {s}"))
        })
        .collect();
    for i in 0..embs.len() {
        for j in i + 1..embs.len() {
            let d = embs[i].distance(&embs[j]).unwrap();
            println!("{} vs {}: {d:.4}", sizes[i], sizes[j]);
            assert!(d < 0.2, "{} vs {}: {d}", sizes[i], sizes[j]);
        }
    }
}

#[test]
fn exif_rotated_photo_is_found_upright() {
    let sideways = common::bars::exif_rotated_photo_is_found_upright(&mut common::pipeline());
    // Without the tag the sideways face is not found by the frontal HOG
    // detector: the test would mean nothing if it were.
    assert_eq!(sideways, 0);
}
