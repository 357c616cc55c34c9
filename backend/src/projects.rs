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

#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: Uuid,
    name: String,
    description: String,
    created_by: Uuid,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

const PROJECT_COLUMNS: &str = "id, name, description, created_by, created_at, updated_at";
/// `SELECT {PROJECT_COLUMNS} FROM projects`.
const SELECT_PROJECT: &str = "SELECT id, name, description, created_by, created_at, updated_at FROM projects";

/// Tenant data keeps only user ids (users live in the control plane, maybe another cluster);
/// their names are looked up in one batch.
async fn summaries(tenancy: &Tenancy, ctx: &Ctx, rows: Vec<ProjectRow>) -> Result<Vec<ProjectSummary>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.created_by).collect();
    let names = tenancy.display_names(&ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| ProjectSummary {
            id: row.id,
            name: row.name,
            description: row.description,
            created_by: names.get(&row.created_by).cloned().unwrap_or_else(|| "a former member".into()),
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
            can_change: may_change(ctx, row.created_by),
        })
        .collect())
}

/// Members change and delete the projects they created; Admins and Owners any.
fn may_change(ctx: &Ctx, created_by: Uuid) -> bool {
    ctx.require(Permission::CreateProject).is_ok() && (created_by == ctx.user_id || ctx.require(Permission::ManageProjects).is_ok())
}

pub async fn list(tenancy: &Tenancy, ctx: &Ctx) -> Result<Vec<ProjectSummary>> {
    let mut tx = tenancy.read(ctx, Permission::ViewProjects).await?;
    // No tenant filter here on purpose: row-level security supplies it.
    let rows: Vec<ProjectRow> = sqlx::query_as(&format!("{SELECT_PROJECT} ORDER BY created_at DESC, id LIMIT 500")).fetch_all(tx.conn()).await?;
    drop(tx);
    summaries(tenancy, ctx, rows).await
}

pub async fn get(tenancy: &Tenancy, ctx: &Ctx, id: Uuid) -> Result<ProjectSummary> {
    let mut tx = tenancy.read(ctx, Permission::ViewProjects).await?;
    let row: Option<ProjectRow> = sqlx::query_as(&format!("{SELECT_PROJECT} WHERE id = $1")).bind(id).fetch_optional(tx.conn()).await?;
    drop(tx);
    let row = row.ok_or_else(no_such_project)?;
    Ok(summaries(tenancy, ctx, vec![row]).await?.remove(0))
}

/// Creates a project and returns its id.
pub async fn create(tenancy: &Tenancy, ctx: &Ctx, name: &str, description: &str) -> Result<ProjectSummary> {
    // Checked before validating, so a role that may not create learns that first.
    ctx.require(Permission::CreateProject)?;
    let name = ProjectName::parse(name)?;
    let description = ProjectDescription::parse(description)?;
    let mut tx = tenancy.write(ctx, Permission::CreateProject).await?;
    let id = Uuid::new_v4();
    let created: std::result::Result<ProjectRow, _> = sqlx::query_as(&format!(
        "INSERT INTO projects (id, tenant_id, name, description, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING {PROJECT_COLUMNS}"
    ))
    .bind(id)
    .bind(ctx.tenant.id)
    .bind(name.as_str())
    .bind(description.as_str())
    .bind(ctx.user_id)
    .fetch_one(tx.conn())
    .await;
    let created = match created {
        Ok(row) => row,
        Err(e) if unique_violation(&e).is_some() => return Err(name_taken(name.as_str()).into()),
        Err(e) => return Err(e.into()),
    };
    tx.commit(AuditEntry::new(
        "project.created",
        "project",
        id,
        json!({ "name": { "new": name.as_str() }, "description": { "new": description.as_str() } }),
    ))
    .await?;
    // What was written, without reading again (a key may write projects and not read them).
    Ok(summaries(tenancy, ctx, vec![created]).await?.remove(0))
}

/// What a change to a project sets; a field left `None` keeps its value.
#[derive(Default)]
pub struct ProjectChange<'a> {
    pub name: Option<&'a str>,
    pub description: Option<&'a str>,
    /// The `updated_at` of the version the change was made from, if known: when someone changed
    /// the project since, the change is refused rather than undoing theirs.
    pub made_from: Option<&'a str>,
}

/// Changes a project's name and description. Members change the projects they created;
/// Admins and Owners any. The audit entry has the fields that changed, before and after.
/// Returns the project as it is now.
pub async fn update(tenancy: &Tenancy, ctx: &Ctx, id: Uuid, change: ProjectChange<'_>) -> Result<ProjectSummary> {
    ctx.require(Permission::CreateProject)?;
    let new_name = change.name.map(ProjectName::parse).transpose()?;
    let new_description = change.description.map(ProjectDescription::parse).transpose()?;
    let mut tx = tenancy.write(ctx, Permission::CreateProject).await?;
    let before = lock_for_change(tx.conn(), ctx, id).await?;
    if change.made_from.is_some_and(|seen| seen != rfc3339(before.updated_at)) {
        return Err(AppError::Conflict(FieldError::new(
            "updated_at",
            "Someone changed this project since you opened it. Reload to see their changes, then make yours again.",
        ))
        .into());
    }
    // Unchanged fields as they are now, under the lock (not as a caller last saw them).
    let name = new_name.as_ref().map_or(before.name.as_str(), |n| n.as_str());
    let description = new_description.as_ref().map_or(before.description.as_str(), |d| d.as_str());
    if before.name == name && before.description == description {
        // Saved as it was: nothing to write or record.
        drop(tx);
        return Ok(summaries(tenancy, ctx, vec![before]).await?.remove(0));
    }
    let updated: std::result::Result<ProjectRow, _> =
        sqlx::query_as(&format!("UPDATE projects SET name = $2, description = $3, updated_at = now() WHERE id = $1 RETURNING {PROJECT_COLUMNS}"))
            .bind(id)
            .bind(name)
            .bind(description)
            .fetch_one(tx.conn())
            .await;
    let updated = match updated {
        Ok(row) => row,
        Err(e) if unique_violation(&e).is_some() => return Err(name_taken(name).into()),
        Err(e) => return Err(e.into()),
    };
    let mut changes = serde_json::Map::new();
    if before.name != name {
        changes.insert("name".into(), json!({ "old": before.name, "new": name }));
    }
    if before.description != description {
        changes.insert("description".into(), json!({ "old": before.description, "new": description }));
    }
    tx.commit(AuditEntry::new("project.updated", "project", id, serde_json::Value::Object(changes))).await?;
    Ok(summaries(tenancy, ctx, vec![updated]).await?.remove(0))
}

/// Deletes a project. Members delete the projects they created; Admins and Owners any. The
/// audit entry keeps what it was.
pub async fn delete(tenancy: &Tenancy, ctx: &Ctx, id: Uuid) -> Result<()> {
    ctx.require(Permission::CreateProject)?;
    let mut tx = tenancy.write(ctx, Permission::CreateProject).await?;
    let before = lock_for_change(tx.conn(), ctx, id).await?;
    sqlx::query("DELETE FROM projects WHERE id = $1").bind(id).execute(tx.conn()).await?;
    tx.commit(AuditEntry::new(
        "project.deleted",
        "project",
        id,
        json!({ "name": { "old": before.name }, "description": { "old": before.description } }),
    ))
    .await
}

/// Locks the project against concurrent changes (a second editor waits, then sees the first
/// one's result, or that it is gone) and checks the caller may change it.
async fn lock_for_change(conn: &mut sqlx::PgConnection, ctx: &Ctx, id: Uuid) -> Result<ProjectRow> {
    let before: Option<ProjectRow> = sqlx::query_as(&format!("{SELECT_PROJECT} WHERE id = $1 FOR UPDATE")).bind(id).fetch_optional(conn).await?;
    let before = before.ok_or_else(no_such_project)?;
    if !may_change(ctx, before.created_by) {
        // For an API key, say why in its terms (its scope, or its creator's role now).
        if ctx.api_key.is_some() {
            ctx.require(Permission::ManageProjects)?;
        }
        return Err(AppError::Forbidden("You can change and delete the projects you created; an admin can change this one.".into()).into());
    }
    Ok(before)
}

/// A project that isn't there, or isn't this organization's: from outside, the same answer.
pub fn no_such_project() -> AppError {
    AppError::NotFound("That project doesn't exist in this organization.".into())
}

fn name_taken(name: &str) -> AppError {
    AppError::Conflict(FieldError::new("name", format!("A project called \"{name}\" already exists here. Choose another name.")))
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
