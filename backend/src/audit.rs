//! Audit records, written only from inside a tenant write transaction (see `tenancy`).

use crate::ctx::Ctx;
use crate::error::Result;
use sqlx::PgConnection;

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
