//! Invitations: admins invite people into an organization; people accept (or decline) from
//! the emailed link or from their home page.

use leptos::prelude::*;
use tessera_domain::dto::{Invitation, InvitationPreview};
use tessera_domain::AppError;

#[cfg(feature = "ssr")]
use super::ssr::{self, enter};

#[server(endpoint = "invite_member")]
pub async fn invite_member(slug: String, email: String, role: String) -> Result<Invitation, AppError> {
    let (backend, org) = enter(&slug).await?;
    let role = ssr::parse_role(&role)?;
    Ok(tessera_backend::members::invitations::invite(&org, &backend.identity, &email, role).await?)
}

#[server(endpoint = "org_invitations")]
pub async fn org_invitations(slug: String) -> Result<Vec<Invitation>, AppError> {
    ssr::once_per_request(slug.clone(), async move {
        let (_, org) = enter(&slug).await?;
        Ok(tessera_backend::members::invitations::list(&org).await?)
    })
    .await
}

#[server(endpoint = "resend_invitation")]
pub async fn resend_invitation(slug: String, id: String) -> Result<(), AppError> {
    let (backend, org) = enter(&slug).await?;
    let id = ssr::parse_id(&id, "invitation")?;
    Ok(tessera_backend::members::invitations::resend(&org, &backend.identity, id).await?)
}

#[server(endpoint = "withdraw_invitation")]
pub async fn withdraw_invitation(slug: String, id: String) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    let id = ssr::parse_id(&id, "invitation")?;
    Ok(tessera_backend::members::invitations::revoke(&org, id).await?)
}

/// What an emailed invitation link invites to (no sign-in needed to see it).
#[server(endpoint = "open_invitation")]
pub async fn open_invitation(token: String) -> Result<InvitationPreview, AppError> {
    Ok(tessera_backend::members::invitations::preview(&ssr::backend()?.tenancy, token.trim()).await?)
}

/// Open invitations to the signed-in person's confirmed address.
#[server(endpoint = "my_invitations")]
pub async fn my_invitations() -> Result<Vec<InvitationPreview>, AppError> {
    let backend = ssr::backend()?;
    let user = current_user(&backend).await?;
    Ok(tessera_backend::members::invitations::for_user(&backend.tenancy, &user).await?)
}

/// Joins the organization; `token` from the emailed link, or `id` from the home page. Lands in
/// the organization.
#[server(endpoint = "accept_invitation")]
pub async fn accept_invitation(token: Option<String>, id: Option<String>) -> Result<String, AppError> {
    let backend = ssr::backend()?;
    let user = current_user(&backend).await?;
    let key = invitation_key(token, id)?;
    let slug = tessera_backend::members::invitations::accept(&backend.tenancy, &user, &key, &ssr::meta()).await?;
    leptos_axum::redirect(&format!("/t/{slug}"));
    Ok(slug)
}

/// Says no. With the emailed link no account is needed.
#[server(endpoint = "decline_invitation")]
pub async fn decline_invitation(token: Option<String>, id: Option<String>) -> Result<(), AppError> {
    let backend = ssr::backend()?;
    let user = match ssr::user_id().await? {
        Some(user_id) => backend.identity.user(user_id).await?,
        None => None,
    };
    let key = invitation_key(token, id)?;
    Ok(tessera_backend::members::invitations::decline(&backend.tenancy, user.as_ref(), &key, &ssr::meta()).await?)
}

#[cfg(feature = "ssr")]
async fn current_user(backend: &tessera_backend::Backend) -> Result<tessera_domain::dto::CurrentUser, AppError> {
    let user_id = ssr::require_user().await?;
    backend.identity.user(user_id).await?.ok_or(AppError::Unauthenticated)
}

#[cfg(feature = "ssr")]
fn invitation_key(token: Option<String>, id: Option<String>) -> Result<tessera_backend::members::invitations::InvitationKey, AppError> {
    use tessera_backend::members::invitations::InvitationKey;
    match (token.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()), id.filter(|i| !i.trim().is_empty())) {
        (Some(token), _) => Ok(InvitationKey::Token(token)),
        (None, Some(id)) => Ok(InvitationKey::Id(ssr::parse_id(&id, "invitation")?)),
        (None, None) => Err(AppError::BadRequest("Which invitation? Open the link from the invitation email again.".into())),
    }
}
