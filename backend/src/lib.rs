//! Server-only services. Every function that touches tenant data takes a [`Ctx`] and goes
//! through [`tenancy::Tenancy`], the one door: it checks the permission, opens the transaction
//! with the tenant context set, and will not commit a write without its audit record.

#[macro_use]
mod catalogue;
pub mod access;
pub mod api_keys;
pub mod audit;
pub mod billing;
pub mod ctx;
pub mod db;
pub mod documents;
pub mod edits;
pub mod email;
pub mod error;
pub mod identity;
pub mod jobs;
pub mod members;
pub mod notifications;
pub mod projects;
pub mod rate_limit;
pub mod secrets;
pub mod seed;
pub mod sessions;
pub mod sign_in;
pub mod sso;
pub mod tenancy;
pub mod tokens;
pub mod webhooks;

pub use ctx::{Authn, ClientIp, Ctx, RequestMeta};
pub use error::{Error, Result};
pub use tenancy::Org;

use sqlx::PgPool;
use std::sync::Arc;
use tenancy::topology::{Topology, TopologyConfig};

/// Everything a request handler needs, cheap to clone.
#[derive(Clone)]
pub struct Backend {
    pub identity: identity::Identity,
    pub tenancy: tenancy::Tenancy,
    /// Browser sessions (also the store tower-sessions uses).
    pub sessions: sessions::PgSessionStore,
    /// API access tokens and rotating refresh tokens.
    pub tokens: tokens::Tokens,
    /// Outside identity providers (OpenID Connect) people may sign in with.
    pub oidc: identity::oidc::Oidc,
    /// Organizations' own SAML identity providers and verified domains.
    pub sso: sso::Sso,
    /// People's in-app notifications.
    pub notifications: notifications::Notifications,
    /// Organizations' outgoing webhooks (the client that delivers, sealing their secrets).
    pub webhooks: webhooks::Webhooks,
    /// How long a deleted organization is kept (read-only, restorable) before it is purged.
    pub deletion_retention: time::Duration,
    /// How recently someone must have proved who they are (password or code) to make a
    /// sensitive change: two-factor settings, sign-in rules, deleting an organization.
    pub reauth_window: std::time::Duration,
}

impl Backend {
    /// `control` must connect as the confined application role (see [`db::check_app_role`]);
    /// `topology` says where tenant data lives.
    pub fn new(
        control: PgPool,
        topology: &TopologyConfig,
        secret: secrets::SecretKey,
        mailer: Arc<dyn email::Mailer>,
        public_url: &str,
        oidc_providers: Vec<identity::oidc::ProviderConfig>,
        dns_server: Option<std::net::SocketAddr>,
    ) -> Result<Self> {
        let topology = Arc::new(Topology::new(topology)?);
        Ok(Self {
            tokens: tokens::Tokens::new(control.clone(), &secret),
            oidc: identity::oidc::Oidc::new(oidc_providers, public_url)?,
            sso: sso::Sso::new(public_url, dns_server)?,
            webhooks: webhooks::Webhooks::new(secret.clone())?,
            identity: identity::Identity::new(control.clone(), secret, mailer, public_url),
            sessions: sessions::PgSessionStore::new(control.clone()),
            notifications: notifications::Notifications::new(control.clone()),
            tenancy: tenancy::Tenancy::new(control, topology),
            deletion_retention: time::Duration::days(30),
            reauth_window: std::time::Duration::from_secs(10 * 60),
        })
    }
}
