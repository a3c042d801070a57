//! The limits in Redis ([`face_store::RedisRates`]): one allowance per key
//! across every instance.

use async_trait::async_trait;
use face_store::RedisRates;

use super::{Limit, Quotas, RateLimits, Refusal};

/// Limits whose state is in Redis.
pub struct SharedLimits {
    rates: RedisRates,
    quotas: Quotas,
}

impl SharedLimits {
    pub fn new(rates: RedisRates, quotas: Quotas) -> Self {
        Self { rates, quotas }
    }

    async fn spend(&self, limit: Limit, key: &str, cost: u32) -> Result<(), Refusal> {
        let quota = self.quotas.of(limit);
        if quota.per_minute == 0 {
            return Ok(());
        }
        let key = format!("{}:{key}", limit.as_str());
        match self
            .rates
            .take(&key, quota.per_minute, quota.burst, cost)
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(wait)) => Err(Refusal::Limited {
                // Whole seconds, rounded up: a client that waits as told is
                // admitted.
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }),
            Err(e) => {
                metrics::counter!(crate::telemetry::RATE_STORE_ERRORS).increment(1);
                tracing::warn!(limit = limit.as_str(), "rate limit store: {e}");
                Err(Refusal::Unavailable)
            }
        }
    }
}

#[async_trait]
impl RateLimits for SharedLimits {
    async fn take(&self, limit: Limit, key: &str) -> Result<(), Refusal> {
        self.spend(limit, key, 1).await
    }

    async fn check(&self, limit: Limit, key: &str) -> Result<(), Refusal> {
        self.spend(limit, key, 0).await
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}
