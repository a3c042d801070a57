//! Embeddings on the real photos: same person close, different people far,
//! stable across resolutions and EXIF orientation.
#![allow(clippy::unwrap_used)]

mod common;

use face_core::image::imageops;
use face_core::{decode, Embedding};

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
    let upright = decode(
        &common::photo("people/obama/face_recognition_obama.jpg"),
        &Default::default(),
    )
    .unwrap()
    .image;
    // A camera held sideways stores the pixels turned 90° and tags the file
    // with orientation 6 ("rotate 90° clockwise to display").
    let stored = imageops::rotate270(&upright);
    let plain = common::jpeg(&stored);
    let mut tagged = plain[..2].to_vec(); // SOI
    tagged.extend(common::exif_orientation_segment(6));
    tagged.extend_from_slice(&plain[2..]);

    let decoded = decode(&tagged, &Default::default()).unwrap();
    assert!(decoded.reoriented);
    assert_eq!(decoded.image.dimensions(), upright.dimensions());

    // Without the tag the sideways face is not found by the frontal detector:
    // the test would mean nothing if it were.
    let sideways = common::pipeline().analyze(&plain).unwrap();
    println!(
        "faces in the untagged sideways photo: {}",
        sideways.faces.len()
    );

    let reference = embed_one(&common::jpeg(&upright)).unwrap();
    let rotated = embed_one(&tagged).expect("no face in the EXIF-rotated photo");
    let d = reference.distance(&rotated).unwrap();
    println!("upright vs EXIF-rotated: {d:.4}");
    // Both files are re-encoded JPEGs whose 8x8 blocks fall differently on
    // the face, which alone moves the embedding by about 0.05 (compare the
    // 480p/1080p pair above); a sideways face would not be found at all.
    assert!(d < 0.1, "{d}");
    assert!(sideways.faces.is_empty());

    let a = common::pipeline().analyze(&common::jpeg(&upright)).unwrap();
    let b = common::pipeline().analyze(&tagged).unwrap();
    let iou = a.faces[0].detection.bbox.iou(&b.faces[0].detection.bbox);
    println!("box IoU upright vs EXIF-rotated: {iou:.3}");
    assert!(iou > 0.9, "{iou}");
}
