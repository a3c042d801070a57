//! The production store: PostgreSQL with pgvector, pooled and bounded.
//!
//! Connections come from a `deadpool-postgres` pool; every call runs under a
//! client-side deadline ([`PostgresConfig::operation_timeout`]) on top of the
//! server's `statement_timeout`, so a database outage surfaces as
//! `StoreError::Unavailable` quickly. Broken connections are dropped by the
//! pool's recycle check and replaced on the next call, so the store recovers
//! by itself when the database comes back — no process restart needed.
//! Both the pool and the dedicated connections go through one TLS connector
//! built from the URL's `sslmode` / `sslrootcert` ([`tls`]).

mod access;
mod config;
mod errors;
mod index;
mod sql;
pub mod tls;

use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, ManagerConfig, Pool, RecyclingMethod, Runtime};
use pgvector::Vector;
use tokio_postgres::Row;

pub use config::PostgresConfig;
pub use index::IndexState;
pub use tls::{PgSslMode, PgTls};

use crate::error::{Result, StoreError};
use crate::model_cache::{self, ModelCache};
use crate::store::FaceStore;
use crate::types::{
    Match, Metric, ModelKey, NewTemplate, NewUser, Page, Stats, TemplateId, TemplateInfo, User,
    UserDistance, UserId,
};
use crate::validate;

/// Arbitrary constant key for the advisory lock that serialises migrations
/// when several service instances start at once.
const MIGRATION_LOCK_KEY: i64 = 0x4661_6365_4761_7465; // "FaceGate"

/// Candidate templates fetched per requested user before keeping each user's
/// best; grown ×4 when users with many close templates crowd the candidates.
const CANDIDATES_PER_USER: usize = 4;
const MIN_CANDIDATES: usize = 40;
/// pgvector caps `hnsw.ef_search` at 1000.
const MAX_EF_SEARCH: usize = 1000;

/// The PostgreSQL + pgvector implementation of [`FaceStore`]. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    pg: tokio_postgres::Config,
    /// The one TLS connector, shared by the pool and dedicated connections.
    tls: PgTls,
    config: PostgresConfig,
    models: ModelCache,
    /// Templates inserted since the last index check (drives auto-indexing).
    inserted_since_check: AtomicI64,
    /// Serialises index maintenance within the process.
    index_job: tokio::sync::Mutex<()>,
    /// The installed pgvector library's version, when it is installed.
    vector_version: Option<String>,
    /// Whether the server applies `hnsw.iterative_scan = strict_order` to
    /// this store's sessions (read back with `SHOW`).
    iterative_scan: std::sync::atomic::AtomicBool,
}

/// The version of the pgvector library the server has (its control file's
/// default version), or `None` when it has none.
async fn probe_vector_version(
    pg: &tokio_postgres::Config,
    tls: &PgTls,
    timeout: std::time::Duration,
) -> Result<Option<String>> {
    let probe = async {
        let client = tls.connect(pg).await?;
        let row = client
            .query_opt(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'",
                &[],
            )
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    };
    tokio::time::timeout(timeout, probe).await.map_err(|_| {
        StoreError::Unavailable(
            "PostgreSQL did not answer the pgvector version probe in time".into(),
        )
    })?
}

/// Whether a dotted version (`0.8.0`) is at least `min`.
fn version_at_least(version: &str, min: (u32, u32, u32)) -> bool {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let v = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    v >= min
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

const USER_COLUMNS: &str = "u.id, u.name, u.external_ref, u.metadata, u.created_at, \
     (SELECT count(*) FROM templates t WHERE t.user_id = u.id)";

fn user_from_row(r: &Row) -> Result<User> {
    Ok(User {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        external_ref: r.try_get(2)?,
        metadata: r.try_get(3)?,
        created_at: r.try_get(4)?,
        template_count: r.try_get(5)?,
    })
}

impl PgStore {
    /// Connects, applies pending migrations (creating the `vector` extension
    /// if the role may), and builds the pool. With `auto_index`, starts a
    /// background check for models large enough to need an HNSW index.
    pub async fn open(config: PostgresConfig) -> Result<Self> {
        let (mut pg, tls) = PgTls::from_url(&config.url)?;
        tracing::debug!(
            sslmode = %tls.mode(),
            verifies_chain = tls.verifies_chain(),
            verifies_host_name = tls.verifies_host_name(),
            "PostgreSQL TLS"
        );
        pg.connect_timeout(config.connect_timeout);
        pg.keepalives(true);
        pg.keepalives_idle(std::time::Duration::from_secs(30));
        pg.application_name(&config.application_name);
        let ms = config.statement_timeout.as_millis().max(1);
        let mut options = format!(
            "-c statement_timeout={ms} -c lock_timeout={ms} \
             -c idle_in_transaction_session_timeout={} -c hnsw.ef_search={}",
            ms * 2,
            config.hnsw_ef_search.clamp(1, MAX_EF_SEARCH as u32)
        );
        // pgvector 0.8 can continue an HNSW scan until the filtered
        // results fill the LIMIT (`hnsw.iterative_scan`); older versions
        // stop at ef_search rows whatever the filter kept. The library's
        // version decides, checked once here (an unknown `hnsw.*` value
        // would be accepted as a placeholder and silently ignored), and
        // what the server applied is read back after migrating.
        let vector_version = probe_vector_version(&pg, &tls, config.connect_timeout).await?;
        let iterative_scan = vector_version
            .as_deref()
            .is_some_and(|v| version_at_least(v, (0, 8, 0)));
        if iterative_scan {
            options.push_str(" -c hnsw.iterative_scan=strict_order");
        }
        if let Some(extra) = pg.get_options() {
            options = format!("{extra} {options}");
        }
        pg.options(&options);

        let manager = tls.manager(
            pg.clone(),
            ManagerConfig {
                // Fast: a connection whose socket closed (server restart) is
                // detected without a round trip and replaced.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.wait_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .build()
            .map_err(|e| StoreError::Internal(format!("building connection pool: {e}")))?;

        let store = PgStore {
            inner: Arc::new(Inner {
                pool,
                pg,
                tls,
                config,
                models: ModelCache::default(),
                inserted_since_check: AtomicI64::new(0),
                index_job: tokio::sync::Mutex::new(()),
                vector_version,
                iterative_scan: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        store.migrate().await?;
        if iterative_scan {
            store.check_iterative_scan().await?;
        } else {
            tracing::warn!(
                pgvector = store.inner.vector_version.as_deref().unwrap_or("?"),
                "pgvector is older than 0.8: no iterative HNSW scans; searches rely on the \
                 per-model partial indexes (a filter beyond the model can come back short)"
            );
        }
        if store.inner.config.auto_index {
            store.spawn_index_check();
        }
        Ok(store)
    }

    /// The installed pgvector version, and whether searches run with
    /// iterative HNSW scans (pgvector 0.8 or newer, confirmed by `SHOW`).
    pub fn vector_search(&self) -> (Option<&str>, bool) {
        (
            self.inner.vector_version.as_deref(),
            self.inner
                .iterative_scan
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Reads back what the server made of `hnsw.iterative_scan` on a pooled
    /// session, once the library is loaded there: a value it did not take
    /// falls back to `off` with no more than a warning in the server log.
    async fn check_iterative_scan(&self) -> Result<()> {
        let client = self.inner.pool.get().await?;
        client.execute("SELECT NULL::vector", &[]).await?;
        let row = client.query_one("SHOW hnsw.iterative_scan", &[]).await?;
        let applied: String = row.try_get(0)?;
        if applied == "strict_order" {
            self.inner
                .iterative_scan
                .store(true, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(
                pgvector = self.inner.vector_version.as_deref().unwrap_or("?"),
                "iterative HNSW scans on (strict order)"
            );
            Ok(())
        } else {
            Err(StoreError::Internal(format!(
                "pgvector {} should take hnsw.iterative_scan = strict_order, but the server \
                 applied {applied:?}; check the server's settings (ALTER ROLE/DATABASE ... SET \
                 hnsw.iterative_scan) and its log",
                self.inner.vector_version.as_deref().unwrap_or("?")
            )))
        }
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &PostgresConfig {
        &self.inner.config
    }

    /// The TLS settings in use (from the URL's `sslmode` / `sslrootcert`).
    pub fn tls(&self) -> &PgTls {
        &self.inner.tls
    }

    /// A connection outside the pool, with no statement timeout: for
    /// migrations and index builds, which may legitimately run long.
    async fn dedicated_connection(&self) -> Result<tokio_postgres::Client> {
        let mut pg = self.inner.pg.clone();
        pg.options("-c statement_timeout=0");
        tokio::time::timeout(
            self.inner.config.connect_timeout,
            self.inner.tls.connect(&pg),
        )
        .await
        .map_err(|_| StoreError::Unavailable("connecting to PostgreSQL timed out".into()))?
    }

    async fn migrate(&self) -> Result<()> {
        let mut client = self.dedicated_connection().await?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
            .await?;
        let report = crate::migrate::postgres::migrations::runner()
            .run_async(&mut client)
            .await;
        // Unlock even when migrating failed; closing the session would too.
        let unlocked = client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
            .await;
        let report = report.map_err(|e| match e.kind() {
            refinery::error::Kind::Connection(..) => {
                StoreError::Unavailable(format!("PostgreSQL migration: {e}"))
            }
            _ => StoreError::Internal(format!("PostgreSQL migration failed: {e}")),
        })?;
        unlocked?;
        for m in report.applied_migrations() {
            tracing::info!("applied PostgreSQL migration {}", m);
        }
        Ok(())
    }

    /// Runs `fut` under the client-side deadline.
    async fn bounded<T>(&self, fut: impl Future<Output = Result<T>> + Send) -> Result<T> {
        let limit = self.inner.config.operation_timeout;
        tokio::time::timeout(limit, fut).await.map_err(|_| {
            StoreError::Unavailable(format!("PostgreSQL did not answer within {limit:?}"))
        })?
    }

    /// Registers `model` if new (outside any user transaction, idempotent);
    /// `Conflict` if it is registered with another dimension or metric.
    async fn ensure_model(&self, client: &impl GenericClient, model: &ModelKey) -> Result<()> {
        if let Some(known) = self.inner.models.check(model) {
            return known;
        }
        // No conflict target: the table has two unique constraints (the
        // id, and `(id, dimension)` for the templates' foreign key), and a
        // concurrent first registration can trip either; `ON CONFLICT (id)`
        // let the other one through as an error.
        client
            .execute(
                "INSERT INTO models (id, dimension, metric) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
                &[&model.id, &(model.dimension as i32), &model.metric.as_str()],
            )
            .await?;
        match self.lookup_model(client, model).await? {
            true => Ok(()),
            false => Err(StoreError::Internal(format!(
                "model {} vanished after registration",
                model.id
            ))),
        }
    }

    /// Whether `model` is registered (checking its shape); caches the answer.
    async fn lookup_model(&self, client: &impl GenericClient, model: &ModelKey) -> Result<bool> {
        if let Some(known) = self.inner.models.check(model) {
            return known.map(|()| true);
        }
        let row = client
            .query_opt(
                "SELECT dimension, metric FROM models WHERE id = $1",
                &[&model.id],
            )
            .await?;
        let Some(row) = row else { return Ok(false) };
        let dimension: i32 = row.try_get(0)?;
        let metric: String = row.try_get(1)?;
        let metric = Metric::parse(&metric)
            .ok_or_else(|| StoreError::Internal(format!("unknown stored metric {metric}")))?;
        model_cache::compare(model, dimension as usize, metric)?;
        self.inner.models.remember(model);
        Ok(true)
    }

    async fn insert_templates(
        tx: &deadpool_postgres::Transaction<'_>,
        user: UserId,
        model: &ModelKey,
        templates: &[NewTemplate],
    ) -> Result<Vec<TemplateId>> {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO templates (user_id, model_id, dimension, embedding, quality) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .await?;
        let dimension = model.dimension as i32;
        let mut ids = Vec::with_capacity(templates.len());
        for t in templates {
            let embedding = Vector::from(t.embedding.clone());
            let row = tx
                .query_one(
                    &stmt,
                    &[&user, &model.id, &dimension, &embedding, &t.quality],
                )
                .await?;
            ids.push(row.try_get(0)?);
        }
        Ok(ids)
    }

    /// `Duplicate` when a template is closer than `threshold` to a stored
    /// template of a user other than `except`. Takes a transaction-scoped
    /// advisory lock per model first, so every instance's checked writes of
    /// one model run one at a time between check and commit.
    async fn refuse_duplicates(
        tx: &deadpool_postgres::Transaction<'_>,
        model: &ModelKey,
        templates: &[NewTemplate],
        threshold: f32,
        except: Option<UserId>,
    ) -> Result<()> {
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('facegate.unique:' || $1, 0))",
            &[&model.id],
        )
        .await?;
        let stmt = tx.prepare_cached(&sql::nearest_other_user(model)).await?;
        for t in templates {
            let vector = Vector::from(t.embedding.clone());
            let row = tx
                .query_opt(&stmt, &[&vector, &except, &f64::from(threshold)])
                .await?;
            if let Some(row) = row {
                return Err(StoreError::Duplicate {
                    user_id: row.try_get(0)?,
                });
            }
        }
        Ok(())
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
        let created = self
            .bounded(async {
                let mut client = self.inner.pool.get().await?;
                self.ensure_model(&client, model).await?;
                let tx = client.transaction().await?;
                if let Some(threshold) = unique_below {
                    Self::refuse_duplicates(&tx, model, templates, threshold, None).await?;
                }
                let row = tx
                    .query_one(
                        "INSERT INTO users (name, external_ref, metadata) VALUES ($1, $2, $3) \
                         RETURNING id, created_at",
                        &[&user.name, &user.external_ref, &user.metadata],
                    )
                    .await
                    .map_err(|e| match StoreError::from(e) {
                        StoreError::Conflict(_) => {
                            StoreError::Conflict("external_ref already in use".into())
                        }
                        other => other,
                    })?;
                let id: UserId = row.try_get(0)?;
                Self::insert_templates(&tx, id, model, templates).await?;
                tx.commit().await?;
                Ok(User {
                    id,
                    name: user.name.clone(),
                    external_ref: user.external_ref.clone(),
                    metadata: user.metadata.clone(),
                    created_at: row.try_get(1)?,
                    template_count: templates.len() as i64,
                })
            })
            .await?;
        self.note_inserted(templates.len());
        Ok(created)
    }

    fn note_inserted(&self, n: usize) {
        let cfg = &self.inner.config;
        if !cfg.auto_index {
            return;
        }
        let every = (cfg.hnsw_min_templates / 10).max(1000);
        let total = self
            .inner
            .inserted_since_check
            .fetch_add(n as i64, Ordering::Relaxed)
            + n as i64;
        if total >= every {
            self.inner.inserted_since_check.store(0, Ordering::Relaxed);
            self.spawn_index_check();
        }
    }

    async fn users_page(&self, page: Page, without_model: Option<&str>) -> Result<Vec<User>> {
        self.users_where(page, without_model, &Default::default())
            .await
    }

    async fn users_where(
        &self,
        page: Page,
        without_model: Option<&str>,
        filter: &crate::types::UserFilter,
    ) -> Result<Vec<User>> {
        let client = self.inner.pool.get().await?;
        // strpos, not LIKE: the text is matched literally (no wildcards
        // to escape).
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users u WHERE u.id > $1 \
                 AND ($3::text IS NULL OR NOT EXISTS \
                      (SELECT 1 FROM templates t WHERE t.user_id = u.id AND t.model_id = $3)) \
                 AND ($4::text IS NULL OR strpos(lower(u.name), lower($4)) > 0) \
                 AND ($5::text IS NULL OR u.external_ref = $5) \
                 ORDER BY u.id LIMIT $2"
            ))
            .await?;
        let rows = client
            .query(
                &stmt,
                &[
                    &page.after_id(),
                    &page.effective_limit(),
                    &without_model,
                    &filter.name_contains,
                    &filter.external_ref,
                ],
            )
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// The query plan of a search, for tests and documentation (shows
    /// whether the HNSW index is used).
    pub async fn explain_search(
        &self,
        model: &ModelKey,
        query: &[f32],
        k: usize,
    ) -> Result<String> {
        validate::search(model, query, k)?;
        let client = self.inner.pool.get().await?;
        let limit = (k * CANDIDATES_PER_USER).max(MIN_CANDIDATES) as i64;
        let rows = client
            .query(
                &format!("EXPLAIN {}", sql::search(model)),
                &[&Vector::from(query.to_vec()), &limit, &(k as i64)],
            )
            .await?;
        let lines: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<_, String>(0))
            .collect::<std::result::Result<_, _>>()?;
        Ok(lines.join("\n"))
    }
}

#[async_trait]
impl FaceStore for PgStore {
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
        let ids = self
            .bounded(async {
                let mut client = self.inner.pool.get().await?;
                self.ensure_model(&client, model).await?;
                let tx = client.transaction().await?;
                // Lock the user row against a concurrent delete, and against
                // a concurrent addition (FOR NO KEY UPDATE conflicts with
                // itself), so the count below cannot be raced past the cap.
                let exists = tx
                    .query_opt(
                        "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE",
                        &[&user],
                    )
                    .await?
                    .is_some();
                if !exists {
                    return Err(StoreError::NotFound(format!("user {user}")));
                }
                let existing: i64 = tx
                    .query_one(
                        "SELECT count(*) FROM templates WHERE user_id = $1 AND model_id = $2",
                        &[&user, &model.id],
                    )
                    .await?
                    .try_get(0)?;
                let existing = usize::try_from(existing).unwrap_or(usize::MAX);
                if existing.saturating_add(templates.len()) > max_per_model {
                    return Err(StoreError::TemplateLimit {
                        limit: max_per_model,
                        existing,
                    });
                }
                if let Some(threshold) = unique_below {
                    Self::refuse_duplicates(&tx, model, templates, threshold, Some(user)).await?;
                }
                let ids = Self::insert_templates(&tx, user, model, templates).await?;
                tx.commit().await?;
                Ok(ids)
            })
            .await?;
        self.note_inserted(templates.len());
        Ok(ids)
    }

    async fn get_user(&self, id: UserId) -> Result<User> {
        self.bounded(async {
            let client = self.inner.pool.get().await?;
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"
                ))
                .await?;
            match client.query_opt(&stmt, &[&id]).await? {
                Some(row) => user_from_row(&row),
                None => Err(StoreError::NotFound(format!("user {id}"))),
            }
        })
        .await
    }

    async fn distance_to_user(
        &self,
        user: UserId,
        model: &ModelKey,
        query: &[f32],
    ) -> Result<Option<UserDistance>> {
        validate::search(model, query, 1)?;
        self.bounded(async {
            let client = self.inner.pool.get().await?;
            let exists = client
                .query_opt("SELECT 1 FROM users WHERE id = $1", &[&user])
                .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!("user {user}")));
            }
            if !self.lookup_model(&client, model).await? {
                return Ok(None);
            }
            let stmt = client.prepare_cached(&sql::distance_to_user(model)).await?;
            let vector = Vector::from(query.to_vec());
            let row = client.query_one(&stmt, &[&vector, &user]).await?;
            let d: Option<f64> = row.try_get(0)?;
            let n: i64 = row.try_get(1)?;
            Ok(d.map(|d| UserDistance {
                distance: d as f32,
                templates: u64::try_from(n).unwrap_or(0).max(1),
            }))
        })
        .await
    }

    async fn templates_of(&self, user: UserId) -> Result<Vec<TemplateInfo>> {
        self.bounded(async {
            let mut client = self.inner.pool.get().await?;
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let exists = tx
                .query_opt("SELECT 1 FROM users WHERE id = $1", &[&user])
                .await?
                .is_some();
            if !exists {
                return Err(StoreError::NotFound(format!("user {user}")));
            }
            let rows = tx
                .query(
                    "SELECT id, model_id, quality, created_at FROM templates \
                     WHERE user_id = $1 ORDER BY id",
                    &[&user],
                )
                .await?;
            tx.commit().await?;
            rows.iter()
                .map(|r| {
                    Ok(TemplateInfo {
                        id: r.try_get(0)?,
                        model_id: r.try_get(1)?,
                        quality: r.try_get(2)?,
                        created_at: r.try_get(3)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn delete_template(&self, user: UserId, template: TemplateId) -> Result<()> {
        self.bounded(async {
            let client = self.inner.pool.get().await?;
            let n = client
                .execute(
                    "DELETE FROM templates WHERE id = $1 AND user_id = $2",
                    &[&template, &user],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound(format!(
                    "template {template} of user {user}"
                )));
            }
            Ok(())
        })
        .await
    }

    async fn list_users(&self, page: Page) -> Result<Vec<User>> {
        self.bounded(self.users_page(page, None)).await
    }

    async fn find_users(&self, filter: &crate::types::UserFilter, page: Page) -> Result<Vec<User>> {
        self.bounded(self.users_where(page, None, filter)).await
    }

    async fn delete_user(&self, id: UserId) -> Result<()> {
        self.bounded(async {
            let client = self.inner.pool.get().await?;
            // Templates go by ON DELETE CASCADE.
            let n = client
                .execute("DELETE FROM users WHERE id = $1", &[&id])
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("user {id}")));
            }
            Ok(())
        })
        .await
    }

    async fn stats(&self) -> Result<Stats> {
        self.bounded(async {
            let mut client = self.inner.pool.get().await?;
            // REPEATABLE READ: both counts from one snapshot.
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let users: i64 = tx
                .query_one("SELECT count(*) FROM users", &[])
                .await?
                .try_get(0)?;
            let rows = tx
                .query(
                    "SELECT m.id, (SELECT count(*) FROM templates t WHERE t.model_id = m.id) \
                     FROM models m ORDER BY m.id",
                    &[],
                )
                .await?;
            tx.commit().await?;
            let templates_by_model = rows
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<Vec<(String, i64)>>>()?;
            Ok(Stats {
                users,
                templates_by_model,
            })
        })
        .await
    }

    async fn search(&self, model: &ModelKey, query: &[f32], k: usize) -> Result<Vec<Match>> {
        validate::search(model, query, k)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        self.bounded(async {
            let mut client = self.inner.pool.get().await?;
            if !self.lookup_model(&client, model).await? {
                return Ok(Vec::new());
            }
            let stmt_sql = sql::search(model);
            let vector = Vector::from(query.to_vec());
            let ef_default = self.inner.config.hnsw_ef_search as usize;
            let mut limit = (k * CANDIDATES_PER_USER).max(MIN_CANDIDATES);
            loop {
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                    [&vector, &(limit as i64), &(k as i64)];
                let rows = if limit <= ef_default {
                    let stmt = client.prepare_cached(&stmt_sql).await?;
                    client.query(&stmt, &params).await?
                } else {
                    // An HNSW scan returns at most ef_search rows: raise it
                    // for this query only.
                    let tx = client.transaction().await?;
                    tx.batch_execute(&format!(
                        "SET LOCAL hnsw.ef_search = {}",
                        limit.min(MAX_EF_SEARCH)
                    ))
                    .await?;
                    let stmt = tx.prepare_cached(&stmt_sql).await?;
                    let rows = tx.query(&stmt, &params).await?;
                    tx.commit().await?;
                    rows
                };
                let n_candidates: i64 = match rows.first() {
                    Some(r) => r.try_get(4)?,
                    None => 0,
                };
                // Done when k users were found, when the candidates were not
                // cut short (there is nothing more to find), or at the cap.
                if rows.len() >= k || (n_candidates as usize) < limit || limit >= 64 * MAX_EF_SEARCH
                {
                    return rows
                        .iter()
                        .map(|r| {
                            Ok(Match {
                                user_id: r.try_get(0)?,
                                name: r.try_get(1)?,
                                template_id: r.try_get(2)?,
                                distance: r.try_get::<_, f64>(3)? as f32,
                            })
                        })
                        .collect();
                }
                limit *= 4;
            }
        })
        .await
    }

    async fn users_without_model(&self, model: &ModelKey, page: Page) -> Result<Vec<User>> {
        validate::model(model)?;
        self.bounded(self.users_page(page, Some(&model.id))).await
    }

    async fn health(&self) -> Result<()> {
        self.bounded(async {
            let client = self.inner.pool.get().await?;
            client.query_one("SELECT 1", &[]).await?;
            Ok(())
        })
        .await
    }
}
