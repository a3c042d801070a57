//! The budget of failed identifications, in memory.
//!
//! `/recognize/` is the reference API's login, and a search that answers
//! "nobody" is information: a caller trying faces against the whole gallery
//! should not get unlimited tries. Each failed identification (no face of
//! the photo matched) spends one unit of the caller's key and of its client
//! address (IPv6: its /64, as the server's limits); when either is spent,
//! identification answers 429 with the wait until the next unit, for every
//! photo, until the budget refills. It never disables a key or a user: the
//! lockout is for attacks on one person, this is for fishing in the
//! gallery. The stream's `identify` mode spends one unit per track that
//! ends undecided, not one per frame.
//!
//! governor has no "look without spending", so a key whose last unit was
//! spent is remembered as blocked until the next unit refills.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

/// Clients blocked at once beyond which expired blocks are swept first.
const SWEEP_ABOVE: usize = 10_000;

/// The failed-identification budget.
/// On `std::time::Instant`: monotonic on every core.
type Limiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, MonotonicClock, StateInformationMiddleware>;

pub struct FailureBudget {
    limiter: Option<Limiter>,
    clock: MonotonicClock,
    /// Keys whose budget is spent, and until when. A std mutex: held for a
    /// map lookup or insert, never across an await.
    blocked: Mutex<HashMap<String, Instant>>,
}

impl FailureBudget {
    /// `per_minute` failed identifications per key and per client, at most
    /// `per_minute` of them at once; 0 switches the budget off.
    pub fn new(per_minute: u32) -> Self {
        Self {
            limiter: NonZeroU32::new(per_minute).map(|n| {
                RateLimiter::<String, _, _, governor::middleware::NoOpMiddleware<_>>::new(
                    Quota::per_minute(n),
                    DefaultKeyedStateStore::default(),
                    MonotonicClock,
                )
                .with_middleware::<StateInformationMiddleware>()
            }),
            clock: MonotonicClock,
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` while `key`'s budget is spent.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        if self.limiter.is_none() {
            return Ok(());
        }
        let now = Instant::now();
        let blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        match blocked.get(key).copied().filter(|until| *until > now) {
            Some(until) => Err((until - now).as_secs().saturating_add(1)),
            None => Ok(()),
        }
    }

    /// Spends one unit of `key`'s budget for a failed identification.
    pub fn failed(&self, key: &str) {
        let Some(limiter) = &self.limiter else {
            return;
        };
        let key = key.to_string();
        // Spent when this failure took the last unit (or found none).
        let wait: Option<Duration> = match limiter.check_key(&key) {
            Ok(state) if state.remaining_burst_capacity() == 0 => {
                Some(state.quota().replenish_interval())
            }
            Ok(_) => None,
            Err(not_until) => Some(not_until.wait_time_from(self.clock.now())),
        };
        if let Some(wait) = wait {
            let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
            if blocked.len() > SWEEP_ABOVE {
                let now = Instant::now();
                blocked.retain(|_, until| *until > now);
                limiter.retain_recent();
            }
            blocked.insert(key, Instant::now() + wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spent_after_n_failures_and_off_at_zero() {
        let budget = FailureBudget::new(3);
        for _ in 0..3 {
            assert!(budget.check("key:1").is_ok());
            budget.failed("key:1");
        }
        // The third failure spent the budget: blocked until a unit refills.
        assert!(matches!(budget.check("key:1"), Err(wait) if (1..=21).contains(&wait)));
        assert!(budget.check("key:2").is_ok(), "keys are independent");
        let off = FailureBudget::new(0);
        for _ in 0..100 {
            off.failed("key:1");
        }
        assert!(off.check("key:1").is_ok());
    }
}
