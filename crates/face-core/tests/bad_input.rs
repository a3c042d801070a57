//! Hostile and broken inputs: each gives a typed error, none panics, and
//! memory stays bounded (a decompression bomb is refused from its header).
#![allow(clippy::unwrap_used)]

mod common;

use face_core::image::{codecs::png::PngEncoder, ExtendedColorType, ImageEncoder};
use face_core::{decode, DecodeLimits, FaceError};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let pixels = vec![200u8; (width * height * 3) as usize];
    PngEncoder::new(&mut out)
        .write_image(&pixels, width, height, ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// A PNG whose header claims `width`×`height` with a tiny, bogus body.
fn png_bomb_header(width: u32, height: u32) -> Vec<u8> {
    let mut real = png(1, 1);
    // IHDR data starts at byte 16: width, height (big endian). Patch them
    // and fix the chunk's CRC so only the size is wrong.
    real[16..20].copy_from_slice(&width.to_be_bytes());
    real[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&real[12..29]);
    real[29..33].copy_from_slice(&crc.to_be_bytes());
    real
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn broken_inputs_are_typed_errors_with_bounded_memory() {
    let limits = DecodeLimits::default();
    let before = peak_rss_kib();

    assert!(matches!(decode(&[], &limits), Err(FaceError::EmptyInput)));

    let text = b"name,identity\nthis is a text file, not a photo\n";
    assert!(matches!(
        decode(text, &limits),
        Err(FaceError::UnsupportedFormat)
    ));

    let tiny = decode(&png(1, 1), &limits);
    assert!(
        matches!(
            tiny,
            Err(FaceError::ImageTooSmall {
                width: 1,
                height: 1,
                ..
            })
        ),
        "{:?}",
        tiny.map(|d| d.image.dimensions())
    );

    let bomb = decode(&png_bomb_header(30_000, 30_000), &limits);
    match bomb {
        Err(FaceError::LimitExceeded { limit, actual, max }) => {
            assert_eq!(limit, "width");
            assert_eq!(actual, 30_000);
            assert_eq!(max, u64::from(limits.max_width));
        }
        other => panic!(
            "bomb not refused: {:?}",
            other.map(|d| d.image.dimensions())
        ),
    }
    // Within the width limit but over the pixel-count limit.
    let wide = decode(&png_bomb_header(11_000, 11_000), &limits);
    assert!(
        matches!(
            wide,
            Err(FaceError::LimitExceeded {
                limit: "pixel count",
                actual: 121_000_000,
                ..
            })
        ),
        "{:?}",
        wide.map(|d| d.image.dimensions())
    );

    let jpeg = common::photo("people/obama/face_recognition_obama.jpg");
    for cut in [10, 100, jpeg.len() / 3, jpeg.len() / 2] {
        let truncated = decode(&jpeg[..cut], &limits);
        assert!(
            matches!(truncated, Err(FaceError::CorruptImage(_))),
            "JPEG cut at {cut} of {}: {:?}",
            jpeg.len(),
            truncated.map(|d| d.image.dimensions())
        );
    }
    let whole_png = png(64, 64);
    let cut_png = decode(&whole_png[..whole_png.len() - 20], &limits);
    assert!(
        matches!(cut_png, Err(FaceError::CorruptImage(_))),
        "{:?}",
        cut_png.map(|d| d.image.dimensions())
    );

    let too_big = DecodeLimits {
        max_bytes: 1000,
        ..limits
    };
    assert!(matches!(
        decode(&jpeg, &too_big),
        Err(FaceError::LimitExceeded {
            limit: "encoded size",
            ..
        })
    ));

    // Every error above is the caller's fault (a 4xx), with a message.
    for e in [
        decode(&[], &limits).unwrap_err(),
        decode(text, &limits).unwrap_err(),
        decode(&png_bomb_header(30_000, 30_000), &limits).unwrap_err(),
    ] {
        assert!(e.is_bad_input());
        assert!(!e.to_string().is_empty());
    }

    let grown_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
    println!("peak memory growth: {grown_mib} MiB");
    assert!(
        grown_mib < 64,
        "bad inputs grew peak memory by {grown_mib} MiB"
    );
}

#[test]
fn pipeline_reports_no_face_for_a_blank_image_without_error() {
    let analysis = common::pipeline().analyze(&png(320, 240)).unwrap();
    assert!(analysis.faces.is_empty());
    assert_eq!((analysis.width, analysis.height), (320, 240));
}

/// A PNG decodes in full: above `max_full_decode_pixels` it is refused from
/// its header, before any pixel buffer exists (the old 50 MP bar let a
/// 16-bit RGBA PNG cost about 550 MB per worker); under it, it decodes.
#[test]
fn formats_decoded_in_full_have_their_own_pixel_limit() {
    let limits = DecodeLimits::default();
    assert_eq!(limits.max_full_decode_pixels, 16_000_000);
    let before = peak_rss_kib();
    let big = png(5000, 4000);
    let refused = decode(&big, &limits);
    assert!(
        matches!(
            refused,
            Err(FaceError::LimitExceeded {
                actual: 20_000_000,
                max: 16_000_000,
                ..
            })
        ),
        "{:?}",
        refused.map(|d| d.image.dimensions())
    );
    assert!(refused.is_err_and(|e| e.is_bad_input()));
    let ok = decode(&png(4000, 4000), &limits).unwrap();
    assert_eq!(ok.image.dimensions(), (4000, 4000));
    println!(
        "peak memory growth: {} MiB",
        (peak_rss_kib().saturating_sub(before)) / 1024
    );
}
