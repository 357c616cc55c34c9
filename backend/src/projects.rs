//! Projects: the demo tenant-scoped resource, and the pattern to copy for new ones.

use crate::audit::AuditEntry;
use crate::ctx::Ctx;
use crate::error::{unique_violation, Result};
use crate::members::rfc3339;
use crate::tenancy::Tenancy;
use serde_json::json;
use tessera_domain::dto::ProjectSummary;
use tessera_domain::input::{FieldError, ProjectDescription, ProjectName};
use tessera_domain::{AppError, Permission};
use time::OffsetDateTime;
use uuid::Uuid;

type ProjectRow = (Uuid, String, String, Uuid, OffsetDateTime);

const SELECT_PROJECT: &str = "SELECT id, name, description, created_by, created_at FROM projects";

/// Tenant data keeps only user ids (users live in the control plane, maybe another cluster);
/// their names are looked up in one batch.
async fn summaries(tenancy: &Tenancy, rows: Vec<ProjectRow>) -> Result<Vec<ProjectSummary>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.3).collect();
    let names = tenancy.display_names(&ids).await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, description, created_by, created_at)| ProjectSummary {
            id,
            name,
            description,
            created_by: names.get(&created_by).cloned().unwrap_or_else(|| "a former member".into()),
            created_at: rfc3339(created_at),
        })
        .collect())
}

pub async fn list(tenancy: &Tenancy, ctx: &Ctx) -> Result<Vec<ProjectSummary>> {
    let mut tx = tenancy.read(ctx, Permission::ViewProjects).await?;
    // No tenant filter here on purpose: row-level security supplies it.
    let rows: Vec<ProjectRow> = sqlx::query_as(&format!("{SELECT_PROJECT} ORDER BY created_at DESC, id LIMIT 500")).fetch_all(tx.conn()).await?;
    drop(tx);
    summaries(tenancy, rows).await
}

pub async fn get(tenancy: &Tenancy, ctx: &Ctx, id: Uuid) -> Result<ProjectSummary> {
    let mut tx = tenancy.read(ctx, Permission::ViewProjects).await?;
    let row: Option<ProjectRow> = sqlx::query_as(&format!("{SELECT_PROJECT} WHERE id = $1")).bind(id).fetch_optional(tx.conn()).await?;
    drop(tx);
    let row = row.ok_or_else(|| AppError::NotFound("That project doesn't exist in this organization.".into()))?;
    Ok(summaries(tenancy, vec![row]).await?.remove(0))
}

/// Creates a project and returns its id.
pub async fn create(tenancy: &Tenancy, ctx: &Ctx, name: &str, description: &str) -> Result<Uuid> {
    // Checked before validating, so a role that may not create learns that first.
    ctx.require(Permission::CreateProject)?;
    let name = ProjectName::parse(name)?;
    let description = ProjectDescription::parse(description)?;
    let mut tx = tenancy.write(ctx, Permission::CreateProject).await?;
    let id = Uuid::new_v4();
    let created = sqlx::query("INSERT INTO projects (id, tenant_id, name, description, created_by) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(ctx.tenant.id)
        .bind(name.as_str())
        .bind(description.as_str())
        .bind(ctx.user_id)
        .execute(tx.conn())
        .await;
    match created {
        Ok(_) => {}
        Err(e) if unique_violation(&e).is_some() => {
            return Err(AppError::Conflict(FieldError::new(
                "name",
                format!("A project called \"{}\" already exists here. Choose another name.", name.as_str()),
            ))
            .into())
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit(AuditEntry::new(
        "project.created",
        "project",
        id,
        json!({ "name": { "new": name.as_str() }, "description": { "new": description.as_str() } }),
    ))
    .await?;
    Ok(id)
}

/// Counts for the dashboard.
pub async fn overview(tenancy: &Tenancy, ctx: &Ctx) -> Result<(i64, i64)> {
    let mut data = tenancy.read(ctx, Permission::ViewProjects).await?;
    let projects: i64 = sqlx::query_scalar("SELECT count(*) FROM projects").fetch_one(data.conn()).await?;
    drop(data);
    let mut control = tenancy.control_read(ctx, Permission::ViewMembers).await?;
    let members: i64 = sqlx::query_scalar("SELECT count(*) FROM memberships").fetch_one(control.conn()).await?;
    Ok((projects, members))
}
