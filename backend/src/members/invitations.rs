//! Joining an organization takes the person's consent. Owners and Admins invite an address
//! with a role; the person accepts from the emailed link, or from their home page once they
//! have confirmed that address. Until then they are not a member: nobody can put them in an
//! organization, sign them out in its name, or show them its data.
//!
//! The token is 32 random bytes, only its SHA-256 is stored, and an invitation can be found
//! without being inside the organization only by presenting the token, or by the confirmed
//! address it was sent to (see the `invitations` policies).

use crate::audit::AuditEntry;
use crate::ctx::RequestMeta;
use crate::error::Result;
use crate::identity::links::{digest, new_secret};
use crate::identity::throttle::{self, Limit};
use crate::identity::{events, Identity};
use crate::tenancy::{SystemActor, Tenancy};
use crate::Org;
use serde_json::json;
use sqlx::PgConnection;
use tessera_domain::dto::{CurrentUser, Invitation, InvitationPreview, InvitationState};
use tessera_domain::input::{Email, FieldError};
use tessera_domain::{AppError, Permission, Role};
use time::OffsetDateTime;
use uuid::Uuid;

/// How long an invitation can wait for its answer.
pub const LIFETIME: time::Duration = time::Duration::days(7);
/// Invitations (and resends) an organization may send: enough for onboarding a whole
/// department, too few to turn Tessera into a spam relay.
const INVITATIONS_PER_TENANT: Limit = Limit { max: 100, window_minutes: 60 };
/// Invitation mails one address may receive from one organization in a day, resends included.
const INVITATIONS_PER_ADDRESS: Limit = Limit { max: 5, window_minutes: 24 * 60 };

/// How the recipient points at an invitation: the emailed token, or (signed in with the
/// confirmed address it was sent to) its id.
#[derive(Clone, Debug)]
pub enum InvitationKey {
    Token(String),
    Id(Uuid),
}

/// Invites `email` to the organization as `role`; inviting an address that already has an
/// open invitation sends it again (with a new link and the new role).
pub async fn invite(org: &Org, identity: &Identity, email: &str, role: Role) -> Result<Invitation> {
    // Checked before validating, so a role that may not invite learns that first.
    org.require(Permission::ManageMembers)?;
    let email = Email::parse(email)?;
    if !org.may_assign(role) {
        return Err(AppError::Forbidden(refusal(role, "invite someone as")).into());
    }
    let mut tx = org.control_write(Permission::ManageMembers).await?;
    ensure_confirmed_inviter(tx.conn(), org.user_id).await?;
    let already_member: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id WHERE lower(u.email) = $1)")
            .bind(email.as_str())
            .fetch_one(tx.conn())
            .await?;
    if already_member {
        return Err(AppError::Conflict(FieldError::new("email", "That person is already a member of this organization.")).into());
    }
    count_sending(tx.conn(), org.tenant.id, email.as_str()).await?;
    let token = new_secret();
    let expires_at = OffsetDateTime::now_utc() + LIFETIME;
    let previous: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT id, role FROM invitations WHERE email = $1 AND accepted_at IS NULL AND declined_at IS NULL AND revoked_at IS NULL FOR UPDATE",
    )
    .bind(email.as_str())
    .fetch_optional(tx.conn())
    .await?;
    // A new invitation takes a seat (one replacing an open one keeps that one's).
    if previous.is_none() {
        crate::billing::account::require_seat(tx.conn(), org.tenancy().billing(), org.tenant.id, org.tenant.billing.as_ref(), true).await?;
    }
    let (id, entry) = match previous {
        Some((id, old_role)) => {
            // Inviting again replaces the open invitation, so it takes the right to withdraw it.
            if !org.may_assign(super::parse_role(&old_role)?) {
                return Err(AppError::Forbidden("That person has an open invitation to become an Owner; only an Owner can change it.".into()).into());
            }
            sqlx::query("UPDATE invitations SET role = $2, token_hash = $3, sent_at = now(), expires_at = $4, invited_by = $5 WHERE id = $1")
                .bind(id)
                .bind(role.as_str())
                .bind(digest(&token))
                .bind(expires_at)
                .bind(org.user_id)
                .execute(tx.conn())
                .await?;
            (
                id,
                AuditEntry::new(
                    "invitation.resent",
                    "invitation",
                    id,
                    json!({ "email": { "new": email.as_str() }, "role": { "old": old_role, "new": role.as_str() } }),
                ),
            )
        }
        None => {
            // Two admins inviting the same address at once: the second finds the first's row.
            let id: Uuid = sqlx::query_scalar(
                "INSERT INTO invitations (tenant_id, email, role, token_hash, invited_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (tenant_id, email) WHERE accepted_at IS NULL AND declined_at IS NULL AND revoked_at IS NULL DO NOTHING
                 RETURNING id",
            )
            .bind(org.tenant.id)
            .bind(email.as_str())
            .bind(role.as_str())
            .bind(digest(&token))
            .bind(org.user_id)
            .bind(expires_at)
            .fetch_optional(tx.conn())
            .await?
            .ok_or_else(|| {
                AppError::Conflict(FieldError::new("email", "Someone else invited that address just now. Check the pending invitations."))
            })?;
            (
                id,
                AuditEntry::new("invitation.sent", "invitation", id, json!({ "email": { "new": email.as_str() }, "role": { "new": role.as_str() } })),
            )
        }
    };
    let inviter = inviter_label(tx.conn(), org.user_id).await?;
    send(tx.conn(), org, identity, email.as_str(), &inviter, role, &token, expires_at).await?;
    let event = crate::notifications::Event::Invited { tenant_id: org.tenant.id, email: email.as_str().to_string(), role, by: org.user_id };
    crate::notifications::notify(tx.conn(), event).await?;
    tx.commit(entry).await?;
    crate::jobs::wake();
    Ok(Invitation {
        id,
        email: email.as_str().to_string(),
        role,
        invited_by: Some(inviter),
        sent_at: super::rfc3339(OffsetDateTime::now_utc()),
        expires_at: super::rfc3339(expires_at),
        expired: false,
    })
}

#[derive(sqlx::FromRow)]
struct OpenInvitationRow {
    id: Uuid,
    email: String,
    role: String,
    invited_by: Option<String>,
    sent_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    expired: bool,
}

/// The organization's open invitations, newest first (expired ones too, so they can be resent).
pub async fn list(org: &Org) -> Result<Vec<Invitation>> {
    let mut tx = org.control_read(Permission::ManageMembers).await?;
    let rows: Vec<OpenInvitationRow> = sqlx::query_as(
        "SELECT i.id, i.email, i.role, COALESCE(u.display_name, u.email) AS invited_by, i.sent_at, i.expires_at, i.expires_at <= now() AS expired
           FROM invitations i LEFT JOIN users u ON u.id = i.invited_by
          WHERE i.accepted_at IS NULL AND i.declined_at IS NULL AND i.revoked_at IS NULL
          ORDER BY i.sent_at DESC",
    )
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter()
        .map(|OpenInvitationRow { id, email, role, invited_by, sent_at, expires_at, expired }| {
            Ok(Invitation {
                id,
                email,
                role: super::parse_role(&role)?,
                invited_by,
                sent_at: super::rfc3339(sent_at),
                expires_at: super::rfc3339(expires_at),
                expired,
            })
        })
        .collect()
}

/// Sends an open invitation again: a new link (the old one stops working), a fresh week.
pub async fn resend(org: &Org, identity: &Identity, id: Uuid) -> Result<()> {
    let mut tx = org.control_write(Permission::ManageMembers).await?;
    ensure_confirmed_inviter(tx.conn(), org.user_id).await?;
    let role = open_invitation_role(tx.conn(), id).await?;
    if !org.may_assign(role) {
        return Err(AppError::Forbidden(refusal(role, "resend an invitation as")).into());
    }
    let to: String = sqlx::query_scalar("SELECT email FROM invitations WHERE id = $1").bind(id).fetch_one(tx.conn()).await?;
    count_sending(tx.conn(), org.tenant.id, &to).await?;
    let token = new_secret();
    let expires_at = OffsetDateTime::now_utc() + LIFETIME;
    let email: String = sqlx::query_scalar("UPDATE invitations SET token_hash = $2, sent_at = now(), expires_at = $3 WHERE id = $1 RETURNING email")
        .bind(id)
        .bind(digest(&token))
        .bind(expires_at)
        .fetch_one(tx.conn())
        .await?;
    let inviter = inviter_label(tx.conn(), org.user_id).await?;
    send(tx.conn(), org, identity, &email, &inviter, role, &token, expires_at).await?;
    tx.commit(AuditEntry::new("invitation.resent", "invitation", id, json!({ "email": { "new": &email } }))).await?;
    crate::jobs::wake();
    Ok(())
}

/// Withdraws an open invitation: its link stops working at once.
pub async fn revoke(org: &Org, id: Uuid) -> Result<()> {
    let mut tx = org.control_write_removal(Permission::ManageMembers).await?;
    let role = open_invitation_role(tx.conn(), id).await?;
    if !org.may_assign(role) {
        return Err(AppError::Forbidden(refusal(role, "withdraw an invitation as")).into());
    }
    let email: String =
        sqlx::query_scalar("UPDATE invitations SET revoked_at = now() WHERE id = $1 RETURNING email").bind(id).fetch_one(tx.conn()).await?;
    tx.commit(AuditEntry::new("invitation.revoked", "invitation", id, json!({ "email": { "old": email } }))).await
}

/// What an emailed link invites to. Anyone holding the link may see this: it went to the
/// invited inbox, and the token can't be guessed.
pub async fn preview(tenancy: &Tenancy, token: &str) -> Result<InvitationPreview> {
    let mut read = tenancy.system_read(&[]).await?;
    present_token(read.conn(), token).await?;
    let found = previews(read.conn(), "i.token_hash = $1", Some(digest(token))).await?.into_iter().next();
    found.ok_or_else(invalid_link)
}

/// The open invitations sent to a signed-in person's confirmed address (their home page).
pub async fn for_user(tenancy: &Tenancy, user: &CurrentUser) -> Result<Vec<InvitationPreview>> {
    if !user.email_verified {
        return Ok(Vec::new());
    }
    let mut read = tenancy.system_read(&[]).await?;
    confirmed_address(read.conn(), user).await?;
    let open = previews(
        read.conn(),
        "i.accepted_at IS NULL AND i.declined_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now() AND t.status = 'active'",
        None,
    )
    .await?;
    Ok(open)
}

/// Accepts an invitation for the signed-in `user`, who must be the person it was sent to.
/// Returns the organization's slug. Accepting through the emailed link also confirms the
/// address (the link could only be read in that inbox).
pub async fn accept(tenancy: &Tenancy, user: &CurrentUser, key: &InvitationKey, meta: &RequestMeta) -> Result<String> {
    let (id, tenant_id) = locate(tenancy, Some(user), key).await?;
    let mut tx = tenancy.system_write(tenant_id, SystemActor::Person(Some(user.id), meta.clone())).await?;
    let invitation = open_for_answer(tx.conn(), id, key).await?;
    if invitation.accepted_by == Some(user.id) {
        // A second click on "Accept" (or the link opened again): already done.
        return Ok(invitation.slug);
    }
    invitation.ensure_open()?;
    if invitation.email != user.email.to_lowercase() {
        return Err(AppError::Forbidden(format!(
            "This invitation is for {}, but you're signed in as {}. Sign out, then open the invitation again and sign in (or sign up) with {}.",
            invitation.email, user.email, invitation.email
        ))
        .into());
    }
    match invitation.tenant_status.as_str() {
        "active" => {}
        "moving" => {
            return Err(AppError::Unavailable(format!(
                "{} is being moved to another database right now. Try again in a minute.",
                invitation.organization
            ))
            .into())
        }
        _ => {
            return Err(AppError::Conflict(FieldError::new(
                "invitation",
                format!("{} isn't taking new members (it is suspended or being deleted).", invitation.organization),
            ))
            .into())
        }
    }
    // The invitation speaks for whoever sent it: if they have since left, or may no longer
    // give this role, it is void (so nobody can invite themselves back in on the way out).
    let inviter = match (&invitation.inviter_role, &invitation.inviter_custom) {
        (None, _) => None,
        (Some(_), Some(permissions)) => Some(tessera_domain::Rights::Custom(tessera_domain::CustomRole {
            id: Uuid::nil(),
            name: String::new(),
            permissions: permissions.iter().filter_map(|p| tessera_domain::Permission::parse(p)).collect(),
        })),
        (Some(role), None) => role.parse::<Role>().ok().map(tessera_domain::Rights::BuiltIn),
    };
    let invited_as = invitation.role().ok_or_else(|| crate::Error::Internal(format!("invitation {id} has role {:?}", invitation.role)))?;
    if !inviter.is_some_and(|r| r.may_assign(&tessera_domain::Rights::BuiltIn(invited_as))) {
        return Err(AppError::Conflict(FieldError::new(
            "invitation",
            format!(
                "This invitation to {} is no longer valid: whoever sent it can't invite people as {} any more. Ask an admin for a new one.",
                invitation.organization,
                invited_as.label()
            ),
        ))
        .into());
    }
    if !user.email_verified && matches!(key, InvitationKey::Token(_)) {
        crate::identity::confirm_email(tx.conn(), user.id).await?;
        events::record(tx.conn(), events::Event::EmailVerified, Some(user.id), Some(&user.email), meta).await?;
    }
    crate::billing::account::require_room_for_member(tx.conn(), tenancy, tenant_id).await?;
    let joined = sqlx::query("INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, user_id) DO NOTHING")
        .bind(tenant_id)
        .bind(user.id)
        .bind(&invitation.role)
        .execute(tx.conn())
        .await?
        .rows_affected()
        == 1;
    sqlx::query("UPDATE invitations SET accepted_at = now(), accepted_by = $2 WHERE id = $1").bind(id).bind(user.id).execute(tx.conn()).await?;
    if joined {
        let added = AuditEntry::new(
            "membership.added",
            "user",
            user.id,
            json!({ "email": { "new": &invitation.email }, "role": { "new": &invitation.role }, "via": { "new": "invitation" } }),
        );
        tx.record(added).await?;
        let role = invitation.role.parse().unwrap_or(Role::Viewer);
        crate::notifications::notify(tx.conn(), crate::notifications::Event::MemberJoined { tenant_id, user_id: user.id, role }).await?;
        let change = crate::webhooks::events::MemberChange::now(crate::webhooks::events::MemberEventKind::Added, user.id, role, None);
        crate::webhooks::events::member_changed(tx.conn(), tenant_id, change).await?;
        crate::billing::account::seats_changed(tx.conn(), tenant_id).await?;
    }
    tx.commit(AuditEntry::new("invitation.accepted", "invitation", id, json!({ "email": { "new": &invitation.email } }))).await?;
    crate::jobs::wake();
    Ok(invitation.slug)
}

/// Declines an invitation. With the emailed link anyone holding it may (it reached the
/// invited inbox); by id, only the signed-in person it was sent to.
pub async fn decline(tenancy: &Tenancy, user: Option<&CurrentUser>, key: &InvitationKey, meta: &RequestMeta) -> Result<()> {
    let (id, tenant_id) = locate(tenancy, user, key).await?;
    let mut tx = tenancy.system_write(tenant_id, SystemActor::Person(user.map(|u| u.id), meta.clone())).await?;
    let invitation = open_for_answer(tx.conn(), id, key).await?;
    if invitation.declined {
        return Ok(());
    }
    invitation.ensure_open()?;
    sqlx::query("UPDATE invitations SET declined_at = now() WHERE id = $1").bind(id).execute(tx.conn()).await?;
    tx.commit(AuditEntry::new("invitation.declined", "invitation", id, json!({ "email": { "old": &invitation.email } }))).await
}

fn invalid_link() -> crate::Error {
    AppError::NotFound("This invitation link isn't valid. Check it was copied whole, or ask for a new invitation.".into()).into()
}

/// Only someone whose own address is confirmed may send mail in the organization's name.
/// Why the actor may not give `role` through an invitation: an Owner's is an Owner's to give;
/// any other needs its every right.
fn refusal(role: Role, what: &str) -> String {
    if role == Role::Owner {
        format!("Only an Owner can {what} an Owner.")
    } else {
        format!("You can't {what} {} {}: that role has rights you don't have yourself.", if role == Role::Admin { "an" } else { "a" }, role.label())
    }
}

async fn ensure_confirmed_inviter(conn: &mut PgConnection, user_id: Uuid) -> Result<()> {
    let confirmed: bool = sqlx::query_scalar("SELECT email_verified_at IS NOT NULL FROM users WHERE id = $1").bind(user_id).fetch_one(conn).await?;
    if !confirmed {
        return Err(AppError::Forbidden("Confirm your own email address first (we sent you a link); then you can invite people.".into()).into());
    }
    Ok(())
}

/// Counts one invitation mail: per organization per hour, and per address per day.
async fn count_sending(conn: &mut PgConnection, tenant_id: Uuid, to: &str) -> Result<()> {
    let per_address = throttle::record(conn, &format!("invite:email:{tenant_id}:{to}"), INVITATIONS_PER_ADDRESS).await?;
    if per_address.over(INVITATIONS_PER_ADDRESS) {
        return Err(AppError::RateLimited(format!(
            "{to} has been sent {} invitations from this organization today, the most it can get. Try again tomorrow.",
            INVITATIONS_PER_ADDRESS.max
        ))
        .into());
    }
    let count = throttle::record(conn, &format!("invite:tenant:{tenant_id}"), INVITATIONS_PER_TENANT).await?;
    if count.over(INVITATIONS_PER_TENANT) {
        let minutes = (count.seconds_left.max(1) + 59) / 60;
        return Err(AppError::RateLimited(format!(
            "This organization has sent {} invitations in the last hour, the most it can. Try again in {minutes} minute{}.",
            INVITATIONS_PER_TENANT.max,
            if minutes == 1 { "" } else { "s" }
        ))
        .into());
    }
    Ok(())
}

async fn inviter_label(conn: &mut PgConnection, user_id: Uuid) -> Result<String> {
    let (email, name): (String, Option<String>) =
        sqlx::query_as("SELECT email, display_name FROM users WHERE id = $1").bind(user_id).fetch_one(conn).await?;
    Ok(match name.filter(|n| !n.trim().is_empty()) {
        Some(name) => format!("{name} ({email})"),
        None => email,
    })
}

/// Queues the invitation mail in the organization's lane, with the invitation's transaction.
#[allow(clippy::too_many_arguments)]
async fn send(
    conn: &mut PgConnection,
    org: &Org,
    identity: &Identity,
    to: &str,
    inviter: &str,
    role: Role,
    token: &str,
    expires_at: OffsetDateTime,
) -> Result<()> {
    let url = format!("{}/invite?token={token}", identity.public_url());
    let expires_on = format!("{} {} {}", expires_at.day(), expires_at.month(), expires_at.year());
    let mail = crate::email::templates::invitation(to, inviter, &org.tenant.name, role.label(), &url, &expires_on);
    identity.queue_mail(conn, crate::jobs::Lane::Organization(org.tenant.id), &mail).await
}

async fn open_invitation_role(conn: &mut PgConnection, id: Uuid) -> Result<Role> {
    let role: Option<String> = sqlx::query_scalar(
        "SELECT role FROM invitations WHERE id = $1 AND accepted_at IS NULL AND declined_at IS NULL AND revoked_at IS NULL FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    super::parse_role(&role.ok_or_else(|| AppError::NotFound("That invitation isn't open any more (it was answered or withdrawn).".into()))?)
}

async fn present_token(conn: &mut PgConnection, token: &str) -> Result<()> {
    crate::db::set_local(conn, &[(crate::db::Setting::InvitationHash, &crate::db::hex(&digest(token)))]).await
}

async fn confirmed_address(conn: &mut PgConnection, user: &CurrentUser) -> Result<()> {
    crate::db::set_local(conn, &[(crate::db::Setting::ConfirmedEmail, &user.email.to_lowercase())]).await
}

/// Finds which invitation (and organization) the recipient means, through the policies that
/// let only the token's holder, or the confirmed address, see it.
async fn locate(tenancy: &Tenancy, user: Option<&CurrentUser>, key: &InvitationKey) -> Result<(Uuid, Uuid)> {
    let mut read = tenancy.system_read(&[]).await?;
    let found: Option<(Uuid, Uuid)> = match key {
        InvitationKey::Token(token) => {
            present_token(read.conn(), token).await?;
            sqlx::query_as("SELECT id, tenant_id FROM invitations WHERE token_hash = $1").bind(digest(token)).fetch_optional(read.conn()).await?
        }
        InvitationKey::Id(id) => match user.filter(|u| u.email_verified) {
            Some(user) => {
                confirmed_address(read.conn(), user).await?;
                sqlx::query_as("SELECT id, tenant_id FROM invitations WHERE id = $1").bind(id).fetch_optional(read.conn()).await?
            }
            None => None,
        },
    };
    drop(read);
    found.ok_or_else(invalid_link)
}

struct Answerable {
    email: String,
    role: String,
    /// The inviter's role in the organization now (None if they left or were deleted).
    inviter_role: Option<String>,
    /// The permissions of the custom role the inviter holds, if any.
    inviter_custom: Option<Vec<String>>,
    slug: String,
    organization: String,
    tenant_status: String,
    expires_at: OffsetDateTime,
    accepted_by: Option<Uuid>,
    accepted: bool,
    declined: bool,
    revoked: bool,
}

impl Answerable {
    fn role(&self) -> Option<Role> {
        self.role.parse().ok()
    }

    fn ensure_open(&self) -> Result<()> {
        let closed = |m: String| -> Result<()> { Err(AppError::Conflict(FieldError::new("invitation", m)).into()) };
        if self.revoked {
            return closed(format!("This invitation to {} was withdrawn. Ask them for a new one if you still need access.", self.organization));
        }
        if self.accepted {
            return closed("This invitation was already accepted by another account.".into());
        }
        if self.declined {
            return closed(format!("This invitation to {} was declined. Ask them for a new one if you changed your mind.", self.organization));
        }
        if self.expires_at <= OffsetDateTime::now_utc() {
            return closed(format!(
                "This invitation to {} expired on {} {} {}. Ask whoever invited you to send it again.",
                self.organization,
                self.expires_at.day(),
                self.expires_at.month(),
                self.expires_at.year()
            ));
        }
        Ok(())
    }
}

/// Locks the invitation (and, shared, its organization's row, so a deletion or move can't
/// slip in between) inside the organization's control transaction. With a token, the token
/// must still be the invitation's: a resend replaces it.
async fn open_for_answer(conn: &mut PgConnection, id: Uuid, key: &InvitationKey) -> Result<Answerable> {
    #[derive(sqlx::FromRow)]
    struct Row {
        email: String,
        role: String,
        inviter_role: Option<String>,
        inviter_custom: Option<Vec<String>>,
        slug: String,
        name: String,
        status: String,
        expires_at: OffsetDateTime,
        accepted_by: Option<Uuid>,
        accepted: bool,
        declined: bool,
        revoked: bool,
    }
    let hash = match key {
        InvitationKey::Token(token) => Some(digest(token)),
        InvitationKey::Id(_) => None,
    };
    let row: Option<Row> = sqlx::query_as(
        "SELECT i.email, i.role, m.role AS inviter_role,
                (SELECT r.permissions FROM roles r WHERE r.id = m.custom_role_id AND r.tenant_id = m.tenant_id) AS inviter_custom,
                t.slug, t.name, t.status, i.expires_at, i.accepted_by,
                i.accepted_at IS NOT NULL AS accepted, i.declined_at IS NOT NULL AS declined, i.revoked_at IS NOT NULL AS revoked
           FROM invitations i
           JOIN tenants t ON t.id = i.tenant_id
           LEFT JOIN memberships m ON m.tenant_id = i.tenant_id AND m.user_id = i.invited_by
          WHERE i.id = $1 AND t.status <> 'deleted' AND ($2::bytea IS NULL OR i.token_hash = $2)
            FOR UPDATE OF i FOR SHARE OF t",
    )
    .bind(id)
    .bind(hash)
    .fetch_optional(conn)
    .await?;
    let row = row.ok_or_else(invalid_link)?;
    Ok(Answerable {
        email: row.email,
        role: row.role,
        inviter_role: row.inviter_role,
        inviter_custom: row.inviter_custom,
        slug: row.slug,
        organization: row.name,
        tenant_status: row.status,
        expires_at: row.expires_at,
        accepted_by: row.accepted_by,
        accepted: row.accepted,
        declined: row.declined,
        revoked: row.revoked,
    })
}

async fn previews(conn: &mut PgConnection, condition: &str, hash: Option<Vec<u8>>) -> Result<Vec<InvitationPreview>> {
    type Row = (Uuid, String, String, Option<String>, String, String, OffsetDateTime, bool, bool, bool);
    let sql = format!(
        "SELECT i.id, t.name, t.slug, CASE WHEN u.id IS NULL THEN NULL
                                            WHEN coalesce(u.display_name, '') = '' THEN u.email
                                            ELSE u.display_name || ' (' || u.email || ')' END,
                i.email, i.role, i.expires_at, i.accepted_at IS NOT NULL, i.declined_at IS NOT NULL, i.revoked_at IS NOT NULL
           FROM invitations i
           JOIN tenants t ON t.id = i.tenant_id AND t.status <> 'deleted'
           LEFT JOIN users u ON u.id = i.invited_by
          WHERE {condition}
          ORDER BY i.sent_at DESC"
    );
    let mut query = sqlx::query_as::<_, Row>(&sql);
    if let Some(hash) = hash {
        query = query.bind(hash);
    }
    let now = OffsetDateTime::now_utc();
    query
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(|(id, organization, slug, inviter, email, role, expires_at, accepted, declined, revoked)| {
            let state = if accepted {
                InvitationState::Accepted
            } else if declined {
                InvitationState::Declined
            } else if revoked {
                InvitationState::Withdrawn
            } else if expires_at <= now {
                InvitationState::Expired
            } else {
                InvitationState::Pending
            };
            Ok(InvitationPreview {
                id,
                organization,
                slug,
                inviter,
                email,
                role: super::parse_role(&role)?,
                expires_at: super::rfc3339(expires_at),
                state,
            })
        })
        .collect()
}
