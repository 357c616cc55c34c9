//! In-app notifications: what people are told about as it happens (an invitation, a role
//! change, a new member, a new API key). A change enqueues an event job in its own transaction
//! ([`notify`]); the job works out who to tell, stores one notification each (once, however
//! often the job runs), emails those who asked for it, and tells this server's open pages
//! ([`subscribe`]). Pages on other servers see it at their next check (see the stream route).

use crate::error::Result;
use crate::jobs::{self, Job, Lane, RunningJob};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use std::sync::OnceLock;
use tessera_domain::dto::{Notification, NotificationInbox, NotificationPreference};
use tessera_domain::{AppError, Permission, Role};
use time::OffsetDateTime;
use tokio::sync::broadcast;
use uuid::Uuid;

/// The kinds, with whether each emails by default and how the preference reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Invited,
    RoleChanged,
    MemberJoined,
    ApiKeyCreated,
    NewSignIn,
    WebhookDisabled,
    Billing,
}

impl Kind {
    pub const ALL: [Kind; 7] =
        [Kind::Invited, Kind::RoleChanged, Kind::MemberJoined, Kind::ApiKeyCreated, Kind::NewSignIn, Kind::WebhookDisabled, Kind::Billing];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Invited => "invited",
            Kind::RoleChanged => "role_changed",
            Kind::MemberJoined => "member_joined",
            Kind::ApiKeyCreated => "api_key_created",
            Kind::NewSignIn => "new_sign_in",
            Kind::WebhookDisabled => "webhook_disabled",
            Kind::Billing => "billing",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Invited => "When someone invites you to an organization",
            Kind::RoleChanged => "When your role in an organization changes",
            Kind::MemberJoined => "When someone joins an organization you administer",
            Kind::ApiKeyCreated => "When an API key is created in an organization you administer",
            Kind::NewSignIn => "When someone signs in to your account from a device or browser it hasn't used before",
            Kind::WebhookDisabled => "When a webhook endpoint of an organization you own is switched off after failing for too long",
            Kind::Billing => "Billing of an organization you administer: trial ending, failed payments, plan changes, receipts",
        }
    }

    /// Security-relevant kinds email unless switched off; the rest only when asked for.
    fn emails_by_default(self) -> bool {
        matches!(self, Kind::RoleChanged | Kind::ApiKeyCreated | Kind::NewSignIn | Kind::WebhookDisabled)
    }

    /// Whether people choose about email: an invitation is emailed anyway (it carries the
    /// link to accept), so a second mail is never offered.
    fn email_is_a_choice(self) -> bool {
        !matches!(self, Kind::Invited | Kind::Billing)
    }

    /// Mailed whatever the preference: a failed payment or a receipt must reach an
    /// administrator's inbox, not only the bell.
    fn always_emails(self) -> bool {
        self == Kind::Billing
    }

    pub fn parse(raw: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// Something that happened that people should hear about; the payload of a `notify` job.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// `email` was invited to the organization (told if the address has an account).
    Invited { tenant_id: Uuid, email: String, role: Role, by: Uuid },
    /// `user_id`'s role changed to `role`.
    /// `custom_role`: the organization's own role they now hold (then `role` is its base).
    RoleChanged { tenant_id: Uuid, user_id: Uuid, role: Role, custom_role: Option<String>, by: Option<Uuid> },
    /// `user_id` joined (its Owners and Admins are told).
    MemberJoined { tenant_id: Uuid, user_id: Uuid, role: Role },
    /// An API key named `name` was created by `by` (the other Owners and Admins are told).
    ApiKeyCreated { tenant_id: Uuid, name: String, by: Uuid },
    /// `user_id` signed in (password or emailed link), from `user_agent` at `ip`: they are
    /// told if that browser hadn't signed in to the account before (and it isn't their first).
    NewSignIn { user_id: Uuid, user_agent: Option<String>, ip: Option<std::net::IpAddr> },
    /// The webhook endpoint `endpoint_id` (at `url`) was switched off after failing for too
    /// long (the organization's Owners are told).
    WebhookDisabled { tenant_id: Uuid, endpoint_id: Uuid, url: String },
    /// Something about the organization's subscription (its Owners and Admins are told, and
    /// mailed, with a link to the billing page).
    Billing {
        tenant_id: Uuid,
        title: String,
        body: String,
        /// An invoice whose PDF goes with the mail (a receipt).
        #[serde(default)]
        invoice: Option<String>,
    },
}

impl Event {
    /// The organization it happened in; none for an account's own events.
    fn tenant_id(&self) -> Option<Uuid> {
        match self {
            Event::Invited { tenant_id, .. }
            | Event::RoleChanged { tenant_id, .. }
            | Event::MemberJoined { tenant_id, .. }
            | Event::ApiKeyCreated { tenant_id, .. }
            | Event::WebhookDisabled { tenant_id, .. }
            | Event::Billing { tenant_id, .. } => Some(*tenant_id),
            Event::NewSignIn { .. } => None,
        }
    }

    fn lane(&self) -> Lane {
        self.tenant_id().map_or(Lane::Deployment, Lane::Organization)
    }
}

/// Enqueues `event` in the transaction of the change it reports: an organization's
/// control-plane transaction (the job runs in its lane), or an account's (the deployment's).
pub(crate) async fn notify(conn: &mut PgConnection, event: Event) -> Result<()> {
    jobs::enqueue(conn, event.lane(), &Notify { event }).await?;
    Ok(())
}

/// "Firefox on Linux": what a notification says of a browser. Never the raw user agent,
/// which whoever signs in chooses (it would put their words into the account owner's mail).
fn device(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent else { return "an unknown device".into() };
    let browser = [("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari")]
        .iter()
        .find(|(marker, _)| ua.contains(marker))
        .map_or("a browser or app", |(_, name)| name);
    let system = [("Windows", "Windows"), ("Mac OS", "macOS"), ("Android", "Android"), ("iPhone", "iOS"), ("Linux", "Linux")]
        .iter()
        .find(|(marker, _)| ua.contains(marker))
        .map(|(_, name)| *name);
    match system {
        Some(system) => format!("{browser} on {system}"),
        None => browser.to_string(),
    }
}

/// The job that tells people about an [`Event`].
#[derive(Serialize, Deserialize)]
pub struct Notify {
    event: Event,
}

impl Notify {
    /// The job, for a transaction that enqueues it itself (a job's, through its outbox); its
    /// lane must be the event's organization's.
    pub(crate) fn of(event: Event) -> Self {
        Self { event }
    }
}

impl Job for Notify {
    const KIND: &'static str = "notify";

    async fn run(self, job: &RunningJob) -> Result<()> {
        let backend = &job.backend;
        // The organization is the job's lane, which the row policy let only that organization's
        // own transaction choose; a payload naming another is refused, not trusted.
        if job.lane != self.event.lane() {
            return Err(crate::Error::Internal("a notify job's event names another organization than its lane".into()));
        }
        let mut tx = match self.event.tenant_id() {
            Some(tenant_id) => backend.tenancy.maintenance_in("jobs", tenant_id).await?,
            None => backend.tenancy.maintenance("jobs").await?,
        };
        let conn = tx.conn();
        let (organization, slug) = match self.event.tenant_id() {
            Some(tenant_id) => {
                let found: Option<(String, String)> = sqlx::query_as("SELECT name, slug FROM tenants WHERE id = $1 AND status <> 'deleted'")
                    .bind(tenant_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                // Purged since: nobody left to tell.
                let Some(found) = found else { return Ok(()) };
                found
            }
            None => (String::new(), String::new()),
        };
        // (recipient, title, body, link)
        let mut told: Vec<(Uuid, String, String, String)> = Vec::new();
        let kind = match &self.event {
            Event::Invited { email, role, by, .. } => {
                let invitee: Option<Uuid> =
                    sqlx::query_scalar("SELECT id FROM users WHERE lower(email) = lower($1) AND email_verified_at IS NOT NULL")
                        .bind(email)
                        .fetch_optional(&mut *conn)
                        .await?;
                if let Some(invitee) = invitee {
                    let inviter = name_of(&mut *conn, *by).await?;
                    told.push((
                        invitee,
                        format!("{inviter} invited you to {organization}"),
                        format!("You would join as {}. Accept or decline from the link in the invitation email.", role.label()),
                        "/".into(),
                    ));
                }
                Kind::Invited
            }
            Event::RoleChanged { user_id, role, custom_role, by, .. } => {
                let by = match by {
                    Some(by) => name_of(&mut *conn, *by).await?,
                    None => "Single sign-on".into(),
                };
                told.push((
                    *user_id,
                    match custom_role {
                        Some(name) => format!("You are now {} in {organization}", name),
                        None => format!("You are now {} {} in {organization}", article(*role), role.label()),
                    },
                    format!("Changed by {by}."),
                    format!("/t/{slug}"),
                ));
                Kind::RoleChanged
            }
            Event::MemberJoined { user_id, role, tenant_id } => {
                let joiner = name_of(&mut *conn, *user_id).await?;
                for admin in administrators(conn, *tenant_id, Permission::ManageMembers).await?.into_iter().filter(|a| a != user_id) {
                    told.push((
                        admin,
                        format!("{joiner} joined {organization}"),
                        format!("As {} {}.", article(*role), role.label()),
                        format!("/t/{slug}/members"),
                    ));
                }
                Kind::MemberJoined
            }
            Event::ApiKeyCreated { name, by, tenant_id } => {
                let creator = name_of(&mut *conn, *by).await?;
                for admin in administrators(conn, *tenant_id, Permission::ManageApiKeys).await?.into_iter().filter(|a| a != by) {
                    told.push((
                        admin,
                        format!("{creator} created the API key \"{name}\" in {organization}"),
                        "If you don't recognise it, revoke it on the API keys page.".into(),
                        format!("/t/{slug}/api-keys"),
                    ));
                }
                Kind::ApiKeyCreated
            }
            Event::NewSignIn { user_id, user_agent, ip } => {
                // Sign-ins of the last 90 days, the one being reported included.
                let (from_here, all): (i64, i64) = sqlx::query_as(
                    "SELECT count(*) FILTER (WHERE user_agent IS NOT DISTINCT FROM $2), count(*) FROM security_events
                      WHERE user_id = $1 AND event IN ('login.succeeded', 'magic_link.used', 'oidc.signed_in') AND occurred_at > now() - interval '90 days'",
                )
                .bind(user_id)
                .bind(user_agent)
                .fetch_one(&mut *conn)
                .await?;
                if from_here == 1 && all > 1 {
                    let place = ip.map(|ip| format!(" at {ip}")).unwrap_or_default();
                    told.push((
                        *user_id,
                        "New sign-in to your account".into(),
                        format!(
                            "From {}{place}. If it wasn't you, change your password and sign out the sessions you don't recognise.",
                            device(user_agent.as_deref())
                        ),
                        "/account/sessions".into(),
                    ));
                }
                Kind::NewSignIn
            }
            Event::WebhookDisabled { tenant_id, endpoint_id, url } => {
                let owners: Vec<Uuid> = sqlx::query_scalar("SELECT user_id FROM memberships WHERE tenant_id = $1 AND role = 'owner'")
                    .bind(tenant_id)
                    .fetch_all(&mut *conn)
                    .await?;
                for owner in owners {
                    told.push((
                        owner,
                        format!("A webhook endpoint of {organization} was switched off"),
                        format!(
                            "Every delivery to {url} failed for too long, so it was switched off. Fix the endpoint, switch it back on, \
                             and replay the failed events from its page."
                        ),
                        format!("/t/{slug}/settings/webhooks/{endpoint_id}"),
                    ));
                }
                Kind::WebhookDisabled
            }
            Event::Billing { tenant_id, title, body, .. } => {
                for admin in administrators(conn, *tenant_id, Permission::ManageBilling).await? {
                    told.push((admin, title.clone(), body.clone(), format!("/t/{slug}/settings/billing")));
                }
                Kind::Billing
            }
        };
        let mut mails = Vec::new();
        for (user_id, title, body, link) in &told {
            let made = sqlx::query(
                "INSERT INTO notifications (id, user_id, tenant_id, kind, title, body, link, dedupe_key)
                 VALUES ($1, $2, $3, $4, left($5, 200), left($6, 2000), $7, $8) ON CONFLICT (dedupe_key) DO NOTHING",
            )
            .bind(Uuid::new_v4())
            .bind(user_id)
            .bind(self.event.tenant_id())
            .bind(kind.as_str())
            .bind(title)
            .bind(body)
            .bind(link)
            .bind(format!("{}:{user_id}", job.id))
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if made == 1 && wants_email(conn, *user_id, kind).await? {
                let email: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1").bind(user_id).fetch_one(&mut *conn).await?;
                let url = format!("{}{link}", backend.identity.public_url());
                mails.push(crate::email::templates::notification(&email, title, body, &url));
            }
        }
        if let (Event::Billing { invoice: Some(invoice), .. }, false) = (&self.event, mails.is_empty()) {
            if let Some(pdf) = crate::billing::pdf::attachment(&mut *conn, invoice, &organization).await? {
                for mail in &mut mails {
                    mail.attachments.push(pdf.clone());
                }
            }
        }
        for mail in &mails {
            backend.identity.queue_mail(conn, self.event.lane(), mail).await?;
        }
        tx.commit(0).await?;
        jobs::wake();
        for (user_id, ..) in told {
            let _ = channel().send(user_id);
        }
        Ok(())
    }
}

crate::register_job!(Notify);

/// How people see someone: their name, else their address.
async fn name_of(conn: &mut PgConnection, id: Uuid) -> Result<String> {
    let name: Option<String> =
        sqlx::query_scalar("SELECT COALESCE(NULLIF(display_name, ''), email) FROM users WHERE id = $1").bind(id).fetch_optional(conn).await?;
    Ok(name.unwrap_or_else(|| "Someone".into()))
}

fn article(role: Role) -> &'static str {
    if matches!(role, Role::Owner | Role::Admin) {
        "an"
    } else {
        "a"
    }
}

/// The members who may do `permission` in the organization: the built-in roles that include it,
/// and whoever holds a custom role that does.
async fn administrators(conn: &mut PgConnection, tenant_id: Uuid, permission: Permission) -> Result<Vec<Uuid>> {
    let roles: Vec<&str> = Role::ALL.into_iter().filter(|r| r.can(permission)).map(Role::as_str).collect();
    Ok(sqlx::query_scalar(
        "SELECT m.user_id FROM memberships m
          WHERE m.tenant_id = $1
            AND ((m.custom_role_id IS NULL AND m.role = ANY($2))
                 OR m.custom_role_id IN (SELECT r.id FROM roles r WHERE r.tenant_id = $1 AND $3 = ANY(r.permissions)))",
    )
    .bind(tenant_id)
    .bind(&roles)
    .bind(permission.name())
    .fetch_all(conn)
    .await?)
}

async fn wants_email(conn: &mut PgConnection, user_id: Uuid, kind: Kind) -> Result<bool> {
    if kind.always_emails() {
        return Ok(true);
    }
    if !kind.email_is_a_choice() {
        return Ok(false);
    }
    let chosen: Option<bool> = sqlx::query_scalar("SELECT email FROM notification_preferences WHERE user_id = $1 AND kind = $2")
        .bind(user_id)
        .bind(kind.as_str())
        .fetch_optional(conn)
        .await?;
    Ok(chosen.unwrap_or(kind.emails_by_default()))
}

/// Who has new notifications, as this server learns it (its workers made them).
fn channel() -> &'static broadcast::Sender<Uuid> {
    static CHANNEL: OnceLock<broadcast::Sender<Uuid>> = OnceLock::new();
    CHANNEL.get_or_init(|| broadcast::channel(1024).0)
}

/// Hears of each person this server's workers just notified (the live stream filters its own).
pub fn subscribe() -> broadcast::Receiver<Uuid> {
    channel().subscribe()
}

/// A person's own notifications, read and changed in transactions that handle only their
/// account (the row policies show no one else's).
#[derive(Clone)]
pub struct Notifications {
    pool: PgPool,
}

#[derive(sqlx::FromRow)]
struct NotificationRow {
    id: Uuid,
    kind: String,
    title: String,
    body: String,
    link: Option<String>,
    created_at: OffsetDateTime,
    read_at: Option<OffsetDateTime>,
}

impl Notifications {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The newest 50, how many are unread, and the email preferences.
    pub async fn inbox(&self, user_id: Uuid) -> Result<NotificationInbox> {
        let mut tx = crate::db::account_tx(&self.pool, true, user_id).await?;
        let rows: Vec<NotificationRow> = sqlx::query_as(
            "SELECT id, kind, title, body, link, created_at, read_at FROM notifications WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT 50",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        let unread = unread_in(&mut tx, user_id).await?;
        let chosen: Vec<(String, bool)> =
            sqlx::query_as("SELECT kind, email FROM notification_preferences WHERE user_id = $1").bind(user_id).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let notifications = rows
            .into_iter()
            .map(|row| Notification {
                id: row.id,
                kind: row.kind,
                title: row.title,
                body: row.body,
                link: row.link,
                created_at: crate::members::rfc3339(row.created_at),
                read: row.read_at.is_some(),
            })
            .collect();
        let preferences = Kind::ALL
            .into_iter()
            .filter(|kind| kind.email_is_a_choice())
            .map(|kind| NotificationPreference {
                kind: kind.as_str().into(),
                label: kind.label().into(),
                email: chosen.iter().find(|(k, _)| k == kind.as_str()).map_or(kind.emails_by_default(), |(_, email)| *email),
            })
            .collect();
        Ok(NotificationInbox { notifications, unread, preferences })
    }

    /// Unread notifications, counted up to 100.
    pub async fn unread(&self, user_id: Uuid) -> Result<i64> {
        let mut tx = crate::db::account_tx(&self.pool, true, user_id).await?;
        let unread = unread_in(&mut tx, user_id).await?;
        tx.commit().await?;
        Ok(unread)
    }

    /// Marks one read (`Some(id)`) or all of them; returns how many are still unread.
    pub async fn mark_read(&self, user_id: Uuid, id: Option<Uuid>) -> Result<i64> {
        let mut tx = crate::db::account_tx(&self.pool, false, user_id).await?;
        let found = sqlx::query(
            "UPDATE notifications SET read_at = COALESCE(read_at, now()) WHERE user_id = $1 AND ($2::uuid IS NULL OR id = $2) AND read_at IS NULL",
        )
        .bind(user_id)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if let (Some(id), 0) = (id, found) {
            let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM notifications WHERE id = $1)").bind(id).fetch_one(&mut *tx).await?;
            if !exists {
                return Err(AppError::NotFound("That notification doesn't exist (any more).".into()).into());
            }
        }
        let unread = unread_in(&mut tx, user_id).await?;
        tx.commit().await?;
        // The person's other open pages (on this server) show the new count at once.
        let _ = channel().send(user_id);
        Ok(unread)
    }

    /// Whether notifications of `kind` also email this person.
    pub async fn set_email(&self, user_id: Uuid, kind: &str, email: bool) -> Result<()> {
        let kind = Kind::parse(kind)
            .filter(|kind| kind.email_is_a_choice())
            .ok_or_else(|| AppError::Invalid(tessera_domain::input::FieldError::new("kind", "There is no such kind of notification.")))?;
        let mut tx = crate::db::account_tx(&self.pool, false, user_id).await?;
        sqlx::query(
            "INSERT INTO notification_preferences (user_id, kind, email) VALUES ($1, $2, $3) ON CONFLICT (user_id, kind) DO UPDATE SET email = $3",
        )
        .bind(user_id)
        .bind(kind.as_str())
        .bind(email)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn unread_in(conn: &mut PgConnection, user_id: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM (SELECT 1 FROM notifications WHERE user_id = $1 AND read_at IS NULL LIMIT 100) unread")
        .bind(user_id)
        .fetch_one(conn)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_from_its_name() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("nope"), None);
    }
}
