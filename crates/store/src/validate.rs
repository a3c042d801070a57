//! Input checks shared by both stores, run before any SQL.
//!
//! Both databases would reject some of this input on their own (PostgreSQL
//! refuses NUL bytes in `text`, pgvector refuses NaN), but with backend-specific
//! errors and SQLite would silently store it. Checking here gives one clean
//! `BadData` for every implementation and keeps garbage out of the embedded
//! store.

use crate::error::{Result, StoreError};
use crate::types::{Metric, ModelKey, NewTemplate, NewUser};

/// Longest accepted user name, in UTF-8 bytes.
pub const MAX_NAME_BYTES: usize = 4096;
/// Longest accepted external reference, in UTF-8 bytes.
pub const MAX_EXTERNAL_REF_BYTES: usize = 1024;
/// Largest accepted metadata document, serialised, in bytes.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
/// Longest model id (PostgreSQL identifiers are derived from it).
pub const MAX_MODEL_ID_BYTES: usize = 63;
/// Largest dimension: pgvector's HNSW index supports up to 2000 dimensions.
pub const MAX_DIMENSION: usize = 2000;
/// Most templates accepted in one call.
pub const MAX_TEMPLATES_PER_CALL: usize = 1000;
/// Largest `k` for a search.
pub const MAX_K: usize = 1000;

/// Checks a model key: a short ASCII id (it ends up in index names and SQL
/// literals, so the character set is restricted) and a supported dimension.
pub fn model(model: &ModelKey) -> Result<()> {
    let id = &model.id;
    if id.is_empty() || id.len() > MAX_MODEL_ID_BYTES {
        return Err(StoreError::bad(format!(
            "model id must be 1..={MAX_MODEL_ID_BYTES} bytes"
        )));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(StoreError::bad(
            "model id may contain only ASCII letters, digits, '_', '-' and '.'",
        ));
    }
    if model.dimension == 0 || model.dimension > MAX_DIMENSION {
        return Err(StoreError::bad(format!(
            "model dimension must be 1..={MAX_DIMENSION}, got {}",
            model.dimension
        )));
    }
    Ok(())
}

/// Checks free text: size bound, no control characters (NUL included).
fn text(field: &str, value: &str, max_bytes: usize) -> Result<()> {
    if value.trim().is_empty() {
        return Err(StoreError::bad(format!("{field} must not be empty")));
    }
    if value.len() > max_bytes {
        return Err(StoreError::bad(format!(
            "{field} is {} bytes, at most {max_bytes} allowed",
            value.len()
        )));
    }
    if value.contains('\0') {
        return Err(StoreError::bad(format!("{field} contains a NUL byte")));
    }
    if value.chars().any(char::is_control) {
        return Err(StoreError::bad(format!(
            "{field} contains a control character"
        )));
    }
    Ok(())
}

/// PostgreSQL's `jsonb` cannot hold `\u0000`; refuse it everywhere.
fn json_has_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(json_has_nul),
        serde_json::Value::Object(map) => {
            map.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v))
        }
        _ => false,
    }
}

/// Checks a new user's fields.
pub fn user(user: &NewUser) -> Result<()> {
    text("name", &user.name, MAX_NAME_BYTES)?;
    if let Some(r) = &user.external_ref {
        text("external_ref", r, MAX_EXTERNAL_REF_BYTES)?;
    }
    if let Some(m) = &user.metadata {
        if json_has_nul(m) {
            return Err(StoreError::bad("metadata contains a NUL character"));
        }
        let size = serde_json::to_vec(m)
            .map_err(|e| StoreError::bad(format!("metadata: {e}")))?
            .len();
        if size > MAX_METADATA_BYTES {
            return Err(StoreError::bad(format!(
                "metadata is {size} bytes, at most {MAX_METADATA_BYTES} allowed"
            )));
        }
    }
    Ok(())
}

/// Checks one embedding against its model: dimension, finiteness, and a
/// non-zero norm for cosine models (cosine distance is undefined at zero).
pub fn embedding(model: &ModelKey, v: &[f32]) -> Result<()> {
    if v.len() != model.dimension {
        return Err(StoreError::bad(format!(
            "embedding has {} components, model {} expects {}",
            v.len(),
            model.id,
            model.dimension
        )));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(StoreError::bad(format!(
            "embedding component {i} is not finite"
        )));
    }
    if model.metric == Metric::Cosine && v.iter().all(|x| *x == 0.0) {
        return Err(StoreError::bad("zero embedding under a cosine model"));
    }
    Ok(())
}

/// Checks a batch of templates; `at_least_one` for enrolment.
pub fn templates(
    model_key: &ModelKey,
    templates: &[NewTemplate],
    at_least_one: bool,
) -> Result<()> {
    model(model_key)?;
    if at_least_one && templates.is_empty() {
        return Err(StoreError::bad("a user needs at least one template"));
    }
    if templates.len() > MAX_TEMPLATES_PER_CALL {
        return Err(StoreError::bad(format!(
            "at most {MAX_TEMPLATES_PER_CALL} templates per call"
        )));
    }
    for t in templates {
        embedding(model_key, &t.embedding)?;
        if !t.quality.is_finite() {
            return Err(StoreError::bad("template quality is not finite"));
        }
    }
    Ok(())
}

/// Checks a search request.
pub fn search(model_key: &ModelKey, query: &[f32], k: usize) -> Result<()> {
    model(model_key)?;
    embedding(model_key, query)?;
    if k > MAX_K {
        return Err(StoreError::bad(format!("k must be at most {MAX_K}")));
    }
    Ok(())
}
