//! The security use cases: authenticating API keys, issuing and revoking
//! them, the verification lockout, and the audit log.
//!
//! Lockout follows NIST SP 800-63B §5.2.3 for biometric comparison: after a
//! number of consecutive failed verifications of one user (5 by default)
//! every further attempt is delayed (30 s by default, the minimum allowed),
//! and after 50 (the most allowed) biometric verification of that user is
//! disabled until an administrator resets it. The count lives in the store,
//! so neither a restart nor a second server instance resets it.

use chrono::Utc;
use face_store::{ApiKey, AuditEvent, AuditQuery, Lockout, LockoutRule, NewApiKey, NewAuditEvent};

use crate::access::{self, Caller, IssuedKey, Principal, Scope};
use crate::error::for_user;
use crate::service::{Enrolled, FaceService, Identification, Verification};
use crate::ServiceError;

/// 5 failures, then 30 s per attempt; disabled at 50.
pub const DEFAULT_LOCKOUT: LockoutRule = LockoutRule {
    delay_after: 5,
    delay_secs: 30,
    disable_after: 50,
};

/// A lockout rule within NIST's bounds: a delay of at least 30 s, disabling
/// after at most 50 failures, and delaying no later than disabling.
pub fn lockout_rule(
    delay_after: u32,
    delay_secs: u32,
    disable_after: u32,
) -> Result<LockoutRule, String> {
    if delay_secs < 30 {
        return Err(format!(
            "delay_secs = {delay_secs}: NIST SP 800-63B asks for at least 30"
        ));
    }
    if !(1..=50).contains(&disable_after) {
        return Err(format!(
            "disable_after = {disable_after}: must be 1..=50 (NIST SP 800-63B allows at most 50)"
        ));
    }
    if !(1..=disable_after).contains(&delay_after) {
        return Err(format!(
            "delay_after = {delay_after}: must be 1..=disable_after ({disable_after})"
        ));
    }
    Ok(LockoutRule {
        delay_after,
        delay_secs,
        disable_after,
    })
}

/// What a successful result records as its outcome.
pub(crate) trait AuditOutcome {
    fn outcome(&self) -> &'static str;
}

impl AuditOutcome for Enrolled {
    fn outcome(&self) -> &'static str {
        self.admin_override.map_or("ok", |o| o.as_str())
    }
}

impl AuditOutcome for () {
    fn outcome(&self) -> &'static str {
        "ok"
    }
}

impl AuditOutcome for Verification {
    fn outcome(&self) -> &'static str {
        if self.matched {
            "match"
        } else {
            "no_match"
        }
    }
}

impl AuditOutcome for Identification {
    fn outcome(&self) -> &'static str {
        if self.faces.first().is_some_and(|f| f.matched) {
            "match"
        } else {
            "no_match"
        }
    }
}

impl FaceService {
    /// The key behind a bearer token; `Unauthenticated` for a missing,
    /// malformed, unknown or revoked one (the same answer for all, so a
    /// caller learns nothing about which keys exist).
    pub async fn authenticate(&self, token: Option<&str>) -> Result<Principal, ServiceError> {
        let refused = || {
            ServiceError::Unauthenticated(
                "a valid API key is required: send `Authorization: Bearer fg_...` \
                 (an administrator creates keys with `facegate keys create`)"
                    .into(),
            )
        };
        let (prefix, secret) = token.and_then(access::parse_token).ok_or_else(refused)?;
        let key = self
            .store
            .api_key_by_prefix(prefix)
            .await?
            .ok_or_else(refused)?;
        if key.revoked_at.is_some() || !access::secret_matches(secret, &key.secret_hash) {
            return Err(refused());
        }
        Ok(Principal {
            key_id: Some(key.id),
            key_name: key.name,
            scopes: key
                .scopes
                .iter()
                .filter_map(|s| Scope::parse(s).ok())
                .collect(),
        })
    }

    /// Makes a key; the token is returned once and never stored.
    pub async fn create_key(
        &self,
        caller: &Caller,
        name: &str,
        scopes: &[Scope],
    ) -> Result<IssuedKey, ServiceError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
            return Err(ServiceError::Invalid {
                field: "name",
                message: "a key name is 1-200 characters without control characters".into(),
            });
        }
        if scopes.is_empty() {
            return Err(ServiceError::Invalid {
                field: "scopes",
                message: "at least one scope: admin, enrol, recognize".into(),
            });
        }
        let (prefix, secret) = access::new_token()?;
        let mut names: Vec<String> = scopes.iter().map(|s| s.as_str().to_string()).collect();
        names.sort();
        names.dedup();
        let key = self
            .store
            .create_api_key(NewApiKey {
                name: name.to_string(),
                prefix: prefix.clone(),
                secret_hash: access::secret_hash(&secret),
                scopes: names,
            })
            .await?;
        self.audit(
            caller,
            "key_create",
            "ok",
            None,
            None,
            Some(format!("key {}", key.id)),
        )
        .await;
        Ok(IssuedKey {
            key,
            token: access::format_token(&prefix, &secret),
        })
    }

    /// All keys (without their secrets, which are not stored).
    pub async fn list_keys(&self) -> Result<Vec<ApiKey>, ServiceError> {
        Ok(self.store.list_api_keys().await?)
    }

    /// Revokes a key: it authenticates nothing from now on, on every
    /// instance.
    pub async fn revoke_key(&self, caller: &Caller, id: i64) -> Result<(), ServiceError> {
        let result = self.store.revoke_api_key(id).await.map_err(|e| match e {
            face_store::StoreError::NotFound(_) => ServiceError::KeyNotFound(id),
            other => other.into(),
        });
        self.audit_result(caller, "key_revoke", &result, None, None)
            .await;
        result
    }

    /// A user's lockout state.
    pub async fn lockout_of(&self, user_id: i64) -> Result<Lockout, ServiceError> {
        self.store
            .get_user(user_id)
            .await
            .map_err(for_user(user_id))?;
        Ok(self.store.lockout(user_id).await?)
    }

    /// Clears a user's failures and re-enables a disabled user.
    pub async fn reset_lockout(&self, caller: &Caller, user_id: i64) -> Result<(), ServiceError> {
        self.store
            .get_user(user_id)
            .await
            .map_err(for_user(user_id))?;
        self.store.reset_lockout(user_id).await?;
        tracing::info!(user_id, "verification lockout reset");
        self.audit(caller, "lockout_reset", "ok", Some(user_id), None, None)
            .await;
        Ok(())
    }

    /// Audit events, newest first.
    pub async fn audit_log(&self, query: AuditQuery) -> Result<Vec<AuditEvent>, ServiceError> {
        if query.limit == 0 || query.limit > 1000 {
            return Err(ServiceError::Invalid {
                field: "limit",
                message: "must be between 1 and 1000".into(),
            });
        }
        Ok(self.store.list_audit(query).await?)
    }

    /// Refuses a verification attempt while the user is locked out;
    /// returns the state otherwise.
    pub(crate) async fn check_lockout(&self, user_id: i64) -> Result<Lockout, ServiceError> {
        let state = self.store.lockout(user_id).await?;
        if state.disabled {
            return Err(ServiceError::VerificationDisabled(user_id));
        }
        if let Some(until) = state.locked_until {
            let left = (until - Utc::now()).num_milliseconds();
            if left > 0 {
                return Err(ServiceError::VerificationDelayed {
                    user_id,
                    retry_after_secs: u64::try_from(left).unwrap_or(0).div_ceil(1000),
                });
            }
        }
        Ok(state)
    }

    /// Counts a failed biometric comparison with `user_id` towards their
    /// lockout, and logs when it delays or disables them.
    pub(crate) async fn record_verify_failure(&self, user_id: i64) -> Result<(), ServiceError> {
        let after = self
            .store
            .record_verify_failure(user_id, self.lockout)
            .await
            .map_err(for_user(user_id))?;
        if after.failures >= self.lockout.delay_after {
            tracing::warn!(
                user_id,
                failures = after.failures,
                disabled = after.disabled,
                "verification lockout"
            );
        }
        Ok(())
    }

    /// Records one audit event for a use case's result.
    pub(crate) async fn audit_result<T: AuditOutcome>(
        &self,
        caller: &Caller,
        action: &str,
        result: &Result<T, ServiceError>,
        user_id: Option<i64>,
        distance: Option<f32>,
    ) {
        let (outcome, detail) = match result {
            Ok(v) => (v.outcome(), None),
            // What was attempted, so a refused override is visible as one.
            Err(ServiceError::Forbidden { action, .. }) => {
                ("refused", Some(format!("forbidden: {action}")))
            }
            Err(e) => ("refused", Some(e.kind().to_string())),
        };
        self.audit(caller, action, outcome, user_id, distance, detail)
            .await;
    }

    /// Appends an audit event. A failure to write it is logged, not
    /// returned: the operation itself has already happened (or failed) and
    /// its answer must not change; an unreachable store fails the
    /// operations themselves anyway.
    pub(crate) async fn audit(
        &self,
        caller: &Caller,
        action: &str,
        outcome: &str,
        user_id: Option<i64>,
        distance: Option<f32>,
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
        };
        if let Err(e) = self.store.append_audit(event).await {
            tracing::error!(action, error = %e, "audit event not written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_rules_stay_within_nist_bounds() {
        assert!(lockout_rule(5, 30, 50).is_ok());
        assert!(lockout_rule(5, 29, 50).is_err());
        assert!(lockout_rule(5, 30, 51).is_err());
        assert!(lockout_rule(0, 30, 50).is_err());
        assert!(lockout_rule(6, 30, 5).is_err());
        assert_eq!(
            lockout_rule(3, 60, 3).ok().map(|r| r.disable_after),
            Some(3)
        );
    }
}
