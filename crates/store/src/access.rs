//! What the security layer keeps in the store: API keys, the per-user
//! verification lockout, and the audit log.
//!
//! In the store, not in memory, so that all three hold across restarts and
//! across several server instances sharing one database: a key revoked on
//! one instance is refused by all, and an attacker cannot reset a lockout by
//! waiting for a deploy. None of it is biometric data. The policy (which
//! scopes a route needs, how many failures lock, for how long) is the
//! service's; the store only keeps the facts and updates them atomically:
//! [`AccessStore::update_lockout`] reads a user's lockout with the store's
//! clock (the database's, on PostgreSQL), applies the service's pure rule
//! and writes the result, with no other update of that user in between on
//! any instance.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::types::UserId;

/// An API key's row id.
pub type KeyId = i64;

/// A key to store. The secret itself is never given to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// What the key is for, for people ("kiosk 3").
    pub name: String,
    /// The public random part of the key, unique; finds the row.
    pub prefix: String,
    /// SHA-256 of the secret part.
    pub secret_hash: [u8; 32],
    /// Scope names, e.g. `["recognize"]`.
    pub scopes: Vec<String>,
}

/// A stored key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Row id (appears in the audit log).
    pub id: KeyId,
    /// What the key is for.
    pub name: String,
    /// The public part.
    pub prefix: String,
    /// SHA-256 of the secret part.
    #[serde(skip)]
    pub secret_hash: Vec<u8>,
    /// Scope names.
    pub scopes: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked; a revoked key authenticates nothing.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A user's verification lockout state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Lockout {
    /// Consecutive failed verifications (0 after a success or a reset).
    pub failures: u32,
    /// No attempt is taken before this time.
    pub locked_until: Option<DateTime<Utc>>,
    /// Verification disabled until an administrator resets it.
    pub disabled: bool,
    /// Attempts reserved (admitted) and not yet settled.
    pub pending: u32,
    /// When the latest pending attempt was reserved.
    pub pending_since: Option<DateTime<Utc>>,
}

/// The service's rule for one lockout update: the state and the store's
/// clock in, the state to write out. Pure, so every instance applying it to
/// the same stored state at the same time writes the same result.
pub type LockoutUpdate = Arc<dyn Fn(&Lockout, DateTime<Utc>) -> Lockout + Send + Sync>;

/// What [`AccessStore::update_lockout`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutChange {
    /// The state read.
    pub before: Lockout,
    /// The state written.
    pub after: Lockout,
    /// The store's clock when it was read.
    pub now: DateTime<Utc>,
}

/// One audited event to store.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewAuditEvent {
    /// The API key that made the request (none with auth switched off).
    pub key_id: Option<KeyId>,
    /// The client's address.
    pub client: Option<String>,
    /// What was done: `enrol`, `add_faces`, `delete`, `identify`, `verify`,
    /// `key_create`, `key_revoke`, `lockout_reset`.
    pub action: String,
    /// How it ended: `ok`, `match`, `no_match`, `refused`, `locked`,
    /// `error`, ...
    pub outcome: String,
    /// The user concerned, if any.
    pub user_id: Option<UserId>,
    /// The comparison's distance, for identify and verify.
    pub distance: Option<f32>,
    /// A short, non-biometric remark (an error code, a key name).
    pub detail: Option<String>,
    /// The passive liveness score of the decided face, when it was checked.
    pub liveness_score: Option<f32>,
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Row id, increasing: the pagination key.
    pub id: i64,
    /// When it happened (store clock).
    pub at: DateTime<Utc>,
    /// See [`NewAuditEvent`].
    pub key_id: Option<KeyId>,
    /// See [`NewAuditEvent`].
    pub client: Option<String>,
    /// See [`NewAuditEvent`].
    pub action: String,
    /// See [`NewAuditEvent`].
    pub outcome: String,
    /// See [`NewAuditEvent`].
    pub user_id: Option<UserId>,
    /// See [`NewAuditEvent`].
    pub distance: Option<f32>,
    /// See [`NewAuditEvent`].
    pub detail: Option<String>,
    /// See [`NewAuditEvent`].
    pub liveness_score: Option<f32>,
}

/// Which audit events to read: newest first, `before` an id (keyset).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AuditQuery {
    /// Only events about this user.
    pub user_id: Option<UserId>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only events with a smaller id (the previous page's last id).
    pub before: Option<i64>,
    /// Page size, 1..=1000.
    pub limit: usize,
}

/// The security layer's storage.
#[async_trait]
pub trait AccessStore: Send + Sync {
    /// Stores a new key. `Conflict` when the prefix exists (retry with
    /// another random prefix).
    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey>;

    /// The key with this prefix, revoked or not.
    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKey>>;

    /// All keys, in id order.
    async fn list_api_keys(&self) -> Result<Vec<ApiKey>>;

    /// Revokes a key (idempotent). `NotFound` when there is no such key.
    async fn revoke_api_key(&self, id: KeyId) -> Result<()>;

    /// A user's lockout state (the default when they never failed).
    async fn lockout(&self, user: UserId) -> Result<Lockout>;

    /// Reads `user`'s lockout and the store's clock, writes `update`'s
    /// result, atomically with respect to every other update of that user
    /// on every instance. `NotFound` when the user does not exist.
    async fn update_lockout(&self, user: UserId, update: LockoutUpdate) -> Result<LockoutChange>;

    /// The users with failed verifications counted or verification
    /// disabled, in user id order, at most `limit`, with their state.
    async fn failing_lockouts(&self, limit: usize) -> Result<Vec<(UserId, Lockout)>>;

    /// Clears the failures after a successful verification, or an
    /// administrator's reset (which also re-enables a disabled user).
    async fn reset_lockout(&self, user: UserId) -> Result<()>;

    /// Appends one audit event.
    async fn append_audit(&self, event: NewAuditEvent) -> Result<()>;

    /// Reads audit events, newest first.
    async fn list_audit(&self, query: AuditQuery) -> Result<Vec<AuditEvent>>;

    /// Stores a new liveness session; `Conflict` when the id exists,
    /// `NotFound` when its user does not.
    async fn create_liveness_session(
        &self,
        session: crate::liveness::NewLivenessSession,
    ) -> Result<crate::liveness::LivenessSession>;

    /// A session, finished or not, expired or not.
    async fn liveness_session(&self, id: &str) -> Result<Option<crate::liveness::LivenessSession>>;

    /// Records a session's outcome, and for a pass its token, in one
    /// transaction, if the session is still open and not expired (store
    /// clock); `false` (and nothing written) otherwise.
    async fn finish_liveness_session(
        &self,
        id: &str,
        outcome: &str,
        token: Option<crate::liveness::NewLivenessToken>,
    ) -> Result<bool>;

    /// Redeems a token once: the one row with this hash, not expired,
    /// issued to `key_id` for a verify session about `user_id`
    /// (`Some`) or for an enrol session (`None`), is deleted and returned;
    /// `None` for anything else (used, expired, another key or user, the
    /// other purpose, unknown).
    async fn redeem_liveness_token(
        &self,
        token_hash: [u8; 32],
        key_id: Option<KeyId>,
        user_id: Option<UserId>,
    ) -> Result<Option<crate::liveness::RedeemedToken>>;

    /// Deletes the sessions that expired more than `expired_for_secs` ago
    /// (store clock), with any token of theirs; how many.
    async fn purge_liveness_sessions(&self, expired_for_secs: u32) -> Result<u64>;

    /// Stores a stream ticket (the SHA-256 of its secret) standing for
    /// `key_id` (`None`: authentication is off), valid for `ttl_secs` on
    /// the store's clock; expired tickets are deleted on the way.
    /// `Conflict` when the hash exists.
    async fn create_stream_ticket(
        &self,
        ticket_hash: [u8; 32],
        key_id: Option<KeyId>,
        ttl_secs: u32,
    ) -> Result<()>;

    /// Redeems a ticket once: the unexpired ticket with this hash is
    /// deleted and the key it stands for returned (`Some(None)` for a
    /// ticket issued with authentication off); `None` for a used, expired
    /// or unknown one. One statement: of two redemptions, one wins.
    async fn redeem_stream_ticket(&self, ticket_hash: [u8; 32]) -> Result<Option<Option<KeyId>>>;
}

/// Scope names as stored: comma separated.
pub(crate) fn join_scopes(scopes: &[String]) -> String {
    scopes.join(",")
}

/// The inverse of [`join_scopes`].
pub(crate) fn split_scopes(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// Checks a key before storing it.
pub(crate) fn validate_key(key: &NewApiKey) -> Result<()> {
    use crate::error::StoreError;
    if key.name.trim().is_empty() || key.name.len() > 200 || key.name.chars().any(char::is_control)
    {
        return Err(StoreError::BadData(
            "key name must be 1-200 bytes without control characters".into(),
        ));
    }
    if key.prefix.is_empty()
        || key.prefix.len() > 64
        || !key.prefix.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(StoreError::BadData(
            "key prefix must be 1-64 ASCII letters and digits".into(),
        ));
    }
    if key
        .scopes
        .iter()
        .any(|s| s.is_empty() || !s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
    {
        return Err(StoreError::BadData(
            "scopes must be lower-case words".into(),
        ));
    }
    Ok(())
}

/// Checks an audit event before storing it (bounded text, no control
/// characters), so a hostile value cannot bloat or corrupt the log.
pub(crate) fn validate_audit(e: &NewAuditEvent) -> Result<()> {
    use crate::error::StoreError;
    let ok = |s: &str, max: usize| s.len() <= max && !s.chars().any(char::is_control);
    let fields = [
        Some(e.action.as_str()),
        Some(e.outcome.as_str()),
        e.client.as_deref(),
        e.detail.as_deref(),
    ];
    if e.action.is_empty()
        || e.outcome.is_empty()
        || !fields.iter().flatten().all(|s| ok(s, 512))
        || e.distance.is_some_and(|d| !d.is_finite())
        || e.liveness_score.is_some_and(|s| !s.is_finite())
    {
        return Err(StoreError::BadData(
            "audit fields must be short text without control characters".into(),
        ));
    }
    Ok(())
}

/// Checks an audit query's page size.
pub(crate) fn validate_audit_query(q: &AuditQuery) -> Result<()> {
    if q.limit == 0 || q.limit > 1000 {
        return Err(crate::error::StoreError::BadData(
            "audit page size must be 1..=1000".into(),
        ));
    }
    Ok(())
}
