//! The audit trail: one row per security-relevant use case, refused or not.
//!
//! Every enrolment, face addition, deletion, identification, verification,
//! key change and lockout reset writes one row (time, key, client address,
//! action, outcome, user, distance, a short non-biometric detail, and the
//! passive liveness score when one was checked). The rows
//! live in the store, so they outlive restarts and are shared by instances.
//! Writing one never changes the answer of the use case that produced it.

use std::sync::Arc;

use face_store::{AuditEvent, AuditQuery, FaceStore, NewAuditEvent};

use crate::access::Caller;
use crate::ServiceError;

/// What a successful result records as its outcome.
pub trait AuditOutcome {
    /// `ok`, `match`, `no_match`, or a security event's name.
    fn outcome(&self) -> &'static str;
}

impl AuditOutcome for () {
    fn outcome(&self) -> &'static str {
        "ok"
    }
}

/// Appends and reads audit events.
#[derive(Clone)]
pub struct AuditTrail {
    store: Arc<dyn FaceStore>,
}

impl AuditTrail {
    /// The trail in `store`.
    pub fn new(store: Arc<dyn FaceStore>) -> Self {
        Self { store }
    }

    /// Records one event for a use case's result.
    pub async fn result<T: AuditOutcome>(
        &self,
        caller: &Caller,
        action: &str,
        result: &Result<T, ServiceError>,
        user_id: Option<i64>,
        distance: Option<f32>,
    ) {
        self.result_scored(caller, action, result, user_id, distance, None)
            .await;
    }

    /// [`AuditTrail::result`] with the passive liveness score of the
    /// decided face (administrators read it here; callers never see it).
    pub async fn result_scored<T: AuditOutcome>(
        &self,
        caller: &Caller,
        action: &str,
        result: &Result<T, ServiceError>,
        user_id: Option<i64>,
        distance: Option<f32>,
        liveness_score: Option<f32>,
    ) {
        let (outcome, detail) = match result {
            // Nothing was done for a client that had gone: nothing to audit.
            Err(ServiceError::ClientGone) => return,
            Ok(v) => (v.outcome(), None),
            // What was attempted, so a refused override is visible as one.
            Err(ServiceError::Forbidden { action, .. }) => {
                ("refused", Some(format!("forbidden: {action}")))
            }
            Err(e) => ("refused", Some(e.kind().to_string())),
        };
        let scores = (distance, liveness_score);
        self.append(caller, action, outcome, user_id, scores, detail)
            .await;
    }

    /// Appends an event. A failure to write it is logged, not returned: the
    /// operation itself has already happened (or failed) and its answer must
    /// not change; an unreachable store fails the operations themselves
    /// anyway.
    pub async fn record(
        &self,
        caller: &Caller,
        action: &str,
        outcome: &str,
        user_id: Option<i64>,
        distance: Option<f32>,
        detail: Option<String>,
    ) {
        self.append(caller, action, outcome, user_id, (distance, None), detail)
            .await;
    }

    /// `scores`: the distance and the liveness score, when there are.
    async fn append(
        &self,
        caller: &Caller,
        action: &str,
        outcome: &str,
        user_id: Option<i64>,
        (distance, liveness_score): (Option<f32>, Option<f32>),
        detail: Option<String>,
    ) {
        let event = NewAuditEvent {
            key_id: caller.key_id,
            client: caller.client.clone(),
            action: action.to_string(),
            outcome: outcome.to_string(),
            user_id,
            distance: distance.filter(|d| d.is_finite()),
            detail,
            liveness_score: liveness_score.filter(|s| s.is_finite()),
        };
        if let Err(e) = self.store.append_audit(event).await {
            tracing::error!(action, error = %e, "audit event not written");
        }
    }

    /// Events, newest first.
    pub async fn list(&self, query: AuditQuery) -> Result<Vec<AuditEvent>, ServiceError> {
        if query.limit == 0 || query.limit > 1000 {
            return Err(ServiceError::Invalid {
                field: "limit",
                message: "must be between 1 and 1000".into(),
            });
        }
        Ok(self.store.list_audit(query).await?)
    }
}
