//! Untrusted request bodies into the server's JSON parsing (base64 images,
//! names, metadata), then the name and threshold checks: errors are fine,
//! panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = facegate::input::parse_json(data) {
        if let Some(name) = &req.name {
            let _ = face_service::UserName::parse(name);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = face_service::UserName::parse(text);
        let _ = facegate::input::decode_base64("image", text);
        if let Ok(v) = text.trim().parse::<f64>() {
            let _ = face_service::Threshold::parse(v, face_core::Metric::Cosine);
            let _ = face_service::Threshold::parse(v, face_core::Metric::Euclidean);
        }
    }
});
