//! A store that times every call: [`Metered`] wraps any [`FaceStore`] and
//! records each call's duration and outcome through the `metrics` facade.
//!
//! One wrapper rather than timing inside each implementation, so every
//! call of both stores is measured the same way and a new trait method
//! cannot be forgotten (the wrapper must implement it to compile). The
//! labels are the store's kind, the operation (the trait method's name)
//! and the outcome (`ok`, the error's kind, or `cancelled` when the caller
//! stopped waiting): no user, key or value ever becomes a label. Like the rest of the crate it knows no exporter.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use crate::access::{
    AccessStore, ApiKey, AuditEvent, AuditQuery, KeyId, Lockout, LockoutChange, LockoutUpdate,
    NewApiKey, NewAuditEvent,
};
use crate::error::{Result, StoreError};
use crate::store::FaceStore;
use crate::types::{
    Match, ModelKey, NewTemplate, NewUser, Page, Stats, TemplateId, TemplateInfo, User,
    UserDistance, UserId,
};

/// The histogram of store call durations (seconds), labelled `store`,
/// `operation` and `outcome`.
pub const OPERATION_SECONDS: &str = "facegate_store_operation_duration_seconds";

/// A [`FaceStore`] whose calls are timed.
pub struct Metered {
    inner: Arc<dyn FaceStore>,
    store: &'static str,
}

impl Metered {
    /// Wraps `inner`; `store` names it in the metrics (`sqlite`,
    /// `postgresql`).
    pub fn wrap(inner: Arc<dyn FaceStore>, store: &'static str) -> Arc<dyn FaceStore> {
        Arc::new(Self { inner, store })
    }

    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let mut timer = Timer {
            started: Instant::now(),
            store: self.store,
            operation,
            outcome: None,
        };
        let result = call.await;
        timer.outcome = Some(match &result {
            Ok(_) => "ok",
            Err(e) => outcome(e),
        });
        result
    }
}

/// Records one call when dropped: with its outcome when it finished, as
/// `cancelled` when the caller stopped waiting (a readiness probe's
/// deadline while the database hangs), so a hanging store shows in the
/// latency series instead of vanishing from it.
struct Timer {
    started: Instant,
    store: &'static str,
    operation: &'static str,
    outcome: Option<&'static str>,
}

impl Drop for Timer {
    fn drop(&mut self) {
        metrics::histogram!(
            OPERATION_SECONDS,
            "store" => self.store,
            "operation" => self.operation,
            "outcome" => self.outcome.unwrap_or("cancelled")
        )
        .record(self.started.elapsed().as_secs_f64());
    }
}

/// An error's kind, as a label.
fn outcome(e: &StoreError) -> &'static str {
    match e {
        StoreError::NotFound(_) => "not_found",
        StoreError::Conflict(_) => "conflict",
        StoreError::Duplicate { .. } => "duplicate",
        StoreError::TemplateLimit { .. } => "template_limit",
        StoreError::Unavailable(_) => "unavailable",
        StoreError::BadData(_) => "bad_data",
        StoreError::Internal(_) => "internal",
    }
}

#[async_trait]
impl FaceStore for Metered {
    async fn create_user(
        &self,
        user: NewUser,
        model: &ModelKey,
        templates: &[NewTemplate],
    ) -> Result<User> {
        self.timed(
            "create_user",
            self.inner.create_user(user, model, templates),
        )
        .await
    }

    async fn create_unique_user(
        &self,
        user: NewUser,
        model: &ModelKey,
        templates: &[NewTemplate],
        unique_below: f32,
    ) -> Result<User> {
        self.timed(
            "create_unique_user",
            self.inner
                .create_unique_user(user, model, templates, unique_below),
        )
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
        self.timed(
            "add_templates",
            self.inner
                .add_templates(user, model, templates, max_per_model, unique_below),
        )
        .await
    }

    async fn templates_of(&self, user: UserId) -> Result<Vec<TemplateInfo>> {
        self.timed("templates_of", self.inner.templates_of(user))
            .await
    }

    async fn delete_template(&self, user: UserId, template: TemplateId) -> Result<()> {
        self.timed(
            "delete_template",
            self.inner.delete_template(user, template),
        )
        .await
    }

    async fn get_user(&self, id: UserId) -> Result<User> {
        self.timed("get_user", self.inner.get_user(id)).await
    }

    async fn list_users(&self, page: Page) -> Result<Vec<User>> {
        self.timed("list_users", self.inner.list_users(page)).await
    }

    async fn find_users(&self, filter: &crate::types::UserFilter, page: Page) -> Result<Vec<User>> {
        self.timed("find_users", self.inner.find_users(filter, page))
            .await
    }

    async fn delete_user(&self, id: UserId) -> Result<()> {
        self.timed("delete_user", self.inner.delete_user(id)).await
    }

    async fn stats(&self) -> Result<Stats> {
        self.timed("stats", self.inner.stats()).await
    }

    async fn search(&self, model: &ModelKey, query: &[f32], k: usize) -> Result<Vec<Match>> {
        self.timed("search", self.inner.search(model, query, k))
            .await
    }

    async fn distance_to_user(
        &self,
        user: UserId,
        model: &ModelKey,
        query: &[f32],
    ) -> Result<Option<UserDistance>> {
        self.timed(
            "distance_to_user",
            self.inner.distance_to_user(user, model, query),
        )
        .await
    }

    async fn users_without_model(&self, model: &ModelKey, page: Page) -> Result<Vec<User>> {
        self.timed(
            "users_without_model",
            self.inner.users_without_model(model, page),
        )
        .await
    }

    async fn health(&self) -> Result<()> {
        self.timed("health", self.inner.health()).await
    }
}

#[async_trait]
impl AccessStore for Metered {
    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey> {
        self.timed("create_api_key", self.inner.create_api_key(key))
            .await
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKey>> {
        self.timed("api_key_by_prefix", self.inner.api_key_by_prefix(prefix))
            .await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        self.timed("list_api_keys", self.inner.list_api_keys())
            .await
    }

    async fn revoke_api_key(&self, id: KeyId) -> Result<()> {
        self.timed("revoke_api_key", self.inner.revoke_api_key(id))
            .await
    }

    async fn lockout(&self, user: UserId) -> Result<Lockout> {
        self.timed("lockout", self.inner.lockout(user)).await
    }

    async fn update_lockout(&self, user: UserId, update: LockoutUpdate) -> Result<LockoutChange> {
        self.timed("update_lockout", self.inner.update_lockout(user, update))
            .await
    }

    async fn reset_lockout(&self, user: UserId) -> Result<()> {
        self.timed("reset_lockout", self.inner.reset_lockout(user))
            .await
    }

    async fn append_audit(&self, event: NewAuditEvent) -> Result<()> {
        self.timed("append_audit", self.inner.append_audit(event))
            .await
    }

    async fn list_audit(&self, query: AuditQuery) -> Result<Vec<AuditEvent>> {
        self.timed("list_audit", self.inner.list_audit(query)).await
    }

    async fn create_liveness_session(
        &self,
        session: crate::liveness::NewLivenessSession,
    ) -> Result<crate::liveness::LivenessSession> {
        self.timed(
            "create_liveness_session",
            self.inner.create_liveness_session(session),
        )
        .await
    }

    async fn liveness_session(&self, id: &str) -> Result<Option<crate::liveness::LivenessSession>> {
        self.timed("liveness_session", self.inner.liveness_session(id))
            .await
    }

    async fn finish_liveness_session(
        &self,
        id: &str,
        outcome: &str,
        token: Option<crate::liveness::NewLivenessToken>,
    ) -> Result<bool> {
        self.timed(
            "finish_liveness_session",
            self.inner.finish_liveness_session(id, outcome, token),
        )
        .await
    }

    async fn redeem_liveness_token(
        &self,
        token_hash: [u8; 32],
        key_id: Option<KeyId>,
        user_id: Option<UserId>,
    ) -> Result<Option<crate::liveness::RedeemedToken>> {
        self.timed(
            "redeem_liveness_token",
            self.inner
                .redeem_liveness_token(token_hash, key_id, user_id),
        )
        .await
    }

    async fn failing_lockouts(
        &self,
        limit: usize,
    ) -> Result<Vec<(UserId, crate::access::Lockout)>> {
        self.timed("failing_lockouts", self.inner.failing_lockouts(limit))
            .await
    }

    async fn purge_liveness_sessions(&self, expired_for_secs: u32) -> Result<u64> {
        self.timed(
            "purge_liveness_sessions",
            self.inner.purge_liveness_sessions(expired_for_secs),
        )
        .await
    }

    async fn create_stream_ticket(
        &self,
        ticket_hash: [u8; 32],
        key_id: Option<KeyId>,
        ttl_secs: u32,
    ) -> Result<()> {
        self.timed(
            "create_stream_ticket",
            self.inner
                .create_stream_ticket(ticket_hash, key_id, ttl_secs),
        )
        .await
    }

    async fn redeem_stream_ticket(&self, ticket_hash: [u8; 32]) -> Result<Option<Option<KeyId>>> {
        self.timed(
            "redeem_stream_ticket",
            self.inner.redeem_stream_ticket(ticket_hash),
        )
        .await
    }
}
