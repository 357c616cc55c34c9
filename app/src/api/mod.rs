//! Server functions: the typed API shared by the pages (over HTTP from the browser, as direct
//! calls during server rendering) and by the integration tests. Each one is thin: it resolves
//! who is asking and where, then calls a backend service, which enforces the rules.

mod access;
mod audit;
mod billing;
mod documents;
mod groups;
mod invitations;
mod members;
mod notifications;
mod projects;
mod roles;
mod security;
mod sso;
#[cfg(feature = "ssr")]
pub mod ssr;
mod webhooks;
pub use access::*;
pub use audit::*;
pub use billing::*;
pub use documents::*;
pub use groups::*;
pub use invitations::*;
pub use members::*;
pub use notifications::*;
pub use projects::*;
pub use roles::*;
pub use security::*;
pub use sso::*;
pub use webhooks::*;

use leptos::prelude::*;
use tessera_domain::dto::{DeviceSession, OrgContext, OrgOverview, SessionSummary};
use tessera_domain::placement::{PlacementInfo, PlacementOptions};
use tessera_domain::AppError;

#[cfg(feature = "ssr")]
use ssr::enter;

/// The logged-in user and their organizations, or `None` for an anonymous visitor.
#[server(endpoint = "my_session")]
pub async fn my_session() -> Result<Option<SessionSummary>, AppError> {
    ssr::once_per_request((), async move {
        let Some(user_id) = ssr::user_id().await? else { return Ok(None) };
        let backend = ssr::backend()?;
        let (user, orgs, unread_notifications) = match ssr::page_context().filter(|page| page.user_id == Some(user_id)) {
            Some(page) => (page.user, page.orgs, page.unread_notifications),
            None => match backend.identity.user(user_id).await? {
                Some(user) => (Some(user), backend.tenancy.organizations_of(user_id).await?, backend.notifications.unread(user_id).await?),
                None => (None, Vec::new(), 0),
            },
        };
        let Some(user) = user else {
            // The account is gone: forget the stale session rather than failing every page.
            ssr::session()?.flush().await.map_err(ssr::internal)?;
            return Ok(None);
        };
        Ok(Some(SessionSummary { user, orgs, unread_notifications }))
    })
    .await
}

/// Creates an account. From an invitation (`invitation`: its token, which only the invited
/// inbox has) the address is proven: the account is confirmed and signed in at once. Otherwise
/// nobody is signed in until the emailed link is followed, and the answer (off to "check your
/// inbox") is the same whether or not the address already has an account: sign-up reveals
/// nothing.
#[server(endpoint = "sign_up")]
pub async fn sign_up(email: String, password: String, name: String, next: Option<String>, invitation: Option<String>) -> Result<(), AppError> {
    use tessera_backend::identity::{AddressProof, SignedUp};
    let backend = ssr::backend()?;
    tessera_backend::sso::domains::check_first_factor(&backend.tenancy, &email).await?;
    let invited = match invitation.as_deref().filter(|t| !t.is_empty()) {
        // A withdrawn or resent invitation proves nothing: the ordinary sign-up follows.
        Some(token) => tessera_backend::members::invitations::preview(&backend.tenancy, token).await.ok(),
        None => None,
    };
    let proven = invited.is_some_and(|i| {
        i.state == tessera_domain::dto::InvitationState::Pending
            && tessera_domain::input::Email::for_lookup(&email).is_some_and(|e| e.as_str() == i.email.to_lowercase())
    });
    let browser = ssr::browser_secret().await?;
    let proof = if proven { AddressProof::Proven } else { AddressProof::Pending { browser: &browser } };
    match backend.identity.sign_up(&email, &password, &name, proof, &ssr::meta()).await? {
        SignedUp::Confirmed(user) => {
            let target = ssr::sign_in(user.id, next.as_deref()).await?;
            leptos_axum::redirect(&target);
        }
        SignedUp::AwaitingConfirmation(_) | SignedUp::AlreadyRegistered => {
            // Where to go once the address is confirmed in this browser, and the address for
            // the next page to show (kept server-side: no URL puts words on our pages).
            let session = ssr::session()?;
            session.insert(ssr::AFTER_CONFIRMATION_KEY, ssr::safe_next(next.as_deref())).await.map_err(ssr::internal)?;
            let email = tessera_domain::input::Email::parse(&email).map(|e| e.as_str().to_string()).unwrap_or(email);
            session.insert(ssr::SIGNED_UP_AS_KEY, email).await.map_err(ssr::internal)?;
            leptos_axum::redirect("/signup/sent");
        }
    }
    Ok(())
}

/// The address this browser last signed up with, for the "check your inbox" page.
#[server(endpoint = "signed_up_as")]
pub async fn signed_up_as() -> Result<Option<String>, AppError> {
    ssr::session()?.get(ssr::SIGNED_UP_AS_KEY).await.map_err(ssr::internal)
}

#[server(endpoint = "log_in")]
pub async fn log_in(email: String, password: String, next: Option<String>) -> Result<(), AppError> {
    let backend = ssr::backend()?;
    // Said before the password is checked; `sign_in` applies the same rule to every first factor.
    tessera_backend::sso::domains::check_first_factor(&backend.tenancy, &email).await?;
    // A fresh confirmation link for an unconfirmed account opens in this browser.
    let browser = ssr::browser_secret().await?;
    let user = backend.identity.log_in(&email, &password, Some(&browser), &ssr::meta()).await?;
    let target = ssr::sign_in(user.id, next.as_deref()).await?;
    leptos_axum::redirect(&target);
    Ok(())
}

/// Emails a sign-in link that works only in this browser. Returns the message to show, which
/// is the same whether or not the address has an account.
#[server(endpoint = "request_sign_in_link")]
pub async fn request_sign_in_link(email: String) -> Result<String, AppError> {
    tessera_backend::sso::domains::check_first_factor(&ssr::backend()?.tenancy, &email).await?;
    let browser = ssr::browser_secret().await?;
    ssr::backend()?.identity.request_magic_link(&email, &browser, &ssr::meta()).await?;
    Ok(tessera_backend::identity::LINK_SENT.to_string())
}

/// The address an emailed link of `purpose` ("magic_link", "reset_password") was sent to, if
/// the link can still be used. Doesn't use it up.
#[server(endpoint = "emailed_link")]
pub async fn emailed_link(purpose: String, token: String) -> Result<String, AppError> {
    use tessera_backend::identity::links::Purpose;
    let purpose = match purpose.as_str() {
        "magic_link" => Purpose::MagicLink,
        "reset_password" => Purpose::ResetPassword,
        "verify_email" => Purpose::VerifyEmail,
        _ => return Err(AppError::BadRequest("Unknown kind of link.".into())),
    };
    Ok(ssr::backend()?.identity.link_email(purpose, &token).await?)
}

#[server(endpoint = "sign_in_with_link")]
pub async fn sign_in_with_link(token: String) -> Result<(), AppError> {
    let browser = ssr::existing_browser_secret().await?;
    let user = ssr::backend()?.identity.redeem_magic_link(&token, browser.as_deref(), &ssr::meta()).await?;
    let target = ssr::sign_in(user.id, None).await?;
    leptos_axum::redirect(&target);
    Ok(())
}

/// What following a sign-up confirmation link here takes (the page asks before the click).
#[server(endpoint = "confirmation_link")]
pub async fn confirmation_link(token: String) -> Result<tessera_domain::dto::ConfirmationLink, AppError> {
    let browser = ssr::existing_browser_secret().await?;
    let signed_in_as = ssr::user_id().await?;
    Ok(ssr::backend()?.identity.confirmation_link(&token, browser.as_deref(), signed_in_as).await?)
}

/// Confirms an address from its sign-up link and signs its registrant in here (`password`:
/// asked for when the link is followed outside the browser that signed up).
#[server(endpoint = "verify_email")]
pub async fn verify_email(token: String, password: Option<String>) -> Result<(), AppError> {
    use tessera_backend::identity::Verified;
    let backend = ssr::backend()?;
    let browser = ssr::existing_browser_secret().await?;
    let signed_in_as = ssr::user_id().await?;
    let (user, outcome) = backend.identity.verify_email(&token, browser.as_deref(), signed_in_as, password.as_deref(), &ssr::meta()).await?;
    match outcome {
        Verified::Confirmed if signed_in_as == Some(user.id) => leptos_axum::redirect("/?verified=1"),
        Verified::Confirmed => {
            let next: Option<String> = ssr::session()?.remove(ssr::AFTER_CONFIRMATION_KEY).await.map_err(ssr::internal)?;
            let target = ssr::sign_in(user.id, next.as_deref()).await?;
            leptos_axum::redirect(&target);
        }
        Verified::AlreadyConfirmed | Verified::RegistrantEvicted => leptos_axum::redirect("/login"),
    }
    Ok(())
}

/// "I didn't create this account", from the confirmation link: the registrant is evicted and
/// the inbox's owner is sent to sign in by a way bound to their own browser.
#[server(endpoint = "disown_registration")]
pub async fn disown_registration(token: String) -> Result<(), AppError> {
    let outcome = ssr::backend()?.identity.disown_registration(&token, &ssr::meta()).await?;
    if outcome != tessera_backend::identity::Verified::RegistrantEvicted {
        // Confirmed already: nothing was ended, so there is nothing to explain.
        leptos_axum::redirect("/login");
        return Ok(());
    }
    ssr::session()?
        .insert(
            ssr::SIGN_IN_PROBLEM_KEY,
            "Your address is confirmed and the account registered with it is yours now: the password chosen then no longer works and its \
             sign-ins were ended. Sign in with an emailed link, or reset your password.",
        )
        .await
        .map_err(ssr::internal)?;
    leptos_axum::redirect("/login?problem=1");
    Ok(())
}

#[server(endpoint = "resend_verification")]
pub async fn resend_verification() -> Result<(), AppError> {
    let user_id = ssr::require_user().await?;
    let browser = ssr::browser_secret().await?;
    Ok(ssr::backend()?.identity.resend_verification(user_id, &browser, &ssr::meta()).await?)
}

#[server(endpoint = "request_password_reset")]
pub async fn request_password_reset(email: String) -> Result<String, AppError> {
    tessera_backend::sso::domains::check_first_factor(&ssr::backend()?.tenancy, &email).await?;
    ssr::backend()?.identity.request_password_reset(&email, &ssr::meta()).await?;
    Ok(tessera_backend::identity::LINK_SENT.to_string())
}

/// Sets a new password from an emailed link, ends every other session, and signs in here
/// (after the second factor, for accounts that have one: the inbox alone is not enough).
#[server(endpoint = "reset_password")]
pub async fn reset_password(token: String, password: String) -> Result<(), AppError> {
    let user = ssr::backend()?.identity.reset_password(&token, &password, &ssr::meta()).await?;
    let target = ssr::sign_in(user.id, None).await?;
    leptos_axum::redirect(&target);
    Ok(())
}

/// The signed-in user's sessions (browsers), this one marked.
#[server(endpoint = "my_sessions")]
pub async fn my_sessions() -> Result<Vec<DeviceSession>, AppError> {
    let user_id = ssr::require_user().await?;
    let current = ssr::session_id()?;
    Ok(ssr::backend()?.sessions.list_for_user(user_id, current.as_deref()).await?)
}

#[server(endpoint = "sign_out_session")]
pub async fn sign_out_session(handle: String) -> Result<(), AppError> {
    let user_id = ssr::require_user().await?;
    if !ssr::backend()?.sessions.revoke(user_id, &handle).await? {
        return Err(AppError::NotFound("That session has already ended.".into()));
    }
    Ok(())
}

#[server(endpoint = "sign_out_other_sessions")]
pub async fn sign_out_other_sessions() -> Result<u64, AppError> {
    let user_id = ssr::require_user().await?;
    let current = ssr::session_id()?;
    Ok(ssr::backend()?.sessions.revoke_others(user_id, current.as_deref()).await?)
}

#[server(endpoint = "log_out")]
pub async fn log_out() -> Result<(), AppError> {
    ssr::session()?.flush().await.map_err(ssr::internal)?;
    leptos_axum::redirect("/login");
    Ok(())
}

/// The regions and data isolation models a new organization may choose.
#[server(endpoint = "org_placement_options")]
pub async fn org_placement_options() -> Result<PlacementOptions, AppError> {
    ssr::require_user().await?;
    Ok(ssr::backend()?.tenancy.placement_options().await?)
}

/// `region` and `model` may be left empty for the defaults (first region, pooled).
#[server(endpoint = "create_org")]
pub async fn create_org(name: String, slug: String, region: Option<String>, model: Option<String>) -> Result<(), AppError> {
    let user_id = ssr::require_user().await?;
    let ctx = ssr::backend()?
        .tenancy
        .create_tenant(user_id, &name, &slug, region.as_deref().unwrap_or(""), model.as_deref().unwrap_or(""), ssr::meta())
        .await?;
    leptos_axum::redirect(&format!("/t/{}", ctx.tenant.slug));
    Ok(())
}

/// Where the organization's data lives, and whether it is scheduled for deletion.
#[server(endpoint = "org_settings")]
pub async fn org_settings(slug: String) -> Result<PlacementInfo, AppError> {
    ssr::once_per_request(slug.clone(), async move {
        let (_, org) = enter(&slug).await?;
        Ok(tessera_backend::tenancy::lifecycle::placement_info(&org).await?)
    })
    .await
}

/// Schedules the organization for deletion; `confirm` must be its URL name.
#[server(endpoint = "delete_org")]
pub async fn delete_org(slug: String, confirm: String) -> Result<(), AppError> {
    let (backend, org) = enter(&slug).await?;
    ssr::require_recent_auth().await?;
    tessera_backend::tenancy::lifecycle::schedule_deletion(&org, &confirm, backend.deletion_retention).await?;
    leptos_axum::redirect(&format!("/t/{}/settings", org.tenant.slug));
    Ok(())
}

#[server(endpoint = "cancel_org_deletion")]
pub async fn cancel_org_deletion(slug: String) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    tessera_backend::tenancy::lifecycle::cancel_deletion(&org).await?;
    leptos_axum::redirect(&format!("/t/{}/settings", org.tenant.slug));
    Ok(())
}

#[server(endpoint = "load_org")]
pub async fn load_org(slug: String) -> Result<OrgContext, AppError> {
    ssr::once_per_request(slug.clone(), async move {
        let (_, org) = enter(&slug).await?;
        let billing_alert = match org.billing().state {
            tessera_domain::billing::BillingState::PastDue { restricts_at, .. } => Some(format!(
                "A payment for {} failed. Unless the payment method is updated, the organization becomes read-only on {}.",
                org.tenant.name,
                tessera_domain::billing::date(restricts_at)
            )),
            tessera_domain::billing::BillingState::Restricted { .. } => {
                Some(format!("{} is read-only until its overdue payment goes through.", org.tenant.name))
            }
            _ => None,
        };
        Ok(OrgContext { slug: org.tenant.slug.clone(), name: org.tenant.name.clone(), rights: org.rights.clone(), billing_alert })
    })
    .await
}

#[server(endpoint = "org_overview")]
pub async fn load_org_overview(slug: String) -> Result<OrgOverview, AppError> {
    ssr::once_per_request(slug.clone(), async move {
        let (_, org) = enter(&slug).await?;
        let (project_count, member_count) = tessera_backend::projects::overview(&org).await?;
        Ok(OrgOverview { project_count, member_count })
    })
    .await
}
