//! The embedded store: one SQLite file, WAL, no server.
//!
//! Threading: rusqlite is synchronous, so every call runs on tokio's blocking
//! pool (`spawn_blocking`) and never stalls the async runtime. Connections are
//! kept behind mutexes rather than in a general pool: SQLite allows a single
//! writer at a time anyway, so there is exactly one writer connection (writes
//! queue on its mutex instead of failing with SQLITE_BUSY), plus a few reader
//! connections picked round-robin, which in WAL mode read a consistent
//! snapshot in parallel with the writer. That is all a pool would give here,
//! with fewer moving parts.
//!
//! Search ranks an in-memory copy of each model's embeddings (`cache.rs`,
//! `search.rs`); the database file stays the source of truth.

mod access;
mod cache;
mod config;
mod errors;
mod ops;
mod search;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::Connection;

pub use config::{SqliteConfig, Synchronous};

use crate::error::{Result, StoreError};
use crate::model_cache::ModelCache;
use crate::store::FaceStore;
use crate::types::{
    Match, ModelKey, NewTemplate, NewUser, Page, Stats, TemplateId, TemplateInfo, User,
    UserDistance, UserId,
};
use crate::validate;

/// The SQLite implementation of [`FaceStore`]. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    models: ModelCache,
    vectors: cache::SharedCache,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, sets WAL and the chosen
    /// durability, and applies pending migrations.
    pub async fn open(config: SqliteConfig) -> Result<Self> {
        let inner = tokio::task::spawn_blocking(move || open_blocking(config))
            .await
            .map_err(|e| StoreError::Internal(format!("opening SQLite store: {e}")))??;
        Ok(SqliteStore {
            inner: Arc::new(inner),
        })
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.inner.path
    }

    async fn create(
        &self,
        user: NewUser,
        model: &ModelKey,
        templates: &[NewTemplate],
        unique_below: Option<f32>,
    ) -> Result<User> {
        validate::user(&user)?;
        validate::templates(model, templates, true)?;
        let (model, templates) = (model.clone(), templates.to_vec());
        self.write(move |conn, models, vectors| {
            ops::create_user(
                conn,
                models,
                vectors,
                &user,
                &model,
                &templates,
                unique_below,
            )
        })
        .await
    }

    /// Runs `f` on the writer connection, off the async runtime.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &ModelCache, &cache::SharedCache) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn, &inner.models, &inner.vectors)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("SQLite task failed: {e}")))?
    }

    /// Runs `f` on one of the reader connections, off the async runtime.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &cache::SharedCache) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let i = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            let mut conn = inner.readers[i].lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn, &inner.vectors)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("SQLite task failed: {e}")))?
    }
}

fn open_connection(config: &SqliteConfig, writer: bool) -> Result<Connection> {
    let conn = Connection::open(&config.path)?;
    conn.busy_timeout(config.busy_timeout)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Internal(format!(
            "SQLite refused WAL mode (got {mode}) for {}",
            config.path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", config.synchronous.pragma_value())?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Search scans every template of a model: keep them in memory. The page
    // cache is per connection; memory-mapped reads are shared by all of them
    // through the OS page cache and avoid a read() call per page.
    conn.pragma_update(None, "cache_size", -(config.cache_kib as i64))?;
    conn.pragma_update(None, "mmap_size", config.mmap_bytes as i64)?;
    if !writer {
        conn.pragma_update(None, "query_only", true)?;
    }
    Ok(conn)
}

fn open_blocking(config: SqliteConfig) -> Result<Inner> {
    if let Some(dir) = config.path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(format!("creating {}: {e}", dir.display())))?;
        }
    }
    let mut writer = open_connection(&config, true)?;
    crate::migrate::sqlite::migrations::runner()
        .run(&mut writer)
        .map_err(|e| StoreError::Internal(format!("SQLite migration failed: {e}")))?;
    let readers = (0..config.readers.max(1))
        .map(|_| open_connection(&config, false).map(Mutex::new))
        .collect::<Result<Vec<_>>>()?;
    Ok(Inner {
        path: config.path,
        writer: Mutex::new(writer),
        readers,
        next_reader: AtomicUsize::new(0),
        models: ModelCache::default(),
        vectors: Default::default(),
    })
}

#[async_trait]
impl FaceStore for SqliteStore {
    async fn create_user(
        &self,
        user: NewUser,
        model: &ModelKey,
        templates: &[NewTemplate],
    ) -> Result<User> {
        self.create(user, model, templates, None).await
    }

    async fn create_unique_user(
        &self,
        user: NewUser,
        model: &ModelKey,
        templates: &[NewTemplate],
        unique_below: f32,
    ) -> Result<User> {
        self.create(user, model, templates, Some(unique_below))
            .await
    }

    async fn add_templates(
        &self,
        user: UserId,
        model: &ModelKey,
        templates: &[NewTemplate],
        max_per_model: usize,
        unique_below: Option<f32>,
    ) -> Result<Vec<TemplateId>> {
        validate::templates(model, templates, false)?;
        let (model, templates) = (model.clone(), templates.to_vec());
        self.write(move |conn, models, vectors| {
            ops::add_templates(
                conn,
                models,
                vectors,
                user,
                &model,
                &templates,
                ops::AddChecks {
                    max_per_model,
                    unique_below,
                },
            )
        })
        .await
    }

    async fn templates_of(&self, user: UserId) -> Result<Vec<TemplateInfo>> {
        self.read(move |conn, _| ops::templates_of(conn, user))
            .await
    }

    async fn delete_template(&self, user: UserId, template: TemplateId) -> Result<()> {
        self.write(move |conn, _, vectors| ops::delete_template(conn, vectors, user, template))
            .await
    }

    async fn get_user(&self, id: UserId) -> Result<User> {
        self.read(move |conn, _| ops::get_user(conn, id)).await
    }

    async fn list_users(&self, page: Page) -> Result<Vec<User>> {
        self.read(move |conn, _| ops::list_users(conn, page, None))
            .await
    }

    async fn find_users(&self, filter: &crate::types::UserFilter, page: Page) -> Result<Vec<User>> {
        let filter = filter.clone();
        self.read(move |conn, _| ops::find_users(conn, page, &filter))
            .await
    }

    async fn delete_user(&self, id: UserId) -> Result<()> {
        self.write(move |conn, _, vectors| ops::delete_user(conn, vectors, id))
            .await
    }

    async fn stats(&self) -> Result<Stats> {
        self.read(|conn, _| ops::stats(conn)).await
    }

    async fn search(&self, model: &ModelKey, query: &[f32], k: usize) -> Result<Vec<Match>> {
        validate::search(model, query, k)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let (model, query) = (model.clone(), query.to_vec());
        self.read(move |conn, vectors| search::search(conn, vectors, &model, &query, k))
            .await
    }

    async fn distance_to_user(
        &self,
        user: UserId,
        model: &ModelKey,
        query: &[f32],
    ) -> Result<Option<UserDistance>> {
        validate::search(model, query, 1)?;
        let (model, query) = (model.clone(), query.to_vec());
        self.read(move |conn, _| search::distance_to_user(conn, user, &model, &query))
            .await
    }

    async fn users_without_model(&self, model: &ModelKey, page: Page) -> Result<Vec<User>> {
        validate::model(model)?;
        let model_id = model.id.clone();
        self.read(move |conn, _| ops::list_users(conn, page, Some(&model_id)))
            .await
    }

    async fn health(&self) -> Result<()> {
        self.read(|conn, _| {
            conn.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }
}
