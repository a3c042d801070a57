//! Image decoding with hard limits and EXIF orientation.
//!
//! Owns the step from untrusted bytes to an upright RGB8 image. Limits are
//! checked from the header *before* any pixel data is decoded, so a
//! decompression bomb (a tiny file claiming 30000x30000 pixels) costs a few
//! bytes of parsing, not gigabytes. The decoder's own allocation limit backs
//! this up for formats whose headers can lie.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};
use serde::{Deserialize, Serialize};

use crate::FaceError;

/// Limits applied to every decoded image. All configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DecodeLimits {
    /// Largest accepted encoded size in bytes.
    pub max_bytes: u64,
    /// Largest accepted width in pixels.
    pub max_width: u32,
    /// Largest accepted height in pixels.
    pub max_height: u32,
    /// Largest accepted width × height.
    pub max_pixels: u64,
    /// Smallest accepted side; smaller images cannot hold a face.
    pub min_side: u32,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_bytes: 20 * 1024 * 1024,
            max_width: 12_000,
            max_height: 12_000,
            // 50 MP: a 48 MP phone photo passes; the decode buffer for the
            // worst case (RGBA16) stays under 400 MB.
            max_pixels: 50_000_000,
            min_side: 32,
        }
    }
}

/// A decoded, upright image with facts about its source.
#[derive(Debug, Clone)]
pub struct DecodedImage {
    /// The upright pixels (EXIF orientation applied).
    pub image: RgbImage,
    /// The detected container format.
    pub format: ImageFormat,
    /// Whether an EXIF orientation other than "normal" was applied.
    pub reoriented: bool,
}

/// Decodes JPEG, PNG, WebP or BMP bytes into an upright RGB8 image.
///
/// Grey, grey+alpha, RGBA and 16-bit inputs are converted to RGB8 (alpha is
/// dropped). Errors are typed: see [`FaceError`].
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedImage, FaceError> {
    if bytes.is_empty() {
        return Err(FaceError::EmptyInput);
    }
    if bytes.len() as u64 > limits.max_bytes {
        return Err(FaceError::LimitExceeded {
            limit: "encoded size",
            actual: bytes.len() as u64,
            max: limits.max_bytes,
        });
    }
    let format = image::guess_format(bytes).map_err(|_| FaceError::UnsupportedFormat)?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP | ImageFormat::Bmp
    ) {
        return Err(FaceError::UnsupportedFormat);
    }

    if format == ImageFormat::Jpeg {
        check_jpeg_complete(bytes)?;
    }

    // First read only the header, with no limits of the decoder's own, so
    // an oversized image gets our typed error naming the limit and value.
    let mut header = ImageReader::with_format(Cursor::new(bytes), format);
    header.no_limits();
    let (width, height) = header.into_dimensions().map_err(map_image_error)?;
    check_dimensions(width, height, limits)?;

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(decoder_limits(limits));
    let mut decoder = reader.into_decoder().map_err(map_image_error)?;

    // A broken EXIF block is not worth refusing the photo over: decode it as
    // stored.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut dynamic = DynamicImage::from_decoder(decoder).map_err(map_image_error)?;
    let reoriented = orientation != image::metadata::Orientation::NoTransforms;
    dynamic.apply_orientation(orientation);

    let image = match dynamic {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    };
    Ok(DecodedImage {
        image,
        format,
        reoriented,
    })
}

/// JPEG decoders fill a truncated image's missing rows with grey and call
/// it a success; a half-grey face would then be embedded as if real. Refuse
/// a JPEG unless its end-of-image marker follows the first scan. Walks the
/// marker segments (so an EXIF thumbnail's own markers are skipped) to the
/// first start-of-scan, then looks for `FF D9`, which entropy-coded data
/// cannot contain (a data byte `FF` is always stuffed as `FF 00`).
fn check_jpeg_complete(bytes: &[u8]) -> Result<(), FaceError> {
    let truncated = |what: &str| FaceError::CorruptImage(format!("truncated JPEG: {what}"));
    let mut pos = 2; // after SOI
    loop {
        while bytes.get(pos) == Some(&0xFF) && bytes.get(pos + 1) == Some(&0xFF) {
            pos += 1; // fill bytes
        }
        match (bytes.get(pos), bytes.get(pos + 1)) {
            (Some(0xFF), Some(0xDA)) => break,
            (Some(0xFF), Some(m)) if (0xD0..=0xD7).contains(m) || *m == 0x01 => pos += 2,
            (Some(0xFF), Some(_)) => {
                let len = match (bytes.get(pos + 2), bytes.get(pos + 3)) {
                    (Some(&hi), Some(&lo)) => usize::from(u16::from_be_bytes([hi, lo])),
                    _ => return Err(truncated("ends inside a segment header")),
                };
                pos += 2 + len;
            }
            (Some(_), Some(_)) => {
                return Err(FaceError::CorruptImage("malformed JPEG marker".into()))
            }
            _ => return Err(truncated("ends before the image data")),
        }
    }
    let scan = &bytes[pos..];
    if scan.windows(2).any(|w| w == [0xFF, 0xD9]) {
        Ok(())
    } else {
        Err(truncated("no end-of-image marker after the image data"))
    }
}

fn check_dimensions(width: u32, height: u32, limits: &DecodeLimits) -> Result<(), FaceError> {
    if width > limits.max_width {
        return Err(FaceError::LimitExceeded {
            limit: "width",
            actual: width.into(),
            max: limits.max_width.into(),
        });
    }
    if height > limits.max_height {
        return Err(FaceError::LimitExceeded {
            limit: "height",
            actual: height.into(),
            max: limits.max_height.into(),
        });
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(FaceError::LimitExceeded {
            limit: "pixel count",
            actual: pixels,
            max: limits.max_pixels,
        });
    }
    if width < limits.min_side || height < limits.min_side {
        return Err(FaceError::ImageTooSmall {
            width,
            height,
            min: limits.min_side,
        });
    }
    Ok(())
}

/// The decoder's own limits: a second line of defence for formats whose
/// header dimensions could disagree with the data.
fn decoder_limits(limits: &DecodeLimits) -> image::Limits {
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_width);
    l.max_image_height = Some(limits.max_height);
    // Worst case: 4 channels × 2 bytes, plus the RGB8 conversion.
    l.max_alloc = Some(limits.max_pixels.saturating_mul(8 + 3));
    l
}

fn map_image_error(err: image::ImageError) -> FaceError {
    match err {
        image::ImageError::Limits(l) => FaceError::DecoderLimit(l.to_string()),
        image::ImageError::Unsupported(_) => FaceError::UnsupportedFormat,
        other => FaceError::CorruptImage(other.to_string()),
    }
}
