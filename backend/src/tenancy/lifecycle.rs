//! Deleting an organization: an Owner schedules it, the data stays (read-only) for the
//! retention period in case they change their mind, then a scheduled job removes the data in
//! whichever model and region it lives and leaves an audited tombstone in the control plane.

use super::placement::Placement;
use super::provision::{drop_storage, Fence};
use super::{SystemActor, Tenancy, TenantStatus};
use crate::audit::AuditEntry;
use crate::error::Result;
use crate::members::rfc3339;
use crate::Org;
use tessera_domain::input::FieldError;
use tessera_domain::placement::PlacementInfo;
use tessera_domain::{AppError, Permission};
use time::OffsetDateTime;
use uuid::Uuid;

/// Where the tenant's data lives and its lifecycle state, for its admins.
pub async fn placement_info(org: &Org) -> Result<PlacementInfo> {
    let mut tx = org.control_read(Permission::ViewSettings).await?;
    let (status, version, delete_after): (String, i64, Option<OffsetDateTime>) = sqlx::query_as(
        "SELECT t.status, CASE WHEN t.model = 'pooled' THEN COALESCE(p.version, 0) ELSE t.schema_version END, t.delete_after
           FROM tenants t LEFT JOIN pooled_schemas p ON p.region = t.region WHERE t.id = $1",
    )
    .bind(org.tenant.id)
    .fetch_one(tx.conn())
    .await?;
    Ok(PlacementInfo {
        region: org.tenant.placement.region.clone(),
        model: org.tenant.placement.model,
        schema_version: version,
        status,
        delete_after: delete_after.map(rfc3339),
    })
}

/// Schedules the organization for deletion after `retention`. The Owner confirms by typing
/// its URL name, the usual guard against deleting the wrong one.
pub async fn schedule_deletion(org: &Org, confirm: &str, retention: time::Duration) -> Result<OffsetDateTime> {
    org.require(Permission::DeleteOrganization)?;
    if confirm.trim().to_lowercase() != org.tenant.slug {
        return Err(
            AppError::Invalid(FieldError::new("confirm", format!("Type the organization's URL name, {}, to confirm.", org.tenant.slug))).into()
        );
    }
    // Allowed while read-only for an unpaid subscription: leaving must not need paying first.
    let mut tx = org.billing_write(Permission::DeleteOrganization).await?;
    let delete_after = OffsetDateTime::now_utc() + retention;
    if !set_status(tx.conn(), org.tenant.id, "active", "deleting", Some(delete_after)).await? {
        return Err(AppError::Conflict(FieldError::new("confirm", "This organization can't be deleted right now. Reload and try again.")).into());
    }
    // Nothing more is charged for an organization on its way out.
    tx.enqueue(&crate::billing::account::EndSubscription { tenant_id: org.tenant.id }).await?;
    tx.commit(AuditEntry::new(
        "tenant.deletion_scheduled",
        "tenant",
        org.tenant.id,
        serde_json::json!({ "status": { "old": "active", "new": "deleting" }, "delete_after": { "new": rfc3339(delete_after) } }),
    ))
    .await?;
    Ok(delete_after)
}

/// Takes back a scheduled deletion before the purge runs.
pub async fn cancel_deletion(org: &Org) -> Result<()> {
    org.require(Permission::DeleteOrganization)?;
    if org.tenant.status != TenantStatus::Deleting {
        return Err(AppError::Conflict(FieldError::new("organization", "This organization isn't scheduled for deletion.")).into());
    }
    let mut write = org.control_write_while_deleting(Permission::DeleteOrganization).await?;
    if !set_status(write.conn(), org.tenant.id, "deleting", "active", None).await? {
        return Err(AppError::Conflict(FieldError::new("organization", "It's too late to cancel: the deletion has already run.")).into());
    }
    write
        .commit(AuditEntry::new(
            "tenant.deletion_cancelled",
            "tenant",
            org.tenant.id,
            serde_json::json!({ "status": { "old": "deleting", "new": "active" } }),
        ))
        .await
}

/// Purges every tenant whose retention period is over; returns their slugs. In two steps, so
/// no transaction stays open while a database is dropped: first the tenant is claimed
/// (`purging`: no longer enterable, no longer cancellable) with `FOR UPDATE SKIP LOCKED`, so
/// several servers can run this at once; then its data is removed (idempotently) and the
/// tombstone and audit record are written. A claim older than ten minutes is retried, so a
/// purge that died half-way is finished by the next run.
pub async fn purge_due(tenancy: &Tenancy) -> Result<Vec<String>> {
    let mut purged = Vec::new();
    let mut failed: Vec<Uuid> = Vec::new();
    loop {
        let Some((id, slug, placement)) = claim_next(tenancy, &failed).await? else {
            return Ok(purged);
        };
        if let Err(e) = drop_storage(tenancy.topology(), id, &placement, Fence::KeepSealed).await {
            tracing::error!(tenant = %slug, error = %e, "purging a deleted tenant's data failed; will retry");
            failed.push(id);
            continue;
        }
        let mut tx = tenancy.system_write(id, SystemActor::Job("scheduled-purge".into())).await?;
        // Another server may have finished it first: then there is nothing to record.
        if set_status(tx.conn(), id, "purging", "deleted", None).await? {
            sqlx::query("DELETE FROM memberships WHERE tenant_id = $1").bind(id).execute(tx.conn()).await?;
            let entry = AuditEntry::new(
                "tenant.purged",
                "tenant",
                id,
                serde_json::json!({ "status": { "old": "deleting", "new": "deleted" }, "removed": placement.describe() }),
            );
            tx.commit(entry).await?;
            tracing::info!(tenant = %slug, placement = %placement.describe(), "purged a deleted tenant");
            purged.push(slug);
        }
    }
}

/// A tenant due for purging, as `claim_next` reads it.
#[derive(sqlx::FromRow)]
struct DueRow {
    id: Uuid,
    slug: String,
    model: String,
    region: String,
    database: Option<String>,
    schema_name: String,
    status: String,
}

async fn claim_next(tenancy: &Tenancy, skip: &[Uuid]) -> Result<Option<(Uuid, String, Placement)>> {
    let mut tx = crate::db::open(tenancy.control_pool(), false).await?;
    let due: Option<DueRow> = sqlx::query_as(
        "SELECT id, slug, model, region, database, schema_name, status FROM tenants
          WHERE ((status = 'deleting' AND delete_after <= now())
                 OR (status = 'purging' AND purge_claimed_at < now() - interval '10 minutes'))
            AND NOT (id = ANY($1))
          ORDER BY delete_after LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .bind(skip)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(due) = due else {
        return Ok(None);
    };
    if !set_status(&mut tx, due.id, &due.status, "purging", None).await? {
        // Not due after all (the function keeps the same rule): nothing to purge now.
        return Ok(None);
    }
    tx.commit().await?;
    Ok(Some((due.id, due.slug, Placement::from_row(&due.model, due.region, due.database, due.schema_name)?)))
}

/// Moves a tenant along its lifecycle (`tenant_set_status`, a definer function: the app role
/// can't write `tenants.status` itself). False when it wasn't in `from` any more.
async fn set_status(conn: &mut sqlx::PgConnection, id: Uuid, from: &str, to: &str, delete_after: Option<OffsetDateTime>) -> Result<bool> {
    Ok(sqlx::query_scalar("SELECT tenant_set_status($1, $2, $3, $4)").bind(id).bind(from).bind(to).bind(delete_after).fetch_one(conn).await?)
}
