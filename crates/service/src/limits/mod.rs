//! Rate limits: per API key and per client address on every request, and
//! the budget of failed identifications, behind one trait with two places
//! for their state.
//!
//! - [`MemoryLimits`] (`security.rate_store = "memory"`, the default):
//!   `governor`'s keyed GCRA limiters in this process. Right for one
//!   instance; with several behind a load balancer each allows the full
//!   rate, so N instances allow N times as much.
//! - [`SharedLimits`] (`"redis"`): the same GCRA evaluated atomically in
//!   Redis by one Lua script, so every instance spends one allowance. When
//!   Redis cannot be reached a limited request is refused
//!   ([`Refusal::Unavailable`], 503 with `Retry-After`): failing open would
//!   hand an attacker unlimited guesses by taking Redis down.
//!
//! Both read a limit the same way: `per_minute` steady and `burst` more at
//! once. Verification lockouts are not rate limits and stay in the store.

mod budget;
mod keyed;
mod shared;

use async_trait::async_trait;

pub use budget::FailureBudget;
pub use keyed::RateLimiter;
pub use shared::SharedLimits;

use crate::access::Caller;

/// Which limit a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Requests per API key.
    ApiKey,
    /// Requests per client address (IPv6: its /64), before the key is
    /// checked, so key guessing is limited too.
    ClientAddress,
    /// Failed identifications per key and per client.
    FailedIdentifications,
}

impl Limit {
    /// The name in metrics, Redis keys and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::ApiKey => "api_key",
            Limit::ClientAddress => "client_address",
            Limit::FailedIdentifications => "failed_identifications",
        }
    }
}

/// A limit's rate: `per_minute` steady (0: unlimited), `burst` more at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub per_minute: u32,
    pub burst: u32,
}

/// The limits' rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub api_key: Quota,
    pub client_address: Quota,
    /// Failed identifications a minute, as many at once.
    pub failed_identifications_per_minute: u32,
}

impl Quota {
    /// No limit.
    pub const UNLIMITED: Quota = Quota {
        per_minute: 0,
        burst: 0,
    };
}

impl Quotas {
    /// The quota of `limit`.
    pub fn of(&self, limit: Limit) -> Quota {
        match limit {
            Limit::ApiKey => self.api_key,
            Limit::ClientAddress => self.client_address,
            Limit::FailedIdentifications => Quota {
                per_minute: self.failed_identifications_per_minute,
                // n at once: the first n failures are free, the next waits.
                burst: self.failed_identifications_per_minute.saturating_sub(1),
            },
        }
    }
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over the limit: wait this many seconds.
    Limited { retry_after_secs: u64 },
    /// The shared limit store did not answer: refused, try again soon.
    Unavailable,
}

/// Where the limits' state lives.
#[async_trait]
pub trait RateLimits: Send + Sync {
    /// Spends one request of `key`'s allowance under `limit`, or refuses.
    async fn take(&self, limit: Limit, key: &str) -> Result<(), Refusal>;

    /// Whether `key` has an allowance left under `limit`, spending none.
    async fn check(&self, limit: Limit, key: &str) -> Result<(), Refusal>;

    /// Drops state no longer needed (idle clients); called periodically.
    fn forget_idle(&self) {}

    /// `memory` or `redis`, for `/stats/` and the logs.
    fn kind(&self) -> &'static str;
}

/// The keys a caller's failed identifications are counted under: its API
/// key and its client address.
pub fn budget_keys(caller: &Caller) -> impl Iterator<Item = String> + '_ {
    let key = caller.key_id.map(|id| format!("key:{id}"));
    let client = caller
        .client_key
        .as_ref()
        .or(caller.client.as_ref())
        .map(|c| format!("client:{c}"));
    key.into_iter().chain(client)
}

/// The in-process limits.
pub struct MemoryLimits {
    per_key: RateLimiter<String>,
    per_client: RateLimiter<String>,
    budget: FailureBudget,
}

impl MemoryLimits {
    pub fn new(quotas: Quotas) -> Self {
        let q = |l: Limit| quotas.of(l);
        Self {
            per_key: RateLimiter::new(q(Limit::ApiKey).per_minute, q(Limit::ApiKey).burst),
            per_client: RateLimiter::new(
                q(Limit::ClientAddress).per_minute,
                q(Limit::ClientAddress).burst,
            ),
            budget: FailureBudget::new(quotas.failed_identifications_per_minute),
        }
    }

    fn limiter(&self, limit: Limit) -> Option<&RateLimiter<String>> {
        match limit {
            Limit::ApiKey => Some(&self.per_key),
            Limit::ClientAddress => Some(&self.per_client),
            Limit::FailedIdentifications => None,
        }
    }
}

#[async_trait]
impl RateLimits for MemoryLimits {
    async fn take(&self, limit: Limit, key: &str) -> Result<(), Refusal> {
        match self.limiter(limit) {
            Some(l) => l.check(&key.to_string()).map_err(|wait| Refusal::Limited {
                retry_after_secs: u64::from(wait),
            }),
            None => {
                self.budget.failed(key);
                Ok(())
            }
        }
    }

    async fn check(&self, limit: Limit, key: &str) -> Result<(), Refusal> {
        match self.limiter(limit) {
            // A request limit is only ever taken.
            Some(_) => Ok(()),
            None => self
                .budget
                .check(key)
                .map_err(|retry_after_secs| Refusal::Limited { retry_after_secs }),
        }
    }

    fn forget_idle(&self) {
        self.per_key.forget_idle();
        self.per_client.forget_idle();
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
