//! Data shapes the server sends to the UI.

use crate::Role;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CurrentUser {
    pub id: Uuid,
    pub email: String,
    pub display_name: Option<String>,
    /// Whether they followed the confirmation link (or signed in by email link).
    pub email_verified: bool,
}

impl CurrentUser {
    pub fn label(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.email)
    }
}

/// Who is logged in and where they belong: everything the header and home page need, in one call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub user: CurrentUser,
    pub orgs: Vec<OrgSummary>,
    /// Unread notifications (the bell), counted up to 100.
    pub unread_notifications: i64,
}

/// Something a person was told about: an invitation, a role change, a new member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: Uuid,
    pub kind: String,
    pub title: String,
    pub body: String,
    /// A path inside the app to follow, if any.
    pub link: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    pub read: bool,
}

/// A person's notifications, newest first, and which kinds also email them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationInbox {
    pub notifications: Vec<Notification>,
    pub unread: i64,
    pub preferences: Vec<NotificationPreference>,
}

/// Whether a kind of notification also sends an email.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationPreference {
    pub kind: String,
    /// As people read it: "When you are invited to an organization".
    pub label: String,
    pub email: bool,
}

/// One organization in the tenant switcher.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSummary {
    pub slug: String,
    pub name: String,
    /// Their built-in role (`viewer` under a custom role).
    pub role: Role,
    /// The name of the organization's own role they hold, if any.
    #[serde(default)]
    pub custom_role: Option<String>,
}

impl OrgSummary {
    /// Their role's name, as people see it.
    pub fn role_label(&self) -> &str {
        self.custom_role.as_deref().unwrap_or(self.role.label())
    }
}

/// What every page inside `/t/{slug}` knows about where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgContext {
    pub slug: String,
    pub name: String,
    /// What they may do here: the pages ask it what to show (`rights.can(..)`).
    pub rights: crate::Rights,
    /// A payment problem everyone in the organization should see (a banner; Owners and
    /// Admins get a "Fix payment" button with it).
    pub billing_alert: Option<String>,
}

/// The organization's overview page: how much is in it. (Only that page pays for counting.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgOverview {
    pub project_count: i64,
    pub member_count: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectSummary {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub created_by: String,
    /// RFC 3339, so both sides format it without a time-zone database.
    pub created_at: String,
    /// When it last changed (RFC 3339); an edit made from this version sends it back, and is
    /// refused if someone changed the project in between.
    pub updated_at: String,
    /// Whether whoever asked may change, share and delete it (their own project, a project
    /// admin's grant, or an Admin's or Owner's right; for an API key, also its `projects:write`
    /// scope).
    pub can_change: bool,
    /// Who can see it: the whole organization, or only people given access.
    pub visibility: crate::access::Visibility,
    /// The strongest grant whoever asked holds on it (their own or a group's), if any.
    pub your_grant: Option<crate::access::ProjectRole>,
    /// Whether whoever asked may write documents in it.
    pub can_write_documents: bool,
}

/// Who has access to a project, as its sharing panel shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectAccess {
    pub project_id: Uuid,
    pub visibility: crate::access::Visibility,
    /// Grants to people and groups, people first, each by name.
    pub grants: Vec<ProjectGrant>,
    /// Whether whoever asked may change who has access.
    pub can_share: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectGrant {
    pub id: Uuid,
    pub grantee: Grantee,
    pub role: crate::access::ProjectRole,
    /// Who gave it (a name), if they still exist.
    pub granted_by: Option<String>,
    pub granted_at: String,
}

/// Whom a grant is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Grantee {
    Member { user_id: Uuid, name: String, email: String },
    Group { group_id: Uuid, name: String, members: i64 },
}

impl Grantee {
    pub fn name(&self) -> &str {
        match self {
            Grantee::Member { name, .. } | Grantee::Group { name, .. } => name,
        }
    }

    /// As forms send it back: `user:<id>` or `group:<id>`.
    pub fn key(&self) -> String {
        match self {
            Grantee::Member { user_id, .. } => format!("user:{user_id}"),
            Grantee::Group { group_id, .. } => format!("group:{group_id}"),
        }
    }
}

/// A group of members, which projects can be shared with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Group {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    /// The identity provider's group it mirrors: its members are then set at each single
    /// sign-on, not by hand.
    pub idp_group: Option<String>,
    pub members: Vec<GroupMember>,
    /// How many projects it has access to.
    pub projects: i64,
    pub created_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupMember {
    pub user_id: Uuid,
    pub name: String,
    pub email: String,
    pub added_at: String,
}

/// A document inside a project, all of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Document {
    pub id: Uuid,
    pub project_id: Uuid,
    pub title: String,
    pub body: String,
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
    pub updated_by: String,
    /// RFC 3339; an edit made from this version sends it back, and is refused if someone
    /// changed the document in between.
    pub updated_at: String,
    /// Whether whoever asked may change and delete it (their own document, or an Admin's or
    /// Owner's right; for an API key, also its `documents:write` scope).
    pub can_change: bool,
}

/// A document as a list shows it: the start of its text, never all of it, so nobody edits
/// from a list and cuts a document short. Read the document ([`Document`]) to edit it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocumentSummary {
    pub id: Uuid,
    pub project_id: Uuid,
    pub title: String,
    /// The first 280 characters of the text.
    pub excerpt: String,
    /// Whether the text goes on past the excerpt.
    pub truncated: bool,
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
    pub updated_by: String,
    /// RFC 3339.
    pub updated_at: String,
    /// As in [`Document`].
    pub can_change: bool,
}

/// A project's documents as its page shows them, with whether the reader may write new ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentList {
    pub documents: Vec<DocumentSummary>,
    pub can_write: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: Option<String>,
    /// Their built-in role (`viewer` under a custom role, which then decides).
    pub role: Role,
    /// The organization's own role they hold, if any.
    pub custom_role: Option<RoleRef>,
    pub joined_at: String,
}

impl Member {
    /// Their role's name, as people see it.
    pub fn role_label(&self) -> &str {
        self.custom_role.as_ref().map_or(self.role.label(), |r| r.name.as_str())
    }

    /// As the role picker names it: `admin`, or `custom:<id>`.
    pub fn role_key(&self) -> String {
        self.custom_role.as_ref().map_or(self.role.as_str().to_string(), |r| format!("custom:{}", r.id))
    }
}

/// A custom role, by id and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleRef {
    pub id: Uuid,
    pub name: String,
}

/// One of the organization's own roles, as the roles page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomRoleInfo {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    #[serde(deserialize_with = "crate::role::known_permissions")]
    pub permissions: Vec<crate::Permission>,
    /// How many members hold it.
    pub holders: i64,
    /// Whether whoever asked may change or delete it (they have every right it gives).
    pub can_edit: bool,
}

/// The roles page: the built-in roles (fixed), the organization's own, and what a role can
/// be made of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolesOverview {
    pub built_in: Vec<(Role, Vec<crate::Permission>)>,
    pub custom: Vec<CustomRoleInfo>,
    /// The permissions a custom role is chosen from.
    #[serde(deserialize_with = "crate::role::known_permissions")]
    pub catalogue: Vec<crate::Permission>,
    /// Whether whoever asked may define roles.
    pub can_manage: bool,
}

/// An invitation still waiting for its answer, as the organization's admins see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    /// Who sent it (name or address), if their account still exists.
    pub invited_by: Option<String>,
    pub sent_at: String,
    pub expires_at: String,
    pub expired: bool,
}

/// Where an invitation stands, as its recipient sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvitationState {
    Pending,
    Expired,
    Accepted,
    Declined,
    Withdrawn,
}

/// A sign-in an organization's IdP started (IdP-initiated SAML), waiting for the person to
/// confirm on our own page that they mean to continue as this account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoHandoffPreview {
    pub email: String,
    pub organization: String,
}

/// An invitation as its recipient sees it: who asks them to join what, as which role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationPreview {
    pub id: Uuid,
    pub organization: String,
    pub slug: String,
    pub inviter: Option<String>,
    pub email: String,
    pub role: Role,
    pub expires_at: String,
    pub state: InvitationState,
}

/// A sign-up confirmation link, as its page shows it before the click.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmationLink {
    pub email: String,
    /// Followed outside the browser that signed up: the account's password is asked for.
    pub needs_password: bool,
}

/// One signed-in browser of the current user ("Your sessions").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSession {
    /// An opaque handle for signing it out (never the session id itself, which is a secret).
    pub handle: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// RFC 3339.
    pub signed_in_at: Option<String>,
    /// RFC 3339: the last request it made.
    pub last_active_at: String,
    /// The browser looking at the list.
    pub current: bool,
}

/// The signed-in person's two-factor set-up ("Security" page).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaStatus {
    /// RFC 3339, when the authenticator app was confirmed; `None` while two-factor is off.
    pub enabled_since: Option<String>,
    pub recovery_codes_left: i64,
    /// Accounts created by email link or single sign-on may have no password to re-enter.
    pub has_password: bool,
}

/// What the person needs to add Tessera to an authenticator app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaEnrolment {
    /// Base32, for typing in by hand.
    pub secret: String,
    pub otpauth_url: String,
    /// The otpauth URL as a QR code (SVG made on the server, safe to inline).
    pub qr_svg: String,
}

/// How an organization's members must sign in (Settings → Security).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInPolicy {
    pub require_mfa: bool,
    pub sso_satisfies_mfa: bool,
    /// Members who haven't set up two-factor yet (asked to on their next visit if required).
    pub members_without_mfa: i64,
}

/// One of an organization's API keys, as its admins see it (never the key itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeySummary {
    pub id: Uuid,
    pub name: String,
    /// `tsk_<prefix>`: enough to recognise a key in a list or a log, useless on its own.
    pub prefix: String,
    pub scopes: Vec<crate::Scope>,
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// A key just created: the only time the secret is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApiKey {
    pub key: String,
    pub summary: ApiKeySummary,
}

/// What an API sign-in or refresh returns (OAuth 2 token response field names).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenPair {
    pub access_token: String,
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
}

/// An outside account (Google, Microsoft, …) the user can sign in with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedIdentity {
    pub id: Uuid,
    pub provider: String,
    pub provider_name: String,
    pub email: Option<String>,
    /// RFC 3339.
    pub linked_at: String,
    pub last_used_at: String,
}

/// A sign-in button: an outside identity provider configured for this deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInProvider {
    pub id: String,
    pub name: String,
}

/// An organization's single sign-on set-up, as its admins see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoSettings {
    /// What to enter in the IdP: our entity id (also our metadata URL) and ACS URL.
    pub sp_entity_id: String,
    pub sp_acs_url: String,
    pub sp_metadata_url: String,
    /// Where members start signing in (SP-initiated).
    pub login_url: String,
    pub idp_entity_id: Option<String>,
    pub idp_sso_url: Option<String>,
    pub idp_metadata_url: Option<String>,
    /// SHA-256 fingerprints of the IdP's signing certificates in use.
    pub signing_certificates: Vec<String>,
    /// Certificates the IdP dropped at its last change, still trusted for a while.
    pub previous_certificates: Option<PreviousCertificates>,
    /// `None` until an IdP is connected.
    pub mapping: Option<SsoMapping>,
    pub domains: Vec<SsoDomain>,
    /// Refused sign-ins of the last 7 days, per quarter hour and reason, newest first.
    pub recent_refusals: Vec<SsoRefusalCount>,
}

/// Signing certificates an IdP dropped from its metadata, trusted until `trusted_until`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousCertificates {
    pub fingerprints: Vec<String>,
    pub trusted_until: String,
}

/// How many sign-ins through the IdP were refused for one reason in one quarter hour.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoRefusalCount {
    pub window_start: String,
    /// The reason in words ("it has expired"); the stored code is in the audit log.
    pub reason: String,
    pub refused: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoMapping {
    /// Empty: the NameID, when it is an email address.
    pub email_attribute: String,
    pub name_attribute: String,
    pub groups_attribute: String,
    /// `group = role` lines.
    pub group_roles: String,
    pub default_role: crate::Role,
    pub jit_provisioning: bool,
    pub allow_idp_initiated: bool,
    pub require_sso: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoDomain {
    pub domain: String,
    pub verified: bool,
    /// The DNS TXT record that proves ownership.
    pub txt_name: String,
    pub txt_value: String,
}

/// One entry of the signed-in person's account activity (sign-ins, two-factor changes, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEvent {
    /// `login.succeeded`, `mfa.enabled`, …
    pub event: String,
    /// The event in words ("Signed in with password").
    pub description: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// RFC 3339.
    pub occurred_at: String,
}

/// An organization's webhook endpoint, as its admins see it (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    /// Wire names (`project.created`), in catalogue order.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why it was switched off automatically, if it was.
    pub disabled_reason: Option<String>,
    /// RFC 3339: when its current run of failed deliveries began.
    pub failing_since: Option<String>,
    /// RFC 3339: until when the secret before the last rotation still signs too.
    pub previous_secret_until: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    /// Deliveries of the last 24 hours by outcome.
    pub delivered_24h: i64,
    pub failed_24h: i64,
    pub pending: i64,
}

/// A signing secret just made (the endpoint's first, or a rotation's): the only time it is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewWebhookSecret {
    pub endpoint_id: Uuid,
    /// `whsec_…`, as Standard Webhooks libraries take it.
    pub secret: String,
    /// RFC 3339: after a rotation, until when the previous secret also signs.
    pub previous_secret_until: Option<String>,
}

/// One event sent (or being sent) to one endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub id: Uuid,
    /// The `webhook-id` header and the envelope's `id`: the same on every attempt.
    pub event_id: Uuid,
    pub event_type: String,
    /// `held` (waits for an earlier event about the same thing), `pending`, `delivered`, `failed`.
    pub status: String,
    pub attempts: i32,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub last_response_status: Option<i32>,
    pub last_error: Option<String>,
}

/// One attempt at a delivery: what was sent and what came back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookAttempt {
    pub attempted_at: String,
    pub duration_ms: i32,
    pub request_headers: Vec<(String, String)>,
    pub response_status: Option<i32>,
    pub response_headers: Vec<(String, String)>,
    /// The first 4 KiB (`webhooks::RESPONSE_KEPT_BYTES`).
    pub response_body: Option<String>,
    pub response_truncated: bool,
    /// Why no response came (refused address, timeout, connection error).
    pub error: Option<String>,
}

/// A delivery with the body it sends and each attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDeliveryDetail {
    pub delivery: WebhookDelivery,
    /// The request body, exactly as signed and sent.
    pub payload: String,
    pub attempts: Vec<WebhookAttempt>,
}

/// The webhooks page: the organization's endpoints and the deployment's rules for new ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoints {
    pub endpoints: Vec<WebhookEndpoint>,
    /// Whether endpoints may be `http://` (local development only).
    pub allow_http: bool,
    /// How many endpoints an organization may have.
    pub max_endpoints: i64,
}
