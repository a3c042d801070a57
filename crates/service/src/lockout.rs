//! The verification lockout: NIST SP 800-63B §5.2.3 for biometric
//! comparison.
//!
//! After a number of consecutive failed comparisons with one user (5 by
//! default) every further attempt is delayed (30 s by default, the minimum
//! allowed), and after 50 (the most allowed) biometric verification of that
//! user is disabled until an administrator resets it. The count lives in the
//! store, so neither a restart nor a second server instance resets it.

use std::sync::Arc;

use chrono::Utc;
use face_store::{FaceStore, Lockout, LockoutRule};

use crate::access::Caller;
use crate::audit::AuditTrail;
use crate::error::for_user;
use crate::ServiceError;

/// 5 failures, then 30 s per attempt; disabled at 50.
pub const DEFAULT_RULE: LockoutRule = LockoutRule {
    delay_after: 5,
    delay_secs: 30,
    disable_after: 50,
};

/// A lockout rule within NIST's bounds: a delay of at least 30 s, disabling
/// after at most 50 failures, and delaying no later than disabling.
pub fn rule(delay_after: u32, delay_secs: u32, disable_after: u32) -> Result<LockoutRule, String> {
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

/// The lockout of every user, in the store.
#[derive(Clone)]
pub struct Lockouts {
    store: Arc<dyn FaceStore>,
    rule: LockoutRule,
    audit: AuditTrail,
}

impl Lockouts {
    /// Lockouts in `store` under `rule`, resets recorded in `audit`.
    pub fn new(store: Arc<dyn FaceStore>, rule: LockoutRule, audit: AuditTrail) -> Self {
        Self { store, rule, audit }
    }

    /// The rule in force.
    pub fn rule(&self) -> LockoutRule {
        self.rule
    }

    /// A user's state; `UserNotFound` for a missing user.
    pub async fn of(&self, user_id: i64) -> Result<Lockout, ServiceError> {
        self.store
            .get_user(user_id)
            .await
            .map_err(for_user(user_id))?;
        Ok(self.store.lockout(user_id).await?)
    }

    /// An administrator's reset: clears the failures and re-enables a
    /// disabled user.
    pub async fn reset(&self, caller: &Caller, user_id: i64) -> Result<(), ServiceError> {
        self.store
            .get_user(user_id)
            .await
            .map_err(for_user(user_id))?;
        self.store.reset_lockout(user_id).await?;
        tracing::info!(user_id, "verification lockout reset");
        self.audit
            .record(caller, "lockout_reset", "ok", Some(user_id), None, None)
            .await;
        Ok(())
    }

    /// Refuses an attempt while the user is locked out; the state otherwise.
    pub async fn check(&self, user_id: i64) -> Result<Lockout, ServiceError> {
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

    /// Counts a failed comparison, and logs when it delays or disables.
    pub async fn failed(&self, user_id: i64) -> Result<(), ServiceError> {
        let after = self
            .store
            .record_verify_failure(user_id, self.rule)
            .await
            .map_err(for_user(user_id))?;
        if after.failures >= self.rule.delay_after {
            tracing::warn!(
                user_id,
                failures = after.failures,
                disabled = after.disabled,
                "verification lockout"
            );
        }
        Ok(())
    }

    /// Clears the count (a success, or an administrator's reset).
    pub async fn clear(&self, user_id: i64) -> Result<(), ServiceError> {
        Ok(self.store.reset_lockout(user_id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_stay_within_nist_bounds() {
        assert!(rule(5, 30, 50).is_ok());
        assert!(rule(5, 29, 50).is_err());
        assert!(rule(5, 30, 51).is_err());
        assert!(rule(0, 30, 50).is_err());
        assert!(rule(6, 30, 5).is_err());
        assert_eq!(rule(3, 60, 3).ok().map(|r| r.disable_after), Some(3));
    }
}
