//! Fast downscaling of RGB8 images (SIMD convolution via
//! `fast_image_resize`): the working copy of a large photo is made on every
//! request, and `image`'s own resizers cost 40 ms+ for a 3 MP photo where
//! this costs a few.

use fast_image_resize::{images::Image, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{imageops, RgbImage};

/// `image` scaled to `width`×`height` with a bilinear (triangle) filter,
/// which averages over the whole footprint when shrinking.
pub fn resize_rgb(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    let fast = || -> Option<RgbImage> {
        let src = fast_image_resize::images::ImageRef::new(
            image.width(),
            image.height(),
            image.as_raw(),
            PixelType::U8x3,
        )
        .ok()?;
        let mut dst = Image::new(width, height, PixelType::U8x3);
        let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
        Resizer::new().resize(&src, &mut dst, &opts).ok()?;
        RgbImage::from_raw(width, height, dst.into_vec())
    };
    // The fast path cannot fail for a well-formed RgbImage; the fallback
    // keeps this function total anyway.
    fast().unwrap_or_else(|| imageops::resize(image, width, height, imageops::FilterType::Triangle))
}

/// The size that fits `(width, height)` within `max_side` on its longest
/// side, keeping the aspect ratio; unchanged when it already fits.
pub fn fit_within(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= max_side {
        return (width, height);
    }
    let s = max_side as f64 / longest as f64;
    (
        ((width as f64 * s).round() as u32).max(1),
        ((height as f64 * s).round() as u32).max(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_aspect_and_leaves_small_images() {
        assert_eq!(fit_within(4032, 3024, 1024), (1024, 768));
        assert_eq!(fit_within(3024, 4032, 1024), (768, 1024));
        assert_eq!(fit_within(640, 480, 1024), (640, 480));
    }

    #[test]
    fn resize_averages_colour() {
        let img = RgbImage::from_pixel(100, 50, image::Rgb([10, 200, 30]));
        let small = resize_rgb(&img, 20, 10);
        assert_eq!(small.dimensions(), (20, 10));
        assert_eq!(small.get_pixel(5, 5).0, [10, 200, 30]);
    }
}
