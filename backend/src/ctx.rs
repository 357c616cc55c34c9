use crate::tenancy::placement::Placement;
use std::net::IpAddr;
use tessera_domain::{AppError, Permission, Role};
use uuid::Uuid;

/// Where a request came from; copied into every audit record it causes.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
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
#[derive(Clone, Debug)]
pub struct Ctx {
    pub tenant: TenantRef,
    pub user_id: Uuid,
    pub role: Role,
    pub meta: RequestMeta,
    _sealed: (),
}

impl Ctx {
    pub(crate) fn new(tenant: TenantRef, user_id: Uuid, role: Role, meta: RequestMeta) -> Self {
        Self { tenant, user_id, role, meta, _sealed: () }
    }

    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        if self.role.can(permission) {
            Ok(())
        } else {
            Err(AppError::forbidden())
        }
    }
}
