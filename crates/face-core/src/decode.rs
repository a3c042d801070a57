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

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(decoder_limits(limits));
    let mut decoder = reader.into_decoder().map_err(map_image_error)?;

    let (width, height) = decoder.dimensions();
    check_dimensions(width, height, limits)?;

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
