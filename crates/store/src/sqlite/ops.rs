//! The SQLite store's blocking CRUD operations (search is in `search.rs`).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

use super::cache::{self, Change, SharedCache};
use crate::distance::to_le_bytes;
use crate::error::{Result, StoreError};
use crate::model_cache::{self, ModelCache};
use crate::types::{
    Metric, ModelKey, NewTemplate, NewUser, Page, Stats, TemplateId, TemplateInfo, User, UserId,
};

const USER_COLUMNS: &str = "u.id, u.name, u.external_ref, u.metadata, u.created_at, \
     (SELECT count(*) FROM templates t WHERE t.user_id = u.id)";

fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

fn micros_to_time(micros: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| StoreError::Internal(format!("stored timestamp {micros} out of range")))
}

/// `NotFound` unless `user` exists (in the snapshot or write of `conn`).
pub(super) fn require_user(conn: &Connection, user: UserId) -> Result<()> {
    let exists = conn
        .query_row("SELECT 1 FROM users WHERE id = ?1", [user], |_| Ok(()))
        .optional()?
        .is_some();
    if exists {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!("user {user}")))
    }
}

/// Registers `model` inside `tx` if it is new; `Conflict` if its shape differs.
/// Returns true when the caller should remember it after committing.
fn ensure_model(tx: &Transaction<'_>, models: &ModelCache, model: &ModelKey) -> Result<bool> {
    if let Some(known) = models.check(model) {
        known?;
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO models (id, dimension, metric, created_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (id) DO NOTHING",
        params![
            model.id,
            model.dimension as i64,
            model.metric.as_str(),
            now_micros()
        ],
    )?;
    let (dimension, metric): (i64, String) = tx.query_row(
        "SELECT dimension, metric FROM models WHERE id = ?1",
        [&model.id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let metric = Metric::parse(&metric)
        .ok_or_else(|| StoreError::Internal(format!("unknown stored metric {metric}")))?;
    model_cache::compare(model, dimension as usize, metric)?;
    Ok(true)
}

/// Bumps the write generation (see `cache.rs`); returns the new value.
fn bump_generation(tx: &Transaction<'_>) -> Result<i64> {
    Ok(tx.query_row(
        "UPDATE store_meta SET generation = generation + 1 WHERE id = 1 RETURNING generation",
        [],
        |r| r.get(0),
    )?)
}

fn insert_templates(
    tx: &Transaction<'_>,
    user: UserId,
    model: &ModelKey,
    templates: &[NewTemplate],
    now: i64,
) -> Result<Vec<TemplateId>> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO templates (user_id, model_id, dimension, embedding, quality, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut ids = Vec::with_capacity(templates.len());
    for t in templates {
        stmt.execute(params![
            user,
            model.id,
            model.dimension as i64,
            to_le_bytes(&t.embedding),
            f64::from(t.quality),
            now
        ])?;
        ids.push(tx.last_insert_rowid());
    }
    Ok(ids)
}

/// `Duplicate` when a template is closer than `threshold` to a stored
/// template of a user other than `except`. Runs inside the writer's
/// transaction: no other write can come between this check and the insert.
fn refuse_duplicates(
    tx: &Transaction<'_>,
    vectors: &SharedCache,
    model: &ModelKey,
    templates: &[NewTemplate],
    threshold: f32,
    except: Option<UserId>,
) -> Result<()> {
    for t in templates {
        let hit = super::search::rank(tx, vectors, model, &t.embedding, 2)?
            .into_iter()
            .find(|(user, _, d)| Some(*user) != except && *d < threshold);
        if let Some((user_id, _, _)) = hit {
            return Err(StoreError::Duplicate { user_id });
        }
    }
    Ok(())
}

pub(super) fn create_user(
    conn: &mut Connection,
    models: &ModelCache,
    vectors: &SharedCache,
    user: &NewUser,
    model: &ModelKey,
    templates: &[NewTemplate],
    unique_below: Option<f32>,
) -> Result<User> {
    // IMMEDIATE takes the write lock up front, so a concurrent writer in
    // another process makes us wait (busy_timeout) rather than fail mid-way.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let new_model = ensure_model(&tx, models, model)?;
    if let Some(threshold) = unique_below {
        refuse_duplicates(&tx, vectors, model, templates, threshold, None)?;
    }
    let now = now_micros();
    let metadata = user
        .metadata
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::bad(format!("metadata: {e}")))?;
    tx.execute(
        "INSERT INTO users (name, external_ref, metadata, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![user.name, user.external_ref, metadata, now],
    )
    .map_err(|e| match StoreError::from(e) {
        StoreError::Conflict(_) => StoreError::Conflict("external_ref already in use".into()),
        other => other,
    })?;
    let id = tx.last_insert_rowid();
    let ids = insert_templates(&tx, id, model, templates, now)?;
    let generation = bump_generation(&tx)?;
    tx.commit()?;
    if new_model {
        models.remember(model);
    }
    cache::apply(vectors, generation, added(model, id, ids, templates));
    Ok(User {
        id,
        name: user.name.clone(),
        external_ref: user.external_ref.clone(),
        metadata: user.metadata.clone(),
        created_at: micros_to_time(now)?,
        template_count: templates.len() as i64,
    })
}

/// What an addition of templates is checked against inside the write.
pub(super) struct AddChecks {
    /// The most templates of the model the user may have.
    pub max_per_model: usize,
    /// Refuse templates this close to another user's.
    pub unique_below: Option<f32>,
}

pub(super) fn add_templates(
    conn: &mut Connection,
    models: &ModelCache,
    vectors: &SharedCache,
    user: UserId,
    model: &ModelKey,
    templates: &[NewTemplate],
    checks: AddChecks,
) -> Result<Vec<TemplateId>> {
    let AddChecks {
        max_per_model,
        unique_below,
    } = checks;
    // IMMEDIATE: the count below and the insert happen under the write lock.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    require_user(&tx, user)?;
    let existing: i64 = tx.query_row(
        "SELECT count(*) FROM templates WHERE user_id = ?1 AND model_id = ?2",
        params![user, model.id],
        |r| r.get(0),
    )?;
    let existing = usize::try_from(existing).unwrap_or(usize::MAX);
    if existing.saturating_add(templates.len()) > max_per_model {
        return Err(StoreError::TemplateLimit {
            limit: max_per_model,
            existing,
        });
    }
    let new_model = ensure_model(&tx, models, model)?;
    if let Some(threshold) = unique_below {
        refuse_duplicates(&tx, vectors, model, templates, threshold, Some(user))?;
    }
    let ids = insert_templates(&tx, user, model, templates, now_micros())?;
    let generation = bump_generation(&tx)?;
    tx.commit()?;
    if new_model {
        models.remember(model);
    }
    cache::apply(
        vectors,
        generation,
        added(model, user, ids.clone(), templates),
    );
    Ok(ids)
}

fn user_from_row(r: &Row<'_>) -> Result<User> {
    let metadata: Option<String> = r.get(3)?;
    let metadata = metadata
        .map(|m| serde_json::from_str(&m))
        .transpose()
        .map_err(|e| StoreError::Internal(format!("stored metadata is not JSON: {e}")))?;
    Ok(User {
        id: r.get(0)?,
        name: r.get(1)?,
        external_ref: r.get(2)?,
        metadata,
        created_at: micros_to_time(r.get(4)?)?,
        template_count: r.get(5)?,
    })
}

pub(super) fn get_user(conn: &mut Connection, id: UserId) -> Result<User> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1"
    ))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => user_from_row(r),
        None => Err(StoreError::NotFound(format!("user {id}"))),
    }
}

/// A page of users; with `without_model`, only users lacking that model.
pub(super) fn list_users(
    conn: &mut Connection,
    page: Page,
    without_model: Option<&str>,
) -> Result<Vec<User>> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.id > ?1 \
         AND (?3 IS NULL OR NOT EXISTS \
              (SELECT 1 FROM templates t WHERE t.user_id = u.id AND t.model_id = ?3)) \
         ORDER BY u.id LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![
        page.after_id(),
        page.effective_limit(),
        without_model
    ])?;
    let mut users = Vec::new();
    while let Some(r) = rows.next()? {
        users.push(user_from_row(r)?);
    }
    Ok(users)
}

/// The users `filter` selects, one page (`instr`, not `LIKE`: the text is
/// matched literally).
pub(super) fn find_users(
    conn: &mut Connection,
    page: Page,
    filter: &crate::types::UserFilter,
) -> Result<Vec<User>> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.id > ?1 \
         AND (?3 IS NULL OR instr(lower(u.name), lower(?3)) > 0) \
         AND (?4 IS NULL OR u.external_ref = ?4) \
         ORDER BY u.id LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![
        page.after_id(),
        page.effective_limit(),
        filter.name_contains,
        filter.external_ref
    ])?;
    let mut users = Vec::new();
    while let Some(r) = rows.next()? {
        users.push(user_from_row(r)?);
    }
    Ok(users)
}

pub(super) fn delete_user(conn: &mut Connection, vectors: &SharedCache, id: UserId) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Templates go by ON DELETE CASCADE (foreign_keys is on for every connection).
    let n = tx.execute("DELETE FROM users WHERE id = ?1", [id])?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("user {id}")));
    }
    let generation = bump_generation(&tx)?;
    tx.commit()?;
    cache::apply(vectors, generation, Change::UserDeleted(id));
    Ok(())
}

pub(super) fn templates_of(conn: &mut Connection, user: UserId) -> Result<Vec<TemplateInfo>> {
    let tx = conn.transaction()?;
    require_user(&tx, user)?;
    let mut out = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT id, model_id, quality, created_at FROM templates WHERE user_id = ?1 ORDER BY id",
        )?;
        let mut rows = stmt.query([user])?;
        while let Some(r) = rows.next()? {
            out.push(TemplateInfo {
                id: r.get(0)?,
                model_id: r.get(1)?,
                quality: r.get::<_, f64>(2)? as f32,
                created_at: micros_to_time(r.get(3)?)?,
            });
        }
    }
    tx.commit()?;
    Ok(out)
}

pub(super) fn delete_template(
    conn: &mut Connection,
    vectors: &SharedCache,
    user: UserId,
    template: TemplateId,
) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let n = tx.execute(
        "DELETE FROM templates WHERE id = ?1 AND user_id = ?2",
        params![template, user],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!(
            "template {template} of user {user}"
        )));
    }
    let generation = bump_generation(&tx)?;
    tx.commit()?;
    cache::apply(vectors, generation, Change::TemplateDeleted(template));
    Ok(())
}

fn added(
    model: &ModelKey,
    user: UserId,
    ids: Vec<TemplateId>,
    templates: &[NewTemplate],
) -> Change {
    Change::Added {
        model_id: model.id.clone(),
        user,
        templates: ids
            .into_iter()
            .zip(templates)
            .map(|(id, t)| (id, t.embedding.clone()))
            .collect(),
    }
}

pub(super) fn stats(conn: &mut Connection) -> Result<Stats> {
    let tx = conn.transaction()?;
    let users: i64 = tx.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
    let templates_by_model = {
        let mut stmt = tx.prepare_cached(
            "SELECT m.id, (SELECT count(*) FROM templates t WHERE t.model_id = m.id) \
             FROM models m ORDER BY m.id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    tx.commit()?;
    Ok(Stats {
        users,
        templates_by_model,
    })
}
