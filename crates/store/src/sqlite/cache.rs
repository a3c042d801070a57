//! In-memory copy of each model's embeddings, for fast exact search.
//!
//! Scanning templates through SQLite costs ~0.5 µs per row (row decoding and
//! page copies), 2.5 ms for 5k templates; scanning a flat `f32` matrix costs
//! a few ns per component, ~0.2 ms for 5k. So the SQLite store keeps, per
//! model that has been searched, a matrix of its embeddings with their
//! template and user ids.
//!
//! Consistency: every write transaction bumps `store_meta.generation` (see
//! migration V2). The cache remembers the generation it reflects.
//! * Writes through this store apply their change to the cache right after
//!   committing, under the writer lock, when the cache was at the previous
//!   generation; otherwise they clear it.
//! * A search reads the generation in its read transaction. If the database
//!   is ahead of the cache (another process wrote), the cache is cleared and
//!   the model reloaded from that snapshot.
//!
//! Memory: 4 bytes × dimension per template (512 MB for 1M 128-D templates).

use std::collections::HashMap;
use std::sync::RwLock;

use crate::distance::{cosine, squared_l2};
use crate::types::{Metric, TemplateId, UserId};

/// One model's embeddings, row-major.
#[derive(Debug, Default)]
pub(super) struct ModelMatrix {
    pub dimension: usize,
    pub template_ids: Vec<TemplateId>,
    pub user_ids: Vec<UserId>,
    pub data: Vec<f32>,
}

impl ModelMatrix {
    pub fn new(dimension: usize) -> Self {
        ModelMatrix {
            dimension,
            ..Default::default()
        }
    }

    pub fn push(&mut self, template: TemplateId, user: UserId, embedding: &[f32]) {
        self.template_ids.push(template);
        self.user_ids.push(user);
        self.data.extend_from_slice(embedding);
    }

    fn remove_user(&mut self, user: UserId) {
        self.retain(|u, _| u != user);
    }

    fn remove_template(&mut self, template: TemplateId) {
        self.retain(|_, t| t != template);
    }

    /// Keeps the rows for which `keep_row(user, template)` holds, in order.
    fn retain(&mut self, keep_row: impl Fn(UserId, TemplateId) -> bool) {
        let d = self.dimension;
        let mut keep = 0;
        for i in 0..self.user_ids.len() {
            if keep_row(self.user_ids[i], self.template_ids[i]) {
                if keep != i {
                    self.user_ids[keep] = self.user_ids[i];
                    self.template_ids[keep] = self.template_ids[i];
                    self.data.copy_within(i * d..(i + 1) * d, keep * d);
                }
                keep += 1;
            }
        }
        self.user_ids.truncate(keep);
        self.template_ids.truncate(keep);
        self.data.truncate(keep * d);
    }

    /// The `k` best users, each with their best template: `(user, template,
    /// distance)` in ascending distance, ties by user id. Exact.
    pub fn rank(&self, metric: Metric, query: &[f32], k: usize) -> Vec<(UserId, TemplateId, f32)> {
        let n = self.user_ids.len();
        if n == 0 || k == 0 {
            return Vec::new();
        }
        // Score every row (squared L2 is monotone in L2).
        let mut scored: Vec<(f32, usize)> = self
            .data
            .chunks_exact(self.dimension)
            .enumerate()
            .map(|(i, row)| {
                let s = match metric {
                    Metric::Euclidean => squared_l2(query, row),
                    Metric::Cosine => cosine(query, row),
                };
                (s, i)
            })
            .collect();
        let order = |a: &(f32, usize), b: &(f32, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
        // Take the m closest rows; if they hold fewer than k distinct users
        // (users with many close templates), widen m.
        let mut m = (k * 4).max(32);
        loop {
            let m_eff = m.min(n);
            if m_eff < n {
                scored.select_nth_unstable_by(m_eff, order);
            }
            let mut head: Vec<(f32, usize)> = scored[..m_eff].to_vec();
            head.sort_by(order);
            let mut seen = HashMap::with_capacity(k);
            let mut out = Vec::with_capacity(k);
            for (s, i) in head {
                let user = self.user_ids[i];
                if seen.insert(user, ()).is_none() {
                    out.push((user, self.template_ids[i], s));
                }
            }
            if out.len() >= k || m_eff == n {
                out.sort_by(|a, b| a.2.total_cmp(&b.2).then(a.0.cmp(&b.0)));
                out.truncate(k);
                if metric == Metric::Euclidean {
                    for o in &mut out {
                        o.2 = o.2.sqrt();
                    }
                }
                return out;
            }
            m *= 4;
        }
    }
}

/// The cache and the generation it reflects.
#[derive(Debug, Default)]
pub(super) struct Cache {
    pub generation: i64,
    pub models: HashMap<String, ModelMatrix>,
}

/// A change committed by this store, to mirror in the cache.
pub(super) enum Change {
    Added {
        model_id: String,
        user: UserId,
        templates: Vec<(TemplateId, Vec<f32>)>,
    },
    UserDeleted(UserId),
    TemplateDeleted(TemplateId),
}

pub(super) type SharedCache = RwLock<Cache>;

/// Applies a committed change that moved the database to `generation`.
pub(super) fn apply(cache: &SharedCache, generation: i64, change: Change) {
    let mut c = cache.write().unwrap_or_else(|p| p.into_inner());
    if c.generation != generation - 1 {
        // Missed someone else's write: start over from the database.
        c.models.clear();
        c.generation = generation;
        return;
    }
    c.generation = generation;
    match change {
        Change::Added {
            model_id,
            user,
            templates,
        } => {
            if let Some(m) = c.models.get_mut(&model_id) {
                for (id, v) in templates {
                    m.push(id, user, &v);
                }
            }
        }
        Change::UserDeleted(user) => {
            for m in c.models.values_mut() {
                m.remove_user(user);
            }
        }
        Change::TemplateDeleted(template) => {
            for m in c.models.values_mut() {
                m.remove_template(template);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn best_template_per_user_and_removal() {
        let mut m = ModelMatrix::new(1);
        for (t, u, x) in [(1, 10, 0.0f32), (2, 10, 0.1), (3, 11, 0.2), (4, 12, 0.3)] {
            m.push(t, u, &[x]);
        }
        let r = m.rank(Metric::Euclidean, &[0.0], 2);
        assert_eq!(
            r.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(),
            vec![(10, 1), (11, 3)]
        );
        m.remove_user(10);
        let r = m.rank(Metric::Euclidean, &[0.0], 5);
        assert_eq!(r.iter().map(|x| x.0).collect::<Vec<_>>(), vec![11, 12]);
        assert!((r[0].2 - 0.2).abs() < 1e-6);
        m.remove_template(3);
        let r = m.rank(Metric::Euclidean, &[0.0], 5);
        assert_eq!(r.iter().map(|x| x.0).collect::<Vec<_>>(), vec![12]);
        assert_eq!(m.data.len(), 1);
    }
}
