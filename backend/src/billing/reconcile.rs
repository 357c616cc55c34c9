//! The hourly safety net for what Stripe's events alone would leave undone:
//! - an organization without a Stripe customer an hour after it was made and no job still
//!   trying to make one (it gave up during a long Stripe outage, or the organization existed
//!   before billing was switched on) gets one;
//! - an organization whose state changed with the clock alone (a grace period ran out, a
//!   promised trial ended before Stripe made it) with no event from Stripe is refreshed, so the
//!   change is announced like any other: audit record, notices, webhook event.
//!
//! The door never waits for this: it derives the state from the clock on every request. Both
//! jobs it queues are idempotent, so one queued twice (a retry still pending) costs a Stripe
//! call, not a second customer or notice.

use super::account::{OpenAccount, Refresh};
use super::Record;
use crate::error::Result;
use crate::jobs::{Job, Lane, RunningJob};
use crate::Backend;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use uuid::Uuid;

/// Organizations looked at per run (the rest wait an hour; the door doesn't depend on it).
const BATCH: i64 = 1000;

#[derive(Serialize, Deserialize)]
pub struct Reconcile;

impl Job for Reconcile {
    const KIND: &'static str = "billing.reconcile";

    async fn run(self, job: &RunningJob) -> Result<()> {
        reconcile(&job.backend).await.map(|_| ())
    }
}
crate::register_job!(Reconcile);
crate::register_schedule!("billing.reconcile", "41 * * * *", Reconcile);

/// What a run queued.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Organizations whose Stripe customer is (again) being made.
    pub opened: Vec<Uuid>,
    /// Organizations refreshed because their state moved on with the clock.
    pub refreshed: Vec<Uuid>,
}

pub async fn reconcile(backend: &Backend) -> Result<Reconciled> {
    let billing = backend.tenancy.billing();
    if !billing.enabled() {
        return Ok(Reconciled::default());
    }
    // Organizations whose account job is still being tried (the queue's own view).
    let pending: Vec<Uuid> = {
        let mut tx = backend.tenancy.maintenance("jobs").await?;
        let lanes = sqlx::query_scalar("SELECT DISTINCT lane FROM jobs WHERE kind = $1 AND status IN ('queued', 'running')")
            .bind(OpenAccount::KIND)
            .fetch_all(tx.conn())
            .await?;
        tx.commit(0).await?;
        lanes
    };
    let mut tx = backend.tenancy.maintenance("billing").await?;
    let opened: Vec<Uuid> = sqlx::query_scalar(
        "SELECT t.id FROM tenants t LEFT JOIN billing_accounts a ON a.tenant_id = t.id
          WHERE a.customer_id IS NULL AND t.status IN ('active', 'suspended', 'moving') AND t.created_at < now() - interval '1 hour'
            AND t.id <> ALL($2)
          ORDER BY t.created_at LIMIT $1",
    )
    .bind(BATCH)
    .bind(&pending)
    .fetch_all(tx.conn())
    .await?;
    // Only these end with the clock (see `BillingState::derive`): unpaid past the grace period,
    // and a trial promised at sign-up that Stripe never made. (A trial Stripe made ends with an
    // event of its own.)
    let timed: Vec<(Uuid, Json<Record>, String)> = sqlx::query_as(
        "SELECT t.id, t.billing, a.announced FROM tenants t JOIN billing_accounts a ON a.tenant_id = t.id
          WHERE (t.billing->'snapshot'->>'status' = 'past_due'
                 OR (t.billing->'snapshot'->>'status' = 'trialing' AND t.billing->'snapshot'->>'subscription_id' = ''))
            AND t.status IN ('active', 'suspended', 'moving')
          ORDER BY a.updated_at LIMIT $1",
    )
    .bind(BATCH)
    .fetch_all(tx.conn())
    .await?;
    tx.commit(0).await?;
    let refreshed: Vec<Uuid> =
        timed.into_iter().filter(|(_, record, announced)| billing.view(Some(&record.0)).state.label() != *announced).map(|(id, ..)| id).collect();

    // Each in its organization's lane (the only place a transaction may queue its jobs).
    for &tenant_id in &opened {
        let mut tx = backend.tenancy.maintenance_in("billing", tenant_id).await?;
        crate::jobs::enqueue(tx.conn(), Lane::Organization(tenant_id), &OpenAccount { tenant_id }).await?;
        tx.commit(1).await?;
    }
    for &tenant_id in &refreshed {
        let mut tx = backend.tenancy.maintenance_in("billing", tenant_id).await?;
        crate::jobs::enqueue(tx.conn(), Lane::Organization(tenant_id), &Refresh { tenant_id }).await?;
        tx.commit(1).await?;
    }
    Ok(Reconciled { opened, refreshed })
}
