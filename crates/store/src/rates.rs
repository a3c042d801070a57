//! Rate-limit state shared by every instance: a GCRA (generic cell rate
//! algorithm) per key, evaluated atomically in Redis by one Lua script.
//!
//! A key's whole state is one number, its theoretical arrival time (TAT,
//! microseconds on Redis's clock): a request is admitted when `TAT - now`
//! is within the tolerance (`burst` emission intervals), and then moves the
//! TAT one interval on. The script reads the clock with `TIME`, so the
//! instances' clocks never enter into it, and sets the key to expire once
//! its TAT has passed (a full allowance needs no state), so Redis holds only
//! the clients seen within about one refill period. Read and update are one
//! script: two instances cannot both spend the last unit.
//!
//! Every call is bounded by a timeout: an unreachable Redis is an error at
//! once, which the caller turns into a refusal (fail closed). The
//! connection is made lazily and re-made in the background after a
//! failure, so the server starts while Redis is down and recovers when it
//! is back. A connection that stops answering without being closed (the
//! host gone in a failover, a dropped NAT entry) is not a failure to the
//! client library, which would keep waiting on it for as long as the
//! kernel keeps the socket; so after a timeout the connection is
//! replaced.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::{Result, StoreError};

/// The GCRA. KEYS[1]: the key; ARGV: emission interval (µs), tolerance
/// (µs), cost (1: spend one; 0: only look). Returns {1, 0} when admitted,
/// {0, µs to wait} when not.
const GCRA: &str = r"
-- Replicate the writes, not the script (it reads the clock): needed on
-- Redis 3.2-4, the default from 5, a no-op from 7.
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - now - tolerance
if wait > 0 then return {0, wait} end
if cost > 0 then
  local new_tat = tat + interval * cost
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
end
return {1, 0}
";

/// Prefix of every key this store writes.
const PREFIX: &str = "facegate:rate:";

/// A client of the shared rate-limit state. Cheap to clone (clones share
/// the connection).
#[derive(Clone)]
pub struct RedisRates {
    /// The connection, replaced after a timeout. A std mutex: held to
    /// clone or swap a handle, never across an await.
    conn: Arc<Mutex<ConnectionManager>>,
    client: redis::Client,
    script: redis::Script,
    timeout: Duration,
}

impl std::fmt::Debug for RedisRates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRates")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisRates {
    /// A client of the Redis at `url` (`redis://[user:password@]host:port[/db]`;
    /// built without TLS, so `rediss://` is refused); connects on first use. Each call waits at
    /// most `timeout`. Must be called inside a Tokio runtime.
    pub fn new(url: &str, timeout: Duration) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|e| {
            StoreError::BadData(format!(
                "the Redis URL is not valid ({e}); expected redis://host:port"
            ))
        })?;
        let conn = connection(&client, timeout)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            client,
            script: redis::Script::new(GCRA),
            timeout,
        })
    }

    fn handle(&self) -> ConnectionManager {
        self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs `call` on the connection within the timeout; after a timeout
    /// the connection is replaced (the next call connects afresh).
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(answer) => answer.map_err(|e| StoreError::Unavailable(format!("Redis: {e}"))),
            Err(_) => {
                if let Ok(fresh) = connection(&self.client, self.timeout) {
                    *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
                }
                Err(StoreError::Unavailable(
                    "Redis did not answer in time".into(),
                ))
            }
        }
    }

    /// Spends `cost` (0: none, only looks) of `key`'s allowance at
    /// `per_minute` with `burst` more at once: `Ok(Ok(()))` when admitted,
    /// `Ok(Err(wait))` when not, `Err(Unavailable)` when Redis did not
    /// answer in time. `per_minute` must be at least 1.
    pub async fn take(
        &self,
        key: &str,
        per_minute: u32,
        burst: u32,
        cost: u32,
    ) -> Result<std::result::Result<(), Duration>> {
        // At least a microsecond: a rate above 60 million a minute is
        // not "unlimited".
        let interval = (60_000_000 / u64::from(per_minute.max(1))).max(1);
        let tolerance = interval * u64::from(burst);
        let mut conn = self.handle();
        let mut call = self.script.key(format!("{PREFIX}{key}"));
        call.arg(interval).arg(tolerance).arg(cost);
        let answer: (i64, i64) = self.bounded(call.invoke_async(&mut conn)).await?;
        Ok(match answer {
            (1, _) => Ok(()),
            (_, wait_us) => Err(Duration::from_micros(wait_us.max(0) as u64)),
        })
    }

    /// Whether Redis answers.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.handle();
        let pong: String = self
            .bounded(redis::cmd("PING").query_async(&mut conn))
            .await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!(
                "Redis answered {pong:?} to PING"
            )))
        }
    }
}

/// A lazy connection to `client`'s Redis: made on first use, remade in the
/// background after an error, each attempt and answer within `timeout`.
fn connection(client: &redis::Client, timeout: Duration) -> Result<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(1));
    ConnectionManager::new_lazy_with_config(client.clone(), config)
        .map_err(|e| StoreError::Unavailable(format!("Redis: {e}")))
}
