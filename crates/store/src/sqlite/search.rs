//! Exact nearest-neighbour search for the SQLite store.
//!
//! SQLite has no vector index here: each model's embeddings are ranked
//! exhaustively in Rust (recall 1.0), from the in-memory matrix of
//! `cache.rs`, loaded from the database on first use and whenever another
//! process changed the data. Each user is represented by their best template.
//! Names are read in the same read transaction as the generation check.

use rusqlite::{Connection, OptionalExtension, Transaction};

use super::cache::{ModelMatrix, SharedCache};
use crate::distance::from_le_bytes_into;
use crate::error::{Result, StoreError};
use crate::model_cache;
use crate::types::{Match, Metric, ModelKey, TemplateId, UserDistance, UserId};

fn load(tx: &Transaction<'_>, model: &ModelKey) -> Result<ModelMatrix> {
    let mut matrix = ModelMatrix::new(model.dimension);
    let mut stmt = tx.prepare_cached(
        "SELECT id, user_id, embedding FROM templates WHERE model_id = ?1 ORDER BY id",
    )?;
    let mut rows = stmt.query([&model.id])?;
    let mut buf = Vec::with_capacity(model.dimension);
    while let Some(row) = rows.next()? {
        from_le_bytes_into(row.get_ref(2)?.as_blob()?, &mut buf);
        matrix.push(row.get(0)?, row.get(1)?, &buf);
    }
    Ok(matrix)
}

/// The `k` best users for `query` among `model`'s templates, as `(user,
/// template, distance)`, from the in-memory matrix when it reflects the
/// snapshot of `tx`, else loaded from it. Used by searches (a read
/// transaction) and by the duplicate check inside a write.
pub(super) fn rank(
    tx: &Transaction<'_>,
    vectors: &SharedCache,
    model: &ModelKey,
    query: &[f32],
    k: usize,
) -> Result<Vec<(UserId, TemplateId, f32)>> {
    let registered: Option<(i64, String)> = tx
        .query_row(
            "SELECT dimension, metric FROM models WHERE id = ?1",
            [&model.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((dimension, metric)) = registered else {
        return Ok(Vec::new()); // no template of this model was ever stored
    };
    let metric = Metric::parse(&metric)
        .ok_or_else(|| StoreError::Internal(format!("unknown stored metric {metric}")))?;
    model_cache::compare(model, dimension as usize, metric)?;
    let generation: i64 =
        tx.query_row("SELECT generation FROM store_meta WHERE id = 1", [], |r| {
            r.get(0)
        })?;

    let cached = {
        let c = vectors.read().unwrap_or_else(|p| p.into_inner());
        match c.models.get(&model.id) {
            Some(m) if c.generation >= generation => Some(m.rank(metric, query, k)),
            _ => None,
        }
    };
    Ok(match cached {
        Some(r) => r,
        None => {
            let matrix = load(tx, model)?;
            let ranked = matrix.rank(metric, query, k);
            let mut c = vectors.write().unwrap_or_else(|p| p.into_inner());
            if c.generation < generation {
                c.models.clear();
                c.generation = generation;
            }
            if c.generation == generation {
                c.models.insert(model.id.clone(), matrix);
            }
            ranked
        }
    })
}

pub(super) fn search(
    conn: &mut Connection,
    vectors: &SharedCache,
    model: &ModelKey,
    query: &[f32],
    k: usize,
) -> Result<Vec<Match>> {
    let tx = conn.transaction()?;
    let ranked = rank(&tx, vectors, model, query, k)?;
    let mut name_stmt = tx.prepare_cached("SELECT name FROM users WHERE id = ?1")?;
    let mut matches = Vec::with_capacity(ranked.len());
    for (user_id, template_id, distance) in ranked {
        // A user the cache knows but this snapshot does not (committed an
        // instant ago) is skipped rather than reported half-seen.
        let Some(name) = name_stmt
            .query_row([user_id], |r| r.get::<_, String>(0))
            .optional()?
        else {
            continue;
        };
        matches.push(Match {
            user_id,
            name,
            template_id,
            distance,
        });
    }
    Ok(matches)
}

/// The smallest distance from `query` to one user's templates of `model`.
pub(super) fn distance_to_user(
    conn: &mut Connection,
    user: i64,
    model: &ModelKey,
    query: &[f32],
) -> Result<Option<UserDistance>> {
    let tx = conn.transaction()?;
    super::ops::require_user(&tx, user)?;
    let mut stmt = tx.prepare_cached(
        "SELECT embedding FROM templates WHERE user_id = ?1 AND model_id = ?2 AND dimension = ?3",
    )?;
    let mut rows = stmt.query(rusqlite::params![user, model.id, model.dimension as i64])?;
    let mut buf = Vec::with_capacity(model.dimension);
    let mut best: Option<UserDistance> = None;
    while let Some(row) = rows.next()? {
        from_le_bytes_into(row.get_ref(0)?.as_blob()?, &mut buf);
        let d = crate::distance::distance(model.metric, query, &buf);
        best = Some(match best {
            None => UserDistance {
                distance: d,
                templates: 1,
            },
            Some(b) => UserDistance {
                distance: b.distance.min(d),
                templates: b.templates + 1,
            },
        });
    }
    Ok(best)
}
