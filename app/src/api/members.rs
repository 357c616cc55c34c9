//! The team: who is in the organization, their roles, and signing a member out everywhere.

use leptos::prelude::*;
use tessera_domain::dto::Member;
use tessera_domain::AppError;

#[cfg(feature = "ssr")]
use super::ssr::{self, enter};

#[server(endpoint = "list_members")]
pub async fn list_members(slug: String) -> Result<Vec<Member>, AppError> {
    ssr::once_per_request(slug.clone(), async move {
        let (_, org) = enter(&slug).await?;
        Ok(tessera_backend::members::list(&org).await?)
    })
    .await
}

/// `role`: a built-in role (`admin`), or one of the organization's own (`custom:<id>`).
#[server(endpoint = "change_role")]
pub async fn change_role(slug: String, user_id: String, role: String) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    let user_id = ssr::parse_id(&user_id, "member")?;
    let role = tessera_backend::members::RoleChoice::parse(&role)?;
    Ok(tessera_backend::members::change_role(&org, user_id, role).await?)
}

#[server(endpoint = "remove_member")]
pub async fn remove_member(slug: String, user_id: String) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    let user_id = ssr::parse_id(&user_id, "member")?;
    Ok(tessera_backend::members::remove(&org, user_id).await?)
}

/// The signed-in member leaves the organization (refused for its last Owner).
#[server(endpoint = "leave_organization")]
pub async fn leave_organization(slug: String) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    tessera_backend::members::leave(&org).await?;
    ssr::EnteredOrganizations::forget();
    // Nothing here is theirs any more: back to their organizations.
    leptos_axum::redirect("/");
    Ok(())
}

/// An Owner hands ownership to another member (after confirming it is them).
#[server(endpoint = "transfer_ownership")]
pub async fn transfer_ownership(slug: String, user_id: String) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    let to = ssr::parse_id(&user_id, "member")?;
    // Who may is said before asking anyone to confirm it's them.
    org.require(tessera_domain::Permission::ManageOwners)?;
    ssr::require_recent_auth().await?;
    Ok(tessera_backend::members::transfer_ownership(&org, to).await?)
}

/// An Owner or Admin signs a member out of every browser.
#[server(endpoint = "sign_out_member")]
pub async fn sign_out_member(slug: String, user_id: String) -> Result<u64, AppError> {
    let (_, org) = enter(&slug).await?;
    let user_id = ssr::parse_id(&user_id, "member")?;
    Ok(tessera_backend::members::revoke_sessions(&org, user_id).await?)
}
