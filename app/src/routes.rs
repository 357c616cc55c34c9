//! Every page as a lazily loaded route. In the release build `wasm-split` (run by `cargo
//! xtask`) moves each page's code out of the main bundle into a chunk of its own, which the
//! browser fetches when the page is first shown (the server names the current page's chunks in
//! the document head, so hydration never waits on them). The main bundle keeps only what every
//! page shares: the runtime, the router, the header and the organization layout.
//!
//! `#[lazy_route]` needs one impl per route (each is a split point of its own), hence the list.

use crate::pages::{account, api_keys, auth, email_links, home, invitations, members, org, projects, security, settings, sso};
use leptos::prelude::*;
use leptos_router::{lazy_route, LazyRoute};

pub struct Home;
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

pub struct SignUp;
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

pub struct SignUpSent;
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

pub struct LogIn;
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

pub struct NewOrg;
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

pub struct Sessions;
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

pub struct Security;
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

pub struct SignInCode;
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

pub struct SsoSignIn;
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

pub struct SsoConfirm;
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

pub struct SignInLink;
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

pub struct MagicLink;
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

pub struct VerifyEmail;
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

pub struct ForgotPassword;
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

pub struct ResetPassword;
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

pub struct Invitation;
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

pub struct Dashboard;
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

pub struct Projects;
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

pub struct NewProject;
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

pub struct Project;
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

pub struct Members;
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

pub struct Settings;
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

pub struct ApiKeys;
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

pub struct Sso;
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
