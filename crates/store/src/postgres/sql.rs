//! SQL text that depends on the model: search and HNSW index DDL.
//!
//! pgvector indexes need a fixed dimension, while the `embedding` column is
//! untyped so that one table holds every model. Each model therefore gets a
//! *partial expression index* on `embedding::vector(D)` restricted to
//! `model_id = '<id>'`, and its searches are written with the very same
//! expression and predicate. The model id is inlined as a literal (validated
//! to `[A-Za-z0-9_.-]` and quoted) rather than bound as a parameter, because
//! the planner can only match a partial index whose predicate it can prove
//! from constants: a generic plan with `model_id = $2` would never use it.

use crate::types::{Metric, ModelKey};

fn operator(metric: Metric) -> &'static str {
    match metric {
        Metric::Euclidean => "<->",
        Metric::Cosine => "<=>",
    }
}

fn opclass(metric: Metric) -> &'static str {
    match metric {
        Metric::Euclidean => "vector_l2_ops",
        Metric::Cosine => "vector_cosine_ops",
    }
}

/// A SQL string literal. Model ids are already restricted to a safe
/// character set; quoting is a second line of defence.
pub(crate) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The search statement for a model. `$1` query vector, `$2` candidate
/// count, `$3` k. The inner query takes the `$2` nearest templates (an HNSW
/// index scan when the model has an index, an exact scan otherwise); the
/// outer query keeps each user's best template and returns the `$3` best
/// users (names by primary-key lookup, never a scan of `users`).
/// `n_candidates` tells the caller whether the candidate set was cut
/// short, i.e. whether a larger `$2` could find more users.
pub(crate) fn search(model: &ModelKey) -> String {
    let d = model.dimension;
    let op = operator(model.metric);
    let id = literal(&model.id);
    format!(
        "WITH candidates AS MATERIALIZED ( \
           SELECT t.id, t.user_id, t.embedding::vector({d}) {op} $1::vector({d}) AS distance \
           FROM templates t \
           WHERE t.model_id = {id} \
           ORDER BY t.embedding::vector({d}) {op} $1::vector({d}) \
           LIMIT $2 \
         ), best AS ( \
           SELECT DISTINCT ON (user_id) user_id, id, distance \
           FROM candidates ORDER BY user_id, distance, id \
         ) \
         SELECT b.user_id, (SELECT u.name FROM users u WHERE u.id = b.user_id), \
                b.id, b.distance, (SELECT count(*) FROM candidates) AS n_candidates \
         FROM best b \
         ORDER BY b.distance, b.user_id \
         LIMIT $3"
    )
}

/// A user other than `$2` (NULL: any) with a template of `model` closer
/// than `$3` to `$1`: the closest of the nearest candidates (an index scan
/// when the model has an index). `$2`'s own templates are excluded before
/// the limit, so a user with many cannot crowd out another's match. No row
/// when there is none.
pub(crate) fn nearest_other_user(model: &ModelKey) -> String {
    let d = model.dimension;
    let op = operator(model.metric);
    let id = literal(&model.id);
    format!(
        "SELECT c.user_id FROM ( \
           SELECT t.user_id, (t.embedding::vector({d}) {op} $1::vector({d}))::float8 AS distance \
           FROM templates t \
           WHERE t.model_id = {id} AND t.user_id IS DISTINCT FROM $2::bigint \
           ORDER BY t.embedding::vector({d}) {op} $1::vector({d}) \
           LIMIT 16 \
         ) c \
         WHERE c.distance < $3::float8 \
         ORDER BY c.distance LIMIT 1"
    )
}

/// The smallest distance from `$1` to user `$2`'s templates of `model`
/// (NULL when they have none), and how many there are.
pub(crate) fn distance_to_user(model: &ModelKey) -> String {
    let d = model.dimension;
    let op = operator(model.metric);
    let id = literal(&model.id);
    format!(
        "SELECT min(t.embedding::vector({d}) {op} $1::vector({d}))::float8, count(*) \
         FROM templates t WHERE t.user_id = $2 AND t.model_id = {id}"
    )
}

/// The name of a model's HNSW index: readable prefix plus a hash of the exact
/// id, so that ids differing only in `.`/`-`/case cannot collide.
pub(crate) fn index_name(model_id: &str) -> String {
    let readable: String = model_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(36)
        .collect();
    // FNV-1a, 32 bits: stable across builds (unlike std's hasher).
    let mut h: u32 = 0x811c_9dc5;
    for b in model_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("templates_hnsw_{readable}_{h:08x}")
}

/// DDL building a model's HNSW index without blocking writes.
pub(crate) fn create_index(model: &ModelKey, m: u32, ef_construction: u32) -> String {
    format!(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"{name}\" ON templates \
         USING hnsw ((embedding::vector({d})) {ops}) \
         WITH (m = {m}, ef_construction = {ef_construction}) \
         WHERE model_id = {id}",
        name = index_name(&model.id),
        d = model.dimension,
        ops = opclass(model.metric),
        id = literal(&model.id),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_are_distinct_and_short() {
        let a = index_name("dlib_resnet_v1");
        let b = index_name("dlib.resnet.v1");
        assert_ne!(a, b);
        assert!(index_name(&"x".repeat(63)).len() <= 63);
    }

    #[test]
    fn literal_doubles_quotes() {
        assert_eq!(literal("a'b"), "'a''b'");
    }
}
