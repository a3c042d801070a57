//! Enrolment quality on real photos: sharp portraits pass the blur check,
//! the same faces blurred fail it, and tiny or cut-off faces are refused
//! with their reason.
#![allow(clippy::unwrap_used)]

mod common;

use face_core::image::imageops;
use face_core::quality::{sharpness, DEFAULT_MIN_SHARPNESS};
use face_core::{decode, QualityIssue};

#[test]
fn default_sharpness_threshold_separates_sharp_from_blurred_faces() {
    let mut p = common::pipeline();
    let limits = p.options().decode;
    let (mut sharp_min, mut blurred_max) = (f32::MAX, 0.0f32);
    let mut below = Vec::new();
    for (path, _) in common::people() {
        if common::is_partial(&path) {
            continue;
        }
        let img = decode(&common::photo(&path), &limits).unwrap().image;
        let faces = p.detect_image(&img).unwrap();
        let face = &faces[0];
        let s = sharpness(&img, face);
        // Blur with σ = 2 px at the 128 px measuring scale.
        let sigma = 2.0 * (face.bbox.min_side() / 128.0).max(1.0);
        let blurred = imageops::blur(&img, sigma);
        let b = sharpness(&blurred, face);
        if s < DEFAULT_MIN_SHARPNESS {
            below.push(format!("{path}: {s:.1}"));
        }
        sharp_min = sharp_min.min(s);
        // Faces under the size minimum are refused for size already.
        if p.options().quality.counts(face) {
            blurred_max = blurred_max.max(b);
        }
    }
    println!("sharp photos: min sharpness {sharp_min:.1}; blurred copies: max {blurred_max:.1}");
    println!("sharp photos under the threshold: {below:?}");
    assert!(
        blurred_max < DEFAULT_MIN_SHARPNESS,
        "a blurred face passed: {blurred_max}"
    );
    assert!(
        below.is_empty(),
        "sharp photos refused as blurry: {below:?}"
    );
}

#[test]
fn small_faces_are_refused_with_their_size() {
    let mut p = common::pipeline();
    let bytes = common::photo("people/obama/face_recognition_obama-240p.jpg");
    let analysis = p.analyze(&bytes).unwrap();
    let q = &analysis.faces[0].quality;
    println!(
        "240p face: eyes {:.1} px apart, issues {:?}",
        q.eye_distance, q.issues
    );
    let big = p
        .analyze(&common::photo(
            "people/obama/face_recognition_obama-1080p.jpg",
        ))
        .unwrap();
    let qb = &big.faces[0].quality;
    println!(
        "1080p face: eyes {:.1} px apart, issues {:?}",
        qb.eye_distance, qb.issues
    );
    assert!(qb.is_acceptable(), "{:?}", qb.issues);
    assert!(qb.eye_distance > q.eye_distance * 3.0);
    // dlib's landmarks: the 240p face's eyes are under 34.5 px apart.
    assert!(
        matches!(q.issues[0], QualityIssue::TooSmall { eye_distance, min_eye_distance }
            if eye_distance == q.eye_distance && min_eye_distance == 34.5),
        "{:?}",
        q.issues
    );
}

#[test]
fn a_face_cut_by_the_border_is_refused() {
    let mut p = common::pipeline();
    let img = decode(
        &common::photo("people/obama/face_recognition_obama.jpg"),
        &Default::default(),
    )
    .unwrap()
    .image;
    let whole = p.analyze_image(&img).unwrap();
    let b = whole.faces[0].detection.bbox;
    assert!(
        whole.faces[0].quality.is_acceptable(),
        "{:?}",
        whole.faces[0].quality.issues
    );
    // Cut the photo through the middle of the face, keeping its right part.
    let cut_x = (b.left + b.width * 0.35) as u32;
    let cut = imageops::crop_imm(&img, cut_x, 0, img.width() - cut_x, img.height()).to_image();
    let analysis = p.analyze_image(&cut).unwrap();
    println!("faces in the cut photo: {}", analysis.faces.len());
    for f in &analysis.faces {
        println!("  {:?} {:?}", f.detection.bbox, f.quality.issues);
        assert!(!f.quality.is_acceptable(), "a cut-off face passed quality");
    }
}
