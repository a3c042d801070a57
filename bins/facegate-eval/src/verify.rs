//! 1:1 verification on LFW's View 2 pairs: the standard 10-fold accuracy
//! and accuracy at fixed thresholds.
//!
//! Protocol: for each fold, the threshold that maximises accuracy on the
//! other nine folds is applied to it; the report is the mean ± standard
//! deviation of the ten test accuracies. A pair is a match when its
//! distance is strictly under the threshold.

use serde::Serialize;

/// One scored pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Fold, 1–10.
    pub fold: u8,
    /// Distance in the model's metric (smaller is more alike).
    pub distance: f32,
    /// Same person.
    pub same: bool,
}

/// One fold's result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Fold {
    /// Fold, 1–10.
    pub fold: u8,
    /// Threshold chosen on the other folds.
    pub threshold: f32,
    /// Accuracy on this fold at that threshold.
    pub accuracy: f64,
}

/// The 10-fold result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenFold {
    /// Per fold.
    pub folds: Vec<Fold>,
    /// Mean test accuracy.
    pub mean: f64,
    /// Sample standard deviation (n − 1) of the test accuracies.
    pub std: f64,
    /// Mean of the chosen thresholds.
    pub threshold_mean: f32,
}

/// Fraction of `pairs` decided correctly at `threshold`.
pub fn accuracy_at(pairs: &[Scored], threshold: f32) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let correct = pairs
        .iter()
        .filter(|p| (p.distance < threshold) == p.same)
        .count();
    correct as f64 / pairs.len() as f64
}

/// The threshold with the best accuracy on `pairs`: the midpoint of the
/// widest best gap between consecutive sorted distances (any threshold in
/// that gap gives the same accuracy; the midpoint is the least arbitrary).
pub fn best_threshold(pairs: &[Scored]) -> f32 {
    let mut sorted: Vec<Scored> = pairs.to_vec();
    sorted.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    // With the threshold just above sorted[i-1] and at most sorted[i], the
    // first i pairs match. correct(i) = same among first i + different after.
    let total_diff = sorted.iter().filter(|p| !p.same).count() as i64;
    let mut correct = total_diff; // i = 0: nothing matches
    let (mut best, mut best_i) = (correct, 0usize);
    for (i, p) in sorted.iter().enumerate() {
        correct += if p.same { 1 } else { -1 };
        let k = i + 1;
        // Only cut between distinct distances.
        let cuttable = k == sorted.len() || sorted[k].distance > p.distance;
        if cuttable && correct > best {
            best = correct;
            best_i = k;
        }
    }
    match best_i {
        0 => sorted.first().map_or(0.0, |p| p.distance),
        k if k == sorted.len() => sorted[k - 1].distance + 1e-6,
        k => (sorted[k - 1].distance + sorted[k].distance) / 2.0,
    }
}

/// The standard 10-fold protocol over folds 1–10.
pub fn ten_fold(pairs: &[Scored]) -> TenFold {
    let mut folds = Vec::new();
    for fold in 1..=10u8 {
        let train: Vec<Scored> = pairs.iter().copied().filter(|p| p.fold != fold).collect();
        let test: Vec<Scored> = pairs.iter().copied().filter(|p| p.fold == fold).collect();
        if test.is_empty() {
            continue;
        }
        let threshold = best_threshold(&train);
        folds.push(Fold {
            fold,
            threshold,
            accuracy: accuracy_at(&test, threshold),
        });
    }
    let n = folds.len().max(1) as f64;
    let mean = folds.iter().map(|f| f.accuracy).sum::<f64>() / n;
    let var = folds
        .iter()
        .map(|f| (f.accuracy - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0).max(1.0);
    let threshold_mean = (folds.iter().map(|f| f64::from(f.threshold)).sum::<f64>() / n) as f32;
    TenFold {
        folds,
        mean,
        std: var.sqrt(),
        threshold_mean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_pairs_are_all_correct() {
        let pairs: Vec<Scored> = (0..100)
            .map(|i| Scored {
                fold: (i % 10 + 1) as u8,
                distance: if i % 2 == 0 { 0.3 } else { 0.8 } + (i as f32) * 1e-4,
                same: i % 2 == 0,
            })
            .collect();
        let t = best_threshold(&pairs);
        assert!(t > 0.31 && t < 0.8, "{t}");
        let r = ten_fold(&pairs);
        assert_eq!(r.folds.len(), 10);
        assert_eq!(r.mean, 1.0);
        assert_eq!(accuracy_at(&pairs, 0.0), 0.5);
    }
}
