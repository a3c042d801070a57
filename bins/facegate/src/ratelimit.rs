//! Token-bucket rate limits, per API key and per client address.
//!
//! In memory, per server instance: a limit is a guard against one client
//! flooding one process, not an account-level quota, so it need not be
//! shared (the verification lockout, which must hold across instances and
//! restarts, lives in the store). One std mutex around the map: it is held
//! for a hash lookup and a few float operations, never across an await.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets beyond this many are pruned of full (idle) ones.
const PRUNE_ABOVE: usize = 10_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One limit: `per_minute` steady, `burst` more at once.
pub struct RateLimiter {
    per_sec: f64,
    capacity: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// `per_minute = 0` means unlimited.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self {
            per_sec: f64::from(per_minute) / 60.0,
            capacity: f64::from(burst.max(1)) + f64::from(per_minute.min(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; `Err(seconds to wait)` when none is left.
    pub fn check(&self, key: &str) -> Result<(), u32> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), u32> {
        if self.per_sec == 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            let (per_sec, capacity) = (self.per_sec, self.capacity);
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec < capacity
            });
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.capacity,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.per_sec;
            Err(wait.ceil().max(1.0) as u32)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_is_allowed_then_the_steady_rate() {
        let limiter = RateLimiter::new(60, 3); // one a second, 4 at once
        let t0 = Instant::now();
        for _ in 0..4 {
            assert!(limiter.check_at("a", t0).is_ok());
        }
        assert_eq!(limiter.check_at("a", t0), Err(1));
        // Another key has its own bucket.
        assert!(limiter.check_at("b", t0).is_ok());
        // One second later, one more.
        let t1 = t0 + Duration::from_secs(1);
        assert!(limiter.check_at("a", t1).is_ok());
        assert!(limiter.check_at("a", t1).is_err());
    }

    #[test]
    fn zero_is_unlimited() {
        let limiter = RateLimiter::new(0, 0);
        for _ in 0..1000 {
            assert!(limiter.check("x").is_ok());
        }
    }
}
