//! Groups: members an organization names together ("Design", "Contractors") so a project can
//! be shared with all of them at once. Admins make them and choose who is in them, or let the
//! identity provider decide: a group that mirrors an IdP group gets its members from each SAML
//! sign-in ([`SyncIdpGroups`]). Deleting a group takes its grants with it.

use crate::audit::{self, AuditEntry};
use crate::error::{Constraint, Result};
use crate::members::rfc3339;
use crate::tenancy::Tenancy;
use crate::Org;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use tessera_domain::dto::{Group, GroupMember};
use tessera_domain::input::{FieldError, GroupDescription, GroupName};
use tessera_domain::{AppError, Permission};
use time::OffsetDateTime;
use uuid::Uuid;

inventory::submit! {
    Constraint { name: "groups_name_unique", table: "groups", field: "name", message: "A group with this name already exists here. Choose another name." }
}
inventory::submit! {
    Constraint { name: "groups_idp_group_unique", table: "groups", field: "idp_group", message: "Another group already mirrors this identity provider group." }
}
inventory::submit! {
    Constraint { name: "group_members_group_fk", table: "group_members", field: "group", message: NO_SUCH_GROUP }
}

#[derive(sqlx::FromRow)]
struct GroupRow {
    id: Uuid,
    name: String,
    description: String,
    idp_group: Option<String>,
    created_at: OffsetDateTime,
    projects: i64,
}

/// A group, and how many of the projects the asker can see it has access to (counting through
/// `projects`, whose policy hides restricted ones: the count says nothing of those).
const SELECT_GROUP: &str = "SELECT g.id, g.name, g.description, g.idp_group, g.created_at,
        (SELECT count(*) FROM project_grants pg JOIN projects p ON p.id = pg.project_id WHERE pg.group_id = g.id) AS projects
   FROM groups g";

/// A group as written, parsed at the edge.
pub struct GroupDraft {
    pub name: GroupName,
    pub description: GroupDescription,
    /// The IdP group it mirrors (its members then come from single sign-on).
    pub idp_group: Option<String>,
}

impl GroupDraft {
    pub fn parse(name: &str, description: &str, idp_group: &str) -> Result<Self, FieldError> {
        Ok(Self {
            name: GroupName::parse(name)?,
            description: GroupDescription::parse(description)?,
            idp_group: tessera_domain::input::parse_idp_group(idp_group)?,
        })
    }
}

/// The organization's groups by name, each with its members.
pub async fn list(org: &Org) -> Result<Vec<Group>> {
    let mut tx = org.read(Permission::ViewMembers).await?;
    let rows: Vec<GroupRow> = sqlx::query_as(&format!("{SELECT_GROUP} ORDER BY lower(g.name), g.id LIMIT 500")).fetch_all(tx.conn()).await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let members: Vec<(Uuid, Uuid, OffsetDateTime)> =
        sqlx::query_as("SELECT group_id, user_id, added_at FROM group_members WHERE group_id = ANY($1) ORDER BY added_at")
            .bind(&ids)
            .fetch_all(tx.conn())
            .await?;
    drop(tx);
    shaped(org, rows, members).await
}

pub async fn get(org: &Org, id: Uuid) -> Result<Group> {
    let mut tx = org.read(Permission::ViewMembers).await?;
    let row: Option<GroupRow> = sqlx::query_as(&format!("{SELECT_GROUP} WHERE g.id = $1")).bind(id).fetch_optional(tx.conn()).await?;
    let row = row.ok_or_else(no_such_group)?;
    let members: Vec<(Uuid, Uuid, OffsetDateTime)> =
        sqlx::query_as("SELECT group_id, user_id, added_at FROM group_members WHERE group_id = $1 ORDER BY added_at")
            .bind(id)
            .fetch_all(tx.conn())
            .await?;
    drop(tx);
    Ok(shaped(org, vec![row], members).await?.remove(0))
}

/// Rows as people see them: members by name (tenant data keeps only ids), sorted by name.
async fn shaped(org: &Org, rows: Vec<GroupRow>, members: Vec<(Uuid, Uuid, OffsetDateTime)>) -> Result<Vec<Group>> {
    let ids: Vec<Uuid> = members.iter().map(|(_, user, _)| *user).collect();
    let people = org.tenancy().people(&ids).await?;
    let mut by_group: HashMap<Uuid, Vec<GroupMember>> = HashMap::new();
    for (group, user_id, added_at) in members {
        let (name, email) = people.get(&user_id).cloned().unwrap_or_else(|| ("a former member".into(), String::new()));
        by_group.entry(group).or_default().push(GroupMember { user_id, name, email, added_at: rfc3339(added_at) });
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut members = by_group.remove(&row.id).unwrap_or_default();
            members.sort_by_key(|m| m.name.to_lowercase());
            Group {
                id: row.id,
                name: row.name,
                description: row.description,
                idp_group: row.idp_group,
                members,
                projects: row.projects,
                created_at: rfc3339(row.created_at),
            }
        })
        .collect())
}

pub async fn create(org: &Org, draft: GroupDraft) -> Result<Group> {
    let mut tx = org.write(Permission::ManageGroups).await?;
    let id = Uuid::new_v4();
    sqlx::query("INSERT INTO groups (id, name, description, idp_group, created_by) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(draft.name.as_str())
        .bind(draft.description.as_str())
        .bind(draft.idp_group.as_deref())
        .bind(org.user_id)
        .execute(tx.conn())
        .await?;
    let mut changes = audit::created(&[("name", draft.name.as_str()), ("description", draft.description.as_str())]);
    if let Some(idp) = &draft.idp_group {
        changes["idp_group"] = json!({ "new": idp });
    }
    tx.commit(AuditEntry::new("group.created", "group", id, changes)).await?;
    get(org, id).await
}

/// Renames a group, or changes what it says or which IdP group it mirrors. Starting to mirror
/// one empties it: its members come back as each signs in through the IdP.
pub async fn update(org: &Org, id: Uuid, draft: GroupDraft) -> Result<Group> {
    let mut tx = org.write(Permission::ManageGroups).await?;
    let before: Option<(String, String, Option<String>)> =
        sqlx::query_as("SELECT name, description, idp_group FROM groups WHERE id = $1 FOR UPDATE").bind(id).fetch_optional(tx.conn()).await?;
    let (name, description, idp_group) = before.ok_or_else(no_such_group)?;
    let changes = audit::changed(&[
        ("name", &name, draft.name.as_str()),
        ("description", &description, draft.description.as_str()),
        ("idp_group", idp_group.as_deref().unwrap_or(""), draft.idp_group.as_deref().unwrap_or("")),
    ]);
    if changes.as_object().is_some_and(|c| c.is_empty()) {
        drop(tx);
        return get(org, id).await;
    }
    sqlx::query("UPDATE groups SET name = $2, description = $3, idp_group = $4, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(draft.name.as_str())
        .bind(draft.description.as_str())
        .bind(draft.idp_group.as_deref())
        .execute(tx.conn())
        .await?;
    let mut changes = changes;
    if draft.idp_group.is_some() && draft.idp_group != idp_group {
        // Mirroring an IdP group from now on: who is in it is the IdP's to say, at each
        // person's next sign-in, not what was chosen here by hand or mirrored before.
        let cleared = sqlx::query("DELETE FROM group_members WHERE group_id = $1").bind(id).execute(tx.conn()).await?.rows_affected();
        if cleared > 0 {
            changes["members"] = json!({ "old": cleared, "new": 0 });
        }
    }
    tx.commit(AuditEntry::new("group.updated", "group", id, changes)).await?;
    get(org, id).await
}

/// Deletes a group; its members stay in the organization, and the access it gave goes with it.
pub async fn delete(org: &Org, id: Uuid) -> Result<()> {
    let mut tx = org.write_removal(Permission::ManageGroups).await?;
    let before: Option<(String, i64, i64)> = sqlx::query_as(
        "SELECT name, (SELECT count(*) FROM group_members m WHERE m.group_id = g.id), (SELECT count(*) FROM project_grants p WHERE p.group_id = g.id)
           FROM groups g WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    let (name, members, grants) = before.ok_or_else(no_such_group)?;
    // Its memberships and grants go by the foreign keys' cascade.
    sqlx::query("DELETE FROM groups WHERE id = $1").bind(id).execute(tx.conn()).await?;
    let changes = json!({ "name": { "old": name }, "members": { "old": members }, "project_grants": { "old": grants } });
    tx.commit(AuditEntry::new("group.deleted", "group", id, changes)).await
}

/// Puts a member of the organization in a group (no change if they are in it already).
pub async fn add_member(org: &Org, id: Uuid, user_id: Uuid) -> Result<Group> {
    if !is_member(org.tenancy(), org.tenant.id, user_id).await? {
        return Err(AppError::Invalid(FieldError::new("user_id", "That person isn't a member of this organization. Invite them first.")).into());
    }
    let mut tx = org.write(Permission::ManageGroups).await?;
    let idp_group = lock_by_hand(tx.conn(), id).await?;
    refuse_if_mirrored(idp_group)?;
    let added = sqlx::query("INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(id)
        .bind(user_id)
        .execute(tx.conn())
        .await?
        .rows_affected();
    if added == 0 {
        drop(tx);
    } else {
        tx.commit(AuditEntry::new("group.member_added", "group", id, json!({ "member": { "new": format!("user:{user_id}") } }))).await?;
    }
    get(org, id).await
}

pub async fn remove_member(org: &Org, id: Uuid, user_id: Uuid) -> Result<Group> {
    let mut tx = org.write_removal(Permission::ManageGroups).await?;
    let idp_group = lock_by_hand(tx.conn(), id).await?;
    refuse_if_mirrored(idp_group)?;
    let removed = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2").bind(id).bind(user_id).execute(tx.conn()).await?;
    if removed.rows_affected() == 0 {
        return Err(AppError::NotFound("That person isn't in this group (any more).".into()).into());
    }
    tx.commit(AuditEntry::new("group.member_removed", "group", id, json!({ "member": { "old": format!("user:{user_id}") } }))).await?;
    get(org, id).await
}

/// Locks the group against a concurrent deletion; answers the IdP group it mirrors.
async fn lock_by_hand(conn: &mut sqlx::PgConnection, id: Uuid) -> Result<Option<String>> {
    let row: Option<Option<String>> =
        sqlx::query_scalar("SELECT idp_group FROM groups WHERE id = $1 FOR KEY SHARE").bind(id).fetch_optional(conn).await?;
    row.ok_or_else(|| no_such_group().into())
}

fn refuse_if_mirrored(idp_group: Option<String>) -> Result<()> {
    match idp_group {
        None => Ok(()),
        Some(idp) => Err(AppError::Conflict(FieldError::new(
            "group",
            format!("This group mirrors \"{idp}\" in your identity provider, so its members change there (at their next single sign-on), not here."),
        ))
        .into()),
    }
}

/// What a group that isn't there is called, wherever it is asked for.
pub(crate) const NO_SUCH_GROUP: &str = "That group doesn't exist in this organization (any more).";

pub fn no_such_group() -> AppError {
    AppError::NotFound(NO_SUCH_GROUP.into())
}

/// Whether `user_id` is a member of the organization now (memberships live in the control
/// plane).
pub(crate) async fn is_member(tenancy: &Tenancy, tenant_id: Uuid, user_id: Uuid) -> Result<bool> {
    let mut read = tenancy.system_read_in(tenant_id).await?;
    Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM memberships WHERE user_id = $1)").bind(user_id).fetch_one(read.conn()).await?)
}

/// After a SAML sign-in: puts the person in the groups that mirror the IdP groups the assertion
/// named, and takes them out of the mirroring groups it didn't. Queued by the sign-in, which
/// lives in the control plane; the groups live with the organization's data.
#[derive(Serialize, Deserialize)]
pub struct SyncIdpGroups {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    /// The IdP's group names, as the assertion carried them.
    pub groups: Vec<String>,
    /// When they signed in: a sync from an older sign-in that runs late (retried) is skipped,
    /// so it can't put back a group the IdP has taken them out of since.
    pub signed_in_at: OffsetDateTime,
}

impl crate::jobs::Job for SyncIdpGroups {
    const KIND: &'static str = "access.sync_idp_groups";

    async fn run(self, job: &crate::jobs::RunningJob) -> Result<()> {
        sync_idp_groups(&job.backend.tenancy, self).await
    }
}
crate::register_job!(SyncIdpGroups);

pub(crate) async fn sync_idp_groups(tenancy: &Tenancy, sync: SyncIdpGroups) -> Result<()> {
    if !is_member(tenancy, sync.tenant_id, sync.user_id).await? {
        return Ok(());
    }
    let Some(mut data) = tenancy.data_job(<SyncIdpGroups as crate::jobs::Job>::KIND, sync.tenant_id).await? else { return Ok(()) };
    // One sync per person at a time, newest sign-in wins.
    let newer = sqlx::query(
        "INSERT INTO idp_group_syncs (user_id, signed_in_at) VALUES ($1, $2)
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET signed_in_at = excluded.signed_in_at
         WHERE idp_group_syncs.signed_in_at < excluded.signed_in_at",
    )
    .bind(sync.user_id)
    .bind(sync.signed_in_at)
    .execute(data.conn())
    .await?
    .rows_affected();
    if newer == 0 {
        return Ok(());
    }
    let mirrors: Vec<(Uuid, String, bool)> = sqlx::query_as(
        "SELECT g.id, g.idp_group, EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = g.id AND m.user_id = $1)
           FROM groups g WHERE g.idp_group IS NOT NULL FOR KEY SHARE OF g",
    )
    .bind(sync.user_id)
    .fetch_all(data.conn())
    .await?;
    for (group, idp, is_in) in mirrors {
        let wanted = sync.groups.contains(&idp);
        if wanted && !is_in {
            sqlx::query("INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(group)
                .bind(sync.user_id)
                .execute(data.conn())
                .await?;
            let changes = json!({ "member": { "new": format!("user:{}", sync.user_id) }, "via": { "new": "sso groups" } });
            data.record(AuditEntry::new("group.member_added", "group", group, changes)).await?;
        } else if !wanted && is_in {
            sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2").bind(group).bind(sync.user_id).execute(data.conn()).await?;
            let changes = json!({ "member": { "old": format!("user:{}", sync.user_id) }, "via": { "new": "sso groups" } });
            data.record(AuditEntry::new("group.member_removed", "group", group, changes)).await?;
        }
    }
    // Committed even when no group changed: the sign-in it follows is the newest now.
    data.commit().await?;
    Ok(())
}
