//! One entry point for the service: pick a backend from configuration, open
//! it (running migrations), and get an `Arc<dyn FaceStore>`.

use std::sync::Arc;

use crate::error::Result;
use crate::postgres::{PgStore, PostgresConfig};
use crate::sqlite::{SqliteConfig, SqliteStore};
use crate::store::FaceStore;

/// Which store to open.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// PostgreSQL + pgvector (production).
    Postgres(PostgresConfig),
    /// One SQLite file (single machine, the default).
    Sqlite(SqliteConfig),
}

/// Opens the configured store and applies pending migrations.
pub async fn open(config: StoreConfig) -> Result<Arc<dyn FaceStore>> {
    Ok(match config {
        StoreConfig::Postgres(c) => Arc::new(PgStore::open(c).await?),
        StoreConfig::Sqlite(c) => Arc::new(SqliteStore::open(c).await?),
    })
}
