//! The browser side of "Continue with <provider>": off to the provider, and back. Failures
//! end on the sign-in (or security) page with a message kept in the session, so no URL can
//! put words on our pages.

use crate::input_guard::TextPath;
use crate::rest::Meta;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_backend::identity::oidc::PendingAuthorization;
use tessera_backend::sign_in::{self, BrowserSignIn, LinkIntent, LINK_INTENT_KEY, OIDC_PENDING_KEY, SIGN_IN_PROBLEM_KEY};
use tessera_backend::Backend;
use tessera_domain::AppError;
use tower_sessions::Session;

/// How long "connect an account" stays armed after the person confirmed it was them.
const LINK_INTENT_SECS: i64 = 5 * 60;

pub fn router(backend: Backend) -> axum::Router {
    axum::Router::new()
        .route("/auth/oidc/{provider}/start", axum::routing::get(start))
        .route("/auth/oidc/{provider}/callback", axum::routing::get(callback))
        .with_state(backend)
}

#[derive(Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

async fn problem(session: &Session, linking: bool, error: AppError) -> Response {
    let _ = session.insert(SIGN_IN_PROBLEM_KEY, error.to_string()).await;
    Redirect::to(if linking { "/account/security?problem=1" } else { "/login?problem=1" }).into_response()
}

async fn start(State(backend): State<Backend>, session: Session, TextPath(provider): TextPath<String>, Query(query): Query<StartQuery>) -> Response {
    // Connecting an account to a signed-in user needs the intent armed by `connect_identity`
    // (which demanded a recent re-authentication); otherwise this is a sign-in.
    let intent = session.remove::<LinkIntent>(LINK_INTENT_KEY).await.ok().flatten();
    let user = BrowserSignIn::new(&session).user_id().await.ok().flatten();
    let link_user = match (intent, user) {
        (Some(intent), Some(user)) if intent.provider == provider && sign_in::now() - intent.at <= LINK_INTENT_SECS => Some(user),
        _ => None,
    };
    let next = sign_in::safe_next(query.next.as_deref());
    match backend.oidc.start(&provider, next, link_user).await {
        Ok((url, pending)) => match session.insert(OIDC_PENDING_KEY, pending).await {
            Ok(()) => Redirect::to(&url).into_response(),
            Err(e) => problem(&session, link_user.is_some(), tessera_backend::Error::Internal(format!("session: {e}")).into_app_error()).await,
        },
        Err(e) => problem(&session, link_user.is_some(), e.into_app_error()).await,
    }
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn callback(
    State(backend): State<Backend>,
    session: Session,
    Meta(meta): Meta,
    TextPath(provider): TextPath<String>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    // Single use: whatever happens next, this browser's pending sign-in is spent.
    let pending = session.remove::<PendingAuthorization>(OIDC_PENDING_KEY).await.ok().flatten();
    let name = backend.oidc.provider_name(&provider);
    let Some(pending) = pending.filter(|p| p.provider == provider) else {
        let error = AppError::BadRequest(format!("This sign-in with {name} didn't start in this browser, or was already used. Please start again."));
        return problem(&session, false, error).await;
    };
    let linking = pending.link_user.is_some();
    let (code, state) = match (query.code, query.state, query.error) {
        (_, _, Some(error)) => {
            let message = if error == "access_denied" {
                format!("Signing in with {name} was cancelled.")
            } else {
                format!(
                    "{name} couldn't complete the sign-in ({}). Please try again.",
                    error.chars().filter(char::is_ascii_alphanumeric).take(40).collect::<String>()
                )
            };
            return problem(&session, linking, AppError::BadRequest(message)).await;
        }
        (Some(code), Some(state), None) => (code, state),
        _ => return problem(&session, linking, AppError::BadRequest(format!("{name} sent back an incomplete answer. Please start again."))).await,
    };
    let external = match backend.oidc.finish(&pending, &state, &code).await {
        Ok(external) => external,
        Err(e) => return problem(&session, linking, e.into_app_error()).await,
    };
    if let Some(user_id) = pending.link_user {
        // Still the same person in this browser?
        if BrowserSignIn::new(&session).user_id().await.ok().flatten() != Some(user_id) {
            return problem(&session, false, AppError::Unauthenticated).await;
        }
        return match backend.identity.link_external(user_id, &external, &name, &meta).await {
            Ok(()) => Redirect::to("/account/security?connected=1").into_response(),
            Err(e) => problem(&session, true, e.into_app_error()).await,
        };
    }
    let user = match backend.identity.sign_in_external(&external, &name, &meta).await {
        Ok(user) => user,
        Err(e) => return problem(&session, false, e.into_app_error()).await,
    };
    match BrowserSignIn::new(&session).finish_first_factor(&backend, &meta, user.id, Some(&pending.next), None).await {
        Ok(target) => Redirect::to(&target).into_response(),
        Err(e) => problem(&session, false, e.into_app_error()).await,
    }
}
