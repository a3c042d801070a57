//! Prints the faces in a photo and the embedding of each.
//!
//! ```text
//! cargo run --release -p face-core --example faces -- photo.jpg [--cnn]
//! ```
//! Models are found as the library documents (`scripts/fetch-models.sh`
//! puts them in `./models`).

use face_core::models::ModelLocator;
use face_core::{dlib, PipelineOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: faces PHOTO [--cnn]");
        std::process::exit(2);
    };
    let kind = if args.any(|a| a == "--cnn") {
        dlib::DetectorKind::Cnn
    } else {
        dlib::DetectorKind::Hog
    };
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut pipeline = dlib::pipeline(&ModelLocator::new(None), kind, PipelineOptions::default())?;
    let analysis = pipeline.analyze(&bytes)?;
    let model = pipeline.model();
    println!(
        "{path}: {}x{}, {} face(s); detector {}, model {} ({}-D, {})",
        analysis.width,
        analysis.height,
        analysis.faces.len(),
        pipeline.detector_name(),
        model.id,
        model.dimension,
        model.metric.as_str()
    );
    for (i, face) in analysis.faces.iter().enumerate() {
        let b = face.detection.bbox;
        println!(
            "face {i}: box ({:.0}, {:.0}) {:.0}x{:.0}, score {:.2}, quality {:.2}{}",
            b.left,
            b.top,
            b.width,
            b.height,
            face.detection.score,
            face.quality.score,
            if face.quality.is_acceptable() {
                String::new()
            } else {
                format!(
                    " ({})",
                    face.quality
                        .issues
                        .iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }
        );
        let values: Vec<String> = face
            .embedding
            .values()
            .iter()
            .map(|v| format!("{v:.4}"))
            .collect();
        println!("  embedding [{}]", values.join(", "));
    }
    let t = analysis.timings;
    println!(
        "timings: decode {:?}, resize {:?}, detect {:?}, embed {:?}",
        t.decode, t.resize, t.detect, t.embed
    );
    Ok(())
}
