//! The verification lockout: NIST SP 800-63B §5.2.3 for biometric
//! comparison.
//!
//! After a number of consecutive failed comparisons with one user (5 by
//! default) every further attempt is delayed (30 s by default, the minimum
//! allowed), and after 50 (the most allowed) biometric verification of that
//! user is disabled until an administrator resets it. The count lives in the
//! store, so neither a restart nor a second server instance resets it.
//!
//! An attempt is *reserved* before the face is compared and *settled* after
//! (failed, passed, or released when nothing was compared): the ~50 ms of
//! face work between a check and a record would otherwise let many
//! concurrent attempts all pass the check (measured: 18 of 20 judged where
//! 5 may be). The rule is written once, as the pure functions [`admit`] and
//! [`settle`] of the stored state and the store's clock; each store applies
//! them inside one atomic update ([`FaceStore::update_lockout`]), so every
//! instance agrees and reads the same clock (the database's on PostgreSQL).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use face_store::{FaceStore, Lockout};

use crate::access::Caller;
use crate::audit::AuditTrail;
use crate::error::for_user;
use crate::ServiceError;

/// When failed verifications lock a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutRule {
    /// From this many consecutive failures on, attempts are taken one at a
    /// time, each at least `delay_secs` after the previous.
    pub delay_after: u32,
    /// The delay, seconds.
    pub delay_secs: u32,
    /// At this many consecutive failures biometric verification of the user
    /// is disabled until an administrator resets it.
    pub disable_after: u32,
}

/// How long a reserved attempt counts as pending without being settled:
/// longer than any request may take, so only an instance that died (or a
/// request dropped mid-way) leaves one behind, and then only this long.
pub const RESERVATION_LEASE_SECS: i64 = 120;

/// Whether an attempt may be judged now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Judge it; settle it afterwards.
    Admitted,
    /// Not before `until`.
    Delayed {
        /// The earliest time another attempt may be admitted.
        until: DateTime<Utc>,
    },
    /// Disabled until an administrator resets the user.
    Disabled,
}

/// How an admitted attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The face did not match: one more consecutive failure.
    Failed,
    /// The face matched: the count starts again.
    Passed,
    /// Nothing was compared (no face, bad image, busy, an error): the
    /// reservation is returned without counting.
    Released,
}

/// Reserved attempts that still count at `now` (none once the latest is
/// older than the lease).
fn live_pending(s: &Lockout, now: DateTime<Utc>) -> u32 {
    match s.pending_since {
        Some(t) if now - t < Duration::seconds(RESERVATION_LEASE_SECS) => s.pending,
        _ => 0,
    }
}

/// Whether an attempt is admitted at `now`, and the state that reserves it.
///
/// While `failures + pending` is under `delay_after`, attempts are admitted
/// (and each one reserved counts as a failure-to-be). From there on, one
/// attempt at a time: it is admitted only when none is pending and the
/// delay has passed, and it reserves the next delay at once, so concurrent
/// attempts are delayed. Once `failures + pending` reaches `disable_after`,
/// nothing more is admitted until the pending attempts settle.
pub fn admit(s: &Lockout, now: DateTime<Utc>, rule: LockoutRule) -> (Admission, Lockout) {
    if s.disabled {
        return (Admission::Disabled, *s);
    }
    let delay = Duration::seconds(i64::from(rule.delay_secs));
    if let Some(until) = s.locked_until.filter(|u| *u > now) {
        return (Admission::Delayed { until }, *s);
    }
    let pending = live_pending(s, now);
    let reserved = |locked_until| Lockout {
        pending: pending + 1,
        pending_since: Some(now),
        locked_until,
        ..*s
    };
    let outstanding = s.failures.saturating_add(pending);
    if outstanding < rule.delay_after {
        (Admission::Admitted, reserved(s.locked_until))
    } else if pending == 0 && outstanding < rule.disable_after {
        (Admission::Admitted, reserved(Some(now + delay)))
    } else {
        (Admission::Delayed { until: now + delay }, *s)
    }
}

/// The state after an admitted attempt ended with `outcome` at `now`.
pub fn settle(s: &Lockout, now: DateTime<Utc>, rule: LockoutRule, outcome: Outcome) -> Lockout {
    let pending = live_pending(s, now).saturating_sub(1);
    let mut next = Lockout {
        pending,
        pending_since: s.pending_since.filter(|_| pending > 0),
        ..*s
    };
    match outcome {
        // An attempt admitted past the delay point reserved the next delay;
        // nothing was compared, so the slot is given back.
        Outcome::Released if s.failures >= rule.delay_after && pending == 0 => {
            next.locked_until = None;
        }
        Outcome::Released => {}
        Outcome::Passed => {
            next.failures = 0;
            next.locked_until = None;
        }
        Outcome::Failed => {
            next.failures = s.failures.saturating_add(1);
            if next.failures >= rule.delay_after {
                let until = now + Duration::seconds(i64::from(rule.delay_secs));
                next.locked_until = Some(s.locked_until.map_or(until, |u| u.max(until)));
            }
            next.disabled = s.disabled || next.failures >= rule.disable_after;
        }
    }
    next
}

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

    /// The users with failures counted or verification disabled, in id
    /// order, at most `limit` (1..=1000).
    pub async fn failing(&self, limit: usize) -> Result<Vec<(i64, Lockout)>, ServiceError> {
        if !(1..=1000).contains(&limit) {
            return Err(ServiceError::Invalid {
                field: "limit",
                message: "must be within 1..=1000".into(),
            });
        }
        Ok(self.store.failing_lockouts(limit).await?)
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

    /// Reserves an attempt to verify `user_id`: `VerificationDelayed` (with
    /// the wait on the store's clock) or `VerificationDisabled` when none may
    /// be made now. An admitted attempt must be [`Lockouts::settle`]d.
    pub async fn reserve(&self, user_id: i64) -> Result<Reserved, ServiceError> {
        let rule = self.rule;
        let change = self
            .store
            .update_lockout(user_id, Arc::new(move |s, now| admit(s, now, rule).1))
            .await
            .map_err(for_user(user_id))?;
        // The rule is pure: the same state and clock give the same decision.
        match admit(&change.before, change.now, rule).0 {
            Admission::Admitted => Ok(Reserved {
                user_id,
                failures: change.before.failures,
            }),
            Admission::Disabled => Err(ServiceError::VerificationDisabled(user_id)),
            Admission::Delayed { until } => Err(ServiceError::VerificationDelayed {
                user_id,
                retry_after_secs: u64::try_from((until - change.now).num_milliseconds())
                    .unwrap_or(0)
                    .div_ceil(1000)
                    .max(1),
            }),
        }
    }

    /// Settles a reserved attempt, and logs when it delays or disables.
    pub async fn settle(&self, attempt: Reserved, outcome: Outcome) -> Result<(), ServiceError> {
        let rule = self.rule;
        let user_id = attempt.user_id;
        let change = self
            .store
            .update_lockout(
                user_id,
                Arc::new(move |s, now| settle(s, now, rule, outcome)),
            )
            .await
            .map_err(for_user(user_id))?;
        let after = change.after;
        // A lockout is the moment a failure disables the user or imposes a
        // new delay; the refusals during it are decisions (`delayed`,
        // `disabled`), counted with the others.
        if after.disabled && !change.before.disabled {
            metrics::counter!(crate::telemetry::LOCKOUTS, "state" => "disabled").increment(1);
        } else if after.locked_until.is_some_and(|until| until > change.now)
            && after.locked_until != change.before.locked_until
        {
            metrics::counter!(crate::telemetry::LOCKOUTS, "state" => "delayed").increment(1);
        }
        if outcome == Outcome::Failed && after.failures >= rule.delay_after {
            tracing::warn!(
                user_id,
                failures = after.failures,
                disabled = after.disabled,
                "verification lockout"
            );
        }
        Ok(())
    }
}

/// An admitted attempt, to settle once judged.
#[derive(Debug)]
#[must_use = "a reserved attempt must be settled"]
pub struct Reserved {
    user_id: i64,
    /// Consecutive failures before this attempt.
    pub failures: u32,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap_or_default()
    }

    #[test]
    fn concurrent_attempts_are_admitted_only_up_to_the_delay_point() {
        let rule = DEFAULT_RULE;
        let mut s = Lockout::default();
        let mut admitted = 0;
        for _ in 0..20 {
            let (a, next) = admit(&s, at(0), rule);
            if a == Admission::Admitted {
                admitted += 1;
            } else {
                assert!(matches!(a, Admission::Delayed { .. }), "{a:?}");
            }
            s = next;
        }
        assert_eq!(admitted, 5, "{s:?}");
        // All five fail: delayed for 30 s from the last failure.
        for _ in 0..5 {
            s = settle(&s, at(1), rule, Outcome::Failed);
        }
        assert_eq!((s.failures, s.pending), (5, 0));
        assert_eq!(
            admit(&s, at(30), rule).0,
            Admission::Delayed { until: at(31) }
        );
        // After the delay: one attempt, which reserves the next delay.
        let (a, s2) = admit(&s, at(31), rule);
        assert_eq!(a, Admission::Admitted);
        assert!(matches!(
            admit(&s2, at(31), rule).0,
            Admission::Delayed { .. }
        ));
        // A success starts over.
        let s3 = settle(&s2, at(32), rule, Outcome::Passed);
        assert_eq!((s3.failures, s3.pending, s3.locked_until), (0, 0, None));
        // A released attempt counts nothing and gives its slot back.
        let s4 = settle(&s2, at(32), rule, Outcome::Released);
        assert_eq!((s4.failures, s4.pending, s4.locked_until), (5, 0, None));
        assert_eq!(admit(&s4, at(32), rule).0, Admission::Admitted);
    }

    #[test]
    fn the_disable_limit_admits_none_beyond_it() {
        let rule = rule(3, 30, 3).unwrap();
        let mut s = Lockout::default();
        let admitted = (0..10)
            .filter(|_| {
                let (a, next) = admit(&s, at(0), rule);
                s = next;
                a == Admission::Admitted
            })
            .count();
        assert_eq!(admitted, 3);
        for _ in 0..3 {
            s = settle(&s, at(1), rule, Outcome::Failed);
        }
        assert!(s.disabled);
        assert_eq!(admit(&s, at(1000), rule).0, Admission::Disabled);
    }

    #[test]
    fn an_abandoned_reservation_expires_with_its_lease() {
        let rule = DEFAULT_RULE;
        let mut s = Lockout::default();
        for _ in 0..5 {
            s = admit(&s, at(0), rule).1;
        }
        assert!(matches!(
            admit(&s, at(1), rule).0,
            Admission::Delayed { .. }
        ));
        let later = at(RESERVATION_LEASE_SECS + 1);
        assert_eq!(admit(&s, later, rule).0, Admission::Admitted);
    }

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
