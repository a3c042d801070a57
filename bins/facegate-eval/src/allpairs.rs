//! Every same-person and every different-person pair of the dataset.
//!
//! LFW's 13,233 images make about 87.5 million pairs; storing their
//! distances would take 350 MB and sorting them seconds more, so each worker
//! thread fills fine histograms instead (bin width 1e-4 in distance, far
//! below any threshold's meaningful precision) and the histograms are summed.
//! A threshold for a target false-match rate is then the largest bin edge
//! at which the share of different-person pairs strictly under it is at
//! most the target: exact at that edge, and conservative.
//!
//! Both the model's own metric and cosine distance are histogrammed in the
//! same pass, so the report can show what the reference design's cosine
//! threshold does on the same embeddings. The closest different-person
//! pairs are kept too: at the strictest rates they are mostly label noise
//! or duplicate photos in the dataset, worth a look before trusting a
//! threshold set by them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use face_core::Metric;
use serde::Serialize;

/// Histogram bin width, in distance units.
pub const BIN_WIDTH: f64 = 1e-4;
/// Distances at or over this land in the last bin (Euclidean distances of
/// dlib vectors stay under 2; cosine distances are at most 2).
pub const MAX_DISTANCE: f64 = 4.0;

/// Counts of distances in bins `[k·w, (k+1)·w)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Bin counts.
    pub counts: Vec<u64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; (MAX_DISTANCE / BIN_WIDTH) as usize],
        }
    }
}

impl Histogram {
    fn bin(d: f32) -> usize {
        let k = (f64::from(d) / BIN_WIDTH).floor();
        if k.is_nan() || k < 0.0 {
            0
        } else {
            (k as usize).min((MAX_DISTANCE / BIN_WIDTH) as usize - 1)
        }
    }

    /// Adds one distance.
    pub fn add(&mut self, d: f32) {
        self.counts[Self::bin(d)] += 1;
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// All counts.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Distances under the edge `k·w` (bins `0..k`).
    pub fn below_edge(&self, k: usize) -> u64 {
        self.counts[..k.min(self.counts.len())].iter().sum()
    }

    /// The share of distances strictly under `threshold` (to bin precision).
    pub fn share_below(&self, threshold: f32) -> f64 {
        let k = (f64::from(threshold) / BIN_WIDTH).round() as usize;
        self.below_edge(k) as f64 / self.total().max(1) as f64
    }
}

/// A rate-based operating point read off the histograms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatePoint {
    /// The rate asked for.
    pub target: f64,
    /// Largest bin edge whose FMR is at most the target.
    pub threshold: f32,
    /// FMR at the threshold.
    pub fmr: f64,
    /// Different-person pairs under the threshold.
    pub false_matches: u64,
    /// FNMR at the threshold.
    pub fnmr: f64,
}

/// A close different-person pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClosePair {
    /// Distance in the model's metric.
    pub distance: f32,
    /// Image index.
    pub a: usize,
    /// Image index.
    pub b: usize,
}

/// Same- and different-person histograms in one metric.
#[derive(Debug, Clone, Default)]
pub struct Split {
    /// Same-person pairs.
    pub genuine: Histogram,
    /// Different-person pairs.
    pub impostor: Histogram,
}

impl Split {
    fn merge(&mut self, other: &Split) {
        self.genuine.merge(&other.genuine);
        self.impostor.merge(&other.impostor);
    }

    /// The threshold for a target FMR, with its FNMR.
    pub fn at_fmr(&self, target: f64) -> RatePoint {
        let total = self.impostor.total().max(1);
        let allowed = (target * total as f64).floor() as u64;
        let mut cum = 0u64;
        let mut k = 0usize;
        for (i, &c) in self.impostor.counts.iter().enumerate() {
            if cum + c > allowed {
                break;
            }
            cum += c;
            k = i + 1;
        }
        self.point(k, target)
    }

    /// The operating point at the bin edge `k`.
    fn point(&self, k: usize, target: f64) -> RatePoint {
        let fm = self.impostor.below_edge(k);
        let gen_total = self.genuine.total().max(1);
        RatePoint {
            target,
            threshold: (k as f64 * BIN_WIDTH) as f32,
            fmr: fm as f64 / self.impostor.total().max(1) as f64,
            false_matches: fm,
            fnmr: (gen_total - self.genuine.below_edge(k)) as f64 / gen_total as f64,
        }
    }

    /// FMR and FNMR at a given threshold (rounded to a bin edge).
    pub fn at_threshold(&self, threshold: f32) -> RatePoint {
        let k = (f64::from(threshold) / BIN_WIDTH).round() as usize;
        let mut p = self.point(k, f64::NAN);
        p.target = p.fmr;
        p
    }

    /// The FMR at a threshold (to bin precision).
    pub fn share_below_impostor(&self, threshold: f32) -> f64 {
        self.impostor.share_below(threshold)
    }

    /// `(threshold, FMR, FNMR)` at every bin edge where either changes.
    pub fn curve(&self) -> Vec<(f32, f64, f64)> {
        let gt = self.genuine.total().max(1) as f64;
        let it = self.impostor.total().max(1) as f64;
        let (mut g, mut i) = (0u64, 0u64);
        let mut out = Vec::new();
        for (k, (&cg, &ci)) in self
            .genuine
            .counts
            .iter()
            .zip(&self.impostor.counts)
            .enumerate()
        {
            if cg == 0 && ci == 0 {
                continue;
            }
            g += cg;
            i += ci;
            out.push((
                ((k + 1) as f64 * BIN_WIDTH) as f32,
                i as f64 / it,
                1.0 - g as f64 / gt,
            ));
        }
        out
    }
}

/// The result of the all-pairs pass.
#[derive(Debug, Clone, Default)]
pub struct AllPairs {
    /// In the model's metric.
    pub model: Split,
    /// In cosine distance (for comparison with cosine thresholds).
    pub cosine: Split,
    /// The closest different-person pairs (model metric), closest first.
    pub closest_impostors: Vec<ClosePair>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// How many close different-person pairs to keep.
const KEEP_CLOSEST: usize = 25;

/// Sums of squared differences and of products, 8 lanes wide so the
/// compiler vectorises them.
#[inline]
fn sq_and_dot(a: &[f32], b: &[f32]) -> (f32, f32) {
    let mut sq = [0f32; 8];
    let mut dot = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            let d = x[l] - y[l];
            sq[l] += d * d;
            dot[l] += x[l] * y[l];
        }
    }
    let mut s: f32 = sq.iter().sum();
    let mut p: f32 = dot.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += (x - y) * (x - y);
        p += x * y;
    }
    (s, p)
}

/// Histograms every pair of `vectors` (row-major, `dim` wide) by
/// same/different `identity`, on `threads` threads.
pub fn all_pairs(
    vectors: &[f32],
    dim: usize,
    identity: &[u32],
    metric: Metric,
    threads: usize,
) -> AllPairs {
    let start = Instant::now();
    let n = identity.len();
    let norms: Vec<f32> = vectors
        .chunks_exact(dim)
        .map(|v| v.iter().map(|x| x * x).sum::<f32>().sqrt())
        .collect();
    let next = AtomicUsize::new(0);
    let total = Mutex::new(AllPairs::default());
    // Rows are handed out in small chunks from a counter: row i has n−i−1
    // pairs, so static splitting would leave threads idle at the end.
    const CHUNK: usize = 8;
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                let mut local = AllPairs::default();
                let mut closest: Vec<ClosePair> = Vec::new();
                let mut worst_kept = f32::INFINITY;
                loop {
                    let first = next.fetch_add(CHUNK, Ordering::Relaxed);
                    if first >= n {
                        break;
                    }
                    for i in first..(first + CHUNK).min(n) {
                        let a = &vectors[i * dim..(i + 1) * dim];
                        for j in i + 1..n {
                            let b = &vectors[j * dim..(j + 1) * dim];
                            let (sq, dot) = sq_and_dot(a, b);
                            let denom = norms[i] * norms[j];
                            let cos = if denom > 0.0 { 1.0 - dot / denom } else { 1.0 };
                            let d = match metric {
                                Metric::Euclidean => sq.sqrt(),
                                Metric::Cosine => cos,
                            };
                            if identity[i] == identity[j] {
                                local.model.genuine.add(d);
                                local.cosine.genuine.add(cos);
                            } else {
                                local.model.impostor.add(d);
                                local.cosine.impostor.add(cos);
                                if d < worst_kept || closest.len() < KEEP_CLOSEST {
                                    closest.push(ClosePair {
                                        distance: d,
                                        a: i,
                                        b: j,
                                    });
                                    if closest.len() > 4 * KEEP_CLOSEST {
                                        closest.sort_by(|x, y| x.distance.total_cmp(&y.distance));
                                        closest.truncate(KEEP_CLOSEST);
                                        worst_kept = closest[KEEP_CLOSEST - 1].distance;
                                    }
                                }
                            }
                        }
                    }
                }
                let mut t = total.lock().unwrap_or_else(|e| e.into_inner());
                t.model.merge(&local.model);
                t.cosine.merge(&local.cosine);
                t.closest_impostors.extend(closest);
            });
        }
    });
    let mut result = total.into_inner().unwrap_or_else(|e| e.into_inner());
    result
        .closest_impostors
        .sort_by(|x, y| x.distance.total_cmp(&y.distance));
    result.closest_impostors.truncate(KEEP_CLOSEST);
    result.seconds = start.elapsed().as_secs_f64();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_from_histograms() {
        // Four vectors on a line: ids 0,0,1,1.
        let v = [0.0f32, 0.0, 0.1, 0.0, 1.0, 0.0, 1.2, 0.0];
        let r = all_pairs(&v, 2, &[0, 0, 1, 1], Metric::Euclidean, 2);
        assert_eq!(r.model.genuine.total(), 2);
        assert_eq!(r.model.impostor.total(), 4);
        // Impostor distances 0.9, 1.0, 1.1, 1.2: FMR ≤ 0.25 allows one.
        let p = r.model.at_fmr(0.25);
        assert_eq!(p.false_matches, 1);
        assert!(
            p.threshold > 0.9 && p.threshold <= 1.0001,
            "{}",
            p.threshold
        );
        assert_eq!(p.fnmr, 0.0);
        assert_eq!(r.model.at_fmr(0.1).false_matches, 0);
        assert_eq!(r.closest_impostors[0].a, 1);
        assert_eq!(r.closest_impostors[0].b, 2);
    }
}
