//! Server-side plumbing for the server functions: who is asking, from where, in which tenant.

use http::request::Parts;
use leptos::prelude::*;
use std::net::SocketAddr;
use tessera_backend::{Backend, Ctx, RequestMeta};
use tessera_domain::input::FieldError;
use tessera_domain::{AppError, Role};
use tower_sessions::Session;
use uuid::Uuid;

const USER_ID_KEY: &str = "user_id";

/// Turns a backend result into what the client may see.
pub trait AppResult<T> {
    fn app(self) -> Result<T, AppError>;
}

impl<T> AppResult<T> for Result<T, tessera_backend::Error> {
    fn app(self) -> Result<T, AppError> {
        self.map_err(tessera_backend::Error::into_app_error)
    }
}

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

fn parts() -> Result<Parts, AppError> {
    use_context::<Parts>().ok_or_else(outside_request)
}

pub fn session() -> Result<Session, AppError> {
    parts()?.extensions.get::<Session>().cloned().ok_or_else(|| internal("session layer missing"))
}

pub async fn user_id() -> Result<Option<Uuid>, AppError> {
    session()?.get::<Uuid>(USER_ID_KEY).await.map_err(internal)
}

pub async fn require_user() -> Result<Uuid, AppError> {
    user_id().await?.ok_or(AppError::Unauthenticated)
}

/// Logs a user in on this browser. A fresh session id on every login defeats session fixation.
const BROWSER_SECRET_KEY: &str = "link_secret";

/// A secret kept in this browser's session (created on first use), to bind emailed sign-in
/// links to the browser that asked for them.
pub async fn browser_secret() -> Result<String, AppError> {
    let session = session()?;
    if let Some(secret) = session.get::<String>(BROWSER_SECRET_KEY).await.map_err(internal)? {
        return Ok(secret);
    }
    let secret = tessera_backend::identity::links::new_secret();
    session.insert(BROWSER_SECRET_KEY, &secret).await.map_err(internal)?;
    Ok(secret)
}

pub async fn existing_browser_secret() -> Result<Option<String>, AppError> {
    session()?.get::<String>(BROWSER_SECRET_KEY).await.map_err(internal)
}

/// Signs this browser in as `user_id`: a new session id (no fixation), plus where and when,
/// for the user's list of sessions.
pub async fn start_session(user_id: Uuid) -> Result<(), AppError> {
    use tessera_backend::sessions::{IP_KEY, SIGNED_IN_AT_KEY, USER_AGENT_KEY};
    let session = session()?;
    session.cycle_id().await.map_err(internal)?;
    let meta = meta();
    session.insert(SIGNED_IN_AT_KEY, tessera_backend::sessions::now_rfc3339()).await.map_err(internal)?;
    session.insert(USER_AGENT_KEY, meta.user_agent).await.map_err(internal)?;
    session.insert(IP_KEY, meta.ip.map(|ip| ip.to_string())).await.map_err(internal)?;
    session.insert(USER_ID_KEY, user_id).await.map_err(internal)
}

/// This browser's session id, if it has been saved.
pub fn session_id() -> Result<Option<String>, AppError> {
    Ok(session()?.id().map(|id| id.to_string()))
}

pub fn meta() -> RequestMeta {
    let Ok(parts) = parts() else { return RequestMeta::default() };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(512).collect());
    RequestMeta {
        ip: parts.extensions.get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0.ip()),
        user_agent: header("user-agent"),
        request_id: header("x-request-id"),
    }
}

/// Enters the tenant named by `slug` as the logged-in user (404 if they aren't a member).
pub async fn enter(slug: &str) -> Result<(Backend, Ctx), AppError> {
    let backend = backend()?;
    let user_id = require_user().await?;
    let ctx = backend.tenancy.enter(user_id, slug, meta()).await.app()?;
    Ok((backend, ctx))
}

/// An id from a URL or form. A malformed one is simply not found: it names nothing.
pub fn parse_id(raw: &str, what: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw.trim()).map_err(|_| AppError::NotFound(format!("That {what} doesn't exist in this organization.")))
}

pub fn parse_role(raw: &str) -> Result<Role, AppError> {
    raw.parse().map_err(|e: tessera_domain::role::UnknownRole| AppError::Invalid(FieldError::new("role", e.to_string())))
}

/// Where to go after logging in: only paths on this site, never `//evil.example` or a full URL.
pub fn safe_next(next: Option<&str>) -> String {
    match next.map(str::trim) {
        // A local path of printable ASCII only: browsers drop tabs and newlines (so "/\t/evil"
        // would become "//evil"), and control characters can't go in a Location header.
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && path.bytes().all(|b| (0x21..=0x7e).contains(&b)) =>
        {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}
