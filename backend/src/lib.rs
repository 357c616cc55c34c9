//! Server-only services. Every function that touches tenant data takes a [`Ctx`] and goes
//! through [`tenancy::Tenancy`], the one door: it checks the permission, opens the transaction
//! with the tenant context set, and will not commit a write without its audit record.

pub mod audit;
pub mod ctx;
pub mod db;
pub mod error;
pub mod identity;
pub mod members;
pub mod projects;
pub mod seed;
pub mod tenancy;

pub use ctx::{Ctx, RequestMeta};
pub use error::{Error, Result};

use sqlx::PgPool;

/// Everything a request handler needs, cheap to clone.
#[derive(Clone)]
pub struct Backend {
    pub identity: identity::Identity,
    pub tenancy: tenancy::Tenancy,
}

impl Backend {
    /// `pool` must connect as the confined application role (see [`db::check_app_role`]).
    pub fn new(pool: PgPool) -> Self {
        Self { identity: identity::Identity::new(pool.clone()), tenancy: tenancy::Tenancy::new(pool) }
    }
}
