//! [`AccessStore`] for PostgreSQL. The lockout update is one `INSERT ... ON
//! CONFLICT DO UPDATE` on the database's clock, so concurrent failures from
//! several server instances each count, and every instance sees the same
//! `locked_until`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::PgStore;
use crate::access::{
    self, AccessStore, ApiKey, AuditEvent, AuditQuery, KeyId, Lockout, LockoutChange,
    LockoutUpdate, NewApiKey, NewAuditEvent,
};
use crate::error::{Result, StoreError};
use crate::liveness::{self, LivenessSession, NewLivenessSession, NewLivenessToken, RedeemedToken};
use crate::types::UserId;

const SESSION_COLUMNS: &str =
    "id, purpose, user_id, key_id, challenge, created_at, expires_at, outcome";

fn session_from_row(r: &Row) -> Result<LivenessSession> {
    Ok(LivenessSession {
        id: r.try_get(0)?,
        purpose: r.try_get(1)?,
        user_id: r.try_get(2)?,
        key_id: r.try_get(3)?,
        challenge: r.try_get(4)?,
        created_at: r.try_get(5)?,
        expires_at: r.try_get(6)?,
        outcome: r.try_get(7)?,
    })
}

const KEY_COLUMNS: &str = "id, name, prefix, secret_hash, scopes, created_at, revoked_at";

fn key_from_row(r: &Row) -> Result<ApiKey> {
    let scopes: String = r.try_get(4)?;
    Ok(ApiKey {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        prefix: r.try_get(2)?,
        secret_hash: r.try_get(3)?,
        scopes: access::split_scopes(&scopes),
        created_at: r.try_get(5)?,
        revoked_at: r.try_get(6)?,
    })
}

const LOCKOUT_COLUMNS: &str = "failures, locked_until, disabled, pending, pending_since";

fn lockout_from_row(r: &Row) -> Result<Lockout> {
    let failures: i32 = r.try_get(0)?;
    let pending: i32 = r.try_get(3)?;
    Ok(Lockout {
        failures: u32::try_from(failures).unwrap_or(0),
        locked_until: r.try_get(1)?,
        disabled: r.try_get(2)?,
        pending: u32::try_from(pending).unwrap_or(0),
        pending_since: r.try_get(4)?,
    })
}

#[async_trait]
impl AccessStore for PgStore {
    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey> {
        access::validate_key(&key)?;
        self.bounded(async {
            let client = self.inner.pool.get().await?;
            let row = client
                .query_one(
                    &format!(
                        "INSERT INTO api_keys (name, prefix, secret_hash, scopes) \
                         VALUES ($1, $2, $3, $4) RETURNING {KEY_COLUMNS}"
                    ),
                    &[
                        &key.name,
                        &key.prefix,
                        &key.secret_hash.as_slice(),
                        &access::join_scopes(&key.scopes),
                    ],
                )
                .await?;
            key_from_row(&row)
        })
        .await
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKey>> {
        self.bounded(async {
            let client = self.inner.pool.get().await?;
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE prefix = $1"
                ))
                .await?;
            client
                .query_opt(&stmt, &[&prefix])
                .await?
                .as_ref()
                .map(key_from_row)
                .transpose()
        })
        .await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        self.bounded(async {
            let client = self.inner.pool.get().await?;
            let rows = client
                .query(
                    &format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id"),
                    &[],
                )
                .await?;
            rows.iter().map(key_from_row).collect()
        })
        .await
    }

    async fn revoke_api_key(&self, id: KeyId) -> Result<()> {
        self.bounded(async {
            let client = self.inner.pool.get().await?;
            let n = client
                .execute(
                    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1",
                    &[&id],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("API key {id}")));
            }
            Ok(())
        })
        .await
    }

    async fn lockout(&self, user: UserId) -> Result<Lockout> {
        self.bounded(async {
            let client = self.inner.pool.get().await?;
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {LOCKOUT_COLUMNS} FROM verify_lockouts WHERE user_id = $1"
                ))
                .await?;
            match client.query_opt(&stmt, &[&user]).await? {
                Some(row) => lockout_from_row(&row),
                None => Ok(Lockout::default()),
            }
        })
        .await
    }

    async fn failing_lockouts(&self, limit: usize) -> Result<Vec<(UserId, Lockout)>> {
        self.bounded(async {
            let client = self.inner.pool.get().await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {LOCKOUT_COLUMNS}, user_id FROM verify_lockouts \
                         WHERE failures > 0 OR disabled ORDER BY user_id LIMIT $1"
                    ),
                    &[&(limit.min(crate::Page::MAX_LIMIT) as i64)],
                )
                .await?;
            // The state's columns first, as `lockout_from_row` reads them.
            rows.iter()
                .map(|r| Ok((r.try_get::<_, UserId>(5)?, lockout_from_row(r)?)))
                .collect()
        })
        .await
    }

    async fn update_lockout(&self, user: UserId, update: LockoutUpdate) -> Result<LockoutChange> {
        self.bounded(async {
            let mut client = self.inner.pool.get().await?;
            let tx = client.transaction().await?;
            // Make sure the row exists (a missing user fails the foreign
            // key: NotFound), then lock it: every instance's update of this
            // user waits here, and reads the database's clock after the wait.
            tx.execute(
                "INSERT INTO verify_lockouts (user_id, failures) VALUES ($1, 0) \
                 ON CONFLICT (user_id) DO NOTHING",
                &[&user],
            )
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::NotFound(_) => StoreError::NotFound(format!("user {user}")),
                other => other,
            })?;
            // No row: the user was deleted between the insert and the lock.
            let row = tx
                .query_opt(
                    &format!(
                        "SELECT {LOCKOUT_COLUMNS}, clock_timestamp() FROM verify_lockouts \
                         WHERE user_id = $1 FOR UPDATE"
                    ),
                    &[&user],
                )
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("user {user}")))?;
            let before = lockout_from_row(&row)?;
            let now: DateTime<Utc> = row.try_get(5)?;
            let after = update(&before, now);
            let count = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
            tx.execute(
                "UPDATE verify_lockouts SET failures = $2, locked_until = $3, disabled = $4, \
                 pending = $5, pending_since = $6, updated_at = $7 WHERE user_id = $1",
                &[
                    &user,
                    &count(after.failures),
                    &after.locked_until,
                    &after.disabled,
                    &count(after.pending),
                    &after.pending_since,
                    &now,
                ],
            )
            .await?;
            tx.commit().await?;
            Ok(LockoutChange { before, after, now })
        })
        .await
    }

    async fn reset_lockout(&self, user: UserId) -> Result<()> {
        self.bounded(async {
            let client = self.inner.pool.get().await?;
            client
                .execute("DELETE FROM verify_lockouts WHERE user_id = $1", &[&user])
                .await?;
            Ok(())
        })
        .await
    }

    async fn append_audit(&self, e: NewAuditEvent) -> Result<()> {
        access::validate_audit(&e)?;
        self.bounded(async {
            let client = self.inner.pool.get().await?;
            let stmt = client
                .prepare_cached(
                    "INSERT INTO audit_log \
                     (key_id, client, action, outcome, user_id, distance, detail, liveness_score) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .await?;
            client
                .execute(
                    &stmt,
                    &[
                        &e.key_id,
                        &e.client,
                        &e.action,
                        &e.outcome,
                        &e.user_id,
                        &e.distance,
                        &e.detail,
                        &e.liveness_score,
                    ],
                )
                .await?;
            Ok(())
        })
        .await
    }

    async fn list_audit(&self, q: AuditQuery) -> Result<Vec<AuditEvent>> {
        access::validate_audit_query(&q)?;
        self.bounded(async {
            let client = self.inner.pool.get().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT id, at, key_id, client, action, outcome, user_id, distance, detail, \
                     liveness_score FROM audit_log \
                     WHERE ($1::bigint IS NULL OR user_id = $1) \
                       AND ($2::timestamptz IS NULL OR at >= $2) \
                       AND ($3::timestamptz IS NULL OR at < $3) \
                       AND ($4::bigint IS NULL OR id < $4) \
                     ORDER BY id DESC LIMIT $5",
                )
                .await?;
            let rows = client
                .query(
                    &stmt,
                    &[&q.user_id, &q.since, &q.until, &q.before, &(q.limit as i64)],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(AuditEvent {
                        id: r.try_get(0)?,
                        at: r.try_get(1)?,
                        key_id: r.try_get(2)?,
                        client: r.try_get(3)?,
                        action: r.try_get(4)?,
                        outcome: r.try_get(5)?,
                        user_id: r.try_get(6)?,
                        distance: r.try_get(7)?,
                        detail: r.try_get(8)?,
                        liveness_score: r.try_get(9)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn create_liveness_session(&self, s: NewLivenessSession) -> Result<LivenessSession> {
        liveness::validate_session(&s)?;
        self.bounded(async {
            let client = self.inner.pool.get().await?;
            let ttl = f64::from(s.ttl_secs);
            let row = client
                .query_one(
                    &format!(
                        "INSERT INTO liveness_sessions \
                         (id, purpose, user_id, key_id, challenge, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, clock_timestamp() + make_interval(secs => $6)) \
                         RETURNING {SESSION_COLUMNS}"
                    ),
                    &[&s.id, &s.purpose, &s.user_id, &s.key_id, &s.challenge, &ttl],
                )
                .await?;
            session_from_row(&row)
        })
        .await
    }

    async fn liveness_session(&self, id: &str) -> Result<Option<LivenessSession>> {
        self.bounded(async {
            let client = self.inner.pool.get().await?;
            let row = client
                .query_opt(
                    &format!("SELECT {SESSION_COLUMNS} FROM liveness_sessions WHERE id = $1"),
                    &[&id],
                )
                .await?;
            row.as_ref().map(session_from_row).transpose()
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
        self.bounded(async {
            let mut client = self.inner.pool.get().await?;
            let tx = client.transaction().await?;
            let finished = tx
                .execute(
                    "UPDATE liveness_sessions SET outcome = $2, finished_at = clock_timestamp() \
                     WHERE id = $1 AND outcome IS NULL AND expires_at > clock_timestamp()",
                    &[&id, &outcome],
                )
                .await?;
            if finished == 0 {
                return Ok(false);
            }
            if let Some(t) = token {
                let ttl = f64::from(t.ttl_secs);
                tx.execute(
                    "INSERT INTO liveness_tokens \
                     (token_hash, session_id, model_id, embedding, expires_at) \
                     VALUES ($1, $2, $3, $4, clock_timestamp() + make_interval(secs => $5))",
                    &[
                        &t.token_hash.as_slice(),
                        &id,
                        &t.model_id,
                        &liveness::embedding_bytes(&t.embedding),
                        &ttl,
                    ],
                )
                .await?;
            }
            tx.commit().await?;
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
        self.bounded(async {
            let client = self.inner.pool.get().await?;
            // One statement: of two concurrent redemptions, one deletes
            // the row and the other finds none. A verify session has its
            // user and an enrol session none (`validate_session`), so the
            // user's comparison also binds the purpose.
            let row = client
                .query_opt(
                    "DELETE FROM liveness_tokens t USING liveness_sessions s \
                     WHERE t.token_hash = $1 AND t.session_id = s.id \
                       AND t.expires_at > clock_timestamp() \
                       AND s.key_id IS NOT DISTINCT FROM $2 AND s.user_id IS NOT DISTINCT FROM $3 \
                     RETURNING t.session_id, t.model_id, t.embedding",
                    &[&token_hash.as_slice(), &key_id, &user_id],
                )
                .await?;
            row.map(|r| {
                let bytes: Vec<u8> = r.try_get(2)?;
                Ok(RedeemedToken {
                    session_id: r.try_get(0)?,
                    model_id: r.try_get(1)?,
                    embedding: liveness::embedding_from_bytes(&bytes)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn purge_liveness_sessions(&self, expired_for_secs: u32) -> Result<u64> {
        self.bounded(async {
            let client = self.inner.pool.get().await?;
            // Tokens go with their session (ON DELETE CASCADE); a token
            // outlives its session's expiry by at most its own lifetime,
            // far less than the grace.
            let deleted = client
                .execute(
                    "DELETE FROM liveness_sessions \
                     WHERE expires_at < clock_timestamp() - make_interval(secs => $1)",
                    &[&f64::from(expired_for_secs)],
                )
                .await?;
            Ok(deleted)
        })
        .await
    }

    async fn create_stream_ticket(
        &self,
        ticket_hash: [u8; 32],
        key_id: Option<KeyId>,
        ttl_secs: u32,
    ) -> Result<()> {
        self.bounded(async {
            let client = self.inner.pool.get().await?;
            client
                .execute(
                    "DELETE FROM stream_tickets WHERE expires_at < clock_timestamp()",
                    &[],
                )
                .await?;
            client
                .execute(
                    "INSERT INTO stream_tickets (ticket_hash, key_id, expires_at) \
                     VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3))",
                    &[&ticket_hash.as_slice(), &key_id, &f64::from(ttl_secs)],
                )
                .await?;
            Ok(())
        })
        .await
    }

    async fn redeem_stream_ticket(&self, ticket_hash: [u8; 32]) -> Result<Option<Option<KeyId>>> {
        self.bounded(async {
            let client = self.inner.pool.get().await?;
            let row = client
                .query_opt(
                    "DELETE FROM stream_tickets \
                     WHERE ticket_hash = $1 AND expires_at > clock_timestamp() \
                     RETURNING key_id",
                    &[&ticket_hash.as_slice()],
                )
                .await?;
            row.map(|r| r.try_get(0).map_err(Into::into)).transpose()
        })
        .await
    }
}
