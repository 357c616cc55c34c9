//! How long an organization keeps its audit records, and the daily job that removes older ones.
//! Removing goes through the database's `audit_prune`, which moves the chain's anchor so what
//! remains still verifies, and refuses to keep fewer than 90 days whatever it is asked.

use super::AuditEntry;
use crate::error::Result;
use crate::jobs::{Job, Lane, RunningJob};
use crate::tenancy::Org;
use crate::Backend;
use serde::{Deserialize, Serialize};
use tessera_domain::audit::{AUDIT_RETENTION_MAX_DAYS, AUDIT_RETENTION_MIN_DAYS};
use tessera_domain::input::FieldError;
use tessera_domain::Permission;
use uuid::Uuid;

/// The organization's retention period, in days.
pub async fn period(org: &Org) -> Result<i32> {
    let mut tx = org.control_read(Permission::ViewAudit).await?;
    Ok(sqlx::query_scalar("SELECT audit_retention_days FROM tenants WHERE id = $1").bind(org.tenant.id).fetch_one(tx.conn()).await?)
}

/// Parses a retention period as a person typed it.
pub fn parse_days(raw: &str) -> Result<i32, FieldError> {
    let wrong =
        || FieldError::new("days", format!("Keep the audit log between {AUDIT_RETENTION_MIN_DAYS} and {AUDIT_RETENTION_MAX_DAYS} days (ten years)."));
    let days: i32 = raw.trim().parse().map_err(|_| wrong())?;
    if (AUDIT_RETENTION_MIN_DAYS..=AUDIT_RETENTION_MAX_DAYS).contains(&days) {
        Ok(days)
    } else {
        Err(wrong())
    }
}

/// Sets the retention period (Owners). Shortening it removes older records at the next daily run.
pub async fn set_period(org: &Org, days: i32) -> Result<()> {
    let mut tx = org.control_write(Permission::ConfigureAuditLog).await?;
    let old: i32 =
        sqlx::query_scalar("SELECT audit_retention_days FROM tenants WHERE id = $1 FOR UPDATE").bind(org.tenant.id).fetch_one(tx.conn()).await?;
    if old == days {
        return Ok(());
    }
    sqlx::query("UPDATE tenants SET audit_retention_days = $2 WHERE id = $1").bind(org.tenant.id).bind(days).execute(tx.conn()).await?;
    let changes = serde_json::json!({ "audit_retention_days": { "old": old, "new": days } });
    tx.commit(AuditEntry::new("audit_log.retention_changed", "tenant", org.tenant.id, changes)).await
}

/// Daily: queues a prune for each organization, in its own lane (one organization's failure
/// or move doesn't hold the others up, and each is retried on its own).
#[derive(Serialize, Deserialize)]
pub struct PruneAll;

impl Job for PruneAll {
    const KIND: &'static str = "audit.prune";

    async fn run(self, job: &RunningJob) -> Result<()> {
        prune_all(&job.backend).await.map(|_| ())
    }
}
crate::register_job!(PruneAll);
crate::register_schedule!("audit.prune", "23 3 * * *", PruneAll);

/// Queues [`PruneOrganization`] for every organization that keeps data; answers how many.
pub async fn prune_all(backend: &Backend) -> Result<usize> {
    let tenants: Vec<Uuid> = {
        let mut tx = backend.tenancy.maintenance("audit").await?;
        let ids =
            sqlx::query_scalar("SELECT id FROM tenants WHERE status IN ('active', 'suspended', 'moving') ORDER BY id").fetch_all(tx.conn()).await?;
        tx.commit(0).await?;
        ids
    };
    for &tenant_id in &tenants {
        let mut tx = backend.tenancy.maintenance_in("audit", tenant_id).await?;
        crate::jobs::enqueue(tx.conn(), Lane::Organization(tenant_id), &PruneOrganization { tenant_id }).await?;
        tx.commit(1).await?;
    }
    Ok(tenants.len())
}

/// Removes one organization's audit records older than its retention period from both logs.
#[derive(Serialize, Deserialize)]
pub struct PruneOrganization {
    pub tenant_id: Uuid,
}

impl Job for PruneOrganization {
    const KIND: &'static str = "audit.prune_organization";

    async fn run(self, job: &RunningJob) -> Result<()> {
        prune_organization(&job.backend, self.tenant_id).await.map(|_| ())
    }
}
crate::register_job!(PruneOrganization);

/// What a prune removed from each log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub organization: i64,
    pub data: i64,
}

pub async fn prune_organization(backend: &Backend, tenant_id: Uuid) -> Result<Pruned> {
    let tenancy = &backend.tenancy;
    let mut pruned = Pruned::default();
    let mut control = tenancy.system_write(tenant_id, crate::tenancy::SystemActor::Job(PruneOrganization::KIND.into())).await?;
    let days: Option<i32> =
        sqlx::query_scalar("SELECT audit_retention_days FROM tenants WHERE id = $1").bind(tenant_id).fetch_optional(control.conn()).await?;
    let Some(days) = days else { return Ok(pruned) };
    pruned.organization = sqlx::query_scalar("SELECT audit_prune($1)").bind(days).fetch_one(control.conn()).await?;
    if pruned.organization > 0 {
        control.commit(pruned_entry(tenant_id, days, pruned.organization)).await?;
    }
    // Its data may live elsewhere (another database, another region): a second transaction.
    if let Some(mut data) = tenancy.data_job(PruneOrganization::KIND, tenant_id).await? {
        pruned.data = sqlx::query_scalar("SELECT audit_prune($1)").bind(days).fetch_one(data.conn()).await?;
        if pruned.data > 0 {
            data.record(pruned_entry(tenant_id, days, pruned.data)).await?;
            data.commit().await?;
        }
    }
    Ok(pruned)
}

fn pruned_entry(tenant_id: Uuid, days: i32, removed: i64) -> AuditEntry {
    let changes = serde_json::json!({ "removed": { "old": removed }, "retention_days": { "new": days } });
    AuditEntry::new("audit_log.pruned", "tenant", tenant_id, changes)
}
