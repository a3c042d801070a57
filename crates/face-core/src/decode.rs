//! Image decoding with hard limits and EXIF orientation.
//!
//! Owns the step from untrusted bytes to an upright RGB8 image. Limits are
//! checked from the header *before* any pixel data is decoded, so a
//! decompression bomb (a tiny file claiming 30000x30000 pixels) costs a few
//! bytes of parsing, not gigabytes. The decoder's own allocation limit backs
//! this up for formats whose headers can lie.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};
use serde::{Deserialize, Serialize};

use crate::resize::{fit_within, resize_rgb};
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
    /// Largest width × height decoded in full: every format but a JPEG
    /// large enough for the reduced-scale path. A full decode holds every
    /// pixel (up to 8 bytes each, plus the RGB8 copy), so this bounds a
    /// worker's decode memory (16 MP: about 180 MB worst case, against
    /// about 550 MB at `max_pixels`).
    pub max_full_decode_pixels: u64,
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
            max_full_decode_pixels: 16_000_000,
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
    let (format, width, height) = inspect(bytes, limits)?;
    decode_full(bytes, format, width, height, limits)
}

/// A photo decoded straight to a working copy no larger than a given side.
#[derive(Debug, Clone)]
pub struct ScaledImage {
    /// The upright working copy; its longest side is at most the requested
    /// maximum.
    pub image: RgbImage,
    /// Factor from working-copy pixels to original pixels (≥ 1).
    pub scale: f32,
    /// Width of the upright original.
    pub width: u32,
    /// Height of the upright original.
    pub height: u32,
    /// The detected container format.
    pub format: ImageFormat,
    /// Whether an EXIF orientation other than "normal" was applied.
    pub reoriented: bool,
}

/// Decodes a photo to an upright working copy whose longest side is at
/// most `max_side`.
///
/// A large JPEG is decoded at 1/2, 1/4 or 1/8 scale inside the decoder
/// (the inverse DCT computes fewer pixels), so a 12 MP phone photo costs a
/// fraction of a full decode; the rest is scaled down with a fast filter.
/// Other formats, and JPEGs near the target size, decode in full first.
pub fn decode_scaled(
    bytes: &[u8],
    limits: &DecodeLimits,
    max_side: u32,
) -> Result<ScaledImage, FaceError> {
    let (format, width, height) = inspect(bytes, limits)?;
    let max_side = max_side.max(limits.min_side).max(1);
    if format == ImageFormat::Jpeg && width.max(height) >= max_side.saturating_mul(2) {
        if let Some(scaled) = decode_jpeg_reduced(bytes, width, height, max_side)? {
            return Ok(scaled);
        }
    }
    let full = decode_full(bytes, format, width, height, limits)?;
    let (w, h) = full.image.dimensions();
    let (tw, th) = fit_within(w, h, max_side);
    let (image, scale) = if (tw, th) == (w, h) {
        (full.image, 1.0)
    } else {
        (resize_rgb(&full.image, tw, th), w as f32 / tw as f32)
    };
    Ok(ScaledImage {
        image,
        scale,
        width: w,
        height: h,
        format,
        reoriented: full.reoriented,
    })
}

/// Checks everything that can be checked without decoding pixels: size,
/// format, JPEG completeness, header dimensions. Returns the format and the
/// stored (not yet reoriented) dimensions.
fn inspect(bytes: &[u8], limits: &DecodeLimits) -> Result<(ImageFormat, u32, u32), FaceError> {
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
    // Read only the header, with no limits of the decoder's own, so an
    // oversized image gets our typed error naming the limit and value.
    let mut header = ImageReader::with_format(Cursor::new(bytes), format);
    header.no_limits();
    let (width, height) = header.into_dimensions().map_err(map_image_error)?;
    check_dimensions(width, height, limits)?;
    Ok((format, width, height))
}

fn decode_full(
    bytes: &[u8],
    format: ImageFormat,
    width: u32,
    height: u32,
    limits: &DecodeLimits,
) -> Result<DecodedImage, FaceError> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_full_decode_pixels {
        return Err(FaceError::LimitExceeded {
            limit: "pixel count (formats decoded in full; a JPEG may be larger)",
            actual: pixels,
            max: limits.max_full_decode_pixels,
        });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(decoder_limits(limits));
    let mut decoder = reader.into_decoder().map_err(map_image_error)?;

    // A broken EXIF block is not worth refusing the photo over: decode it as
    // stored.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut dynamic = DynamicImage::from_decoder(decoder).map_err(map_image_error)?;
    let reoriented = orientation != Orientation::NoTransforms;
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

/// Decodes a large JPEG at a reduced scale. `None` when the JPEG's pixel
/// format is one this path does not handle (CMYK, 16-bit), so the caller
/// falls back to a full decode.
fn decode_jpeg_reduced(
    bytes: &[u8],
    width: u32,
    height: u32,
    max_side: u32,
) -> Result<Option<ScaledImage>, FaceError> {
    let corrupt = |e: jpeg_decoder::Error| FaceError::CorruptImage(e.to_string());
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.read_info().map_err(corrupt)?;
    // Ask for the largest reduction that still leaves at least max_side/2
    // on the longest side; the fast resize below takes it the rest of the
    // way.
    let (rw, rh) = fit_within(width, height, (max_side / 2).max(1));
    let clamp16 = |v: u32| v.min(u32::from(u16::MAX)) as u16;
    let (dw, dh) = decoder.scale(clamp16(rw), clamp16(rh)).map_err(corrupt)?;
    let Some(info) = decoder.info() else {
        return Ok(None);
    };
    if !matches!(
        info.pixel_format,
        jpeg_decoder::PixelFormat::RGB24 | jpeg_decoder::PixelFormat::L8
    ) {
        return Ok(None);
    }
    let orientation = decoder
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let pixels = decoder.decode().map_err(corrupt)?;
    let (dw, dh) = (u32::from(dw), u32::from(dh));
    let stored = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => {
            let grey = image::GrayImage::from_raw(dw, dh, pixels);
            grey.map(|g| DynamicImage::ImageLuma8(g).to_rgb8())
        }
        _ => RgbImage::from_raw(dw, dh, pixels),
    }
    .ok_or_else(|| {
        FaceError::CorruptImage("JPEG decoded to fewer pixels than its header declares".into())
    })?;

    let (tw, th) = fit_within(dw, dh, max_side);
    let stored = if (tw, th) == (dw, dh) {
        stored
    } else {
        resize_rgb(&stored, tw, th)
    };
    let mut dynamic = DynamicImage::ImageRgb8(stored);
    dynamic.apply_orientation(orientation);
    let image = match dynamic {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    };
    let swapped = image.width() != tw;
    let (ow, oh) = if swapped {
        (height, width)
    } else {
        (width, height)
    };
    Ok(Some(ScaledImage {
        scale: ow as f32 / image.width() as f32,
        image,
        width: ow,
        height: oh,
        format: ImageFormat::Jpeg,
        reoriented: orientation != Orientation::NoTransforms,
    }))
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
    let pixels = limits.max_full_decode_pixels.min(limits.max_pixels);
    l.max_alloc = Some(pixels.saturating_mul(8 + 3));
    l
}

fn map_image_error(err: image::ImageError) -> FaceError {
    match err {
        image::ImageError::Limits(l) => FaceError::DecoderLimit(l.to_string()),
        image::ImageError::Unsupported(_) => FaceError::UnsupportedFormat,
        other => FaceError::CorruptImage(other.to_string()),
    }
}
