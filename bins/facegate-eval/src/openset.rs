//! Open-set 1:N identification with held-out strangers.
//!
//! Protocol (repeated over several seeded rounds and pooled):
//! 1. Shuffle the people. The first `S` are *strangers* (never enrolled);
//!    the rest are candidates for the gallery, in shuffled order.
//! 2. A gallery of size `N` enrols the first `N` candidates with one
//!    template each: the person's first image.
//! 3. *Genuine probes*: the second image of every enrolled person who has
//!    one. A genuine probe fails (false negative) unless its nearest
//!    template is under the threshold AND is the right person.
//! 4. *Stranger probes*: the first image of every stranger. A stranger
//!    whose nearest template is under the threshold is a false positive.
//!
//! One probe image per person keeps a few heavily photographed people
//! (George W. Bush has 530 images) from dominating the rates. Galleries of
//! every size share the round's draw (nested prefixes), so one pass over
//! the largest gallery yields all sizes.
//!
//! LFW has 5,749 people, so with `S` strangers held out the largest
//! measurable gallery is `5,749 − S` distinct people. Sizes beyond that are
//! reported as not measurable here; the command extrapolates them from the
//! verification FMR curve and labels them so.

use serde::Serialize;

use crate::rng::SplitMix64;

/// Protocol settings.
#[derive(Debug, Clone)]
pub struct OpenSetConfig {
    /// Gallery sizes to measure.
    pub gallery_sizes: Vec<usize>,
    /// People held out as strangers in each round.
    pub strangers: usize,
    /// Rounds (each a fresh seeded draw), pooled.
    pub rounds: usize,
    /// Seed of the first round.
    pub seed: u64,
    /// The FPIR the threshold is chosen for.
    pub target_fpir: f64,
}

/// A probe's truth (`Some(gallery position)` for an enrolled person, `None`
/// for a stranger) and its nearest `(distance, gallery position)` within
/// each gallery size.
type ProbeOutcome = (Option<usize>, Vec<(f32, usize)>);

/// Nearest-template outcome of one probe.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Nearest {
    distance: f32,
    correct: bool,
}

/// The measured result at one gallery size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenSetResult {
    /// Enrolled people.
    pub gallery_size: usize,
    /// Stranger probes pooled over rounds.
    pub stranger_probes: usize,
    /// Genuine probes pooled over rounds.
    pub genuine_probes: usize,
    /// Threshold giving FPIR ≤ target.
    pub threshold: f32,
    /// FPIR at the threshold.
    pub fpir: f64,
    /// FNIR at the threshold.
    pub fnir: f64,
    /// Genuine probes whose nearest template is the wrong person, whatever
    /// the threshold (closed-set rank-1 error).
    pub rank1_error: f64,
    #[serde(skip)]
    stranger_nearest: Vec<f32>,
    #[serde(skip)]
    genuine_nearest: Vec<Nearest>,
}

impl OpenSetResult {
    /// FPIR and FNIR at another threshold.
    pub fn rates_at(&self, threshold: f32) -> (f64, f64) {
        let fp = self
            .stranger_nearest
            .iter()
            .filter(|&&d| d < threshold)
            .count();
        let ok = self
            .genuine_nearest
            .iter()
            .filter(|g| g.correct && g.distance < threshold)
            .count();
        (
            fp as f64 / self.stranger_nearest.len().max(1) as f64,
            1.0 - ok as f64 / self.genuine_nearest.len().max(1) as f64,
        )
    }
}

/// Runs the protocol. `vectors` is row-major, `dim` wide, one row per image;
/// `images_by_identity[p]` lists person `p`'s images in file order;
/// `distance` is the model's metric. Sizes larger than the people available
/// after holding out strangers are skipped (the caller reports them).
pub fn run(
    vectors: &[f32],
    dim: usize,
    images_by_identity: &[Vec<usize>],
    distance: impl Fn(&[f32], &[f32]) -> f32 + Sync,
    config: &OpenSetConfig,
    threads: usize,
) -> Vec<OpenSetResult> {
    let people = images_by_identity.len();
    let available = people.saturating_sub(config.strangers);
    let sizes: Vec<usize> = config
        .gallery_sizes
        .iter()
        .copied()
        .filter(|&n| n > 0 && n <= available)
        .collect();
    let Some(&largest) = sizes.iter().max() else {
        return Vec::new();
    };
    let row = |i: usize| &vectors[i * dim..(i + 1) * dim];
    // Per size: pooled stranger and genuine outcomes.
    let mut strangers: Vec<Vec<f32>> = vec![Vec::new(); sizes.len()];
    let mut genuine: Vec<Vec<Nearest>> = vec![Vec::new(); sizes.len()];
    for round in 0..config.rounds {
        let mut rng = SplitMix64::new(config.seed.wrapping_add(round as u64));
        let mut order: Vec<usize> = (0..people).collect();
        rng.shuffle(&mut order);
        let (held_out, candidates) = order.split_at(config.strangers);
        let gallery = &candidates[..largest];
        let templates: Vec<usize> = gallery.iter().map(|&p| images_by_identity[p][0]).collect();
        // Probes: (image, Some(gallery position) for genuine, None for stranger).
        let mut probes: Vec<(usize, Option<usize>)> = held_out
            .iter()
            .map(|&p| (images_by_identity[p][0], None))
            .collect();
        probes.extend(
            gallery
                .iter()
                .enumerate()
                .filter(|(_, &p)| images_by_identity[p].len() >= 2)
                .map(|(pos, &p)| (images_by_identity[p][1], Some(pos))),
        );
        // For each probe, the nearest template within each gallery prefix.
        let chunk = probes.len().div_ceil(threads.max(1)).max(1);
        let outcomes: Vec<Vec<ProbeOutcome>> = std::thread::scope(|s| {
            let handles: Vec<_> = probes
                .chunks(chunk)
                .map(|part| {
                    let (templates, sizes, row, distance) = (&templates, &sizes, &row, &distance);
                    s.spawn(move || {
                        part.iter()
                            .map(|&(image, truth)| {
                                let probe = row(image);
                                let mut best = (f32::INFINITY, usize::MAX);
                                let mut per_size = Vec::with_capacity(sizes.len());
                                let mut next_size = 0;
                                let mut sorted_sizes: Vec<(usize, usize)> =
                                    sizes.iter().copied().enumerate().collect();
                                sorted_sizes.sort_by_key(|&(_, n)| n);
                                let mut answers = vec![(f32::INFINITY, usize::MAX); sizes.len()];
                                for (pos, &t) in templates.iter().enumerate() {
                                    let d = distance(probe, row(t));
                                    if d < best.0 {
                                        best = (d, pos);
                                    }
                                    while next_size < sorted_sizes.len()
                                        && sorted_sizes[next_size].1 == pos + 1
                                    {
                                        answers[sorted_sizes[next_size].0] = best;
                                        next_size += 1;
                                    }
                                }
                                per_size.extend(answers);
                                (truth, per_size)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        for (truth, per_size) in outcomes.into_iter().flatten() {
            for (k, &(d, pos)) in per_size.iter().enumerate() {
                match truth {
                    None => strangers[k].push(d),
                    // A genuine probe counts only where its person is enrolled.
                    Some(p) if p < sizes[k] => genuine[k].push(Nearest {
                        distance: d,
                        correct: pos == p,
                    }),
                    Some(_) => {}
                }
            }
        }
    }
    sizes
        .iter()
        .enumerate()
        .map(|(k, &n)| {
            let mut s = std::mem::take(&mut strangers[k]);
            s.sort_by(f32::total_cmp);
            // Largest threshold with at most target·count strangers under it:
            // the distance of the first stranger that may not match.
            let allowed = (config.target_fpir * s.len() as f64).floor() as usize;
            // Rounded down to the 1e-4 grid of the verification thresholds:
            // a tidier number, and rounding down can only lower the FPIR.
            let threshold = s.get(allowed).map_or(f32::INFINITY, |&d| {
                ((f64::from(d) * 1e4).floor() / 1e4) as f32
            });
            let g = std::mem::take(&mut genuine[k]);
            let rank1_error =
                g.iter().filter(|x| !x.correct).count() as f64 / g.len().max(1) as f64;
            let mut r = OpenSetResult {
                gallery_size: n,
                stranger_probes: s.len(),
                genuine_probes: g.len(),
                threshold,
                fpir: 0.0,
                fnir: 0.0,
                rank1_error,
                stranger_nearest: s,
                genuine_nearest: g,
            };
            let (fpir, fnir) = r.rates_at(threshold);
            r.fpir = fpir;
            r.fnir = fnir;
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn well_separated_people_are_identified() {
        // 40 people on a line, 10 apart; two images each, 0.1 apart.
        let mut v = Vec::new();
        let mut by = Vec::new();
        for p in 0..40 {
            by.push(vec![2 * p, 2 * p + 1]);
            v.extend([p as f32 * 10.0, p as f32 * 10.0 + 0.1]);
        }
        let cfg = OpenSetConfig {
            gallery_sizes: vec![10, 30, 100],
            strangers: 10,
            rounds: 3,
            seed: 7,
            target_fpir: 0.01,
        };
        let r = run(&v, 1, &by, |a, b| (a[0] - b[0]).abs(), &cfg, 2);
        assert_eq!(r.len(), 2, "100 is not measurable with 40 people");
        assert_eq!(r[0].stranger_probes, 30);
        assert_eq!(r[0].genuine_probes, 30);
        assert_eq!(r[1].genuine_probes, 90);
        for x in &r {
            assert_eq!(x.fpir, 0.0);
            assert_eq!(x.fnir, 0.0);
        }
    }
}
