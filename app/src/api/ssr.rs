//! Server-side plumbing for the server functions: who is asking, from where, in which tenant.

use http::request::Parts;
use leptos::prelude::*;
use std::net::SocketAddr;
use tessera_backend::{Backend, Org, RequestMeta};
use tessera_domain::input::FieldError;
use tessera_domain::{AppError, Role};
use tower_sessions::Session;
use uuid::Uuid;

use tessera_backend::sign_in::BrowserSignIn;
pub use tessera_backend::sign_in::{safe_next, AFTER_CONFIRMATION_KEY, LINK_INTENT_KEY, SIGNED_UP_AS_KEY, SIGN_IN_PROBLEM_KEY};

pub fn internal(e: impl std::fmt::Display) -> AppError {
    tessera_backend::Error::Internal(e.to_string()).into_app_error()
}

/// Outside a request (Leptos renders the app once at start-up to list its routes) there is no
/// backend or request in context; that is expected, so it is not logged as a fault.
fn outside_request() -> AppError {
    AppError::Internal("This can only run while serving a request.".into())
}

pub fn backend() -> Result<Backend, AppError> {
    use_context::<Backend>().ok_or_else(outside_request)
}

/// Reads the request (its headers and extensions) in place: `use_context` would clone all of
/// it, headers and extensions, for each look, several times per server function.
fn with_parts<R>(read: impl FnOnce(&Parts) -> R) -> Result<R, AppError> {
    with_context::<Parts, _>(read).ok_or_else(outside_request)
}

/// What was read with this page request's session (the server's `read_page_context`). It
/// stands for the whole request, unless the request itself changed who is signed in or how
/// ([`EnteredOrganizations::forget`]).
pub fn page_context() -> Option<tessera_backend::sessions::PageContext> {
    if use_context::<EnteredOrganizations>().is_some_and(|memo| memo.forgotten()) {
        return None;
    }
    with_parts(|parts| parts.extensions.get::<tessera_backend::sessions::PageContext>().cloned()).ok().flatten()
}

pub fn session() -> Result<Session, AppError> {
    with_parts(|parts| parts.extensions.get::<Session>().cloned())?.ok_or_else(|| internal("session layer missing"))
}

/// This browser's sign-in state (`tessera_backend::sign_in`, shared with the server's routes).
fn sign_in_state(session: &Session) -> BrowserSignIn<'_> {
    BrowserSignIn::new(session)
}

pub async fn user_id() -> Result<Option<Uuid>, AppError> {
    Ok(sign_in_state(&session()?).user_id().await?)
}

pub async fn require_user() -> Result<Uuid, AppError> {
    user_id().await?.ok_or(AppError::Unauthenticated)
}

/// The signed-in user and how they signed in, as the door needs it.
pub async fn authn() -> Result<tessera_backend::Authn, AppError> {
    sign_in_state(&session()?).authn().await?.ok_or(AppError::Unauthenticated)
}

/// Finishes a first factor (password, emailed link): signs in at once, or, for an account
/// with two-factor on, parks the sign-in until the code is given. Returns where to go next.
pub async fn sign_in(user_id: Uuid, next: Option<&str>) -> Result<String, AppError> {
    EnteredOrganizations::forget();
    Ok(sign_in_state(&session()?).finish_first_factor(&backend()?, &meta(), user_id, next, None).await?)
}

/// [`sign_in`] through the organization `tenant`'s own IdP (its domain rule doesn't apply).
pub async fn sign_in_through_idp(user_id: Uuid, next: &str, tenant: Uuid) -> Result<String, AppError> {
    EnteredOrganizations::forget();
    Ok(sign_in_state(&session()?).finish_first_factor(&backend()?, &meta(), user_id, Some(next), Some(tenant)).await?)
}

/// The sign-in waiting for its second factor, if it hasn't expired.
pub async fn pending_sign_in() -> Result<tessera_backend::sign_in::PendingSignIn, AppError> {
    Ok(sign_in_state(&session()?).pending().await?)
}

/// Demands a recent proof of identity before a sensitive action.
pub async fn require_recent_auth() -> Result<Uuid, AppError> {
    let user_id = require_user().await?;
    if !sign_in_state(&session()?).recently_authenticated(backend()?.reauth_window).await? {
        return Err(AppError::ReauthRequired);
    }
    Ok(user_id)
}

/// Records that this browser just proved who is using it (with a second factor, or not).
pub async fn mark_authenticated(with_second_factor: bool) -> Result<(), AppError> {
    EnteredOrganizations::forget();
    Ok(sign_in_state(&session()?).mark_authenticated(with_second_factor).await?)
}

pub async fn forget_second_factor() -> Result<(), AppError> {
    EnteredOrganizations::forget();
    Ok(sign_in_state(&session()?).forget_second_factor().await?)
}

/// A secret kept in this browser's session (created on first use), to bind emailed sign-in
/// links to the browser that asked for them.
pub async fn browser_secret() -> Result<String, AppError> {
    Ok(sign_in_state(&session()?).browser_secret().await?)
}

pub async fn existing_browser_secret() -> Result<Option<String>, AppError> {
    Ok(sign_in_state(&session()?).existing_browser_secret().await?)
}

/// Signs this browser in as `user_id` after the second factor. `mfa`: the
/// sign-in included a second factor; `sso_tenant`: it came through that organization's IdP.
pub async fn start_session(user_id: Uuid, mfa: bool, sso_tenant: Option<Uuid>) -> Result<(), AppError> {
    EnteredOrganizations::forget();
    Ok(sign_in_state(&session()?).start(&meta(), user_id, mfa, sso_tenant).await?)
}

/// This browser's session id, if it has been saved.
pub fn session_id() -> Result<Option<String>, AppError> {
    Ok(session()?.id().map(|id| id.to_string()))
}

pub fn meta() -> RequestMeta {
    with_parts(|parts| {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(512).collect());
        RequestMeta {
            ip: parts
                .extensions
                .get::<tessera_backend::ClientIp>()
                .map(|c| c.0)
                .or_else(|| parts.extensions.get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0.ip())),
            user_agent: header("user-agent"),
            request_id: header("x-request-id"),
            spent: parts.extensions.get::<tessera_backend::rate_limit::SpentBudgets>().cloned(),
        }
    })
    .unwrap_or_default()
}

/// Enters the tenant named by `slug` as the logged-in user (404 if they aren't a member).
pub async fn enter(slug: &str) -> Result<(Backend, Org), AppError> {
    let backend = backend()?;
    let memo = use_context::<EnteredOrganizations>();
    if let Some(ctx) = memo.as_ref().and_then(|m| m.get(slug)) {
        return Ok((backend, ctx));
    }
    let authn = authn().await?;
    // A malformed slug names no organization: not found, without asking the database.
    tessera_domain::input::OrgSlug::parse(slug).map_err(|_| AppError::not_found())?;
    // The organization as read with the session: at the start of a page request, or now, in
    // one round trip, for a server function called on its own (its session was read without
    // it, since the organization is in the call's body, not its address).
    let read_ahead = match page_context() {
        Some(page) => Some(page),
        None if !memo.as_ref().is_some_and(|m| m.forgotten()) => match session_id()? {
            Some(id) => backend.sessions.context(&id, slug).await?,
            None => None,
        },
        None => None,
    };
    let ctx = backend.tenancy.enter_with(authn, slug, read_ahead.as_ref(), meta()).await?;
    if let Some(memo) = memo {
        memo.keep(slug, &ctx);
    }
    Ok((backend, ctx))
}

/// The organizations this request has entered. A page renders its layout and its content from
/// separate resources, each calling a server function that enters the organization; within
/// one request they share the first entrance (one membership lookup, one request from the
/// organization's budget). Per request only, and forgotten when the request changes who is
/// signed in or how (sign-in, two-factor, re-authentication): a server function that changes a
/// membership and then enters again in the same request must call [`EnteredOrganizations::forget`].
#[derive(Clone, Default)]
pub struct EnteredOrganizations(std::sync::Arc<std::sync::Mutex<Entered>>);

#[derive(Default)]
struct Entered {
    by_slug: std::collections::HashMap<String, Org>,
    /// Set by [`EnteredOrganizations::forget`]: the page context read with the session is out
    /// of date too.
    forgotten: bool,
}

impl EnteredOrganizations {
    /// Starts the request's (empty) record; the server calls this for every request.
    pub fn provide() {
        provide_context(Self::default());
    }

    /// Forgets this request's entrances (who is signed in, or their standing, changed).
    pub fn forget() {
        if let Some(memo) = use_context::<Self>() {
            let mut entered = memo.lock();
            entered.by_slug.clear();
            entered.forgotten = true;
        }
        if let Some(loads) = use_context::<RenderLoads>() {
            loads.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entered> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn forgotten(&self) -> bool {
        self.lock().forgotten
    }

    fn get(&self, slug: &str) -> Option<Org> {
        self.lock().by_slug.get(&Self::key(slug)).cloned()
    }

    fn keep(&self, slug: &str, ctx: &Org) {
        self.lock().by_slug.insert(Self::key(slug), ctx.clone());
    }

    /// As the door reads a slug (trimmed, any case).
    fn key(slug: &str) -> String {
        slug.trim().to_lowercase()
    }
}

/// What a page render has loaded so far, by server function and arguments, so each load runs
/// once per request. Leptos builds a page more than once while it resolves a `Suspense` on the
/// server (each pass over a reactive child calls it again), and a page inside the organization
/// layout is built afresh each time: without this, its resources would query again on every
/// pass. Per request only; only the loads a page renders from use it (never a mutation, though
/// `my_session` may end a session whose account is gone, which is the same however often it
/// runs). Forgotten with [`EnteredOrganizations::forget`].
#[derive(Clone, Default)]
pub struct RenderLoads(std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Box<dyn std::any::Any + Send + Sync>>>>);

type SharedLoad<T> = futures_util::future::Shared<futures_util::future::BoxFuture<'static, Result<T, AppError>>>;

impl RenderLoads {
    /// Starts the request's (empty) record; the server calls this for every request.
    pub fn provide() {
        provide_context(Self::default());
    }
}

/// Runs `load` once per request for its call site and `args` (each `async` block is a type of
/// its own, so two server functions can't share a result by mistake); later calls with the
/// same arguments, even while the first is still running, share its result.
pub async fn once_per_request<T, F>(args: impl std::fmt::Debug, load: F) -> Result<T, AppError>
where
    T: Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Result<T, AppError>> + Send + 'static,
{
    let key = format!("{:?} {args:?}", std::any::TypeId::of::<F>());
    use futures_util::FutureExt;
    let Some(loads) = use_context::<RenderLoads>() else { return load.await };
    let shared = {
        let mut loads = loads.0.lock().unwrap_or_else(|e| e.into_inner());
        match loads.get(&key).and_then(|l| l.downcast_ref::<SharedLoad<T>>()) {
            Some(shared) => shared.clone(),
            None => {
                let shared: SharedLoad<T> = load.boxed().shared();
                loads.insert(key, Box::new(shared.clone()));
                shared
            }
        }
    };
    shared.await
}

/// An id from a URL or form. A malformed one is simply not found: it names nothing.
/// An id of something in the organization (`what`: "member"), as [`input::parse_id`].
pub fn parse_id(raw: &str, what: &str) -> Result<Uuid, AppError> {
    tessera_domain::input::parse_id(raw, || AppError::NotFound(format!("That {what} doesn't exist in this organization.")))
}

pub fn parse_role(raw: &str) -> Result<Role, AppError> {
    raw.parse().map_err(|e: tessera_domain::role::UnknownRole| AppError::Invalid(FieldError::new("role", e.to_string())))
}
