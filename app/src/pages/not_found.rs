use crate::components::raw_text::PageTitle;
use leptos::prelude::*;
use tessera_domain::AppError;

/// Also shown for organizations and records you can't access: from outside, "not yours" and
/// "doesn't exist" must look the same.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <PageTitle text="Page not found" />
        <section class="empty-state" data-testid="not-found">
            <p class="eyebrow">"404"</p>
            <h1>"Page not found"</h1>
            <p>"We couldn't find that page. It may have been removed, or you may not have access to it."</p>
            <a class="btn btn-primary" href="/">"Go to your organizations"</a>
        </section>
    }
}

/// The page for a failed load: 404s look like any other missing page, the rest explain themselves.
#[component]
pub fn ErrorPage(error: AppError) -> impl IntoView {
    match error {
        AppError::NotFound(_) => view! { <NotFound /> }.into_any(),
        AppError::Unauthenticated => {
            #[cfg(feature = "ssr")]
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(http::StatusCode::UNAUTHORIZED);
            }
            view! {
                <section class="empty-state">
                    <h1>"Log in to continue"</h1>
                    <p>"This page is for members of an organization. Log in and we'll bring you back."</p>
                    <a class="btn btn-primary" href="/login">"Log in"</a>
                </section>
            }
            .into_any()
        }
        AppError::MfaRequired(message) => {
            #[cfg(feature = "ssr")]
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(http::StatusCode::FORBIDDEN);
            }
            let here = leptos_router::hooks::use_location().pathname.get_untracked();
            let href = format!("/account/security?next={}", crate::query_escape(&here));
            view! {
                <section class="empty-state" data-testid="mfa-required">
                    <h1>"Two-factor authentication required"</h1>
                    <p>{message}</p>
                    <a class="btn btn-primary" href=href>"Set up two-factor authentication"</a>
                    <p class="muted">"Already set up? " <a href="/login">"Sign in again"</a> " with your authenticator code."</p>
                </section>
            }
            .into_any()
        }
        AppError::SsoRequired(message) => {
            #[cfg(feature = "ssr")]
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(http::StatusCode::FORBIDDEN);
            }
            let here = leptos_router::hooks::use_location().pathname.get_untracked();
            let slug = here.strip_prefix("/t/").and_then(|rest| rest.split('/').next()).unwrap_or_default().to_string();
            let href = format!("/sso/{slug}/login?next={}", crate::query_escape(&here));
            view! {
                <section class="empty-state" data-testid="sso-required">
                    <h1>"Single sign-on required"</h1>
                    <p>{message}</p>
                    <a class="btn btn-primary" href=href rel="external">"Continue with SSO"</a>
                </section>
            }
            .into_any()
        }
        other => {
            #[cfg(feature = "ssr")]
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(http::StatusCode::from_u16(other.status()).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR));
            }
            let heading = match other {
                AppError::Unavailable(_) => "Temporarily unavailable",
                AppError::Forbidden(_) => "Not allowed",
                _ => "Something went wrong",
            };
            view! {
                <section class="empty-state">
                    <h1>{heading}</h1>
                    <p class="alert alert-error" role="alert">{other.to_string()}</p>
                </section>
            }
            .into_any()
        }
    }
}
