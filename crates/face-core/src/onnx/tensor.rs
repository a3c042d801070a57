//! Filling ONNX Runtime input tensors from RGB8 pixels: one colour
//! channel of interleaved pixels, normalised as `(value - mean) / std`, into
//! a plane of `f32`. Every detector and embedder input passes through here
//! (a 640x640 detector input is 1.2 million values per photo), so it has an
//! SSSE3 path that takes sixteen pixels at a time; it performs the same
//! IEEE operations as the scalar formula, so both give the same floats.

/// Appends channel `c` (0, 1 or 2) of the interleaved RGB8 `pixels`, each
/// value `v` as `(v - mean) / std`, to `out`.
pub fn push_channel(out: &mut Vec<f32>, pixels: &[u8], c: usize, mean: f32, std: f32) {
    let c = c.min(2);
    let whole = pixels.len() / 48 * 48;
    out.reserve(pixels.len() / 3);
    #[cfg(target_arch = "x86_64")]
    if whole > 0 && std::arch::is_x86_feature_detected!("ssse3") {
        // SAFETY: the CPU has SSSE3 (checked just above).
        unsafe { push_channel_ssse3(out, &pixels[..whole], c, mean, std) };
        push_channel_scalar(out, &pixels[whole..], c, mean, std);
        return;
    }
    push_channel_scalar(out, pixels, c, mean, std);
}

fn push_channel_scalar(out: &mut Vec<f32>, pixels: &[u8], c: usize, mean: f32, std: f32) {
    out.extend(
        pixels
            .chunks_exact(3)
            .map(|px| (f32::from(px[c]) - mean) / std),
    );
}

/// Sixteen pixels (48 bytes) at a time; `pixels.len()` is a multiple of 48.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
unsafe fn push_channel_ssse3(out: &mut Vec<f32>, pixels: &[u8], c: usize, mean: f32, std: f32) {
    use std::arch::x86_64::*;
    // For each of the three 16-byte loads, the byte of pixel i's channel c
    // that it holds, or 0x80 (pshufb's "zero") where it holds none.
    let masks: [[u8; 16]; 3] = std::array::from_fn(|part| {
        std::array::from_fn(|i| {
            let at = 3 * i + c;
            if at / 16 == part {
                (at % 16) as u8
            } else {
                0x80
            }
        })
    });
    let load = |bytes: &[u8]| {
        // SAFETY: `bytes` is 16 bytes long (see the calls); loadu has no
        // alignment requirement.
        unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
    };
    let (m0, m1, m2) = (load(&masks[0]), load(&masks[1]), load(&masks[2]));
    let (mean, std) = (_mm_set1_ps(mean), _mm_set1_ps(std));
    let zero = _mm_setzero_si128();
    let mut values = [0.0f32; 16];
    for chunk in pixels.chunks_exact(48) {
        let bytes = _mm_or_si128(
            _mm_or_si128(
                _mm_shuffle_epi8(load(&chunk[..16]), m0),
                _mm_shuffle_epi8(load(&chunk[16..32]), m1),
            ),
            _mm_shuffle_epi8(load(&chunk[32..]), m2),
        );
        let lo = _mm_unpacklo_epi8(bytes, zero);
        let hi = _mm_unpackhi_epi8(bytes, zero);
        for (k, words) in [
            _mm_unpacklo_epi16(lo, zero),
            _mm_unpackhi_epi16(lo, zero),
            _mm_unpacklo_epi16(hi, zero),
            _mm_unpackhi_epi16(hi, zero),
        ]
        .into_iter()
        .enumerate()
        {
            let v = _mm_div_ps(_mm_sub_ps(_mm_cvtepi32_ps(words), mean), std);
            // SAFETY: `values` has room for 16 floats, k < 4; storeu has no
            // alignment requirement.
            unsafe { _mm_storeu_ps(values.as_mut_ptr().add(4 * k), v) };
        }
        out.extend_from_slice(&values);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The formula, value by value.
    fn reference(pixels: &[u8], c: usize, mean: f32, std: f32) -> Vec<u32> {
        pixels
            .chunks_exact(3)
            .map(|px| ((f32::from(px[c]) - mean) / std).to_bits())
            .collect()
    }

    #[test]
    fn every_path_gives_the_formula_bit_for_bit() {
        // Lengths with and without a remainder after the 16-pixel blocks,
        // every byte value, and the normalisations FaceGate uses.
        let pixels: Vec<u8> = (0..3 * 1000)
            .map(|i| ((i * 7 + i / 5) % 256) as u8)
            .collect();
        for n in [0usize, 1, 15, 16, 17, 112 * 112 / 100, 333, 1000] {
            let px = &pixels[..3 * n];
            for (mean, std) in [(0.0, 1.0), (127.5, 128.0), (127.5, 127.5), (3.3, 0.7)] {
                for c in 0..3 {
                    let mut out = vec![42.0];
                    push_channel(&mut out, px, c, mean, std);
                    assert_eq!(out[0], 42.0, "appends, keeps what was there");
                    let got: Vec<u32> = out[1..].iter().map(|v| v.to_bits()).collect();
                    assert_eq!(
                        got,
                        reference(px, c, mean, std),
                        "n {n}, c {c}, {mean}/{std}"
                    );
                }
            }
        }
    }
}
