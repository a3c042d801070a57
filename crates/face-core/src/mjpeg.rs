//! MJPEG: JPEG frames written back to back with no container (what many
//! IP cameras serve and what the shared test clips are). Splitting one
//! needs no decoder: each frame starts with the JPEG start-of-image marker
//! and an `FF` (the first segment's marker), `FF D8 FF`.

/// The frames of an MJPEG byte stream, in order. Bytes before the first
/// start-of-image marker are skipped; the last frame runs to the end.
pub fn frames(bytes: &[u8]) -> Vec<&[u8]> {
    let starts: Vec<usize> = bytes
        .windows(3)
        .enumerate()
        .filter(|(_, w)| *w == [0xFF, 0xD8, 0xFF])
        .map(|(i, _)| i)
        .collect();
    starts
        .iter()
        .zip(starts.iter().skip(1).chain([&bytes.len()]))
        .map(|(&a, &b)| &bytes[a..b])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::frames;

    #[test]
    fn splits_on_start_of_image() {
        let a = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 0xFF, 0xD9];
        let b = [0xFF, 0xD8, 0xFF, 0xDB, 3, 0xFF, 0xD9];
        let mut stream = vec![9, 9];
        stream.extend_from_slice(&a);
        stream.extend_from_slice(&b);
        assert_eq!(frames(&stream), vec![&a[..], &b[..]]);
        assert!(frames(&[1, 2, 3]).is_empty());
    }
}
