//! Every page as a route of its own, loaded lazily in the browser. In the browser build
//! `wasm-split` (run by `cargo xtask`) moves each page's code out of the main bundle into a
//! chunk of its own, fetched when the page is first shown; the main bundle keeps only what
//! every page shares (the runtime, the router, the header and the organization layout).
//!
//! The server renders each page directly, not through `Lazy`: leptos_router 0.8 builds a lazy
//! route's view twice when rendering on the server, which would run every query a page makes
//! twice per view. The HTML is the same either way, so the browser hydrates it all the same;
//! the server names the current page's chunks in the document head itself ([`preload`]).
//!
//! `#[lazy_route]` needs one impl per route (each is a split point of its own): [`pages!`]
//! writes them.

use crate::pages::{
    account, api_keys, audit, auth, billing, documents, email_links, groups, home, invitations, members, notifications, org, projects, roles,
    security, settings, sso, webhooks,
};
use leptos::prelude::*;
#[cfg(not(feature = "ssr"))]
use leptos_router::{lazy_route, Lazy, LazyRoute};

/// For each `Route => page component`: the route type, its lazy view in the browser and its
/// direct view on the server. The split manifest keys a page's chunks by its lazy view's name,
/// `__<route in snake case>_view_<hash>`, which [`preload`] derives from the type's name.
macro_rules! pages {
    ($($route:ident => $page:path),* $(,)?) => {$(
        pub struct $route;
        #[cfg(not(feature = "ssr"))]
        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                Self
            }
            fn view(this: Self) -> AnyView {
                let _ = this;
                view! { <$page /> }.into_any()
            }
        }
        impl $route {
            #[cfg(not(feature = "ssr"))]
            pub fn route() -> Lazy<Self> {
                Lazy::new()
            }
            #[cfg(feature = "ssr")]
            pub fn route() -> fn() -> AnyView {
                || {
                    preload(stringify!($route));
                    view! { <$page /> }.into_any()
                }
            }
        }
    )*};
}

pages! {
    Home => home::HomePage,
    SignUp => auth::SignUpPage,
    SignUpSent => auth::SignUpSentPage,
    LogIn => auth::LogInPage,
    NewOrg => home::NewOrgPage,
    Sessions => account::SessionsPage,
    Notifications => notifications::NotificationsPage,
    Security => security::SecurityPage,
    SignInCode => security::SignInCodePage,
    SsoSignIn => sso::SsoSignInPage,
    SsoConfirm => sso::SsoConfirmPage,
    SignInLink => email_links::SignInLinkPage,
    MagicLink => email_links::MagicLinkPage,
    VerifyEmail => email_links::VerifyEmailPage,
    ForgotPassword => email_links::ForgotPasswordPage,
    ResetPassword => email_links::ResetPasswordPage,
    Invitation => invitations::InvitationPage,
    Dashboard => org::Dashboard,
    Projects => projects::ProjectsPage,
    NewProject => projects::NewProjectPage,
    Project => projects::ProjectPage,
    EditProject => projects::EditProjectPage,
    NewDocument => documents::NewDocumentPage,
    DocumentView => documents::DocumentPage,
    EditDocument => documents::EditDocumentPage,
    Members => members::MembersPage,
    Groups => groups::GroupsPage,
    Roles => roles::RolesPage,
    Settings => settings::SettingsPage,
    ApiKeys => api_keys::ApiKeysPage,
    Sso => sso::SsoPage,
    Webhooks => webhooks::WebhooksPage,
    WebhookEvents => webhooks::WebhookEventsPage,
    Webhook => webhooks::WebhookPage,
    WebhookDelivery => webhooks::WebhookDeliveryPage,
    Billing => billing::BillingPage,
    AuditLog => audit::AuditLogPage,
}

/// Names the chunks of `route`'s code in the document head, so the browser fetches them
/// beside the main bundle instead of after it has started. The split manifest (written by
/// `cargo xtask`, read by Leptos' `HydrationScripts`) keys them by the lazy view's name.
#[cfg(feature = "ssr")]
fn preload(route: &str) {
    use leptos_meta::Link;
    let Some(manifest) = use_context::<leptos::WasmSplitManifest>() else { return };
    let Some(manifest) = manifest.0.try_read_value() else { return };
    let (pkg, chunks_of, _) = &*manifest;
    let prefix = format!("__{}_view_", snake_case(route));
    let chunks = chunks_of.iter().filter(|(lazy, _)| lazy.starts_with(&prefix)).flat_map(|(_, chunks)| chunks);
    for chunk in chunks {
        // As Leptos' own preloads are made: registered with the head, not rendered here.
        let _ = view! { <Link rel="preload" href=format!("{pkg}/{chunk}.wasm") as_="fetch" type_="application/wasm" crossorigin="" /> }.to_html();
    }
}

/// `SsoSignIn` → `sso_sign_in`, as Leptos names a lazy view.
#[cfg(feature = "ssr")]
fn snake_case(name: &str) -> String {
    let mut snake = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    snake
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    #[test]
    fn route_names_become_the_lazy_views_snake_case_names() {
        assert_eq!(super::snake_case("SsoSignIn"), "sso_sign_in");
        assert_eq!(super::snake_case("Home"), "home");
        assert_eq!(super::snake_case("ApiKeys"), "api_keys");
    }
}
