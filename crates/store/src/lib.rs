//! `face-store`: the repository of who is enrolled and their face templates.
//!
//! It stores users and their face *templates* (embedding vectors produced by a
//! face-recognition model), never images. Two implementations share one
//! contract, the [`FaceStore`] trait:
//!
//! * [`PgStore`] — PostgreSQL with the pgvector extension, the production
//!   store (pooled, with bounded timeouts and an HNSW index for large models);
//! * [`SqliteStore`] — one SQLite file under a data directory, the default for
//!   a single machine, so a first run needs no database server.
//!
//! The same stores keep the security layer's state ([`AccessStore`]: API
//! keys, verification lockouts, the audit log), so it survives restarts and
//! is shared by every server instance.
//!
//! The crate deliberately does not depend on `face-core`: the service layer
//! converts between face-core's descriptors and the small types in [`types`].
//! Schema migrations live in the workspace's top-level `migrations/` folder
//! and are embedded at compile time; `open` applies them.

pub mod access;
pub mod distance;
pub mod error;
pub mod liveness;
pub mod metered;
mod migrate;
mod model_cache;
pub mod open;
pub mod postgres;
pub mod rates;
pub mod sqlite;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod types;
pub mod validate;

pub use access::{
    AccessStore, ApiKey, AuditEvent, AuditQuery, KeyId, Lockout, LockoutChange, LockoutUpdate,
    NewApiKey, NewAuditEvent,
};
pub use error::StoreError;
pub use metered::Metered;
pub use open::{open, StoreConfig};
pub use postgres::{IndexState, PgSslMode, PgStore, PgTls, PostgresConfig};
pub use rates::RedisRates;
pub use sqlite::{SqliteConfig, SqliteStore, Synchronous};
pub use store::FaceStore;
pub use types::{
    Match, Metric, ModelKey, NewTemplate, NewUser, Page, Stats, TemplateId, TemplateInfo, User,
    UserDistance, UserFilter, UserId,
};
