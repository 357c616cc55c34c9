//! What a browser's session says about who is signed in, and the steps that change it: a
//! first factor that signs in or waits for the second, the second factor, re-authentication,
//! signing in through an organization's IdP. Server functions (`app::api::ssr`) and the
//! server's own routes (OpenID Connect, SAML) use the same steps, so there is one state machine.

use crate::ctx::{Authn, RequestMeta};
use crate::error::{Error, Result};
use crate::Backend;
use tower_sessions::Session;
use uuid::Uuid;

const USER_ID_KEY: &str = "user_id";
/// When this browser last proved who is using it (sign-in or re-authentication), unix seconds.
const AUTH_AT_KEY: &str = "auth_at";
/// Whether this sign-in included a second factor (or set one up).
const MFA_KEY: &str = "mfa";
/// The organization whose IdP this browser signed in through, if any.
const SSO_TENANT_KEY: &str = "sso_tenant";
/// A password (or link) that checked out, waiting for the second factor.
const PENDING_KEY: &str = "pending_sign_in";
/// How long the second-factor step may take after the password.
const PENDING_LIFETIME_SECS: i64 = 10 * 60;
/// A secret kept in the session to bind emailed sign-in links to the browser that asked.
const BROWSER_SECRET_KEY: &str = "link_secret";

/// A message for the next page to show, from a flow that ended in a redirect (the OpenID
/// Connect callback): kept server-side so no URL can put words on our pages.
pub const SIGN_IN_PROBLEM_KEY: &str = "sign_in_problem";
/// Where to go after following the sign-up confirmation link in this browser.
pub const AFTER_CONFIRMATION_KEY: &str = "after_confirmation";
/// The address this browser last signed up with (the "check your inbox" page shows it).
pub const SIGNED_UP_AS_KEY: &str = "signed_up_as";
/// Set (with the time) when a signed-in, recently re-authenticated user asked to connect an
/// outside account; the start of the OpenID flow checks it.
pub const LINK_INTENT_KEY: &str = "oidc_link_intent";
/// What the OpenID flow keeps while the browser is at the provider.
pub const OIDC_PENDING_KEY: &str = "oidc_pending";

#[derive(serde::Serialize, serde::Deserialize)]
pub struct LinkIntent {
    pub provider: String,
    pub at: i64,
}

/// A sign-in whose first factor checked out, waiting for the second.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct PendingSignIn {
    pub user_id: Uuid,
    at: i64,
    /// Where to go once signed in.
    pub next: String,
    /// Came through this organization's IdP (kept through the second-factor step).
    #[serde(default)]
    pub sso_tenant: Option<Uuid>,
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Where to go after signing in: only paths on this site, never `//evil.example` or a full URL.
pub fn safe_next(next: Option<&str>) -> String {
    next.and_then(tessera_domain::input::local_path).unwrap_or("/").to_string()
}

fn session_error(e: tower_sessions::session::Error) -> Error {
    Error::Internal(format!("session: {e}"))
}

/// The sign-in state of one browser's session.
pub struct BrowserSignIn<'a> {
    session: &'a Session,
}

impl<'a> BrowserSignIn<'a> {
    pub fn new(session: &'a Session) -> Self {
        Self { session }
    }

    pub async fn user_id(&self) -> Result<Option<Uuid>> {
        self.session.get::<Uuid>(USER_ID_KEY).await.map_err(session_error)
    }

    /// Who is signed in and how, as the door checks an organization's sign-in rules against.
    pub async fn authn(&self) -> Result<Option<Authn>> {
        let Some(user_id) = self.user_id().await? else { return Ok(None) };
        let mfa = self.session.get::<bool>(MFA_KEY).await.map_err(session_error)?.unwrap_or(false);
        let sso_tenant = self.session.get::<Uuid>(SSO_TENANT_KEY).await.map_err(session_error)?;
        Ok(Some(Authn { user_id, mfa, sso_tenant }))
    }

    /// Finishes a first factor (password, emailed link, an outside identity provider, the
    /// organization's IdP when `sso_tenant` is set): signs in at once, or, for an account with
    /// two-factor on, parks the sign-in until the code is given. Returns where to go next.
    pub async fn finish_first_factor(
        &self,
        backend: &Backend,
        meta: &RequestMeta,
        user_id: Uuid,
        next: Option<&str>,
        sso_tenant: Option<Uuid>,
    ) -> Result<String> {
        let next = safe_next(next);
        // Every first factor but the organization's own IdP ends here, so the domain's "sign in
        // with our SSO" rule is applied once, for all of them.
        if sso_tenant.is_none() {
            let user = backend.identity.user(user_id).await?.ok_or(tessera_domain::AppError::Unauthenticated)?;
            crate::sso::domains::check_first_factor(&backend.tenancy, &user.email).await?;
        }
        if backend.identity.mfa_enabled(user_id).await? {
            // A new id here too: the half-signed-in session must not be one an attacker planted.
            self.session.cycle_id().await.map_err(session_error)?;
            self.session.remove_value(USER_ID_KEY).await.map_err(session_error)?;
            let pending = PendingSignIn { user_id, at: now(), next: next.clone(), sso_tenant };
            self.session.insert(PENDING_KEY, pending).await.map_err(session_error)?;
            return Ok(format!("/login/mfa?next={}", tessera_domain::input::query_escape(&next)));
        }
        self.start(meta, user_id, false, sso_tenant).await?;
        Ok(next)
    }

    /// The sign-in waiting for its second factor, if it hasn't expired.
    pub async fn pending(&self) -> Result<PendingSignIn> {
        match self.session.get::<PendingSignIn>(PENDING_KEY).await.map_err(session_error)? {
            Some(pending) if now() - pending.at <= PENDING_LIFETIME_SECS => Ok(pending),
            _ => Err(tessera_domain::AppError::BadRequest("Your sign-in timed out. Please log in again.".into()).into()),
        }
    }

    /// Signs this browser in as `user_id`: a new session id (no fixation), plus where and when,
    /// for the user's list of sessions. `mfa`: the sign-in included a second factor.
    pub async fn start(&self, meta: &RequestMeta, user_id: Uuid, mfa: bool, sso_tenant: Option<Uuid>) -> Result<()> {
        use crate::sessions::{IP_KEY, SIGNED_IN_AT_KEY, USER_AGENT_KEY};
        let session = self.session;
        session.cycle_id().await.map_err(session_error)?;
        session.remove_value(PENDING_KEY).await.map_err(session_error)?;
        match sso_tenant {
            Some(tenant) => session.insert(SSO_TENANT_KEY, tenant).await.map_err(session_error)?,
            None => {
                session.remove_value(SSO_TENANT_KEY).await.map_err(session_error)?;
            }
        }
        session.insert(MFA_KEY, mfa).await.map_err(session_error)?;
        session.insert(AUTH_AT_KEY, now()).await.map_err(session_error)?;
        session.insert(SIGNED_IN_AT_KEY, crate::sessions::now_rfc3339()).await.map_err(session_error)?;
        session.insert(USER_AGENT_KEY, meta.user_agent.clone()).await.map_err(session_error)?;
        session.insert(IP_KEY, meta.ip.map(|ip| ip.to_string())).await.map_err(session_error)?;
        session.insert(USER_ID_KEY, user_id).await.map_err(session_error)
    }

    /// Whether this browser proved who is using it within `window`.
    pub async fn recently_authenticated(&self, window: std::time::Duration) -> Result<bool> {
        let at = self.session.get::<i64>(AUTH_AT_KEY).await.map_err(session_error)?.unwrap_or(0);
        Ok(now() - at <= window.as_secs() as i64)
    }

    /// Records that this browser just proved who is using it (with a second factor, or not).
    pub async fn mark_authenticated(&self, with_second_factor: bool) -> Result<()> {
        self.session.insert(AUTH_AT_KEY, now()).await.map_err(session_error)?;
        if with_second_factor {
            self.session.insert(MFA_KEY, true).await.map_err(session_error)?;
        }
        Ok(())
    }

    /// The second factor no longer counts (it was turned off).
    pub async fn forget_second_factor(&self) -> Result<()> {
        self.session.insert(MFA_KEY, false).await.map_err(session_error)
    }

    /// The secret that binds emailed sign-in links to this browser, made on first use.
    pub async fn browser_secret(&self) -> Result<String> {
        if let Some(secret) = self.existing_browser_secret().await? {
            return Ok(secret);
        }
        let secret = crate::identity::links::new_secret();
        self.session.insert(BROWSER_SECRET_KEY, &secret).await.map_err(session_error)?;
        Ok(secret)
    }

    pub async fn existing_browser_secret(&self) -> Result<Option<String>> {
        self.session.get::<String>(BROWSER_SECRET_KEY).await.map_err(session_error)
    }
}
