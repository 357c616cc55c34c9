//! Request budgets: per IP address before sign-in, per organization and per API key after.
//!
//! Each budget is the generic cell rate algorithm ([`gcra`]): `limit` requests per minute,
//! allowed in a burst, then refilled evenly. The state lives in Redis when one is configured,
//! so every server shares one budget per key; otherwise in this process (the embedded
//! default: one server, nothing more to run).
//!
//! A limiter that can't answer (Redis down or slow) lets the request through and logs a
//! warning: a budget protects the service, and refusing every customer because the limiter
//! is down would be the outage it exists to prevent.
//!
//! Why not a crate: `governor` is the maintained in-process GCRA, but a keyed limiter has one
//! quota for every key (organizations will get their plan's), and there is no maintained
//! Redis GCRA client; the arithmetic is a dozen lines, shared by both stores and tested once.

pub mod gcra;
mod redis_store;

pub use gcra::Decision;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// Whose budget a request spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A caller not signed in, by address (an IPv6 address by its /64, which one subscriber
    /// usually holds whole).
    Address(std::net::IpAddr),
    /// A signed-in person, whatever they call.
    User(Uuid),
    Organization(Uuid),
    ApiKey(Uuid),
}

impl Scope {
    /// The policy's name in the `RateLimit` headers.
    pub fn policy(self) -> &'static str {
        match self {
            Scope::Address(_) => "ip",
            Scope::User(_) => "user",
            Scope::Organization(_) => "organization",
            Scope::ApiKey(_) => "api-key",
        }
    }

    fn key(self) -> String {
        match self {
            Scope::Address(std::net::IpAddr::V4(ip)) => format!("rl:ip:{ip}"),
            Scope::Address(std::net::IpAddr::V6(ip)) => {
                let [a, b, c, d, ..] = ip.segments();
                format!("rl:ip:{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
            Scope::User(id) => format!("rl:user:{id}"),
            Scope::Organization(id) => format!("rl:org:{id}"),
            Scope::ApiKey(id) => format!("rl:key:{id}"),
        }
    }
}

/// Requests per minute for each kind of budget (0: unlimited).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budgets {
    pub per_address: u32,
    pub per_user: u32,
    pub per_organization: u32,
    pub per_api_key: u32,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets { per_address: 300, per_user: 600, per_organization: 3000, per_api_key: 1200 }
    }
}

impl Budgets {
    /// No limits (what a `Tenancy` has until the server configures it).
    pub const UNLIMITED: Budgets = Budgets { per_address: 0, per_user: 0, per_organization: 0, per_api_key: 0 };
}

impl Budgets {
    fn limit(&self, scope: Scope) -> u32 {
        match scope {
            Scope::Address(_) => self.per_address,
            Scope::User(_) => self.per_user,
            Scope::Organization(_) => self.per_organization,
            Scope::ApiKey(_) => self.per_api_key,
        }
    }
}

/// One budget's answer, with what the `RateLimit` headers report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    pub scope: Scope,
    pub limit: u32,
    pub decision: Decision,
}

impl Admission {
    /// The refusal a person or program reads (429).
    pub fn refusal(&self) -> tessera_domain::AppError {
        let seconds = self.decision.retry_after_ms.div_ceil(1000).max(1);
        let whose = match self.scope {
            Scope::Address(_) => "from your network",
            Scope::User(_) => "from your account",
            Scope::Organization(_) => "for this organization",
            Scope::ApiKey(_) => "with this API key",
        };
        tessera_domain::AppError::RateLimited(format!(
            "Too many requests {whose} just now (the limit is {} a minute). Try again in {seconds} second{}.",
            self.limit,
            if seconds == 1 { "" } else { "s" }
        ))
    }
}

const PERIOD: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct RateLimiter {
    budgets: Budgets,
    store: Store,
}

#[derive(Clone)]
enum Store {
    Local(Arc<Mutex<LocalState>>),
    Redis(redis_store::RedisStore),
}

#[derive(Default)]
struct LocalState {
    tats: HashMap<String, f64>,
    checks: u64,
}

/// The budgets one request has spent, for its response's `RateLimit` headers. The HTTP layer
/// puts one in the request; [`crate::RequestMeta`] carries it to wherever budgets are spent.
#[derive(Clone, Default)]
pub struct SpentBudgets(Arc<Mutex<Vec<Admission>>>);

impl SpentBudgets {
    fn record(&self, admission: Admission) {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(admission);
    }

    pub fn all(&self) -> Vec<Admission> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

impl std::fmt::Debug for SpentBudgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SpentBudgets").field(&self.all().len()).finish()
    }
}

impl RateLimiter {
    /// Budgets kept in this process.
    pub fn local(budgets: Budgets) -> Self {
        RateLimiter { budgets, store: Store::Local(Arc::default()) }
    }

    /// Budgets kept in Redis at `url`, shared by every server using it. Connecting happens on
    /// first use (and again after an outage), so a Redis that is down doesn't stop a start.
    pub fn redis(budgets: Budgets, url: &str) -> crate::Result<Self> {
        Ok(RateLimiter { budgets, store: Store::Redis(redis_store::RedisStore::new(url)?) })
    }

    pub fn budgets(&self) -> Budgets {
        self.budgets
    }

    /// Spends one request of `scope`'s budget, noting it in `spent` (the request's, for its
    /// headers). `Err` is the 429 to answer with.
    pub async fn admit(&self, scope: Scope, spent: Option<&SpentBudgets>) -> crate::Result<()> {
        let limit = self.budgets.limit(scope);
        if limit == 0 {
            return Ok(());
        }
        let decision = match &self.store {
            Store::Local(state) => Some(local_decide(state, &scope.key(), limit, true)),
            Store::Redis(redis) => redis.decide(&scope.key(), PERIOD, limit, true).await,
        };
        // No answer: fail open (the store logged why).
        let Some(decision) = decision else { return Ok(()) };
        let admission = Admission { scope, limit, decision };
        if let Some(spent) = spent {
            spent.record(admission);
        }
        if decision.allowed {
            Ok(())
        } else {
            Err(admission.refusal().into())
        }
    }
}

impl RateLimiter {
    /// Whether `scope`'s budget is spent right now, without spending any: for calls that pay
    /// only when they fail (a refused credential), so a spent budget turns them away first.
    pub async fn exhausted(&self, scope: Scope) -> bool {
        let limit = self.budgets.limit(scope);
        if limit == 0 {
            return false;
        }
        let decision = match &self.store {
            Store::Local(state) => Some(local_decide(state, &scope.key(), limit, false)),
            Store::Redis(redis) => redis.decide(&scope.key(), PERIOD, limit, false).await,
        };
        decision.is_some_and(|d| !d.allowed)
    }
}

fn now_ms() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or_default()
}

/// One decision on the in-process store; `spend`: store what an allowed request spends.
fn local_decide(state: &Mutex<LocalState>, key: &str, limit: u32, spend: bool) -> Decision {
    let now = now_ms();
    let mut state = state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // Keys whose budget is whole again hold nothing worth keeping: sweep them now and then,
    // so a stream of new addresses can't grow the map without bound.
    state.checks += 1;
    if state.checks.is_multiple_of(4096) {
        state.tats.retain(|_, tat| *tat > now);
    }
    let (decision, next) = gcra::decide(state.tats.get(key).copied(), now, PERIOD.as_millis() as f64, limit);
    if let (Some(tat), true) = (next, spend) {
        state.tats.insert(key.to_string(), tat);
    }
    decision
}

/// The `RateLimit-Policy` and `RateLimit` header values (IETF draft
/// `draft-ietf-httpapi-ratelimit-headers`) for the budget closest to running out, and the
/// `Retry-After` seconds when it refused.
pub fn headers(spent: &[Admission]) -> Option<(String, String, Option<u64>)> {
    let tightest = spent.iter().min_by_key(|a| (a.decision.allowed, a.decision.remaining))?;
    let name = tightest.scope.policy();
    let policy = format!("\"{name}\";q={};w={}", tightest.limit, PERIOD.as_secs());
    let reset = tightest.decision.reset_ms.div_ceil(1000);
    let current = format!("\"{name}\";r={};t={reset}", tightest.decision.remaining);
    let retry_after = (!tightest.decision.allowed).then(|| tightest.decision.retry_after_ms.div_ceil(1000).max(1));
    Some((policy, current, retry_after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_scope_has_its_own_budget_and_a_zero_budget_is_unlimited() {
        let limiter = RateLimiter::local(Budgets { per_address: 2, per_user: 0, per_organization: 0, per_api_key: 1 });
        let ip = Scope::Address("192.0.2.1".parse().unwrap());
        assert!(limiter.admit(ip, None).await.is_ok());
        assert!(limiter.admit(ip, None).await.is_ok());
        let refused = limiter.admit(ip, None).await.unwrap_err().into_app_error();
        assert_eq!(refused.status(), 429);
        assert!(refused.to_string().contains("from your network just now (the limit is 2 a minute)"), "{refused}");
        assert!(limiter.admit(Scope::Address("192.0.2.2".parse().unwrap()), None).await.is_ok(), "another address");
        for _ in 0..10 {
            assert!(limiter.admit(Scope::Organization(Uuid::new_v4()), None).await.is_ok());
        }
        let key = Scope::ApiKey(Uuid::new_v4());
        assert!(limiter.admit(key, None).await.is_ok());
        assert!(limiter.admit(key, None).await.is_err());
    }

    #[tokio::test]
    async fn the_headers_report_the_budget_closest_to_running_out() {
        let limiter = RateLimiter::local(Budgets { per_address: 5, per_user: 0, per_organization: 10, per_api_key: 2 });
        let (org, key) = (Scope::Organization(Uuid::new_v4()), Scope::ApiKey(Uuid::new_v4()));
        let spent = SpentBudgets::default();
        limiter.admit(org, Some(&spent)).await.unwrap();
        limiter.admit(key, Some(&spent)).await.unwrap();
        let (policy, current, retry) = headers(&spent.all()).unwrap();
        assert_eq!((policy.as_str(), current.as_str(), retry), ("\"api-key\";q=2;w=60", "\"api-key\";r=1;t=30", None));
        let spent = SpentBudgets::default();
        let _ = limiter.admit(key, Some(&spent)).await;
        let _ = limiter.admit(key, Some(&spent)).await;
        let spent = spent.all();
        let (_, current, retry) = headers(&spent).unwrap();
        assert!(current.starts_with("\"api-key\";r=0;"), "{current}");
        assert_eq!(retry, Some(30));
    }

    #[tokio::test]
    async fn an_ipv6_subscriber_is_one_address_and_looking_spends_nothing() {
        let limiter = RateLimiter::local(Budgets { per_address: 1, ..Budgets::UNLIMITED });
        let one: std::net::IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_subnet: std::net::IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert!(!limiter.exhausted(Scope::Address(one)).await);
        assert!(!limiter.exhausted(Scope::Address(one)).await, "looking twice spends nothing");
        assert!(limiter.admit(Scope::Address(one), None).await.is_ok());
        assert!(limiter.exhausted(Scope::Address(same_subnet)).await);
        assert!(limiter.admit(Scope::Address(same_subnet), None).await.is_err(), "rotating within the /64 doesn't help");
        assert!(limiter.admit(Scope::Address("2001:db8:1:3::1".parse().unwrap()), None).await.is_ok(), "another subscriber");
    }
}
