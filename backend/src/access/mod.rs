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
/// row-level security hides it from them. With a lock, the project is locked first and read
/// after, so a change to its grants that the lock waited for is seen (one statement would read
/// the grants as they were before the wait).
pub(crate) async fn standing(conn: &mut sqlx::PgConnection, project: Uuid, lock: Lock) -> Result<ProjectStanding> {
    let lock = match lock {
        Lock::None => None,
        Lock::Share => Some("FOR KEY SHARE"),
        Lock::Update => Some("FOR UPDATE"),
    };
    if let Some(lock) = lock {
        let found: Option<i32> =
            sqlx::query_scalar(&format!("SELECT 1 FROM projects WHERE id = $1 {lock}")).bind(project).fetch_optional(&mut *conn).await?;
        found.ok_or_else(crate::projects::no_such_project)?;
    }
    let row: Option<(String, Uuid, Option<String>)> =
        sqlx::query_as(&format!("SELECT p.visibility, p.created_by, {YOUR_GRANT} FROM projects p WHERE p.id = $1"))
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

/// Who has access to a project: anyone who can see it may look (people's addresses only with
/// the right to see the team, which an API key has only with `members:read`).
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
    let addresses = org.require(Permission::ViewMembers).is_ok();
    let mut grants = Vec::with_capacity(rows.len());
    for row in rows {
        let grantee = match (row.user_id, row.group_id) {
            (Some(user_id), _) => {
                let (name, email) = people.get(&user_id).cloned().unwrap_or_else(|| ("a former member".into(), String::new()));
                Grantee::Member { user_id, name, email: if addresses { email } else { String::new() } }
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
        can_share: org.can(Permission::ManageProjects, Target::Project(&standing)),
    })
}

/// Gives `grantee` `role` on the project, or changes the role they have there. The project's
/// admins (and the organization's Owners and Admins) share it; nobody changes their own access
/// (a project admin who wants less asks another). Only members of the organization, and its
/// groups, can be given access.
pub async fn grant(org: &Org, project: Uuid, grantee: GranteeRef, role: ProjectRole) -> Result<ProjectAccess> {
    if grantee == GranteeRef::Member(org.user_id) {
        return Err(AppError::Invalid(FieldError::new(
            "grantee",
            "You can't change your own access to a project. Another project admin, or an admin of the organization, can.",
        ))
        .into());
    }
    let member_name = match grantee {
        GranteeRef::Member(user_id) => Some(require_member(org, user_id).await?),
        GranteeRef::Group(_) => None,
    };
    let (mut tx, _) = org.project_write(project, Permission::ManageProjects, Lock::Update, Change::Any).await?;
    let (column, id, grantee_name) = match (grantee, member_name) {
        (GranteeRef::Member(id), Some(name)) => ("user_id", id, name),
        (GranteeRef::Group(id), _) => {
            let name: Option<String> = sqlx::query_scalar("SELECT name FROM groups WHERE id = $1").bind(id).fetch_optional(tx.conn()).await?;
            ("group_id", id, name.ok_or_else(|| AppError::Invalid(FieldError::new("grantee", groups::NO_SUCH_GROUP)))?)
        }
        (GranteeRef::Member(_), None) => return Err(Error::Internal("a member's name wasn't looked up".into())),
    };
    // The project's lock (above) orders every change to its grants, so this read stays true.
    let existing: Option<(Uuid, String)> = sqlx::query_as(&format!("SELECT id, role FROM project_grants WHERE project_id = $1 AND {column} = $2"))
        .bind(project)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    let mut changes = json!({ "grantee": { "new": grantee.key() }, "grantee_name": { "new": grantee_name }, "role": { "new": role.as_str() } });
    match existing {
        Some((_, old)) if old == role.as_str() => drop(tx),
        Some((grant_id, old)) => {
            sqlx::query("UPDATE project_grants SET role = $2, granted_by = $3, granted_at = now() WHERE id = $1")
                .bind(grant_id)
                .bind(role.as_str())
                .bind(org.user_id)
                .execute(tx.conn())
                .await?;
            changes["role"]["old"] = json!(old);
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
            tx.commit(AuditEntry::new("project.access_granted", "project", project, changes)).await?;
        }
    }
    // They still see it: they may share it, so they hold more than any grant they just gave.
    project_access(org, project).await
}

/// Takes a grant away. Allowed while billing makes the organization read-only: it only removes.
/// (It may be the caller's own way in, through a group: then they can't look at the project
/// afterwards, so nothing is answered.)
pub async fn revoke(org: &Org, project: Uuid, grant_id: Uuid) -> Result<()> {
    let (mut tx, _) = org.project_write(project, Permission::ManageProjects, Lock::Update, Change::Removal).await?;
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
    tx.commit(AuditEntry::new("project.access_revoked", "project", project, changes)).await
}

/// Opens a project to the whole organization, or restricts it to the people given access: for
/// its admins (who keep seeing it either way). Restricting only takes access away, so it is
/// allowed while billing makes the organization read-only.
pub async fn set_visibility(org: &Org, project: Uuid, visibility: Visibility) -> Result<ProjectAccess> {
    let change = if visibility == Visibility::Restricted { Change::Removal } else { Change::Any };
    let (mut tx, standing) = org.project_write(project, Permission::ManageProjects, Lock::Update, change).await?;
    if standing.visibility != visibility {
        sqlx::query("UPDATE projects SET visibility = $2 WHERE id = $1").bind(project).bind(visibility.as_str()).execute(tx.conn()).await?;
        let changes = json!({ "visibility": { "old": standing.visibility.as_str(), "new": visibility.as_str() } });
        tx.commit(AuditEntry::new("project.visibility_changed", "project", project, changes)).await?;
    }
    project_access(org, project).await
}

/// Makes the actor the admin of a project they are creating restricted (nobody else's work is
/// in it yet, so they may decide who comes in).
pub(crate) async fn creator_as_admin(tx: &mut crate::tenancy::WriteTx, org: &Org, project: Uuid) -> Result<()> {
    sqlx::query("INSERT INTO project_grants (id, project_id, user_id, role, granted_by) VALUES ($1, $2, $3, 'admin', $3)")
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

/// When someone leaves the organization (or is removed), the grants and group memberships they
/// had in its data until then go too, so that coming back later doesn't bring old access back.
/// A job, because the data may live in another database than the membership that ended; it
/// removes only what is from before `left_at`, so what they are given after coming back stays.
#[derive(Serialize, Deserialize)]
pub struct ForgetMember {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub left_at: OffsetDateTime,
}

impl crate::jobs::Job for ForgetMember {
    const KIND: &'static str = "access.forget_member";

    async fn run(self, job: &crate::jobs::RunningJob) -> Result<()> {
        forget_member(&job.backend.tenancy, self).await
    }
}
crate::register_job!(ForgetMember);

pub(crate) async fn forget_member(tenancy: &crate::tenancy::Tenancy, forget: ForgetMember) -> Result<()> {
    let Some(mut data) = tenancy.data_job(<ForgetMember as crate::jobs::Job>::KIND, forget.tenant_id).await? else { return Ok(()) };
    let grants = sqlx::query("DELETE FROM project_grants WHERE user_id = $1 AND granted_at <= $2")
        .bind(forget.user_id)
        .bind(forget.left_at)
        .execute(data.conn())
        .await?
        .rows_affected();
    let groups = sqlx::query("DELETE FROM group_members WHERE user_id = $1 AND added_at <= $2")
        .bind(forget.user_id)
        .bind(forget.left_at)
        .execute(data.conn())
        .await?
        .rows_affected();
    if grants + groups > 0 {
        let changes = json!({ "project_grants": { "old": grants, "new": 0 }, "groups": { "old": groups, "new": 0 } });
        data.record(AuditEntry::new("member.access_removed", "user", forget.user_id, changes)).await?;
        data.commit().await?;
    }
    Ok(())
}
