//! API calls, counted per organization and reported to Stripe's meter.
//!
//! A call through the REST API (an access token or an API key) counts in memory; every two
//! seconds the counts go to `api_usage`, one row per organization and minute (a write per call
//! would cost more than the call). A job reports each finished minute to Stripe as one meter
//! event whose identifier is the row's own, so reporting it twice (a job that died after Stripe
//! took it) is refused by Stripe as a duplicate instead of billed twice.
//!
//! The plan's monthly allowance is checked against the month's stored total (re-read every ten
//! seconds) plus what this server hasn't stored yet: close enough to stop a runaway client,
//! without a query per call.

use super::sync::{API_CALLS_EVENT, CUSTOMER_KEY, VALUE_KEY};
use super::View;
use crate::error::{Error, Result};
use crate::jobs::{Job, RunningJob};
use crate::tenancy::Tenancy;
use crate::Backend;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tessera_domain::AppError;
use time::OffsetDateTime;
use uuid::Uuid;

const FLUSH_EVERY: Duration = Duration::from_secs(2);
const TOTALS_FRESH_FOR: Duration = Duration::from_secs(10);

/// This server's counts not stored yet, and the month's stored totals it last read.
#[derive(Clone, Default)]
pub struct Usage {
    inner: Arc<Mutex<Counts>>,
    flusher: Arc<OnceLock<()>>,
}

#[derive(Default)]
struct Counts {
    /// (organization, minute as Unix seconds) → calls.
    pending: HashMap<(Uuid, i64), u64>,
    /// organization → (read at, month (year × 12 + month), calls stored this month).
    totals: HashMap<Uuid, (Instant, i32, u64)>,
}

fn month_of(at: OffsetDateTime) -> i32 {
    at.year() * 12 + i32::from(u8::from(at.month()))
}

impl Usage {
    /// Counts one API call of `tenant_id`, refusing it (429) when the plan's monthly allowance
    /// is used up.
    pub async fn call(&self, tenancy: &Tenancy, tenant_id: Uuid, view: &View) -> Result<()> {
        if !view.enabled {
            return Ok(());
        }
        self.start_flushing(tenancy);
        let now = OffsetDateTime::now_utc();
        if let Some(limit) = view.entitlements.api_calls_per_month {
            let used = self.month_total(tenancy, tenant_id, now).await?;
            if used >= limit {
                let next = if now.month() == time::Month::December {
                    time::Date::from_calendar_date(now.year() + 1, time::Month::January, 1)
                } else {
                    time::Date::from_calendar_date(now.year(), now.month().next(), 1)
                }
                .map_err(|e| Error::Internal(e.to_string()))?;
                return Err(AppError::RateLimited(format!(
                    "This organization's plan includes {limit} API calls a month, and this month's are used. An owner or admin can upgrade under Settings → Billing; otherwise calls work again on {} {}, {}.",
                    next.month(),
                    next.day(),
                    next.year()
                ))
                .into());
            }
        }
        let minute = now.unix_timestamp() - now.unix_timestamp().rem_euclid(60);
        *self.inner.lock().expect("usage lock").pending.entry((tenant_id, minute)).or_default() += 1;
        Ok(())
    }

    /// The month's calls: stored (re-read when stale) plus this server's not yet stored.
    async fn month_total(&self, tenancy: &Tenancy, tenant_id: Uuid, now: OffsetDateTime) -> Result<u64> {
        let month = month_of(now);
        let cached = {
            let counts = self.inner.lock().expect("usage lock");
            counts.totals.get(&tenant_id).filter(|(at, m, _)| *m == month && at.elapsed() < TOTALS_FRESH_FOR).map(|(_, _, n)| *n)
        };
        let stored = match cached {
            Some(n) => n,
            None => {
                let mut tx = tenancy.maintenance("billing").await?;
                let n: i64 = sqlx::query_scalar(
                    "SELECT COALESCE(sum(calls), 0)::bigint FROM api_usage
                      WHERE tenant_id = $1 AND minute >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
                )
                .bind(tenant_id)
                .fetch_one(tx.conn())
                .await?;
                tx.commit(0).await?;
                let n = u64::try_from(n).unwrap_or_default();
                self.inner.lock().expect("usage lock").totals.insert(tenant_id, (Instant::now(), month, n));
                n
            }
        };
        let pending: u64 = self.inner.lock().expect("usage lock").pending.iter().filter(|((t, _), _)| *t == tenant_id).map(|(_, n)| n).sum();
        Ok(stored + pending)
    }

    fn start_flushing(&self, tenancy: &Tenancy) {
        self.flusher.get_or_init(|| {
            let (usage, tenancy) = (self.clone(), tenancy.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(FLUSH_EVERY).await;
                    if let Err(e) = usage.flush(&tenancy).await {
                        tracing::warn!(error = %e, "storing API call counts failed; kept for the next try");
                    }
                }
            });
        });
    }

    /// Stores the pending counts (added to the minute's row); on failure they are kept.
    pub async fn flush(&self, tenancy: &Tenancy) -> Result<()> {
        let pending = std::mem::take(&mut self.inner.lock().expect("usage lock").pending);
        if pending.is_empty() {
            return Ok(());
        }
        let (mut tenants, mut minutes, mut calls) = (Vec::new(), Vec::new(), Vec::new());
        for ((tenant, minute), n) in &pending {
            tenants.push(*tenant);
            minutes.push(OffsetDateTime::from_unix_timestamp(*minute).map_err(|e| Error::Internal(e.to_string()))?);
            calls.push(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        let stored = async {
            let mut tx = tenancy.maintenance("billing").await?;
            sqlx::query(
                "INSERT INTO api_usage (tenant_id, minute, calls)
                 SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::bigint[])
                 ON CONFLICT (tenant_id, minute) DO UPDATE SET calls = api_usage.calls + EXCLUDED.calls",
            )
            .bind(&tenants)
            .bind(&minutes)
            .bind(&calls)
            .execute(tx.conn())
            .await?;
            tx.commit(pending.len() as u64).await
        }
        .await;
        let mut counts = self.inner.lock().expect("usage lock");
        match stored {
            Ok(()) => {
                // The stored totals now include these.
                for ((tenant, _), n) in pending {
                    if let Some((_, _, total)) = counts.totals.get_mut(&tenant) {
                        *total += n;
                    }
                }
                Ok(())
            }
            Err(e) => {
                for (key, n) in pending {
                    *counts.pending.entry(key).or_default() += n;
                }
                Err(e)
            }
        }
    }
}

/// Reports finished minutes to Stripe (every minute, and on demand).
#[derive(Serialize, Deserialize)]
pub struct ReportUsage;

impl Job for ReportUsage {
    const KIND: &'static str = "billing.report_usage";
    const MAX_ATTEMPTS: i32 = super::account::BILLING_ATTEMPTS;

    async fn run(self, job: &RunningJob) -> Result<()> {
        report(&job.backend).await.map(|_| ())
    }
}
crate::register_job!(ReportUsage);
crate::register_schedule!("billing.report_usage", "* * * * *", ReportUsage);

/// Sends each unreported finished minute to Stripe as a meter event; returns how many.
pub async fn report(backend: &Backend) -> Result<u64> {
    let billing = backend.tenancy.billing();
    let Ok(stripe) = billing.stripe() else { return Ok(0) };
    billing.usage().flush(&backend.tenancy).await?;
    let mut tx = backend.tenancy.maintenance("billing").await?;
    // A minute that grows after its report (more calls, a late flush from another server)
    // reports the difference next time, under an identifier of its own.
    let rows: Vec<(Uuid, OffsetDateTime, i64, i64, String, Option<serde_json::Value>)> = sqlx::query_as(
        "SELECT u.tenant_id, u.minute, u.calls, u.reported_calls, a.customer_id, t.billing
           FROM api_usage u JOIN billing_accounts a ON a.tenant_id = u.tenant_id JOIN tenants t ON t.id = u.tenant_id
          WHERE u.calls > u.reported_calls AND a.customer_id IS NOT NULL
          ORDER BY u.minute LIMIT 500",
    )
    .fetch_all(tx.conn())
    .await?;
    let mut reported = 0;
    for (tenant_id, minute, calls, already, customer, record) in rows {
        let skew = record.and_then(|r| serde_json::from_value::<super::Record>(r).ok()).map_or(0, |r| r.clock_skew);
        let payload = HashMap::from([(CUSTOMER_KEY.to_string(), customer), (VALUE_KEY.to_string(), (calls - already).to_string())]);
        let request = stripe_billing::billing_meter_event::CreateBillingMeterEvent::new(API_CALLS_EVENT, payload)
            .identifier(format!("tessera-{}-{}-{calls}", tenant_id.simple(), minute.unix_timestamp()))
            // In the customer's time (a test clock's), so the calls land in its billing period.
            .timestamp(minute.unix_timestamp() + skew);
        match stripe.send(request).await {
            Ok(_) => {}
            // Taken before (a report whose answer was lost, or another server's run): done.
            Err(Error::Stripe { status: 400, param: Some(param), .. }) if param == "identifier" => {}
            // Refused for good (a deleted customer, a minute older than Stripe takes): logged and
            // marked, so it doesn't hold up everyone else's usage.
            Err(Error::Stripe { status, message, .. }) if (400..500).contains(&status) && status != 429 => {
                tracing::warn!(tenant = %tenant_id, minute = %minute, status, message = %message, "Stripe refused a usage report; skipped");
            }
            Err(e) => {
                // What was sent so far stays marked; the rest waits for the job's retry.
                tx.commit(reported).await?;
                return Err(e);
            }
        }
        // Rows aren't locked while Stripe is asked (the flusher keeps adding): never lower it.
        sqlx::query("UPDATE api_usage SET reported_calls = GREATEST(reported_calls, $3), reported_at = now() WHERE tenant_id = $1 AND minute = $2")
            .bind(tenant_id)
            .bind(minute)
            .bind(calls)
            .execute(tx.conn())
            .await?;
        reported += 1;
    }
    tx.commit(reported).await?;
    Ok(reported)
}
