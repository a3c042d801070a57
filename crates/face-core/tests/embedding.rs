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
    let analysis = common::pipeline().analyze(bytes).unwrap();
    analysis.faces.into_iter().next().map(|f| f.embedding)
}

#[test]
fn same_person_pairs_are_close_and_different_people_far() {
    let mut embedded = Vec::new();
    let mut no_face = Vec::new();
    for (path, who) in common::people() {
        match embed_one(&common::photo(&path)) {
            Some(e) => {
                assert_eq!(e.values().len(), e.model().dimension);
                embedded.push((path, who, e));
            }
            None => no_face.push(path),
        }
    }
    println!(
        "embedded {} photos; no face in {:?}",
        embedded.len(),
        no_face
    );
    assert!(no_face.iter().all(|p| common::is_partial(p)), "{no_face:?}");

    let (mut tp, mut fn_, mut tn, mut fp) = (0, 0, 0, 0);
    let mut errors = Vec::new();
    for i in 0..embedded.len() {
        for j in i + 1..embedded.len() {
            let (pa, wa, ea) = &embedded[i];
            let (pb, wb, eb) = &embedded[j];
            let d = ea.distance(eb).unwrap();
            match (wa == wb, d < THRESHOLD) {
                (true, true) => tp += 1,
                (true, false) => {
                    fn_ += 1;
                    errors.push(format!("same {pa} {pb} {d:.3}"));
                }
                (false, false) => tn += 1,
                (false, true) => {
                    fp += 1;
                    errors.push(format!("diff {pa} {pb} {d:.3}"));
                }
            }
        }
    }
    let total = tp + fn_ + tn + fp;
    let wrong = fn_ + fp;
    println!(
        "pairs: {total}; same-person: {tp} under / {fn_} over; different: {tn} over / {fp} under"
    );
    for e in errors.iter().take(30) {
        println!("  {e}");
    }
    let rate = wrong as f64 / total as f64;
    println!("wrong: {wrong} ({:.2}%)", 100.0 * rate);
    assert!(rate <= 0.02, "{:.2}% of pairs wrong", 100.0 * rate);
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
