//! The store's own small data types.
//!
//! These mirror, but do not depend on, face-core's types: the dependency
//! direction is server → service → {face-core, store}. Ids are `i64` because
//! the reference API exposes integer user ids, and both databases hand out
//! never-reused increasing ids (PostgreSQL identity columns, SQLite
//! `AUTOINCREMENT`), so a deleted user's id never comes back as someone else.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A user's id, assigned by the store.
pub type UserId = i64;
/// A template's id, assigned by the store.
pub type TemplateId = i64;

/// The distance space of a model's embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// L2 distance (dlib's face descriptors; pgvector `<->`, `vector_l2_ops`).
    Euclidean,
    /// Cosine distance `1 - cos(a, b)` (pgvector `<=>`, `vector_cosine_ops`).
    Cosine,
}

impl Metric {
    /// The name stored in the `models` table.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Euclidean => "euclidean",
            Metric::Cosine => "cosine",
        }
    }

    /// Parses the name stored in the `models` table.
    pub fn parse(s: &str) -> Option<Metric> {
        match s {
            "euclidean" => Some(Metric::Euclidean),
            "cosine" => Some(Metric::Cosine),
            _ => None,
        }
    }
}

/// Identifies an embedding model. Templates of different models are never
/// compared: every search is filtered by `id`. A model id is registered with
/// its dimension and metric on first use and may not change afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelKey {
    /// Stable name, e.g. `dlib_resnet_v1`: 1–63 ASCII letters, digits, `_`, `-`, `.`.
    pub id: String,
    /// Number of components of each embedding (128 for dlib, 512 later).
    pub dimension: usize,
    /// The model's own distance metric.
    pub metric: Metric,
}

impl ModelKey {
    /// Convenience constructor.
    pub fn new(id: impl Into<String>, dimension: usize, metric: Metric) -> Self {
        ModelKey {
            id: id.into(),
            dimension,
            metric,
        }
    }
}

/// A user to enrol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewUser {
    /// Display name: non-empty, at most [`crate::validate::MAX_NAME_BYTES`]
    /// bytes of UTF-8, no control characters (NUL included).
    pub name: String,
    /// Optional reference into another system (unique when present).
    pub external_ref: Option<String>,
    /// Optional free-form JSON metadata.
    pub metadata: Option<serde_json::Value>,
}

impl NewUser {
    /// A user with only a name.
    pub fn named(name: impl Into<String>) -> Self {
        NewUser {
            name: name.into(),
            external_ref: None,
            metadata: None,
        }
    }
}

/// A face template to store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTemplate {
    /// The embedding; its length must equal the model's dimension and every
    /// component must be finite.
    pub embedding: Vec<f32>,
    /// Quality score given by the enrolment pipeline (finite).
    pub quality: f32,
}

/// An enrolled user as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub external_ref: Option<String>,
    pub metadata: Option<serde_json::Value>,
    /// When the user was created (microsecond precision, UTC).
    pub created_at: DateTime<Utc>,
    /// Number of templates of all models.
    pub template_count: i64,
}

/// One stored template, without its vector (for listing a user's faces).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateInfo {
    pub id: TemplateId,
    /// The model that produced it.
    pub model_id: String,
    /// Quality score given by the enrolment pipeline.
    pub quality: f32,
    /// When it was stored (microsecond precision, UTC).
    pub created_at: DateTime<Utc>,
}

/// The closest of one user's templates of a model (1:1 verification), and
/// how many templates of that model were compared: each is one chance for
/// a stranger to match, which the decision accounts for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UserDistance {
    /// Distance to the closest template, in the model's metric.
    pub distance: f32,
    /// Templates of the model the user has (at least 1).
    pub templates: u64,
}

/// One search result: a user and their best (closest) template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Match {
    pub user_id: UserId,
    pub name: String,
    pub template_id: TemplateId,
    /// Distance in the model's own metric (smaller is closer).
    pub distance: f32,
}

/// Which users a listing returns: all, or those whose name contains a text
/// (case-insensitive for ASCII letters; PostgreSQL folds all of Unicode),
/// or the one with an external reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// A part of the display name.
    pub name_contains: Option<String>,
    /// The external reference, exactly.
    pub external_ref: Option<String>,
}

/// Keyset pagination over users in ascending id order. Stable under
/// concurrent inserts and deletes (unlike offsets): pass the last id of one
/// page as `after` to get the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Only users with an id greater than this; `None` starts at the beginning.
    pub after: Option<UserId>,
    /// Page size; clamped to [`Page::MAX_LIMIT`].
    pub limit: usize,
}

impl Page {
    /// Largest page a store returns.
    pub const MAX_LIMIT: usize = 1000;

    /// The first page.
    pub fn first(limit: usize) -> Self {
        Page { after: None, limit }
    }

    /// The page following the user `after`.
    pub fn after(after: UserId, limit: usize) -> Self {
        Page {
            after: Some(after),
            limit,
        }
    }

    pub(crate) fn effective_limit(self) -> i64 {
        self.limit.min(Self::MAX_LIMIT) as i64
    }

    pub(crate) fn after_id(self) -> i64 {
        self.after.unwrap_or(i64::MIN)
    }
}

/// Counts for monitoring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub users: i64,
    /// Template count per registered model id, sorted by model id.
    pub templates_by_model: Vec<(String, i64)>,
}
