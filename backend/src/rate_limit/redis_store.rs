//! Budgets in Redis: [`super::gcra::decide`]'s steps as one Lua script, so the read, the
//! decision and the write are atomic across every server, on Redis's own clock.

use super::gcra::Decision;
use redis::aio::ConnectionManager;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The same arithmetic as `gcra::decide`, in milliseconds; the key expires when its budget is
/// whole again. ARGV: period, limit, 1 to spend (0 only looks). Returns {allowed, remaining,
/// reset_ms, retry_after_ms}. Needs Redis 5 or later (a script that reads TIME and then
/// writes; Debian 12 has 7.0).
const SCRIPT: &str = r#"
local period = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local interval = period / limit
local spend = ARGV[3] == '1'
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - period
if allow_at > now + 0.01 then
  return {0, 0, math.ceil(tat - now), math.ceil(allow_at - now)}
end
if spend then
  redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
end
return {1, math.floor((now - allow_at) / interval), math.ceil(new_tat - now), 0}
"#;

/// How long a request waits for the limiter before going ahead without it.
const TIMEOUT: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub(super) struct RedisStore {
    client: redis::Client,
    connection: Arc<Mutex<Option<ConnectionManager>>>,
    script: Arc<redis::Script>,
    /// When the last "limiter unavailable" warning was logged (seconds since the epoch): one
    /// a minute is enough to see an outage without flooding the log with it.
    warned_at: Arc<AtomicU64>,
    /// Until when (ms since the epoch) requests skip Redis after it failed: during an outage
    /// a request shouldn't wait out a timeout per budget it spends.
    resting_until: Arc<AtomicU64>,
}

/// How long Redis is left alone after it failed to answer.
const REST_MS: u64 = 5_000;

fn epoch_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

impl RedisStore {
    pub fn new(url: &str) -> crate::Result<Self> {
        let client = redis::Client::open(url).map_err(|e| crate::Error::Internal(format!("TESSERA_REDIS_URL isn't a Redis URL: {e}")))?;
        Ok(RedisStore {
            client,
            connection: Arc::default(),
            script: Arc::new(redis::Script::new(SCRIPT)),
            warned_at: Arc::default(),
            resting_until: Arc::default(),
        })
    }

    /// `None` when Redis didn't answer in time, or failed a moment ago (the caller lets the
    /// request through). `spend`: false only looks.
    pub async fn decide(&self, key: &str, period: Duration, limit: u32, spend: bool) -> Option<Decision> {
        if epoch_ms() < self.resting_until.load(Ordering::Relaxed) {
            return None;
        }
        let failure = match tokio::time::timeout(TIMEOUT, self.run(key, period, limit, spend)).await {
            Ok(Ok(decision)) => return Some(decision),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer within 250 ms".to_string(),
        };
        self.warn(&failure);
        self.resting_until.store(epoch_ms() + REST_MS, Ordering::Relaxed);
        // The connection is made again once the rest is over.
        *self.connection.lock().await = None;
        None
    }

    async fn run(&self, key: &str, period: Duration, limit: u32, spend: bool) -> redis::RedisResult<Decision> {
        let mut connection = {
            let mut slot = self.connection.lock().await;
            match slot.as_ref() {
                Some(connection) => connection.clone(),
                None => {
                    let connection = ConnectionManager::new(self.client.clone()).await?;
                    *slot = Some(connection.clone());
                    connection
                }
            }
        };
        let (allowed, remaining, reset_ms, retry_after_ms): (i64, i64, i64, i64) =
            self.script.key(key).arg(period.as_millis() as u64).arg(limit).arg(u8::from(spend)).invoke_async(&mut connection).await?;
        Ok(Decision {
            allowed: allowed == 1,
            remaining: remaining.max(0) as u32,
            reset_ms: reset_ms.max(0) as u64,
            retry_after_ms: retry_after_ms.max(0) as u64,
        })
    }

    fn warn(&self, why: &str) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let last = self.warned_at.load(Ordering::Relaxed);
        if now >= last + 60 && self.warned_at.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            tracing::warn!(error = why, "the rate limiter's Redis is unavailable; requests go through unlimited until it is back");
        }
    }
}
