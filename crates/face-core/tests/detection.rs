//! Detection on the real photos in `shared/faces`: one face per portrait,
//! none in photos without people, most annotated faces in group photos.
#![allow(clippy::unwrap_used)]

mod common;

use face_core::decode;

#[test]
fn every_portrait_has_exactly_one_face() {
    let mut p = common::pipeline();
    let limits = p.options().decode;
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (path, _) in common::people() {
        if common::is_partial(&path) {
            continue;
        }
        let img = decode(&common::photo(&path), &limits).unwrap().image;
        let faces = p.detect_image(&img).unwrap();
        checked += 1;
        if faces.len() != 1 {
            wrong.push(format!("{path}: {} faces", faces.len()));
        }
    }
    println!("portraits checked: {checked}, wrong: {}", wrong.len());
    assert!(checked >= 85, "only {checked} portraits found");
    assert!(
        wrong.is_empty(),
        "portraits without exactly one face:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn photos_without_people_have_no_face() {
    let mut p = common::pipeline();
    let limits = p.options().decode;
    let rows = common::csv("noface.csv");
    assert_eq!(rows.len(), 9);
    for row in rows {
        let img = decode(&common::photo(&row[0]), &limits).unwrap().image;
        let faces = p.detect_image(&img).unwrap();
        println!("{}: {} faces", row[0], faces.len());
        assert!(
            faces.is_empty(),
            "{}: found {} faces: {:?}",
            row[0],
            faces.len(),
            faces
        );
    }
}

#[test]
fn group_photos_find_most_annotated_faces_and_invent_none() {
    let mut p = common::pipeline();
    let limits = p.options().decode;
    let (mut annotated, mut found) = (0usize, 0usize);
    for row in common::csv("group.csv") {
        let Ok(expected) = row[1].parse::<usize>() else {
            continue; // the collage has no exact count
        };
        let img = decode(&common::photo(&row[0]), &limits).unwrap().image;
        let n = p.detect_image(&img).unwrap().len();
        println!("{}: {n} of {expected} annotated faces", row[0]);
        assert!(
            n <= expected + 1,
            "{}: {n} faces, only {expected} annotated",
            row[0]
        );
        annotated += expected;
        found += n.min(expected);
    }
    let recall = found as f64 / annotated as f64;
    println!("group recall: {found}/{annotated} = {recall:.3}");
    assert!(recall >= 0.80, "recall {recall:.3} below 0.80");
}
