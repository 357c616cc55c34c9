//! A tenant's team: who belongs, with which role. Owners and Admins manage it; the last Owner
//! can never be demoted or removed, so no organization is left without someone in charge.
//! Memberships live in the control plane (the tenant switcher needs them across regions), so
//! this module uses the door's control transactions; their audit records stay beside them.
//! People join by accepting an invitation (`invitations`).

pub mod invitations;
pub mod roles;

use crate::audit::AuditEntry;
use crate::error::Result;
use crate::identity::Identity;
use crate::notifications::Event;
use crate::Org;
use serde_json::json;
use sqlx::PgConnection;
use tessera_domain::dto::Member;
use tessera_domain::input::{Email, FieldError};
use tessera_domain::{AppError, Permission, Rights, Role};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct MemberRow {
    user_id: Uuid,
    email: String,
    display_name: Option<String>,
    role: String,
    joined: OffsetDateTime,
    custom_role_id: Option<Uuid>,
    custom_role_name: Option<String>,
}

pub async fn list(org: &Org) -> Result<Vec<Member>> {
    let mut tx = org.control_read(Permission::ViewMembers).await?;
    let rows: Vec<MemberRow> = sqlx::query_as(
        "SELECT u.id AS user_id, u.email, u.display_name, m.role, m.created_at AS joined, r.id AS custom_role_id, r.name AS custom_role_name
           FROM memberships m JOIN users u ON u.id = m.user_id LEFT JOIN roles r ON r.id = m.custom_role_id
          ORDER BY array_position(ARRAY['owner','admin','member','viewer'], m.role), r.name NULLS FIRST, lower(u.email)",
    )
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter()
        .map(|row| {
            let custom_role = row.custom_role_id.zip(row.custom_role_name).map(|(id, name)| tessera_domain::dto::RoleRef { id, name });
            Ok(Member {
                user_id: row.user_id,
                email: row.email,
                display_name: row.display_name,
                role: parse_role(&row.role)?,
                custom_role,
                joined_at: rfc3339(row.joined),
            })
        })
        .collect()
}

/// Adds an existing, confirmed Tessera user to the team by email, without asking them: only
/// for the operator's demo seed. People join by invitation.
pub(crate) async fn add(org: &Org, identity: &Identity, email: &str, role: Role) -> Result<Member> {
    // Checked before validating, so a role that may not add members learns that first.
    org.require(Permission::ManageMembers)?;
    let email = Email::parse(email)?;
    if !org.may_assign(role) {
        return Err(AppError::Forbidden("Only an Owner can make someone an Owner.".into()).into());
    }
    let Some((user_id, confirmed)) = identity.find_by_email(&email).await? else {
        return Err(
            AppError::Invalid(FieldError::new("email", "No Tessera account uses that email yet. Ask them to sign up first, then add them.")).into()
        );
    };
    // Anyone can sign up with any address; until its owner has confirmed it, the account may
    // not be theirs, so it gets no access to anyone's organization.
    if !confirmed {
        return Err(AppError::Invalid(FieldError::new(
            "email",
            "That person hasn't confirmed their email address yet. Ask them to follow the link we sent, then add them.",
        ))
        .into());
    }
    let mut tx = org.control_write(Permission::ManageMembers).await?;
    crate::billing::account::require_seat(tx.conn(), org.tenancy().billing(), org.tenant.id, org.tenant.billing.as_ref(), true).await?;
    let inserted: Option<OffsetDateTime> = sqlx::query_scalar(
        "INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, user_id) DO NOTHING RETURNING created_at",
    )
    .bind(org.tenant.id)
    .bind(user_id)
    .bind(role.as_str())
    .fetch_optional(tx.conn())
    .await?;
    let Some(joined) = inserted else {
        return Err(AppError::Conflict(FieldError::new("email", "That person is already a member of this organization.")).into());
    };
    crate::notifications::notify(tx.conn(), Event::MemberJoined { tenant_id: org.tenant.id, user_id, role }).await?;
    let change = crate::webhooks::events::MemberChange::now(crate::webhooks::events::MemberEventKind::Added, user_id, role, None);
    crate::webhooks::events::member_changed(tx.conn(), org.tenant.id, change).await?;
    crate::billing::account::seats_changed(tx.conn(), org.tenant.id).await?;
    tx.commit(AuditEntry::new("membership.added", "user", user_id, json!({ "email": { "new": email.as_str() }, "role": { "new": role.as_str() } })))
        .await?;
    crate::jobs::wake();
    Ok(Member { user_id, email: email.as_str().to_string(), display_name: None, role, custom_role: None, joined_at: rfc3339(joined) })
}

/// The role to give someone: a built-in one, or one of the organization's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleChoice {
    BuiltIn(Role),
    Custom(Uuid),
}

impl RoleChoice {
    /// `owner`, `admin`, `member`, `viewer`, or `custom:<id>` (as the role picker sends it).
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        match raw.trim().strip_prefix("custom:") {
            Some(id) => {
                Uuid::parse_str(id).map(RoleChoice::Custom).map_err(|_| FieldError::new("role", "That role doesn't exist in this organization."))
            }
            None => raw.parse::<Role>().map(RoleChoice::BuiltIn).map_err(|e| FieldError::new("role", e.to_string())),
        }
    }
}

pub async fn change_role(org: &Org, user_id: Uuid, choice: RoleChoice) -> Result<()> {
    let mut tx = org.control_write(Permission::ManageMembers).await?;
    let current = current_rights(tx.conn(), user_id).await?;
    let new = match choice {
        RoleChoice::BuiltIn(role) => Rights::BuiltIn(role),
        RoleChoice::Custom(id) => roles::load(tx.conn(), id, true).await?,
    };
    if current == new {
        return Ok(());
    }
    if current.is_owner() || new.is_owner() {
        if !org.rights.may_assign(&current) || !org.rights.may_assign(&new) {
            return Err(AppError::Forbidden("Only an Owner can change an Owner's role or make someone an Owner.".into()).into());
        }
    } else if !org.rights.may_assign(&current) || !org.rights.may_assign(&new) {
        return Err(AppError::Forbidden("You can't give or take away a role with rights you don't have yourself. An Owner can.".into()).into());
    }
    if current.is_owner() {
        ensure_another_owner(tx.conn(), user_id).await?;
    }
    let (base, custom_id, custom_name) = match &new {
        Rights::BuiltIn(role) => (*role, None, None),
        Rights::Custom(role) => (Role::Viewer, Some(role.id), Some(role.name.clone())),
    };
    sqlx::query("UPDATE memberships SET role = $2, custom_role_id = $3 WHERE user_id = $1")
        .bind(user_id)
        .bind(base.as_str())
        .bind(custom_id)
        .execute(tx.conn())
        .await?;
    let mut changes = json!({ "role": { "old": role_word(&current), "new": role_word(&new) } });
    let still_theirs: Vec<&str> = Role::ALL.into_iter().filter(|r| new.may_assign(&Rights::BuiltIn(*r))).map(Role::as_str).collect();
    let voided = withdraw_invitations_of(tx.conn(), user_id, &still_theirs).await?;
    if voided > 0 {
        changes["open_invitations"] = json!({ "old": voided, "new": 0 });
    }
    let event = Event::RoleChanged { tenant_id: org.tenant.id, user_id, role: base, custom_role: custom_name, by: Some(org.user_id) };
    crate::notifications::notify(tx.conn(), event).await?;
    let previous = current.built_in().unwrap_or(Role::Viewer);
    let change = crate::webhooks::events::MemberChange::now(crate::webhooks::events::MemberEventKind::RoleChanged, user_id, base, Some(previous));
    crate::webhooks::events::member_changed(tx.conn(), org.tenant.id, change).await?;
    tx.commit(AuditEntry::new("membership.role_changed", "user", user_id, changes)).await?;
    crate::jobs::wake();
    Ok(())
}

/// A role as the audit log says it: `admin`, or `custom:<id> (Name)`.
fn role_word(rights: &Rights) -> String {
    match rights {
        Rights::BuiltIn(role) => role.as_str().to_string(),
        Rights::Custom(role) => format!("custom:{} ({})", role.id, role.name),
    }
}

pub async fn remove(org: &Org, user_id: Uuid) -> Result<()> {
    let mut tx = org.control_write_removal(Permission::ManageMembers).await?;
    let rights = current_rights(tx.conn(), user_id).await?;
    let current = current_role(tx.conn(), user_id).await?;
    if !org.rights.may_assign(&rights) {
        let why = if rights.is_owner() {
            "Only an Owner can remove an Owner."
        } else {
            "Their role has rights you don't have, so only an Owner can remove them."
        };
        return Err(AppError::Forbidden(why.into()).into());
    }
    if current == Role::Owner {
        ensure_another_owner(tx.conn(), user_id).await?;
    }
    let changes = take_leave(&mut tx, org, user_id, current).await?;
    tx.commit(AuditEntry::new("membership.removed", "user", user_id, changes)).await
}

/// What leaving takes with it, whether someone is removed or leaves: the membership, the API
/// keys they made (they act in their name), their open invitations. Returns the audit changes.
async fn take_leave(tx: &mut crate::tenancy::WriteTx, org: &Org, user_id: Uuid, role: Role) -> Result<serde_json::Value> {
    let held = current_rights(tx.conn(), user_id).await?;
    sqlx::query("DELETE FROM memberships WHERE user_id = $1").bind(user_id).execute(tx.conn()).await?;
    let keys = sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE created_by = $1 AND revoked_at IS NULL")
        .bind(user_id)
        .execute(tx.conn())
        .await?
        .rows_affected();
    let mut changes = json!({ "role": { "old": role_word(&held) } });
    if keys > 0 {
        changes["api_keys"] = json!({ "old": keys, "new": 0 });
    }
    let voided = withdraw_invitations_of(tx.conn(), user_id, &[]).await?;
    if voided > 0 {
        changes["open_invitations"] = json!({ "old": voided, "new": 0 });
    }
    let change = crate::webhooks::events::MemberChange::now(crate::webhooks::events::MemberEventKind::Removed, user_id, role, None);
    crate::webhooks::events::member_changed(tx.conn(), org.tenant.id, change).await?;
    crate::billing::account::seats_changed(tx.conn(), org.tenant.id).await?;
    tx.enqueue(&crate::access::ForgetMember { tenant_id: org.tenant.id, user_id, left_at: time::OffsetDateTime::now_utc() }).await?;
    Ok(changes)
}

/// The signed-in member leaves the organization. Their API keys and open invitations go with
/// them, as when they are removed. The last Owner is refused: someone must stay in charge
/// (they hand ownership over, or delete the organization).
pub async fn leave(org: &Org) -> Result<()> {
    let mut tx = org.control_write_removal(Permission::LeaveOrganization).await?;
    let user_id = org.user_id;
    let current = current_role(tx.conn(), user_id).await?;
    if current == Role::Owner {
        let owners: Vec<Uuid> = sqlx::query_scalar("SELECT user_id FROM memberships WHERE role = 'owner' FOR UPDATE").fetch_all(tx.conn()).await?;
        if !owners.iter().any(|o| *o != user_id) {
            return Err(AppError::Conflict(FieldError::new(
                "organization",
                "You're the only Owner, so you can't leave: hand ownership over first, or delete the organization.",
            ))
            .into());
        }
    }
    let changes = take_leave(&mut tx, org, user_id, current).await?;
    tx.commit(AuditEntry::new("membership.left", "user", user_id, changes)).await?;
    crate::jobs::wake();
    Ok(())
}

/// An Owner hands ownership to another member, who becomes an Owner; the one handing over
/// stays on as an Admin. (The caller confirms it is them first: a step-up re-authentication.)
pub async fn transfer_ownership(org: &Org, to: Uuid) -> Result<()> {
    let mut tx = org.control_write(Permission::ManageOwners).await?;
    if to == org.user_id {
        return Err(AppError::Invalid(FieldError::new("user_id", "Choose another member: you're an Owner already.")).into());
    }
    // Both rows locked, in a fixed order, so two hand-overs at once serialize.
    let (first, second) = if org.user_id < to { (org.user_id, to) } else { (to, org.user_id) };
    let mine_first = first == org.user_id;
    let a = current_role(tx.conn(), first).await?;
    let b = current_role(tx.conn(), second).await?;
    let (mine, theirs) = if mine_first { (a, b) } else { (b, a) };
    if mine != Role::Owner {
        // Demoted since the page was opened: someone else changed this meanwhile.
        return Err(AppError::Conflict(FieldError::new("user_id", "You're no longer an Owner here, so you can't hand ownership over.")).into());
    }
    if theirs == Role::Owner {
        return Err(AppError::Conflict(FieldError::new("user_id", "They're an Owner already. To step down, change your own role.")).into());
    }
    // An Owner holds no custom role (whatever they held goes).
    sqlx::query("UPDATE memberships SET role = 'owner', custom_role_id = NULL WHERE user_id = $1").bind(to).execute(tx.conn()).await?;
    sqlx::query("UPDATE memberships SET role = 'admin' WHERE user_id = $1").bind(org.user_id).execute(tx.conn()).await?;
    for (user_id, role, previous) in [(to, Role::Owner, theirs), (org.user_id, Role::Admin, mine)] {
        if role == previous {
            continue;
        }
        let event = Event::RoleChanged { tenant_id: org.tenant.id, user_id, role, custom_role: None, by: Some(org.user_id) };
        crate::notifications::notify(tx.conn(), event).await?;
        let change = crate::webhooks::events::MemberChange::now(crate::webhooks::events::MemberEventKind::RoleChanged, user_id, role, Some(previous));
        crate::webhooks::events::member_changed(tx.conn(), org.tenant.id, change).await?;
    }
    let mut changes = json!({
        "new_owner": { "old": theirs.as_str(), "new": Role::Owner.as_str() },
        "previous_owner": { "old": Role::Owner.as_str(), "new": Role::Admin.as_str() },
    });
    // As with any demotion: the Owner invitations they sent no longer speak for anyone.
    let still_theirs: Vec<&str> = Role::ALL.into_iter().filter(|r| Role::Admin.may_assign(*r)).map(Role::as_str).collect();
    let voided = withdraw_invitations_of(tx.conn(), org.user_id, &still_theirs).await?;
    if voided > 0 {
        changes["open_invitations"] = json!({ "old": voided, "new": 0 });
    }
    tx.commit(AuditEntry::new("membership.ownership_transferred", "user", to, changes)).await?;
    crate::jobs::wake();
    Ok(())
}

/// Signs a member out of every browser (a lost laptop, someone leaving). Owners and Admins may
/// do it for the people whose role they may change; audited like any team change.
pub async fn revoke_sessions(org: &Org, user_id: Uuid) -> Result<u64> {
    let mut tx = org.control_write_removal(Permission::ManageMembers).await?;
    let rights = current_rights(tx.conn(), user_id).await?;
    if !org.rights.may_assign(&rights) {
        let why = if rights.is_owner() {
            "Only an Owner can sign an Owner out."
        } else {
            "Their role has rights you don't have, so only an Owner can sign them out."
        };
        return Err(AppError::Forbidden(why.into()).into());
    }
    let ended = crate::sessions::sign_out_elsewhere(tx.conn(), user_id, None, "user").await?;
    tx.commit(AuditEntry::new("member.sessions_revoked", "user", user_id, json!({ "sessions": { "old": ended, "new": 0 } }))).await?;
    Ok(ended)
}

/// Withdraws the open invitations someone sent, except those for roles in `keep`: an
/// invitation speaks for its sender (accepting also checks this, as a second line).
async fn withdraw_invitations_of(conn: &mut PgConnection, user_id: Uuid, keep: &[&str]) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE invitations SET revoked_at = now()
          WHERE invited_by = $1 AND accepted_at IS NULL AND declined_at IS NULL AND revoked_at IS NULL AND role <> ALL($2)",
    )
    .bind(user_id)
    .bind(keep)
    .execute(conn)
    .await?
    .rows_affected())
}

/// What the member may do now (their custom role's rights, if they hold one), their membership
/// locked as `current_role` locks it.
async fn current_rights(conn: &mut PgConnection, user_id: Uuid) -> Result<Rights> {
    let row: Option<(String, Option<Uuid>)> =
        sqlx::query_as("SELECT role, custom_role_id FROM memberships WHERE user_id = $1 FOR UPDATE").bind(user_id).fetch_optional(&mut *conn).await?;
    let (role, custom) = row.ok_or_else(|| AppError::NotFound("That person is not a member of this organization.".into()))?;
    match custom {
        Some(id) => roles::load(conn, id, false).await,
        None => Ok(Rights::BuiltIn(parse_role(&role)?)),
    }
}

async fn current_role(conn: &mut PgConnection, user_id: Uuid) -> Result<Role> {
    // FOR UPDATE: two admins editing the same person serialize instead of racing.
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM memberships WHERE user_id = $1 FOR UPDATE").bind(user_id).fetch_optional(conn).await?;
    let role = role.ok_or_else(|| AppError::NotFound("That person is not a member of this organization.".into()))?;
    parse_role(&role)
}

/// Locks every Owner row, so two concurrent demotions cannot both see "another owner left".
async fn ensure_another_owner(conn: &mut PgConnection, leaving: Uuid) -> Result<()> {
    let owners: Vec<Uuid> = sqlx::query_scalar("SELECT user_id FROM memberships WHERE role = 'owner' FOR UPDATE").fetch_all(conn).await?;
    if owners.iter().any(|o| *o != leaving) {
        Ok(())
    } else {
        Err(AppError::Conflict(FieldError::new("role", "An organization needs at least one Owner. Make someone else an Owner first.")).into())
    }
}

pub(crate) fn parse_role(s: &str) -> Result<Role> {
    s.parse().map_err(|e: tessera_domain::role::UnknownRole| crate::Error::Internal(e.to_string()))
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}
