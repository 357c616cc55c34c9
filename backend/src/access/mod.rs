//! Who may reach which project: restricted projects, grants to members and groups, and the
//! standing the door reads before it asks [`tessera_domain::access::can`].
//!
//! Row-level security (migration `project_access`) shows a restricted project only to people
//! with a grant on it and to those the door says see everything, so these services never
//! filter by hand: what a query can't see isn't there.

pub mod groups;

use crate::audit::AuditEntry;
use crate::error::{Constraint, Error, Result};
use crate::members::rfc3339;
use crate::tenancy::Change;
use crate::Org;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use tessera_domain::access::{ProjectRole, ProjectStanding, Target, Visibility};
use tessera_domain::dto::{Grantee, ProjectAccess, ProjectGrant};
use tessera_domain::input::FieldError;
use tessera_domain::{AppError, Permission};
use time::OffsetDateTime;
use uuid::Uuid;

/// How the door holds the project it judged, until the transaction ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    None,
    /// Writing inside it (a document): it can't be deleted meanwhile.
    Share,
    /// Changing the project itself, or who has access: one change at a time.
    Update,
}

/// The strongest grant the asker holds on project `p`, their own or a group's, as an SQL
/// expression: `app.user_id` (set by the door) names the member, or an API key's creator.
pub(crate) const YOUR_GRANT: &str = "(SELECT g.role FROM project_grants g
      WHERE g.project_id = p.id
        AND (g.user_id = app_user_id() OR g.group_id IN (SELECT m.group_id FROM group_members m WHERE m.user_id = app_user_id()))
      ORDER BY array_position(ARRAY['admin', 'editor', 'viewer'], g.role) LIMIT 1)";

inventory::submit! {
    Constraint { name: "project_grants_project_fk", table: "project_grants", field: "project", message: "That project doesn't exist in this organization (any more)." }
}
inventory::submit! {
    Constraint { name: "project_grants_group_fk", table: "project_grants", field: "grantee", message: "That group doesn't exist (any more)." }
}

/// The project as the asker stands towards it, read in the door's transaction; not found when
/// row-level security hides it from them.
pub(crate) async fn standing(conn: &mut sqlx::PgConnection, project: Uuid, lock: Lock) -> Result<ProjectStanding> {
    let lock = match lock {
        Lock::None => "",
        Lock::Share => "FOR KEY SHARE OF p",
        Lock::Update => "FOR UPDATE OF p",
    };
    let row: Option<(String, Uuid, Option<String>)> =
        sqlx::query_as(&format!("SELECT p.visibility, p.created_by, {YOUR_GRANT} FROM projects p WHERE p.id = $1 {lock}"))
            .bind(project)
            .fetch_optional(conn)
            .await?;
    let (visibility, created_by, grant) = row.ok_or_else(crate::projects::no_such_project)?;
    parse_standing(&visibility, created_by, grant.as_deref())
}

/// A standing from its stored words.
pub(crate) fn parse_standing(visibility: &str, created_by: Uuid, grant: Option<&str>) -> Result<ProjectStanding> {
    let stored = |e: FieldError| Error::Internal(format!("stored project access: {e}"));
    Ok(ProjectStanding { visibility: visibility.parse().map_err(stored)?, created_by, grant: grant.map(str::parse).transpose().map_err(stored)? })
}

/// Whom a grant is for, as a form or the API names them: `user:<id>` or `group:<id>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GranteeRef {
    Member(Uuid),
    Group(Uuid),
}

impl GranteeRef {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let wrong = || FieldError::new("grantee", "Choose a member or a group to give access to.");
        let (kind, id) = raw.trim().split_once(':').ok_or_else(wrong)?;
        let id = Uuid::parse_str(id).map_err(|_| wrong())?;
        match kind {
            "user" => Ok(GranteeRef::Member(id)),
            "group" => Ok(GranteeRef::Group(id)),
            _ => Err(wrong()),
        }
    }

    fn key(self) -> String {
        match self {
            GranteeRef::Member(id) => format!("user:{id}"),
            GranteeRef::Group(id) => format!("group:{id}"),
        }
    }
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    id: Uuid,
    user_id: Option<Uuid>,
    group_id: Option<Uuid>,
    role: String,
    granted_by: Uuid,
    granted_at: OffsetDateTime,
}

/// Who has access to a project: anyone who can see it may look.
pub async fn project_access(org: &Org, project: Uuid) -> Result<ProjectAccess> {
    let (mut tx, standing) = org.project_read(project, Permission::ViewProjects).await?;
    let rows: Vec<GrantRow> = sqlx::query_as(
        "SELECT id, user_id, group_id, role, granted_by, granted_at FROM project_grants WHERE project_id = $1 ORDER BY granted_at, id",
    )
    .bind(project)
    .fetch_all(tx.conn())
    .await?;
    let group_ids: Vec<Uuid> = rows.iter().filter_map(|r| r.group_id).collect();
    let groups: HashMap<Uuid, (String, i64)> = sqlx::query_as::<_, (Uuid, String, i64)>(
        "SELECT g.id, g.name, (SELECT count(*) FROM group_members m WHERE m.group_id = g.id) FROM groups g WHERE g.id = ANY($1)",
    )
    .bind(&group_ids)
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .map(|(id, name, members)| (id, (name, members)))
    .collect();
    drop(tx);
    let ids: Vec<Uuid> = rows.iter().flat_map(|r| r.user_id.into_iter().chain([r.granted_by])).collect();
    let people = org.tenancy().people(&ids).await?;
    let mut grants = Vec::with_capacity(rows.len());
    for row in rows {
        let grantee = match (row.user_id, row.group_id) {
            (Some(user_id), _) => {
                let (name, email) = people.get(&user_id).cloned().unwrap_or_else(|| ("a former member".into(), String::new()));
                Grantee::Member { user_id, name, email }
            }
            (None, Some(group_id)) => {
                let (name, members) = groups.get(&group_id).cloned().unwrap_or_else(|| ("a deleted group".into(), 0));
                Grantee::Group { group_id, name, members }
            }
            (None, None) => return Err(Error::Internal("a grant without a grantee".into())),
        };
        grants.push(ProjectGrant {
            id: row.id,
            grantee,
            role: row.role.parse().map_err(|e: FieldError| Error::Internal(format!("stored grant role: {e}")))?,
            granted_by: people.get(&row.granted_by).map(|(name, _)| name.clone()),
            granted_at: rfc3339(row.granted_at),
        });
    }
    // People first, then groups, each by name.
    grants.sort_by_key(|g| (matches!(g.grantee, Grantee::Group { .. }), g.grantee.name().to_lowercase()));
    Ok(ProjectAccess {
        project_id: project,
        visibility: standing.visibility,
        grants,
        can_share: org.can(Permission::WriteProjects, Target::Project(&standing)),
    })
}

/// Gives `grantee` `role` on the project, or changes the role they have there. Whoever may
/// change the project may share it. Only members of the organization (and its groups) can be
/// given access.
pub async fn grant(org: &Org, project: Uuid, grantee: GranteeRef, role: ProjectRole) -> Result<ProjectAccess> {
    let grantee_name = match grantee {
        GranteeRef::Member(user_id) => Some(require_member(org, user_id).await?),
        GranteeRef::Group(_) => None,
    };
    let (mut tx, _) = org.project_write(project, Permission::WriteProjects, Lock::Update, Change::Any).await?;
    let grantee_name = match (grantee, grantee_name) {
        (GranteeRef::Group(group_id), _) => {
            let name: Option<String> = sqlx::query_scalar("SELECT name FROM groups WHERE id = $1").bind(group_id).fetch_optional(tx.conn()).await?;
            name.ok_or_else(|| AppError::Invalid(FieldError::new("grantee", "That group doesn't exist (any more).")))?
        }
        (_, Some(name)) => name,
        (GranteeRef::Member(_), None) => unreachable!("looked up above"),
    };
    let (column, id) = match grantee {
        GranteeRef::Member(id) => ("user_id", id),
        GranteeRef::Group(id) => ("group_id", id),
    };
    // The project's lock (above) orders every change to its grants, so this read stays true.
    let existing: Option<(Uuid, String)> = sqlx::query_as(&format!("SELECT id, role FROM project_grants WHERE project_id = $1 AND {column} = $2"))
        .bind(project)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    match existing {
        Some((_, old)) if old == role.as_str() => {
            drop(tx);
        }
        Some((grant_id, old)) => {
            sqlx::query("UPDATE project_grants SET role = $2, granted_by = $3, granted_at = now() WHERE id = $1")
                .bind(grant_id)
                .bind(role.as_str())
                .bind(org.user_id)
                .execute(tx.conn())
                .await?;
            let changes =
                json!({ "grantee": { "new": grantee.key() }, "grantee_name": { "new": grantee_name }, "role": { "old": old, "new": role.as_str() } });
            tx.commit(AuditEntry::new("project.access_changed", "project", project, changes)).await?;
        }
        None => {
            sqlx::query(&format!("INSERT INTO project_grants (id, project_id, {column}, role, granted_by) VALUES ($1, $2, $3, $4, $5)"))
                .bind(Uuid::new_v4())
                .bind(project)
                .bind(id)
                .bind(role.as_str())
                .bind(org.user_id)
                .execute(tx.conn())
                .await?;
            let changes = json!({ "grantee": { "new": grantee.key() }, "grantee_name": { "new": grantee_name }, "role": { "new": role.as_str() } });
            tx.commit(AuditEntry::new("project.access_granted", "project", project, changes)).await?;
        }
    }
    project_access(org, project).await
}

/// Takes a grant away. Allowed while billing makes the organization read-only: it only removes.
pub async fn revoke(org: &Org, project: Uuid, grant_id: Uuid) -> Result<ProjectAccess> {
    let (mut tx, _) = org.project_write(project, Permission::WriteProjects, Lock::Update, Change::Removal).await?;
    let removed: Option<(Option<Uuid>, Option<Uuid>, String)> =
        sqlx::query_as("DELETE FROM project_grants WHERE id = $1 AND project_id = $2 RETURNING user_id, group_id, role")
            .bind(grant_id)
            .bind(project)
            .fetch_optional(tx.conn())
            .await?;
    let Some((user_id, group_id, role)) = removed else {
        return Err(AppError::NotFound("That access was already removed.".into()).into());
    };
    let grantee = match (user_id, group_id) {
        (Some(user), _) => GranteeRef::Member(user),
        (None, Some(group)) => GranteeRef::Group(group),
        (None, None) => return Err(Error::Internal("a grant without a grantee".into())),
    };
    let changes = json!({ "grantee": { "old": grantee.key() }, "role": { "old": role } });
    tx.commit(AuditEntry::new("project.access_revoked", "project", project, changes)).await?;
    project_access(org, project).await
}

/// Opens a project to the whole organization, or restricts it to the people given access.
/// Whoever restricts it keeps it: without a role that sees every project, they are made its
/// project admin in the same change.
pub async fn set_visibility(org: &Org, project: Uuid, visibility: Visibility) -> Result<ProjectAccess> {
    let (mut tx, standing) = org.project_write(project, Permission::WriteProjects, Lock::Update, Change::Any).await?;
    if standing.visibility == visibility {
        drop(tx);
        return project_access(org, project).await;
    }
    let mut changes = json!({ "visibility": { "old": standing.visibility.as_str(), "new": visibility.as_str() } });
    if visibility == Visibility::Restricted && !org.sees_every_project() && standing.grant != Some(ProjectRole::Admin) {
        // Their own grant first: the row must stay visible to them once restricted.
        keep_as_admin(&mut tx, org, project).await?;
        changes["kept_by"] = json!({ "new": format!("user:{}", org.user_id) });
    }
    sqlx::query("UPDATE projects SET visibility = $2 WHERE id = $1").bind(project).bind(visibility.as_str()).execute(tx.conn()).await?;
    tx.commit(AuditEntry::new("project.visibility_changed", "project", project, changes)).await?;
    project_access(org, project).await
}

/// Makes the actor an admin of `project` (their own grant, raised if they had a lesser one).
pub(crate) async fn keep_as_admin(tx: &mut crate::tenancy::WriteTx, org: &Org, project: Uuid) -> Result<()> {
    sqlx::query(
        "INSERT INTO project_grants (id, project_id, user_id, role, granted_by) VALUES ($1, $2, $3, 'admin', $3)
         ON CONFLICT (tenant_id, project_id, user_id) DO UPDATE SET role = 'admin'",
    )
    .bind(Uuid::new_v4())
    .bind(project)
    .bind(org.user_id)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The member's name, if `user_id` is a member of the organization; refused (422) otherwise.
async fn require_member(org: &Org, user_id: Uuid) -> Result<String> {
    let mut read = org.tenancy().system_read_in(org.tenant.id).await?;
    let member: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM memberships WHERE user_id = $1)").bind(user_id).fetch_one(read.conn()).await?;
    drop(read);
    if !member {
        return Err(AppError::Invalid(FieldError::new("grantee", "That person isn't a member of this organization. Invite them first.")).into());
    }
    let people = org.tenancy().people(&[user_id]).await?;
    Ok(people.get(&user_id).map(|(name, _)| name.clone()).unwrap_or_default())
}

/// When someone leaves the organization (or is removed), their grants and group memberships in
/// its data go too, so that coming back later doesn't bring old access back with them. A job,
/// because the data may live in another database than the membership that ended.
#[derive(Serialize, Deserialize)]
pub struct ForgetMember {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
}

impl crate::jobs::Job for ForgetMember {
    const KIND: &'static str = "access.forget_member";

    async fn run(self, job: &crate::jobs::RunningJob) -> Result<()> {
        forget_member(&job.backend.tenancy, self.tenant_id, self.user_id).await
    }
}
crate::register_job!(ForgetMember);

pub(crate) async fn forget_member(tenancy: &crate::tenancy::Tenancy, tenant_id: Uuid, user_id: Uuid) -> Result<()> {
    if groups::is_member(tenancy, tenant_id, user_id).await? {
        // Back already (invited again before this ran): what they have now is theirs.
        return Ok(());
    }
    let Some(mut data) = tenancy.data_job(<ForgetMember as crate::jobs::Job>::KIND, tenant_id).await? else { return Ok(()) };
    let grants = sqlx::query("DELETE FROM project_grants WHERE user_id = $1").bind(user_id).execute(data.conn()).await?.rows_affected();
    let groups = sqlx::query("DELETE FROM group_members WHERE user_id = $1").bind(user_id).execute(data.conn()).await?.rows_affected();
    if grants + groups > 0 {
        let changes = json!({ "project_grants": { "old": grants, "new": 0 }, "groups": { "old": groups, "new": 0 } });
        data.record(AuditEntry::new("member.access_removed", "user", user_id, changes)).await?;
        data.commit().await?;
    }
    Ok(())
}
