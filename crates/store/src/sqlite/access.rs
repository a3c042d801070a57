//! [`AccessStore`] for SQLite: keys, lockouts and the audit log in the same
//! file as the templates. Writes go through the one writer connection, so
//! the lockout's read-modify-write is atomic without further locking.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::SqliteStore;
use crate::access::{
    self, AccessStore, ApiKey, AuditEvent, AuditQuery, KeyId, Lockout, LockoutChange,
    LockoutUpdate, NewApiKey, NewAuditEvent,
};
use crate::error::{Result, StoreError};
use crate::liveness::{self, LivenessSession, NewLivenessSession, NewLivenessToken, RedeemedToken};
use crate::types::UserId;

fn now() -> i64 {
    Utc::now().timestamp_micros()
}

fn time(micros: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| StoreError::Internal(format!("stored timestamp {micros} out of range")))
}

type KeyRow = (i64, String, String, Vec<u8>, String, i64, Option<i64>);

fn key_from_row(r: &Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn to_key(row: KeyRow) -> Result<ApiKey> {
    let (id, name, prefix, secret_hash, scopes, created, revoked) = row;
    Ok(ApiKey {
        id,
        name,
        prefix,
        secret_hash,
        scopes: access::split_scopes(&scopes),
        created_at: time(created)?,
        revoked_at: revoked.map(time).transpose()?,
    })
}

const KEY_COLUMNS: &str = "id, name, prefix, secret_hash, scopes, created_at, revoked_at";

fn lockout_of(conn: &Connection, user: UserId) -> Result<Lockout> {
    type Stored = (i64, Option<i64>, bool, i64, Option<i64>);
    let row: Option<Stored> = conn
        .query_row(
            "SELECT failures, locked_until, disabled, pending, pending_since \
             FROM verify_lockouts WHERE user_id = ?1",
            [user],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    Ok(match row {
        None => Lockout::default(),
        Some((failures, until, disabled, pending, since)) => Lockout {
            failures: u32::try_from(failures).unwrap_or(u32::MAX),
            locked_until: until.map(time).transpose()?,
            disabled,
            pending: u32::try_from(pending).unwrap_or(u32::MAX),
            pending_since: since.map(time).transpose()?,
        },
    })
}

#[async_trait]
impl AccessStore for SqliteStore {
    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey> {
        access::validate_key(&key)?;
        self.write(move |conn, _, _| {
            let created = now();
            let inserted = conn.execute(
                "INSERT INTO api_keys (name, prefix, secret_hash, scopes, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (prefix) DO NOTHING",
                params![
                    key.name,
                    key.prefix,
                    key.secret_hash.as_slice(),
                    access::join_scopes(&key.scopes),
                    created
                ],
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!(
                    "an API key with prefix {} exists",
                    key.prefix
                )));
            }
            Ok(ApiKey {
                id: conn.last_insert_rowid(),
                name: key.name,
                prefix: key.prefix,
                secret_hash: key.secret_hash.to_vec(),
                scopes: key.scopes,
                created_at: time(created)?,
                revoked_at: None,
            })
        })
        .await
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKey>> {
        let prefix = prefix.to_string();
        self.read(move |conn, _| {
            conn.query_row(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE prefix = ?1"),
                [&prefix],
                key_from_row,
            )
            .optional()?
            .map(to_key)
            .transpose()
        })
        .await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        self.read(|conn, _| {
            let mut stmt =
                conn.prepare(&format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id"))?;
            let rows = stmt.query_map([], key_from_row)?;
            rows.map(|r| to_key(r?)).collect()
        })
        .await
    }

    async fn revoke_api_key(&self, id: KeyId) -> Result<()> {
        self.write(move |conn, _, _| {
            let n = conn.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
                params![id, now()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("API key {id}")));
            }
            Ok(())
        })
        .await
    }

    async fn lockout(&self, user: UserId) -> Result<Lockout> {
        self.read(move |conn, _| lockout_of(conn, user)).await
    }

    async fn failing_lockouts(&self, limit: usize) -> Result<Vec<(UserId, Lockout)>> {
        let limit = limit.min(crate::Page::MAX_LIMIT) as i64;
        self.read(move |conn, _| {
            let mut stmt = conn.prepare_cached(
                "SELECT user_id FROM verify_lockouts WHERE failures > 0 OR disabled \
                 ORDER BY user_id LIMIT ?1",
            )?;
            let users = stmt
                .query_map([limit], |r| r.get::<_, UserId>(0))?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            users
                .into_iter()
                .map(|u| Ok((u, lockout_of(conn, u)?)))
                .collect()
        })
        .await
    }

    async fn update_lockout(&self, user: UserId, update: LockoutUpdate) -> Result<LockoutChange> {
        // On the one writer connection, in one transaction: no other update
        // of any lockout can come between the read and the write. The
        // store's clock is this process's (SQLite is single-instance).
        self.write(move |conn, _, _| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            super::ops::require_user(&tx, user)?;
            let before = lockout_of(&tx, user)?;
            let at = now();
            let clock = time(at)?;
            let after = update(&before, clock);
            let micros = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp_micros());
            tx.execute(
                "INSERT INTO verify_lockouts \
                   (user_id, failures, locked_until, disabled, pending, pending_since, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (user_id) DO UPDATE SET failures = ?2, locked_until = ?3, \
                 disabled = ?4, pending = ?5, pending_since = ?6, updated_at = ?7",
                params![
                    user,
                    after.failures,
                    micros(after.locked_until),
                    after.disabled,
                    after.pending,
                    micros(after.pending_since),
                    at
                ],
            )?;
            tx.commit()?;
            Ok(LockoutChange {
                before,
                after,
                now: clock,
            })
        })
        .await
    }

    async fn reset_lockout(&self, user: UserId) -> Result<()> {
        self.write(move |conn, _, _| {
            conn.execute("DELETE FROM verify_lockouts WHERE user_id = ?1", [user])?;
            Ok(())
        })
        .await
    }

    async fn append_audit(&self, e: NewAuditEvent) -> Result<()> {
        access::validate_audit(&e)?;
        self.write(move |conn, _, _| {
            conn.execute(
                "INSERT INTO audit_log \
                 (at, key_id, client, action, outcome, user_id, distance, detail, liveness_score) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    now(),
                    e.key_id,
                    e.client,
                    e.action,
                    e.outcome,
                    e.user_id,
                    e.distance.map(f64::from),
                    e.detail,
                    e.liveness_score.map(f64::from)
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn list_audit(&self, q: AuditQuery) -> Result<Vec<AuditEvent>> {
        access::validate_audit_query(&q)?;
        self.read(move |conn, _| {
            let mut stmt = conn.prepare(
                "SELECT id, at, key_id, client, action, outcome, user_id, distance, detail, \
                 liveness_score FROM audit_log \
                 WHERE (?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR at >= ?2) \
                 AND (?3 IS NULL OR at < ?3) AND (?4 IS NULL OR id < ?4) \
                 ORDER BY id DESC LIMIT ?5",
            )?;
            let rows = stmt.query_map(
                params![
                    q.user_id,
                    q.since.map(|t| t.timestamp_micros()),
                    q.until.map(|t| t.timestamp_micros()),
                    q.before,
                    q.limit as i64
                ],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get::<_, Option<f64>>(7)?,
                        r.get(8)?,
                        r.get::<_, Option<f64>>(9)?,
                    ))
                },
            )?;
            rows.map(|r| {
                let (id, at, key_id, client, action, outcome, user_id, distance, detail, live) = r?;
                Ok(AuditEvent {
                    id,
                    at: time(at)?,
                    key_id,
                    client,
                    action,
                    outcome,
                    user_id,
                    distance: distance.map(|d| d as f32),
                    detail,
                    liveness_score: live.map(|s| s as f32),
                })
            })
            .collect()
        })
        .await
    }

    async fn create_liveness_session(&self, s: NewLivenessSession) -> Result<LivenessSession> {
        liveness::validate_session(&s)?;
        self.write(move |conn, _, _| {
            let created = now();
            let expires = created + i64::from(s.ttl_secs) * 1_000_000;
            conn.execute(
                "INSERT INTO liveness_sessions \
                 (id, purpose, user_id, key_id, challenge, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    s.id,
                    s.purpose,
                    s.user_id,
                    s.key_id,
                    s.challenge.to_string(),
                    created,
                    expires
                ],
            )?;
            Ok(LivenessSession {
                id: s.id,
                purpose: s.purpose,
                user_id: s.user_id,
                key_id: s.key_id,
                challenge: s.challenge,
                created_at: time(created)?,
                expires_at: time(expires)?,
                outcome: None,
            })
        })
        .await
    }

    async fn liveness_session(&self, id: &str) -> Result<Option<LivenessSession>> {
        let id = id.to_string();
        self.read(move |conn, _| {
            type Stored = (
                String,
                String,
                Option<i64>,
                Option<i64>,
                String,
                i64,
                i64,
                Option<String>,
            );
            let row: Option<Stored> = conn
                .query_row(
                    "SELECT id, purpose, user_id, key_id, challenge, created_at, expires_at, \
                     outcome FROM liveness_sessions WHERE id = ?1",
                    [&id],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                        ))
                    },
                )
                .optional()?;
            row.map(
                |(id, purpose, user_id, key_id, challenge, created, expires, outcome)| {
                    Ok(LivenessSession {
                        id,
                        purpose,
                        user_id,
                        key_id,
                        challenge: serde_json::from_str(&challenge).map_err(|e| {
                            StoreError::Internal(format!("stored challenge is not JSON: {e}"))
                        })?,
                        created_at: time(created)?,
                        expires_at: time(expires)?,
                        outcome,
                    })
                },
            )
            .transpose()
        })
        .await
    }

    async fn finish_liveness_session(
        &self,
        id: &str,
        outcome: &str,
        token: Option<NewLivenessToken>,
    ) -> Result<bool> {
        liveness::validate_finish(outcome, token.as_ref())?;
        let (id, outcome) = (id.to_string(), outcome.to_string());
        self.write(move |conn, _, _| {
            let tx = conn.transaction()?;
            let at = now();
            let finished = tx.execute(
                "UPDATE liveness_sessions SET outcome = ?2, finished_at = ?3 \
                 WHERE id = ?1 AND outcome IS NULL AND expires_at > ?3",
                params![id, outcome, at],
            )?;
            if finished == 0 {
                return Ok(false);
            }
            if let Some(t) = token {
                tx.execute(
                    "INSERT INTO liveness_tokens \
                     (token_hash, session_id, model_id, embedding, expires_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        t.token_hash.as_slice(),
                        id,
                        t.model_id,
                        liveness::embedding_bytes(&t.embedding),
                        at + i64::from(t.ttl_secs) * 1_000_000
                    ],
                )?;
            }
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn redeem_liveness_token(
        &self,
        token_hash: [u8; 32],
        key_id: Option<KeyId>,
        user_id: Option<UserId>,
    ) -> Result<Option<RedeemedToken>> {
        self.write(move |conn, _, _| {
            // One statement on the one writer: a token is deleted once.
            // `IS` compares NULLs too: an enrol session has no user.
            let row: Option<(String, String, Vec<u8>)> = conn
                .query_row(
                    "DELETE FROM liveness_tokens WHERE token_hash = ?1 AND expires_at > ?2 \
                     AND session_id IN (SELECT id FROM liveness_sessions \
                                        WHERE key_id IS ?3 AND user_id IS ?4) \
                     RETURNING session_id, model_id, embedding",
                    params![token_hash.as_slice(), now(), key_id, user_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            row.map(|(session_id, model_id, bytes)| {
                Ok(RedeemedToken {
                    session_id,
                    model_id,
                    embedding: liveness::embedding_from_bytes(&bytes)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn purge_liveness_sessions(&self, expired_for_secs: u32) -> Result<u64> {
        self.write(move |conn, _, _| {
            let before = now() - i64::from(expired_for_secs) * 1_000_000;
            let deleted = conn.execute(
                "DELETE FROM liveness_sessions WHERE expires_at < ?1",
                params![before],
            )?;
            Ok(deleted as u64)
        })
        .await
    }

    async fn create_stream_ticket(
        &self,
        ticket_hash: [u8; 32],
        key_id: Option<KeyId>,
        ttl_secs: u32,
    ) -> Result<()> {
        self.write(move |conn, _, _| {
            let now = now();
            conn.execute(
                "DELETE FROM stream_tickets WHERE expires_at < ?1",
                params![now],
            )?;
            conn.execute(
                "INSERT INTO stream_tickets (ticket_hash, key_id, expires_at) VALUES (?1, ?2, ?3)",
                params![
                    ticket_hash.as_slice(),
                    key_id,
                    now + i64::from(ttl_secs) * 1_000_000
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn redeem_stream_ticket(&self, ticket_hash: [u8; 32]) -> Result<Option<Option<KeyId>>> {
        self.write(move |conn, _, _| {
            // One statement on the one writer: a ticket is redeemed once.
            Ok(conn
                .query_row(
                    "DELETE FROM stream_tickets WHERE ticket_hash = ?1 AND expires_at > ?2 \
                     RETURNING key_id",
                    params![ticket_hash.as_slice(), now()],
                    |r| r.get::<_, Option<KeyId>>(0),
                )
                .optional()?)
        })
        .await
    }
}
