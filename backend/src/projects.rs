//! Projects: the first tenant-scoped resource. Members create them and change or delete their
//! own; Admins and Owners any; deleting one takes its documents (see `documents.rs`). A project
//! open to the organization is seen by everyone in it; a restricted one only by the people
//! given access (see `access`), which row-level security enforces.

use crate::access::{self, Lock};
use crate::audit::{self, AuditEntry};
use crate::error::{Constraint, Result};
use crate::members::rfc3339;
use crate::tenancy::Change;
use crate::webhooks::events;
use crate::Org;
use serde_json::json;
use tessera_domain::access::{Target, Visibility};
use tessera_domain::dto::ProjectSummary;
use tessera_domain::input::{FieldError, ProjectDescription, ProjectName};
use tessera_domain::webhooks::EventType;
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
    visibility: String,
    /// The strongest grant the asker holds on it (`access::YOUR_GRANT`).
    your_grant: Option<String>,
}

impl ProjectRow {
    /// The project as webhook events describe it (`project.*` in the event catalogue).
    fn event_data(&self) -> serde_json::Value {
        events::project(self.id, &self.name, &self.description, self.created_by, self.created_at, self.updated_at)
    }
}

inventory::submit! {
    Constraint { name: "projects_name_unique", table: "projects", field: "name", message: "A project with this name already exists here. Choose another name." }
}

/// The columns of [`ProjectRow`], the project aliased `p`.
fn project_columns() -> String {
    format!("p.id, p.name, p.description, p.created_by, p.created_at, p.updated_at, p.visibility, {} AS your_grant", access::YOUR_GRANT)
}

fn select_project() -> String {
    format!("SELECT {} FROM projects p", project_columns())
}

/// Tenant data keeps only user ids (users live in the control plane, maybe another cluster);
/// their names are looked up in one batch.
async fn summaries(org: &Org, rows: Vec<ProjectRow>) -> Result<Vec<ProjectSummary>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.created_by).collect();
    let names = org.display_names(&ids).await?;
    rows.into_iter()
        .map(|row| {
            let standing = access::parse_standing(&row.visibility, row.created_by, row.your_grant.as_deref())?;
            Ok(ProjectSummary {
                id: row.id,
                name: row.name,
                description: row.description,
                created_by: names.get(&row.created_by).cloned().unwrap_or_else(|| "a former member".into()),
                created_at: rfc3339(row.created_at),
                updated_at: rfc3339(row.updated_at),
                can_change: org.can(Permission::WriteProjects, Target::Project(&standing)),
                can_write_documents: org.can(Permission::WriteDocuments, Target::Project(&standing)),
                visibility: standing.visibility,
                your_grant: standing.grant,
            })
        })
        .collect()
}

pub async fn list(org: &Org) -> Result<Vec<ProjectSummary>> {
    let mut tx = org.read(Permission::ViewProjects).await?;
    // No tenant filter here on purpose: row-level security supplies it.
    let rows: Vec<ProjectRow> =
        sqlx::query_as(&format!("{} ORDER BY p.created_at DESC, p.id LIMIT 500", select_project())).fetch_all(tx.conn()).await?;
    drop(tx);
    summaries(org, rows).await
}

pub async fn get(org: &Org, id: Uuid) -> Result<ProjectSummary> {
    let (mut tx, _) = org.project_read(id, Permission::ViewProjects).await?;
    let row: ProjectRow = sqlx::query_as(&format!("{} WHERE p.id = $1", select_project())).bind(id).fetch_one(tx.conn()).await?;
    drop(tx);
    one(org, row).await
}

/// A new project, parsed at the edge.
pub struct ProjectDraft {
    pub name: ProjectName,
    pub description: ProjectDescription,
    pub visibility: Visibility,
}

impl ProjectDraft {
    pub fn parse(name: &str, description: &str) -> Result<Self, FieldError> {
        Ok(Self { name: ProjectName::parse(name)?, description: ProjectDescription::parse(description)?, visibility: Visibility::Organization })
    }

    /// Who will see it (blank: the whole organization).
    pub fn visible_to(mut self, visibility: Option<&str>) -> Result<Self, FieldError> {
        if let Some(raw) = visibility.filter(|v| !v.trim().is_empty()) {
            self.visibility = raw.parse()?;
        }
        Ok(self)
    }
}

/// Creates a project; returns it as written.
pub async fn create(org: &Org, draft: ProjectDraft) -> Result<ProjectSummary> {
    org.require(Permission::WriteProjects)?;
    // The plan's project limit, restricted projects included, seen or not (counted just before;
    // two creations racing for the last place may both get it, which costs the operator one
    // project, not the customer a refusal).
    let limits = org.billing().entitlements;
    if limits.projects.is_some() {
        let used = org.tenancy().project_count(&org.tenant).await?;
        limits.room_for_project(u32::try_from(used).unwrap_or(u32::MAX)).map_err(|refusal| AppError::PaymentRequired(refusal.0))?;
    }
    let mut tx = org.write(Permission::WriteProjects).await?;
    let id = Uuid::new_v4();
    // Not read back by RETURNING: a restricted project is visible to a creator who doesn't see
    // every project only once their grant (which references it) is in.
    sqlx::query("INSERT INTO projects (id, name, description, created_by, visibility) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(draft.name.as_str())
        .bind(draft.description.as_str())
        .bind(org.user_id)
        .bind(draft.visibility.as_str())
        .execute(tx.conn())
        .await?;
    if draft.visibility == Visibility::Restricted && !org.sees_every_project() {
        access::creator_as_admin(&mut tx, org, id).await?;
    }
    let created: ProjectRow = sqlx::query_as(&format!("{} WHERE p.id = $1", select_project())).bind(id).fetch_one(tx.conn()).await?;
    let changes =
        audit::created(&[("name", draft.name.as_str()), ("description", draft.description.as_str()), ("visibility", draft.visibility.as_str())]);
    let data = json!({ "project": created.event_data() });
    events::emit(&mut tx, events::Event::new(EventType::ProjectCreated, id, data)).await?;
    tx.commit(AuditEntry::new("project.created", "project", id, changes)).await?;
    // What was written, without reading again (a key may write projects and not read them).
    one(org, created).await
}

/// What a change to a project sets (`None` keeps a field), parsed at the edge, and the
/// `updated_at` of the version it was made from, if known: when someone changed the project
/// since, the change is refused rather than undoing theirs.
pub struct ProjectChange {
    pub name: Option<ProjectName>,
    pub description: Option<ProjectDescription>,
    /// The `updated_at` it was made from, if the client said.
    pub seen_version: Option<OffsetDateTime>,
}

impl ProjectChange {
    pub fn parse(name: Option<&str>, description: Option<&str>, updated_at: Option<&str>) -> Result<Self, FieldError> {
        Ok(Self {
            name: name.map(ProjectName::parse).transpose()?,
            description: description.map(ProjectDescription::parse).transpose()?,
            seen_version: crate::edits::seen_version(updated_at)?,
        })
    }
}

/// Changes a project's name and description. Members change the projects they created;
/// Admins and Owners any. The audit entry has the fields that changed, before and after.
/// Returns the project as it is now.
pub async fn update(org: &Org, id: Uuid, change: ProjectChange) -> Result<ProjectSummary> {
    let (mut tx, _) = org.project_write(id, Permission::WriteProjects, Lock::Update, Change::Any).await?;
    let before = read(tx.conn(), id).await?;
    crate::edits::ensure_current(change.seen_version, before.updated_at, "project")?;
    // Unchanged fields as they are now, under the lock (not as a caller last saw them).
    let name = change.name.as_ref().map_or(before.name.as_str(), ProjectName::as_str);
    let description = change.description.as_ref().map_or(before.description.as_str(), ProjectDescription::as_str);
    let changes = audit::changed(&[("name", &before.name, name), ("description", &before.description, description)]);
    if changes.as_object().is_some_and(|c| c.is_empty()) {
        // Saved as it was: nothing to write or record.
        drop(tx);
        return one(org, before).await;
    }
    let updated: ProjectRow = sqlx::query_as(&format!(
        "UPDATE projects AS p SET name = $2, description = $3, updated_at = clock_timestamp() WHERE p.id = $1 RETURNING {}",
        project_columns()
    ))
    .bind(id)
    .bind(name)
    .bind(description)
    .fetch_one(tx.conn())
    .await?;
    // The old value of each field that changed, as the audit record has it.
    let previous: serde_json::Map<String, serde_json::Value> =
        changes.as_object().into_iter().flatten().map(|(field, change)| (field.clone(), change["old"].clone())).collect();
    let data = json!({ "project": updated.event_data(), "previous": previous });
    events::emit(&mut tx, events::Event::new(EventType::ProjectUpdated, id, data)).await?;
    tx.commit(AuditEntry::new("project.updated", "project", id, changes)).await?;
    one(org, updated).await
}

/// Deletes a project and its documents. Members delete the projects they created (and only if
/// they could delete every document in it); Admins and Owners any. The audit entries keep what
/// each was.
pub async fn delete(org: &Org, id: Uuid) -> Result<()> {
    let (mut tx, standing) = org.project_write(id, Permission::WriteProjects, Lock::Update, Change::Removal).await?;
    let before = read(tx.conn(), id).await?;
    // Its documents go with it, checked and recorded one by one (the database refuses to drop
    // them on its own). Its grants go by the foreign key's cascade.
    let documents = crate::documents::delete_with_project(&mut tx, org, id, &standing).await?;
    sqlx::query("DELETE FROM projects WHERE id = $1").bind(id).execute(tx.conn()).await?;
    let data = json!({ "project": before.event_data() });
    events::emit(&mut tx, events::Event::new(EventType::ProjectDeleted, id, data)).await?;
    let mut changes = audit::removed(&[("name", &before.name), ("description", &before.description)]);
    if documents > 0 {
        changes["documents"] = serde_json::json!({ "old": documents });
    }
    tx.commit(AuditEntry::new("project.deleted", "project", id, changes)).await
}

/// The project as it is, in a transaction that the door already locked it in (a second editor
/// waits, then sees the first one's result, or that it is gone).
async fn read(conn: &mut sqlx::PgConnection, id: Uuid) -> Result<ProjectRow> {
    let row: Option<ProjectRow> = sqlx::query_as(&format!("{} WHERE p.id = $1", select_project())).bind(id).fetch_optional(conn).await?;
    Ok(row.ok_or_else(no_such_project)?)
}

async fn one(org: &Org, row: ProjectRow) -> Result<ProjectSummary> {
    Ok(summaries(org, vec![row]).await?.remove(0))
}

/// A project that isn't there, or isn't this organization's: from outside, the same answer.
pub fn no_such_project() -> AppError {
    AppError::NotFound("That project doesn't exist in this organization.".into())
}

/// Counts for the dashboard.
pub async fn overview(org: &Org) -> Result<(i64, i64)> {
    let mut data = org.read(Permission::ViewProjects).await?;
    let projects: i64 = sqlx::query_scalar("SELECT count(*) FROM projects").fetch_one(data.conn()).await?;
    drop(data);
    let mut control = org.control_read(Permission::ViewMembers).await?;
    let members: i64 = sqlx::query_scalar("SELECT count(*) FROM memberships").fetch_one(control.conn()).await?;
    Ok((projects, members))
}
