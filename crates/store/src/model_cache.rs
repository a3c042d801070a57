//! Per-process memory of which models are registered, with which shape.
//!
//! Every write checks that its `ModelKey` matches the registered dimension and
//! metric; remembering the answer saves a round trip per call. Entries are
//! only ever added (a model's shape never changes), so a stale cache cannot
//! give a wrong answer.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::error::{Result, StoreError};
use crate::types::{Metric, ModelKey};

#[derive(Debug, Default)]
pub(crate) struct ModelCache {
    known: RwLock<HashMap<String, (usize, Metric)>>,
}

impl ModelCache {
    /// `Some(Ok)` when known and matching, `Some(Err(Conflict))` when known
    /// with another shape, `None` when not known yet.
    pub(crate) fn check(&self, model: &ModelKey) -> Option<Result<()>> {
        let known = self.known.read().unwrap_or_else(|p| p.into_inner());
        known
            .get(&model.id)
            .map(|&(dimension, metric)| compare(model, dimension, metric))
    }

    pub(crate) fn remember(&self, model: &ModelKey) {
        let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
        known.insert(model.id.clone(), (model.dimension, model.metric));
    }
}

/// Compares a requested model with the registered shape.
pub(crate) fn compare(model: &ModelKey, dimension: usize, metric: Metric) -> Result<()> {
    if model.dimension != dimension || model.metric != metric {
        return Err(StoreError::Conflict(format!(
            "model {} is registered as {}-D {}, not {}-D {}",
            model.id,
            dimension,
            metric.as_str(),
            model.dimension,
            model.metric.as_str()
        )));
    }
    Ok(())
}
