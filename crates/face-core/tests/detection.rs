//! Detection on the real photos in `shared/faces`: one face per portrait,
//! none in photos without people, most annotated faces in group photos.
#![allow(clippy::unwrap_used)]

mod common;

#[test]
fn every_portrait_has_exactly_one_face() {
    common::bars::every_portrait_has_exactly_one_face(&mut common::pipeline());
}

#[test]
fn photos_without_people_have_no_face() {
    common::bars::photos_without_people_have_no_face(&mut common::pipeline());
}

#[test]
fn group_photos_find_most_annotated_faces_and_invent_none() {
    common::bars::group_photos_find_most_annotated_faces_and_invent_none(&mut common::pipeline());
}

#[test]
fn cnn_detector_is_selectable_and_finds_the_same_face() {
    let locator = common::locator();
    let mut cnn = face_core::dlib::pipeline(
        &locator,
        face_core::dlib::DetectorKind::Cnn,
        face_core::PipelineOptions::default(),
    )
    .unwrap();
    assert_eq!(cnn.detector_name(), "dlib-cnn");
    let bytes = common::photo("people/obama/face_recognition_obama.jpg");
    let by_cnn = cnn.analyze(&bytes).unwrap();
    let by_hog = common::pipeline().analyze(&bytes).unwrap();
    assert_eq!(by_cnn.faces.len(), 1);
    let iou = by_cnn.faces[0]
        .detection
        .bbox
        .iou(&by_hog.faces[0].detection.bbox);
    let d = by_cnn.faces[0]
        .embedding
        .distance(&by_hog.faces[0].embedding)
        .unwrap();
    println!(
        "CNN vs HOG: box IoU {iou:.2}, embedding distance {d:.3}, CNN score {:.2}",
        by_cnn.faces[0].detection.score
    );
    assert!(iou > 0.5, "{iou}");
    // Same person, same photo: far under any same-person threshold.
    assert!(d < 0.3, "{d}");
}

#[test]
fn a_12_megapixel_photo_is_reduced_in_the_decoder_and_mapped_back() {
    let bytes = common::large_jpeg();
    let mut p = common::pipeline();
    let fast = p.analyze(&bytes).unwrap();
    assert_eq!((fast.width, fast.height), (4032, 3024));
    assert_eq!(fast.faces.len(), 1);
    // The same photo decoded in full, then scaled by the pipeline.
    let full = face_core::decode(&bytes, &Default::default())
        .unwrap()
        .image;
    let slow = p.analyze_image(&full).unwrap();
    let (a, b) = (&fast.faces[0], &slow.faces[0]);
    let iou = a.detection.bbox.iou(&b.detection.bbox);
    let d = a.embedding.distance(&b.embedding).unwrap();
    println!(
        "reduced decode: box {:?}, IoU with full decode {iou:.3}, embedding distance {d:.3}, timings {:?}",
        a.detection.bbox, fast.timings
    );
    assert!(
        a.detection.bbox.width > 400.0,
        "box not in original coordinates"
    );
    // HOG boxes snap to its pyramid levels, so they shift a little between
    // two differently scaled copies; the embedding is the real check.
    assert!(iou > 0.75, "{iou}");
    assert!(d < 0.1, "{d}");

    // EXIF orientation is honoured on the reduced path too.
    let stored = face_core::image::imageops::rotate270(&full);
    let plain = common::jpeg(&stored);
    let mut tagged = plain[..2].to_vec();
    tagged.extend(common::exif_orientation_segment(6));
    tagged.extend_from_slice(&plain[2..]);
    let rotated = p.analyze(&tagged).unwrap();
    assert_eq!((rotated.width, rotated.height), (4032, 3024));
    assert_eq!(rotated.faces.len(), 1);
    let iou = rotated.faces[0].detection.bbox.iou(&a.detection.bbox);
    assert!(iou > 0.75, "EXIF-rotated large photo: IoU {iou}");
}
