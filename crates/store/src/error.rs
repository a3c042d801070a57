//! The storage-level error type shared by every store implementation.
//!
//! Callers (the service layer) branch on the *kind* of failure, not on the
//! backend: a missing user is `NotFound` whether it came from PostgreSQL or
//! SQLite, a database that cannot be reached is `Unavailable` (retry later,
//! answer 503), and input the store refuses is `BadData` (answer 400). The
//! message is for logs; it never contains embeddings.

/// What went wrong, classified for the caller.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The user (or another referenced row) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The write clashes with existing data: a duplicate external reference,
    /// or a model id already registered with another dimension or metric.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A new template is closer than the write's uniqueness threshold to a
    /// template of another user (checked inside the write, so two
    /// concurrent enrolments of one face cannot both pass).
    #[error("a new template matches user {user_id}'s")]
    Duplicate {
        /// The user it matches.
        user_id: crate::types::UserId,
    },
    /// Adding the templates would give the user more than the allowed
    /// number of templates of one model.
    #[error("the user would have more than {limit} templates of this model")]
    TemplateLimit {
        /// The most templates of one model a user may have.
        limit: usize,
        /// Templates of the model the user has now.
        existing: usize,
    },
    /// The database cannot be reached or did not answer in time (server down,
    /// pool exhausted, statement timeout, file locked). Usually transient.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Input the store refuses: NUL bytes or control characters in text,
    /// over-long strings, wrong embedding dimension, non-finite floats.
    #[error("bad data: {0}")]
    BadData(String),
    /// Anything else: a bug, a failed migration, a corrupt row.
    #[error("storage error: {0}")]
    Internal(String),
}

impl StoreError {
    /// True when retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    pub(crate) fn bad(msg: impl Into<String>) -> Self {
        StoreError::BadData(msg.into())
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
