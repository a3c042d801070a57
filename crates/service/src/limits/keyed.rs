//! Request rate limits in memory, on `governor`'s keyed GCRA limiters.
//!
//! governor keeps one small state per key in a sharded map, with no global
//! lock on the request path. Memory stays bounded:
//! [`RateLimiter::forget_idle`] drops every key whose state is back to
//! "full", and the server calls it periodically, so the map holds only the
//! clients seen within about one refill period.

use std::hash::Hash;
use std::num::NonZeroU32;

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::Quota;

/// A keyed limiter on `std::time::Instant`, which is monotonic on every
/// core (the TSC-based default clock may differ by a hair between cores,
/// which refused a burst's last request now and then).
type Keyed<K> = governor::RateLimiter<
    K,
    DefaultKeyedStateStore<K>,
    MonotonicClock,
    NoOpMiddleware<<MonotonicClock as Clock>::Instant>,
>;

/// One limit: `per_minute` steady, `burst` more at once; keyed by `K`.
pub struct RateLimiter<K: Hash + Eq + Clone> {
    inner: Option<Keyed<K>>,
    clock: MonotonicClock,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `per_minute = 0` means unlimited.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let inner = NonZeroU32::new(per_minute).map(|rate| {
            let burst = NonZeroU32::new(burst.saturating_add(1)).unwrap_or(NonZeroU32::MIN);
            governor::RateLimiter::new(
                Quota::per_minute(rate).allow_burst(burst),
                DefaultKeyedStateStore::default(),
                MonotonicClock,
            )
        });
        Self {
            inner,
            clock: MonotonicClock,
        }
    }

    /// Takes one request for `key`; `Err(seconds to wait)` when over.
    pub fn check(&self, key: &K) -> Result<(), u32> {
        let Some(limiter) = &self.inner else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            u32::try_from(wait.as_secs())
                .unwrap_or(u32::MAX)
                .saturating_add(1)
        })
    }

    /// Forgets keys that are back to a full allowance (idle clients).
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.inner {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |l| l.len())
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_with_a_wait() {
        let limiter = RateLimiter::new(60, 3); // one a second, 4 at once
        for _ in 0..4 {
            assert!(limiter.check(&"a").is_ok());
        }
        let wait = limiter.check(&"a").unwrap_err();
        assert!((1..=2).contains(&wait), "{wait}");
        assert!(limiter.check(&"b").is_ok(), "keys are independent");
        assert_eq!(limiter.len(), 2);
    }

    #[test]
    fn zero_means_unlimited_and_idle_keys_are_forgotten() {
        let open = RateLimiter::new(0, 0);
        for _ in 0..1000 {
            assert!(open.check(&1u64).is_ok());
        }
        let limiter = RateLimiter::new(6000, 0);
        for k in 0..100u64 {
            let _ = limiter.check(&k);
        }
        assert_eq!(limiter.len(), 100);
        std::thread::sleep(std::time::Duration::from_millis(50));
        limiter.forget_idle();
        assert_eq!(limiter.len(), 0, "every key refilled in 10 ms");
    }
}
