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

/// The tenant being acted in, as resolved from the URL and the user's membership.
#[derive(Clone, Debug)]
pub struct TenantRef {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
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
