use crate::tenancy::placement::Placement;
use std::net::IpAddr;
use tessera_domain::{AppError, Permission, Role, Scope};
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
    pub role: Role,
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
    pub(crate) fn new(tenant: TenantRef, user_id: Uuid, role: Role, meta: RequestMeta) -> Self {
        Self { tenant, user_id, role, meta, api_key: None, _sealed: () }
    }

    /// `creator_role`: the role its creator has now. A key never does more than its creator
    /// still may: demoting the creator narrows the key too (see `require`).
    pub(crate) fn for_api_key(tenant: TenantRef, created_by: Uuid, creator_role: Role, key: ApiKeyActor, meta: RequestMeta) -> Self {
        Self { tenant, user_id: created_by, role: creator_role, meta, api_key: Some(key), _sealed: () }
    }

    /// Whether the actor may change or delete something `owner` made: with `write`, their own;
    /// with `manage`, anyone's.
    pub fn may_change(&self, owner: Uuid, write: Permission, manage: Permission) -> bool {
        self.require(write).is_ok() && (owner == self.user_id || self.require(manage).is_ok())
    }

    /// As [`Ctx::may_change`], refusing with why: for an API key in its own terms (its scope, or
    /// its creator's role now), for a person what they may change instead (`what`: "projects").
    pub fn require_change(&self, owner: Uuid, write: Permission, manage: Permission, what: &str) -> Result<(), AppError> {
        self.require(write)?;
        if owner == self.user_id || self.require(manage).is_ok() {
            return Ok(());
        }
        if self.api_key.is_some() {
            self.require(manage)?;
        }
        Err(AppError::Forbidden(format!("You can change and delete the {what} you created; an admin can change this one.")))
    }

    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        if let Some(key) = &self.api_key {
            let Some(scope) = permission.key_scope() else {
                return Err(AppError::Forbidden("API keys can't do that; sign in as a person instead.".into()));
            };
            if !key.scopes.iter().any(|held| held.covers(scope)) {
                return Err(AppError::Forbidden(format!(
                    "This API key doesn't have the {} scope. An admin can create a key that has it.",
                    scope.as_str()
                )));
            }
            if !self.role.can(permission) {
                let article = if matches!(self.role, Role::Admin | Role::Owner) { "an" } else { "a" };
                return Err(AppError::Forbidden(format!(
                    "This API key acts with the rights of the person who made it, who is {article} {} and can't do that. An admin can make a key that may.",
                    self.role.label()
                )));
            }
            return Ok(());
        }
        if self.role.can(permission) {
            Ok(())
        } else {
            Err(AppError::forbidden())
        }
    }
}
