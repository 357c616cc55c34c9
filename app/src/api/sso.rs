//! An organization's single sign-on set-up (admins), and finding one's SSO by email.

use leptos::prelude::*;
use tessera_domain::dto::SsoSettings;
use tessera_domain::AppError;

#[cfg(feature = "ssr")]
use super::ssr::{self, enter};

#[server(endpoint = "org_sso_settings")]
pub async fn org_sso_settings(slug: String) -> Result<SsoSettings, AppError> {
    ssr::once_per_request(slug.clone(), async move {
        let (backend, org) = enter(&slug).await?;
        Ok(tessera_backend::sso::settings(&org, &backend.sso).await?)
    })
    .await
}

/// Connects the IdP from pasted metadata XML, or from the URL it is published at.
#[server(endpoint = "save_sso_idp")]
pub async fn save_sso_idp(slug: String, metadata_xml: String, metadata_url: String) -> Result<(), AppError> {
    let (backend, org) = enter(&slug).await?;
    ssr::require_recent_auth().await?;
    Ok(tessera_backend::sso::save_idp(&org, &backend.sso, &metadata_xml, &metadata_url).await?)
}

/// Checkboxes arrive only when ticked.
#[allow(clippy::too_many_arguments)]
#[server(endpoint = "save_sso_mapping")]
pub async fn save_sso_mapping(
    slug: String,
    email_attribute: String,
    name_attribute: String,
    groups_attribute: String,
    group_roles: String,
    default_role: String,
    jit_provisioning: Option<String>,
    allow_idp_initiated: Option<String>,
    require_sso: Option<String>,
) -> Result<(), AppError> {
    use tessera_domain::dto::SsoMapping;
    let (_, org) = enter(&slug).await?;
    ssr::require_recent_auth().await?;
    let default = if default_role.trim().is_empty() { tessera_domain::Role::Member } else { ssr::parse_role(&default_role)? };
    let mapping = SsoMapping {
        email_attribute,
        name_attribute,
        groups_attribute,
        group_roles: group_roles.clone(),
        default_role: default,
        jit_provisioning: jit_provisioning.is_some(),
        allow_idp_initiated: allow_idp_initiated.is_some(),
        require_sso: require_sso.is_some(),
    };
    Ok(tessera_backend::sso::save_mapping(&org, &mapping, &group_roles).await?)
}

#[server(endpoint = "remove_sso_idp")]
pub async fn remove_sso_idp(slug: String) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    ssr::require_recent_auth().await?;
    Ok(tessera_backend::sso::remove_idp(&org).await?)
}

#[server(endpoint = "add_sso_domain")]
pub async fn add_sso_domain(slug: String, domain: String) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    Ok(tessera_backend::sso::domains::add(&org, &domain).await?)
}

#[server(endpoint = "verify_sso_domain")]
pub async fn verify_sso_domain(slug: String, domain: String) -> Result<(), AppError> {
    let (backend, org) = enter(&slug).await?;
    Ok(tessera_backend::sso::domains::verify(&org, &backend.sso, &domain).await?)
}

#[server(endpoint = "remove_sso_domain")]
pub async fn remove_sso_domain(slug: String, domain: String) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    Ok(tessera_backend::sso::domains::remove(&org, &domain).await?)
}

/// Where to start signing in with the SSO of the organization that owns this address's
/// domain. Says so plainly when there is none (domains with SSO are not secret: the IdP's
/// sign-in page is the next step anyway).
#[server(endpoint = "find_sso")]
pub async fn find_sso(email: String, next: Option<String>) -> Result<String, AppError> {
    use tessera_domain::input::{Email, FieldError};
    let email = Email::parse(&email)?;
    let found = tessera_backend::sso::domains::organization_for_email(&ssr::backend()?.tenancy, email.as_str()).await?;
    let Some((slug, _, _)) = found else {
        return Err(AppError::Invalid(FieldError::new(
            "email",
            "No organization has set up single sign-on for that address's domain. Log in with your password or an email link.",
        )));
    };
    let next = ssr::safe_next(next.as_deref());
    Ok(format!("/sso/{slug}/login?next={}", crate::query_escape(&next)))
}

/// Who an IdP-initiated sign-in would sign in, for the page that asks the person to confirm.
#[server(endpoint = "sso_handoff")]
pub async fn sso_handoff(token: String) -> Result<tessera_domain::dto::SsoHandoffPreview, AppError> {
    Ok(tessera_backend::sso::saml::preview_handoff(&ssr::backend()?.tenancy, &token).await?)
}

/// The person confirmed, on our own page (a same-origin POST, so no other site can send it),
/// that they mean to sign in as the account their IdP named.
#[server(endpoint = "confirm_sso_handoff")]
pub async fn confirm_sso_handoff(token: String) -> Result<(), AppError> {
    use tessera_backend::sso::saml::{redeem_handoff, Redeemer};
    let backend = ssr::backend()?;
    let sign_in = redeem_handoff(&backend.tenancy, &token, Redeemer::Confirmed).await?;
    let target = ssr::sign_in_through_idp(sign_in.user_id, &sign_in.next, sign_in.tenant_id).await?;
    leptos_axum::redirect(&target);
    Ok(())
}
