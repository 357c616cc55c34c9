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
//! `#[lazy_route]` needs one impl per route (each is a split point of its own), hence the list.

use crate::pages::{account, api_keys, auth, email_links, home, invitations, members, org, projects, security, settings, sso};
use leptos::prelude::*;
#[cfg(not(feature = "ssr"))]
use leptos_router::{lazy_route, Lazy, LazyRoute};

pub struct Home;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for Home {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <home::HomePage /> }.into_any()
    }
}
impl Home {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("home");
            view! { <home::HomePage /> }.into_any()
        }
    }
}

pub struct SignUp;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for SignUp {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <auth::SignUpPage /> }.into_any()
    }
}
impl SignUp {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("sign_up");
            view! { <auth::SignUpPage /> }.into_any()
        }
    }
}

pub struct SignUpSent;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for SignUpSent {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <auth::SignUpSentPage /> }.into_any()
    }
}
impl SignUpSent {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("sign_up_sent");
            view! { <auth::SignUpSentPage /> }.into_any()
        }
    }
}

pub struct LogIn;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for LogIn {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <auth::LogInPage /> }.into_any()
    }
}
impl LogIn {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("log_in");
            view! { <auth::LogInPage /> }.into_any()
        }
    }
}

pub struct NewOrg;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for NewOrg {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <home::NewOrgPage /> }.into_any()
    }
}
impl NewOrg {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("new_org");
            view! { <home::NewOrgPage /> }.into_any()
        }
    }
}

pub struct Sessions;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for Sessions {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <account::SessionsPage /> }.into_any()
    }
}
impl Sessions {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("sessions");
            view! { <account::SessionsPage /> }.into_any()
        }
    }
}

pub struct Security;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for Security {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <security::SecurityPage /> }.into_any()
    }
}
impl Security {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("security");
            view! { <security::SecurityPage /> }.into_any()
        }
    }
}

pub struct SignInCode;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for SignInCode {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <security::SignInCodePage /> }.into_any()
    }
}
impl SignInCode {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("sign_in_code");
            view! { <security::SignInCodePage /> }.into_any()
        }
    }
}

pub struct SsoSignIn;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for SsoSignIn {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <sso::SsoSignInPage /> }.into_any()
    }
}
impl SsoSignIn {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("sso_sign_in");
            view! { <sso::SsoSignInPage /> }.into_any()
        }
    }
}

pub struct SsoConfirm;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for SsoConfirm {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <sso::SsoConfirmPage /> }.into_any()
    }
}
impl SsoConfirm {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("sso_confirm");
            view! { <sso::SsoConfirmPage /> }.into_any()
        }
    }
}

pub struct SignInLink;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for SignInLink {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <email_links::SignInLinkPage /> }.into_any()
    }
}
impl SignInLink {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("sign_in_link");
            view! { <email_links::SignInLinkPage /> }.into_any()
        }
    }
}

pub struct MagicLink;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for MagicLink {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <email_links::MagicLinkPage /> }.into_any()
    }
}
impl MagicLink {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("magic_link");
            view! { <email_links::MagicLinkPage /> }.into_any()
        }
    }
}

pub struct VerifyEmail;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for VerifyEmail {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <email_links::VerifyEmailPage /> }.into_any()
    }
}
impl VerifyEmail {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("verify_email");
            view! { <email_links::VerifyEmailPage /> }.into_any()
        }
    }
}

pub struct ForgotPassword;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for ForgotPassword {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <email_links::ForgotPasswordPage /> }.into_any()
    }
}
impl ForgotPassword {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("forgot_password");
            view! { <email_links::ForgotPasswordPage /> }.into_any()
        }
    }
}

pub struct ResetPassword;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for ResetPassword {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <email_links::ResetPasswordPage /> }.into_any()
    }
}
impl ResetPassword {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("reset_password");
            view! { <email_links::ResetPasswordPage /> }.into_any()
        }
    }
}

pub struct Invitation;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for Invitation {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <invitations::InvitationPage /> }.into_any()
    }
}
impl Invitation {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("invitation");
            view! { <invitations::InvitationPage /> }.into_any()
        }
    }
}

pub struct Dashboard;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for Dashboard {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <org::Dashboard /> }.into_any()
    }
}
impl Dashboard {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("dashboard");
            view! { <org::Dashboard /> }.into_any()
        }
    }
}

pub struct Projects;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for Projects {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <projects::ProjectsPage /> }.into_any()
    }
}
impl Projects {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("projects");
            view! { <projects::ProjectsPage /> }.into_any()
        }
    }
}

pub struct NewProject;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for NewProject {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <projects::NewProjectPage /> }.into_any()
    }
}
impl NewProject {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("new_project");
            view! { <projects::NewProjectPage /> }.into_any()
        }
    }
}

pub struct Project;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for Project {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <projects::ProjectPage /> }.into_any()
    }
}
impl Project {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("project");
            view! { <projects::ProjectPage /> }.into_any()
        }
    }
}

pub struct Members;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for Members {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <members::MembersPage /> }.into_any()
    }
}
impl Members {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("members");
            view! { <members::MembersPage /> }.into_any()
        }
    }
}

pub struct Settings;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for Settings {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <settings::SettingsPage /> }.into_any()
    }
}
impl Settings {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("settings");
            view! { <settings::SettingsPage /> }.into_any()
        }
    }
}

pub struct ApiKeys;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for ApiKeys {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <api_keys::ApiKeysPage /> }.into_any()
    }
}
impl ApiKeys {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("api_keys");
            view! { <api_keys::ApiKeysPage /> }.into_any()
        }
    }
}

pub struct Sso;
#[cfg(not(feature = "ssr"))]
#[lazy_route]
impl LazyRoute for Sso {
    fn data() -> Self {
        Self
    }
    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <sso::SsoPage /> }.into_any()
    }
}
impl Sso {
    #[cfg(not(feature = "ssr"))]
    pub fn route() -> Lazy<Self> {
        Lazy::new()
    }
    #[cfg(feature = "ssr")]
    pub fn route() -> fn() -> AnyView {
        || {
            preload("sso");
            view! { <sso::SsoPage /> }.into_any()
        }
    }
}

/// Names the chunks of `route`'s code in the document head, so the browser fetches them
/// beside the main bundle instead of after it has started. The split manifest (written by
/// `cargo xtask`, read by Leptos' `HydrationScripts`) keys them by the lazy view's name,
/// `__<route in snake case>_view_<hash>`.
#[cfg(feature = "ssr")]
fn preload(route: &str) {
    use leptos_meta::Link;
    let Some(manifest) = use_context::<leptos::WasmSplitManifest>() else { return };
    let Some(manifest) = manifest.0.try_read_value() else { return };
    let (pkg, chunks_of, _) = &*manifest;
    let prefix = format!("__{route}_view_");
    let chunks = chunks_of.iter().filter(|(lazy, _)| lazy.starts_with(&prefix)).flat_map(|(_, chunks)| chunks);
    for chunk in chunks {
        // As Leptos' own preloads are made: registered with the head, not rendered here.
        let _ = view! { <Link rel="preload" href=format!("{pkg}/{chunk}.wasm") as_="fetch" type_="application/wasm" crossorigin="" /> }.to_html();
    }
}
