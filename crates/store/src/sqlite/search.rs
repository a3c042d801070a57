//! Exact nearest-neighbour search for the SQLite store.
//!
//! SQLite has no vector index here: templates of the requested model are
//! scanned and ranked in Rust, keeping each user's best template. This is
//! exact (recall 1.0) and fast enough for a single machine's population (see
//! the crate README for figures); large deployments use PostgreSQL + HNSW.
//! The scan reads each BLOB in place (no copy) inside one read transaction,
//! so names and templates come from the same snapshot.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};

use crate::distance::{cosine, squared_l2};
use crate::error::{Result, StoreError};
use crate::model_cache;
use crate::types::{Match, Metric, ModelKey, TemplateId, UserId};

pub(super) fn search(
    conn: &mut Connection,
    model: &ModelKey,
    query: &[f32],
    k: usize,
) -> Result<Vec<Match>> {
    let tx = conn.transaction()?;
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

    // Score: squared L2 for Euclidean (monotone, square root applied at the
    // end), cosine distance for cosine.
    let mut best: HashMap<UserId, (f32, TemplateId)> = HashMap::new();
    let mut buf = Vec::with_capacity(model.dimension);
    {
        let mut stmt =
            tx.prepare_cached("SELECT id, user_id, embedding FROM templates WHERE model_id = ?1")?;
        let mut rows = stmt.query([&model.id])?;
        while let Some(row) = rows.next()? {
            let template_id: TemplateId = row.get(0)?;
            let user_id: UserId = row.get(1)?;
            let blob = row.get_ref(2)?.as_blob()?;
            crate::distance::from_le_bytes_into(blob, &mut buf);
            let score = match model.metric {
                Metric::Euclidean => squared_l2(query, &buf),
                Metric::Cosine => cosine(query, &buf),
            };
            best.entry(user_id)
                .and_modify(|cur| {
                    if (score, template_id) < *cur {
                        *cur = (score, template_id);
                    }
                })
                .or_insert((score, template_id));
        }
    }
    let mut ranked: Vec<(UserId, f32, TemplateId)> =
        best.into_iter().map(|(u, (s, t))| (u, s, t)).collect();
    ranked.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    ranked.truncate(k);

    let mut name_stmt = tx.prepare_cached("SELECT name FROM users WHERE id = ?1")?;
    let mut matches = Vec::with_capacity(ranked.len());
    for (user_id, score, template_id) in ranked {
        let name: String = name_stmt.query_row([user_id], |r| r.get(0))?;
        let distance = match model.metric {
            Metric::Euclidean => score.sqrt(),
            Metric::Cosine => score,
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
