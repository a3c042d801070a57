//! HNSW index maintenance: exact search while a model is small, an index once
//! it is large.
//!
//! Below [`PostgresConfig::hnsw_min_templates`](super::PostgresConfig)
//! templates a model has no vector index and every search is an exact scan
//! (recall 1.0, and fast at that size). At or above it the store builds a
//! partial HNSW index for the model with `CREATE INDEX CONCURRENTLY`, which
//! does not block enrolments; searches then use it with the configured
//! `hnsw.ef_search`. The check runs at open and every few thousand inserted
//! templates, in the background, one build at a time per process. A build
//! that died half-way leaves an INVALID index, which is dropped and rebuilt.

use super::{sql, PgStore};
use crate::error::{Result, StoreError};
use crate::types::{Metric, ModelKey};

/// State of a model's HNSW index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexState {
    Missing,
    Invalid,
    Valid,
}

impl PgStore {
    pub(super) fn spawn_index_check(&self) {
        let store = self.clone();
        tokio::spawn(async move {
            match store.ensure_indexes().await {
                Ok(built) if !built.is_empty() => {
                    tracing::info!("built HNSW indexes for models {built:?}")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("HNSW index maintenance failed: {e}"),
            }
        });
    }

    /// Builds the HNSW index of every model that has reached the threshold
    /// and lacks one; returns the model ids indexed. Safe to call at any time
    /// (concurrent callers in one process wait for each other; across
    /// processes `IF NOT EXISTS` makes a second build a no-op).
    pub async fn ensure_indexes(&self) -> Result<Vec<String>> {
        let rows = {
            let client = self.inner.pool.get().await?;
            client
                .query(
                    "SELECT m.id, m.dimension, m.metric, \
                            (SELECT count(*) FROM templates t WHERE t.model_id = m.id) \
                     FROM models m ORDER BY m.id",
                    &[],
                )
                .await?
        };
        let mut built = Vec::new();
        for row in rows {
            let id: String = row.try_get(0)?;
            let dimension: i32 = row.try_get(1)?;
            let metric: String = row.try_get(2)?;
            let count: i64 = row.try_get(3)?;
            if count < self.inner.config.hnsw_min_templates {
                continue;
            }
            let metric = Metric::parse(&metric)
                .ok_or_else(|| StoreError::Internal(format!("unknown stored metric {metric}")))?;
            let model = ModelKey::new(id, dimension as usize, metric);
            if self.index_state(&model).await? != IndexState::Valid {
                self.build_index(&model).await?;
                built.push(model.id);
            }
        }
        Ok(built)
    }

    /// Whether `model` has a usable HNSW index.
    pub async fn index_state(&self, model: &ModelKey) -> Result<IndexState> {
        let client = self.inner.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT i.indisvalid FROM pg_index i \
                 WHERE i.indexrelid = to_regclass(quote_ident($1))",
                &[&sql::index_name(&model.id)],
            )
            .await?;
        Ok(match row {
            None => IndexState::Missing,
            Some(r) if r.try_get::<_, bool>(0)? => IndexState::Valid,
            Some(_) => IndexState::Invalid,
        })
    }

    /// Builds `model`'s HNSW index now, whatever its size (an INVALID
    /// leftover is dropped first). May take minutes on millions of rows.
    pub async fn build_index(&self, model: &ModelKey) -> Result<()> {
        crate::validate::model(model)?;
        let _one_at_a_time = self.inner.index_job.lock().await;
        let client = self.dedicated_connection().await?;
        client
            .batch_execute(&format!(
                "SET maintenance_work_mem = {}",
                sql::literal(&self.inner.config.index_build_memory)
            ))
            .await?;
        if self.index_state(model).await? == IndexState::Invalid {
            client
                .batch_execute(&format!(
                    "DROP INDEX CONCURRENTLY IF EXISTS \"{}\"",
                    sql::index_name(&model.id)
                ))
                .await?;
        }
        let cfg = &self.inner.config;
        client
            .batch_execute(&sql::create_index(
                model,
                cfg.hnsw_m,
                cfg.hnsw_ef_construction,
            ))
            .await?;
        // Fresh statistics, so the planner sees how many rows the model has
        // and prefers the new index over a scan right away.
        client.batch_execute("ANALYZE templates").await?;
        Ok(())
    }

    /// Drops `model`'s HNSW index (searches fall back to exact scans). For
    /// benchmarks and operators; auto-indexing rebuilds it when due.
    pub async fn drop_index(&self, model: &ModelKey) -> Result<()> {
        crate::validate::model(model)?;
        let _one_at_a_time = self.inner.index_job.lock().await;
        let client = self.dedicated_connection().await?;
        client
            .batch_execute(&format!(
                "DROP INDEX CONCURRENTLY IF EXISTS \"{}\"",
                sql::index_name(&model.id)
            ))
            .await?;
        Ok(())
    }
}
