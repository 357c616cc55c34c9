//! Audit records: written only from inside a door transaction (see `tenancy`), chained per
//! organization by the database (`chain`), read back as one timeline (`timeline`), exported
//! (`export`) and kept for the organization's retention period (`retention`).

pub mod chain;
pub mod export;
pub mod retention;
pub mod timeline;

use crate::ctx::Ctx;
use crate::error::Result;
use crate::tenancy::Org;
use sqlx::PgConnection;
use tessera_domain::audit::{AuditIntegrity, AuditLogName};
use tessera_domain::Permission;

/// One auditable change. `changes` maps each changed field to `{ "old": .., "new": .. }`.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub action: &'static str,
    pub target_type: &'static str,
    pub target_id: String,
    pub changes: serde_json::Value,
}

impl AuditEntry {
    pub fn new(action: &'static str, target_type: &'static str, target_id: impl ToString, changes: serde_json::Value) -> Self {
        Self { action, target_type, target_id: target_id.to_string(), changes }
    }
}

/// `{field: {old, new}}` for each of `(field, old, new)` whose value changed: an update's record.
pub fn changed(fields: &[(&str, &str, &str)]) -> serde_json::Value {
    fields
        .iter()
        .filter(|(_, old, new)| old != new)
        .map(|(field, old, new)| (field.to_string(), serde_json::json!({ "old": old, "new": new })))
        .collect()
}

/// `{field: {new}}`: what a creation set.
pub fn created(fields: &[(&str, &str)]) -> serde_json::Value {
    fields.iter().map(|(field, new)| (field.to_string(), serde_json::json!({ "new": new }))).collect()
}

/// `{field: {old}}`: what a deletion took away.
pub fn removed(fields: &[(&str, &str)]) -> serde_json::Value {
    fields.iter().map(|(field, old)| (field.to_string(), serde_json::json!({ "old": old }))).collect()
}

pub(crate) async fn insert(conn: &mut PgConnection, ctx: &Ctx, entry: &AuditEntry) -> Result<()> {
    let key = ctx.api_key.as_ref().map(|k| k.id);
    insert_as(conn, ctx.tenant.id, Some(ctx.user_id), key, &ctx.meta, entry).await
}

/// An audit record for an action taken before there is a [`Ctx`] (a sign-in through the
/// organization's IdP, say), by `actor` if known.
pub(crate) async fn insert_as(
    conn: &mut PgConnection,
    tenant_id: uuid::Uuid,
    actor: Option<uuid::Uuid>,
    api_key: Option<uuid::Uuid>,
    meta: &crate::RequestMeta,
    entry: &AuditEntry,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, actor_id, action, target_type, target_id, changes, ip, user_agent, request_id, actor_api_key_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7::inet, $8, $9, $10)",
    )
    .bind(tenant_id)
    .bind(actor)
    .bind(entry.action)
    .bind(entry.target_type)
    .bind(&entry.target_id)
    .bind(&entry.changes)
    .bind(meta.ip.map(|ip| ip.to_string()))
    .bind(meta.user_agent.as_deref())
    .bind(meta.request_id.as_deref())
    .bind(api_key)
    .execute(conn)
    .await?;
    Ok(())
}

/// An audit record for an operator or scheduled action (a move, a purge): no acting user.
pub(crate) async fn insert_system(conn: &mut PgConnection, tenant_id: uuid::Uuid, entry: &AuditEntry, request_id: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, actor_id, action, target_type, target_id, changes, request_id)
         VALUES ($1, NULL, $2, $3, $4, $5, $6)",
    )
    .bind(tenant_id)
    .bind(entry.action)
    .bind(entry.target_type)
    .bind(&entry.target_id)
    .bind(&entry.changes)
    .bind(request_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// How long a check's answer is reused: a full check rehashes both logs in one snapshot each,
/// so a page of Admins clicking "Check integrity" shouldn't start one per click.
const CHECK_REUSED_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// Recent checks by organization (this server's), with when they ran.
static RECENT_CHECKS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<uuid::Uuid, (std::time::Instant, AuditIntegrity)>>> =
    std::sync::LazyLock::new(Default::default);

/// Checks both of the organization's hash chains (see [`chain`]) for the viewer's "Integrity"
/// line; an answer less than a minute old is given again (its `checked_at` says when).
pub async fn integrity(org: &Org) -> Result<AuditIntegrity> {
    org.require(Permission::ViewAudit)?;
    let recent = RECENT_CHECKS.lock().ok().and_then(|checks| checks.get(&org.tenant.id).filter(|(at, _)| at.elapsed() < CHECK_REUSED_FOR).cloned());
    if let Some((_, answer)) = recent {
        return Ok(answer);
    }
    let (mut control, mut data) = org.read_snapshots(Permission::ViewAudit).await?;
    let (control, data) = tokio::try_join!(
        chain::check(control.conn(), org.tenant.id, AuditLogName::Organization),
        chain::check(data.conn(), org.tenant.id, AuditLogName::Data)
    )?;
    let answer = combine(control, data);
    if let Ok(mut checks) = RECENT_CHECKS.lock() {
        checks.retain(|_, (at, _)| at.elapsed() < CHECK_REUSED_FOR);
        checks.insert(org.tenant.id, (std::time::Instant::now(), answer.clone()));
    }
    Ok(answer)
}

/// The two logs' checks as one answer.
pub(crate) fn combine(control: chain::LogCheck, data: chain::LogCheck) -> AuditIntegrity {
    let pruned_at = control.pruned_at.into_iter().chain(data.pruned_at).max().map(crate::members::rfc3339);
    AuditIntegrity {
        records: control.records + data.records,
        breaks: control.breaks.into_iter().chain(data.breaks).collect(),
        pruned_at,
        checked_at: crate::members::rfc3339(time::OffsetDateTime::now_utc()),
    }
}

/// An operator's check of the hash chains (`tessera-server audit verify [--org SLUG]`): one
/// organization by its URL name, or every organization that still keeps data, by URL name.
/// Suspended organizations are left out: the door doesn't open them, even to read.
/// Each organization's answer is its own: one that couldn't be checked says why.
pub async fn verify(tenancy: &crate::tenancy::Tenancy, slug: Option<&str>) -> Result<Vec<(String, Result<AuditIntegrity>)>> {
    let organizations: Vec<(uuid::Uuid, String)> = {
        let mut tx = tenancy.maintenance("audit").await?;
        let rows = sqlx::query_as(
            "SELECT id, slug FROM tenants WHERE status IN ('active', 'moving', 'deleting') AND ($1::text IS NULL OR slug = $1) ORDER BY slug",
        )
        .bind(slug)
        .fetch_all(tx.conn())
        .await?;
        tx.commit(0).await?;
        rows
    };
    if let (Some(slug), true) = (slug, organizations.is_empty()) {
        return Err(tessera_domain::AppError::NotFound(format!("There is no organization with the URL name {slug:?}.")).into());
    }
    let mut checked = Vec::new();
    for (id, slug) in organizations {
        // One organization that can't be read (its database down) doesn't stop the others.
        match tenancy.audit_chains(id).await {
            Ok(Some(integrity)) => checked.push((slug, Ok(integrity))),
            Ok(None) => {}
            Err(e) => checked.push((slug, Err(e))),
        }
    }
    Ok(checked)
}
