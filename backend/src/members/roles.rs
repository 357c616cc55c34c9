//! Custom roles: an organization's own roles, each a set of permissions chosen from the
//! catalogue (`Permission::catalogue`), held by members like a built-in role. The four built-in
//! roles are fixed. Nobody defines, changes or deletes a role with rights they don't have
//! themselves, so the right to define roles can be handed on without handing on more; a role
//! someone holds can't be deleted.

use crate::audit::AuditEntry;
use crate::error::{Constraint, Result};
use crate::Org;
use serde_json::json;
use sqlx::PgConnection;
use tessera_domain::dto::{CustomRoleInfo, RolesOverview};
use tessera_domain::input::FieldError;
use tessera_domain::{AppError, CustomRole, Permission, Rights, Role};
use uuid::Uuid;

inventory::submit! {
    Constraint { name: "roles_name_unique", table: "roles", field: "name", message: "A role with this name already exists here. Choose another name." }
}
inventory::submit! {
    Constraint { name: "memberships_custom_role_fk", table: "memberships", field: "role", message: "That role was just deleted. Choose another." }
}

/// A role as written, parsed at the edge.
pub struct RoleDraft {
    pub name: String,
    pub description: String,
    pub permissions: Vec<Permission>,
}

impl RoleDraft {
    /// `permissions`: names from the catalogue (`ViewAudit`, …).
    pub fn parse(name: &str, description: &str, permissions: &[String]) -> Result<Self, FieldError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
            return Err(FieldError::new("name", "Give the role a name of up to 60 characters, on one line."));
        }
        if Role::ALL.iter().any(|r| r.label().eq_ignore_ascii_case(name)) {
            return Err(FieldError::new("name", format!("{name} is a built-in role's name. Choose another.")));
        }
        let description = description.trim();
        if description.chars().count() > 500 {
            return Err(FieldError::new("description", "Keep the description to 500 characters or fewer."));
        }
        let mut chosen = Vec::new();
        for raw in permissions {
            let Some(permission) = Permission::parse(raw) else {
                return Err(FieldError::new("permissions", format!("\"{raw}\" isn't a permission a role can have.")));
            };
            if permission.owner_only() {
                return Err(FieldError::new(
                    "permissions",
                    format!("\"{}\" is only ever an Owner's: no custom role can have it.", permission.describe()),
                ));
            }
            // The baseline comes with every role; stored or not, it's the same.
            if !permission.is_baseline() && !chosen.contains(&permission) {
                chosen.push(permission);
            }
        }
        Ok(Self { name: name.to_string(), description: description.to_string(), permissions: chosen })
    }
}

/// The custom role `id` as rights (`lock`: held against deletion until the transaction ends).
pub(crate) async fn load(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Rights> {
    let lock = if lock { "FOR KEY SHARE" } else { "" };
    let row: Option<(String, Vec<String>)> =
        sqlx::query_as(&format!("SELECT name, permissions FROM roles WHERE id = $1 {lock}")).bind(id).fetch_optional(conn).await?;
    let (name, permissions) = row.ok_or_else(|| AppError::Invalid(FieldError::new("role", "That role doesn't exist in this organization.")))?;
    Ok(Rights::Custom(CustomRole { id, name, permissions: permissions.iter().filter_map(|p| Permission::parse(p)).collect() }))
}

/// The built-in roles, the organization's own (with how many hold each) and the catalogue.
pub async fn list(org: &Org) -> Result<RolesOverview> {
    let mut tx = org.control_read(Permission::ViewMembers).await?;
    let rows: Vec<(Uuid, String, String, Vec<String>, i64)> = sqlx::query_as(
        "SELECT r.id, r.name, r.description, r.permissions, (SELECT count(*) FROM memberships m WHERE m.custom_role_id = r.id)
           FROM roles r ORDER BY lower(r.name)",
    )
    .fetch_all(tx.conn())
    .await?;
    let can_manage = org.require(Permission::ManageRoles).is_ok();
    let custom = rows
        .into_iter()
        .map(|(id, name, description, permissions, holders)| {
            let permissions: Vec<Permission> = permissions.iter().filter_map(|p| Permission::parse(p)).collect();
            let rights = Rights::Custom(CustomRole { id, name: name.clone(), permissions: permissions.clone() });
            CustomRoleInfo { id, name, description, permissions, holders, can_edit: can_manage && org.rights.covers(&rights) }
        })
        .collect();
    let built_in = Role::ALL.into_iter().map(|role| (role, Permission::ALL.iter().copied().filter(|p| role.can(*p)).collect())).collect();
    Ok(RolesOverview { built_in, custom, catalogue: Permission::catalogue().collect(), can_manage })
}

/// Refuses a role with rights the actor lacks, naming them.
fn within_own_rights(org: &Org, permissions: &[Permission]) -> Result<()> {
    let lacking: Vec<&str> = org.rights.lacking(permissions).map(Permission::describe).collect();
    if lacking.is_empty() {
        return Ok(());
    }
    Err(AppError::Forbidden(format!("A role can't have rights you don't have yourself: {}.", lacking.join("; "))).into())
}

pub async fn create(org: &Org, draft: RoleDraft) -> Result<Uuid> {
    org.require(Permission::ManageRoles)?;
    within_own_rights(org, &draft.permissions)?;
    let mut tx = org.control_write(Permission::ManageRoles).await?;
    let id = Uuid::new_v4();
    let names: Vec<&str> = draft.permissions.iter().map(|p| p.name()).collect();
    sqlx::query("INSERT INTO roles (id, tenant_id, name, description, permissions, created_by) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(id)
        .bind(org.tenant.id)
        .bind(&draft.name)
        .bind(&draft.description)
        .bind(&names)
        .bind(org.user_id)
        .execute(tx.conn())
        .await?;
    let changes = json!({ "name": { "new": draft.name }, "description": { "new": draft.description }, "permissions": { "new": names } });
    tx.commit(AuditEntry::new("role.created", "role", id, changes)).await?;
    Ok(id)
}

/// Changes a role: its holders have the new rights from their next request on.
pub async fn update(org: &Org, id: Uuid, draft: RoleDraft) -> Result<()> {
    org.require(Permission::ManageRoles)?;
    within_own_rights(org, &draft.permissions)?;
    let mut tx = org.control_write(Permission::ManageRoles).await?;
    let before: Option<(String, String, Vec<String>)> =
        sqlx::query_as("SELECT name, description, permissions FROM roles WHERE id = $1 FOR UPDATE").bind(id).fetch_optional(tx.conn()).await?;
    let (name, description, permissions) = before.ok_or_else(no_such_role)?;
    let old: Vec<Permission> = permissions.iter().filter_map(|p| Permission::parse(p)).collect();
    // Nor a role stronger than oneself, even to weaken it.
    within_own_rights(org, &old)?;
    // Changing a role people hold changes what they may do, as giving them another role would:
    // that takes the right to manage members too.
    let holders: i64 = sqlx::query_scalar("SELECT count(*) FROM memberships WHERE custom_role_id = $1").bind(id).fetch_one(tx.conn()).await?;
    if holders > 0 && org.require(Permission::ManageMembers).is_err() {
        return Err(AppError::Forbidden(format!(
            "Members hold the {name} role, so changing it changes what they may do: that also takes the right to manage members."
        ))
        .into());
    }
    let names: Vec<&str> = draft.permissions.iter().map(|p| p.name()).collect();
    let mut changes = crate::audit::changed(&[("name", &name, &draft.name), ("description", &description, &draft.description)]);
    // As sets: the order they were ticked in is no change.
    let same = old.len() == draft.permissions.len() && old.iter().all(|p| draft.permissions.contains(p));
    if !same {
        changes["permissions"] = json!({ "old": permissions, "new": names });
    }
    if changes.as_object().is_some_and(|c| c.is_empty()) {
        return Ok(());
    }
    sqlx::query("UPDATE roles SET name = $2, description = $3, permissions = $4, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(&draft.name)
        .bind(&draft.description)
        .bind(&names)
        .execute(tx.conn())
        .await?;
    tx.commit(AuditEntry::new("role.updated", "role", id, changes)).await
}

/// Deletes a role nobody holds; one in use is refused, saying by how many.
pub async fn delete(org: &Org, id: Uuid) -> Result<()> {
    let mut tx = org.control_write_removal(Permission::ManageRoles).await?;
    let before: Option<(String, Vec<String>)> =
        sqlx::query_as("SELECT name, permissions FROM roles WHERE id = $1 FOR UPDATE").bind(id).fetch_optional(tx.conn()).await?;
    let (name, permissions) = before.ok_or_else(no_such_role)?;
    within_own_rights(org, &permissions.iter().filter_map(|p| Permission::parse(p)).collect::<Vec<_>>())?;
    let holders: i64 = sqlx::query_scalar("SELECT count(*) FROM memberships WHERE custom_role_id = $1").bind(id).fetch_one(tx.conn()).await?;
    if holders > 0 {
        let who = if holders == 1 { "1 member holds".to_string() } else { format!("{holders} members hold") };
        return Err(
            AppError::Conflict(FieldError::new("role", format!("{who} the {name} role. Give them another role first, then delete it."))).into()
        );
    }
    sqlx::query("DELETE FROM roles WHERE id = $1").bind(id).execute(tx.conn()).await?;
    tx.commit(AuditEntry::new("role.deleted", "role", id, json!({ "name": { "old": name }, "permissions": { "old": permissions } }))).await
}

pub fn no_such_role() -> AppError {
    AppError::NotFound("That role doesn't exist in this organization.".into())
}
