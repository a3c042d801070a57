//! Distance functions in each model's own metric, for exact search in Rust.
//!
//! The SQLite store ranks templates here (PostgreSQL ranks them in pgvector),
//! and the benchmark uses the same functions as its brute-force reference.
//! They must agree with pgvector: Euclidean is the plain L2 norm of the
//! difference (`<->`), cosine is `1 - cos(a, b)` (`<=>`).

use crate::types::Metric;

/// Distance between two equal-length vectors in `metric`.
pub fn distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Metric::Euclidean => squared_l2(a, b).sqrt(),
        Metric::Cosine => cosine(a, b),
    }
}

/// Squared L2 distance; monotone in L2, so ranking can skip the square root.
pub fn squared_l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = x - y;
            d * d
        })
        .sum()
}

/// Cosine distance `1 - a·b / (|a| |b|)` (computed in f64 like pgvector).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    let sim = dot / (na.sqrt() * nb.sqrt());
    (1.0 - sim.clamp(-1.0, 1.0)) as f32
}

/// Encodes an embedding as the SQLite BLOB layout: little-endian f32.
pub fn to_le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Decodes the SQLite BLOB layout into `out` (cleared first).
pub fn from_le_bytes_into(bytes: &[u8], out: &mut Vec<f32>) {
    out.clear();
    out.extend(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euclidean_and_cosine() {
        assert_eq!(distance(Metric::Euclidean, &[0.0, 0.0], &[3.0, 4.0]), 5.0);
        assert!(distance(Metric::Cosine, &[1.0, 0.0], &[2.0, 0.0]).abs() < 1e-6);
        assert!((distance(Metric::Cosine, &[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn blob_round_trip() {
        let v = vec![1.5f32, -0.25, f32::MIN_POSITIVE];
        let mut out = Vec::new();
        from_le_bytes_into(&to_le_bytes(&v), &mut out);
        assert_eq!(out, v);
    }
}
