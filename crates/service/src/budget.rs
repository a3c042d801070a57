//! A budget of failed identifications, per API key and per client.
//!
//! `/recognize/` is the reference API's login, and a search that answers
//! "nobody" is information: a caller trying faces against the whole gallery
//! should not get unlimited tries. Each failed identification (no face of
//! the photo matched) spends one unit of the caller's key and of its client
//! address (IPv6: its /64, as the server's limits); when either is spent,
//! identification answers 429 with the wait until the next unit, for every
//! photo, until the budget refills. It never disables a key or a user: the
//! lockout is for attacks on one person, this is for fishing in the
//! gallery. Per instance and in memory, like the request limits; the
//! stream's `identify` mode will spend one unit per track that ends
//! undecided, not one per frame.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::access::Caller;
use crate::ServiceError;

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

    fn keys(caller: &Caller) -> impl Iterator<Item = String> + '_ {
        let key = caller.key_id.map(|id| format!("key:{id}"));
        let client = caller
            .client_key
            .as_ref()
            .or(caller.client.as_ref())
            .map(|c| format!("client:{c}"));
        key.into_iter().chain(client)
    }

    /// `FailedIdentificationsExceeded` while the caller's budget is spent.
    pub fn check(&self, caller: &Caller) -> Result<(), ServiceError> {
        if self.limiter.is_none() {
            return Ok(());
        }
        let now = Instant::now();
        let blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let until = Self::keys(caller)
            .filter_map(|k| blocked.get(&k).copied())
            .filter(|until| *until > now)
            .max();
        match until {
            Some(until) => Err(ServiceError::FailedIdentificationsExceeded {
                retry_after_secs: (until - now).as_secs().saturating_add(1),
            }),
            None => Ok(()),
        }
    }

    /// Spends one unit for a failed identification.
    pub fn failed(&self, caller: &Caller) {
        let Some(limiter) = &self.limiter else {
            return;
        };
        for key in Self::keys(caller) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(key: i64, client: &str) -> Caller {
        Caller {
            key_id: Some(key),
            key_name: None,
            client: Some(client.into()),
            client_key: Some(client.into()),
            scopes: Vec::new(),
            probe: None,
        }
    }

    #[test]
    fn spent_by_key_or_by_client_and_off_at_zero() {
        let budget = FailureBudget::new(3);
        let a = caller(1, "198.51.100.1");
        for _ in 0..3 {
            assert!(budget.check(&a).is_ok());
            budget.failed(&a);
        }
        // The third failure spent the budget: blocked until a unit refills.
        assert!(matches!(
            budget.check(&a),
            Err(ServiceError::FailedIdentificationsExceeded { retry_after_secs }) if (1..=21).contains(&retry_after_secs)
        ));
        // The same key from elsewhere, or the same client with another key.
        assert!(budget.check(&caller(1, "203.0.113.9")).is_err());
        assert!(budget.check(&caller(2, "198.51.100.1")).is_err());
        assert!(budget.check(&caller(2, "203.0.113.9")).is_ok());
        let off = FailureBudget::new(0);
        for _ in 0..100 {
            off.failed(&a);
        }
        assert!(off.check(&a).is_ok());
    }
}
