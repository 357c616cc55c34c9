use crate::tenancy::placement::Placement;
use std::net::IpAddr;
use tessera_domain::access::{self, Actor, Target};
use tessera_domain::{AppError, Permission, Rights, Role, Scope};
use uuid::Uuid;

/// The address a request came from, as worked out by the server's client-IP layer (the
/// socket peer, or the client named by a trusted reverse proxy in `X-Forwarded-For`).
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

/// Where a request came from; copied into every audit record it causes.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// Where the budgets this request spends are noted, for its `RateLimit` headers.
    pub spent: Option<crate::rate_limit::SpentBudgets>,
}

/// Who is asking, and how they proved it: what the door checks an organization's sign-in
/// policy against.
#[derive(Clone, Copy, Debug)]
pub struct Authn {
    pub user_id: Uuid,
    /// This sign-in included a second factor (or set one up).
    pub mfa: bool,
    /// Signed in through this organization's own SAML IdP.
    pub sso_tenant: Option<Uuid>,
}

impl Authn {
    pub fn password_only(user_id: Uuid) -> Self {
        Self { user_id, mfa: false, sso_tenant: None }
    }
}

/// The tenant being acted in, as resolved from the URL and the user's membership.
#[derive(Clone, Debug)]
pub struct TenantRef {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    /// Where its data lives, read from the control plane when the request entered the tenant.
    pub placement: Placement,
    pub status: TenantStatus,
    /// Members must have signed in with two-factor authentication.
    pub require_mfa: bool,
    /// A sign-in through the organization's own IdP counts as two-factor.
    pub sso_satisfies_mfa: bool,
    /// Members (but Owners) must have signed in through the organization's IdP.
    pub require_sso: bool,
    /// Its billing as stored with its row (the door derives the state and plan limits from it:
    /// `Org::billing`).
    pub billing: Option<crate::billing::Record>,
}

/// The lifecycle states the door cares about (see the `tenants.status` check constraint).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantStatus {
    Active,
    /// Its data is being copied elsewhere: readable, not writable.
    Moving,
    /// Scheduled for deletion: readable by its members, not writable, until the purge.
    Deleting,
}

/// Who is acting, in which tenant, with which role. Only [`crate::tenancy::Tenancy::enter`]
/// makes one, after checking the membership, so holding a `Ctx` means the membership is real.
// The private `_sealed` field keeps construction inside this module (`#[non_exhaustive]` would
// still allow it anywhere in the crate).
#[allow(clippy::manual_non_exhaustive)]
#[derive(Clone, Debug)]
pub struct Ctx {
    pub tenant: TenantRef,
    /// The person acting; for an API key, the person who made the key.
    pub user_id: Uuid,
    /// What their role (built-in or the organization's own) lets them do; for an API key, its
    /// creator's now.
    pub rights: Rights,
    pub meta: RequestMeta,
    /// Set when an organization API key is acting: then its scopes, not a role, decide.
    pub api_key: Option<ApiKeyActor>,
    _sealed: (),
}

#[derive(Clone, Debug)]
pub struct ApiKeyActor {
    pub id: Uuid,
    pub scopes: Vec<Scope>,
}

impl Ctx {
    pub(crate) fn new(tenant: TenantRef, user_id: Uuid, rights: Rights, meta: RequestMeta) -> Self {
        Self { tenant, user_id, rights, meta, api_key: None, _sealed: () }
    }

    /// `creator_role`: the role its creator has now. A key never does more than its creator
    /// still may: demoting the creator narrows the key too (see `require`).
    pub(crate) fn for_api_key(tenant: TenantRef, created_by: Uuid, creator_rights: Rights, key: ApiKeyActor, meta: RequestMeta) -> Self {
        Self { tenant, user_id: created_by, rights: creator_rights, meta, api_key: Some(key), _sealed: () }
    }

    /// The actor as [`tessera_domain::access::can`] takes it.
    pub fn actor(&self) -> Actor<'_> {
        Actor { user_id: self.user_id, rights: &self.rights, key: self.api_key.as_ref().map(|key| key.scopes.as_slice()) }
    }

    /// Whether the actor sees every project, restricted ones too (the door tells row-level
    /// security so).
    pub fn sees_every_project(&self) -> bool {
        self.actor().sees_every_project()
    }

    /// Whether the actor may do `permission` to `target`.
    pub fn can(&self, permission: Permission, target: Target) -> bool {
        access::can(&self.actor(), permission, target).is_ok()
    }

    /// As [`Ctx::can`], refusing with why; `hidden` is the not-found answer for the target's
    /// kind, given when the actor can't see it at all.
    pub fn require_on(&self, permission: Permission, target: Target, hidden: impl FnOnce() -> AppError) -> Result<(), AppError> {
        access::can(&self.actor(), permission, target).map_err(|denied| denied.into_error(hidden))
    }

    /// Whether the actor may give `role` to someone, or take it from them.
    pub fn may_assign(&self, role: Role) -> bool {
        self.rights.may_assign(&Rights::BuiltIn(role))
    }

    /// Refuses what the actor's role (or key) doesn't allow in the organization as a whole.
    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        self.require_on(permission, Target::Organization, AppError::not_found)
    }
}
