//! The bars every backend's detector and embedder must meet on the shared
//! photos, written once and run against each backend's pipeline.

use face_core::image::imageops;
use face_core::{decode, Embedding, FacePipeline};

use super::{csv, exif_orientation_segment, is_partial, jpeg, people, photo};

/// Every whole-face portrait gives exactly one face.
pub fn every_portrait_has_exactly_one_face(p: &mut FacePipeline) {
    let limits = p.options().decode;
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (path, _) in people() {
        if is_partial(&path) {
            continue;
        }
        let img = decode(&photo(&path), &limits).unwrap().image;
        let faces = p.detect_image(&img).unwrap();
        checked += 1;
        if faces.len() != 1 {
            wrong.push(format!("{path}: {} faces", faces.len()));
        }
    }
    println!(
        "{}: portraits checked: {checked}, wrong: {}",
        p.detector_name(),
        wrong.len()
    );
    assert!(checked >= 85, "only {checked} portraits found");
    assert!(
        wrong.is_empty(),
        "portraits without exactly one face:\n{}",
        wrong.join("\n")
    );
}

/// No photo without people gives a face (The Scream included).
pub fn photos_without_people_have_no_face(p: &mut FacePipeline) {
    let limits = p.options().decode;
    let rows = csv("noface.csv");
    assert_eq!(rows.len(), 9);
    for row in rows {
        let img = decode(&photo(&row[0]), &limits).unwrap().image;
        let faces = p.detect_image(&img).unwrap();
        println!("{}: {}: {} faces", p.detector_name(), row[0], faces.len());
        assert!(
            faces.is_empty(),
            "{}: found {} faces: {:?}",
            row[0],
            faces.len(),
            faces
        );
    }
}

/// Group photos: at least 80% of annotated faces found, and never more than
/// one face over the annotation. Returns the recall.
pub fn group_photos_find_most_annotated_faces_and_invent_none(p: &mut FacePipeline) -> f64 {
    let limits = p.options().decode;
    let (mut annotated, mut found) = (0usize, 0usize);
    for row in csv("group.csv") {
        let Ok(expected) = row[1].parse::<usize>() else {
            continue; // the collage has no exact count
        };
        let img = decode(&photo(&row[0]), &limits).unwrap().image;
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
    println!(
        "{}: group recall: {found}/{annotated} = {recall:.3}",
        p.detector_name()
    );
    assert!(recall >= 0.80, "recall {recall:.3} below 0.80");
    recall
}

/// The largest face's embedding, if any.
pub fn embed_one(p: &mut FacePipeline, bytes: &[u8]) -> Option<Embedding> {
    let analysis = p.analyze(bytes).unwrap();
    analysis.faces.into_iter().next().map(|f| f.embedding)
}

/// All pairs of the labelled portraits compared at `threshold` (match when
/// strictly under): at most 2% of pairs on the wrong side. Returns the rate.
pub fn same_person_pairs_are_close_and_different_people_far(
    p: &mut FacePipeline,
    threshold: f32,
) -> f64 {
    let mut embedded = Vec::new();
    let mut no_face = Vec::new();
    for (path, who) in people() {
        match embed_one(p, &photo(&path)) {
            Some(e) => {
                assert_eq!(e.values().len(), e.model().dimension);
                embedded.push((path, who, e));
            }
            None => no_face.push(path),
        }
    }
    println!(
        "{}: embedded {} photos; no face in {:?}",
        p.model().id,
        embedded.len(),
        no_face
    );
    assert!(no_face.iter().all(|p| is_partial(p)), "{no_face:?}");

    let (mut tp, mut fn_, mut tn, mut fp) = (0, 0, 0, 0);
    let mut errors = Vec::new();
    // The range of each kind's distances, with the pair at each end.
    let mut same = Extremes::default();
    let mut different = Extremes::default();
    for i in 0..embedded.len() {
        for j in i + 1..embedded.len() {
            let (pa, wa, ea) = &embedded[i];
            let (pb, wb, eb) = &embedded[j];
            let d = ea.distance(eb).unwrap();
            if wa == wb { &mut same } else { &mut different }.add(d, pa, pb);
            match (wa == wb, d < threshold) {
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
        "pairs at {threshold}: {total}; same-person: {tp} under / {fn_} over; different: {tn} over / {fp} under"
    );
    println!("same person: {same}");
    println!("different people: {different}");
    for e in errors.iter().take(30) {
        println!("  {e}");
    }
    let rate = wrong as f64 / total as f64;
    println!("wrong: {wrong} ({:.2}%)", 100.0 * rate);
    assert!(rate <= 0.02, "{:.2}% of pairs wrong", 100.0 * rate);
    rate
}

/// A photo stored sideways with an EXIF orientation tag is decoded upright:
/// same face, same box, same embedding as the upright photo (within 0.1,
/// the JPEG re-encoding's own effect). Returns how many faces the detector
/// finds in the same sideways pixels without the tag.
pub fn exif_rotated_photo_is_found_upright(p: &mut FacePipeline) -> usize {
    let upright = decode(
        &photo("people/obama/face_recognition_obama.jpg"),
        &Default::default(),
    )
    .unwrap()
    .image;
    // A camera held sideways stores the pixels turned 90° and tags the file
    // with orientation 6 ("rotate 90° clockwise to display").
    let stored = imageops::rotate270(&upright);
    let plain = jpeg(&stored);
    let mut tagged = plain[..2].to_vec(); // SOI
    tagged.extend(exif_orientation_segment(6));
    tagged.extend_from_slice(&plain[2..]);

    let decoded = decode(&tagged, &Default::default()).unwrap();
    assert!(decoded.reoriented);
    assert_eq!(decoded.image.dimensions(), upright.dimensions());

    let sideways = p.analyze(&plain).unwrap().faces.len();
    println!(
        "{}: faces in the untagged sideways photo: {sideways}",
        p.detector_name()
    );

    let reference = embed_one(p, &jpeg(&upright)).unwrap();
    let rotated = embed_one(p, &tagged).expect("no face in the EXIF-rotated photo");
    let d = reference.distance(&rotated).unwrap();
    println!("upright vs EXIF-rotated: {d:.4}");
    // Both files are re-encoded JPEGs whose 8x8 blocks fall differently on
    // the face, which alone moves the embedding a little.
    assert!(d < 0.1, "{d}");

    let a = p.analyze(&jpeg(&upright)).unwrap();
    let b = p.analyze(&tagged).unwrap();
    let iou = a.faces[0].detection.bbox.iou(&b.faces[0].detection.bbox);
    println!("box IoU upright vs EXIF-rotated: {iou:.3}");
    assert!(iou > 0.9, "{iou}");
    sideways
}

/// The smallest and largest of some pair distances, and the pairs.
#[derive(Default)]
struct Extremes {
    count: usize,
    min: Option<(f32, String, String)>,
    max: Option<(f32, String, String)>,
}

impl Extremes {
    fn add(&mut self, d: f32, a: &str, b: &str) {
        self.count += 1;
        if self.min.as_ref().is_none_or(|m| d < m.0) {
            self.min = Some((d, a.into(), b.into()));
        }
        if self.max.as_ref().is_none_or(|m| d > m.0) {
            self.max = Some((d, a.into(), b.into()));
        }
    }
}

impl std::fmt::Display for Extremes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} pairs", self.count)?;
        if let (Some(min), Some(max)) = (&self.min, &self.max) {
            write!(
                f,
                ", min {:.4} ({} / {}), max {:.4} ({} / {})",
                min.0, min.1, min.2, max.0, max.1, max.2
            )?;
        }
        Ok(())
    }
}
