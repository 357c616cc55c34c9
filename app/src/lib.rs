//! The Tessera UI: one component tree rendered on the server and hydrated in the browser.

pub mod api;
pub mod components;
pub mod pages;
pub mod routes;

use components::layout::AppHeader;
use components::raw_text::TabTitle;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, Meta};
use leptos_router::components::{ParentRoute, Route, Router, Routes, RoutingProgress};
use leptos_router::{path, SsrMode};
use pages::{not_found::NotFound, org};

/// The HTML document around the app, rendered only on the server.
#[cfg(feature = "ssr")]
pub fn shell(options: LeptosOptions) -> impl IntoView {
    use leptos_meta::MetaTags;
    send_content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <AutoReload options=options.clone() />
                // Here rather than in the app: its address is the build's (content-hashed),
                // which only the server knows.
                <link rel="stylesheet" href=format!("/{}/tessera.css", options.site_pkg_dir) />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The page's Content-Security-Policy. Only scripts carrying this response's nonce run (Leptos
/// puts it on its hydration and resource scripts; leptos_axum makes one per response), and what
/// they load (`strict-dynamic`): so markup that ever slipped into a page still couldn't run.
/// `wasm-unsafe-eval` lets the hydration bundle compile; styles come only from our stylesheet.
#[cfg(feature = "ssr")]
fn send_content_security_policy() {
    let Some(nonce) = leptos::nonce::use_nonce() else { return };
    let Some(response) = use_context::<leptos_axum::ResponseOptions>() else { return };
    let policy = format!(
        "default-src 'self'; script-src 'nonce-{nonce}' 'strict-dynamic' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; \
         font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = http::HeaderValue::from_str(&policy) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

pub(crate) use tessera_domain::input::query_escape;

/// The date of an RFC 3339 timestamp from the server (`2026-12-05`), as the UI shows it.
pub(crate) fn date_of(timestamp: &str) -> String {
    timestamp.get(..10).unwrap_or(timestamp).to_string()
}

/// The date and minute of an RFC 3339 timestamp from the server (`2026-12-05 14:30 UTC`).
pub(crate) fn date_time_of(timestamp: &str) -> String {
    match timestamp.get(..16) {
        Some(minute) => format!("{} UTC", minute.replace('T', " ")),
        None => timestamp.to_string(),
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Every route renders completely before the response starts, so a page can still set its
    // status code (a 404 for someone else's organization) after loading its data.
    let (is_routing, set_is_routing) = signal(false);
    view! {
        <Link rel="icon" href="/favicon.svg" />
        <Meta name="description" content="Tessera: the multi-tenant SaaS foundation." />
        <TabTitle />
        <Router set_is_routing>
            // A bar across the top while the next page's code or data is on its way, so a slow
            // click doesn't look like a dead one.
            <div class="routing-progress" aria-hidden="true">
                <RoutingProgress is_routing max_time=std::time::Duration::from_millis(600) />
            </div>
            <AppHeader />
            <main id="main" class="main">
                <Routes fallback=|| view! { <NotFound /> }>
                    <Route path=path!("") view=routes::Home::route() ssr=SsrMode::Async />
                    <Route path=path!("/signup") view=routes::SignUp::route() ssr=SsrMode::Async />
                    <Route path=path!("/signup/sent") view=routes::SignUpSent::route() ssr=SsrMode::Async />
                    <Route path=path!("/login") view=routes::LogIn::route() ssr=SsrMode::Async />
                    <Route path=path!("/orgs/new") view=routes::NewOrg::route() ssr=SsrMode::Async />
                    <Route path=path!("/account/sessions") view=routes::Sessions::route() ssr=SsrMode::Async />
                    <Route path=path!("/notifications") view=routes::Notifications::route() ssr=SsrMode::Async />
                    <Route path=path!("/account/security") view=routes::Security::route() ssr=SsrMode::Async />
                    <Route path=path!("/login/mfa") view=routes::SignInCode::route() ssr=SsrMode::Async />
                    <Route path=path!("/login/sso") view=routes::SsoSignIn::route() ssr=SsrMode::Async />
                    <Route path=path!("/login/sso/confirm") view=routes::SsoConfirm::route() ssr=SsrMode::Async />
                    <Route path=path!("/login/link") view=routes::SignInLink::route() ssr=SsrMode::Async />
                    <Route path=path!("/auth/magic") view=routes::MagicLink::route() ssr=SsrMode::Async />
                    <Route path=path!("/auth/verify") view=routes::VerifyEmail::route() ssr=SsrMode::Async />
                    <Route path=path!("/forgot") view=routes::ForgotPassword::route() ssr=SsrMode::Async />
                    <Route path=path!("/auth/reset") view=routes::ResetPassword::route() ssr=SsrMode::Async />
                    <Route path=path!("/invite") view=routes::Invitation::route() ssr=SsrMode::Async />
                    <ParentRoute path=path!("/t/:slug") view=org::OrgLayout ssr=SsrMode::Async>
                        <Route path=path!("") view=routes::Dashboard::route() ssr=SsrMode::Async />
                        <Route path=path!("/projects") view=routes::Projects::route() ssr=SsrMode::Async />
                        <Route path=path!("/projects/new") view=routes::NewProject::route() ssr=SsrMode::Async />
                        <Route path=path!("/projects/:id") view=routes::Project::route() ssr=SsrMode::Async />
                        <Route path=path!("/projects/:id/edit") view=routes::EditProject::route() ssr=SsrMode::Async />
                        <Route path=path!("/projects/:id/documents/new") view=routes::NewDocument::route() ssr=SsrMode::Async />
                        <Route path=path!("/projects/:id/documents/:doc") view=routes::DocumentView::route() ssr=SsrMode::Async />
                        <Route path=path!("/projects/:id/documents/:doc/edit") view=routes::EditDocument::route() ssr=SsrMode::Async />
                        <Route path=path!("/members") view=routes::Members::route() ssr=SsrMode::Async />
                        <Route path=path!("/groups") view=routes::Groups::route() ssr=SsrMode::Async />
                        <Route path=path!("/settings/roles") view=routes::Roles::route() ssr=SsrMode::Async />
                        <Route path=path!("/settings") view=routes::Settings::route() ssr=SsrMode::Async />
                        <Route path=path!("/api-keys") view=routes::ApiKeys::route() ssr=SsrMode::Async />
                        <Route path=path!("/sso") view=routes::Sso::route() ssr=SsrMode::Async />
                        <Route path=path!("/settings/webhooks") view=routes::Webhooks::route() ssr=SsrMode::Async />
                        <Route path=path!("/settings/webhooks/events") view=routes::WebhookEvents::route() ssr=SsrMode::Async />
                        <Route path=path!("/settings/webhooks/:id") view=routes::Webhook::route() ssr=SsrMode::Async />
                        <Route path=path!("/settings/webhooks/:id/deliveries/:delivery") view=routes::WebhookDelivery::route() ssr=SsrMode::Async />
                        <Route path=path!("/settings/billing") view=routes::Billing::route() ssr=SsrMode::Async />
                        <Route path=path!("/settings/audit") view=routes::AuditLog::route() ssr=SsrMode::Async />
                    </ParentRoute>
                </Routes>
            </main>
        </Router>
    }
}
